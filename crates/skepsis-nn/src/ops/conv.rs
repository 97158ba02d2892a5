//! 2-D convolution: forward, input vector-Jacobian product and weight gradient.
//!
//! Definitions (NCHW input `x`, OIHW weight `w` with `C / groups` input channels per group,
//! group `g` mapping input channels `g*C/G ..` to output channels `g*O/G ..`, zero padding):
//!
//! ```text
//! y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q]
//!                 * x[n, g(o)*C/G + c, i*sh + p*dh - pad_top, j*sw + q*dw - pad_left]
//! ```
//!
//! where out-of-range input positions read zero. The input VJP is `x̄ = Jᵀ ȳ` (a transposed
//! convolution) and the weight VJP is `w̄[o, c, p, q] = sum_{n, i, j} ȳ[n, o, i, j] * x[...]`.
//!
//! On the CPU all three are im2col + the `gemm` crate: per image and group the input is
//! unfolded into a `[C/G * kh * kw, OH * OW]` column matrix so that the convolution is one
//! matrix product with the `[O/G, C/G * kh * kw]` weight. Work is split over the batch with
//! rayon (each task reuses one column buffer; gemm runs single-threaded inside tasks); when the
//! batch is smaller than the thread pool the images run in sequence and gemm parallelises each
//! product itself. 1x1 convolutions with unit stride and no padding skip im2col entirely.
//! Where the output plane is not a multiple of `gemm`'s register-tile width but the channels
//! are (e.g. 14x14 planes, 64 channels), the forward product and the input VJP's column matrix
//! are taken channels-last instead (see `ConvGeom::channels_last_product`).
//!
//! In f32 on AVX-512 or AVX2 machines the forward pass and the input VJP of unit-stride
//! convolutions with at least 16 input channels (of the correlation: the output channels for
//! the VJP) and a multiple of the vector width (16 or 8) of output channels skip the column
//! matrix altogether: they run the direct correlation of `ops::direct` on a padded copy of the
//! image (the SC CNN's conv2 on AVX-512: 8.9 instead of 10.8 ms forward and 8.9 instead of
//! 11.3 ms input VJP per 64 images on one thread). See `ConvGeom::forward_product` and
//! `ConvGeom::input_vjp_product`.
//!
//! Where a convolution reaches the loss only through a ReLU and a max pool, the backward walk
//! asks for `conv2d_relu_max_pool2d_input_vjp` instead of three VJPs: in f32 on AVX-512 or
//! AVX2 it
//! scatters only the gradients the pool routes (`ops::routed`; the SC CNN's conv2 + pool VJP
//! went from 12.1-13.5 to 5.7-6.7 ms per 64 images on one thread).
//!
//! On other devices the forward pass uses candle's `Tensor::conv2d` where candle can express
//! the geometry (equal strides and dilations on both axes; asymmetric padding is applied with
//! `pad_with_zeros` first); the two VJPs, and forward passes candle cannot express, copy the
//! operands to the CPU, run the kernels here and copy the result back. That is always correct
//! but pays two transfers per call; a native GPU path can replace it without changing the API.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use candle_core::{DType, Device, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::direct::Correlation;
use super::lanes::LANES;
use super::matmul::{matmul, Mat};
use super::pool::{max_pool2d_of_relu, max_pool2d_relu_vjp, MaxPoolOfRelu};
use super::routed::{weight_rows, Aligned, Routes, Scatter};
use super::{
    cpu_slice, fill_rows_init, from_cpu_vec, vec_written_by, Conv2dSpec, Element, Pool2dSpec,
};
use crate::{Error, Result};

/// Images per partial weight gradient. The batch is cut into fixed chunks of this size, each
/// chunk's gradient is computed independently (in parallel) and the partials are summed in
/// chunk order, so the weight gradient is bitwise the same whatever the number of threads.
const WEIGHT_GRAD_CHUNK: usize = 8;

/// Convolution output `y = conv(x, weight) + bias` (PyTorch's `F.conv2d` with the stride,
/// padding, dilation and groups of `spec`; padding may be asymmetric).
///
/// `x` is `[N, C, H, W]`, `weight` is `[O, C / groups, kh, kw]` and `bias` (optional) is
/// `[O]`; the result is `[N, O, OH, OW]` with `[OH, OW] = spec.output_hw([H, W], [kh, kw])`.
/// Each output element is
/// `y[n,o,i,j] = bias[o] + Σ_{c,p,q} weight[o,c,p,q] · x[n, g·C/groups + c, i·sh + p·dh − top,
/// j·sw + q·dw − left]` with `g = o / (O / groups)` and zeros outside the input.
///
/// All operands must share one device and one dtype (F32 or F64); the result has that dtype.
/// Errors: wrong ranks or shapes, channels or output channels not divisible by `groups`, zero
/// stride, dilation, groups or kernel size, a (dilated) kernel larger than the padded input.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: &Conv2dSpec,
) -> Result<Tensor> {
    const CTX: &str = "conv2d";
    let g = ConvGeom::new(CTX, x.dims(), weight.dims(), spec)?;
    let dtype = check_operands(CTX, x, weight, bias, &g)?;
    if !x.device().is_cpu() {
        return conv2d_device(x, weight, bias, spec, &g);
    }
    match dtype {
        DType::F32 => conv2d_cpu::<f32>(x, weight, bias, &g),
        _ => conv2d_cpu::<f64>(x, weight, bias, &g),
    }
}

/// `max_pool2d(relu(conv2d(x, weight, bias, spec)), pool)` with no intermediate tensor: each
/// image's convolution output goes into a per-task buffer that is pooled (rectified, as
/// [`max_pool2d_of_relu`]) while it is still in cache, so the convolution's output, the
/// largest activation of most CNNs, is never written to memory, nor read back by the ReLU
/// and the pool.
///
/// The values are those of the three operators in sequence, element for element (the same
/// kernels run on the same data). A forward pass that keeps no intermediate values
/// ([`Model::forward`](crate::Model::forward)) uses it where a convolution feeds only a ReLU
/// that feeds only a max pool. Arguments and errors are those of [`conv2d`] and of
/// [`max_pool2d`](super::pool::max_pool2d) for the convolution's output shape; on devices
/// other than the CPU the convolution runs first and its whole output is then pooled.
pub fn conv2d_relu_max_pool2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: &Conv2dSpec,
    pool: &Pool2dSpec,
) -> Result<Tensor> {
    let (g, pooling, dtype) =
        pooled_operands("conv2d_relu_max_pool2d", x, weight, bias, spec, pool)?;
    if !x.device().is_cpu() {
        return max_pool2d_of_relu(&conv2d(x, weight, bias, spec)?, pool);
    }
    match dtype {
        DType::F32 => conv2d_pooled_cpu::<f32>(x, weight, bias, &g, &pooling),
        _ => conv2d_pooled_cpu::<f64>(x, weight, bias, &g, &pooling),
    }
}

/// The three outputs of `conv2d`, ReLU and `max_pool2d` in sequence, `[z, relu(z),
/// max_pool2d(relu(z))]`, each image's computed while its convolution output is in cache: what
/// a trace keeps ([`Model::trace`](crate::Model::trace)), without reading the convolution's
/// output back from memory for the ReLU and the ReLU's for the pool (the largest activations
/// of most CNNs).
///
/// The values are those of [`conv2d`], [`relu`](super::pointwise::relu) and
/// [`max_pool2d`](super::pool::max_pool2d) in sequence, element for element (the same
/// kernels on the same data). Arguments and errors are those of
/// [`conv2d_relu_max_pool2d`]; on devices other than the CPU the three run one after the
/// other.
pub fn conv2d_relu_max_pool2d_traced(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: &Conv2dSpec,
    pool: &Pool2dSpec,
) -> Result<[Tensor; 3]> {
    let (g, pooling, dtype) =
        pooled_operands("conv2d_relu_max_pool2d_traced", x, weight, bias, spec, pool)?;
    if !x.device().is_cpu() {
        let z = conv2d(x, weight, bias, spec)?;
        let r = super::pointwise::relu(&z)?;
        let p = super::pool::max_pool2d(&r, pool)?;
        return Ok([z, r, p]);
    }
    match dtype {
        DType::F32 => conv2d_traced_cpu::<f32>(x, weight, bias, &g, &pooling),
        _ => conv2d_traced_cpu::<f64>(x, weight, bias, &g, &pooling),
    }
}

/// The validated geometry, pooling and dtype of a convolution followed by a ReLU and a max
/// pool, with the errors of [`conv2d`] and of the pool for the convolution's output shape.
fn pooled_operands(
    ctx: &str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: &Conv2dSpec,
    pool: &Pool2dSpec,
) -> Result<(ConvGeom, MaxPoolOfRelu, DType)> {
    let g = ConvGeom::new(ctx, x.dims(), weight.dims(), spec)?;
    let pooling = MaxPoolOfRelu::new(ctx, &g.output_dims(), pool)?;
    let dtype = check_operands(ctx, x, weight, bias, &g)?;
    Ok((g, pooling, dtype))
}

/// Input vector-Jacobian product of [`conv2d`]: `x̄ = (∂y/∂x)ᵀ · grad_out`, i.e. the
/// transposed convolution of `grad_out` with `weight` (im2col's adjoint, col2im).
///
/// `grad_out` is `[N, O, OH, OW]`, `weight` is `[O, C / groups, kh, kw]` and `input_dims` is
/// the `[N, C, H, W]` shape of the convolution's input; the result has shape `input_dims`:
/// `x̄[n, g·C/groups + c, h, w] = Σ_{o in group g, i, j, p, q : i·sh + p·dh − top = h,
/// j·sw + q·dw − left = w} weight[o,c,p,q] · grad_out[n,o,i,j]`. `grad_out` must have exactly the
/// shape [`conv2d`] produces for `input_dims`, and the same dtype (F32 or F64) and device as
/// `weight`. The bias does not enter the input gradient.
pub fn conv2d_input_vjp(
    grad_out: &Tensor,
    weight: &Tensor,
    input_dims: &[usize],
    spec: &Conv2dSpec,
) -> Result<Tensor> {
    const CTX: &str = "conv2d_input_vjp";
    let g = ConvGeom::new(CTX, input_dims, weight.dims(), spec)?;
    let dtype = float_dtype(CTX, "grad_out", grad_out)?;
    same_kind(CTX, "weight", grad_out, weight)?;
    g.check_grad_out(CTX, grad_out)?;
    if !grad_out.device().is_cpu() {
        let dx = conv2d_input_vjp(&to_cpu(grad_out)?, &to_cpu(weight)?, input_dims, spec)?;
        return Ok(dx.to_device(grad_out.device())?);
    }
    match dtype {
        DType::F32 => input_vjp_cpu::<f32>(grad_out, weight, &g),
        _ => input_vjp_cpu::<f64>(grad_out, weight, &g),
    }
}

/// Input vector-Jacobian product of `max_pool2d(relu(conv2d(x, weight, bias, spec)), pool)`:
/// given the ReLU's output `relu_out` (`[N, O, OH, OW]`, the pool's input) and the gradient
/// `grad_out` at the pool's output, the values of
/// `conv2d_input_vjp(max_pool2d_relu_vjp(relu_out, grad_out, pool), weight, input_dims, spec)`
/// up to rounding (the terms are summed in another order).
///
/// The pool sends each window's gradient to one element, so at most one convolution output
/// per window and channel carries gradient. In f32 on AVX-512 or AVX2 machines, for one
/// group, unit dilations, at least 16 input channels and a batch spread over the threads, only
/// those outputs are multiplied with the weight (`ops::routed`: a quarter of the dense VJP's
/// multiply-adds under 2x2 pooling) and the convolution's output gradient is never formed.
/// Elsewhere the two dense VJPs run, and so they do when the weight holds a NaN or an
/// infinity, which the dense product spreads through the zero gradients: on the CPU with the
/// batch spread over the threads, image by image (the pool's VJP of one image into a per-task
/// buffer, then the convolution's VJP of that image while the buffer is in cache: the SC
/// CNN's conv1, one input channel: 1.6 -> 1.1 ms per 64 images on two threads, with the
/// pool's row steps of `ops::pool`), otherwise
/// one after the other over the whole batch.
///
/// Arguments and errors are those of [`conv2d_input_vjp`] and of [`max_pool2d_relu_vjp`] for
/// the convolution's output shape; `relu_out` must have that shape.
pub fn conv2d_relu_max_pool2d_input_vjp(
    relu_out: &Tensor,
    grad_out: &Tensor,
    weight: &Tensor,
    input_dims: &[usize],
    spec: &Conv2dSpec,
    pool: &Pool2dSpec,
) -> Result<Tensor> {
    const CTX: &str = "conv2d_relu_max_pool2d_input_vjp";
    let g = ConvGeom::new(CTX, input_dims, weight.dims(), spec)?;
    let pooling = MaxPoolOfRelu::new(CTX, &g.output_dims(), pool)?;
    let dtype = float_dtype(CTX, "ReLU output", relu_out)?;
    same_kind(CTX, "weight", relu_out, weight)?;
    same_kind(CTX, "grad_out", relu_out, grad_out)?;
    for (what, t, expected) in [
        ("ReLU output (the shape of the convolution's output)", relu_out, g.output_dims()),
        ("grad_out (the shape of the pooling output)", grad_out, pooling.output_dims()),
    ] {
        if t.dims() != expected {
            return Err(Error::ShapeMismatch {
                context: format!("{CTX}: {what}"),
                expected: expected.to_vec(),
                found: t.dims().to_vec(),
            });
        }
    }
    if relu_out.device().is_cpu() && g.routed_candidate() {
        let routed = match dtype {
            DType::F32 => routed_vjp_cpu::<f32>(relu_out, grad_out, weight, &g, &pooling)?,
            _ => routed_vjp_cpu::<f64>(relu_out, grad_out, weight, &g, &pooling)?,
        };
        if let Some(dx) = routed {
            return Ok(dx);
        }
    }
    if relu_out.device().is_cpu() && g.batch_parallel() {
        return match dtype {
            DType::F32 => pooled_vjp_cpu::<f32>(relu_out, grad_out, weight, &g, &pooling),
            _ => pooled_vjp_cpu::<f64>(relu_out, grad_out, weight, &g, &pooling),
        };
    }
    let dense = max_pool2d_relu_vjp(relu_out, grad_out, pool)?;
    conv2d_input_vjp(&dense, weight, input_dims, spec)
}

/// Weight vector-Jacobian product of [`conv2d`]: `w̄ = (∂y/∂weight)ᵀ · grad_out`, summed over
/// the batch.
///
/// `x` is the convolution's input `[N, C, H, W]`, `grad_out` is `[N, O, OH, OW]` and
/// `weight_dims` is `[O, C / groups, kh, kw]`; the result has shape `weight_dims`:
/// `w̄[o,c,p,q] = Σ_{n,i,j} grad_out[n,o,i,j] · x[n, g·C/groups + c, i·sh + p·dh − top,
/// j·sw + q·dw − left]` (zeros outside the input). The bias gradient is not included (it is
/// `grad_out` summed over `N`, `OH` and `OW`). The batch is reduced in fixed chunks and fixed
/// order, so the result does not depend on the number of threads.
pub fn conv2d_weight_vjp(
    x: &Tensor,
    grad_out: &Tensor,
    weight_dims: &[usize],
    spec: &Conv2dSpec,
) -> Result<Tensor> {
    const CTX: &str = "conv2d_weight_vjp";
    let g = ConvGeom::new(CTX, x.dims(), weight_dims, spec)?;
    let dtype = float_dtype(CTX, "input", x)?;
    same_kind(CTX, "grad_out", x, grad_out)?;
    g.check_grad_out(CTX, grad_out)?;
    if !x.device().is_cpu() {
        let dw = conv2d_weight_vjp(&to_cpu(x)?, &to_cpu(grad_out)?, weight_dims, spec)?;
        return Ok(dw.to_device(x.device())?);
    }
    match dtype {
        DType::F32 => weight_vjp_cpu::<f32>(x, grad_out, &g),
        _ => weight_vjp_cpu::<f64>(x, grad_out, &g),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// The validated geometry of one convolution.
#[derive(Clone, Copy, Debug)]
struct ConvGeom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    groups: usize,
    /// Input channels per group.
    cg: usize,
    /// Output channels per group.
    og: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pad_top: usize,
    pad_left: usize,
    /// 1x1 kernel, unit stride, no padding: the input already is the column matrix.
    pointwise: bool,
}

impl ConvGeom {
    fn new(ctx: &str, input: &[usize], weight: &[usize], spec: &Conv2dSpec) -> Result<Self> {
        let &[n, c, h, w] = input else {
            return Err(Error::InvalidInput(format!(
                "{ctx}: the input must have rank 4 [N, C, H, W], found shape {input:?}"
            )));
        };
        let &[o, wc, kh, kw] = weight else {
            return Err(Error::InvalidInput(format!(
                "{ctx}: the weight must have rank 4 [O, C/groups, kh, kw], found shape {weight:?}"
            )));
        };
        let groups = spec.groups;
        if groups == 0 {
            return Err(Error::parameter(ctx, "groups", "must be at least 1"));
        }
        if spec.stride.contains(&0) {
            return Err(Error::parameter(ctx, "stride", "must be at least 1 on both axes"));
        }
        if spec.dilation.contains(&0) {
            return Err(Error::parameter(ctx, "dilation", "must be at least 1 on both axes"));
        }
        if kh == 0 || kw == 0 {
            return Err(Error::InvalidInput(format!(
                "{ctx}: the weight has an empty kernel (shape {weight:?})"
            )));
        }
        if c % groups != 0 {
            return Err(Error::parameter(
                ctx,
                "groups",
                format!("{groups} does not divide the {c} input channels"),
            ));
        }
        if o % groups != 0 {
            return Err(Error::parameter(
                ctx,
                "groups",
                format!("{groups} does not divide the {o} output channels"),
            ));
        }
        let cg = c / groups;
        if wc != cg {
            return Err(Error::ShapeMismatch {
                context: format!(
                    "{ctx}: weight for an input with {c} channels and {groups} group(s)"
                ),
                expected: vec![o, cg, kh, kw],
                found: weight.to_vec(),
            });
        }
        let Some([oh, ow]) = spec.output_hw([h, w], [kh, kw]) else {
            let p = spec.padding;
            return Err(Error::InvalidInput(format!(
                "{ctx}: the {kh}x{kw} kernel with dilation {:?} does not fit the {}x{} padded \
                 input (input {h}x{w}, padding top {} bottom {} left {} right {})",
                spec.dilation,
                h + p.top + p.bottom,
                w + p.left + p.right,
                p.top,
                p.bottom,
                p.left,
                p.right
            )));
        };
        let p = spec.padding;
        let pointwise = kh == 1
            && kw == 1
            && spec.stride == [1, 1]
            && p.top == 0
            && p.bottom == 0
            && p.left == 0
            && p.right == 0;
        Ok(ConvGeom {
            n,
            c,
            h,
            w,
            o,
            groups,
            cg,
            og: o / groups,
            kh,
            kw,
            oh,
            ow,
            sh: spec.stride[0],
            sw: spec.stride[1],
            dh: spec.dilation[0],
            dw: spec.dilation[1],
            pad_top: p.top,
            pad_left: p.left,
            pointwise,
        })
    }

    /// Unit strides and dilations on both axes and a non-empty input and output, so that
    /// the padded input plane is exactly `(OH + kh - 1) x (OW + kw - 1)`.
    fn unit_stride_and_dilation(&self) -> bool {
        self.sh == 1
            && self.sw == 1
            && self.dh == 1
            && self.dw == 1
            && self.h > 0
            && self.w > 0
            && self.oh > 0
            && self.ow > 0
    }

    /// Rows of one group's column matrix (`C/G * kh * kw`).
    fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }

    /// Output positions per channel (`OH * OW`), the columns of the column matrix.
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    fn input_image(&self) -> usize {
        self.c * self.h * self.w
    }

    fn output_image(&self) -> usize {
        self.o * self.p()
    }

    fn output_dims(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }

    /// Length of the im2col buffer one task needs (none for pointwise convolutions).
    fn col_len(&self) -> usize {
        if self.pointwise {
            0
        } else {
            self.k() * self.p()
        }
    }

    fn check_grad_out(&self, ctx: &str, grad_out: &Tensor) -> Result<()> {
        let expected = self.output_dims();
        if grad_out.dims() != expected {
            return Err(Error::ShapeMismatch {
                context: format!("{ctx}: grad_out (the shape of the convolution's output)"),
                expected: expected.to_vec(),
                found: grad_out.dims().to_vec(),
            });
        }
        Ok(())
    }

    /// Whether the forward product is better taken channels-last (`[OH*OW, O/G]`, then
    /// transposed): when the output positions do not fill `gemm`'s 16-lane register tiles
    /// (f32 with AVX-512) but the output channels do. `gemm` lays its tiles along the longer
    /// side of the output; with 196 positions (the SC CNN's conv2) the last tile held 4 rows
    /// at a quarter of its width and the column matrix was packed once more, while with the
    /// 64 channels as the tile dimension every tile is full and the column matrix is read in
    /// place: conv2's product went from ~166 to ~130 µs per image, transposition included
    /// (one thread). With 784 positions (conv1, 25-element columns) the transposition costs
    /// more than it saves, so the rule is narrow.
    fn channels_last_product(&self) -> bool {
        self.p() % LANES != 0 && self.og % LANES == 0
    }

    /// Whether the input VJP's column matrix is better computed transposed, channels
    /// innermost (`[OH*OW, kh*kw*C/G]`, scattered by [`col2im_channels_last`]): for unit
    /// strides and dilations, when the output positions do not fill `gemm`'s 16-lane register
    /// tiles but the column matrix's rows do (the reasoning of
    /// [`ConvGeom::channels_last_product`]; SC CNN conv2: 196 positions, 800 rows).
    fn channels_last_vjp(&self) -> bool {
        self.unit_stride_and_dilation()
            && !self.pointwise
            && self.p() % LANES != 0
            && self.k() % LANES == 0
    }

    /// Whether to spread the batch over rayon tasks (gemm single-threaded inside) rather than
    /// run the images in sequence with gemm parallelising each product.
    fn batch_parallel(&self) -> bool {
        self.n > 1 && self.n >= rayon::current_num_threads()
    }

    /// Whether the direct correlation ([`super::direct`]) may replace im2col + `gemm`: one
    /// group, unit strides and dilations, a kernel larger than 1x1 (pointwise convolutions
    /// need no column matrix anyway), and a batch spread over the threads (the correlation
    /// runs one image per task, where `gemm` would parallelise a single image itself).
    fn direct_candidate(&self) -> bool {
        self.groups == 1
            && self.unit_stride_and_dilation()
            && !self.pointwise
            && self.batch_parallel()
    }

    /// Whether the routed input VJP ([`conv2d_relu_max_pool2d_input_vjp`]) may run: one group,
    /// unit dilations (any stride), non-empty input and output, and a batch spread over the
    /// threads (the scatter runs one image per task).
    fn routed_candidate(&self) -> bool {
        self.groups == 1
            && self.dh == 1
            && self.dw == 1
            && self.n > 0
            && self.c > 0
            && self.h > 0
            && self.w > 0
            && self.oh > 0
            && self.ow > 0
            && self.batch_parallel()
    }

    /// The routed scatter of one image: every patch inside a plane that also holds the
    /// padded input.
    fn scatter(&self) -> Scatter {
        let reach = |out: usize, stride: usize, k: usize| out.saturating_sub(1) * stride + k;
        Scatter {
            rows: self.oh,
            cols: self.ow,
            kh: self.kh,
            kw: self.kw,
            sh: self.sh,
            sw: self.sw,
            in_ch: self.c,
            out_ch: self.o,
            plane_rows: reach(self.oh, self.sh, self.kh).max(self.pad_top + self.h),
            plane_cols: reach(self.ow, self.sw, self.kw).max(self.pad_left + self.w),
        }
    }

    /// How one image's forward product is taken.
    fn forward_product<T: Element>(&self) -> Product {
        let shape = self.correlation([self.oh, self.ow], [self.c, self.o]);
        self.product::<T>(shape, true, self.channels_last_product())
    }

    /// How one image's input VJP is taken. The direct form is the correlation of the output
    /// gradient, padded by `kh - 1 - top` rows above (and so on for each side), with the
    /// flipped, transposed weight; it needs every padding smaller than the kernel.
    fn input_vjp_product<T: Element>(&self) -> Product {
        let shape = self.correlation([self.h, self.w], [self.o, self.c]);
        // For unit strides and dilations OH = H + top + bottom - kh + 1 (and so for OW).
        let bottom = (self.oh + self.kh - 1).saturating_sub(self.h + self.pad_top);
        let right = (self.ow + self.kw - 1).saturating_sub(self.w + self.pad_left);
        let small_padding =
            self.pad_top.max(bottom) < self.kh && self.pad_left.max(right) < self.kw;
        self.product::<T>(shape, small_padding, self.channels_last_vjp())
    }

    /// The unit-stride correlation with this kernel producing `[rows, cols]` from `in_ch`
    /// channels into `out_ch`.
    fn correlation(&self, [rows, cols]: [usize; 2], [in_ch, out_ch]: [usize; 2]) -> Correlation {
        Correlation { rows, cols, kh: self.kh, kw: self.kw, in_ch, out_ch }
    }

    /// [`Product::Direct`] where the geometry allows it (`direct_fits` and
    /// [`ConvGeom::direct_candidate`]) and the kernel pays off, else
    /// [`Product::ChannelsLast`] where `channels_last`, else [`Product::Columns`].
    fn product<T: Element>(
        &self,
        shape: Correlation,
        direct_fits: bool,
        channels_last: bool,
    ) -> Product {
        if direct_fits && self.direct_candidate() && T::vector_correlation(&shape) {
            Product::Direct(shape)
        } else if channels_last {
            Product::ChannelsLast
        } else {
            Product::Columns
        }
    }
}

/// How a convolution's per-image product is taken on the CPU.
#[derive(Clone, Copy, Debug)]
enum Product {
    /// The direct correlation of a padded copy of the image ([`super::direct`]).
    Direct(Correlation),
    /// im2col + `gemm`, with the product taken channels-last
    /// ([`ConvGeom::channels_last_product`], [`ConvGeom::channels_last_vjp`]).
    ChannelsLast,
    /// im2col + `gemm` as the convolution is stored.
    Columns,
}

/// The dtype of `t`, which must be F32 or F64.
pub(crate) fn float_dtype(ctx: &str, what: &str, t: &Tensor) -> Result<DType> {
    match t.dtype() {
        dt @ (DType::F32 | DType::F64) => Ok(dt),
        dt => Err(Error::InvalidInput(format!(
            "{ctx}: the {what} has dtype {dt:?}; only F32 and F64 are supported"
        ))),
    }
}

/// Checks that `other` has the dtype and device of `reference`.
pub(crate) fn same_kind(ctx: &str, what: &str, reference: &Tensor, other: &Tensor) -> Result<()> {
    if other.dtype() != reference.dtype() {
        return Err(Error::InvalidInput(format!(
            "{ctx}: the {what} has dtype {:?} but the other operand has {:?}",
            other.dtype(),
            reference.dtype()
        )));
    }
    if !other.device().same_device(reference.device()) {
        return Err(Error::InvalidInput(format!(
            "{ctx}: the {what} is on {:?} but the other operand is on {:?}",
            other.device().location(),
            reference.device().location()
        )));
    }
    Ok(())
}

/// Checks the forward operands: a float input, the weight and bias of its dtype and device,
/// one bias element per output channel. Returns the dtype.
fn check_operands(
    ctx: &str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
) -> Result<DType> {
    let dtype = float_dtype(ctx, "input", x)?;
    same_kind(ctx, "weight", x, weight)?;
    if let Some(b) = bias {
        same_kind(ctx, "bias", x, b)?;
        if b.dims() != [g.o] {
            return Err(Error::ShapeMismatch {
                context: format!("{ctx}: bias"),
                expected: vec![g.o],
                found: b.dims().to_vec(),
            });
        }
    }
    Ok(dtype)
}

fn to_cpu(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_device(&Device::Cpu)?)
}

// ---------------------------------------------------------------------------------------------
// Non-CPU forward
// ---------------------------------------------------------------------------------------------

/// Forward pass with candle's own kernels (used on non-CPU devices; exercised on the CPU by the
/// tests). candle's `conv2d` takes one stride, one dilation and one padding for both axes, so
/// geometries with different strides or dilations per axis go through the CPU kernel instead.
fn conv2d_device(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: &Conv2dSpec,
    g: &ConvGeom,
) -> Result<Tensor> {
    if spec.stride[0] != spec.stride[1] || spec.dilation[0] != spec.dilation[1] {
        let y =
            conv2d(&to_cpu(x)?, &to_cpu(weight)?, bias.map(to_cpu).transpose()?.as_ref(), spec)?;
        return Ok(y.to_device(x.device())?);
    }
    let p = spec.padding;
    let uniform = p.top == p.bottom && p.top == p.left && p.left == p.right;
    let (xp, pad) = if uniform {
        (x.clone(), p.top)
    } else {
        (x.pad_with_zeros(2, p.top, p.bottom)?.pad_with_zeros(3, p.left, p.right)?, 0)
    };
    let y = xp.conv2d(weight, pad, spec.stride[0], spec.dilation[0], spec.groups)?;
    match bias {
        Some(b) => Ok(y.broadcast_add(&b.reshape((1, g.o, 1, 1))?)?),
        None => Ok(y),
    }
}

// ---------------------------------------------------------------------------------------------
// CPU drivers (dtype-generic)
// ---------------------------------------------------------------------------------------------

fn conv2d_cpu<T: Element>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
) -> Result<Tensor> {
    let out =
        with_forward_operands::<T, _>(x, weight, bias, |xs, ws, b| forward_kernel(xs, ws, b, g))?;
    from_cpu_vec(out, g.output_dims().to_vec())
}

/// Runs `f` on the host values of a convolution's input, weight and bias.
fn with_forward_operands<T: Element, R>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    f: impl FnOnce(&[T], &[T], Option<&[T]>) -> R,
) -> Result<R> {
    let bias: Option<Vec<T>> =
        bias.map(|b| cpu_slice::<T, _>(b, |s| Ok(s.to_vec()))).transpose()?;
    cpu_slice::<T, _>(x, |xs| cpu_slice::<T, _>(weight, |ws| Ok(f(xs, ws, bias.as_deref()))))
}

fn conv2d_pooled_cpu<T: Element>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    pooling: &MaxPoolOfRelu,
) -> Result<Tensor> {
    let out = with_forward_operands::<T, _>(x, weight, bias, |xs, ws, b| {
        forward_kernel_then(xs, ws, b, g, pooling.output_image(), |y, d| pooling.image(y, d))
    })?;
    from_cpu_vec(out, pooling.output_dims().to_vec())
}

fn conv2d_traced_cpu<T: Element>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &ConvGeom,
    pooling: &MaxPoolOfRelu,
) -> Result<[Tensor; 3]> {
    let [z, r, p] = with_forward_operands::<T, _>(x, weight, bias, |xs, ws, b| {
        forward_kernel_traced(xs, ws, b, g, pooling)
    })?;
    let dims = g.output_dims();
    Ok([
        from_cpu_vec(z, dims.to_vec())?,
        from_cpu_vec(r, dims.to_vec())?,
        from_cpu_vec(p, pooling.output_dims().to_vec())?,
    ])
}

fn input_vjp_cpu<T: Element>(grad_out: &Tensor, weight: &Tensor, g: &ConvGeom) -> Result<Tensor> {
    let dx = cpu_slice::<T, _>(grad_out, |gs| {
        cpu_slice::<T, _>(weight, |ws| Ok(input_vjp_kernel(gs, ws, g)))
    })?;
    from_cpu_vec(dx, (g.n, g.c, g.h, g.w))
}

/// The routed input VJP on the CPU, or `None` where the vector kernel does not pay off for
/// this type and shape or the weight is not finite.
fn routed_vjp_cpu<T: Element>(
    relu_out: &Tensor,
    grad_out: &Tensor,
    weight: &Tensor,
    g: &ConvGeom,
    pooling: &MaxPoolOfRelu,
) -> Result<Option<Tensor>> {
    let shape = g.scatter();
    if !T::vector_scatter(&shape) {
        return Ok(None);
    }
    let dx = cpu_slice::<T, _>(weight, |ws| {
        if !ws.iter().all(|v| v.is_finite()) {
            return Ok(None);
        }
        let w = weight_rows(ws, &shape);
        cpu_slice::<T, _>(relu_out, |xs| {
            cpu_slice::<T, _>(grad_out, |gs| {
                Ok(Some(routed_vjp_kernel(xs, gs, w.as_slice(), g, pooling, &shape)))
            })
        })
    })?;
    dx.map(|dx| from_cpu_vec(dx, (g.n, g.c, g.h, g.w))).transpose()
}

/// The dense input VJP of a convolution followed by a ReLU and a max pool, one image per
/// task: the pool's VJP of each image into a per-task buffer, then the convolution's input
/// VJP of that image while the buffer is still in cache. The same kernels on the same data
/// as [`max_pool2d_relu_vjp`] and [`conv2d_input_vjp`] in sequence (bitwise the same
/// values), without writing the convolution's whole output gradient to memory and reading
/// it back.
fn pooled_vjp_cpu<T: Element>(
    relu_out: &Tensor,
    grad_out: &Tensor,
    weight: &Tensor,
    g: &ConvGeom,
    pooling: &MaxPoolOfRelu,
) -> Result<Tensor> {
    let dx = cpu_slice::<T, _>(relu_out, |xs| {
        cpu_slice::<T, _>(grad_out, |gs| {
            cpu_slice::<T, _>(weight, |ws| Ok(pooled_vjp_kernel(xs, gs, ws, g, pooling)))
        })
    })?;
    from_cpu_vec(dx, (g.n, g.c, g.h, g.w))
}

fn weight_vjp_cpu<T: Element>(x: &Tensor, grad_out: &Tensor, g: &ConvGeom) -> Result<Tensor> {
    let dw = cpu_slice::<T, _>(x, |xs| {
        cpu_slice::<T, _>(grad_out, |gs| Ok(weight_vjp_kernel(xs, gs, g)))
    })?;
    from_cpu_vec(dw, (g.o, g.cg, g.kh, g.kw))
}

// ---------------------------------------------------------------------------------------------
// Kernels on slices
// ---------------------------------------------------------------------------------------------

/// `[N, O, OH, OW]` output of the convolution of `x` (`[N, C, H, W]`) with `w`.
fn forward_kernel<T: Element>(x: &[T], w: &[T], bias: Option<&[T]>, g: &ConvGeom) -> Vec<T> {
    let len = g.n * g.output_image();
    if len == 0 {
        return Vec::new();
    }
    let product = g.forward_product::<T>();
    let w = forward_weight(w, g, product);
    let w = w.as_ref();
    let in_img = g.input_image();
    let image = |i: usize| &x[i * in_img..(i + 1) * in_img];
    let buffers = || forward_buffers::<T>(g, product);
    let write = |out: &mut [MaybeUninit<T>]| {
        if g.batch_parallel() {
            out.par_chunks_mut(g.output_image()).enumerate().for_each_init(
                buffers,
                |(col, t), (i, y)| {
                    forward_image(image(i), w, bias, g, product, col, t, y, Parallelism::None)
                },
            );
        } else {
            let (mut col, mut t) = buffers();
            for (i, y) in out.chunks_mut(g.output_image()).enumerate() {
                let par = Parallelism::Rayon(0);
                forward_image(image(i), w, bias, g, product, &mut col, &mut t, y, par);
            }
        }
    };
    // SAFETY: the output is cut into whole images and `forward_image` initializes every
    // element of its image.
    unsafe { vec_written_by(len, write) }
}

/// [`forward_kernel`], with each image's output computed into a per-task buffer and handed
/// to `epilogue`, which writes the image's `out_image` elements of the result.
fn forward_kernel_then<T: Element>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
    out_image: usize,
    epilogue: impl Fn(&[T], &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    if g.n * out_image == 0 {
        return Vec::new();
    }
    let product = g.forward_product::<T>();
    let w = forward_weight(w, g, product);
    let w = w.as_ref();
    let in_img = g.input_image();
    let image = |i: usize| &x[i * in_img..(i + 1) * in_img];
    let buffers = || {
        let (col, t) = forward_buffers::<T>(g, product);
        (col, t, vec![MaybeUninit::uninit(); g.output_image()])
    };
    let run = |(col, t, y): &mut (Vec<T>, Vec<T>, Vec<MaybeUninit<T>>),
               i: usize,
               dst: &mut [MaybeUninit<T>],
               par: Parallelism| {
        forward_image(image(i), w, bias, g, product, col, t, y, par);
        // SAFETY: `forward_image` initializes every element of its image; MaybeUninit<T>
        // has T's layout.
        let y = unsafe { &*(y.as_slice() as *const [MaybeUninit<T>] as *const [T]) };
        epilogue(y, dst);
    };
    let write = |out: &mut [MaybeUninit<T>]| {
        if g.batch_parallel() {
            out.par_chunks_mut(out_image)
                .enumerate()
                .for_each_init(buffers, |bufs, (i, dst)| run(bufs, i, dst, Parallelism::None));
        } else {
            let mut bufs = buffers();
            for (i, dst) in out.chunks_mut(out_image).enumerate() {
                run(&mut bufs, i, dst, Parallelism::Rayon(0));
            }
        }
    };
    // SAFETY: the output is cut into whole images and `epilogue` writes every element of
    // its image.
    unsafe { vec_written_by(g.n * out_image, write) }
}

/// [`forward_kernel`] followed, image by image, by the ReLU and the max pool of
/// [`conv2d_relu_max_pool2d_traced`]: the convolution, ReLU and pooled outputs.
fn forward_kernel_traced<T: Element>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
    pooling: &MaxPoolOfRelu,
) -> [Vec<T>; 3] {
    let (out_img, pool_img) = (g.output_image(), pooling.output_image());
    if g.n * pool_img == 0 || out_img == 0 {
        let zeros = |len: usize| vec![T::zero(); len];
        return [zeros(g.n * out_img), zeros(g.n * out_img), zeros(g.n * pool_img)];
    }
    let product = g.forward_product::<T>();
    let w = forward_weight(w, g, product);
    let w = w.as_ref();
    let in_img = g.input_image();
    let image = |i: usize| &x[i * in_img..(i + 1) * in_img];
    let buffers = || forward_buffers::<T>(g, product);
    let run = |(col, t): &mut (Vec<T>, Vec<T>),
               i: usize,
               [z, r, p]: [&mut [MaybeUninit<T>]; 3],
               par: Parallelism| {
        forward_image(image(i), w, bias, g, product, col, t, z, par);
        // SAFETY: `forward_image` initializes every element of its image; MaybeUninit<T>
        // has T's layout.
        let z = unsafe { &*(z as *const [MaybeUninit<T>] as *const [T]) };
        // The ReLU of `pointwise::relu` (NaN and -0 give +0).
        for (r, &v) in r.iter_mut().zip(z) {
            r.write(if v > T::zero() { v } else { T::zero() });
        }
        pooling.image(z, p);
    };
    let (mut relu, mut pooled) = (Vec::new(), Vec::new());
    let write_z = |zs: &mut [MaybeUninit<T>]| {
        let write_r = |rs: &mut [MaybeUninit<T>]| {
            let write_p = |ps: &mut [MaybeUninit<T>]| {
                if g.batch_parallel() {
                    zs.par_chunks_mut(out_img)
                        .zip(rs.par_chunks_mut(out_img))
                        .zip(ps.par_chunks_mut(pool_img))
                        .enumerate()
                        .for_each_init(buffers, |bufs, (i, ((z, r), p))| {
                            run(bufs, i, [z, r, p], Parallelism::None)
                        });
                } else {
                    let mut bufs = buffers();
                    let images = zs.chunks_mut(out_img).zip(rs.chunks_mut(out_img));
                    for (i, ((z, r), p)) in images.zip(ps.chunks_mut(pool_img)).enumerate() {
                        run(&mut bufs, i, [z, r, p], Parallelism::Rayon(0));
                    }
                }
            };
            // SAFETY: every image's pooled output is written by `run`.
            pooled = unsafe { vec_written_by(g.n * pool_img, write_p) };
        };
        // SAFETY: every image's ReLU output is written by `run`.
        relu = unsafe { vec_written_by(g.n * out_img, write_r) };
    };
    // SAFETY: every image's convolution output is written by `forward_image`.
    let conv = unsafe { vec_written_by(g.n * out_img, write_z) };
    [conv, relu, pooled]
}

/// The weight as [`forward_image`] reads it: taps first for the direct correlation
/// ([`taps_first`]), each group transposed for the channels-last product
/// ([`transposed_groups`]), as stored for the column product.
fn forward_weight<'a, T: Element>(w: &'a [T], g: &ConvGeom, product: Product) -> Cow<'a, [T]> {
    match product {
        Product::Direct(_) => Cow::Owned(taps_first(w, g, false)),
        Product::ChannelsLast => Cow::Owned(transposed_groups(w, g)),
        Product::Columns => Cow::Borrowed(w),
    }
}

/// One task's scratch for [`forward_image`]: the column matrix (the padded channels-last
/// input for the direct correlation) and the channels-last product.
fn forward_buffers<T: Element>(g: &ConvGeom, product: Product) -> (Vec<T>, Vec<T>) {
    let (col_len, t_len) = match product {
        Product::Direct(shape) => (shape.input_len(), shape.output_len()),
        Product::ChannelsLast => (g.col_len(), g.og * g.p()),
        Product::Columns => (g.col_len(), 0),
    };
    (vec![T::zero(); col_len], vec![T::zero(); t_len])
}

/// The weight `[O, C, kh, kw]` (one group) as the direct correlation reads it, taps first:
/// `[kh, kw, C, O]` for the forward pass; for the input VJP (`vjp`) the taps flipped and the
/// channels exchanged, `[kh, kw, O, C]` holding `w[o, c, kh - 1 - p, kw - 1 - q]` at
/// `[p, q, o, c]`.
fn taps_first<T: Element>(w: &[T], g: &ConvGeom, vjp: bool) -> Vec<T> {
    let (c, o, taps) = (g.c, g.o, g.kh * g.kw);
    let mut out = vec![T::zero(); w.len()];
    // One task per tap: its `C x O` (or `O x C`) block is contiguous.
    out.par_chunks_mut((c * o).max(1)).enumerate().for_each(|(tap, block)| {
        let from = if vjp { taps - 1 - tap } else { tap };
        for (oc, filters) in w.chunks_exact(c * taps).enumerate().take(o) {
            for (ci, tap_values) in filters.chunks_exact(taps).enumerate() {
                let dst = if vjp { oc * c + ci } else { ci * o + oc };
                block[dst] = tap_values[from];
            }
        }
    });
    out
}

/// Each group's weight `[O/G, K]` transposed to `[K, O/G]` (row-major), groups in order.
fn transposed_groups<T: Element>(w: &[T], g: &ConvGeom) -> Vec<T> {
    let (k, og) = (g.k(), g.og);
    let mut wt = Vec::with_capacity(w.len());
    for wg in w.chunks_exact((og * k).max(1)) {
        for kk in 0..k {
            wt.extend((0..og).map(|o| wg[o * k + kk]));
        }
    }
    wt
}

/// Copies one image's channel planes `src` (`[ch, h, w]`) into the padded plane `dst` of
/// the direct correlation (rows of `ch` lines of `cols`, see [`super::direct`]) with the
/// top-left input element at row `top`, column `left`; everything around it zero.
fn pad_rows<T: Element>(
    src: &[T],
    [ch, h, w]: [usize; 3],
    [top, left]: [usize; 2],
    cols: usize,
    dst: &mut [T],
) {
    dst.fill(T::zero());
    for (c, plane) in src.chunks_exact(h * w).enumerate().take(ch) {
        for (r, line) in plane.chunks_exact(w).enumerate() {
            copy_short(&mut dst[((r + top) * ch + c) * cols + left..][..w], line);
        }
    }
}

/// One image: `y_g = W_g · im2col(x_g)` (+ bias) for every group `g`; initializes all of `y`.
///
/// For [`Product::Direct`] the input is padded channels-last into `col` and correlated
/// ([`super::direct`]) into `t` (`[OH*OW, O]`), which is transposed into `y` with the bias
/// added. For [`Product::ChannelsLast`] the product is taken channels-last,
/// `t = im2col(x_g)ᵀ · W_gᵀ` (`[OH*OW, O/G]`), and transposed likewise; for
/// [`Product::Columns`] `gemm` accumulates `W_g · im2col(x_g)` onto the bias in `y_g`
/// directly. `w` is the weight from [`forward_weight`] for `product`.
#[allow(clippy::too_many_arguments)]
fn forward_image<T: Element>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
    product: Product,
    col: &mut [T],
    t: &mut [T],
    y: &mut [MaybeUninit<T>],
    par: Parallelism,
) {
    let (k, p, plane, og) = (g.k(), g.p(), g.h * g.w, g.og);
    let bias_of = |o: usize| bias.map_or(T::zero(), |b| b[o]);
    if let Product::Direct(shape) = product {
        let padded = &mut col[..shape.input_len()];
        pad_rows(x, [g.c, g.h, g.w], [g.pad_top, g.pad_left], shape.padded_cols(), padded);
        T::correlate(&shape, padded, w, t);
        return transpose_into(t, g.o, p, bias_of, y);
    }
    for grp in 0..g.groups {
        let xg = &x[grp * g.cg * plane..][..g.cg * plane];
        let wg = &w[grp * og * k..][..og * k];
        let yg = &mut y[grp * og * p..][..og * p];
        let cols: &[T] = if g.pointwise {
            xg
        } else {
            im2col(xg, g, col);
            col
        };
        let bias_of = |o: usize| bias_of(grp * og + o);
        if !matches!(product, Product::ChannelsLast) {
            // The bias (or zero) first, so that gemm accumulates onto it.
            let yg = fill_rows_init(yg, p, bias_of);
            let (w, cols) = (Mat { data: wg, rs: k, cs: 1 }, Mat { data: cols, rs: p, cs: 1 });
            matmul(og, p, k, yg, true, w, cols, par);
            continue;
        }
        let (cols, w) = (Mat { data: cols, rs: 1, cs: p }, Mat { data: wg, rs: og, cs: 1 });
        matmul(p, og, k, t, false, cols, w, par);
        transpose_into(t, og, p, bias_of, yg);
    }
}

/// `y[o, pix] = t[pix, o] + bias_of(o)` for the channels-last product `t` (`[positions,
/// channels]`); initializes all of `y` (`[channels, positions]`).
fn transpose_into<T: Element>(
    t: &[T],
    channels: usize,
    positions: usize,
    bias_of: impl Fn(usize) -> T,
    y: &mut [MaybeUninit<T>],
) {
    for (o, row) in y.chunks_exact_mut(positions).enumerate().take(channels) {
        let b = bias_of(o);
        for (pix, d) in row.iter_mut().enumerate() {
            d.write(t[pix * channels + o] + b);
        }
    }
}

/// The product [`input_vjp_image`] takes for `g`, and the weight as it reads it where that
/// is not `w` itself: flipped and transposed for the direct correlation, taps outermost for
/// the channels-last product.
fn input_vjp_weight<T: Element>(w: &[T], g: &ConvGeom) -> (Product, Option<Vec<T>>) {
    let product = g.input_vjp_product::<T>();
    let reordered = match product {
        Product::Direct(_) => Some(taps_first(w, g, true)),
        Product::ChannelsLast => Some(taps_outermost(w, g)),
        Product::Columns => None,
    };
    (product, reordered)
}

/// One task's scratch for [`input_vjp_image`]: the column matrix, or the padded output
/// gradient and the channels-last result.
fn input_vjp_scratch<T: Element>(g: &ConvGeom, product: Product) -> Vec<T> {
    match product {
        Product::Direct(shape) => vec![T::zero(); shape.input_len() + shape.output_len()],
        _ => vec![T::zero(); g.col_len()],
    }
}

/// `[N, C, H, W]` input gradient for the output gradient `go` (`[N, O, OH, OW]`).
fn input_vjp_kernel<T: Element>(go: &[T], w: &[T], g: &ConvGeom) -> Vec<T> {
    let mut dx = vec![T::zero(); g.n * g.input_image()];
    if dx.is_empty() {
        return dx;
    }
    let (product, reordered) = input_vjp_weight(w, g);
    let w = reordered.as_deref().unwrap_or(w);
    let scratch = || input_vjp_scratch(g, product);
    let out_img = g.output_image();
    let image = |i: usize| &go[i * out_img..(i + 1) * out_img];
    if g.batch_parallel() {
        dx.par_chunks_mut(g.input_image()).enumerate().for_each_init(scratch, |col, (i, dxi)| {
            input_vjp_image(image(i), w, g, product, col, dxi, Parallelism::None)
        });
    } else {
        let mut col = scratch();
        for (i, dxi) in dx.chunks_mut(g.input_image()).enumerate() {
            input_vjp_image(image(i), w, g, product, &mut col, dxi, Parallelism::Rayon(0));
        }
    }
    dx
}

/// [`input_vjp_kernel`] of the pool's VJP ([`MaxPoolOfRelu::vjp_image`]), image by image:
/// `x` is the ReLU's output (`[N, O, OH, OW]`), `go` the pooled gradient; `g` must be
/// [`ConvGeom::batch_parallel`].
fn pooled_vjp_kernel<T: Element>(
    x: &[T],
    go: &[T],
    w: &[T],
    g: &ConvGeom,
    pooling: &MaxPoolOfRelu,
) -> Vec<T> {
    let mut dx = vec![T::zero(); g.n * g.input_image()];
    if dx.is_empty() {
        return dx;
    }
    let (product, reordered) = input_vjp_weight(w, g);
    let w = reordered.as_deref().unwrap_or(w);
    let (out_img, pooled_img) = (g.output_image(), pooling.output_image());
    let scratch = || (vec![T::zero(); out_img], input_vjp_scratch(g, product));
    // A few tasks per thread: each allocates its scratch once.
    let per_task = g.n.div_ceil(4 * rayon::current_num_threads()).max(1);
    dx.par_chunks_mut(g.input_image()).with_min_len(per_task).enumerate().for_each_init(
        scratch,
        |(routed, col), (i, dxi)| {
            pooling.vjp_image(
                &x[i * out_img..][..out_img],
                &go[i * pooled_img..][..pooled_img],
                routed,
            );
            input_vjp_image(routed, w, g, product, col, dxi, Parallelism::None)
        },
    );
    dx
}

/// Each group's weight `[O/G, C/G, kh, kw]` with its columns reordered to `[O/G, kh, kw, C/G]`
/// (the channel innermost), groups in order.
fn taps_outermost<T: Element>(w: &[T], g: &ConvGeom) -> Vec<T> {
    let (taps, cg) = (g.kh * g.kw, g.cg);
    let mut out = Vec::with_capacity(w.len());
    for row in w.chunks_exact((cg * taps).max(1)) {
        for tap in 0..taps {
            out.extend((0..cg).map(|c| row[c * taps + tap]));
        }
    }
    out
}

/// One image: `x̄_g = col2im(W_gᵀ · ȳ_g)` for every group `g`; `dx` must be zero on entry.
///
/// For [`Product::Direct`] the output gradient is padded channels-last and correlated with the
/// flipped, transposed weight ([`taps_first`]); the channels-last result is transposed into
/// `dx`. For [`Product::ChannelsLast`] the column matrix is computed transposed and channels
/// innermost, `ȳ_gᵀ · W'_g` (`[OH*OW, kh*kw*C/G]`, `W'` from [`taps_outermost`]), and
/// scattered by [`col2im_channels_last`]; for [`Product::Columns`] by [`col2im`].
fn input_vjp_image<T: Element>(
    go: &[T],
    w: &[T],
    g: &ConvGeom,
    product: Product,
    col: &mut [T],
    dx: &mut [T],
    par: Parallelism,
) {
    let (k, p, plane) = (g.k(), g.p(), g.h * g.w);
    if let Product::Direct(shape) = product {
        let (padded, t) = col.split_at_mut(shape.input_len());
        let corner = [g.kh - 1 - g.pad_top, g.kw - 1 - g.pad_left];
        pad_rows(go, [g.o, g.oh, g.ow], corner, shape.padded_cols(), padded);
        T::correlate(&shape, padded, w, t);
        for (c, dxc) in dx.chunks_exact_mut(plane).enumerate().take(g.c) {
            for (pix, d) in dxc.iter_mut().enumerate() {
                *d = t[pix * g.c + c];
            }
        }
        return;
    }
    for grp in 0..g.groups {
        let gog = &go[grp * g.og * p..][..g.og * p];
        let wg = &w[grp * g.og * k..][..g.og * k];
        let dxg = &mut dx[grp * g.cg * plane..][..g.cg * plane];
        if matches!(product, Product::ChannelsLast) {
            let (dy, w) = (Mat { data: gog, rs: 1, cs: p }, Mat { data: wg, rs: k, cs: 1 });
            matmul(p, k, g.og, col, false, dy, w, par);
            col2im_channels_last(col, g, dxg);
            continue;
        }
        let lhs = Mat { data: wg, rs: 1, cs: k };
        let rhs = Mat { data: gog, rs: p, cs: 1 };
        if g.pointwise {
            matmul(k, p, g.og, dxg, false, lhs, rhs, par);
        } else {
            matmul(k, p, g.og, col, false, lhs, rhs, par);
            col2im(col, g, dxg);
        }
    }
}

/// `[N, C, H, W]` input gradient from the ReLU's output `x` (`[N, O, OH, OW]`) and the pooled
/// gradient `go`, one image per task: the pool's routes ([`MaxPoolOfRelu::route`]), scattered with the weight rows `w` ([`weight_rows`]) into a zeroed padded plane,
/// whose interior is then transposed into the image's channel planes.
fn routed_vjp_kernel<T: Element>(
    x: &[T],
    go: &[T],
    w: &[T],
    g: &ConvGeom,
    pooling: &MaxPoolOfRelu,
    shape: &Scatter,
) -> Vec<T> {
    let (x_img, g_img, plane) = (g.output_image(), pooling.output_image(), g.h * g.w);
    let cp = shape.channels();
    let scratch = || (Routes::default(), Aligned::zeroed(shape.plane_len()));
    let write = |dx: &mut [MaybeUninit<T>]| {
        dx.par_chunks_mut(g.input_image()).enumerate().for_each_init(
            scratch,
            |(routes, padded), (i, dxi)| {
                let (xi, gi) = (&x[i * x_img..][..x_img], &go[i * g_img..][..g_img]);
                pooling.route(xi, gi, routes);
                let padded = padded.as_mut_slice();
                padded.fill(T::zero());
                T::scatter(shape, routes, w, padded);
                for (c, dxc) in dxi.chunks_exact_mut(plane).enumerate() {
                    for (r, line) in dxc.chunks_exact_mut(g.w).enumerate() {
                        let row = ((r + g.pad_top) * shape.plane_cols + g.pad_left) * cp + c;
                        for (col, d) in line.iter_mut().enumerate() {
                            d.write(padded[row + col * cp]);
                        }
                    }
                }
            },
        )
    };
    // SAFETY: the output is cut into whole images and every element of each image's channel
    // planes is written by the transposition.
    unsafe { vec_written_by(g.n * g.input_image(), write) }
}

/// `[O, C/G, kh, kw]` weight gradient summed over the batch, in fixed chunks and fixed order.
fn weight_vjp_kernel<T: Element>(x: &[T], go: &[T], g: &ConvGeom) -> Vec<T> {
    let len = g.o * g.k();
    if len == 0 || g.n == 0 || g.p() == 0 {
        return vec![T::zero(); len];
    }
    let (in_img, out_img) = (g.input_image(), g.output_image());
    let chunks = g.n.div_ceil(WEIGHT_GRAD_CHUNK);
    let chunk = |col: &mut Vec<T>, ci: usize, par: Parallelism| {
        let mut dw = vec![T::zero(); len];
        let images = ci * WEIGHT_GRAD_CHUNK..((ci + 1) * WEIGHT_GRAD_CHUNK).min(g.n);
        for i in images {
            let xi = &x[i * in_img..(i + 1) * in_img];
            let gi = &go[i * out_img..(i + 1) * out_img];
            weight_vjp_image(xi, gi, g, col, &mut dw, par);
        }
        dw
    };
    let partials: Vec<Vec<T>> = if g.batch_parallel() && chunks > 1 {
        (0..chunks)
            .into_par_iter()
            .map_init(|| vec![T::zero(); g.col_len()], |col, ci| chunk(col, ci, Parallelism::None))
            .collect()
    } else {
        let mut col = vec![T::zero(); g.col_len()];
        (0..chunks).map(|ci| chunk(&mut col, ci, Parallelism::Rayon(0))).collect()
    };
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![T::zero(); len]);
    for part in parts {
        for (t, v) in total.iter_mut().zip(part) {
            *t += v;
        }
    }
    total
}

/// One image: `w̄_g += ȳ_g · im2col(x_g)ᵀ` for every group `g`.
fn weight_vjp_image<T: Element>(
    x: &[T],
    go: &[T],
    g: &ConvGeom,
    col: &mut [T],
    dw: &mut [T],
    par: Parallelism,
) {
    let (k, p, plane) = (g.k(), g.p(), g.h * g.w);
    for grp in 0..g.groups {
        let xg = &x[grp * g.cg * plane..][..g.cg * plane];
        let gog = &go[grp * g.og * p..][..g.og * p];
        let dwg = &mut dw[grp * g.og * k..][..g.og * k];
        let cols: &[T] = if g.pointwise {
            xg
        } else {
            im2col(xg, g, col);
            col
        };
        matmul(
            g.og,
            k,
            p,
            dwg,
            true,
            Mat { data: gog, rs: p, cs: 1 },
            Mat { data: cols, rs: 1, cs: p },
            par,
        );
    }
}

/// The outputs `j` in `[lo, hi)` (clipped to `[0, out_len)`) whose input position
/// `j * stride + offset` lies inside `[0, in_len)`.
fn valid_range(out_len: usize, in_len: usize, stride: usize, offset: isize) -> (usize, usize) {
    let lo = if offset >= 0 { 0 } else { offset.unsigned_abs().div_ceil(stride) };
    let end = in_len as isize - offset;
    let hi = if end <= 0 { 0 } else { (end as usize).div_ceil(stride) };
    let hi = hi.min(out_len);
    (lo.min(hi), hi)
}

/// Unfolds one group's input `x` (`[C/G, H, W]`) into `col` (`[C/G * kh * kw, OH * OW]`,
/// row `(c * kh + p) * kw + q`, column `i * OW + j`), zero where the kernel reads padding.
fn im2col<T: Element>(x: &[T], g: &ConvGeom, col: &mut [T]) {
    if g.unit_stride_and_dilation() {
        return im2col_unit(x, g, col);
    }
    let (p_len, plane) = (g.p(), g.h * g.w);
    let zero = T::zero();
    let mut rows = col.chunks_exact_mut(p_len);
    for c in 0..g.cg {
        let src_plane = &x[c * plane..][..plane];
        for ki in 0..g.kh {
            let roff = (ki * g.dh) as isize - g.pad_top as isize;
            let (r_lo, r_hi) = valid_range(g.oh, g.h, g.sh, roff);
            for kj in 0..g.kw {
                let coff = (kj * g.dw) as isize - g.pad_left as isize;
                let (c_lo, c_hi) = valid_range(g.ow, g.w, g.sw, coff);
                let Some(row) = rows.next() else { return };
                row[..r_lo * g.ow].fill(zero);
                row[r_hi * g.ow..].fill(zero);
                for i in r_lo..r_hi {
                    let iy = ((i * g.sh) as isize + roff) as usize;
                    let src = &src_plane[iy * g.w..][..g.w];
                    let dst = &mut row[i * g.ow..][..g.ow];
                    dst[..c_lo].fill(zero);
                    dst[c_hi..].fill(zero);
                    if c_hi > c_lo {
                        let s0 = ((c_lo * g.sw) as isize + coff) as usize;
                        if g.sw == 1 {
                            dst[c_lo..c_hi].copy_from_slice(&src[s0..s0 + (c_hi - c_lo)]);
                        } else {
                            let srcs = src[s0..].iter().step_by(g.sw);
                            for (d, &s) in dst[c_lo..c_hi].iter_mut().zip(srcs) {
                                *d = s;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] for unit strides and dilations (almost every convolution): each channel is
/// first copied into a zero-bordered padded plane, after which every row of the column
/// matrix is a sequence of plain `OW`-element copies from it, without the per-row range
/// checks and zero fills of the general case (which, for the SC CNN's 14-wide rows, cost
/// more in `memset`/`memcpy` calls than in copying).
fn im2col_unit<T: Element>(x: &[T], g: &ConvGeom, col: &mut [T]) {
    let (pw, plane) = (g.ow + g.kw - 1, g.h * g.w);
    let mut padded = vec![T::zero(); (g.oh + g.kh - 1) * pw];
    let mut rows = col.chunks_exact_mut(g.p());
    for c in 0..g.cg {
        // Only the interior is written: the border stays zero for every channel.
        for (r, line) in x[c * plane..][..plane].chunks_exact(g.w).enumerate() {
            copy_short(&mut padded[(r + g.pad_top) * pw + g.pad_left..][..g.w], line);
        }
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let Some(row) = rows.next() else { return };
                for (i, dst) in row.chunks_exact_mut(g.ow).enumerate() {
                    copy_short(dst, &padded[(i + ki) * pw + kj..][..g.ow]);
                }
            }
        }
    }
}

/// [`col2im`] for unit strides and dilations: each channel's taps are summed into a padded
/// plane (in the general path's order, so the sums are the same bits) whose interior is then
/// added onto `dx`.
fn col2im_unit<T: Element>(col: &[T], g: &ConvGeom, dx: &mut [T]) {
    let (pw, plane) = (g.ow + g.kw - 1, g.h * g.w);
    let mut padded = vec![T::zero(); (g.oh + g.kh - 1) * pw];
    let mut rows = col.chunks_exact(g.p());
    for c in 0..g.cg {
        padded.fill(T::zero());
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let Some(row) = rows.next() else { return };
                for (i, src) in row.chunks_exact(g.ow).enumerate() {
                    add_short(&mut padded[(i + ki) * pw + kj..][..g.ow], src);
                }
            }
        }
        for (r, line) in dx[c * plane..][..plane].chunks_exact_mut(g.w).enumerate() {
            add_short(line, &padded[(r + g.pad_top) * pw + g.pad_left..][..g.w]);
        }
    }
}

/// [`col2im`] (unit strides and dilations) of a column matrix stored transposed and channels
/// innermost, `colt[(i * OW + j) * K + (p * kw + q) * C/G + c]`: every (output position, tap)
/// adds one contiguous `C/G`-vector onto a channels-last padded plane, whose interior is then
/// transposed onto `dx`.
fn col2im_channels_last<T: Element>(colt: &[T], g: &ConvGeom, dx: &mut [T]) {
    let (pw, cg, k, plane) = (g.ow + g.kw - 1, g.cg, g.k(), g.h * g.w);
    let mut padded = vec![T::zero(); (g.oh + g.kh - 1) * pw * cg];
    for (pix, taps) in colt.chunks_exact(k).take(g.p()).enumerate() {
        let (i, j) = (pix / g.ow, pix % g.ow);
        for (tap, v) in taps.chunks_exact(cg).enumerate() {
            let (ki, kj) = (tap / g.kw, tap % g.kw);
            add_short(&mut padded[((i + ki) * pw + j + kj) * cg..][..cg], v);
        }
    }
    for (c, dxc) in dx[..cg * plane].chunks_exact_mut(plane).enumerate() {
        for (r, line) in dxc.chunks_exact_mut(g.w).enumerate() {
            let row = (r + g.pad_top) * pw + g.pad_left;
            for (x, d) in line.iter_mut().enumerate() {
                *d += padded[(row + x) * cg + c];
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for short rows: 8-element blocks (the last one overlapping its
/// predecessor) are fixed-size copies the compiler inlines, where `copy_from_slice` calls
/// `memcpy` once per row.
#[inline(always)]
fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    const B: usize = 8;
    let len = dst.len();
    let src = &src[..len];
    if len < B {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s;
        }
        return;
    }
    let mut at = 0;
    while at + B <= len {
        dst[at..at + B].copy_from_slice(&src[at..at + B]);
        at += B;
    }
    if at < len {
        dst[len - B..].copy_from_slice(&src[len - B..]);
    }
}

/// `dst[i] += src[i]` for short rows, in fixed-size blocks of 8, 4 and 1 that the compiler
/// unrolls into whole vector additions (a loop over 14 elements costs more in its
/// vectorized-body/remainder bookkeeping than in adding). Each element is added once, in
/// order, so the sums are those of the plain loop.
#[inline(always)]
fn add_short<T: Element>(dst: &mut [T], src: &[T]) {
    let len = dst.len();
    let src = &src[..len];
    let mut at = 0;
    while at + 8 <= len {
        let (d, s) = (&mut dst[at..at + 8], &src[at..at + 8]);
        for k in 0..8 {
            d[k] += s[k];
        }
        at += 8;
    }
    if at + 4 <= len {
        let (d, s) = (&mut dst[at..at + 4], &src[at..at + 4]);
        for k in 0..4 {
            d[k] += s[k];
        }
        at += 4;
    }
    for k in at..len {
        dst[k] += src[k];
    }
}

/// Adjoint of [`im2col`]: adds every entry of `col` onto the input position it was read from
/// (entries that came from padding are dropped).
fn col2im<T: Element>(col: &[T], g: &ConvGeom, dx: &mut [T]) {
    if g.unit_stride_and_dilation() {
        return col2im_unit(col, g, dx);
    }
    let (p_len, plane) = (g.p(), g.h * g.w);
    let mut rows = col.chunks_exact(p_len);
    for c in 0..g.cg {
        let dst_plane = &mut dx[c * plane..][..plane];
        for ki in 0..g.kh {
            let roff = (ki * g.dh) as isize - g.pad_top as isize;
            let (r_lo, r_hi) = valid_range(g.oh, g.h, g.sh, roff);
            for kj in 0..g.kw {
                let coff = (kj * g.dw) as isize - g.pad_left as isize;
                let (c_lo, c_hi) = valid_range(g.ow, g.w, g.sw, coff);
                let Some(row) = rows.next() else { return };
                if c_hi <= c_lo {
                    continue;
                }
                let s0 = ((c_lo * g.sw) as isize + coff) as usize;
                for i in r_lo..r_hi {
                    let iy = ((i * g.sh) as isize + roff) as usize;
                    let dst = &mut dst_plane[iy * g.w..][..g.w];
                    let src = &row[i * g.ow..][..g.ow][c_lo..c_hi];
                    if g.sw == 1 {
                        for (d, &s) in dst[s0..s0 + (c_hi - c_lo)].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (d, &s) in dst[s0..].iter_mut().step_by(g.sw).zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Padding2d;

    #[test]
    fn valid_range_matches_brute_force() {
        for out_len in 0..6 {
            for in_len in 0..6 {
                for stride in 1..4 {
                    for offset in -5isize..5 {
                        let inside = |j: usize| {
                            let pos = (j * stride) as isize + offset;
                            pos >= 0 && pos < in_len as isize
                        };
                        let (lo, hi) = valid_range(out_len, in_len, stride, offset);
                        for j in 0..out_len {
                            assert_eq!(
                                (lo..hi).contains(&j),
                                inside(j),
                                "out {out_len} in {in_len} stride {stride} offset {offset} j {j}"
                            );
                        }
                    }
                }
            }
        }
    }

    fn ramp(dims: &[usize], scale: f64) -> Tensor {
        let n: usize = dims.iter().product();
        let data: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 * scale - 0.5).collect();
        Tensor::from_vec(data, dims, &Device::Cpu).unwrap()
    }

    /// The candle path used on non-CPU devices, run on the CPU against our kernel: uniform
    /// padding (candle pads), asymmetric padding (`pad_with_zeros` first) and a geometry
    /// candle cannot express (per-axis strides: CPU round trip).
    #[test]
    fn candle_device_path_matches_cpu_kernel() {
        let x = ramp(&[2, 4, 7, 6], 0.01);
        let w = ramp(&[6, 2, 3, 2], 0.013);
        let b = ramp(&[6], 0.1);
        let specs = [
            Conv2dSpec { padding: Padding2d::symmetric(1, 1), groups: 2, ..Default::default() },
            Conv2dSpec {
                stride: [2, 2],
                padding: Padding2d { top: 2, bottom: 0, left: 1, right: 0 },
                dilation: [2, 2],
                groups: 2,
            },
            Conv2dSpec { stride: [1, 2], groups: 2, ..Default::default() },
        ];
        for spec in specs {
            let g = ConvGeom::new("test", x.dims(), w.dims(), &spec).unwrap();
            let ours = conv2d(&x, &w, Some(&b), &spec).unwrap();
            let theirs = conv2d_device(&x, &w, Some(&b), &spec, &g).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f64>().unwrap() < 1e-12, "{spec:?}");
        }
    }

    /// `<col2im(c), x> == <c, im2col(x)>`: the two are adjoint.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        let general = Conv2dSpec {
            stride: [2, 3],
            padding: Padding2d { top: 1, bottom: 2, left: 0, right: 3 },
            dilation: [2, 1],
            groups: 1,
        };
        // Unit strides and dilations take the padded-plane path; asymmetric padding and rows
        // shorter and longer than its 8-element copies and additions.
        let unit = Conv2dSpec {
            padding: Padding2d { top: 2, bottom: 1, left: 0, right: 3 },
            ..Default::default()
        };
        let wide = Conv2dSpec { padding: Padding2d::symmetric(2, 2), ..Default::default() };
        for (spec, input, kernel) in [
            (general, [1, 2, 6, 7], [1, 2, 2, 3]),
            (unit, [1, 2, 6, 7], [1, 2, 2, 3]),
            (wide, [1, 3, 5, 19], [1, 3, 5, 5]),
            // Rows of 14 (the SC CNN's: blocks of 8, 4 and 1) and of 2 (single elements).
            (wide, [1, 2, 4, 14], [1, 2, 5, 5]),
            (Conv2dSpec::default(), [1, 2, 3, 3], [1, 2, 2, 2]),
        ] {
            let g = ConvGeom::new("test", &input, &kernel, &spec).unwrap();
            let len: usize = input.iter().product();
            let x: Vec<f64> = (0..len).map(|i| ((i * 31) % 17) as f64 - 8.0).collect();
            let c: Vec<f64> = (0..g.k() * g.p()).map(|i| ((i * 13) % 11) as f64 - 5.0).collect();
            let mut col = vec![0.0; g.k() * g.p()];
            im2col(&x, &g, &mut col);
            let mut back = vec![0.0; x.len()];
            col2im(&c, &g, &mut back);
            let lhs: f64 = back.iter().zip(&x).map(|(a, b)| a * b).sum();
            let rhs: f64 = c.iter().zip(&col).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{spec:?}");
        }
    }
}
