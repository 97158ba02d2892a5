//! Direct convolution: the unit-stride correlation
//!
//! ```text
//! y[i, j, o] = Σ_{p < kh, q < kw, c} x[i + p, c, j + q] · w[p, q, c, o]
//! ```
//!
//! of an already padded input plane `x` (`[rows + kh - 1, in_ch, cols + kw - 1]`: each padded
//! row holds its channels one after the other) with a weight stored taps first
//! (`[kh, kw, in_ch, out_ch]`), into `y` (`[rows, cols, out_ch]`, channels innermost).
//! [`super::conv`] runs the forward pass and the input VJP of unit-stride convolutions
//! through it: the forward pass is this correlation of the padded input, the input VJP the
//! correlation of the padded output gradient with the flipped, transposed weight.
//!
//! Against im2col + `gemm` it saves the column matrix (for the SC CNN's conv2, 25 copies of
//! every input value, 627 KB per image, written and then packed once more by `gemm`): the
//! register tile reads the padded plane in place. The tile is `gemm`'s own shape on AVX-512,
//! up to 6 output positions of one row x 64 output channels (4 vectors of 16 lanes)
//! accumulated in 24 registers; per input channel and tap it loads the weight vectors once
//! and broadcasts one input value per position, the positions' values lying side by side in
//! the padded row (Georganas et al. 2018, "Anatomy of high-performance deep learning
//! convolutions on SIMD architectures", describe the scheme). Narrower channel counts use
//! tiles of up to 12 positions x 32 or 16 channels. AVX2 with FMA, with half the lanes and
//! half the registers, runs tiles of 6 positions x 2 vectors of 8 or 12 positions x 1 vector.
//! Each row is cut into tiles of nearly equal width (14 positions: 5 + 5 + 4 or 7 + 7).
//!
//! The vector kernel needs f32, x86-64 with AVX-512 or AVX2 + FMA (detected at run time
//! through `pulp`, see [`super::lanes`]) and an output channel count that is a multiple of the
//! vector width (16 or 8 lanes); [`correlate`] falls back to a plain loop
//! otherwise, so its result never depends on the machine beyond rounding.

use super::lanes::Isa;
use super::Element;

/// Input channels below which the vector kernel does not pay: the loop over them is the only
/// long one per tap.
const MIN_IN_CHANNELS: usize = 16;

/// The shape of one correlation (one image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Correlation {
    /// Output rows and columns.
    pub rows: usize,
    pub cols: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    pub in_ch: usize,
    pub out_ch: usize,
}

impl Correlation {
    /// Columns of the padded input plane.
    pub fn padded_cols(&self) -> usize {
        self.cols + self.kw - 1
    }

    /// Elements of one padded row (all its channels).
    pub fn padded_row(&self) -> usize {
        self.in_ch * self.padded_cols()
    }

    /// Elements of the padded input plane `x`.
    pub fn input_len(&self) -> usize {
        (self.rows + self.kh - 1) * self.padded_row()
    }

    /// Elements of the weight `w`.
    pub fn weight_len(&self) -> usize {
        self.kh * self.kw * self.in_ch * self.out_ch
    }

    /// Elements of the output `y`.
    pub fn output_len(&self) -> usize {
        self.rows * self.cols * self.out_ch
    }

    /// Whether [`correlate`] runs the vector kernel for this shape on this machine and that
    /// beats im2col + `gemm`: it needs at least 16 input channels, the loop over them being the
    /// only long one per tap (the SC CNN's conv1, one input channel, took 2.8 ms per 64 images
    /// against gemm's 1.2 ms; conv2, 32 channels, 8.9 ms against 10.8 ms, one thread).
    pub fn pays_off(&self) -> bool {
        Isa::detect().is_some_and(|isa| self.vector_fits(isa))
    }

    /// Whether the vector kernel takes this shape on `isa`: a multiple of its lanes of output
    /// channels.
    fn vector_fits(&self, isa: Isa) -> bool {
        self.out_ch % isa.lanes() == 0 && self.in_ch >= MIN_IN_CHANNELS
    }
}

/// Writes the correlation of `x` with `w` into `y` (see the module documentation for the
/// layouts). The operands must have the lengths the shape names; the kernels only index
/// within them.
pub(crate) fn correlate(shape: &Correlation, x: &[f32], w: &[f32], y: &mut [f32]) {
    let ran = Isa::detect().is_some_and(|isa| correlate_on(isa, shape, x, w, y));
    if !ran {
        correlate_scalar(shape, x, w, y);
    }
}

/// [`correlate`] with the vector kernel of `isa`; false (and `y` untouched) where the machine
/// lacks it or the shape does not fit it (any channel counts: the kernel's lanes run along
/// the output channels).
fn correlate_on(isa: Isa, shape: &Correlation, x: &[f32], w: &[f32], y: &mut [f32]) -> bool {
    debug_assert_eq!((x.len(), w.len(), y.len()), lengths(shape));
    let empty = shape.rows == 0 || shape.cols == 0 || shape.out_ch == 0;
    !empty
        && shape.out_ch % isa.lanes() == 0
        && isa.vectorize(vector::Tiles { shape, x, w, y }).is_some()
}

/// The plain loop: the same sums, in the same order per output element, for any float type.
pub(crate) fn correlate_scalar<T: Element>(shape: &Correlation, x: &[T], w: &[T], y: &mut [T]) {
    let (pc, cin, cout) = (shape.padded_cols(), shape.in_ch, shape.out_ch);
    for (pix, out) in y.chunks_exact_mut(cout.max(1)).enumerate().take(shape.rows * shape.cols) {
        let (i, j) = (pix / shape.cols, pix % shape.cols);
        out.fill(T::zero());
        for p in 0..shape.kh {
            let row = &x[(i + p) * shape.padded_row()..][..shape.padded_row()];
            for q in 0..shape.kw {
                let taps = &w[(p * shape.kw + q) * cin * cout..][..cin * cout];
                for (line, wrow) in row.chunks_exact(pc).zip(taps.chunks_exact(cout)) {
                    let xv = line[j + q];
                    for (o, &wv) in out.iter_mut().zip(wrow) {
                        *o = xv.mul_add(wv, *o);
                    }
                }
            }
        }
    }
}

fn lengths(shape: &Correlation) -> (usize, usize, usize) {
    (shape.input_len(), shape.weight_len(), shape.output_len())
}

/// The vector kernel, generic over the instruction set ([`Isa`]).
mod vector {
    use pulp::{Simd, WithSimd};

    use super::Correlation;
    use crate::ops::lanes::{store, wide_register_file};

    /// The whole correlation, run inside `Isa::vectorize` so that it is compiled for the
    /// instruction set (`shape.out_ch` a positive multiple of its lanes).
    pub(super) struct Tiles<'a> {
        pub shape: &'a Correlation,
        pub x: &'a [f32],
        pub w: &'a [f32],
        pub y: &'a mut [f32],
    }

    impl WithSimd for Tiles<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let Tiles { shape, x, w, y } = self;
            let lanes = S::F32_LANES;
            // Accumulators `NV · NP`, plus the `NV` weight vectors and the broadcast value,
            // within the register file: on AVX-512 (32 registers) 6 positions x 4 vectors or
            // 12 x 2 or 12 x 1, on AVX2 (16) 6 x 2 or 12 x 1.
            let max_nv = if wide_register_file::<S>() { 4 } else { 2 };
            let mut ob = 0;
            while ob < shape.out_ch {
                let left = (shape.out_ch - ob) / lanes;
                let nv = if left >= 4 && max_nv >= 4 {
                    4
                } else if left >= 2 {
                    2
                } else {
                    1
                };
                let widest = if nv == max_nv { 6 } else { 12 };
                for i in 0..shape.rows {
                    let tiles = shape.cols.div_ceil(widest);
                    let mut j = 0;
                    for t in 0..tiles {
                        // Nearly equal widths: the first `cols % tiles` tiles one wider.
                        let np = shape.cols / tiles + usize::from(t < shape.cols % tiles);
                        let at = Tile { simd, shape, x, w, i, j, ob };
                        match (nv, np) {
                            (4, 6) => at.run::<6, 4>(y),
                            (4, 5) => at.run::<5, 4>(y),
                            (4, 4) => at.run::<4, 4>(y),
                            (4, 3) => at.run::<3, 4>(y),
                            (4, 2) => at.run::<2, 4>(y),
                            (4, _) => at.run::<1, 4>(y),
                            (_, 12) => at.run_narrow::<12>(nv, y),
                            (_, 11) => at.run_narrow::<11>(nv, y),
                            (_, 10) => at.run_narrow::<10>(nv, y),
                            (_, 9) => at.run_narrow::<9>(nv, y),
                            (_, 8) => at.run_narrow::<8>(nv, y),
                            (_, 7) => at.run_narrow::<7>(nv, y),
                            (_, 6) => at.run_narrow::<6>(nv, y),
                            (_, 5) => at.run_narrow::<5>(nv, y),
                            (_, 4) => at.run_narrow::<4>(nv, y),
                            (_, 3) => at.run_narrow::<3>(nv, y),
                            (_, 2) => at.run_narrow::<2>(nv, y),
                            (_, _) => at.run_narrow::<1>(nv, y),
                        }
                        j += np;
                    }
                }
                ob += nv * lanes;
            }
        }
    }

    /// One register tile: positions `j .. j + NP` of output row `i`, output channels
    /// `ob .. ob + NV · lanes`.
    #[derive(Clone, Copy)]
    struct Tile<'a, S> {
        simd: S,
        shape: &'a Correlation,
        x: &'a [f32],
        w: &'a [f32],
        i: usize,
        j: usize,
        ob: usize,
    }

    impl<S: Simd> Tile<'_, S> {
        #[inline(always)]
        fn run_narrow<const NP: usize>(self, nv: usize, y: &mut [f32]) {
            if nv == 2 {
                self.run::<NP, 2>(y)
            } else {
                self.run::<NP, 1>(y)
            }
        }

        /// The tile's sums. The loop over input channels steps two pointers, checked once
        /// per tile by the asserts: with a slice per channel (and its bounds checks) the
        /// compiler kept one accumulator on the stack and shuffled the others between
        /// registers every iteration (the SC CNN's conv2 on AVX-512, one thread: 154-164 ->
        /// 150-152 µs per image, alternating runs in one process).
        #[inline(always)]
        fn run<const NP: usize, const NV: usize>(self, y: &mut [f32]) {
            let Tile { simd, shape, x, w, i, j, ob } = self;
            let lanes = S::F32_LANES;
            let (pc, cout, row_len) = (shape.padded_cols(), shape.out_ch, shape.padded_row());
            let cin = shape.in_ch;
            let per_tap = cin * cout;
            // Rows `i .. i + kh` of the plane and columns `j .. j + kw - 1 + NP` of each padded
            // line; all taps, lanes `ob .. ob + NV · lanes` of each weight row.
            assert!((i + shape.kh) * row_len <= x.len() && j + shape.kw - 1 + NP <= pc);
            assert!(shape.kh * shape.kw * per_tap <= w.len() && ob + NV * lanes <= cout);
            let mut acc = [[simd.splat_f32s(0.0); NV]; NP];
            for p in 0..shape.kh {
                for q in 0..shape.kw {
                    // SAFETY: the asserts bound every read: input `(i + p) · row_len + c · pc
                    // + j + q + k` with `p < kh`, `c < cin`, `j + q + k < pc`; weight
                    // `(p · kw + q) · per_tap + c · cout + ob + v · lanes + lane`, below
                    // `(p · kw + q + 1) · per_tap`.
                    unsafe {
                        let mut xp = x.as_ptr().add((i + p) * row_len + j + q);
                        let mut wp = w.as_ptr().add((p * shape.kw + q) * per_tap + ob);
                        for _ in 0..cin {
                            let wv: [S::f32s; NV] = core::array::from_fn(|v| {
                                (wp.add(v * lanes) as *const S::f32s).read_unaligned()
                            });
                            for (k, acc) in acc.iter_mut().enumerate() {
                                let b = simd.splat_f32s(*xp.add(k));
                                for (a, &wv) in acc.iter_mut().zip(&wv) {
                                    *a = simd.mul_add_f32s(b, wv, *a);
                                }
                            }
                            xp = xp.add(pc);
                            wp = wp.add(cout);
                        }
                    }
                }
            }
            for (k, acc) in acc.iter().enumerate() {
                let out = &mut y[(i * shape.cols + j + k) * cout + ob..][..NV * lanes];
                for (dst, &a) in out.chunks_exact_mut(lanes).zip(acc) {
                    store::<S>(dst, a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The correlation in float64 from its definition, independent of both kernels.
    fn reference(shape: &Correlation, x: &[f32], w: &[f32]) -> Vec<f64> {
        let (pc, cin, cout) = (shape.padded_cols(), shape.in_ch, shape.out_ch);
        let row = shape.padded_row();
        let mut y = vec![0.0f64; shape.output_len()];
        for i in 0..shape.rows {
            for j in 0..shape.cols {
                for o in 0..cout {
                    let mut s = 0.0f64;
                    for p in 0..shape.kh {
                        for q in 0..shape.kw {
                            for c in 0..cin {
                                let xv = x[(i + p) * row + c * pc + j + q] as f64;
                                let wv = w[((p * shape.kw + q) * cin + c) * cout + o] as f64;
                                s += xv * wv;
                            }
                        }
                    }
                    y[(i * shape.cols + j) * cout + o] = s;
                }
            }
        }
        y
    }

    #[test]
    fn both_kernels_equal_the_float64_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Channel counts that take every tile shape (64, 32, 16 and their mixtures), one that
        // only AVX2's 8 lanes take (24) and one that only the plain loop takes; position
        // counts that leave partial tiles.
        let shapes = [
            (14, 14, 5, 5, 32, 64),
            (3, 5, 3, 3, 7, 112),
            (1, 13, 1, 3, 16, 48),
            (5, 1, 2, 1, 3, 16),
            (4, 4, 3, 3, 5, 10),
            (2, 9, 3, 2, 4, 24),
        ];
        for (rows, cols, kh, kw, in_ch, out_ch) in shapes {
            let shape = Correlation { rows, cols, kh, kw, in_ch, out_ch };
            let x = random(shape.input_len(), &mut rng);
            let w = random(shape.weight_len(), &mut rng);
            let want = reference(&shape, &x, &w);
            let mut fast = vec![f32::NAN; shape.output_len()];
            correlate(&shape, &x, &w, &mut fast);
            let mut plain = vec![f32::NAN; shape.output_len()];
            correlate_scalar(&shape, &x, &w, &mut plain);
            // All sum each output in the same order with fused multiply-adds: every
            // instruction set this machine runs, not only the widest.
            assert_eq!(bits(&fast), bits(&plain), "{shape:?}");
            for isa in Isa::ALL {
                let mut y = vec![f32::NAN; shape.output_len()];
                if correlate_on(isa, &shape, &x, &w, &mut y) {
                    assert_eq!(bits(&y), bits(&plain), "{isa:?} {shape:?}");
                }
            }
            let bound = 1e-5 * (shape.kh * shape.kw * in_ch) as f64;
            for (got, name) in [(&fast, "correlate"), (&plain, "correlate_scalar")] {
                for (idx, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - e).abs() <= bound,
                        "{name} {shape:?} element {idx}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_vector_kernel_propagates_nan_to_exactly_the_affected_outputs() {
        let shape = Correlation { rows: 3, cols: 7, kh: 3, kw: 3, in_ch: 4, out_ch: 32 };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut x = random(shape.input_len(), &mut rng);
        let w = random(shape.weight_len(), &mut rng);
        // Padded position (0, 0) of channel 0 is read by output (0, 0) alone.
        x[0] = f32::NAN;
        for isa in Isa::ALL.into_iter().filter(|isa| isa.available()) {
            let mut y = vec![0.0f32; shape.output_len()];
            assert!(correlate_on(isa, &shape, &x, &w, &mut y), "{isa:?}");
            for (pix, out) in y.chunks_exact(shape.out_ch).enumerate() {
                assert_eq!(out.iter().all(|v| v.is_nan()), pix == 0, "{isa:?} position {pix}");
                assert!(pix == 0 || out.iter().all(|v| v.is_finite()), "{isa:?} position {pix}");
            }
        }
    }
}
