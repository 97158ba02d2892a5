//! Expected Gradients (Erion et al. 2021) and GradientSHAP (Lundberg & Lee 2017, captum).

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use skepsis_nn::Model;

use crate::rows::{all_logits, from_host, gradient_rows, sample_len, target_logits, to_host};
use crate::{Attribution, Error, Method, Result, Target};

/// Where the references (baselines) are drawn from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceSet {
    /// The explained batch itself (every input may serve as another's reference). Useful
    /// when no data set is at hand; give training images for the method as published.
    #[default]
    Batch,
    /// A tensor `[K, ...]` given with [`ExpectedGradients::with_references`].
    Given,
}

/// Settings of [`ExpectedGradients`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExpectedGradientsSettings {
    /// Number of (reference, alpha) draws `S` per input.
    pub samples: usize,
    /// Standard deviation of Gaussian noise added to the input (GradientSHAP's `stdevs`;
    /// 0 for Expected Gradients).
    pub noise_std: f64,
    pub references: ReferenceSet,
    /// Seed of the ChaCha8 generator drawing references, alphas and noise.
    pub seed: u64,
    /// Most rows per backward pass.
    pub batch_size: usize,
}

impl Default for ExpectedGradientsSettings {
    fn default() -> Self {
        ExpectedGradientsSettings {
            samples: 50,
            noise_std: 0.0,
            references: ReferenceSet::Batch,
            seed: 0,
            batch_size: 256,
        }
    }
}

/// Expected Gradients (Erion, Janizek, Sturmfels, Lundberg & Lee, "Improving performance
/// of deep learning models with axiomatic attribution priors and expected gradients",
/// Nature Machine Intelligence 2021) and GradientSHAP (Lundberg & Lee, "A Unified
/// Approach to Interpreting Model Predictions", NeurIPS 2017; captum's `GradientShap`):
///
/// `map = (1/S) sum_s (x~_s - r_{j_s}) * grad f_t(r_{j_s} + alpha_s (x~_s - r_{j_s}))`,
///
/// with `j_s` uniform over the K references, `alpha_s ~ U[0, 1)` and
/// `x~_s = x + eps_s`, `eps_s ~ N(0, noise_std^2)` (`x~ = x` for Expected Gradients).
/// Draws come from a ChaCha8 generator seeded with `seed`, per input n and sample s in
/// order: `j`, `alpha`, then the noise elements. The completeness delta is
/// `sum(map) - (f_t(x) - (1/S) sum_s f_t(r_{j_s}))`, which vanishes in expectation.
#[derive(Clone, Debug)]
pub struct ExpectedGradients {
    name: &'static str,
    settings: ExpectedGradientsSettings,
    references: Option<Tensor>,
}

impl ExpectedGradients {
    /// Validates `settings` (`samples` >= 1, `noise_std` finite >= 0, `batch_size` >= 1).
    /// `name` is the registry name reported (`expected-gradients` or `gradient-shap`).
    pub fn new(name: &'static str, settings: ExpectedGradientsSettings) -> Result<Self> {
        if settings.samples == 0 {
            return Err(Error::parameter(name, "samples", "must be at least 1"));
        }
        if !(settings.noise_std.is_finite() && settings.noise_std >= 0.0) {
            return Err(Error::parameter(
                name,
                "noise_std",
                format!("must be a finite number >= 0, got {}", settings.noise_std),
            ));
        }
        if settings.batch_size == 0 {
            return Err(Error::parameter(name, "batch_size", "must be at least 1"));
        }
        Ok(ExpectedGradients { name, settings, references: None })
    }

    /// Draws the references from `references` `[K, ...input]`.
    pub fn with_references(mut self, references: Tensor) -> Self {
        self.settings.references = ReferenceSet::Given;
        self.references = Some(references);
        self
    }
}

impl Method for ExpectedGradients {
    fn name(&self) -> String {
        let s = &self.settings;
        format!("{}:samples={},noise_std={},seed={}", self.name, s.samples, s.noise_std, s.seed)
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let refs = match (self.settings.references, &self.references) {
            (ReferenceSet::Batch, _) => x.clone(),
            (ReferenceSet::Given, Some(r)) => {
                if r.rank() != x.rank() || r.dims()[1..] != x.dims()[1..] || r.dims()[0] == 0 {
                    return Err(Error::parameter(
                        self.name,
                        "references",
                        format!("references {:?} do not fit inputs {:?}", r.dims(), x.dims()),
                    ));
                }
                r.to_dtype(x.dtype())?.to_device(x.device())?
            }
            (ReferenceSet::Given, None) => {
                return Err(Error::parameter(
                    self.name,
                    "references",
                    "'given' needs a reference tensor (with_references)",
                ))
            }
        };
        let (n, d, k) = (x.dims()[0], sample_len(x), refs.dims()[0]);
        if n == 0 {
            return Err(Error::InvalidInput("empty batch".into()));
        }
        let s = self.settings.samples;
        let xs = to_host(x)?;
        let rs = to_host(&refs)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.settings.seed);
        let mut drawn = Vec::with_capacity(n * s);
        let mut acc = vec![0f64; n * d];
        // Rows are n * S + s; each row's (x~ - r) is kept until its gradient arrives.
        let pending = std::cell::RefCell::new(Vec::<f64>::new());
        gradient_rows(
            model,
            n * s,
            self.settings.batch_size,
            |rows| {
                let mut pending = pending.borrow_mut();
                pending.clear();
                let mut inputs = Vec::with_capacity(rows.len() * d);
                for r in rows.clone() {
                    let img = r / s;
                    let j = rng.random_range(0..k);
                    let alpha: f64 = rng.random();
                    drawn.push(j);
                    for e in 0..d {
                        let eps = if self.settings.noise_std > 0.0 {
                            {
                                let z: f64 = StandardNormal.sample(&mut rng);
                                self.settings.noise_std * z
                            }
                        } else {
                            0.0
                        };
                        let (xe, re) = (xs[img * d + e] + eps, rs[j * d + e]);
                        pending.push(xe - re);
                        inputs.push(re + alpha * (xe - re));
                    }
                }
                let mut shape = x.dims().to_vec();
                shape[0] = rows.len();
                Ok((from_host(inputs, &shape, x)?, rows.map(|r| targets[r / s]).collect()))
            },
            |rows, grads, _| {
                let pending = pending.borrow();
                for (i, r) in rows.enumerate() {
                    let out = &mut acc[(r / s) * d..(r / s + 1) * d];
                    let g = &grads[i * d..(i + 1) * d];
                    let m = &pending[i * d..(i + 1) * d];
                    for ((o, g), m) in out.iter_mut().zip(g).zip(m) {
                        *o += g * m / s as f64;
                    }
                }
                Ok(())
            },
        )?;
        let map = from_host(acc, x.dims(), x)?;
        // Completeness: f_t(x) minus the mean explained logit of the drawn references.
        let fx = target_logits(model, x, &targets, self.settings.batch_size)?;
        let ref_logits = all_logits(model, &refs, self.settings.batch_size)?;
        let sums = to_host(&map)?;
        let delta = (0..n)
            .map(|img| {
                let t = targets[img];
                let mean_fr =
                    drawn[img * s..(img + 1) * s].iter().map(|&j| ref_logits[j][t]).sum::<f64>()
                        / s as f64;
                sums[img * d..(img + 1) * d].iter().sum::<f64>() - (fx[img] - mean_fr)
            })
            .collect();
        Ok(Attribution { map, targets, completeness_delta: Some(delta) })
    }
}
