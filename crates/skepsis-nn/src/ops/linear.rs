//! The fully connected layer `y = x Wᵀ + b`: forward, input vector-Jacobian product and weight
//! gradient.
//!
//! On the CPU all three are one `par_matmul` (`ops::matmul`) on the operands' own storage (the
//! transposes are strides; only a forward pass on a batch smaller than the layer's output
//! computes `yᵀ` and transposes it, see `forward_cpu`); candle 0.11's `matmul` asks `gemm` to
//! parallelise itself, which on the SC CNN's `[64, 3136] x [3136, 1024]` layer was slower on
//! two threads than on one (9.0 against 5.4 ms per forward pass). On other devices candle's
//! `matmul`.

use std::mem::MaybeUninit;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::conv::{float_dtype, same_kind};
use super::matmul::{par_matmul, par_matmul_new, Mat};
use super::{cpu_slice, from_cpu_vec, vec_written_by, Element};
use crate::{Error, Result};

/// `y = x Wᵀ + b` for `x` `[N, in]`, `weight` `[out, in]` and `bias` `[out]`; the result is
/// `[N, out]`. All operands share one device and one dtype (F32 or F64).
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    const CTX: &str = "linear";
    let (n, out, inp) = dims(CTX, x, weight)?;
    same_kind(CTX, "weight", x, weight)?;
    if let Some(b) = bias {
        same_kind(CTX, "bias", x, b)?;
        if b.dims() != [out] {
            return Err(Error::ShapeMismatch {
                context: format!("{CTX}: bias"),
                expected: vec![out],
                found: b.dims().to_vec(),
            });
        }
    }
    if !x.device().is_cpu() {
        let y = x.matmul(&weight.t()?)?;
        return Ok(match bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        });
    }
    match float_dtype(CTX, "input", x)? {
        DType::F32 => forward_cpu::<f32>(x, weight, bias, [n, out, inp]),
        _ => forward_cpu::<f64>(x, weight, bias, [n, out, inp]),
    }
}

/// Input vector-Jacobian product of [`linear`]: `x̄ = ȳ W` for `grad_out` `[N, out]` and
/// `weight` `[out, in]`; the result is `[N, in]`.
pub fn linear_input_vjp(grad_out: &Tensor, weight: &Tensor) -> Result<Tensor> {
    const CTX: &str = "linear_input_vjp";
    let (n, out, inp) = grad_dims(CTX, grad_out, weight)?;
    if !grad_out.device().is_cpu() {
        return Ok(grad_out.matmul(weight)?);
    }
    let strides = [[out, 1], [inp, 1]];
    match float_dtype(CTX, "grad_out", grad_out)? {
        DType::F32 => product::<f32>(grad_out, weight, [n, inp, out], strides),
        _ => product::<f64>(grad_out, weight, [n, inp, out], strides),
    }
}

/// Weight vector-Jacobian product of [`linear`]: `W̄ = ȳᵀ x`, summed over the batch, for
/// `grad_out` `[N, out]` and the layer's input `x` `[N, in]`; the result is `[out, in]`. The
/// bias gradient is not included (it is `grad_out` summed over `N`).
pub fn linear_weight_vjp(grad_out: &Tensor, x: &Tensor) -> Result<Tensor> {
    const CTX: &str = "linear_weight_vjp";
    let (n, out, inp) = match (grad_out.dims(), x.dims()) {
        (&[n, out], &[nx, inp]) if n == nx => (n, out, inp),
        _ => {
            return Err(Error::InvalidInput(format!(
                "{CTX}: needs grad_out [N, out] and input [N, in], found {:?} and {:?}",
                grad_out.dims(),
                x.dims()
            )))
        }
    };
    same_kind(CTX, "input", grad_out, x)?;
    if !grad_out.device().is_cpu() {
        return Ok(grad_out.t()?.matmul(x)?);
    }
    // ȳᵀ is ȳ read with swapped strides.
    let strides = [[1, out], [inp, 1]];
    match float_dtype(CTX, "grad_out", grad_out)? {
        DType::F32 => product::<f32>(grad_out, x, [out, inp, n], strides),
        _ => product::<f64>(grad_out, x, [out, inp, n], strides),
    }
}

/// `(N, out, in)` of a forward pass, checking ranks and the shared `in`.
fn dims(ctx: &str, x: &Tensor, weight: &Tensor) -> Result<(usize, usize, usize)> {
    match (x.dims(), weight.dims()) {
        (&[n, inp], &[out, w_in]) if inp == w_in => Ok((n, out, inp)),
        (_, &[_, w_in]) => Err(Error::ShapeMismatch {
            context: format!("{ctx}: input [N, in_features]"),
            expected: vec![x.dims().first().copied().unwrap_or(0), w_in],
            found: x.dims().to_vec(),
        }),
        _ => Err(Error::InvalidInput(format!(
            "{ctx}: the weight must be [out, in], found shape {:?}",
            weight.dims()
        ))),
    }
}

/// `(N, out, in)` of an input VJP, checking that `grad_out` is `[N, out]`.
fn grad_dims(ctx: &str, grad_out: &Tensor, weight: &Tensor) -> Result<(usize, usize, usize)> {
    same_kind(ctx, "weight", grad_out, weight)?;
    match (grad_out.dims(), weight.dims()) {
        (&[n, g_out], &[out, inp]) if g_out == out => Ok((n, out, inp)),
        _ => Err(Error::InvalidInput(format!(
            "{ctx}: needs grad_out [N, out] and weight [out, in], found {:?} and {:?}",
            grad_out.dims(),
            weight.dims()
        ))),
    }
}

/// `y = x Wᵀ + b` on the CPU. `gemm` lays its register tiles along the unit-stride side of the
/// output and packs the operand that feeds them unless it is already laid out that way: for a
/// row-major `y` that is `W`, packed in full on every call. When the batch is smaller than the
/// layer's output (`n < out`, so `x` is the smaller operand) the product is taken as
/// `yᵀ = W xᵀ` instead, which packs `x` and reads `W` in place, and transposed into `y` with
/// the bias added: the SC CNN's fc1 (`[64, 3136] x [3136, 1024]`) went from 5.0 to 2.9 ms per
/// forward pass on one thread, transposition included.
fn forward_cpu<T: Element>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    [n, out, inp]: [usize; 3],
) -> Result<Tensor> {
    let bias: Option<Vec<T>> =
        bias.map(|b| cpu_slice::<T, _>(b, |s| Ok(s.to_vec()))).transpose()?;
    let y = cpu_slice::<T, _>(x, |xs| {
        cpu_slice::<T, _>(weight, |ws| {
            if n < out {
                // yᵀ = W xᵀ, xᵀ being x read with swapped strides.
                let (w, xt) = (Mat { data: ws, rs: inp, cs: 1 }, Mat { data: xs, rs: 1, cs: inp });
                let yt = par_matmul_new(out, n, inp, w, xt);
                return Ok(transpose_add_bias(&yt, n, out, bias.as_deref()));
            }
            // Wᵀ is W read with swapped strides.
            let lhs = Mat { data: xs, rs: inp, cs: 1 };
            let rhs = Mat { data: ws, rs: 1, cs: inp };
            Ok(match &bias {
                // Writing the bias first lets gemm accumulate onto it instead of a second pass.
                Some(b) => {
                    let mut y = b.repeat(n);
                    par_matmul(n, out, inp, &mut y, true, lhs, rhs);
                    y
                }
                None => par_matmul_new(n, out, inp, lhs, rhs),
            })
        })
    })?;
    from_cpu_vec(y, (n, out))
}

/// `y[i, j] = yt[j, i] + bias[j]` for `yt` `[out, n]`: the `[n, out]` transpose, biased.
fn transpose_add_bias<T: Element>(yt: &[T], n: usize, out: usize, bias: Option<&[T]>) -> Vec<T> {
    let write = |y: &mut [MaybeUninit<T>]| {
        y.par_chunks_mut(out.max(1)).enumerate().for_each(|(i, row)| {
            for (j, d) in row.iter_mut().enumerate() {
                d.write(yt[j * n + i] + bias.map_or(T::zero(), |b| b[j]));
            }
        })
    };
    // SAFETY: the rows cover the `n x out` output and every element of every row is written.
    unsafe { vec_written_by(n * out, write) }
}

/// `[m, n_cols]` result of `a · b` with inner dimension `k`, each operand read with its
/// `[row, column]` strides.
fn product<T: Element>(
    a: &Tensor,
    b: &Tensor,
    [m, n_cols, k]: [usize; 3],
    [[a_rs, a_cs], [b_rs, b_cs]]: [[usize; 2]; 2],
) -> Result<Tensor> {
    let dst = cpu_slice::<T, _>(a, |a| {
        cpu_slice::<T, _>(b, |b| {
            let (lhs, rhs) =
                (Mat { data: a, rs: a_rs, cs: a_cs }, Mat { data: b, rs: b_rs, cs: b_cs });
            Ok(par_matmul_new(m, n_cols, k, lhs, rhs))
        })
    })?;
    from_cpu_vec(dst, (m, n_cols))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn ramp(dims: &[usize], scale: f64) -> Tensor {
        let n: usize = dims.iter().product();
        let data: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 * scale - 0.5).collect();
        Tensor::from_vec(data, dims, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.dims(), b.dims());
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    /// The three products against candle's `matmul` on explicit transposes, in float64, on a
    /// layer wide enough for the column cut and one narrow enough for the row cut.
    #[test]
    fn forward_and_both_vjps_match_candle() {
        // n < out takes the transposed product (a column cut, then a row cut inside
        // `par_matmul`); n >= out the direct one.
        for (n, inp, out) in [(5, 300, 700), (130, 70, 3), (150, 90, 400), (40, 20, 40)] {
            let x = ramp(&[n, inp], 0.01);
            let w = ramp(&[out, inp], 0.013);
            let b = ramp(&[out], 0.1);
            let g = ramp(&[n, out], 0.007);
            let y = linear(&x, &w, Some(&b)).unwrap();
            let expected = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
            assert!(max_diff(&y, &expected) < 1e-9);
            let y0 = linear(&x, &w, None).unwrap();
            assert!(max_diff(&y0, &x.matmul(&w.t().unwrap()).unwrap()) < 1e-9);
            let dx = linear_input_vjp(&g, &w).unwrap();
            assert!(max_diff(&dx, &g.matmul(&w).unwrap()) < 1e-9);
            let dw = linear_weight_vjp(&g, &x).unwrap();
            assert!(max_diff(&dw, &g.t().unwrap().matmul(&x).unwrap()) < 1e-9);
        }
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let x = ramp(&[4, 3], 0.1);
        let w = ramp(&[5, 2], 0.1);
        assert!(linear(&x, &w, None).is_err());
        assert!(linear(&x, &ramp(&[5, 3], 0.1), Some(&ramp(&[4], 0.1))).is_err());
        assert!(linear_input_vjp(&ramp(&[4, 4], 0.1), &w).is_err());
        assert!(linear_weight_vjp(&ramp(&[3, 5], 0.1), &x).is_err());
        assert!(linear(&x.to_dtype(DType::F32).unwrap(), &ramp(&[5, 3], 0.1), None).is_err());
    }
}
