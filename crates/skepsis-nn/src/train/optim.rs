//! Optimizers over the model's trainable tensors: Adam (Kingma & Ba, 2015) and SGD with
//! momentum, with PyTorch's update formulas. On the CPU each update is one fused pass over
//! the parameter, its gradient and the optimizer state.

use std::mem::MaybeUninit;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use rayon::prelude::*;

use crate::ops::{cpu_slice, from_cpu_vec, vec_written_by, Element};
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
    state: Vec<Moments>,
}

/// The state of one tensor: host vectors updated in place on the CPU (no allocation per
/// step), tensors elsewhere.
enum Moments {
    Empty,
    F32(Vec<f32>, Vec<f32>),
    F64(Vec<f64>, Vec<f64>),
    Device(Tensor, Tensor),
}

/// Elements per parallel task of the fused update.
const BLOCK: usize = 1 << 15;

impl Optimizer {
    pub fn new(config: OptimizerConfig, num_tensors: usize) -> Result<Self> {
        config.validate()?;
        let state = (0..num_tensors).map(|_| Moments::Empty).collect();
        Ok(Optimizer { config, step: 0, state })
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
            let n = p.elem_count();
            let cpu = p.device().is_cpu();
            let state = std::mem::replace(&mut self.state[i], Moments::Empty);
            let (np, state) = match (state, p.dtype()) {
                (Moments::Empty, candle_core::DType::F32) if cpu => {
                    self.fused::<f32>(p, g, vec![0.0; n], vec![0.0; n], Moments::F32)?
                }
                (Moments::F32(a, b), _) => self.fused::<f32>(p, g, a, b, Moments::F32)?,
                (Moments::Empty, candle_core::DType::F64) if cpu => {
                    self.fused::<f64>(p, g, vec![0.0; n], vec![0.0; n], Moments::F64)?
                }
                (Moments::F64(a, b), _) => self.fused::<f64>(p, g, a, b, Moments::F64)?,
                (Moments::Empty, d) if cpu => {
                    return Err(Error::InvalidInput(format!("cannot train {d:?} weights")))
                }
                (Moments::Empty, _) => {
                    let (a, b) = (p.zeros_like()?, p.zeros_like()?);
                    let (np, na, nb) = self.generic(p, g, &a, &b)?;
                    (np, Moments::Device(na, nb))
                }
                (Moments::Device(a, b), _) => {
                    let (np, na, nb) = self.generic(p, g, &a, &b)?;
                    (np, Moments::Device(na, nb))
                }
            };
            self.state[i] = state;
            out.push(np);
        }
        Ok(out)
    }

    /// One fused pass on the CPU, parallel over blocks and vectorizable: the new parameter
    /// (a new tensor) and the moments `a`, `b` updated in place.
    fn fused<T: Element>(
        &self,
        p: &Tensor,
        g: &Tensor,
        mut a: Vec<T>,
        mut b: Vec<T>,
        wrap: fn(Vec<T>, Vec<T>) -> Moments,
    ) -> Result<(Tensor, Moments)> {
        let dims = p.dims().to_vec();
        let t = self.step as i32;
        let c = |v: f64| T::from(v).unwrap_or_else(T::zero);
        let new_p = cpu_slice::<T, _>(p, |p| {
            cpu_slice::<T, _>(g, |g| {
                if g.len() != p.len() || a.len() != p.len() || b.len() != p.len() {
                    return Err(Error::InvalidInput(format!(
                        "gradient of {} elements for a parameter of {}",
                        g.len(),
                        p.len()
                    )));
                }
                let update = |np: &mut [MaybeUninit<T>], a: &mut [T], b: &mut [T]| {
                    let blocks = np
                        .par_chunks_mut(BLOCK)
                        .zip(p.par_chunks(BLOCK).zip(g.par_chunks(BLOCK)))
                        .zip(a.par_chunks_mut(BLOCK).zip(b.par_chunks_mut(BLOCK)));
                    match self.config {
                        OptimizerConfig::Adam { lr, beta1, beta2, eps, weight_decay } => {
                            let (b1, b2, wd, e) = (c(beta1), c(beta2), c(weight_decay), c(eps));
                            let (one_b1, one_b2) = (c(1.0 - beta1), c(1.0 - beta2));
                            let step_size = c(lr / (1.0 - beta1.powi(t)));
                            let bias2 = c((1.0 - beta2.powi(t)).sqrt());
                            // Gradients whose `(1 - b2) g^2` is subnormal add nothing to `v`.
                            let square_floor = (T::min_positive_value() / one_b2).sqrt();
                            blocks.for_each(|((np, (p, g)), (a, b))| {
                                let lanes = np.iter_mut().zip(p).zip(g).zip(a.iter_mut().zip(b));
                                for (((np, &p), &g), (a, b)) in lanes {
                                    let gi = g + wd * p;
                                    let m = flush_subnormal(b1 * *a + one_b1 * gi);
                                    let gs = flush_below(gi, square_floor);
                                    let v = flush_subnormal(b2 * *b + one_b2 * gs * gs);
                                    // PyTorch's order (`addcdiv`): m / denom, then the step.
                                    np.write(p - step_size * (m / (v.sqrt() / bias2 + e)));
                                    *a = m;
                                    *b = v;
                                }
                            });
                        }
                        OptimizerConfig::Sgd { lr, momentum, weight_decay } => {
                            let (mu, wd, lr) = (c(momentum), c(weight_decay), c(lr));
                            let first = t == 1;
                            blocks.for_each(|((np, (p, g)), (a, _))| {
                                let lanes = np.iter_mut().zip(p).zip(g).zip(a.iter_mut());
                                for (((np, &p), &g), a) in lanes {
                                    let gi = g + wd * p;
                                    let buf =
                                        flush_subnormal(if first { gi } else { mu * *a + gi });
                                    np.write(p - lr * buf);
                                    *a = buf;
                                }
                            });
                        }
                    }
                };
                // SAFETY: `p`, `g`, `a` and `b` have the new parameter's length (checked
                // above) and the same blocks, and both updates write every element.
                let np = unsafe { vec_written_by(p.len(), |np| update(np, &mut a, &mut b)) };
                from_cpu_vec(np, dims)
            })
        })?;
        Ok((new_p, wrap(a, b)))
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

/// `x`, or zero when `x` is subnormal.
///
/// The optimizer state is kept free of subnormal numbers: x86 CPUs take a microcode assist
/// (on the order of a hundred cycles) for every subnormal operand or result. Moments of
/// weights whose gradients vanish decay geometrically into the subnormal range and stay there
/// for thousands of steps; on the SC MNIST CNN an epoch of Adam slowed from 32 to 50-66 ms
/// per step once they did. A subnormal moment changes an update by less than `1e-30` of the
/// learning rate (Adam divides by `sqrt(v) + eps`), so storing zero instead is invisible in
/// the weights; it is what flush-to-zero mode (TensorFlow's default on CPUs) would do, without
/// changing the thread's floating-point environment.
#[inline(always)]
fn flush_subnormal<T: Element>(x: T) -> T {
    flush_below(x, T::min_positive_value())
}

/// `x`, or zero when `|x| < floor` (written as a select, so that it vectorizes).
#[inline(always)]
fn flush_below<T: Element>(x: T, floor: T) -> T {
    if x.abs() < floor {
        T::zero()
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::*;

    /// PyTorch's Adam (no AMSGrad) and SGD-with-momentum updates written out in f64.
    fn reference(config: &OptimizerConfig, p0: &[f64], grads: &[Vec<f64>]) -> Vec<f64> {
        let mut p = p0.to_vec();
        let (mut a, mut b) = (vec![0.0; p.len()], vec![0.0; p.len()]);
        for (t, g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            for i in 0..p.len() {
                match *config {
                    OptimizerConfig::Adam { lr, beta1, beta2, eps, weight_decay } => {
                        let gi = g[i] + weight_decay * p[i];
                        a[i] = beta1 * a[i] + (1.0 - beta1) * gi;
                        b[i] = beta2 * b[i] + (1.0 - beta2) * gi * gi;
                        let denom = b[i].sqrt() / (1.0 - beta2.powi(t)).sqrt() + eps;
                        p[i] -= lr / (1.0 - beta1.powi(t)) * a[i] / denom;
                    }
                    OptimizerConfig::Sgd { lr, momentum, weight_decay } => {
                        let gi = g[i] + weight_decay * p[i];
                        a[i] = if t == 1 { gi } else { momentum * a[i] + gi };
                        p[i] -= lr * a[i];
                    }
                }
            }
        }
        p
    }

    fn run(config: &OptimizerConfig, dtype: DType, n: usize) -> (Vec<f64>, Vec<f64>) {
        let value = |i: usize, k: usize| ((i * 7919 + k * 104_729) % 1000) as f64 / 250.0 - 2.0;
        let p0: Vec<f64> = (0..n).map(|i| value(i, 0)).collect();
        let grads: Vec<Vec<f64>> = (1..4).map(|k| (0..n).map(|i| value(i, k)).collect()).collect();
        let tensor = |v: &[f64]| Tensor::new(v, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
        let mut opt = Optimizer::new(config.clone(), 1).unwrap();
        let mut p = tensor(&p0);
        for g in &grads {
            p = opt.update(&[p], &[tensor(g)]).unwrap().remove(0);
        }
        let got = p.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
        (got, reference(config, &p0, &grads))
    }

    #[test]
    fn updates_match_pytorchs_formulas_in_both_precisions_and_across_blocks() {
        let configs = [
            OptimizerConfig::Adam {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
            },
            OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, weight_decay: 1e-3 },
        ];
        for config in &configs {
            // More elements than one parallel block, so that blocks meet in the middle.
            for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
                let (got, want) = run(config, dtype, BLOCK + 37);
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(worst < tol, "{config:?} {dtype:?}: max error {worst:e}");
            }
        }
    }

    /// Every moment of the optimizer, as f64.
    fn moments(opt: &Optimizer) -> Vec<f64> {
        let mut all = Vec::new();
        for m in &opt.state {
            match m {
                Moments::F32(a, b) => all.extend(a.iter().chain(b).map(|&v| v as f64)),
                Moments::F64(a, b) => all.extend(a.iter().chain(b)),
                _ => panic!("expected host moments"),
            }
        }
        all
    }

    #[test]
    fn moments_never_hold_subnormal_numbers_and_the_weights_still_match_the_reference() {
        // Gradients of 1e-20 make (1 - b2) g^2 = 1e-43, subnormal in f32; then zero gradients
        // let both moments decay through the subnormal range (0.9^700 * 1e-21 < 1e-38).
        let n = 5;
        let p0 = vec![0.5; n];
        let mut grads = vec![vec![1e-20; n]; 3];
        grads.extend(std::iter::repeat_n(vec![0.0; n], 700));
        let configs = [
            OptimizerConfig::adam(1e-3),
            OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, weight_decay: 0.0 },
        ];
        for config in &configs {
            let mut opt = Optimizer::new(config.clone(), 1).unwrap();
            let tensor =
                |v: &[f64]| Tensor::new(v, &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
            let mut p = tensor(&p0);
            let mut saw_tiny = false;
            for g in &grads {
                p = opt.update(&[p], &[tensor(g)]).unwrap().remove(0);
                let state = moments(&opt);
                assert!(
                    state.iter().all(|v| *v == 0.0 || v.abs() >= f32::MIN_POSITIVE as f64),
                    "{config:?}: a subnormal moment in {state:?}"
                );
                saw_tiny |= state.iter().any(|v| *v != 0.0 && v.abs() < 1e-30);
            }
            assert!(saw_tiny, "{config:?}: the moments never came near the subnormal range");
            assert!(moments(&opt).iter().all(|v| *v == 0.0), "{config:?}: moments not flushed");
            let got = p.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
            let want = reference(config, &p0, &grads);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{config:?}: {a} vs reference {b}");
            }
        }
    }

    #[test]
    fn a_changed_parameter_list_is_an_error() {
        let mut opt = Optimizer::new(OptimizerConfig::adam(1e-3), 2).unwrap();
        let t = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        assert!(opt.update(std::slice::from_ref(&t), std::slice::from_ref(&t)).is_err());
        let long = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        let mut one = Optimizer::new(OptimizerConfig::adam(1e-3), 1).unwrap();
        assert!(one.update(&[t], &[long]).is_err());
    }
}
