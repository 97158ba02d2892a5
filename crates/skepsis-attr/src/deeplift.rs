//! DeepLIFT (Shrikumar, Greenside & Kundaje, ICML 2017) and DeepSHAP (Lundberg & Lee,
//! "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017: DeepLIFT averaged
//! over a set of references).
//!
//! Multipliers `m` start at `one_hot(t)` on the logits and walk back with the gradient on
//! linear layers and DeepLIFT's rules on nonlinearities ([`crate::rules::Rescale`] or
//! [`crate::rules::RevealCancel`]); the map is `(x − x') · m`, which sums to
//! `f_t(x) − f_t(x')` (summation-to-delta, reported as the completeness delta).
//!
//! Max pooling: two conventions exist and both are offered ([`MaxPoolRule`]). The default,
//! `gradient`, routes the multiplier to the first maximal element of each window of `x`
//! (kundajelab/deeplift's default, and what captum 0.9 does in practice because its
//! max-pool rule is bypassed, captum issue #1104); summation-to-delta then only holds
//! approximately. `delta` is captum's intended rule ([`crate::rules::MaxPoolDelta`]), exact.

use std::sync::Arc;

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skepsis_nn::{BackwardPass, Error as NnError, Layer, Model, RuleMap, Trace};

use crate::canonizer::{Canonizer, MergeBatchNorm};
use crate::engine::one_hot;
use crate::rules::{is_elementwise_nonlinearity, MaxPoolDelta, Pass, Rescale, RevealCancel};
use crate::{Attribution, Error, Method, Result, Target};

/// DeepLIFT's rule for nonlinearities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeepLiftRule {
    /// Multiplier `Δy / Δx` per unit.
    #[default]
    Rescale,
    /// Positive and negative contributions propagated separately. Applies where the
    /// nonlinearity directly follows a Linear/Conv2d node that feeds nothing else (BatchNorm
    /// is merged first); other nonlinearities use Rescale.
    RevealCancel,
}

/// How multipliers cross a max-pooling layer (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaxPoolRule {
    #[default]
    Gradient,
    Delta,
}

fn default_batch_size() -> usize {
    256
}

/// Settings shared by [`DeepLift`] and [`DeepShap`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeepLiftSettings {
    #[serde(default)]
    pub rule: DeepLiftRule,
    #[serde(default)]
    pub maxpool: MaxPoolRule,
    /// Most (input, reference) pairs per backward pass.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl Default for DeepLiftSettings {
    fn default() -> Self {
        DeepLiftSettings {
            rule: DeepLiftRule::Rescale,
            maxpool: MaxPoolRule::Gradient,
            batch_size: 256,
        }
    }
}

/// The reference input of DeepLIFT.
#[derive(Clone, Debug, Default)]
pub enum Reference {
    /// All zeros (the default, as captum and SMERF).
    #[default]
    Zero,
    /// Every element equal to this value.
    Constant(f64),
    /// A tensor `[1, ...input_shape]` (shared) or `[N, ...input_shape]` (one per sample).
    Tensor(Tensor),
}

/// DeepLIFT with one reference per sample.
#[derive(Clone, Debug, Default)]
pub struct DeepLift {
    pub settings: DeepLiftSettings,
    pub reference: Reference,
}

/// The rule map of one chunk, with `reference` the trace of the aligned reference batch.
pub fn deeplift_rules(
    model: &Model,
    reference: Arc<Trace>,
    s: &DeepLiftSettings,
) -> Result<RuleMap> {
    let nodes = model.nodes();
    let consumers = model.consumers();
    let mut map = RuleMap::gradient(model);
    for (i, node) in nodes.iter().enumerate() {
        let layer = &node.layer;
        if is_elementwise_nonlinearity(layer) {
            let producer = node.inputs[0]
                .node()
                .filter(|&p| nodes[p].layer.is_affine() && consumers[node.inputs[0].0].len() == 1);
            match (s.rule, producer) {
                (DeepLiftRule::RevealCancel, Some(p)) => {
                    map.set(p, Arc::new(RevealCancel::new(reference.clone(), layer.clone())?))?;
                    map.set(i, Arc::new(Pass))?;
                }
                _ => map.set(i, Arc::new(Rescale::new(reference.clone())))?,
            }
        } else if matches!(layer, Layer::MaxPool2d(_)) && s.maxpool == MaxPoolRule::Delta {
            map.set(i, Arc::new(MaxPoolDelta::new(reference.clone())))?;
        } else if matches!(layer, Layer::Softmax) {
            return Err(NnError::UnsupportedRule {
                node: node.name.clone(),
                rule: "deeplift".into(),
                layer: layer.kind().into(),
            }
            .into());
        }
    }
    Ok(map)
}

/// One backward walk over aligned (input, reference) pairs: the contributions
/// `(x − x') · m` and the explained logits at `x` and at `x'`.
fn paired(
    model: &Model,
    xs: &Tensor,
    refs: &Tensor,
    targets: &[usize],
    s: &DeepLiftSettings,
) -> Result<(Tensor, Vec<f64>, Vec<f64>)> {
    let trace = model.trace(xs)?;
    let reference = Arc::new(model.trace(refs)?);
    let rules = deeplift_rules(model, reference.clone(), s)?;
    let hot = one_hot(targets, trace.logits().dims()[1], trace.logits())?;
    let m = BackwardPass::new(model, &trace).rules(&rules).run(&hot)?.relevance;
    let explained = |logits: &Tensor| -> Result<Vec<f64>> {
        Ok((logits * &hot)?.sum(1)?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
    };
    Ok((((xs - refs)? * m)?, explained(trace.logits())?, explained(reference.logits())?))
}

/// The model DeepLIFT walks: BatchNorm merged for RevealCancel (which needs to see the
/// weighted layer right before each nonlinearity), unchanged for Rescale.
fn prepared(model: &Model, s: &DeepLiftSettings) -> Result<Model> {
    match s.rule {
        DeepLiftRule::RevealCancel => MergeBatchNorm.apply(model),
        DeepLiftRule::Rescale => Ok(model.clone()),
    }
}

fn per_sample_sums(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_from(1)?.sum(1)?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

impl DeepLift {
    fn references(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match &self.reference {
            Reference::Zero => x.zeros_like()?,
            Reference::Constant(v) => x.ones_like()?.affine(*v, 0.0)?,
            Reference::Tensor(r) => {
                let r = r.to_dtype(x.dtype())?.to_device(x.device())?;
                if r.dims()[1..] != x.dims()[1..]
                    || !(r.dims()[0] == 1 || r.dims()[0] == x.dims()[0])
                {
                    return Err(Error::InvalidInput(format!(
                        "deeplift reference of shape {:?} does not fit inputs {:?} (need [1 or N, ...])",
                        r.dims(),
                        x.dims()
                    )));
                }
                r.broadcast_as(x.dims())?.contiguous()?
            }
        })
    }
}

impl Method for DeepLift {
    fn name(&self) -> String {
        let rule = match self.settings.rule {
            DeepLiftRule::Rescale => "rescale",
            DeepLiftRule::RevealCancel => "reveal-cancel",
        };
        let pool = match self.settings.maxpool {
            MaxPoolRule::Gradient => "gradient",
            MaxPoolRule::Delta => "delta",
        };
        format!("deeplift:rule={rule},maxpool={pool}")
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let model = prepared(model, &self.settings)?;
        let refs = self.references(x)?;
        let n = targets.len();
        let chunk = self.settings.batch_size.max(1);
        let (mut maps, mut delta) = (Vec::new(), Vec::with_capacity(n));
        let mut start = 0;
        while start < n {
            let len = chunk.min(n - start);
            let (xs, rs) = (x.narrow(0, start, len)?, refs.narrow(0, start, len)?);
            let (map, fx, fr) =
                paired(&model, &xs, &rs, &targets[start..start + len], &self.settings)?;
            for ((sum, a), b) in per_sample_sums(&map)?.into_iter().zip(fx).zip(fr) {
                delta.push(sum - (a - b));
            }
            maps.push(map);
            start += len;
        }
        let map = if maps.len() == 1 { maps.remove(0) } else { Tensor::cat(&maps, 0)? };
        Ok(Attribution { map, targets, completeness_delta: Some(delta) })
    }
}

/// DeepSHAP: the mean of DeepLIFT maps over `K` references `b_k`,
/// `map = (1/K) Σ_k (x − b_k) · m(x, b_k)` (captum's `DeepLiftShap`).
///
/// The references are `references` samples of the caller's reference set ([`DeepShap::pool`],
/// e.g. training images), drawn without replacement with `seed` when the set is larger
/// (all of it, in order, otherwise). Without a reference set, `references` uniform `[0, 1)`
/// images are drawn with `seed` (inputs scaled to `[0, 1]` are assumed).
#[derive(Clone, Debug)]
pub struct DeepShap {
    pub settings: DeepLiftSettings,
    /// Number of references `K`.
    pub references: usize,
    pub seed: u64,
    /// The reference set `[M, ...input_shape]`, if supplied.
    pub pool: Option<Tensor>,
}

impl Default for DeepShap {
    fn default() -> Self {
        DeepShap { settings: DeepLiftSettings::default(), references: 100, seed: 0, pool: None }
    }
}

impl DeepShap {
    /// The `K` references used for inputs like `x`.
    pub fn reference_set(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.references;
        if k == 0 {
            return Err(Error::parameter("deepshap", "references", "must be at least 1"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let set = match &self.pool {
            Some(pool) => {
                if pool.dims().len() != x.dims().len()
                    || pool.dims()[1..] != x.dims()[1..]
                    || pool.dims()[0] == 0
                {
                    return Err(Error::InvalidInput(format!(
                        "deepshap reference set of shape {:?} does not fit inputs {:?}",
                        pool.dims(),
                        x.dims()
                    )));
                }
                let m = pool.dims()[0];
                if m <= k {
                    pool.clone()
                } else {
                    let mut idx: Vec<u32> = rand::seq::index::sample(&mut rng, m, k)
                        .into_iter()
                        .map(|i| i as u32)
                        .collect();
                    idx.sort_unstable();
                    let idx = Tensor::from_vec(idx, k, pool.device())?;
                    pool.index_select(&idx, 0)?
                }
            }
            None => {
                let per: usize = x.dims()[1..].iter().product();
                let dist = rand::distr::StandardUniform;
                let v: Vec<f64> = (0..k * per).map(|_| rand::Rng::sample(&mut rng, dist)).collect();
                let mut dims = vec![k];
                dims.extend_from_slice(&x.dims()[1..]);
                Tensor::from_vec(v, dims, x.device())?
            }
        };
        Ok(set.to_dtype(x.dtype())?.to_device(x.device())?)
    }
}

impl Method for DeepShap {
    fn name(&self) -> String {
        format!("deepshap:references={},seed={}", self.references, self.seed)
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let model = prepared(model, &self.settings)?;
        let set = self.reference_set(x)?;
        let (n, k) = (targets.len(), set.dims()[0]);
        // Pairs p = i * K + j (sample i, reference j), walked in chunks of batch_size; each
        // sample's contributions are summed as its pairs come by.
        let mut sums: Vec<Option<Tensor>> = vec![None; n];
        let mut delta_sums = vec![0.0; n];
        let chunk = self.settings.batch_size.max(1);
        let mut p = 0;
        while p < n * k {
            let end = (p + chunk).min(n * k);
            let samples: Vec<u32> = (p..end).map(|q| (q / k) as u32).collect();
            let refs: Vec<u32> = (p..end).map(|q| (q % k) as u32).collect();
            let si = Tensor::from_vec(samples.clone(), samples.len(), x.device())?;
            let ri = Tensor::from_vec(refs, samples.len(), x.device())?;
            let (xs, rs) = (x.index_select(&si, 0)?, set.index_select(&ri, 0)?);
            let t: Vec<usize> = samples.iter().map(|&i| targets[i as usize]).collect();
            let (map, fx, fr) = paired(&model, &xs, &rs, &t, &self.settings)?;
            let mut offset = 0;
            while offset < samples.len() {
                let i = samples[offset] as usize;
                let run = samples[offset..].iter().take_while(|&&s| s as usize == i).count();
                let part = map.narrow(0, offset, run)?.sum_keepdim(0)?;
                sums[i] = Some(match sums[i].take() {
                    Some(acc) => (acc + part)?,
                    None => part,
                });
                for q in offset..offset + run {
                    delta_sums[i] += fx[q] - fr[q];
                }
                offset += run;
            }
            p = end;
        }
        let parts: Vec<Tensor> = sums
            .into_iter()
            .map(|s| s.ok_or_else(|| Error::InvalidInput("deepshap: no reference pairs".into())))
            .collect::<Result<_>>()?;
        let map = (Tensor::cat(&parts, 0)? / k as f64)?;
        let delta = per_sample_sums(&map)?
            .into_iter()
            .zip(delta_sums)
            .map(|(s, d)| s - d / k as f64)
            .collect();
        Ok(Attribution { map, targets, completeness_delta: Some(delta) })
    }
}
