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
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&i, &j| values[i].total_cmp(&values[j]));
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
    if let Some(d) = Degeneracy::from_flags(is_constant(a), is_constant(b)) {
        return fallback(a, b, d);
    }
    let ra = average_ranks_unchecked(a);
    let rb = average_ranks_unchecked(b);
    pearson_unchecked(&ra, &rb)
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

    #[test]
    fn ranks_reject_nan() {
        assert!(average_ranks(&[1.0, f64::NAN]).is_err());
        assert!(average_ranks(&[]).is_err());
    }
}
