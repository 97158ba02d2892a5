//! Truncated normal values drawn eight at a time: the ziggurat method (Marsaglia & Tsang, "The
//! Ziggurat Method for Generating Random Variables", J. Stat. Softw. 5(8), 2000) on eight
//! Xoshiro256++ generators (Blackman & Vigna, "Scrambled Linear Pseudorandom Number
//! Generators", ACM TOMS 2021) stepped side by side.
//!
//! One generator per value makes every step wait for the last (a call per value, the state
//! in memory, 3.8 ns per value); eight independent generators step side by side and run the
//! ziggurat's fast path as vector instructions: one AVX-512 vector or two AVX2 vectors of
//! eight u64 lanes (on one Xeon core: 2.3 ns per kept value with AVX-512, 3.7 with AVX2, 6.4
//! lane by lane). Used for the large weight tensors of
//! [`Initializer::tensor`](crate::Initializer::tensor).

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use rand::{Rng, RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::ops::lanes::Isa;

/// Generators stepped side by side.
pub(crate) const LANES: usize = 8;
/// Steps of the generators made at a time.
const BLOCK: usize = 32;
/// Room for the kept candidates of a block: all of them, plus the eight values that the
/// vector paths store past the last kept one.
const KEPT: usize = LANES * (BLOCK + 1);
/// Layers of the ziggurat.
const LAYERS: usize = 256;
/// Right edge `R` of the base layer for 256 layers (Marsaglia & Tsang 2000).
const R: f64 = 3.654_152_885_361_009;
/// Area `V` of every layer for 256 layers (Marsaglia & Tsang 2000).
const V: f64 = 0.004_928_673_233_99;

/// The layers' right edges `x[i]` and heights `f[i] = exp(-x[i]^2 / 2)`: `x[0] = V / f(R)` (the
/// base layer, a rectangle of area `V` in place of the base strip and the tail), `x[1] = R`,
/// `f(x[i + 1]) = f(x[i]) + V / x[i]`, `x[256] = 0`.
struct Tables {
    x: [f64; LAYERS + 1],
    f: [f64; LAYERS + 1],
}

fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; LAYERS + 1];
        x[0] = V / density(R);
        x[1] = R;
        for i in 1..LAYERS - 1 {
            x[i + 1] = (-2.0 * (density(x[i]) + V / x[i]).ln()).sqrt();
        }
        x[LAYERS] = 0.0;
        Tables { x, f: x.map(density) }
    })
}

/// The ziggurat layer of a candidate: its low 8 bits.
#[inline(always)]
fn layer_of(bits: u64) -> usize {
    (bits & 0xff) as usize
}

/// The candidate's `u` in `[-1, 1)`: its high 52 bits as a value in `[2, 4)`, minus 3.
#[inline(always)]
fn uniform_of(bits: u64) -> f64 {
    f64::from_bits((bits >> 12) | 0x4000_0000_0000_0000) - 3.0
}

/// Eight Xoshiro256++ generators whose candidates are tested by the ziggurat, and a ninth for
/// the rare wedge tests; draws Normal(0, 1) values truncated to `[-2, 2]`.
///
/// The stream: the eight generators are seeded, in order, with four little-endian `u64` words
/// each from the seeder (an all-zero state is replaced by the state `[1, 0, 0, 0]`), then the
/// wedge generator with `Xoshiro256PlusPlus::from_rng`. Each step takes one `u64` from every
/// lane, in lane order, as a candidate: layer `i` from the low 8 bits, `u` in `[-1, 1)` from
/// the high 52, `x = u x[i]`. Candidates with `|x| > 2` are rejected (the truncation). Of the
/// others, one with `|x| < x[i + 1]` is inside its layer's rectangle and kept; one outside it
/// is kept if `f[i + 1] + (f[i] - f[i + 1]) U < exp(-x^2 / 2)` for the next uniform `U` of the
/// wedge generator (base-layer candidates outside the rectangle lie in the tail, `|x| >= R`,
/// and were rejected). The kept candidates fill the output in order; the last block's
/// surplus is discarded.
pub(crate) struct TruncatedNormals {
    /// `state[w][k]`: word `w` of lane `k`'s generator.
    state: [[u64; LANES]; 4],
    wedge: Xoshiro256PlusPlus,
}

impl TruncatedNormals {
    /// Seeds the generators from `seeder` (see the type's documentation).
    pub fn new(seeder: &mut impl RngCore) -> Self {
        let lanes: [[u64; 4]; LANES] = std::array::from_fn(|_| {
            let words = [0; 4].map(|_: u64| seeder.next_u64());
            if words == [0; 4] {
                [1, 0, 0, 0]
            } else {
                words
            }
        });
        let state = std::array::from_fn(|w| lanes.map(|words| words[w]));
        TruncatedNormals { state, wedge: Xoshiro256PlusPlus::from_rng(seeder) }
    }

    /// One `u64` from every lane (Xoshiro256++'s step, lane by lane).
    #[inline(always)]
    fn step(&mut self) -> [u64; LANES] {
        let [s0, s1, s2, s3] = &mut self.state;
        let mut out = [0u64; LANES];
        for k in 0..LANES {
            out[k] = s0[k].wrapping_add(s3[k]).rotate_left(23).wrapping_add(s0[k]);
            let t = s1[k] << 17;
            s2[k] ^= s0[k];
            s3[k] ^= s1[k];
            s1[k] ^= s2[k];
            s0[k] ^= s3[k];
            s2[k] ^= t;
            s3[k] = s3[k].rotate_left(45);
        }
        out
    }

    /// Fills `out` with `cast(z)` for the next truncated standard normal values `z`.
    pub fn fill<T>(&mut self, out: &mut [MaybeUninit<T>], cast: impl Fn(f64) -> T) {
        let t = tables();
        let mut kept = [0f64; KEPT];
        let mut n = 0;
        while n < out.len() {
            let m = self.block(t, &mut kept);
            let take = m.min(out.len() - n);
            for (o, &x) in out[n..n + take].iter_mut().zip(&kept[..take]) {
                o.write(cast(x));
            }
            n += take;
        }
    }

    /// The candidates of the next `BLOCK` steps that are kept, in order, at the start of
    /// `kept`; returns their number. As vectors where the CPU has AVX-512 or AVX2, else lane
    /// by lane (the same values).
    fn block(&mut self, t: &Tables, kept: &mut [f64; KEPT]) -> usize {
        Isa::detect()
            .and_then(|isa| self.vector_block(isa, t, kept))
            .unwrap_or_else(|| self.block_by_lane(t, kept))
    }

    /// [`block`](Self::block) as vectors of `isa`; `None` where the machine lacks it.
    fn vector_block(&mut self, isa: Isa, t: &Tables, kept: &mut [f64; KEPT]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        {
            let (state, wedge) = (&mut self.state, &mut self.wedge);
            match isa {
                Isa::Avx512 => pulp::x86::V4::try_new()
                    .map(|simd| simd.vectorize(Candidates { simd, state, wedge, tables: t, kept })),
                Isa::Avx2 => pulp::x86::V3::try_new()
                    .map(|simd| simd.vectorize(Candidates { simd, state, wedge, tables: t, kept })),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (isa, t, kept);
            None
        }
    }

    /// [`block`](Self::block) lane by lane.
    fn block_by_lane(&mut self, t: &Tables, kept: &mut [f64; KEPT]) -> usize {
        let mut m = 0;
        for _ in 0..BLOCK {
            for b in self.step() {
                let i = layer_of(b);
                let x = uniform_of(b) * t.x[i];
                let (inside, truncated) = (x.abs() < t.x[i + 1], x.abs() <= 2.0);
                let keep = truncated && (inside || in_wedge(&mut self.wedge, t, i, x));
                // Written in any case; the count advances only for a kept value.
                kept[m] = x;
                m += usize::from(keep);
            }
        }
        m
    }
}

/// The wedge test of layer `i` for a candidate `x` outside its rectangle, with the next
/// uniform of the wedge generator. Never made for the base layer: its candidates outside the
/// rectangle lie beyond `R > 2`, in the tail that the truncation rejects.
#[cold]
fn in_wedge(wedge: &mut Xoshiro256PlusPlus, t: &Tables, i: usize, x: f64) -> bool {
    let u: f64 = wedge.random();
    t.f[i + 1] + (t.f[i] - t.f[i + 1]) * u < density(x)
}

/// The operands of one vector block ([`TruncatedNormals::block`]), for the instruction set `S`
/// (`pulp`'s `V4` or `V3`: each has its `NullaryFnOnce` below).
#[cfg(target_arch = "x86_64")]
struct Candidates<'a, S> {
    simd: S,
    /// `state[w][k]`: word `w` of lane `k`'s generator.
    state: &'a mut [[u64; LANES]; 4],
    wedge: &'a mut Xoshiro256PlusPlus,
    tables: &'a Tables,
    kept: &'a mut [f64; KEPT],
}

/// One step's eight candidates, as the vector paths leave them where a wedge test is due:
/// values, bits, and the masks of the lanes kept outright and of those to test.
#[cfg(target_arch = "x86_64")]
struct Lanes {
    x: [f64; LANES],
    bits: [u64; LANES],
    keep: u8,
    wedged: u8,
}

#[cfg(target_arch = "x86_64")]
impl Lanes {
    /// Files the kept candidates at `kept[m..]`, lane by lane, making the wedge tests in lane
    /// order (as [`TruncatedNormals::block_by_lane`] does); returns the new count.
    #[inline(always)]
    fn file(
        &self,
        wedge: &mut Xoshiro256PlusPlus,
        t: &Tables,
        kept: &mut [f64],
        m: usize,
    ) -> usize {
        let mut m = m;
        for k in 0..LANES {
            let lane = |mask: u8| mask >> k & 1 == 1;
            let keep = lane(self.keep)
                || (lane(self.wedged) && in_wedge(wedge, t, layer_of(self.bits[k]), self.x[k]));
            kept[m] = self.x[k];
            m += usize::from(keep);
        }
        m
    }
}

/// The candidates as AVX-512 vectors, detected at run time (x86-64 only).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::{__m512d, __m512i, _CMP_LE_OQ, _CMP_LT_OQ};
    use pulp::x86::V4;
    use pulp::NullaryFnOnce;

    use super::{Candidates, Lanes, BLOCK, LANES};

    impl NullaryFnOnce for Candidates<'_, V4> {
        type Output = usize;

        #[inline(always)]
        fn call(self) -> usize {
            let Candidates { simd, state, wedge, tables, kept } = self;
            let f = simd.avx512f;
            let [mut s0, mut s1, mut s2, mut s3] = state.map(pulp::cast::<_, __m512i>);
            let (low8, exponent) = (f._mm512_set1_epi64(0xff), f._mm512_set1_epi64(0x4000 << 48));
            let (one, three, two) =
                (f._mm512_set1_epi64(1), f._mm512_set1_pd(3.0), f._mm512_set1_pd(2.0));
            let mut m = 0;
            for _ in 0..BLOCK {
                // Xoshiro256++ (Blackman & Vigna 2021) on eight lanes.
                let bits =
                    f._mm512_add_epi64(f._mm512_rol_epi64::<23>(f._mm512_add_epi64(s0, s3)), s0);
                let t = f._mm512_slli_epi64::<17>(s1);
                s2 = f._mm512_xor_si512(s2, s0);
                s3 = f._mm512_xor_si512(s3, s1);
                s1 = f._mm512_xor_si512(s1, s2);
                s0 = f._mm512_xor_si512(s0, s3);
                s2 = f._mm512_xor_si512(s2, t);
                s3 = f._mm512_rol_epi64::<45>(s3);
                // The ziggurat's fast path: `x = u x[i]`, inside when `|x| < x[i + 1]`.
                let layer = f._mm512_and_si512(bits, low8);
                let above = f._mm512_add_epi64(layer, one);
                // SAFETY: `layer <= 255` and `above <= 256` index the 257-entry table.
                let (edge, next): (__m512d, __m512d) = unsafe {
                    (
                        f._mm512_i64gather_pd::<8>(layer, tables.x.as_ptr()),
                        f._mm512_i64gather_pd::<8>(above, tables.x.as_ptr()),
                    )
                };
                let u = f._mm512_sub_pd(
                    f._mm512_castsi512_pd(
                        f._mm512_or_si512(f._mm512_srli_epi64::<12>(bits), exponent),
                    ),
                    three,
                );
                let x = f._mm512_mul_pd(u, edge);
                let ax = f._mm512_abs_pd(x);
                let inside = f._mm512_cmp_pd_mask::<_CMP_LT_OQ>(ax, next);
                let truncated = f._mm512_cmp_pd_mask::<_CMP_LE_OQ>(ax, two);
                let keep = inside & truncated;
                let wedged = !inside & truncated;
                if wedged == 0 {
                    // The kept lanes packed to the front, all eight lanes stored.
                    let packed = f._mm512_maskz_compress_pd(keep, x);
                    kept[m..m + LANES].copy_from_slice(&pulp::cast::<_, [f64; LANES]>(packed));
                    m += keep.count_ones() as usize;
                } else {
                    let lanes = Lanes { x: pulp::cast(x), bits: pulp::cast(bits), keep, wedged };
                    m = lanes.file(wedge, tables, kept, m);
                }
            }
            *state = [s0, s1, s2, s3].map(pulp::cast::<__m512i, [u64; LANES]>);
            m
        }
    }
}

/// The candidates as AVX2 vectors, detected at run time (x86-64 only): each of the eight
/// lanes' words in two vectors of four, the rotations as two shifts, and the kept values
/// packed to the front of each half by a permutation looked up from its mask.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::{__m256d, __m256i, _CMP_LE_OQ, _CMP_LT_OQ};
    use pulp::x86::V3;
    use pulp::NullaryFnOnce;

    use super::{Candidates, Lanes, BLOCK, LANES};

    /// For each mask of four f64 lanes, the f32 indices that move the lanes it keeps to the
    /// front, in order (`_mm256_permutevar8x32_ps` then stores four values at once).
    const PACK: [[u32; 8]; 16] = {
        let mut table = [[0u32; 8]; 16];
        let mut mask = 0;
        while mask < 16 {
            let (mut lane, mut front) = (0, 0);
            while lane < 4 {
                if mask >> lane & 1 == 1 {
                    table[mask][2 * front] = 2 * lane as u32;
                    table[mask][2 * front + 1] = 2 * lane as u32 + 1;
                    front += 1;
                }
                lane += 1;
            }
            mask += 1;
        }
        table
    };

    impl NullaryFnOnce for Candidates<'_, V3> {
        type Output = usize;

        #[inline(always)]
        fn call(self) -> usize {
            let Candidates { simd, state, wedge, tables, kept } = self;
            let (a, a2) = (simd.avx, simd.avx2);
            // Xoshiro256++'s two rotations, as shifts (AVX2 has no 64-bit rotation).
            let rol23 = |x| {
                a2._mm256_or_si256(a2._mm256_slli_epi64::<23>(x), a2._mm256_srli_epi64::<41>(x))
            };
            let rol45 = |x| {
                a2._mm256_or_si256(a2._mm256_slli_epi64::<45>(x), a2._mm256_srli_epi64::<19>(x))
            };
            let mut s = state.map(pulp::cast::<_, [__m256i; 2]>);
            let (low8, exponent) = (a._mm256_set1_epi64x(0xff), a._mm256_set1_epi64x(0x4000 << 48));
            let (one, three, two) =
                (a._mm256_set1_epi64x(1), a._mm256_set1_pd(3.0), a._mm256_set1_pd(2.0));
            let sign = a._mm256_set1_pd(-0.0);
            let mut m = 0;
            for _ in 0..BLOCK {
                let mut x = [a._mm256_setzero_pd(); 2];
                let mut bits = [a._mm256_setzero_si256(); 2];
                let (mut keep, mut wedged) = (0u8, 0u8);
                for h in 0..2 {
                    let [s0, s1, s2, s3] = [s[0][h], s[1][h], s[2][h], s[3][h]];
                    // Xoshiro256++ (Blackman & Vigna 2021) on four lanes.
                    bits[h] = a2._mm256_add_epi64(rol23(a2._mm256_add_epi64(s0, s3)), s0);
                    let t = a2._mm256_slli_epi64::<17>(s1);
                    let s2 = a2._mm256_xor_si256(s2, s0);
                    let s3 = a2._mm256_xor_si256(s3, s1);
                    let s1 = a2._mm256_xor_si256(s1, s2);
                    let s0 = a2._mm256_xor_si256(s0, s3);
                    let s2 = a2._mm256_xor_si256(s2, t);
                    let s3 = rol45(s3);
                    [s[0][h], s[1][h], s[2][h], s[3][h]] = [s0, s1, s2, s3];
                    // The ziggurat's fast path: `x = u x[i]`, inside when `|x| < x[i + 1]`.
                    let layer = a2._mm256_and_si256(bits[h], low8);
                    let above = a2._mm256_add_epi64(layer, one);
                    // SAFETY: `layer <= 255` and `above <= 256` index the 257-entry table.
                    let (edge, next): (__m256d, __m256d) = unsafe {
                        (
                            a2._mm256_i64gather_pd::<8>(tables.x.as_ptr(), layer),
                            a2._mm256_i64gather_pd::<8>(tables.x.as_ptr(), above),
                        )
                    };
                    let u = a._mm256_sub_pd(
                        a._mm256_castsi256_pd(
                            a2._mm256_or_si256(a2._mm256_srli_epi64::<12>(bits[h]), exponent),
                        ),
                        three,
                    );
                    x[h] = a._mm256_mul_pd(u, edge);
                    let ax = a._mm256_andnot_pd(sign, x[h]);
                    let inside = a._mm256_movemask_pd(a._mm256_cmp_pd::<_CMP_LT_OQ>(ax, next));
                    let truncated = a._mm256_movemask_pd(a._mm256_cmp_pd::<_CMP_LE_OQ>(ax, two));
                    keep |= ((inside & truncated) as u8) << (4 * h);
                    wedged |= ((!inside & truncated & 0xf) as u8) << (4 * h);
                }
                if wedged == 0 {
                    // Each half's kept lanes packed to the front, its four lanes stored.
                    for (h, x) in x.into_iter().enumerate() {
                        let mask = usize::from(keep >> (4 * h) & 0xf);
                        let order = pulp::cast::<[u32; 8], __m256i>(PACK[mask]);
                        let packed = a2._mm256_permutevar8x32_ps(a._mm256_castpd_ps(x), order);
                        let packed = pulp::cast::<_, [f64; 4]>(packed);
                        kept[m..m + 4].copy_from_slice(&packed);
                        m += mask.count_ones() as usize;
                    }
                } else {
                    let lanes = Lanes { x: pulp::cast(x), bits: pulp::cast(bits), keep, wedged };
                    m = lanes.file(wedge, tables, kept, m);
                }
            }
            *state = s.map(pulp::cast::<[__m256i; 2], [u64; LANES]>);
            m
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;

    /// The tables match Marsaglia & Tsang's 256-layer ziggurat (the values rand_distr ships)
    /// and every layer has area `V`.
    #[test]
    fn tables_are_the_256_layer_ziggurat() {
        let t = tables();
        let published = [
            (0, 3.910_757_959_537_09),
            (1, 3.654_152_885_361_009),
            (2, 3.449_278_298_560_964),
            (255, 0.215_241_895_913_273_8),
        ];
        for (i, x) in published {
            assert!((t.x[i] - x).abs() < 1e-9, "x[{i}] = {} vs {x}", t.x[i]);
        }
        assert!((t.f[0] - 0.000_477_467_764_586_655).abs() < 1e-12);
        for i in 1..LAYERS {
            let area = t.x[i] * (t.f[i + 1] - t.f[i]);
            assert!((area - V).abs() < 1e-9, "layer {i}: {area}");
        }
    }

    /// Each lane is Xoshiro256++ (rand_xoshiro's) seeded with its four words.
    #[test]
    fn lanes_are_xoshiro256_plus_plus() {
        let mut seeder = ChaCha8Rng::seed_from_u64(3);
        let mut lanes = TruncatedNormals::new(&mut seeder.clone());
        let mut reference: Vec<Xoshiro256PlusPlus> = (0..LANES)
            .map(|_| {
                let mut seed = [0u8; 32];
                for chunk in seed.chunks_exact_mut(8) {
                    chunk.copy_from_slice(&seeder.next_u64().to_le_bytes());
                }
                Xoshiro256PlusPlus::from_seed(seed)
            })
            .collect();
        for _ in 0..100 {
            let step = lanes.step();
            for (k, g) in reference.iter_mut().enumerate() {
                assert_eq!(step[k], g.next_u64());
            }
        }
    }

    /// The vector blocks of every instruction set the machine runs keep the same values as
    /// the lane-by-lane ones, wedge tests included, and leave the generators in the same state.
    #[test]
    fn vector_blocks_equal_lane_by_lane_blocks() {
        let t = tables();
        for isa in Isa::ALL.into_iter().filter(|isa| isa.available()) {
            let mut vector = TruncatedNormals::new(&mut ChaCha8Rng::seed_from_u64(5));
            let mut lanes = TruncatedNormals::new(&mut ChaCha8Rng::seed_from_u64(5));
            let (mut a, mut b) = ([0f64; KEPT], [0f64; KEPT]);
            let mut wedges = 0;
            for _ in 0..200 {
                let m = vector.vector_block(isa, t, &mut a).expect("available");
                let before = lanes.wedge.clone().next_u64();
                assert_eq!(m, lanes.block_by_lane(t, &mut b), "{isa:?}");
                assert_eq!(a[..m], b[..m], "{isa:?}");
                assert_eq!(vector.state, lanes.state, "{isa:?}");
                assert_eq!(vector.wedge.clone().next_u64(), lanes.wedge.clone().next_u64());
                wedges += usize::from(lanes.wedge.clone().next_u64() != before);
            }
            // The wedge generator moved in some blocks (wedge tests were made and compared).
            assert!(wedges > 10, "{isa:?}: {wedges}");
        }
    }

    /// The values follow the standard normal truncated to `[-2, 2]`: its probabilities of
    /// `|z| < 0.5`, `|z| < 1` and `z < 1.5` and its standard deviation (0.87962), to within
    /// five standard errors of 400,000 draws.
    #[test]
    fn values_follow_the_truncated_normal() {
        let n = 400_000;
        let mut out = vec![MaybeUninit::<f64>::uninit(); n];
        TruncatedNormals::new(&mut ChaCha8Rng::seed_from_u64(11)).fill(&mut out, |z| z);
        // SAFETY: `fill` initializes every element.
        let z: Vec<f64> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert!(z.iter().all(|v| v.abs() <= 2.0));
        // Phi(b) - Phi(a) over Phi(2) - Phi(-2) = 0.954499736103642.
        let mass = 0.954_499_736_103_642;
        type Case = (&'static str, fn(f64) -> bool, f64);
        let cases: [Case; 3] = [
            ("|z| < 0.5", |v| v.abs() < 0.5, 0.382_924_922_548_026 / mass),
            ("|z| < 1", |v| v.abs() < 1.0, 0.682_689_492_137_086 / mass),
            ("z < 1.5", |v| v < 1.5, (0.933_192_798_731_142 - 0.022_750_131_948_179) / mass),
        ];
        for (name, event, p) in cases {
            let got = z.iter().filter(|&&v| event(v)).count() as f64 / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((got - p).abs() < 5.0 * se, "{name}: {got} vs {p}");
        }
        let sd = (z.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
        assert!((sd - 0.879_626).abs() < 0.003, "sd {sd}");
    }
}
