//! DeepLIFT rules, Shrikumar, Greenside & Kundaje, "Learning Important Features Through
//! Propagating Activation Differences", ICML 2017.
//!
//! DeepLIFT propagates *multipliers* `m = ∂f_t/∂x` in a finite-difference sense: every value
//! has a difference-from-reference `Δx = x − x'`, where `x'` is the value the network computes
//! on the reference input, and `Σ m · Δx = Δf_t` holds layer by layer for the rules below
//! (summation-to-delta). Linear layers (Linear, Conv2d, BatchNorm, average pooling, Flatten,
//! Add) use their gradient; these rules replace the nonlinearities. Each holds the forward
//! trace of the reference batch, aligned sample by sample with the explained batch.

use std::fmt;
use std::sync::Arc;

use candle_core::Tensor;
use skepsis_nn::ops::pool::max_pool2d_vjp;
use skepsis_nn::{Error, Layer, Result, Rule, Step, Trace};

use super::{single_input, split_sign, unsupported, Affine};

/// Below this `|Δx|` a difference quotient is replaced by the gradient (captum's threshold).
pub const NEAR_ZERO: f64 = 1e-10;

/// The reference values at `step`: (input, output).
fn reference_at<'a>(
    reference: &'a Trace,
    step: &Step<'_>,
    rule: &str,
) -> Result<(&'a Tensor, &'a Tensor)> {
    let [input] = step.node.inputs.as_slice() else {
        return Err(unsupported(step, rule));
    };
    let (x_ref, y_ref) = (reference.value(*input), reference.output(step.index));
    if x_ref.dims() != step.inputs[0].dims() || y_ref.dims() != step.output.dims() {
        return Err(Error::ShapeMismatch {
            context: format!("{rule}: reference activations at node '{}'", step.node.name),
            expected: step.inputs[0].dims().to_vec(),
            found: x_ref.dims().to_vec(),
        });
    }
    Ok((x_ref, y_ref))
}

/// `numerator / Δ` where `|Δ| >= NEAR_ZERO`, `fallback` elsewhere.
fn quotient_or(numerator: &Tensor, delta: &Tensor, fallback: &Tensor) -> Result<Tensor> {
    let usable = delta.abs()?.ge(NEAR_ZERO)?;
    let safe = usable.where_cond(delta, &delta.ones_like()?)?;
    Ok(usable.where_cond(&(numerator / safe)?, fallback)?)
}

/// Whether `layer` is an element-wise nonlinearity that [`Rescale`] and [`RevealCancel`]
/// handle.
pub fn is_elementwise_nonlinearity(layer: &Layer) -> bool {
    matches!(layer, Layer::Relu | Layer::LeakyRelu { .. } | Layer::Tanh | Layer::Sigmoid)
}

/// DeepLIFT's Rescale rule for an element-wise nonlinearity `y = f(x)` (ReLU, LeakyReLU,
/// Tanh, Sigmoid):
///
/// ```text
/// m_in = m_out · (f(x) − f(x')) / (x − x')    where |x − x'| >= 1e-10,
/// m_in = m_out · f'(x)                        elsewhere (the gradient; [x > 0] for ReLU)
/// ```
#[derive(Clone)]
pub struct Rescale {
    reference: Arc<Trace>,
}

impl Rescale {
    /// The rule with the forward trace of the reference batch.
    pub fn new(reference: Arc<Trace>) -> Self {
        Rescale { reference }
    }
}

impl fmt::Debug for Rescale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rescale")
    }
}

impl Rule for Rescale {
    fn name(&self) -> String {
        "rescale".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        if !is_elementwise_nonlinearity(&step.node.layer) {
            return Err(unsupported(step, "rescale"));
        }
        let (x_ref, y_ref) = reference_at(&self.reference, step, "rescale")?;
        let dx = (step.inputs[0] - x_ref)?;
        let dy = (step.output - y_ref)?;
        let gradient = step.node.layer.input_vjp(&step.inputs, step.output, relevance)?.remove(0);
        Ok(vec![quotient_or(&(relevance * dy)?, &dx, &gradient)?])
    }
}

/// DeepLIFT's max-pooling rule as captum intends it (captum issue #1104): with
/// `y = pool(x)`, `y' = pool(x')`, `top = max(y, y')`, and `unpool_x` / `unpool_x'` routing
/// each window's value to the first maximal element of `x` / `x'` (row-major),
///
/// ```text
/// m_in = [unpool_x(m_out · (top − y')) + unpool_x'(m_out · (y − top))] / (x − x')
/// ```
///
/// where `|x − x'| >= 1e-10`, and the plain max-pool gradient at `x` elsewhere. The
/// contributions through the pool then sum to `y − y'` exactly.
#[derive(Clone)]
pub struct MaxPoolDelta {
    reference: Arc<Trace>,
}

impl MaxPoolDelta {
    /// The rule with the forward trace of the reference batch.
    pub fn new(reference: Arc<Trace>) -> Self {
        MaxPoolDelta { reference }
    }
}

impl fmt::Debug for MaxPoolDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MaxPoolDelta")
    }
}

impl Rule for MaxPoolDelta {
    fn name(&self) -> String {
        "maxpool-delta".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let Layer::MaxPool2d(spec) = &step.node.layer else {
            return Err(unsupported(step, "maxpool-delta"));
        };
        let (x_ref, y_ref) = reference_at(&self.reference, step, "maxpool-delta")?;
        let (x, y) = (step.inputs[0], step.output);
        let top = y.maximum(y_ref)?;
        let from_x = max_pool2d_vjp(x, &(relevance * (&top - y_ref)?)?, spec)?;
        let from_ref = max_pool2d_vjp(x_ref, &(relevance * (y - &top)?)?, spec)?;
        let gradient = max_pool2d_vjp(x, relevance, spec)?;
        Ok(vec![quotient_or(&(from_x + from_ref)?, &(x - x_ref)?, &gradient)?])
    }
}

/// DeepLIFT's RevealCancel rule, applied jointly to a weighted layer `h = W z + b` (the node
/// this rule is assigned to) and the element-wise nonlinearity `y = f(h)` that consumes it
/// (which gets the pass rule, so the multiplier arriving here is `m_y`).
///
/// The difference `Δh` is split into positive and negative contributions,
/// `Δh⁺ = W⁺ Δz⁺ + W⁻ Δz⁻` and `Δh⁻ = W⁻ Δz⁺ + W⁺ Δz⁻` (the bias difference is zero), and
///
/// ```text
/// Δy⁺ = ½ [f(h' + Δh⁺) − f(h')] + ½ [f(h) − f(h' + Δh⁻)]
/// Δy⁻ = ½ [f(h' + Δh⁻) − f(h')] + ½ [f(h) − f(h' + Δh⁺)]
/// m⁺ = Δy⁺ / Δh⁺,  m⁻ = Δy⁻ / Δh⁻   (f'(h) where |Δh±| < 1e-10)
/// m_z = [Δz > 0] · (W⁺ᵀ(m_y m⁺) + W⁻ᵀ(m_y m⁻)) + [Δz < 0] · (W⁻ᵀ(m_y m⁺) + W⁺ᵀ(m_y m⁻))
/// ```
///
/// i.e. each input contribution `w_ij Δz_j` is carried back by the multiplier of its sign
/// (the paper's separate positive and negative multipliers; `Σ m_z Δz = Σ m_y Δy` holds).
#[derive(Clone)]
pub struct RevealCancel {
    reference: Arc<Trace>,
    activation: Layer,
}

impl RevealCancel {
    /// The rule for a weighted layer followed by `activation` (an element-wise
    /// nonlinearity), with the forward trace of the reference batch.
    pub fn new(reference: Arc<Trace>, activation: Layer) -> Result<Self> {
        if !is_elementwise_nonlinearity(&activation) {
            return Err(Error::parameter(
                "reveal-cancel",
                "activation",
                format!("'{}' is not an element-wise nonlinearity", activation.kind()),
            ));
        }
        Ok(RevealCancel { reference, activation })
    }

    fn f(&self, h: &Tensor) -> Result<Tensor> {
        self.activation.forward(&[h])
    }
}

impl fmt::Debug for RevealCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RevealCancel({})", self.activation.kind())
    }
}

impl Rule for RevealCancel {
    fn name(&self) -> String {
        format!("reveal-cancel({})", self.activation.kind())
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "reveal-cancel")?;
        let z = single_input(step, "reveal-cancel")?;
        let (z_ref, h_ref) = reference_at(&self.reference, step, "reveal-cancel")?;
        let h = step.output;
        let dz = (z - z_ref)?;
        let (dz_pos, dz_neg) = split_sign(&dz)?;
        let (wp, wn) = split_sign(layer.weight)?;
        let dh_pos = (layer.forward(&dz_pos, &wp, None)? + layer.forward(&dz_neg, &wn, None)?)?;
        let dh_neg = (layer.forward(&dz_pos, &wn, None)? + layer.forward(&dz_neg, &wp, None)?)?;
        let (f_ref, f_h) = (self.f(h_ref)?, self.f(h)?);
        let f_pos = self.f(&(h_ref + &dh_pos)?)?;
        let f_neg = self.f(&(h_ref + &dh_neg)?)?;
        let dy_pos = (((&f_pos - &f_ref)? + (&f_h - &f_neg)?)? * 0.5)?;
        let dy_neg = (((&f_neg - &f_ref)? + (&f_h - &f_pos)?)? * 0.5)?;
        let slope = self.activation.input_vjp(&[h], &f_h, &h.ones_like()?)?.remove(0);
        let s_pos = (relevance * quotient_or(&dy_pos, &dh_pos, &slope)?)?;
        let s_neg = (relevance * quotient_or(&dy_neg, &dh_neg, &slope)?)?;
        let d = z.dims();
        let zero = dz.zeros_like()?;
        let for_pos = (layer.vjp(&s_pos, &wp, d)? + layer.vjp(&s_neg, &wn, d)?)?;
        let for_neg = (layer.vjp(&s_pos, &wn, d)? + layer.vjp(&s_neg, &wp, d)?)?;
        let m = (dz.gt(0.0)?.where_cond(&for_pos, &zero)?
            + dz.lt(0.0)?.where_cond(&for_neg, &zero)?)?;
        Ok(vec![m])
    }
}
