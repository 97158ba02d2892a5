//! The LRP rules for weighted layers (Linear, Conv2d) that split relevance by contribution:
//! Epsilon, ZPlus, AlphaBeta and Gamma (Bach et al. 2015; Montavon et al., "Layer-Wise
//! Relevance Propagation: An Overview", 2019), exactly as zennit 0.5 implements them.

use candle_core::Tensor;
use skepsis_nn::{Error, Result, Rule, Step};

use super::{
    check_non_negative, check_positive, fmt_param, single_input, split_sign, stabilize, Affine,
};

/// LRP-ε, Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by
/// Layer-Wise Relevance Propagation", PLoS ONE 2015:
///
/// ```text
/// R_in = x · Wᵀ[R / stab_ε(W x + b)]
/// ```
///
/// `ε -> 0` is LRP-0 (Gradient x Input on ReLU networks without biases).
#[derive(Clone, Copy, Debug)]
pub struct Epsilon {
    epsilon: f64,
}

impl Epsilon {
    /// Fails unless `epsilon` is finite and positive.
    pub fn new(epsilon: f64) -> Result<Self> {
        check_positive("epsilon", "epsilon", epsilon)?;
        Ok(Epsilon { epsilon })
    }
}

impl Rule for Epsilon {
    fn name(&self) -> String {
        format!("epsilon({})", fmt_param(self.epsilon))
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "epsilon")?;
        let x = single_input(step, "epsilon")?;
        let s = (relevance / stabilize(step.output, self.epsilon)?)?;
        Ok(vec![(x * layer.vjp(&s, layer.weight, x.dims())?)?])
    }
}

/// LRP-z⁺ (Montavon et al. 2017, "Explaining nonlinear classification decisions with deep
/// Taylor decomposition"), in zennit's form that also handles negative inputs:
///
/// ```text
/// z⁺ = W⁺ x⁺ + W⁻ x⁻ + b⁺,   s = R / stab_ε(z⁺)
/// R_in = x⁺ · W⁺ᵀ s + x⁻ · W⁻ᵀ s
/// ```
///
/// [`ZPlus::ignoring_bias`] drops `b⁺` (the deep Taylor z⁺ rule of the paper).
#[derive(Clone, Copy, Debug)]
pub struct ZPlus {
    stabilizer: f64,
    bias: bool,
}

impl ZPlus {
    /// Fails unless `stabilizer` is finite and positive.
    pub fn new(stabilizer: f64) -> Result<Self> {
        check_positive("zplus", "stabilizer", stabilizer)?;
        Ok(ZPlus { stabilizer, bias: true })
    }

    /// The same rule with the bias left out of `z⁺`.
    pub fn ignoring_bias(self) -> Self {
        ZPlus { bias: false, ..self }
    }
}

impl Rule for ZPlus {
    fn name(&self) -> String {
        let bias = if self.bias { "" } else { ",no-bias" };
        format!("zplus({}{bias})", fmt_param(self.stabilizer))
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "zplus")?;
        let x = single_input(step, "zplus")?;
        let (wp, wn) = split_sign(layer.weight)?;
        let (xp, xn) = split_sign(x)?;
        let bp = if self.bias { layer.bias_parts()?.map(|(p, _)| p) } else { None };
        let zp = (layer.forward(&xp, &wp, bp.as_ref())? + layer.forward(&xn, &wn, None)?)?;
        let s = (relevance / stabilize(&zp, self.stabilizer)?)?;
        let r =
            ((&xp * layer.vjp(&s, &wp, x.dims())?)? + (&xn * layer.vjp(&s, &wn, x.dims())?)?)?;
        Ok(vec![r])
    }
}

/// LRP-αβ, Bach et al. 2015 (zennit's form with negative inputs), `α - β = 1`, `α, β >= 0`:
///
/// ```text
/// z⁺ = W⁺ x⁺ + W⁻ x⁻ + b⁺,   z⁻ = W⁻ x⁺ + W⁺ x⁻ + b⁻
/// s⁺ = R / stab_ε(z⁺),        s⁻ = R / stab_ε(z⁻)
/// R_in = α (x⁺ · W⁺ᵀ s⁺ + x⁻ · W⁻ᵀ s⁺) − β (x⁺ · W⁻ᵀ s⁻ + x⁻ · W⁺ᵀ s⁻)
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AlphaBeta {
    alpha: f64,
    beta: f64,
    stabilizer: f64,
}

impl AlphaBeta {
    /// Fails unless `alpha, beta >= 0`, `alpha - beta = 1` (to 1e-9) and the stabilizer is
    /// finite and positive.
    pub fn new(alpha: f64, beta: f64, stabilizer: f64) -> Result<Self> {
        check_non_negative("alpha-beta", "alpha", alpha)?;
        check_non_negative("alpha-beta", "beta", beta)?;
        if (alpha - beta - 1.0).abs() > 1e-9 {
            return Err(Error::parameter(
                "alpha-beta",
                "alpha",
                format!("alpha - beta must be 1 (conservation), got alpha {alpha}, beta {beta}"),
            ));
        }
        check_positive("alpha-beta", "stabilizer", stabilizer)?;
        Ok(AlphaBeta { alpha, beta, stabilizer })
    }
}

impl Rule for AlphaBeta {
    fn name(&self) -> String {
        format!("alpha-beta({},{})", fmt_param(self.alpha), fmt_param(self.beta))
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "alpha-beta")?;
        let x = single_input(step, "alpha-beta")?;
        let (wp, wn) = split_sign(layer.weight)?;
        let (xp, xn) = split_sign(x)?;
        let bias = layer.bias_parts()?;
        let d = x.dims();
        let zp = (layer.forward(&xp, &wp, bias.as_ref().map(|b| &b.0))?
            + layer.forward(&xn, &wn, None)?)?;
        let sp = (relevance / stabilize(&zp, self.stabilizer)?)?;
        let pos = ((&xp * layer.vjp(&sp, &wp, d)?)? + (&xn * layer.vjp(&sp, &wn, d)?)?)?;
        let mut r = pos.affine(self.alpha, 0.0)?;
        if self.beta > 0.0 {
            let zn = (layer.forward(&xp, &wn, bias.as_ref().map(|b| &b.1))?
                + layer.forward(&xn, &wp, None)?)?;
            let sn = (relevance / stabilize(&zn, self.stabilizer)?)?;
            let neg = ((&xp * layer.vjp(&sn, &wn, d)?)? + (&xn * layer.vjp(&sn, &wp, d)?)?)?;
            r = (r - neg.affine(self.beta, 0.0)?)?;
        }
        Ok(vec![r])
    }
}

/// LRP-γ, Montavon et al. 2019, in zennit's generalized form (positive and negative outputs
/// each favour their own sign of contribution), `γ >= 0`:
///
/// ```text
/// W_p = W + γ W⁺,  W_n = W + γ W⁻,  b_p = b + γ b⁺,  b_n = b + γ b⁻
/// z_p = W_p x⁺ + W_n x⁻ + b_p,   z_n = W_n x⁺ + W_p x⁻ + b_n
/// s_p = [W x + b > 0] · R / stab_ε(z_p),   s_n = [W x + b < 0] · R / stab_ε(z_n)
/// R_in = x⁺ · (W_pᵀ s_p + W_nᵀ s_n) + x⁻ · (W_nᵀ s_p + W_pᵀ s_n)
/// ```
///
/// Relevance of units with `W x + b = 0` exactly is dropped (as zennit does).
#[derive(Clone, Copy, Debug)]
pub struct Gamma {
    gamma: f64,
    stabilizer: f64,
}

impl Gamma {
    /// Fails unless `gamma >= 0` and the stabilizer is finite and positive.
    pub fn new(gamma: f64, stabilizer: f64) -> Result<Self> {
        check_non_negative("gamma", "gamma", gamma)?;
        check_positive("gamma", "stabilizer", stabilizer)?;
        Ok(Gamma { gamma, stabilizer })
    }
}

impl Rule for Gamma {
    fn name(&self) -> String {
        format!("gamma({})", fmt_param(self.gamma))
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let layer = Affine::of(step, "gamma")?;
        let x = single_input(step, "gamma")?;
        let g = self.gamma;
        let (w_pos, w_neg) = split_sign(layer.weight)?;
        let wp = (layer.weight + w_pos.affine(g, 0.0)?)?;
        let wn = (layer.weight + w_neg.affine(g, 0.0)?)?;
        let (bp, bn) = match (layer.bias, layer.bias_parts()?) {
            (Some(b), Some((b_pos, b_neg))) => {
                (Some((b + b_pos.affine(g, 0.0)?)?), Some((b + b_neg.affine(g, 0.0)?)?))
            }
            _ => (None, None),
        };
        let (xp, xn) = split_sign(x)?;
        let d = x.dims();
        let zp = (layer.forward(&xp, &wp, bp.as_ref())? + layer.forward(&xn, &wn, None)?)?;
        let zn = (layer.forward(&xp, &wn, bn.as_ref())? + layer.forward(&xn, &wp, None)?)?;
        let zero = relevance.zeros_like()?;
        let sp = step
            .output
            .gt(0.0)?
            .where_cond(&(relevance / stabilize(&zp, self.stabilizer)?)?, &zero)?;
        let sn = step
            .output
            .lt(0.0)?
            .where_cond(&(relevance / stabilize(&zn, self.stabilizer)?)?, &zero)?;
        let on_pos = (layer.vjp(&sp, &wp, d)? + layer.vjp(&sn, &wn, d)?)?;
        let on_neg = (layer.vjp(&sp, &wn, d)? + layer.vjp(&sn, &wp, d)?)?;
        Ok(vec![((&xp * on_pos)? + (&xn * on_neg)?)?])
    }
}
