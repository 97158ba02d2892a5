//! The input VJP of a convolution whose output reaches the loss only through a ReLU and a
//! max pool, from the gradient the pool routes.
//!
//! A max pool sends each window's gradient to one element (its first maximum), and the ReLU
//! before it keeps that gradient only where the element is positive. Of the convolution's
//! output gradient `ȳ[o, i, j]` (`[O, OH, OW]` per image) at most one element per window and
//! channel is non-zero: a quarter with 2x2 windows of stride 2. The dense input VJP
//! multiplies all of them with the weight; this one visits only the routed ones,
//!
//! ```text
//! x̄[i·sh + p, j·sw + q, c] += Σ_{(o, i, j, v) routed} v · w[o, c, p, q]
//! ```
//!
//! into a padded, channels-innermost plane (`[rows, cols, channels]`, the channels padded to
//! a multiple of 16 with zeros), one output position at a time: for each kernel row `p` the
//! patch row `x̄[i·sh + p, j·sw .. j·sw + kw, ..]` is `kw · channels` contiguous values, and
//! the weight is stored the same way (`[kh, O, kw · channels]`), so every routed gradient adds
//! one scaled, contiguous weight row to one contiguous patch row. The patch row is held in
//! vector registers (blocks of up to 16 vectors on AVX-512, 12 on AVX2) while the routed
//! gradients of its position stream past.
//!
//! The pool files its gradients channel by channel ([`Routes::route`], a few instructions per
//! window); [`Routes::finish`] then groups them by position (a counting sort) for the scatter.
//!
//! For the SC CNN's conv2 (32 -> 64 channels, 5x5, then 2x2 pooling) this is a quarter of the
//! multiply-adds of the dense VJP, which `ops::conv` runs where the geometry and the machine
//! allow it (`conv2d_relu_max_pool2d_input_vjp`).

use rayon::prelude::*;

use super::lanes::{Isa, LANES};
use super::Element;

/// The geometry of one image's scatter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scatter {
    /// Convolution output rows and columns (the positions gradients are routed to).
    pub rows: usize,
    pub cols: usize,
    pub kh: usize,
    pub kw: usize,
    /// Convolution strides (rows, columns).
    pub sh: usize,
    pub sw: usize,
    /// Input channels of the convolution, and its output channels.
    pub in_ch: usize,
    pub out_ch: usize,
    /// Rows and columns of the padded plane: every patch lies inside it.
    pub plane_rows: usize,
    pub plane_cols: usize,
}

impl Scatter {
    /// Channels of the padded plane: `in_ch` rounded up to a multiple of 16.
    pub fn channels(&self) -> usize {
        self.in_ch.div_ceil(LANES) * LANES
    }

    /// Values in one patch row (and one weight row): `kw · channels`.
    pub fn segment(&self) -> usize {
        self.kw * self.channels()
    }

    /// Elements of the padded plane.
    pub fn plane_len(&self) -> usize {
        self.plane_rows * self.plane_cols * self.channels()
    }

    /// Elements of the weight as [`weight_rows`] lays it out.
    pub fn weight_len(&self) -> usize {
        self.out_ch * self.kh * self.segment()
    }

    /// Output positions (`rows · cols`).
    pub fn positions(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether the positions and the routed gradients of one image fit the `u32` indices of
    /// [`Routes`] (at most one gradient per window and channel, and windows overlap at most
    /// `kh · kw`-fold here as everywhere in practice).
    pub fn fits_u32(&self) -> bool {
        let max = (u32::MAX / 64) as usize;
        self.positions() < max && self.out_ch < max && self.positions() * self.out_ch < max
    }

    /// Whether [`scatter`] runs a vector kernel for this shape on this machine and that beats
    /// the dense VJP: f32 on AVX-512 or AVX2, at least 16 input channels (the vector runs
    /// along them; fewer would leave most lanes padding).
    pub fn pays_off(&self) -> bool {
        self.in_ch >= LANES && self.fits_u32() && Isa::detect().is_some()
    }
}

/// A zeroed buffer whose first value sits on a 64-byte boundary: every row the kernel reads
/// or writes starts at a multiple of 16 values from it, so no 16-lane load or store straddles
/// two cache lines (with `Vec`'s 16-byte alignment three in four did, which halved the
/// kernel's rate).
#[derive(Debug)]
pub(crate) struct Aligned<T> {
    data: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Element> Aligned<T> {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        let slack = 64 / std::mem::size_of::<T>();
        let data = vec![T::zero(); len + slack];
        let start = data.as_ptr().align_offset(64).min(slack);
        Aligned { data, start, len }
    }

    pub fn as_slice(&self) -> &[T] {
        &self.data[self.start..][..self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data[self.start..][..self.len]
    }
}

/// The weight `[O, C, kh, kw]` as [`scatter`] reads it: `[kh, O, kw, channels]`, each kernel
/// row of each output channel one contiguous weight row, the channels padded with zeros, and
/// the rows of one kernel row together (the kernel uses them together).
pub(crate) fn weight_rows<T: Element>(w: &[T], shape: &Scatter) -> Aligned<T> {
    let (c, kh, kw, cp) = (shape.in_ch, shape.kh, shape.kw, shape.channels());
    let mut rows = Aligned::zeroed(shape.weight_len());
    // One task per kernel row: its block of the layout is contiguous.
    let block = (shape.out_ch * kw * cp).max(1);
    rows.as_mut_slice().par_chunks_mut(block).enumerate().for_each(|(p, out)| {
        for (o, filters) in w.chunks_exact(c * kh * kw).enumerate().take(shape.out_ch) {
            for (ci, taps) in filters.chunks_exact(kh * kw).enumerate() {
                for (q, &v) in taps[p * kw..][..kw].iter().enumerate() {
                    out[(o * kw + q) * cp + ci] = v;
                }
            }
        }
    });
    rows
}

/// The routed gradient of one image, filed channel by channel and then grouped by position.
///
/// The pool fills it channel by channel: [`Routes::open`] opens the next channel for at most
/// `windows` gradients, [`Routes::route`] files one, and [`Routes::close`] ends the channel;
/// [`Routes::finish`] then groups the gradients by output position, each group holding the
/// channels that sent their gradient there (in channel order) and that gradient. A position
/// that wins several windows of a channel (overlapping pools) is filed once per window; the
/// scatter adds them all.
#[derive(Debug)]
pub(crate) struct Routes<T> {
    /// Channel `o` holds entries `starts[o] .. starts[o + 1]`.
    starts: Vec<u32>,
    positions: Vec<u32>,
    values: Vec<T>,
    /// Entries filed: `positions` and `values` are longer (room for the open channel).
    len: usize,
    /// After [`Routes::finish`]: position `i` holds group entries `group_starts[i] ..
    /// group_starts[i + 1]`.
    group_starts: Vec<u32>,
    group_channels: Vec<u32>,
    group_values: Vec<T>,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Routes {
            starts: vec![0],
            positions: Vec::new(),
            values: Vec::new(),
            len: 0,
            group_starts: vec![0],
            group_channels: Vec::new(),
            group_values: Vec::new(),
        }
    }
}

impl<T: Element> Routes<T> {
    /// Empties the routes for the next image.
    pub fn clear(&mut self) {
        self.starts.clear();
        self.starts.push(0);
        self.len = 0;
        self.group_starts.clear();
        self.group_starts.push(0);
    }

    /// Opens the next channel, which files at most `windows` gradients.
    pub fn open(&mut self, windows: usize) {
        let need = self.len + windows;
        if self.positions.len() < need {
            self.positions.resize(need, 0);
            self.values.resize(need, T::zero());
        }
    }

    /// Files gradient `value` at output position `position` in the open channel; a zero
    /// `value` is dropped (without a branch: it is written, then overwritten).
    #[inline(always)]
    pub fn route(&mut self, position: usize, value: T) {
        self.positions[self.len] = position as u32;
        self.values[self.len] = value;
        self.len += usize::from(value != T::zero());
    }

    /// Ends the open channel.
    pub fn close(&mut self) {
        self.starts.push(self.len as u32);
    }

    /// Per channel, in order: its positions and gradients (as filed, before grouping).
    #[cfg(test)]
    pub fn channels(&self) -> impl Iterator<Item = (&[u32], &[T])> + '_ {
        self.starts.windows(2).map(move |s| {
            let range = s[0] as usize..s[1] as usize;
            (&self.positions[range.clone()], &self.values[range])
        })
    }

    /// Groups the filed gradients by output position (`positions`: the number of positions,
    /// all filed ones below it): a counting sort, stable in channel order.
    ///
    /// # Panics
    /// If a filed position is `positions` or more.
    pub fn finish(&mut self, positions: usize) {
        let starts = &mut self.group_starts;
        starts.clear();
        starts.resize(positions + 1, 0);
        for &pos in &self.positions[..self.len] {
            starts[pos as usize + 1] += 1;
        }
        for i in 0..positions {
            starts[i + 1] += starts[i];
        }
        self.group_channels.resize(self.len, 0);
        self.group_values.resize(self.len, T::zero());
        // `starts[pos]` serves as the position's next free entry while the entries are placed.
        for (o, s) in self.starts.windows(2).enumerate() {
            for k in s[0] as usize..s[1] as usize {
                let pos = self.positions[k] as usize;
                let at = starts[pos] as usize;
                starts[pos] += 1;
                self.group_channels[at] = o as u32;
                self.group_values[at] = self.values[k];
            }
        }
        // `starts[i]` now holds group `i`'s end: shift back by one.
        starts.copy_within(..positions, 1);
        starts[0] = 0;
    }

    /// The groups [`Routes::finish`] formed, in position order (empty ones left out):
    /// output position, channels, gradients.
    pub fn groups(&self) -> impl Iterator<Item = (usize, &[u32], &[T])> + '_ {
        self.group_starts.windows(2).enumerate().filter(|(_, s)| s[0] < s[1]).map(
            move |(pos, s)| {
                let range = s[0] as usize..s[1] as usize;
                (pos, &self.group_channels[range.clone()], &self.group_values[range])
            },
        )
    }
}

/// Adds the scatter of `routes` with the weight rows `w` ([`weight_rows`]) to the padded plane
/// `dx` (`[plane_rows, plane_cols, channels]`).
pub(crate) fn scatter(shape: &Scatter, routes: &Routes<f32>, w: &[f32], dx: &mut [f32]) {
    let ran = Isa::detect().is_some_and(|isa| scatter_on(isa, shape, routes, w, dx));
    if !ran {
        scatter_scalar(shape, routes, w, dx);
    }
}

/// [`scatter`] with the vector kernel of `isa`; false (and `dx` untouched) where the machine
/// lacks it.
fn scatter_on(isa: Isa, shape: &Scatter, routes: &Routes<f32>, w: &[f32], dx: &mut [f32]) -> bool {
    debug_assert_eq!((w.len(), dx.len()), (shape.weight_len(), shape.plane_len()));
    isa.vectorize(vector::Rows { shape, routes, w, dx }).is_some()
}

/// The plain loop of [`scatter`]: for every kernel row, group and routed gradient (in that
/// order) one multiply-add per patch-row element, in the order of the vector kernel.
pub(crate) fn scatter_scalar<T: Element>(
    shape: &Scatter,
    routes: &Routes<T>,
    w: &[T],
    dx: &mut [T],
) {
    let seg = shape.segment();
    for p in 0..shape.kh {
        for (pos, channels, values) in routes.groups() {
            let row = &mut dx[patch_row(shape, pos, p)..][..seg];
            for (&o, &v) in channels.iter().zip(values) {
                let wrow = &w[(p * shape.out_ch + o as usize) * seg..][..seg];
                for (d, &wv) in row.iter_mut().zip(wrow) {
                    *d = v.mul_add(wv, *d);
                }
            }
        }
    }
}

/// Offset in the padded plane of kernel row `p` of output position `pos`'s patch.
#[inline(always)]
fn patch_row(shape: &Scatter, pos: usize, p: usize) -> usize {
    let (i, j) = (pos / shape.cols, pos % shape.cols);
    ((i * shape.sh + p) * shape.plane_cols + j * shape.sw) * shape.channels()
}

/// The vector kernel, generic over the instruction set ([`Isa`]).
mod vector {
    use pulp::{Simd, WithSimd};

    use super::{patch_row, Routes, Scatter};
    use crate::ops::lanes::{load, store, wide_register_file};

    /// The whole scatter, run inside `Isa::vectorize` so that it is compiled for the
    /// instruction set.
    pub(super) struct Rows<'a> {
        pub shape: &'a Scatter,
        pub routes: &'a Routes<f32>,
        pub w: &'a [f32],
        pub dx: &'a mut [f32],
    }

    impl WithSimd for Rows<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let Rows { shape, routes, w, dx } = self;
            let seg = shape.segment();
            let vectors = seg / S::F32_LANES;
            // The row in blocks of nearly equal size, each held in registers while the group's
            // gradients stream past: at most 16 vectors on AVX-512 (32 registers), 12 on AVX2
            // (16 registers; the broadcast gradient and the weight vector take two more). As
            // few blocks as fit: every accumulator then takes one multiply-add per gradient,
            // and the FMA latency is hidden only with 8 or more of them.
            let widest = if wide_register_file::<S>() { 16 } else { 12 };
            let blocks = vectors.div_ceil(widest).max(1);
            // Kernel rows outermost: the weight rows of one kernel row (64 channels x 160
            // values for conv2, 40 KB) stay in L1 while every group of the image uses them.
            for p in 0..shape.kh {
                for (pos, channels, values) in routes.groups() {
                    let row = &mut dx[patch_row(shape, pos, p)..][..seg];
                    let block = Block { simd, shape, channels, values, w, p };
                    let mut at = 0;
                    for b in 0..blocks {
                        let nv = vectors / blocks + usize::from(b < vectors % blocks);
                        block.run_tail(row, at, nv);
                        at += nv * S::F32_LANES;
                    }
                }
            }
        }
    }

    /// The routed gradients of one group and one kernel row.
    #[derive(Clone, Copy)]
    struct Block<'a, S> {
        simd: S,
        shape: &'a Scatter,
        channels: &'a [u32],
        values: &'a [f32],
        w: &'a [f32],
        p: usize,
    }

    impl<S: Simd> Block<'_, S> {
        /// [`Block::run`] for `nv` (1 to 16) vectors.
        #[inline(always)]
        fn run_tail(self, row: &mut [f32], at: usize, nv: usize) {
            match nv {
                16 => self.run::<16>(row, at),
                15 => self.run::<15>(row, at),
                14 => self.run::<14>(row, at),
                13 => self.run::<13>(row, at),
                12 => self.run::<12>(row, at),
                11 => self.run::<11>(row, at),
                10 => self.run::<10>(row, at),
                9 => self.run::<9>(row, at),
                8 => self.run::<8>(row, at),
                7 => self.run::<7>(row, at),
                6 => self.run::<6>(row, at),
                5 => self.run::<5>(row, at),
                4 => self.run::<4>(row, at),
                3 => self.run::<3>(row, at),
                2 => self.run::<2>(row, at),
                1 => self.run::<1>(row, at),
                _ => {}
            }
        }

        /// Adds `Σ v · w[o, p, at .. at + NV·lanes]` to `row[at .. at + NV·lanes]`.
        #[inline(always)]
        fn run<const NV: usize>(self, row: &mut [f32], at: usize) {
            let Block { simd, shape, channels, values, w, p } = self;
            let (seg, lanes) = (shape.segment(), S::F32_LANES);
            let out = &mut row[at..][..NV * lanes];
            let mut acc: [S::f32s; NV] = core::array::from_fn(|v| load::<S>(&out[v * lanes..]));
            for (&o, &v) in channels.iter().zip(values) {
                let wrow = &w[(p * shape.out_ch + o as usize) * seg + at..][..NV * lanes];
                let b = simd.splat_f32s(v);
                for k in 0..NV {
                    acc[k] = simd.mul_add_f32s(b, load::<S>(&wrow[k * lanes..]), acc[k]);
                }
            }
            for (dst, a) in out.chunks_exact_mut(lanes).zip(acc) {
                store::<S>(dst, a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Random routes from windows of three positions that overlap by one (positions
    /// `2k .. 2k + 3`): each channel sends each window's gradient to a random one of them, a
    /// third of the gradients being zero (dropped).
    fn random_routes(
        shape: &Scatter,
        rng: &mut ChaCha8Rng,
    ) -> (Routes<f32>, Vec<(usize, usize, f32)>) {
        let mut routes = Routes::default();
        routes.clear();
        let mut pushed = Vec::new();
        let windows = shape.positions().saturating_sub(1) / 2;
        for o in 0..shape.out_ch {
            routes.open(windows);
            for window in 0..windows {
                let pos = 2 * window + rng.random_range(0..3);
                let v = if rng.random_range(0..3) == 0 { 0.0 } else { rng.random_range(-1.0..1.0) };
                routes.route(pos, v);
                if v != 0.0 {
                    pushed.push((pos, o, v));
                }
            }
            routes.close();
        }
        routes.finish(shape.positions());
        (routes, pushed)
    }

    /// The scatter in float64 from its definition, on the original `[O, C, kh, kw]` weight.
    fn reference(shape: &Scatter, pushed: &[(usize, usize, f32)], w: &[f32]) -> Vec<f64> {
        let cp = shape.channels();
        let mut dx = vec![0.0f64; shape.plane_len()];
        for &(pos, o, v) in pushed {
            let (i, j) = (pos / shape.cols, pos % shape.cols);
            for c in 0..shape.in_ch {
                for p in 0..shape.kh {
                    for q in 0..shape.kw {
                        let wv = w[((o * shape.in_ch + c) * shape.kh + p) * shape.kw + q];
                        let at =
                            ((i * shape.sh + p) * shape.plane_cols + j * shape.sw + q) * cp + c;
                        dx[at] += v as f64 * wv as f64;
                    }
                }
            }
        }
        dx
    }

    fn collect(routes: &Routes<f32>) -> Vec<(Vec<u32>, Vec<f32>)> {
        routes.channels().map(|(p, v)| (p.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn routes_keep_the_non_zero_gradients_by_channel_and_by_position() {
        let mut routes = Routes::default();
        routes.clear();
        for channel in [vec![(12, 1.0f32), (3, 0.0)], vec![], vec![(7, f32::NAN), (2, -0.0)]] {
            routes.open(channel.len());
            for (pos, v) in channel {
                routes.route(pos, v);
            }
            routes.close();
        }
        routes.open(3);
        for (pos, v) in [(4, 4.0), (4, 5.0), (0, 0.0)] {
            routes.route(pos, v);
        }
        routes.close();
        let channels = collect(&routes);
        assert_eq!(channels.len(), 4);
        assert_eq!(channels[0], (vec![12], vec![1.0]));
        assert_eq!(channels[1], (vec![], vec![]));
        assert_eq!(channels[2].0, [7]);
        assert!(channels[2].1[0].is_nan());
        // A position that wins two windows is filed twice.
        assert_eq!(channels[3], (vec![4, 4], vec![4.0, 5.0]));
        routes.finish(13);
        let groups: Vec<_> = routes.groups().map(|(p, c, v)| (p, c.to_vec(), v.to_vec())).collect();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0], (4, vec![3, 3], vec![4.0, 5.0]));
        assert_eq!((groups[1].0, &groups[1].1), (7, &vec![2]));
        assert!(groups[1].2[0].is_nan());
        assert_eq!(groups[2], (12, vec![0], vec![1.0]));
        // Reused for the next image.
        routes.clear();
        routes.open(1);
        routes.route(9, 7.0);
        routes.close();
        routes.finish(10);
        assert_eq!(collect(&routes), [(vec![9], vec![7.0])]);
        let groups: Vec<_> = routes.groups().map(|(p, c, v)| (p, c.to_vec(), v.to_vec())).collect();
        assert_eq!(groups, [(9, vec![0], vec![7.0])]);
    }

    #[test]
    fn both_kernels_equal_the_float64_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        // (rows, cols, kh, kw, sh, sw, in_ch, out_ch): the SC CNN's conv2 (160 values per
        // patch row: one block on AVX-512, two on AVX2), a row of 496 values (kw 31, 16
        // channels: blocks of 16 + 15 vectors on AVX-512, of 10 or 11 on AVX2), stride 2, and
        // channel counts padded to 16 (3 -> 16, 20 -> 32).
        let shapes = [
            (14, 14, 5, 5, 1, 1, 32, 64),
            (2, 3, 1, 31, 1, 1, 16, 5),
            (4, 5, 3, 3, 2, 2, 20, 9),
            (3, 3, 2, 4, 1, 2, 3, 7),
        ];
        for (rows, cols, kh, kw, sh, sw, in_ch, out_ch) in shapes {
            let shape = Scatter {
                rows,
                cols,
                kh,
                kw,
                sh,
                sw,
                in_ch,
                out_ch,
                plane_rows: (rows - 1) * sh + kh + 1,
                plane_cols: (cols - 1) * sw + kw,
            };
            let w: Vec<f32> =
                (0..out_ch * in_ch * kh * kw).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let (routes, pushed) = random_routes(&shape, &mut rng);
            let wr = weight_rows(&w, &shape);
            let wr = wr.as_slice();
            let start: Vec<f32> =
                (0..shape.plane_len()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let mut fast = start.clone();
            scatter(&shape, &routes, wr, &mut fast);
            let mut plain = start.clone();
            scatter_scalar(&shape, &routes, wr, &mut plain);
            // All add each element's terms in the same order with fused multiply-adds: every
            // instruction set this machine runs, not only the widest.
            assert_eq!(bits(&fast), bits(&plain), "{shape:?}");
            for isa in Isa::ALL {
                let mut dx = start.clone();
                if scatter_on(isa, &shape, &routes, wr, &mut dx) {
                    assert_eq!(bits(&dx), bits(&plain), "{isa:?} {shape:?}");
                }
            }
            let want = reference(&shape, &pushed, &w);
            let bound = 1e-5 * (out_ch * kh * kw) as f64;
            for (idx, ((&got, &s), &e)) in fast.iter().zip(&start).zip(&want).enumerate() {
                let e = e + s as f64;
                assert!((got as f64 - e).abs() <= bound, "{shape:?} element {idx}: {got} vs {e}");
            }
        }
    }
}
