//! Optimizers over the model's trainable tensors: Adam (Kingma & Ba, 2015) and SGD with
//! momentum, with PyTorch's update formulas. On the CPU each update is one fused pass over
//! the parameter, its gradient and the optimizer state.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::ops::{cpu_slice, from_cpu_vec, Element};
use crate::{Error, Result};

/// Optimizer and its hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// `m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    /// p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)`.
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    /// `b = momentum b + g; p -= lr b` (PyTorch's SGD; `g += weight_decay p` first).
    Sgd { lr: f64, momentum: f64, weight_decay: f64 },
}

impl OptimizerConfig {
    /// Adam with the usual defaults (betas 0.9/0.999, eps 1e-8) and learning rate `lr`.
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |p: &str, m: &str| Err(Error::parameter("optimizer", p, m));
        match *self {
            OptimizerConfig::Adam { lr, beta1, beta2, eps, weight_decay } => {
                if !(lr.is_finite() && lr > 0.0) {
                    return bad("lr", "must be positive");
                }
                if !(0.0..1.0).contains(&beta1) || !(0.0..1.0).contains(&beta2) {
                    return bad("beta1/beta2", "must be in [0, 1)");
                }
                if eps.is_nan() || eps <= 0.0 || weight_decay.is_nan() || weight_decay < 0.0 {
                    return bad("eps/weight_decay", "eps must be positive, weight_decay >= 0");
                }
            }
            OptimizerConfig::Sgd { lr, momentum, weight_decay } => {
                if !(lr.is_finite() && lr > 0.0) {
                    return bad("lr", "must be positive");
                }
                if !(0.0..1.0).contains(&momentum) || weight_decay.is_nan() || weight_decay < 0.0 {
                    return bad("momentum/weight_decay", "momentum in [0, 1), weight_decay >= 0");
                }
            }
        }
        Ok(())
    }
}

/// Optimizer state for one list of parameters.
pub struct Optimizer {
    config: OptimizerConfig,
    step: u64,
    /// First and second moment (Adam) or momentum buffer (SGD, second unused) per tensor.
    state: Vec<(Option<Tensor>, Option<Tensor>)>,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig, num_tensors: usize) -> Result<Self> {
        config.validate()?;
        Ok(Optimizer { config, step: 0, state: vec![(None, None); num_tensors] })
    }

    /// Returns the updated parameters, given the current ones and their gradients (same
    /// order at every call).
    pub fn update(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>> {
        if params.len() != self.state.len() || grads.len() != params.len() {
            return Err(Error::InvalidInput(
                "optimizer called with a different parameter list".into(),
            ));
        }
        self.step += 1;
        let mut out = Vec::with_capacity(params.len());
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let (a, b) = &self.state[i];
            let a = match a {
                Some(t) => t.clone(),
                None => p.zeros_like()?,
            };
            let b = match b {
                Some(t) => t.clone(),
                None => p.zeros_like()?,
            };
            let (np, na, nb) = if p.device().is_cpu() {
                match p.dtype() {
                    candle_core::DType::F32 => self.fused::<f32>(p, g, &a, &b)?,
                    candle_core::DType::F64 => self.fused::<f64>(p, g, &a, &b)?,
                    d => return Err(Error::InvalidInput(format!("cannot train {d:?} weights"))),
                }
            } else {
                self.generic(p, g, &a, &b)?
            };
            self.state[i] = (Some(na), Some(nb));
            out.push(np);
        }
        Ok(out)
    }

    fn fused<T: Element>(
        &self,
        p: &Tensor,
        g: &Tensor,
        a: &Tensor,
        b: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dims = p.dims().to_vec();
        let t = self.step as i32;
        let config = self.config.clone();
        cpu_slice::<T, _>(p, |p| {
            cpu_slice::<T, _>(g, |g| {
                cpu_slice::<T, _>(a, |a| {
                    cpu_slice::<T, _>(b, |b| {
                        let n = p.len();
                        let (mut np, mut na, mut nb) =
                            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                        let c = |v: f64| T::from(v).unwrap_or_else(T::zero);
                        match config {
                            OptimizerConfig::Adam { lr, beta1, beta2, eps, weight_decay } => {
                                let (b1, b2, wd, e) = (c(beta1), c(beta2), c(weight_decay), c(eps));
                                let (one_b1, one_b2) = (c(1.0 - beta1), c(1.0 - beta2));
                                let step_size = c(lr / (1.0 - beta1.powi(t)));
                                let bias2 = c((1.0 - beta2.powi(t)).sqrt());
                                for i in 0..n {
                                    let gi = g[i] + wd * p[i];
                                    let m = b1 * a[i] + one_b1 * gi;
                                    let v = b2 * b[i] + one_b2 * gi * gi;
                                    np.push(p[i] - step_size * m / (v.sqrt() / bias2 + e));
                                    na.push(m);
                                    nb.push(v);
                                }
                            }
                            OptimizerConfig::Sgd { lr, momentum, weight_decay } => {
                                let (mu, wd, lr) = (c(momentum), c(weight_decay), c(lr));
                                for i in 0..n {
                                    let gi = g[i] + wd * p[i];
                                    let buf = if t == 1 { gi } else { mu * a[i] + gi };
                                    np.push(p[i] - lr * buf);
                                    na.push(buf);
                                    nb.push(T::zero());
                                }
                            }
                        }
                        Ok((
                            from_cpu_vec(np, dims.clone())?,
                            from_cpu_vec(na, dims.clone())?,
                            from_cpu_vec(nb, dims.clone())?,
                        ))
                    })
                })
            })
        })
    }

    fn generic(
        &self,
        p: &Tensor,
        g: &Tensor,
        a: &Tensor,
        b: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let t = self.step as i32;
        match self.config {
            OptimizerConfig::Adam { lr, beta1, beta2, eps, weight_decay } => {
                let g = (g + p.affine(weight_decay, 0.0)?)?;
                let m = (a.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?;
                let v = (b.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
                let denom = v.sqrt()?.affine(1.0 / (1.0 - beta2.powi(t)).sqrt(), eps)?;
                let upd = (m.affine(lr / (1.0 - beta1.powi(t)), 0.0)? / denom)?;
                Ok(((p - upd)?, m, v))
            }
            OptimizerConfig::Sgd { lr, momentum, weight_decay } => {
                let g = (g + p.affine(weight_decay, 0.0)?)?;
                let buf = if t == 1 { g } else { (a.affine(momentum, 0.0)? + g)? };
                Ok(((p - buf.affine(lr, 0.0)?)?, buf, b.clone()))
            }
        }
    }
}
