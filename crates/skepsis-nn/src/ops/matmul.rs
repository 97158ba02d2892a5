//! Matrix products on strided CPU slices with the `gemm` crate, and their split over threads.
//!
//! `gemm`'s own parallel mode ([`Parallelism::Rayon`]) scales poorly on the thin products of
//! the fully connected layers (batch rows x thousands of features): at `[64, 3136] x [3136,
//! 1024]` it ran at 71 GFLOP/s on two threads against 61 on one, while cutting the product
//! into one column block per thread, each a single-threaded `gemm`, reached 119 (measured on
//! the development machine, Intel Xeon with AVX-512). [`par_matmul`] does that cut.

use gemm::Parallelism;
use rayon::prelude::*;

use super::Element;

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
/// row blocks. The cut does not change the result: every output element is the same dot
/// product, computed by the same kernel, whichever block it falls in.
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
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < MIN_PARALLEL_MACS {
        return matmul(m, n, k, dst, accumulate, lhs, rhs, Parallelism::None);
    }
    assert!(dst.len() >= m * n, "matmul destination too short");
    if n >= threads * COLUMN_ALIGN {
        let width = n.div_ceil(threads).next_multiple_of(COLUMN_ALIGN);
        let base = SendPtr(dst.as_mut_ptr());
        (0..n.div_ceil(width)).into_par_iter().for_each(|b| {
            let from = b * width;
            let cols = width.min(n - from);
            // SAFETY: block `b` writes only columns `from..from + cols` of the `m x n`
            // row-major destination (row stride `n`, asserted long enough above), and the
            // blocks' column ranges are disjoint, so no element is written by two tasks;
            // `dst` stays mutably borrowed for the whole parallel loop.
            unsafe {
                matmul_raw(
                    m,
                    cols,
                    k,
                    base.get().add(from),
                    n,
                    accumulate,
                    lhs,
                    rhs.skip_cols(from),
                    Parallelism::None,
                )
            }
        });
    } else {
        let rows = m.div_ceil(threads).max(1);
        dst[..m * n].par_chunks_mut(rows * n).enumerate().for_each(|(b, block)| {
            let from = b * rows;
            let len = block.len() / n.max(1);
            matmul(len, n, k, block, accumulate, lhs.skip_rows(from), rhs, Parallelism::None);
        });
    }
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
            }
        }
    }
}
