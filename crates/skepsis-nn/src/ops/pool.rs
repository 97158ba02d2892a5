//! 2-D pooling: max, average and adaptive average, forward and vector-Jacobian product.
//!
//! All inputs are NCHW; every `(n, c)` plane is pooled independently, and the CPU kernels run
//! the planes in parallel with rayon. Windows follow PyTorch's floor mode: output `i` covers the
//! padded rows `i*sh .. i*sh + kh`, i.e. input rows `i*sh − top .. i*sh − top + kh` clipped to
//! the input.
//!
//! * Max pooling treats padding as negative infinity (padding never wins). Its VJP routes each
//!   output's gradient to the FIRST maximal input of the window in row-major order (PyTorch's
//!   choice), recomputing that argmax from the input; overlapping windows accumulate. A NaN in
//!   a window is its maximum (the first NaN, as NaN propagates through PyTorch's max pool).
//! * Average pooling pads with zeros; the divisor is `kh * kw` with `count_include_pad`
//!   (PyTorch's default), otherwise the number of in-bounds elements of the window.
//! * Adaptive average pooling uses PyTorch's bins: output row `i` of `OH` averages input rows
//!   `floor(i*H/OH) .. ceil((i+1)*H/OH)` (likewise for columns).
//!
//! Every padding side must be smaller than the kernel along its axis, so every window holds at
//! least one input element (PyTorch is stricter: at most half the kernel).
//!
//! On non-CPU devices the operands are copied to the CPU, pooled here and copied back (pooling
//! is cheap next to the convolutions around it, and candle's max-pool backward is wrong).

use std::mem::MaybeUninit;

use candle_core::{DType, Device, Tensor};
use num_traits::Float;
use rayon::prelude::*;

use super::conv::{float_dtype, same_kind};
use super::routed::Routes;
use super::{
    cpu_slice, fill_rows_init, from_cpu_vec, vec_written_by, Element, Padding2d, Pool2dSpec,
};
use crate::{Error, Result};

/// Max pooling: `y[n,c,i,j] = max_{(h,w) in window(i,j), inside the input} x[n,c,h,w]`.
///
/// `x` is `[N, C, H, W]` (F32 or F64); the result is `[N, C, OH, OW]` with
/// `[OH, OW] = spec.output_hw([H, W])`. `spec.count_include_pad` is ignored. Errors: wrong
/// rank, empty spatial input, zero kernel or stride, a padding side not smaller than the
/// kernel, a window larger than the padded input, another dtype.
pub fn max_pool2d(x: &Tensor, spec: &Pool2dSpec) -> Result<Tensor> {
    max_pool("max_pool2d", x, spec, PoolKind::Max)
}

/// `max_pool2d(relu(z), spec)` in one pass over `z`, element for element the same values
/// (each element is rectified before the window's maximum is taken, so a NaN, which the ReLU
/// maps to 0, never wins). A forward pass that keeps no intermediate values uses it where a
/// ReLU feeds only a max pool: the ReLU's output, the size of `z`, is never written.
pub fn max_pool2d_of_relu(z: &Tensor, spec: &Pool2dSpec) -> Result<Tensor> {
    max_pool("max_pool2d_of_relu", z, spec, PoolKind::MaxOfRelu)
}

fn max_pool(ctx: &str, x: &Tensor, spec: &Pool2dSpec, kind: PoolKind) -> Result<Tensor> {
    let g = PoolGeom::windowed(ctx, x.dims(), spec)?;
    let dtype = float_dtype(ctx, "input", x)?;
    if !x.device().is_cpu() {
        return back_to(max_pool(ctx, &to_cpu(x)?, spec, kind)?, x.device());
    }
    match dtype {
        DType::F32 => pool_forward::<f32>(x, &g, kind),
        _ => pool_forward::<f64>(x, &g, kind),
    }
}

/// Vector-Jacobian product of [`max_pool2d`]: `x̄[n,c,h,w] = Σ_{(i,j) : argmax(i,j) = (h,w)}
/// grad_out[n,c,i,j]`, where `argmax(i,j)` is the first maximal in-bounds element of window
/// `(i, j)` in row-major order, recomputed from `x`.
///
/// `x` is the pooling input `[N, C, H, W]`, `grad_out` is `[N, C, OH, OW]` with the same dtype
/// and device; the result has the shape of `x`. Overlapping windows accumulate.
pub fn max_pool2d_vjp(x: &Tensor, grad_out: &Tensor, spec: &Pool2dSpec) -> Result<Tensor> {
    max_pool_vjp("max_pool2d_vjp", x, grad_out, spec, false)
}

/// Vector-Jacobian product of `max_pool2d(relu(z))` with respect to `z`, in one pass: the
/// VJP of [`max_pool2d`] followed by the ReLU's (`ḡ` where `z > 0`, `0 · ḡ` elsewhere), given
/// the pooling input `x = relu(z)` (`x > 0` exactly where `z > 0`).
///
/// The result equals `relu_vjp(z, max_pool2d_vjp(x, grad_out, spec))` value for value; the
/// backward walk uses it where a ReLU feeds only a max pool and both take the gradient rule,
/// which saves the ReLU's pass over the pooling input's gradient (the largest activation of
/// a CNN: the SC CNN's first layer, 6 MB per 64 images). Arguments and errors as
/// [`max_pool2d_vjp`].
pub fn max_pool2d_relu_vjp(x: &Tensor, grad_out: &Tensor, spec: &Pool2dSpec) -> Result<Tensor> {
    max_pool_vjp("max_pool2d_relu_vjp", x, grad_out, spec, true)
}

/// [`max_pool2d_vjp`], followed by the ReLU's VJP with `relu`: checks, then the CPU kernel
/// (operands on another device are copied to the CPU and back).
fn max_pool_vjp(
    ctx: &str,
    x: &Tensor,
    grad_out: &Tensor,
    spec: &Pool2dSpec,
    relu: bool,
) -> Result<Tensor> {
    let g = PoolGeom::windowed(ctx, x.dims(), spec)?;
    let dtype = float_dtype(ctx, "input", x)?;
    same_kind(ctx, "grad_out", x, grad_out)?;
    g.check_grad_out(ctx, grad_out)?;
    if !x.device().is_cpu() {
        let dx = max_pool_vjp(ctx, &to_cpu(x)?, &to_cpu(grad_out)?, spec, relu)?;
        return back_to(dx, x.device());
    }
    match dtype {
        DType::F32 => max_pool_vjp_cpu::<f32>(x, grad_out, &g, relu),
        _ => max_pool_vjp_cpu::<f64>(x, grad_out, &g, relu),
    }
}

/// Average pooling: `y[n,c,i,j] = (Σ_{(h,w) in window(i,j), inside the input} x[n,c,h,w]) / d`
/// with `d = kh * kw` when `spec.count_include_pad` (zeros padded in) and otherwise the number
/// of in-bounds elements of the window.
///
/// `x` is `[N, C, H, W]` (F32 or F64); the result is `[N, C, OH, OW]`. Errors as
/// [`max_pool2d`].
pub fn avg_pool2d(x: &Tensor, spec: &Pool2dSpec) -> Result<Tensor> {
    const CTX: &str = "avg_pool2d";
    let g = PoolGeom::windowed(CTX, x.dims(), spec)?;
    let dtype = float_dtype(CTX, "input", x)?;
    if !x.device().is_cpu() {
        return back_to(avg_pool2d(&to_cpu(x)?, spec)?, x.device());
    }
    match dtype {
        DType::F32 => pool_forward::<f32>(x, &g, PoolKind::Avg),
        _ => pool_forward::<f64>(x, &g, PoolKind::Avg),
    }
}

/// Vector-Jacobian product of [`avg_pool2d`]: `x̄[n,c,h,w] = Σ_{(i,j) : (h,w) in window(i,j)}
/// grad_out[n,c,i,j] / d(i,j)` with the divisor `d` of the forward pass.
///
/// `grad_out` is `[N, C, OH, OW]` (F32 or F64) and must match the output shape for
/// `input_dims` (`[N, C, H, W]`); the result has shape `input_dims`.
pub fn avg_pool2d_vjp(
    grad_out: &Tensor,
    input_dims: &[usize],
    spec: &Pool2dSpec,
) -> Result<Tensor> {
    const CTX: &str = "avg_pool2d_vjp";
    let g = PoolGeom::windowed(CTX, input_dims, spec)?;
    let dtype = float_dtype(CTX, "grad_out", grad_out)?;
    g.check_grad_out(CTX, grad_out)?;
    if !grad_out.device().is_cpu() {
        return back_to(avg_pool2d_vjp(&to_cpu(grad_out)?, input_dims, spec)?, grad_out.device());
    }
    match dtype {
        DType::F32 => spread_vjp_cpu::<f32>(grad_out, &g),
        _ => spread_vjp_cpu::<f64>(grad_out, &g),
    }
}

/// Adaptive average pooling to `output_hw = [OH, OW]` (PyTorch's `adaptive_avg_pool2d`):
/// `y[n,c,i,j]` is the mean of `x[n,c,h,w]` over rows `floor(i*H/OH) <= h < ceil((i+1)*H/OH)`
/// and columns `floor(j*W/OW) <= w < ceil((j+1)*W/OW)`.
///
/// `x` is `[N, C, H, W]` (F32 or F64) with `H, W >= 1`; `OH` and `OW` must be at least 1 (they
/// may exceed `H` and `W`, bins then repeat input elements).
pub fn adaptive_avg_pool2d(x: &Tensor, output_hw: [usize; 2]) -> Result<Tensor> {
    const CTX: &str = "adaptive_avg_pool2d";
    let g = PoolGeom::adaptive(CTX, x.dims(), output_hw)?;
    let dtype = float_dtype(CTX, "input", x)?;
    if !x.device().is_cpu() {
        return back_to(adaptive_avg_pool2d(&to_cpu(x)?, output_hw)?, x.device());
    }
    match dtype {
        DType::F32 => pool_forward::<f32>(x, &g, PoolKind::Avg),
        _ => pool_forward::<f64>(x, &g, PoolKind::Avg),
    }
}

/// Vector-Jacobian product of [`adaptive_avg_pool2d`]: every input element of bin `(i, j)`
/// receives `grad_out[n,c,i,j] / |bin(i,j)|` (summed over the bins that contain it).
///
/// `grad_out` is `[N, C, OH, OW]` with `[OH, OW] = output_hw`; the result has shape
/// `input_dims` (`[N, C, H, W]`).
pub fn adaptive_avg_pool2d_vjp(
    grad_out: &Tensor,
    input_dims: &[usize],
    output_hw: [usize; 2],
) -> Result<Tensor> {
    const CTX: &str = "adaptive_avg_pool2d_vjp";
    let g = PoolGeom::adaptive(CTX, input_dims, output_hw)?;
    let dtype = float_dtype(CTX, "grad_out", grad_out)?;
    g.check_grad_out(CTX, grad_out)?;
    if !grad_out.device().is_cpu() {
        let dx = adaptive_avg_pool2d_vjp(&to_cpu(grad_out)?, input_dims, output_hw)?;
        return back_to(dx, grad_out.device());
    }
    match dtype {
        DType::F32 => spread_vjp_cpu::<f32>(grad_out, &g),
        _ => spread_vjp_cpu::<f64>(grad_out, &g),
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------------------------

/// How the windows are laid out.
#[derive(Clone, Copy, Debug)]
enum Windows {
    /// Fixed kernel, stride and padding (top, left), plus the average divisor rule.
    Sliding {
        kh: usize,
        kw: usize,
        sh: usize,
        sw: usize,
        top: usize,
        left: usize,
        include_pad: bool,
    },
    /// PyTorch's adaptive bins.
    Adaptive,
}

/// The validated geometry of one pooling operation.
#[derive(Clone, Copy, Debug)]
struct PoolGeom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    windows: Windows,
    /// 2x2 window, stride 2, no padding: the fast max-pool path applies.
    plain_2x2: bool,
}

/// An in-bounds window: input rows `r0..r1`, columns `c0..c1` (never empty).
#[derive(Clone, Copy, Debug)]
struct Window {
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolKind {
    Max,
    /// The maximum of the rectified elements ([`max_pool2d_of_relu`]).
    MaxOfRelu,
    Avg,
}

fn rank4(ctx: &str, dims: &[usize]) -> Result<[usize; 4]> {
    match *dims {
        [n, c, h, w] => {
            if h == 0 || w == 0 {
                return Err(Error::InvalidInput(format!(
                    "{ctx}: the input has an empty spatial extent (shape {dims:?})"
                )));
            }
            Ok([n, c, h, w])
        }
        _ => Err(Error::InvalidInput(format!(
            "{ctx}: the input must have rank 4 [N, C, H, W], found shape {dims:?}"
        ))),
    }
}

impl PoolGeom {
    fn windowed(ctx: &str, dims: &[usize], spec: &Pool2dSpec) -> Result<Self> {
        let [n, c, h, w] = rank4(ctx, dims)?;
        let [kh, kw] = spec.kernel;
        if kh == 0 || kw == 0 {
            return Err(Error::parameter(ctx, "kernel", "must be at least 1 on both axes"));
        }
        if spec.stride.contains(&0) {
            return Err(Error::parameter(ctx, "stride", "must be at least 1 on both axes"));
        }
        let p = spec.padding;
        if p.top >= kh || p.bottom >= kh || p.left >= kw || p.right >= kw {
            return Err(Error::parameter(
                ctx,
                "padding",
                format!(
                    "every side must be smaller than the {kh}x{kw} kernel so that each window \
                     holds an input element (top {} bottom {} left {} right {})",
                    p.top, p.bottom, p.left, p.right
                ),
            ));
        }
        let Some([oh, ow]) = spec.output_hw([h, w]) else {
            return Err(Error::InvalidInput(format!(
                "{ctx}: the {kh}x{kw} window does not fit the {}x{} padded input",
                h + p.top + p.bottom,
                w + p.left + p.right
            )));
        };
        Ok(PoolGeom {
            n,
            c,
            h,
            w,
            oh,
            ow,
            windows: Windows::Sliding {
                kh,
                kw,
                sh: spec.stride[0],
                sw: spec.stride[1],
                top: p.top,
                left: p.left,
                include_pad: spec.count_include_pad,
            },
            plain_2x2: spec.kernel == [2, 2]
                && spec.stride == [2, 2]
                && spec.padding == Padding2d::default(),
        })
    }

    fn adaptive(ctx: &str, dims: &[usize], output_hw: [usize; 2]) -> Result<Self> {
        let [n, c, h, w] = rank4(ctx, dims)?;
        let [oh, ow] = output_hw;
        if oh == 0 || ow == 0 {
            return Err(Error::parameter(ctx, "output_hw", "must be at least 1 on both axes"));
        }
        Ok(PoolGeom { n, c, h, w, oh, ow, windows: Windows::Adaptive, plain_2x2: false })
    }

    /// A 2x2 window with stride 2 and no padding on any side (PyTorch's `MaxPool2d(2)`).
    fn is_plain_2x2(&self) -> bool {
        self.plain_2x2
    }

    fn output_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }

    fn check_grad_out(&self, ctx: &str, grad_out: &Tensor) -> Result<()> {
        let expected = self.output_dims();
        if grad_out.dims() != expected {
            return Err(Error::ShapeMismatch {
                context: format!("{ctx}: grad_out (the shape of the pooling output)"),
                expected: expected.to_vec(),
                found: grad_out.dims().to_vec(),
            });
        }
        Ok(())
    }

    /// The in-bounds part of output `(i, j)`'s window.
    #[inline]
    fn window(&self, i: usize, j: usize) -> Window {
        match self.windows {
            Windows::Sliding { kh, kw, sh, sw, top, left, .. } => {
                // Validation guarantees each clipped range is non-empty (padding < kernel).
                let (r0, r1) = clip(i * sh, top, kh, self.h);
                let (c0, c1) = clip(j * sw, left, kw, self.w);
                Window { r0, r1, c0, c1 }
            }
            Windows::Adaptive => {
                let (r0, r1) = (i * self.h / self.oh, ((i + 1) * self.h).div_ceil(self.oh));
                let (c0, c1) = (j * self.w / self.ow, ((j + 1) * self.w).div_ceil(self.ow));
                Window { r0, r1, c0, c1 }
            }
        }
    }
}

/// Input range `[lo, hi)` of a window starting at padded position `start` with `len` elements,
/// `pad` padding before the input, clipped to `[0, extent)`.
#[inline]
fn clip(start: usize, pad: usize, len: usize, extent: usize) -> (usize, usize) {
    let lo = start.saturating_sub(pad);
    let hi = (start + len).saturating_sub(pad).min(extent);
    (lo.min(hi), hi)
}

fn to_cpu(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_device(&Device::Cpu)?)
}

fn back_to(t: Tensor, device: &Device) -> Result<Tensor> {
    Ok(t.to_device(device)?)
}

// ---------------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------------

/// The windows of every output row and column, computed once per call.
struct Grid {
    /// In-bounds input rows `[r0, r1)` of each output row.
    rows: Vec<(usize, usize)>,
    /// In-bounds input columns `[c0, c1)` of each output column.
    cols: Vec<(usize, usize)>,
    /// The averaging divisor when it is the same for every window (`count_include_pad`).
    fixed_divisor: Option<usize>,
}

impl Grid {
    fn new(g: &PoolGeom) -> Self {
        let rows = (0..g.oh).map(|i| g.window(i, 0)).map(|w| (w.r0, w.r1)).collect();
        let cols = (0..g.ow).map(|j| g.window(0, j)).map(|w| (w.c0, w.c1)).collect();
        let fixed_divisor = match g.windows {
            Windows::Sliding { kh, kw, include_pad: true, .. } => Some(kh * kw),
            _ => None,
        };
        Grid { rows, cols, fixed_divisor }
    }

    #[inline]
    fn divisor<T: Element>(&self, (r0, r1): (usize, usize), (c0, c1): (usize, usize)) -> T {
        T::from_f64(self.fixed_divisor.unwrap_or((r1 - r0) * (c1 - c0)) as f64)
    }
}

/// Largest element of the window (rows `r0..r1`, columns `c0..c1` of a plane `width` wide);
/// NaN if the window holds one.
#[inline]
/// The window's maximum of `f(x)` (`f`: the identity, or the ReLU for a fused pass).
fn window_max<T: Element>(
    plane: &[T],
    width: usize,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
    f: impl Fn(T) -> T,
) -> T {
    let mut best = f(plane[r0 * width + c0]);
    for r in r0..r1 {
        for &v in &plane[r * width + c0..r * width + c1] {
            let v = f(v);
            best = if (v > best) | v.is_nan() { v } else { best };
        }
    }
    best
}

/// `max(v, 0)` as [`pointwise::relu`](super::pointwise::relu) computes it (NaN -> 0).
fn rectified<T: Element>(v: T) -> T {
    if v > T::zero() {
        v
    } else {
        T::zero()
    }
}

/// Index (within the plane) of the first maximal element of the window, row-major; a NaN
/// beats every number and the first NaN wins among NaNs.
#[inline]
fn window_argmax<T: Element>(
    plane: &[T],
    width: usize,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
) -> usize {
    let mut at = r0 * width + c0;
    let mut best = plane[at];
    for r in r0..r1 {
        let base = r * width;
        for c in c0..c1 {
            let v = plane[base + c];
            // Strictly greater keeps the first of equal maxima; a NaN replaces a number once.
            let take = (v > best) | (v.is_nan() & !best.is_nan());
            at = if take { base + c } else { at };
            best = if take { v } else { best };
        }
    }
    at
}

/// `max(max(max(a, b), c), d)` with NaN propagation, in row-major window order.
#[inline(always)]
fn max4<T: Element>(a: T, b: T, c: T, d: T) -> T {
    let pick = |best: T, v: T| if (v > best) | v.is_nan() { v } else { best };
    pick(pick(pick(a, b), c), d)
}

/// Max pooling of one plane with the ubiquitous 2x2 window, stride 2 and no padding: the
/// generic window loops cost more than the comparisons for windows this small.
fn max_pool_2x2_plane<T: Element>(
    src: &[T],
    width: usize,
    y: &mut [MaybeUninit<T>],
    ow: usize,
    f: impl Fn(T) -> T,
) {
    for (yrow, rows) in y.chunks_exact_mut(ow).zip(src.chunks_exact(2 * width)) {
        let (top, bottom) = rows.split_at(width);
        let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        for (yv, (t, b)) in yrow.iter_mut().zip(pairs) {
            yv.write(max4(f(t[0]), f(t[1]), f(b[0]), f(b[1])));
        }
    }
}

/// VJP of [`max_pool_2x2_plane`] for a plane without NaN whose windows tile it (the caller
/// checks both; every element of `d` is written): each gradient goes to the first maximum
/// of its window (row-major), as [`window_argmax`] decides.
///
/// Branch-free, so that it does not depend on the branch predictor: which element of a
/// window is the maximum is unpredictable on real data. The branchy version took 8.2 ms per
/// `[64, 32, 28, 28]` batch of uniform random inputs on one thread (2.3 ms on patterned
/// inputs the predictor learns); this one 4.5 ms, and 1.3-1.8 ms with the SSE2 row kernel
/// ([`max_pool_2x2_vjp_rows_sse2`]) taking the leading windows of f32 rows.
///
/// With `relu`, the window's gradient reaches its winner only when the maximum is positive
/// (`0 · ḡ` otherwise): the VJP of the ReLU before the pool, at no extra pass.
fn max_pool_2x2_plane_vjp<T: Element>(
    src: &[T],
    width: usize,
    go: &[T],
    ow: usize,
    d: &mut [MaybeUninit<T>],
    relu: bool,
) {
    let rows = src.chunks_exact(2 * width).zip(d.chunks_exact_mut(2 * width));
    for (grow, (xrows, drows)) in go.chunks_exact(ow).zip(rows) {
        let (top, bottom) = xrows.split_at(width);
        let (dtop, dbottom) = drows.split_at_mut(width);
        // Exact lengths let the compiler drop the bounds checks.
        let (top, bottom) = (&top[..2 * ow], &bottom[..2 * ow]);
        let (dtop, dbottom) = (&mut dtop[..2 * ow], &mut dbottom[..2 * ow]);
        // A vector kernel takes the leading windows where there is one (f32 on x86-64).
        let done = T::max_pool_2x2_vjp_rows(top, bottom, grow, dtop, dbottom, relu);
        for j in done..ow {
            let (a, b, c, e) = (top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]);
            let m = Float::max(Float::max(a, b), Float::max(c, e));
            // 0/1 flags in integer arithmetic: the first element equal to the maximum wins.
            let h0 = u8::from(a == m);
            let h1 = u8::from(b == m) & (h0 ^ 1);
            let h2 = u8::from(c == m) & ((h0 | h1) ^ 1);
            let h3 = (h0 | h1 | h2) ^ 1;
            let gv = if !relu || m > T::zero() { grow[j] } else { T::zero() * grow[j] };
            // The windows do not overlap and tile the plane's covered part, so every element
            // of it is written exactly once (all of it when the height and width are even).
            dtop[2 * j].write(gv.keep_if(h0));
            dtop[2 * j + 1].write(gv.keep_if(h1));
            dbottom[2 * j].write(gv.keep_if(h2));
            dbottom[2 * j + 1].write(gv.keep_if(h3));
        }
    }
}

/// The 2x2 max-pool VJP of one row pair (`top`, `bottom`: `2 * g.len()` inputs each) in SSE2,
/// four windows per step; returns how many leading windows it wrote: all of them, or none
/// when there are fewer than four.
///
/// The same routing as the scalar loop of [`max_pool_2x2_plane_vjp`], for NaN-free rows: the
/// window maximum, then the gradient (with `relu`, `0 · g` where the maximum is not positive)
/// goes to the first element equal to it (row-major) and `+0` to the others, by bit masks.
/// The scalar loop stayed scalar (the compiler does not vectorize its stride-2 accesses) at
/// ~11 ns per window. Rows whose window count is not a multiple of four (the SC CNN's: 14
/// and 7) end with an overlapping step instead of scalar windows, and the steps run on
/// pointers checked once per row: 0.80 -> 0.45 ms for the conv1 output's VJP (64 images, two
/// threads; the instructions per 4-window step from ~80 to ~50 under callgrind).
#[cfg(target_arch = "x86_64")]
pub(crate) fn max_pool_2x2_vjp_rows_sse2(
    top: &[f32],
    bottom: &[f32],
    g: &[f32],
    dtop: &mut [MaybeUninit<f32>],
    dbottom: &mut [MaybeUninit<f32>],
    relu: bool,
) -> usize {
    let windows = g.len();
    if windows < 4 {
        return 0;
    }
    let inputs = 2 * windows;
    let (top, bottom) = (&top[..inputs], &bottom[..inputs]);
    let (dtop, dbottom) = (&mut dtop[..inputs], &mut dbottom[..inputs]);
    let (t, b, gv) = (top.as_ptr(), bottom.as_ptr(), g.as_ptr());
    let (dt, db) = (dtop.as_mut_ptr().cast::<f32>(), dbottom.as_mut_ptr().cast::<f32>());
    // Four windows per step; the last step starts at `windows - 4` and may overlap the one
    // before it, whose windows it writes again with the same values.
    let mut j = 0;
    loop {
        // SAFETY: `j + 4 <= windows`, so the step reads inputs `2j .. 2j + 8 <= inputs` of
        // both rows (and writes the same range of both outputs, all four of length `inputs`)
        // and gradients `j .. j + 4 <= windows`.
        unsafe {
            vjp_step_sse2(t.add(2 * j), b.add(2 * j), gv.add(j), dt.add(2 * j), db.add(2 * j), relu)
        };
        if j + 4 == windows {
            return windows;
        }
        j = (j + 4).min(windows - 4);
    }
}

/// One step of [`max_pool_2x2_vjp_rows_sse2`]: the four windows over the 8 columns at `t` and
/// `b`, their gradients at `g`, their outputs at `dt` and `db`.
///
/// # Safety
/// `t`, `b`, `dt` and `db` must be valid for 8 floats, `g` for 4.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn vjp_step_sse2(
    t: *const f32,
    b: *const f32,
    g: *const f32,
    dt: *mut f32,
    db: *mut f32,
    relu: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY (of every intrinsic): SSE2 is part of the x86-64 baseline; the loads and stores
    // stay inside the ranges the caller vouches for.
    unsafe {
        let [tl, tr, bl, br] = windows_2x2_sse2_raw(t, b);
        let m = _mm_max_ps(_mm_max_ps(tl, tr), _mm_max_ps(bl, br));
        let mut rest = _mm_loadu_ps(g);
        if relu {
            let zero = _mm_setzero_ps();
            let positive = _mm_cmpgt_ps(m, zero);
            let zeroed = _mm_mul_ps(rest, zero);
            rest = _mm_or_ps(_mm_and_ps(positive, rest), _mm_andnot_ps(positive, zeroed));
        }
        let hit = _mm_cmpeq_ps(tl, m);
        let (o_tl, rest) = (_mm_and_ps(hit, rest), _mm_andnot_ps(hit, rest));
        let hit = _mm_cmpeq_ps(tr, m);
        let (o_tr, rest) = (_mm_and_ps(hit, rest), _mm_andnot_ps(hit, rest));
        let hit = _mm_cmpeq_ps(bl, m);
        let (o_bl, o_br) = (_mm_and_ps(hit, rest), _mm_andnot_ps(hit, rest));
        _mm_storeu_ps(dt, _mm_unpacklo_ps(o_tl, o_tr));
        _mm_storeu_ps(dt.add(4), _mm_unpackhi_ps(o_tl, o_tr));
        _mm_storeu_ps(db, _mm_unpacklo_ps(o_bl, o_br));
        _mm_storeu_ps(db.add(4), _mm_unpackhi_ps(o_bl, o_br));
    }
}

/// The four 2x2 windows over 8 columns of a row pair (`top`, `bottom`: at least 8 values
/// each) as SSE2 vectors of their top-left, top-right, bottom-left and bottom-right elements.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn windows_2x2_sse2(top: &[f32], bottom: &[f32]) -> [std::arch::x86_64::__m128; 4] {
    let (t, b) = (&top[..8], &bottom[..8]);
    // SAFETY: both slices just taken hold 8 floats.
    unsafe { windows_2x2_sse2_raw(t.as_ptr(), b.as_ptr()) }
}

/// [`windows_2x2_sse2`] on pointers.
///
/// # Safety
/// `t` and `b` must be valid for 8 floats.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn windows_2x2_sse2_raw(t: *const f32, b: *const f32) -> [std::arch::x86_64::__m128; 4] {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86-64 baseline; every load reads four floats of the 8 the
    // caller vouches for.
    unsafe {
        let (t0, t1) = (_mm_loadu_ps(t), _mm_loadu_ps(t.add(4)));
        let (b0, b1) = (_mm_loadu_ps(b), _mm_loadu_ps(b.add(4)));
        // De-interleave: even columns are each window's left element, odd its right.
        [
            _mm_shuffle_ps::<0x88>(t0, t1),
            _mm_shuffle_ps::<0xDD>(t0, t1),
            _mm_shuffle_ps::<0x88>(b0, b1),
            _mm_shuffle_ps::<0xDD>(b0, b1),
        ]
    }
}

/// Four windows of [`MaxPoolOfRelu::route`]'s 2x2 path in SSE2 (`top`, `bottom`: their 8
/// inputs each; `g`: their 4 gradients): each window's slot, the first element equal to its
/// maximum (0 to 3, row-major), and its gradient gated by the maximum (`0 · g` where it is not
/// positive); `None` when a window holds a NaN (the scalar path takes those).
///
/// The same flags as the scalar path, `not0 (1 + not1 (1 + not2))` with `notk` = element `k`
/// differs from the maximum, computed on all-ones masks. The routing of the SC CNN's conv2
/// output (64 channels of 14x14) went from 21.7 to 17.6 µs per image on one thread; the
/// filing of each window's gradient ([`Routes`](super::routed::Routes)) is the rest.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn max_pool_2x2_winners_sse2(
    top: &[f32],
    bottom: &[f32],
    g: &[f32],
) -> Option<([u8; 4], [f32; 4])> {
    use std::arch::x86_64::*;
    let g = &g[..4];
    let [tl, tr, bl, br] = windows_2x2_sse2(top, bottom);
    // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the four gradients of the
    // slice just taken; the stores go to local arrays.
    unsafe {
        // The scalar path's NaN test: the window's sum is NaN.
        let sum = _mm_add_ps(_mm_add_ps(tl, tr), _mm_add_ps(bl, br));
        if _mm_movemask_ps(_mm_cmpunord_ps(sum, sum)) != 0 {
            return None;
        }
        let m = _mm_max_ps(_mm_max_ps(tl, tr), _mm_max_ps(bl, br));
        let not0 = _mm_castps_si128(_mm_cmpneq_ps(tl, m));
        let not01 = _mm_and_si128(not0, _mm_castps_si128(_mm_cmpneq_ps(tr, m)));
        let not012 = _mm_and_si128(not01, _mm_castps_si128(_mm_cmpneq_ps(bl, m)));
        // Masks are -1: the slot is minus their sum.
        let slot =
            _mm_sub_epi32(_mm_setzero_si128(), _mm_add_epi32(_mm_add_epi32(not0, not01), not012));
        let (zero, gv) = (_mm_setzero_ps(), _mm_loadu_ps(g.as_ptr()));
        let positive = _mm_cmpgt_ps(m, zero);
        let gated =
            _mm_or_ps(_mm_and_ps(positive, gv), _mm_andnot_ps(positive, _mm_mul_ps(zero, gv)));
        let (mut slots, mut values) = ([0i32; 4], [0f32; 4]);
        _mm_storeu_si128(slots.as_mut_ptr().cast(), slot);
        _mm_storeu_ps(values.as_mut_ptr(), gated);
        Some((slots.map(|s| s as u8), values))
    }
}

fn window_sum<T: Element>(
    plane: &[T],
    width: usize,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
) -> T {
    let mut sum = T::zero();
    for r in r0..r1 {
        for &v in &plane[r * width + c0..r * width + c1] {
            sum += v;
        }
    }
    sum
}

fn pool_forward<T: Element>(x: &Tensor, g: &PoolGeom, kind: PoolKind) -> Result<Tensor> {
    let (plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let grid = Grid::new(g);
    let out = cpu_slice::<T, _>(x, |xs| {
        let write = |out: &mut [MaybeUninit<T>]| {
            out.par_chunks_mut(out_plane)
                .zip(xs.par_chunks(plane))
                .for_each(|(y, src)| pool_plane(g, &grid, kind, src, y))
        };
        // SAFETY: `pool_plane` writes every element of each output plane.
        Ok(unsafe { vec_written_by(g.n * g.c * out_plane, write) })
    })?;
    from_cpu_vec(out, g.output_dims().to_vec())
}

/// Pools one `H x W` plane `src` into the `OH x OW` plane `y` (every element written).
fn pool_plane<T: Element>(
    g: &PoolGeom,
    grid: &Grid,
    kind: PoolKind,
    src: &[T],
    y: &mut [MaybeUninit<T>],
) {
    match kind {
        PoolKind::Max if g.is_plain_2x2() => return max_pool_2x2_plane(src, g.w, y, g.ow, |v| v),
        PoolKind::MaxOfRelu if g.is_plain_2x2() => {
            return max_pool_2x2_plane(src, g.w, y, g.ow, rectified)
        }
        _ => {}
    }
    for (yrow, &rows) in y.chunks_exact_mut(g.ow).zip(&grid.rows) {
        for (yv, &cols) in yrow.iter_mut().zip(&grid.cols) {
            yv.write(match kind {
                PoolKind::Max => window_max(src, g.w, rows, cols, |v| v),
                PoolKind::MaxOfRelu => window_max(src, g.w, rows, cols, rectified),
                PoolKind::Avg => window_sum(src, g.w, rows, cols) / grid.divisor::<T>(rows, cols),
            });
        }
    }
}

/// [`max_pool2d_of_relu`] prepared for callers that produce their input one image at a time
/// and pool it while it is still in cache (`ops::conv::conv2d_relu_max_pool2d`): the
/// geometry is validated once, then [`image`](Self::image) pools each image.
pub(crate) struct MaxPoolOfRelu {
    g: PoolGeom,
    grid: Grid,
}

impl MaxPoolOfRelu {
    /// Validates `spec` for an input of shape `dims` (`[N, C, H, W]`), with the errors of
    /// [`max_pool2d_of_relu`].
    pub(crate) fn new(ctx: &str, dims: &[usize], spec: &Pool2dSpec) -> Result<Self> {
        let g = PoolGeom::windowed(ctx, dims, spec)?;
        Ok(MaxPoolOfRelu { grid: Grid::new(&g), g })
    }

    /// `[N, C, OH, OW]`.
    pub(crate) fn output_dims(&self) -> [usize; 4] {
        self.g.output_dims()
    }

    /// Elements of one pooled image (`C * OH * OW`).
    pub(crate) fn output_image(&self) -> usize {
        self.g.c * self.g.oh * self.g.ow
    }

    /// Pools the `C` planes of one image `src` (`C * H * W` elements) into `y`
    /// ([`output_image`](Self::output_image) elements, every one written).
    pub(crate) fn image<T: Element>(&self, src: &[T], y: &mut [MaybeUninit<T>]) {
        let (plane, out_plane) = (self.g.h * self.g.w, self.g.oh * self.g.ow);
        for (y, src) in y.chunks_exact_mut(out_plane).zip(src.chunks_exact(plane)) {
            pool_plane(&self.g, &self.grid, PoolKind::MaxOfRelu, src, y);
        }
    }

    /// [`max_pool2d_relu_vjp`] of one image: `x` is the image's pooling input, the ReLU's
    /// output (`C * H * W` values), `grad` its pooled gradient
    /// ([`output_image`](Self::output_image) values); writes every element of `dx` (`C * H *
    /// W`) with the values the whole-batch VJP gives this image.
    pub(crate) fn vjp_image<T: Element>(&self, x: &[T], grad: &[T], dx: &mut [T]) {
        let (plane, out_plane) = (self.g.h * self.g.w, self.g.oh * self.g.ow);
        // SAFETY: `MaybeUninit<T>` has `T`'s layout, and `max_pool_plane_vjp` only ever
        // writes initialized values through the view, so `dx` stays initialized.
        let dx = unsafe { &mut *(dx as *mut [T] as *mut [MaybeUninit<T>]) };
        let planes = dx.chunks_exact_mut(plane).zip(x.chunks_exact(plane));
        for ((d, src), go) in planes.zip(grad.chunks_exact(out_plane)).take(self.g.c) {
            max_pool_plane_vjp(&self.g, &self.grid, src, go, d, true);
        }
    }

    /// The routing of [`max_pool2d_relu_vjp`] for one image, without forming the gradient:
    /// for every channel (in order) and window (row-major), the window's gradient filed in
    /// `routes` under the element it goes to, the window's first maximum, whose output
    /// position is its index in the channel's plane. `x` is the image's pooling input, the
    /// ReLU's output (`C * H * W` values), `grad` its pooled gradient
    /// ([`output_image`](Self::output_image) values).
    ///
    /// The gradient is the window's where its maximum is positive and `0 · ḡ` elsewhere
    /// (zeros are dropped; a NaN or infinite gradient still arrives): summed per element, the
    /// routes give [`max_pool2d_relu_vjp`]'s values (zeros possibly of the other sign).
    pub(crate) fn route<T: Element>(&self, x: &[T], grad: &[T], routes: &mut Routes<T>) {
        let g = &self.g;
        let (plane, out_plane) = (g.h * g.w, g.oh * g.ow);
        routes.clear();
        let gated = |m: T, gv: T| if m > T::zero() { gv } else { T::zero() * gv };
        for c in 0..g.c {
            let src = &x[c * plane..][..plane];
            routes.open(out_plane);
            for (i, &rows) in self.grid.rows.iter().enumerate() {
                let grow = &grad[c * out_plane + i * g.ow..][..g.ow];
                if g.is_plain_2x2() {
                    // Whole 2x2 blocks: four windows at a time in vector code where there is
                    // some, then each window's first maximum by flags, without the generic
                    // loop (a window holding a NaN, which wins, takes it). Slot `s` of window
                    // `j` is element (2i + s / 2, 2j + s % 2).
                    let (top, bottom) = src[rows.0 * g.w..][..2 * g.w].split_at(g.w);
                    let at = |j: usize, slot: usize| (rows.0 + slot / 2) * g.w + 2 * j + slot % 2;
                    let mut done = 0;
                    while done < g.ow && g.ow >= 4 {
                        // The last step may start before `done`: it files only the windows
                        // from `done` on.
                        let start = done.min(g.ow - 4);
                        let (t, b) = (&top[2 * start..][..8], &bottom[2 * start..][..8]);
                        let Some((slots, values)) =
                            T::max_pool_2x2_winners(t, b, &grow[start..][..4])
                        else {
                            break;
                        };
                        let windows = slots.iter().zip(&values).enumerate().skip(done - start);
                        for (k, (&slot, &value)) in windows {
                            routes.route(at(start + k, usize::from(slot)), value);
                        }
                        done = start + 4;
                    }
                    let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
                    let windows = grow.iter().zip(pairs).enumerate().skip(done);
                    for (j, (&gv, (t, b))) in windows {
                        let (a, b, d, e) = (t[0], t[1], b[0], b[1]);
                        let (pos, m) = if (a + b + d + e).is_nan() {
                            let pos = window_argmax(src, g.w, rows, (2 * j, 2 * j + 2));
                            (pos, src[pos])
                        } else {
                            let m = Float::max(Float::max(a, b), Float::max(d, e));
                            let (not0, not1, not2) =
                                (usize::from(a != m), usize::from(b != m), usize::from(d != m));
                            // The element's index in the window, 2 columns wide.
                            (at(j, not0 * (1 + not1 * (1 + not2))), m)
                        };
                        routes.route(pos, gated(m, gv));
                    }
                } else {
                    for (&gv, &cols) in grow.iter().zip(&self.grid.cols) {
                        let pos = window_argmax(src, g.w, rows, cols);
                        routes.route(pos, gated(src[pos], gv));
                    }
                }
            }
            routes.close();
        }
        routes.finish(plane);
    }
}

/// The max-pool VJP on the CPU; with `relu`, followed by the ReLU's VJP (see
/// [`max_pool2d_relu_vjp`]).
fn max_pool_vjp_cpu<T: Element>(
    x: &Tensor,
    grad_out: &Tensor,
    g: &PoolGeom,
    relu: bool,
) -> Result<Tensor> {
    let (plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let grid = Grid::new(g);
    let dx = cpu_slice::<T, _>(x, |xs| {
        cpu_slice::<T, _>(grad_out, |gs| {
            let write = |dx: &mut [MaybeUninit<T>]| {
                dx.par_chunks_mut(plane)
                    .zip(xs.par_chunks(plane).zip(gs.par_chunks(out_plane)))
                    .for_each(|(d, (src, go))| max_pool_plane_vjp(g, &grid, src, go, d, relu))
            };
            // SAFETY: `max_pool_plane_vjp` writes every element of each plane.
            Ok(unsafe { vec_written_by(g.n * g.c * plane, write) })
        })
    })?;
    from_cpu_vec(dx, (g.n, g.c, g.h, g.w))
}

/// The max-pool VJP of one channel plane `src` (`H * W` values) and its pooled gradient `go`
/// (`OH * OW`) into `d` (`H * W`, every element written); with `relu`, followed by the
/// ReLU's VJP.
fn max_pool_plane_vjp<T: Element>(
    g: &PoolGeom,
    grid: &Grid,
    src: &[T],
    go: &[T],
    d: &mut [MaybeUninit<T>],
    relu: bool,
) {
    // The 2x2 path writes every element of a plane whose windows tile it (even height and
    // width); other planes are zeroed before the gradient is scattered.
    let tiles = g.is_plain_2x2() && g.h == 2 * g.oh && g.w == 2 * g.ow;
    // A fold rather than `any`: without the early exit the scan vectorizes.
    let has_nan = src.iter().fold(false, |acc, v| acc | v.is_nan());
    if tiles && !has_nan {
        return max_pool_2x2_plane_vjp(src, g.w, go, g.ow, d, relu);
    }
    let d = fill_rows_init(d, g.h * g.w, |_| T::zero());
    for (grow, &rows) in go.chunks_exact(g.ow).zip(&grid.rows) {
        for (&gv, &cols) in grow.iter().zip(&grid.cols) {
            let at = window_argmax(src, g.w, rows, cols);
            d[at] += gv;
        }
    }
    if relu {
        for (d, &x) in d.iter_mut().zip(src) {
            *d = if x > T::zero() { *d } else { T::zero() * *d };
        }
    }
}

/// VJP of the averaging pools: each output's gradient, divided by its window's divisor, is
/// added to every in-bounds element of the window.
fn spread_vjp_cpu<T: Element>(grad_out: &Tensor, g: &PoolGeom) -> Result<Tensor> {
    let (plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let grid = Grid::new(g);
    let dx = cpu_slice::<T, _>(grad_out, |gs| {
        let mut dx = vec![T::zero(); g.n * g.c * plane];
        dx.par_chunks_mut(plane).zip(gs.par_chunks(out_plane)).for_each(|(d, go)| {
            for (grow, &(r0, r1)) in go.chunks_exact(g.ow).zip(&grid.rows) {
                for (&gv, &(c0, c1)) in grow.iter().zip(&grid.cols) {
                    let share = gv / grid.divisor::<T>((r0, r1), (c0, c1));
                    for r in r0..r1 {
                        for v in &mut d[r * g.w + c0..r * g.w + c1] {
                            *v += share;
                        }
                    }
                }
            }
        });
        Ok(dx)
    })?;
    from_cpu_vec(dx, (g.n, g.c, g.h, g.w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SSE2 winners equal the scalar routing's slot and gated gradient for every window:
    /// ties (the first equal element wins), signed zeros, all-negative windows, infinities,
    /// NaN gradients; a group holding a NaN input (or `inf - inf`) is refused.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sse2_winners_equal_the_scalar_flags() {
        let palette = [0.0, -0.0, 1.0, 1.0, 2.0, -1.0, -3.0, f32::INFINITY, 0.5, 2.0];
        let mut state = 99u64;
        let mut pick = |n: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize % n
        };
        let mut checked = 0;
        for _ in 0..5000 {
            let top: Vec<f32> = (0..8).map(|_| palette[pick(palette.len())]).collect();
            let mut bottom: Vec<f32> = (0..8).map(|_| palette[pick(palette.len())]).collect();
            let mut g: Vec<f32> = (0..4).map(|_| pick(7) as f32 - 3.0).collect();
            if pick(10) == 0 {
                g[pick(4)] = f32::NAN;
            }
            let nan_input = pick(20) == 0;
            if nan_input {
                bottom[pick(8)] = f32::NAN;
            }
            let got = max_pool_2x2_winners_sse2(&top, &bottom, &g);
            let windows: Vec<[f32; 4]> = (0..4)
                .map(|j| [top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]])
                .collect();
            if windows.iter().any(|w| w.iter().sum::<f32>().is_nan()) {
                assert!(got.is_none(), "{windows:?}");
                continue;
            }
            assert!(!nan_input);
            let (slots, values) = got.expect("a NaN-free group");
            for (j, w) in windows.iter().enumerate() {
                let m = w[0].max(w[1]).max(w[2].max(w[3]));
                let not = |k: usize| usize::from(w[k] != m);
                let slot = not(0) * (1 + not(1) * (1 + not(2)));
                let gated = if m > 0.0 { g[j] } else { 0.0 * g[j] };
                assert_eq!(usize::from(slots[j]), slot, "{w:?}");
                assert_eq!(values[j].to_bits(), gated.to_bits(), "{w:?} {}", g[j]);
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    /// With every padding side smaller than the kernel, every window of every valid geometry
    /// holds at least one input element, and `clip` agrees with a direct scan.
    #[test]
    fn windows_are_never_empty_and_clip_is_exact() {
        for h in 1..7 {
            for k in 1..5 {
                for s in 1..4 {
                    for top in 0..k {
                        for bottom in 0..k {
                            let spec = Pool2dSpec {
                                kernel: [k, 1],
                                stride: [s, 1],
                                padding: Padding2d { top, bottom, left: 0, right: 0 },
                                count_include_pad: false,
                            };
                            let Ok(g) = PoolGeom::windowed("test", &[1, 1, h, 1], &spec) else {
                                continue;
                            };
                            for i in 0..g.oh {
                                let win = g.window(i, 0);
                                assert!(win.r0 < win.r1, "empty window h {h} {spec:?} i {i}");
                                let expected: Vec<usize> = (0..k)
                                    .map(|p| (i * s + p) as isize - top as isize)
                                    .filter(|&r| r >= 0 && r < h as isize)
                                    .map(|r| r as usize)
                                    .collect();
                                assert_eq!((win.r0..win.r1).collect::<Vec<_>>(), expected);
                                let grid = Grid::new(&g);
                                let d: f64 = grid.divisor((win.r0, win.r1), (0, 1));
                                assert_eq!(d, expected.len() as f64);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn nan_is_the_maximum() {
        let plane = [1.0f64, f64::NAN, 3.0, f64::NAN];
        assert_eq!(window_argmax(&plane, 2, (0, 2), (0, 2)), 1);
        assert!(window_max(&plane, 2, (0, 2), (0, 2), |v| v).is_nan());
        let plane = [f64::NAN, 5.0, 3.0, 1.0];
        assert_eq!(window_argmax(&plane, 2, (0, 2), (0, 2)), 0);
        assert!(window_max(&plane, 2, (0, 2), (0, 2), |v| v).is_nan());
        let plane = [2.0f64, 5.0, 5.0, 1.0];
        assert_eq!(window_argmax(&plane, 2, (0, 2), (0, 2)), 1);
    }
}
