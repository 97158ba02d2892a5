//! Spearman rank correlation with average ranks for ties (scipy.stats.spearmanr).

use super::{correlation::pearson_unchecked, fallback, is_constant, Degeneracy, Similarity};
use crate::error::{ensure_finite, ensure_nonempty, ensure_pair, Result};

/// Ranks `1..=n` of `values` with ties given the average of the ranks they span
/// (scipy.stats.rankdata, method "average"), in O(n log n).
///
/// Example: `[10, 20, 20, 5]` -> `[2, 3.5, 3.5, 1]`. `-0.0` and `0.0` tie.
///
/// Errors: empty input, NaN or infinity.
pub fn average_ranks(values: &[f64]) -> Result<Vec<f64>> {
    ensure_nonempty("values", values)?;
    ensure_finite("values", values)?;
    Ok(average_ranks_unchecked(values))
}

/// [`average_ranks`] for inputs already known to be finite.
pub(crate) fn average_ranks_unchecked(values: &[f64]) -> Vec<f64> {
    // Sorted by keys that order like `f64::total_cmp` (sign-magnitude bits made monotone),
    // each with its index: one integer comparison per step instead of two indirect loads and
    // two bit transforms (the ranking was most of a Spearman correlation's time).
    let mut keyed: Vec<(u64, usize)> =
        values.iter().map(|v| total_order_key(*v)).zip(0..).collect();
    keyed.sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        // `==` (not total_cmp) groups -0.0 with 0.0, which sort adjacent to each other.
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = rank;
        }
        start = end;
    }
    ranks
}

/// An integer that orders like [`f64::total_cmp`]: negative values' bits inverted, the sign
/// bit of the others set.
fn total_order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Spearman's rank correlation (Spearman 1904), as used by Adebayo et al. (2018): the Pearson
/// correlation of the average ranks of `a` and `b`. Identical to `scipy.stats.spearmanr(a, b)`
/// on flat inputs. O(n log n).
///
/// A constant input has no defined rank correlation: the result is then degenerate with the
/// fallback value documented on [`Similarity`].
///
/// Errors: empty inputs, different lengths, NaN or infinity.
pub fn spearman(a: &[f64], b: &[f64]) -> Result<Similarity> {
    ensure_pair(a, b)?;
    Ok(spearman_unchecked(a, b))
}

/// [`spearman`] for validated inputs.
pub(crate) fn spearman_unchecked(a: &[f64], b: &[f64]) -> Similarity {
    spearman_ranked(a, None, b)
}

/// [`spearman`] of a map whose average ranks are known (ranked once for a map compared with
/// many others) with the map `b`.
///
/// Errors: those of [`spearman`].
pub(crate) fn spearman_with_ranks(a: &[f64], ranks: &[f64], b: &[f64]) -> Result<Similarity> {
    ensure_pair(a, b)?;
    Ok(spearman_ranked(a, Some(ranks), b))
}

/// [`spearman`] of validated inputs, `a`'s ranks given or computed here.
fn spearman_ranked(a: &[f64], ranks: Option<&[f64]>, b: &[f64]) -> Similarity {
    if let Some(d) = Degeneracy::from_flags(is_constant(a), is_constant(b)) {
        return fallback(a, b, d);
    }
    let rb = average_ranks_unchecked(b);
    match ranks {
        Some(ra) => pearson_unchecked(ra, &rb),
        None => pearson_unchecked(&average_ranks_unchecked(a), &rb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        // sorted: 5 (rank 1), 10 (rank 2), 20, 20 (ranks 3 and 4 -> 3.5 each)
        assert_eq!(average_ranks(&[10.0, 20.0, 20.0, 5.0]).unwrap(), vec![2.0, 3.5, 3.5, 1.0]);
        assert_eq!(average_ranks(&[-0.0, 0.0]).unwrap(), vec![1.5, 1.5]);
        assert_eq!(average_ranks(&[7.0; 3]).unwrap(), vec![2.0; 3]);
    }

    /// The keys order like `total_cmp` (signed zeros, subnormals, extremes, infinities).
    #[test]
    fn keys_order_like_total_cmp() {
        let values = [
            f64::NEG_INFINITY,
            f64::MIN,
            -1.5,
            -f64::MIN_POSITIVE,
            -1e-310,
            -0.0,
            0.0,
            1e-310,
            f64::MIN_POSITIVE,
            2.0,
            f64::MAX,
            f64::INFINITY,
        ];
        for a in values {
            for b in values {
                assert_eq!(total_order_key(a).cmp(&total_order_key(b)), a.total_cmp(&b), "{a} {b}");
            }
        }
    }

    #[test]
    fn ranks_reject_nan() {
        assert!(average_ranks(&[1.0, f64::NAN]).is_err());
        assert!(average_ranks(&[]).is_err());
    }
}
