//! Element-wise and reduction kernels of the hot paths (ReLU forward and vector-Jacobian
//! product, per-channel sums for bias gradients).
//!
//! candle 0.11's CPU versions of these are far slower than one pass over memory (measured
//! on [64, 32, 28, 28] f32, one thread: `sum((0, 2, 3))` ~50 ms, `gt + where_cond` ~15 ms,
//! `relu` ~7 ms), and the backward engine calls them on every node of every pass. On the
//! CPU these are single fused passes, parallel over blocks; elsewhere candle's ops.

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::{cpu_slice, from_cpu_vec, vec_written_by, Element};
use crate::{Error, Result};

/// Elements per parallel task: large enough to amortize scheduling.
const BLOCK: usize = 1 << 16;

fn on_cpu_float(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

fn map<T: Element>(x: &Tensor, f: impl Fn(T) -> T + Sync) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    cpu_slice::<T, _>(x, |x| {
        // SAFETY: the output and `x` are cut into the same blocks, and every element of every
        // output block is written from its input element.
        let out = unsafe {
            vec_written_by(x.len(), |out| {
                out.par_chunks_mut(BLOCK).zip(x.par_chunks(BLOCK)).for_each(|(o, x)| {
                    for (o, &v) in o.iter_mut().zip(x) {
                        o.write(f(v));
                    }
                })
            })
        };
        from_cpu_vec(out, dims)
    })
}

fn zip<T: Element>(x: &Tensor, g: &Tensor, f: impl Fn(T, T) -> T + Sync) -> Result<Tensor> {
    if x.dims() != g.dims() || x.dtype() != g.dtype() {
        return Err(Error::ShapeMismatch {
            context: "element-wise operands".into(),
            expected: x.dims().to_vec(),
            found: g.dims().to_vec(),
        });
    }
    let dims = x.dims().to_vec();
    cpu_slice::<T, _>(x, |x| {
        cpu_slice::<T, _>(g, |g| {
            // SAFETY: `x` and `g` have the output's length (checked above) and the same
            // blocks; every element of every output block is written.
            let out = unsafe {
                vec_written_by(x.len(), |out| {
                    let inputs = x.par_chunks(BLOCK).zip(g.par_chunks(BLOCK));
                    out.par_chunks_mut(BLOCK).zip(inputs).for_each(|(o, (x, g))| {
                        for ((o, &xv), &gv) in o.iter_mut().zip(x).zip(g) {
                            o.write(f(xv, gv));
                        }
                    })
                })
            };
            from_cpu_vec(out, dims)
        })
    })
}

/// `max(x, 0)`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    match (on_cpu_float(x), x.dtype()) {
        (true, DType::F32) => map::<f32>(x, |v| if v > 0.0 { v } else { 0.0 }),
        (true, _) => map::<f64>(x, |v| if v > 0.0 { v } else { 0.0 }),
        (false, _) => Ok(x.relu()?),
    }
}

/// `grad * [x > 0]`, the ReLU vector-Jacobian product (derivative 0 at 0, as PyTorch).
pub fn relu_vjp(x: &Tensor, grad: &Tensor) -> Result<Tensor> {
    leaky_relu_vjp(x, grad, 0.0)
}

/// `grad` where `x > 0`, `slope * grad` elsewhere.
pub fn leaky_relu_vjp(x: &Tensor, grad: &Tensor, slope: f64) -> Result<Tensor> {
    match (on_cpu_float(x) && grad.device().is_cpu(), x.dtype()) {
        (true, DType::F32) => {
            let s = slope as f32;
            zip::<f32>(x, grad, move |x, g| if x > 0.0 { g } else { s * g })
        }
        (true, _) => zip::<f64>(x, grad, move |x, g| if x > 0.0 { g } else { slope * g }),
        (false, _) => Ok(x.gt(0.0)?.where_cond(grad, &grad.affine(slope, 0.0)?)?),
    }
}

/// `max(grad, 0) * [x > 0]`: Guided Backprop's ReLU step (Springenberg et al. 2015), the
/// gradient masked by the forward activation and rectified, in one pass.
pub fn guided_relu_vjp(x: &Tensor, grad: &Tensor) -> Result<Tensor> {
    match (on_cpu_float(x) && grad.device().is_cpu(), x.dtype()) {
        (true, DType::F32) => zip::<f32>(x, grad, |x, g| if x > 0.0 && g > 0.0 { g } else { 0.0 }),
        (true, _) => zip::<f64>(x, grad, |x, g| if x > 0.0 && g > 0.0 { g } else { 0.0 }),
        (false, _) => {
            let positive = grad.maximum(0.0)?;
            Ok(x.gt(0.0)?.where_cond(&positive, &positive.zeros_like()?)?)
        }
    }
}

/// `x` where `x > 0`, `slope * x` elsewhere.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    match (on_cpu_float(x), x.dtype()) {
        (true, DType::F32) => {
            let s = slope as f32;
            map::<f32>(x, move |v| if v > 0.0 { v } else { s * v })
        }
        (true, _) => map::<f64>(x, move |v| if v > 0.0 { v } else { slope * v }),
        (false, _) => Ok(x.gt(0.0)?.where_cond(x, &x.affine(slope, 0.0)?)?),
    }
}

/// Sum of `[N, C, ...]` over every axis but 1: the bias gradient of a conv or linear layer.
pub fn sum_per_channel(t: &Tensor) -> Result<Tensor> {
    if t.rank() < 2 {
        return Err(Error::InvalidInput(format!(
            "sum_per_channel needs [N, C, ...], got {:?}",
            t.dims()
        )));
    }
    if !on_cpu_float(t) {
        let dims: Vec<usize> = (0..t.rank()).filter(|&d| d != 1).collect();
        return Ok(t.sum(dims)?);
    }
    match t.dtype() {
        DType::F32 => channel_sums::<f32>(t),
        _ => channel_sums::<f64>(t),
    }
}

fn channel_sums<T: Element>(t: &Tensor) -> Result<Tensor> {
    let (n, c) = (t.dims()[0], t.dims()[1]);
    let plane: usize = t.dims()[2..].iter().product();
    cpu_slice::<T, _>(t, |data| {
        // Each channel is summed in f64 in a fixed order (batch, then plane, in eight
        // interleaved partial sums that are combined in a fixed order), so the result does
        // not depend on the thread count. One running sum was latency-bound (one dependent
        // add per element).
        let sums: Vec<T> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let mut acc = [0f64; 8];
                for i in 0..n {
                    let start = (i * c + ch) * plane;
                    let values = &data[start..start + plane];
                    let mut lanes = values.chunks_exact(8);
                    for chunk in &mut lanes {
                        for (a, v) in acc.iter_mut().zip(chunk) {
                            *a += v.to_f64().unwrap_or(0.0);
                        }
                    }
                    for (a, v) in acc.iter_mut().zip(lanes.remainder()) {
                        *a += v.to_f64().unwrap_or(0.0);
                    }
                }
                let total = ((acc[0] + acc[1]) + (acc[2] + acc[3]))
                    + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                T::from(total).unwrap_or_else(T::zero)
            })
            .collect();
        from_cpu_vec(sums, c)
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn guided_vjp_masks_by_the_input_and_rectifies_the_gradient() {
        let x = Tensor::new(&[1.0f32, -1.0, 2.0, 0.0, 3.0], &candle_core::Device::Cpu).unwrap();
        let g = Tensor::new(&[0.5f32, 0.5, -0.5, 0.5, 0.0], &candle_core::Device::Cpu).unwrap();
        let out = guided_relu_vjp(&x, &g).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(out, vec![0.5, 0.0, 0.0, 0.0, 0.0]);
        let out64 =
            guided_relu_vjp(&x.to_dtype(DType::F64).unwrap(), &g.to_dtype(DType::F64).unwrap())
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
        assert_eq!(out64, vec![0.5, 0.0, 0.0, 0.0, 0.0]);
    }

    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], dims: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn relu_and_its_vjp() {
        let x = t(&[-1.0, 0.0, 2.0, -3.0], &[2, 2]);
        let g = t(&[10.0, 20.0, 30.0, 40.0], &[2, 2]);
        assert_eq!(
            relu(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 0.0, 2.0, 0.0]
        );
        // Derivative 0 at exactly 0.
        assert_eq!(
            relu_vjp(&x, &g).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 0.0, 30.0, 0.0]
        );
        assert_eq!(
            leaky_relu_vjp(&x, &g, 0.5).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [5.0, 10.0, 30.0, 20.0]
        );
        assert_eq!(
            leaky_relu(&x, 0.5).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [-0.5, 0.0, 2.0, -1.5]
        );
    }

    #[test]
    fn channel_sums_match_candle() {
        let x = Tensor::rand(-1f32, 1f32, (3, 4, 5, 6), &Device::Cpu).unwrap();
        let ours = sum_per_channel(&x).unwrap().to_vec1::<f32>().unwrap();
        let theirs =
            x.to_dtype(DType::F64).unwrap().sum((0, 2, 3)).unwrap().to_vec1::<f64>().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} {b}");
        }
        let y = Tensor::rand(-1f64, 1f64, (7, 3), &Device::Cpu).unwrap();
        let ours = sum_per_channel(&y).unwrap().to_vec1::<f64>().unwrap();
        let theirs = y.sum(0).unwrap().to_vec1::<f64>().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!(sum_per_channel(&t(&[1.0], &[1])).is_err());
    }
}
