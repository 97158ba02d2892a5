//! Zero-copy access to the contiguous CPU storage of candle tensors, for our own kernels.

use candle_core::{Device, Shape, Storage, Tensor, WithDType};

use crate::{Error, Result};

/// The float types our kernels are written for (f32 and f64).
pub(crate) trait Element: WithDType + num_traits::Float + Send + Sync + 'static {}

impl Element for f32 {}
impl Element for f64 {}

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
