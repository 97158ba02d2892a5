//! Zero-copy access to the contiguous CPU storage of candle tensors, for our own kernels.

use candle_core::{Device, Shape, Storage, Tensor, WithDType};

use crate::{Error, Result};

/// The float types our kernels are written for (f32 and f64).
pub(crate) trait Element: WithDType + num_traits::Float + Send + Sync + 'static {
    /// `self` if `keep` is 1, `+0` if it is 0, by masking the bits: without the branch that
    /// the compiler may emit for an `if`, which mispredicts on data-dependent flags.
    fn keep_if(self, keep: u8) -> Self;
}

impl Element for f32 {
    #[inline(always)]
    fn keep_if(self, keep: u8) -> Self {
        f32::from_bits(self.to_bits() & u32::from(keep & 1).wrapping_neg())
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
