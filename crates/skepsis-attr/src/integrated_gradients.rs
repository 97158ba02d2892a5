//! Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep
//! Networks", ICML 2017).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use skepsis_nn::Model;

use crate::ig_baseline::Baseline;
use crate::quadrature::QuadratureRule;
use crate::rows::{from_host, gradient_rows, index_tensor, sample_len, target_logits, to_host};
use crate::{Attribution, Error, Method, Result, Target};

const NAME: &str = "integrated-gradients";

/// Settings of [`IntegratedGradients`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntegratedGradientsSettings {
    /// Number of interpolation points `n`.
    pub steps: usize,
    /// Quadrature rule: which `alpha_k` and `w_k` (see [`QuadratureRule`]).
    pub rule: QuadratureRule,
    /// The baseline `b`.
    pub baseline: Baseline,
    /// Most interpolated inputs per backward pass.
    pub batch_size: usize,
}

impl Default for IntegratedGradientsSettings {
    fn default() -> Self {
        IntegratedGradientsSettings {
            steps: 64,
            rule: QuadratureRule::Trapezoid,
            baseline: Baseline::Zero,
            batch_size: 256,
        }
    }
}

/// Integrated Gradients, Sundararajan et al. 2017:
///
/// `map = (x - b) * sum_k w_k * grad f_t(b + alpha_k (x - b))`,
///
/// the quadrature (`alpha_k`, `w_k`, see [`QuadratureRule`]) of
/// `(x - b) * int_0^1 grad f_t(b + alpha (x - b)) d alpha`, with `f_t` the target logit and
/// `b` the [`Baseline`]. Every sample's steps are folded into the batch dimension, in
/// chunks of at most `batch_size` rows; gradients are summed on the host in float64 in a
/// fixed order. The completeness delta `sum(map) - (f_t(x) - f_t(b))` is returned per
/// sample (it shrinks as `steps` grows for the normalized rules; captum's trapezoid keeps a
/// bias of `1/n` of the total).
#[derive(Clone, Debug)]
pub struct IntegratedGradients {
    settings: IntegratedGradientsSettings,
    alphas: Vec<f64>,
    weights: Vec<f64>,
    given_baseline: Option<Tensor>,
}

impl IntegratedGradients {
    /// Validates `settings` (`steps` >= 1, >= 2 for trapezoid rules, `batch_size` >= 1,
    /// baseline parameters) and computes the quadrature nodes.
    pub fn new(settings: IntegratedGradientsSettings) -> Result<Self> {
        if settings.batch_size == 0 {
            return Err(Error::parameter(NAME, "batch_size", "must be at least 1"));
        }
        settings.baseline.validate(NAME)?;
        let (alphas, weights) = settings.rule.nodes(NAME, settings.steps)?;
        Ok(IntegratedGradients { settings, alphas, weights, given_baseline: None })
    }

    /// Uses `baseline` (shaped like the input, `[1, ...]`, or one sample) as `b`.
    pub fn with_baseline(mut self, baseline: Tensor) -> Self {
        self.settings.baseline = Baseline::Given;
        self.given_baseline = Some(baseline);
        self
    }

    pub fn settings(&self) -> &IntegratedGradientsSettings {
        &self.settings
    }

    /// The quadrature nodes `alpha_k`.
    pub fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    /// The quadrature weights `w_k`.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

impl Method for IntegratedGradients {
    fn name(&self) -> String {
        let s = &self.settings;
        format!("{NAME}:steps={},rule={},baseline={}", s.steps, s.rule.name(), s.baseline.name())
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let baseline = self.settings.baseline.tensor(NAME, x, self.given_baseline.as_ref())?;
        let map = path_integral(
            model,
            x,
            &baseline,
            &targets,
            &self.alphas,
            &self.weights,
            self.settings.batch_size,
        )?;
        let delta =
            completeness_delta(model, &map, x, &baseline, &targets, self.settings.batch_size)?;
        Ok(Attribution { map, targets, completeness_delta: Some(delta) })
    }
}

/// `(x - b) * sum_k w_k grad f_t(b + alpha_k (x - b))` with rows `n * steps + k`.
pub(crate) fn path_integral(
    model: &Model,
    x: &Tensor,
    baseline: &Tensor,
    targets: &[usize],
    alphas: &[f64],
    weights: &[f64],
    batch_size: usize,
) -> Result<Tensor> {
    let n = x.dims()[0];
    let steps = alphas.len();
    let d = sample_len(x);
    let diff = (x - baseline)?;
    let mut alpha_shape = vec![1usize; x.rank()];
    let mut acc = vec![0f64; n * d];
    gradient_rows(
        model,
        n * steps,
        batch_size,
        |rows| {
            let samples: Vec<usize> = rows.clone().map(|r| r / steps).collect();
            let idx = index_tensor(&samples, x)?;
            alpha_shape[0] = rows.len();
            let a: Vec<f64> = rows.clone().map(|r| alphas[r % steps]).collect();
            let a = from_host(a, &alpha_shape, x)?;
            let inputs = baseline
                .index_select(&idx, 0)?
                .add(&diff.index_select(&idx, 0)?.broadcast_mul(&a)?)?;
            Ok((inputs, samples.iter().map(|&s| targets[s]).collect()))
        },
        |rows, grads, _| {
            for (r, g) in rows.zip(grads.chunks_exact(d)) {
                let w = weights[r % steps];
                let out = &mut acc[(r / steps) * d..(r / steps + 1) * d];
                out.iter_mut().zip(g).for_each(|(o, g)| *o += w * g);
            }
            Ok(())
        },
    )?;
    let diff = to_host(&diff)?;
    let map = acc.iter().zip(&diff).map(|(a, d)| a * d).collect();
    from_host(map, x.dims(), x)
}

/// `sum(map_n) - (f_t(x_n) - f_t(b_n))` per sample.
pub(crate) fn completeness_delta(
    model: &Model,
    map: &Tensor,
    x: &Tensor,
    baseline: &Tensor,
    targets: &[usize],
    batch_size: usize,
) -> Result<Vec<f64>> {
    let fx = target_logits(model, x, targets, batch_size)?;
    let fb = target_logits(model, baseline, targets, batch_size)?;
    let d = sample_len(x);
    let sums = to_host(map)?;
    Ok(sums
        .chunks_exact(d.max(1))
        .zip(fx.iter().zip(&fb))
        .map(|(m, (a, b))| m.iter().sum::<f64>() - (a - b))
        .collect())
}
