//! Rules: how one layer's backward step maps relevance (or a gradient, or a DeepLIFT
//! multiplier) at its output to its inputs. Each rule is one small struct implementing
//! [`skepsis_nn::Rule`]; its parameters are checked in `new`. Which rule goes on which node
//! is decided by a [`crate::composite::Composite`], never by the rule itself.
//!
//! Most rules use the *gradient trick* (zennit's `BasicHook`): modify the layer's weights or
//! inputs, evaluate the modified layer forward, divide the incoming relevance by that
//! (stabilized) output, take the modified layer's vector-Jacobian product and multiply by the
//! (modified) input. One correct VJP per layer type (skepsis-nn's conv/linear kernels) then
//! serves every rule.
//!
//! Notation used in the doc comments: `z = W x + b` is a Linear or Conv2d layer,
//! `W⁺ = max(W, 0)`, `W⁻ = min(W, 0)`, likewise `x⁺, x⁻, b⁺, b⁻`; `Wᵀs` is the layer's VJP
//! without bias (a transposed convolution for Conv2d); `stab_ε(z) = z + ε·sign₀(z)` with
//! `sign₀(z) = +1` for `z >= 0` and `-1` otherwise.

mod deeplift;
mod lrp;
mod lrp_special;
mod relu;

pub use deeplift::{is_elementwise_nonlinearity, MaxPoolDelta, Rescale, RevealCancel, NEAR_ZERO};
pub use lrp::{AlphaBeta, Epsilon, Gamma, ZPlus};
pub use lrp_special::{ExcitationBackprop, Flat, Norm, Pass, WSquare, ZBox};
pub use relu::{Deconv, Guided};

use candle_core::Tensor;
use skepsis_nn::ops::conv::{conv2d, conv2d_input_vjp};
use skepsis_nn::ops::linear::{linear, linear_input_vjp};
use skepsis_nn::ops::Conv2dSpec;
use skepsis_nn::{Error, Layer, Result, Step};

/// The default stabilizer of the LRP rules (zennit's): `1e-6`.
pub const DEFAULT_STABILIZER: f64 = 1e-6;

/// `Error::UnsupportedRule` for `step`'s node.
pub(crate) fn unsupported(step: &Step<'_>, rule: &str) -> Error {
    Error::UnsupportedRule {
        node: step.node.name.clone(),
        rule: rule.to_string(),
        layer: step.node.layer.kind().to_string(),
    }
}

/// Checks that a stabilizer / epsilon is finite and positive.
pub(crate) fn check_positive(rule: &str, parameter: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::parameter(rule, parameter, format!("must be finite and > 0, got {value}")))
    }
}

/// Checks that a parameter is finite and non-negative.
pub(crate) fn check_non_negative(rule: &str, parameter: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::parameter(rule, parameter, format!("must be finite and >= 0, got {value}")))
    }
}

/// `stab_ε(z) = z + ε·sign₀(z)`, `sign₀(0) = +1` (zennit's stabilizer).
pub(crate) fn stabilize(z: &Tensor, epsilon: f64) -> Result<Tensor> {
    Ok(z.ge(0.0)?.where_cond(&z.affine(1.0, epsilon)?, &z.affine(1.0, -epsilon)?)?)
}

/// `(max(t, 0), min(t, 0))`.
pub(crate) fn split_sign(t: &Tensor) -> Result<(Tensor, Tensor)> {
    Ok((t.maximum(0.0)?, t.minimum(0.0)?))
}

/// The weighted layer (Linear or Conv2d) of a step, with the two operations the gradient
/// trick needs: forward with replaced parameters, and the VJP of the linear part.
pub(crate) struct Affine<'a> {
    pub weight: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    conv: Option<&'a Conv2dSpec>,
}

impl<'a> Affine<'a> {
    /// The Linear or Conv2d layer of `step`, or `UnsupportedRule` naming the node.
    pub fn of(step: &Step<'a>, rule: &str) -> Result<Self> {
        match &step.node.layer {
            Layer::Linear(l) => Ok(Affine { weight: &l.weight, bias: l.bias.as_ref(), conv: None }),
            Layer::Conv2d(c) => {
                Ok(Affine { weight: &c.weight, bias: c.bias.as_ref(), conv: Some(&c.spec) })
            }
            _ => Err(unsupported(step, rule)),
        }
    }

    /// `w x + b` with the layer's geometry (stride, padding, ... for Conv2d).
    pub fn forward(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        match self.conv {
            Some(spec) => conv2d(x, w, b, spec),
            None => Ok(linear(x, w, b)?),
        }
    }

    /// `wᵀ s`: the VJP of `x -> w x` at an input of shape `x_dims`.
    pub fn vjp(&self, s: &Tensor, w: &Tensor, x_dims: &[usize]) -> Result<Tensor> {
        match self.conv {
            Some(spec) => conv2d_input_vjp(s, w, x_dims, spec),
            None => Ok(linear_input_vjp(s, w)?),
        }
    }

    /// The bias, or `None`.
    pub fn bias_parts(&self) -> Result<Option<(Tensor, Tensor)>> {
        self.bias.map(split_sign).transpose()
    }
}

/// The single input of `step` (every rule here but [`Norm`] acts on one-input layers).
pub(crate) fn single_input<'s>(step: &'s Step<'_>, rule: &str) -> Result<&'s Tensor> {
    match step.inputs.as_slice() {
        [x] => Ok(x),
        _ => Err(unsupported(step, rule)),
    }
}

/// Formats a rule parameter compactly (`1e-6`, `0.25`, `2`).
pub(crate) fn fmt_param(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}
