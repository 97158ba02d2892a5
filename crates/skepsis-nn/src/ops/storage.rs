//! Zero-copy access to the contiguous CPU storage of candle tensors, and output buffers that
//! are written without being zeroed first, for our own kernels.

use std::mem::MaybeUninit;

use candle_core::{Device, Shape, Storage, Tensor, WithDType};

use super::direct::Correlation;
use super::routed::{Routes, Scatter};
use crate::{Error, Result};

/// The float types our kernels are written for (f32 and f64).
pub(crate) trait Element: WithDType + num_traits::Float + Send + Sync + 'static {
    /// `self` if `keep` is 1, `+0` if it is 0, by masking the bits: without the branch that
    /// the compiler may emit for an `if`, which mispredicts on data-dependent flags.
    fn keep_if(self, keep: u8) -> Self;

    /// A vector kernel for the leading windows of one row pair of the 2x2 max-pool VJP
    /// (`ops::pool`; `relu`: followed by the VJP of the ReLU before the pool), where this type
    /// has one; returns how many windows it wrote.
    fn max_pool_2x2_vjp_rows(
        _top: &[Self],
        _bottom: &[Self],
        _g: &[Self],
        _dtop: &mut [MaybeUninit<Self>],
        _dbottom: &mut [MaybeUninit<Self>],
        _relu: bool,
    ) -> usize {
        0
    }

    /// Four windows of the 2x2 max-pool routing (`ops::pool`, `MaxPoolOfRelu::route`) in
    /// vector code, where this type has some: each window's winning slot and gated gradient,
    /// `None` for windows holding a NaN or without a kernel.
    fn max_pool_2x2_winners(
        _top: &[Self],
        _bottom: &[Self],
        _g: &[Self],
    ) -> Option<([u8; 4], [Self; 4])> {
        None
    }

    /// Whether [`Element::correlate`] has a vector kernel for `shape` on this machine that
    /// beats im2col + `gemm` (the convolutions then use it).
    fn vector_correlation(_shape: &Correlation) -> bool {
        false
    }

    /// The direct correlation of [`super::direct`] (its plain loop unless this type has a
    /// vector kernel).
    fn correlate(shape: &Correlation, x: &[Self], w: &[Self], y: &mut [Self]) {
        super::direct::correlate_scalar(shape, x, w, y)
    }

    /// Whether [`Element::scatter`] has a vector kernel for `shape` on this machine that beats
    /// the dense input VJP (the convolutions then route through it).
    fn vector_scatter(_shape: &Scatter) -> bool {
        false
    }

    /// The routed scatter of [`super::routed`] (its plain loop unless this type has a vector
    /// kernel).
    fn scatter(shape: &Scatter, routes: &Routes<Self>, w: &[Self], dx: &mut [Self]) {
        super::routed::scatter_scalar(shape, routes, w, dx)
    }
}

impl Element for f32 {
    fn vector_correlation(shape: &Correlation) -> bool {
        shape.pays_off()
    }

    fn correlate(shape: &Correlation, x: &[f32], w: &[f32], y: &mut [f32]) {
        super::direct::correlate(shape, x, w, y)
    }

    fn vector_scatter(shape: &Scatter) -> bool {
        shape.pays_off()
    }

    fn scatter(shape: &Scatter, routes: &Routes<f32>, w: &[f32], dx: &mut [f32]) {
        super::routed::scatter(shape, routes, w, dx)
    }

    #[inline(always)]
    fn keep_if(self, keep: u8) -> Self {
        f32::from_bits(self.to_bits() & u32::from(keep & 1).wrapping_neg())
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn max_pool_2x2_vjp_rows(
        top: &[f32],
        bottom: &[f32],
        g: &[f32],
        dtop: &mut [MaybeUninit<f32>],
        dbottom: &mut [MaybeUninit<f32>],
        relu: bool,
    ) -> usize {
        super::pool::max_pool_2x2_vjp_rows_sse2(top, bottom, g, dtop, dbottom, relu)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn max_pool_2x2_winners(top: &[f32], bottom: &[f32], g: &[f32]) -> Option<([u8; 4], [f32; 4])> {
        super::pool::max_pool_2x2_winners_sse2(top, bottom, g)
    }
}

impl Element for f64 {
    #[inline(always)]
    fn keep_if(self, keep: u8) -> Self {
        f64::from_bits(self.to_bits() & u64::from(keep & 1).wrapping_neg())
    }
}

/// Runs `f` on the contiguous CPU data of `t` (copying only if `t` is not contiguous).
pub(crate) fn cpu_slice<T: Element, R>(t: &Tensor, f: impl FnOnce(&[T]) -> Result<R>) -> Result<R> {
    if t.dtype() != T::DTYPE {
        return Err(Error::InvalidInput(format!(
            "expected a {:?} tensor, found {:?}",
            T::DTYPE,
            t.dtype()
        )));
    }
    let t = if t.is_contiguous() { t.clone() } else { t.contiguous()? };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(Error::InvalidInput(
            "a CPU kernel was given a tensor on another device".into(),
        ));
    };
    let all = cpu.as_slice::<T>()?;
    let start = layout.start_offset();
    let len = layout.shape().elem_count();
    f(&all[start..start + len])
}

/// Builds a CPU tensor from a vector without copying.
pub(crate) fn from_cpu_vec<T: Element>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// A vector of `len` elements built without zeroing its storage first: `write` receives the
/// uninitialized storage and initializes every element.
///
/// Zeroing an output that a kernel then overwrites cost ~8% of a training epoch and of
/// Integrated Gradients (single-threaded `memset` of fresh activation buffers, measured with
/// perf); here the kernel's own parallel tasks write each block while it is in cache.
///
/// # Safety
/// `write` must initialize all `len` elements of the slice it is given.
pub(crate) unsafe fn vec_written_by<T: Element>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    write(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller guarantees that `write` initialized the first `len` elements (if it
    // panics instead, `v` is dropped with length 0).
    unsafe { v.set_len(len) };
    v
}

/// Initializes `dst`, row by row (rows of `row_len` elements; a shorter last row), with
/// `value(row)` and returns it as an initialized slice.
pub(crate) fn fill_rows_init<T: Copy>(
    dst: &mut [MaybeUninit<T>],
    row_len: usize,
    value: impl Fn(usize) -> T,
) -> &mut [T] {
    for (r, row) in dst.chunks_mut(row_len.max(1)).enumerate() {
        let v = value(r);
        for d in row {
            d.write(v);
        }
    }
    // SAFETY: the rows cover `dst`, so every element was written just above; MaybeUninit<T>
    // has T's layout.
    unsafe { &mut *(dst as *mut [MaybeUninit<T>] as *mut [T]) }
}
