//! LRP rules for special positions (the input layer: ZBox, Flat, WSquare), for layers without
//! weights (Pass, Norm), and Excitation Backprop's probabilistic winner-take-all rule.

use candle_core::Tensor;
use skepsis_nn::{Error, Layer, Result, Rule, Step};

use super::{check_positive, fmt_param, single_input, split_sign, stabilize, unsupported, Affine};

/// LRP-z^B, the bounded-input rule of deep Taylor decomposition (Montavon et al.,
/// "Explaining nonlinear classification decisions with deep Taylor decomposition", Pattern
/// Recognition 2017), for an input layer whose values lie in `[low, high]`:
///
/// ```text
/// z = W x − W⁺ l − W⁻ h        (the biases cancel),   s = R / stab_ε(z)
/// R_in = x · Wᵀ s − l · W⁺ᵀ s − h · W⁻ᵀ s
/// ```
///
/// `l` and `h` are constant tensors shaped like the input (zero padding applies to them too).
#[derive(Clone, Copy, Debug)]
pub struct ZBox {
    low: f64,
    high: f64,
    stabilizer: f64,
}

impl ZBox {
    /// Fails unless `low <= high`, both finite, and the stabilizer is finite and positive.
    pub fn new(low: f64, high: f64, stabilizer: f64) -> Result<Self> {
        if !(low.is_finite() && high.is_finite() && low <= high) {
            return Err(Error::parameter(
                "zbox",
                "low/high",
                format!("need finite bounds with low <= high, got low {low}, high {high}"),
            ));
        }
        check_positive("zbox", "stabilizer", stabilizer)?;
        Ok(ZBox { low, high, stabilizer })
    }
}

impl Rule for ZBox {
    fn name(&self) -> String {
        format!("zbox({},{})", fmt_param(self.low), fmt_param(self.high))
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "zbox")?;
        let x = single_input(step, "zbox")?;
        let (wp, wn) = split_sign(layer.weight)?;
        let ones = x.ones_like()?;
        let (l, h) = (ones.affine(self.low, 0.0)?, ones.affine(self.high, 0.0)?);
        let z = ((layer.forward(x, layer.weight, None)? - layer.forward(&l, &wp, None)?)?
            - layer.forward(&h, &wn, None)?)?;
        let s = (relevance / stabilize(&z, self.stabilizer)?)?;
        let d = x.dims();
        let r = (((x * layer.vjp(&s, layer.weight, d)?)? - (l * layer.vjp(&s, &wp, d)?)?)?
            - (h * layer.vjp(&s, &wn, d)?)?)?;
        Ok(vec![r])
    }
}

/// LRP-flat, Lapuschkin et al., "Unmasking Clever Hans predictors", Nature Communications
/// 2019: relevance spread uniformly over each output's receptive field, ignoring weights and
/// inputs. With `W1` the layer's weight set to ones and no bias:
///
/// ```text
/// z = W1 · 1   (number of in-bounds inputs of each output),   R_in = W1ᵀ[R / stab_ε(z)]
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Flat {
    stabilizer: f64,
}

impl Flat {
    /// Fails unless the stabilizer is finite and positive.
    pub fn new(stabilizer: f64) -> Result<Self> {
        check_positive("flat", "stabilizer", stabilizer)?;
        Ok(Flat { stabilizer })
    }
}

impl Rule for Flat {
    fn name(&self) -> String {
        "flat".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "flat")?;
        let x = single_input(step, "flat")?;
        let w1 = layer.weight.ones_like()?;
        let z = layer.forward(&x.ones_like()?, &w1, None)?;
        let s = (relevance / stabilize(&z, self.stabilizer)?)?;
        Ok(vec![layer.vjp(&s, &w1, x.dims())?])
    }
}

/// LRP-w², Montavon et al. 2017 (deep Taylor decomposition for unbounded inputs): relevance
/// split in proportion to the squared weights, ignoring the input. As zennit 0.5, the bias is
/// squared too:
///
/// ```text
/// z = W² · 1 + b²,   R_in = W²ᵀ[R / stab_ε(z)]
/// ```
#[derive(Clone, Copy, Debug)]
pub struct WSquare {
    stabilizer: f64,
}

impl WSquare {
    /// Fails unless the stabilizer is finite and positive.
    pub fn new(stabilizer: f64) -> Result<Self> {
        check_positive("wsquare", "stabilizer", stabilizer)?;
        Ok(WSquare { stabilizer })
    }
}

impl Rule for WSquare {
    fn name(&self) -> String {
        "wsquare".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "wsquare")?;
        let x = single_input(step, "wsquare")?;
        let w2 = layer.weight.sqr()?;
        let b2 = layer.bias.map(Tensor::sqr).transpose()?;
        let z = layer.forward(&x.ones_like()?, &w2, b2.as_ref())?;
        let s = (relevance / stabilize(&z, self.stabilizer)?)?;
        Ok(vec![layer.vjp(&s, &w2, x.dims())?])
    }
}

/// The pass rule: `R_in = R`. For element-wise activations (ReLU, ...), identities and
/// BatchNorm after it has been merged into the preceding layer (zennit's `Pass`). Only
/// one-input layers whose output has the input's shape.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pass;

impl Rule for Pass {
    fn name(&self) -> String {
        "pass".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let x = single_input(step, "pass")?;
        if x.dims() != step.output.dims() {
            return Err(unsupported(step, "pass"));
        }
        Ok(vec![relevance.clone()])
    }
}

/// The norm rule (zennit's `Norm`): relevance split in proportion to each input's share of a
/// linear, weight-free layer's output, `R_in = x · Jᵀ[R / stab_ε(y)]` with `y = J x` the layer.
/// For AvgPool2d and AdaptiveAvgPool2d `J` is the pooling; for a residual `Add`
/// (`y = Σ_k x_k`) each input receives `R_k = x_k · R / stab_ε(y)`, i.e. the relevance is
/// split proportionally to the inputs' contributions.
#[derive(Clone, Copy, Debug)]
pub struct Norm {
    stabilizer: f64,
}

impl Norm {
    /// Fails unless the stabilizer is finite and positive.
    pub fn new(stabilizer: f64) -> Result<Self> {
        check_positive("norm", "stabilizer", stabilizer)?;
        Ok(Norm { stabilizer })
    }
}

impl Rule for Norm {
    fn name(&self) -> String {
        "norm".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = &step.node.layer;
        if !matches!(layer, Layer::AvgPool2d(_) | Layer::AdaptiveAvgPool2d { .. } | Layer::Add) {
            return Err(unsupported(step, "norm"));
        }
        let s = (relevance / stabilize(step.output, self.stabilizer)?)?;
        let grads = layer.input_vjp(&step.inputs, step.output, &s)?;
        step.inputs.iter().zip(grads).map(|(x, g)| Ok((*x * g)?)).collect()
    }
}

/// Excitation Backprop, Zhang et al., "Top-down Neural Attention by Excitation Backprop",
/// ECCV 2016: the marginal winning probability `P(a_i) = Σ_j P(a_i | a_j) P(a_j)` with
/// `P(a_i | a_j) = a_i w⁺_ij / Σ_i' a_i' w⁺_i'j` (excitatory connections only, no bias):
///
/// ```text
/// P_in = x · W⁺ᵀ[P / stab_ε(W⁺ x)]
/// ```
///
/// The inputs are expected to be non-negative (ReLU activations, image pixels).
#[derive(Clone, Copy, Debug)]
pub struct ExcitationBackprop {
    stabilizer: f64,
}

impl ExcitationBackprop {
    /// Fails unless the stabilizer is finite and positive.
    pub fn new(stabilizer: f64) -> Result<Self> {
        check_positive("excitation-backprop", "stabilizer", stabilizer)?;
        Ok(ExcitationBackprop { stabilizer })
    }
}

impl Rule for ExcitationBackprop {
    fn name(&self) -> String {
        "excitation-backprop".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "excitation-backprop")?;
        let x = single_input(step, "excitation-backprop")?;
        let wp = layer.weight.maximum(0.0)?;
        let z = layer.forward(x, &wp, None)?;
        let s = (relevance / stabilize(&z, self.stabilizer)?)?;
        Ok(vec![(x * layer.vjp(&s, &wp, x.dims())?)?])
    }
}
