//! Matrix products on strided CPU slices with the `gemm` crate, and their split over threads.
//!
//! `gemm`'s own parallel mode ([`Parallelism::Rayon`]) scales poorly on the thin products of
//! the fully connected layers (batch rows x thousands of features): at `[64, 3136] x [3136,
//! 1024]` it ran at 71 GFLOP/s on two threads against 61 on one, while cutting the product
//! into one column block per thread, each a single-threaded `gemm`, reached 119 (measured on
//! the development machine, Intel Xeon with AVX-512). [`par_matmul`] does that cut.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::{vec_written_by, Element};

/// A strided read-only matrix view: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// Whether every element of a `rows x cols` matrix lies inside `data`.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }

    /// The view of columns `from..` (an offset into `data`).
    fn skip_cols(self, from: usize) -> Mat<'a, T> {
        Mat { data: &self.data[(from * self.cs).min(self.data.len())..], ..self }
    }

    /// The view of rows `from..`.
    fn skip_rows(self, from: usize) -> Mat<'a, T> {
        Mat { data: &self.data[(from * self.rs).min(self.data.len())..], ..self }
    }
}

/// Below this many multiply-adds a product runs on the calling thread: splitting it would
/// cost more in scheduling than it saves.
const MIN_PARALLEL_MACS: usize = 1 << 20;

/// Column blocks are multiples of this many columns, so that every block but the last fills
/// `gemm`'s register tiles.
const COLUMN_ALIGN: usize = 64;

/// `dst[m x n]` (row-major, contiguous) `= (accumulate ? dst : 0) + lhs[m x k] · rhs[k x n]`,
/// single-threaded or with `gemm`'s own parallelism `par`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    lhs: Mat<'_, T>,
    rhs: Mat<'_, T>,
    par: Parallelism,
) {
    assert!(dst.len() >= m * n, "matmul destination too short");
    // SAFETY: `dst` holds the `m x n` row-major matrix (asserted), is borrowed mutably and so
    // aliases neither operand.
    unsafe { matmul_raw(m, n, k, dst.as_mut_ptr(), n, accumulate, lhs, rhs, par) }
}

/// [`matmul`] cut over the rayon pool: into column blocks when `n` is wide enough for one
/// aligned block per thread (each thread then reads only its share of `rhs`), otherwise into
/// row blocks. Every output element stays one dot product over the whole inner dimension,
/// but `gemm` may block that dimension differently for a block than for the whole product,
/// so the result can differ from the single-threaded one in the last bits (as products of
/// different batch sizes already do; `skepsis-attr`'s `tests/batching.rs`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn par_matmul<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    lhs: Mat<'_, T>,
    rhs: Mat<'_, T>,
) {
    assert!(dst.len() >= m * n, "matmul destination too short");
    // SAFETY: `dst` holds the `m x n` row-major matrix (asserted) and is borrowed mutably.
    unsafe { par_matmul_raw(m, n, k, SendPtr(dst.as_mut_ptr()), accumulate, lhs, rhs) }
}

/// The new `m x n` row-major matrix `lhs · rhs`, written by [`par_matmul`]'s kernels without
/// zeroing its storage first.
pub(crate) fn par_matmul_new<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    lhs: Mat<'_, T>,
    rhs: Mat<'_, T>,
) -> Vec<T> {
    let write = |dst: &mut [MaybeUninit<T>]| {
        let dst = SendPtr(dst.as_mut_ptr().cast::<T>());
        // SAFETY: `dst` holds `m * n` elements and is borrowed mutably. Without
        // accumulation gemm stores every element without reading it (and `matmul_raw`
        // writes the zeros of an empty sum itself).
        unsafe { par_matmul_raw(m, n, k, dst, false, lhs, rhs) }
    };
    // SAFETY: see `write`: every element of the `m x n` matrix is written.
    unsafe { vec_written_by(m * n, write) }
}

/// [`par_matmul`] on a raw destination.
///
/// # Safety
/// `dst` must be valid for writes of `m * n` elements (row-major, row stride `n`), readable
/// where `accumulate` is set, and accessed by no one else during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn par_matmul_raw<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: SendPtr<T>,
    accumulate: bool,
    lhs: Mat<'_, T>,
    rhs: Mat<'_, T>,
) {
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < MIN_PARALLEL_MACS {
        // SAFETY: the caller's contract.
        return unsafe {
            matmul_raw(m, n, k, dst.get(), n, accumulate, lhs, rhs, Parallelism::None)
        };
    }
    let (blocks, rows, cols) = if n >= threads * COLUMN_ALIGN {
        let width = n.div_ceil(threads).next_multiple_of(COLUMN_ALIGN);
        (n.div_ceil(width), m, width)
    } else {
        let height = m.div_ceil(threads).max(1);
        (m.div_ceil(height), height, n)
    };
    (0..blocks).into_par_iter().for_each(|b| {
        // Block `b` covers rows `r0..r0 + h` and columns `c0..c0 + w` (one of the two cuts is
        // trivial).
        let (r0, c0) = if cols < n { (0, b * cols) } else { (b * rows, 0) };
        let (h, w) = (rows.min(m - r0), cols.min(n - c0));
        // SAFETY: the blocks tile the `m x n` destination without overlap, so no element is
        // accessed by two tasks, and each lies inside the caller's valid range.
        unsafe {
            matmul_raw(
                h,
                w,
                k,
                dst.get().add(r0 * n + c0),
                n,
                accumulate,
                lhs.skip_rows(r0),
                rhs.skip_cols(c0),
                Parallelism::None,
            )
        }
    });
}

/// A raw destination pointer that may cross into rayon tasks writing disjoint blocks.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not the field).
    fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: the pointer is only dereferenced by `matmul_raw` on blocks that the caller proves
// disjoint; T itself is Send + Sync (Element).
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Sync> Sync for SendPtr<T> {}

/// The one call into `gemm`: `dst` (row stride `dst_rs`, column stride 1)
/// `= (accumulate ? dst : 0) + lhs · rhs`.
///
/// # Safety
/// `dst` must be valid for writes of rows `0..m`, columns `0..n` with row stride `dst_rs`,
/// and no other thread may access those elements during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_raw<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat<'_, T>,
    rhs: Mat<'_, T>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: gemm may skip writing, so clear explicitly.
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    // SAFETY: inside the destination block (caller's contract).
                    unsafe { dst.add(r * dst_rs + c).write(T::zero()) };
                }
            }
        }
        return;
    }
    // The operands are shared slices; these asserts bound every index gemm reads.
    assert!(lhs.fits(m, k) && rhs.fits(k, n), "matmul operands too short");
    // SAFETY: reads stay inside `lhs` and `rhs` (asserted), writes inside the destination
    // block (caller's contract). gemm computes dst = alpha * dst + beta * lhs * rhs, reading
    // dst only when `read_dst` is set.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float64 triple loop.
    fn reference(m: usize, n: usize, k: usize, a: &[f64], b: &[f64], c0: &[f64]) -> Vec<f64> {
        let mut c = c0.to_vec();
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] += (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f64>();
            }
        }
        c
    }

    /// Column and row cuts, accumulation and odd sizes agree with a triple loop.
    #[test]
    fn par_matmul_matches_the_triple_loop() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        // (m, n, k): column cut (n wide), row cut (n narrow), below the parallel threshold.
        for (m, n, k) in [(7, 517, 301), (301, 9, 517), (3, 5, 2), (5, 200, 0)] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 37) % 19) as f64 - 9.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 11) % 23) as f64 - 11.0).collect();
            let c0: Vec<f64> = (0..m * n).map(|i| (i % 5) as f64).collect();
            for accumulate in [false, true] {
                let mut c = if accumulate { c0.clone() } else { vec![f64::NAN; m * n] };
                pool.install(|| {
                    par_matmul(
                        m,
                        n,
                        k,
                        &mut c,
                        accumulate,
                        Mat { data: &a, rs: k, cs: 1 },
                        Mat { data: &b, rs: n, cs: 1 },
                    )
                });
                let zero = vec![0.0; m * n];
                let expected = reference(m, n, k, &a, &b, if accumulate { &c0 } else { &zero });
                assert_eq!(c, expected, "m {m} n {n} k {k} accumulate {accumulate}");
                if !accumulate {
                    let (lhs, rhs) =
                        (Mat { data: &a, rs: k, cs: 1 }, Mat { data: &b, rs: n, cs: 1 });
                    let new = pool.install(|| par_matmul_new(m, n, k, lhs, rhs));
                    assert_eq!(new, expected, "new: m {m} n {n} k {k}");
                }
            }
        }
    }
}
