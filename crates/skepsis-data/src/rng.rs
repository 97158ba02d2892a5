//! Seeded randomness with a stable stream: every generator draws from ChaCha8 streams derived
//! from the user's `u64` seed and the item's coordinates (split, bucket, index), so that an image
//! does not depend on how many images come before it or on thread scheduling, and the bytes stay
//! the same across versions of `rand` (the helpers below do not use rand's distributions, whose
//! algorithms may change between releases).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator type used throughout the crate.
pub(crate) type Rng = ChaCha8Rng;

/// SplitMix64 finalizer: a bijective mixer of 64-bit values.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for the stream named by `seed` and the path `stream` (e.g. `[split, bucket,
/// index]`): different paths give independent streams.
pub(crate) fn stream(seed: u64, path: &[u64]) -> Rng {
    let mut h = mix(seed);
    for &p in path {
        h = mix(h ^ mix(p.wrapping_add(0x5851_F42D_4C95_7F2D)));
    }
    let mut key = [0u8; 32];
    let mut s = h;
    for chunk in key.chunks_exact_mut(8) {
        s = mix(s);
        chunk.copy_from_slice(&s.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Uniform in `[0, 1)` with 53 random bits.
pub(crate) fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in `[lo, hi)`.
pub(crate) fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(rng)
}

/// Uniform integer in `0..n` (`n > 0`), by the multiply-shift map (bias below 2^-40 for the
/// small `n` used here).
pub(crate) fn below(rng: &mut Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Standard normal by the Box-Muller transform.
pub(crate) fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1]
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Fisher-Yates shuffle.
pub(crate) fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| stream(7, &[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(stream(7, &[1, 2]).next_u64(), stream(7, &[2, 1]).next_u64());
        assert_ne!(stream(7, &[1]).next_u64(), stream(8, &[1]).next_u64());
    }

    #[test]
    fn below_and_unit_stay_in_range() {
        let mut rng = stream(0, &[]);
        for _ in 0..10_000 {
            assert!(below(&mut rng, 54) < 54);
            let u = unit(&mut rng);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
