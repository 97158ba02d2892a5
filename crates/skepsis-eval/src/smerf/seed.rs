//! Seeds of the sub-streams of a run, derived from the run's seed with SplitMix64 so that
//! every (purpose, index) gets an independent, reproducible value.

/// SplitMix64 finalizer (Steele, Lea & Flood 2014).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of the sub-stream `tags` of `seed`: `mix(... mix(mix(seed) ^ t1) ... ^ tn)`.
pub(crate) fn derive_seed(seed: u64, tags: &[u64]) -> u64 {
    tags.iter().fold(mix(seed), |acc, &t| mix(acc ^ t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_tag_and_are_stable() {
        assert_eq!(derive_seed(7, &[1, 2]), derive_seed(7, &[1, 2]));
        assert_ne!(derive_seed(7, &[1, 2]), derive_seed(7, &[2, 1]));
        assert_ne!(derive_seed(7, &[1]), derive_seed(8, &[1]));
    }
}
