//! Numerical kernels that skepsis implements itself instead of relying on candle.
//!
//! candle 0.11's CPU convolution is several times slower than PyTorch's and its max-pool
//! backward scales the gradient instead of routing it to the maximum, so convolution
//! (forward, input vector-Jacobian product, weight gradient) and pooling (forward and VJP)
//! live here: im2col + the `gemm` crate on the CPU (or a direct AVX-512/AVX2 correlation, `direct`,
//! where it is faster; and for a convolution feeding a ReLU and a max pool, an input VJP that
//! multiplies only the gradients the pool routes, `routed`), parallel over the batch with
//! rayon; candle's kernels on other devices.

pub mod conv;
mod direct;
pub(crate) mod lanes;
pub mod linear;
mod matmul;
pub mod pointwise;
pub mod pool;
mod routed;
mod spec;
mod storage;

pub use spec::{Conv2dSpec, Padding2d, Pool2dSpec};
pub(crate) use storage::{cpu_slice, fill_rows_init, from_cpu_vec, vec_written_by, Element};
