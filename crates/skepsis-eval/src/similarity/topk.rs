//! Top-k intersection of two maps' most important positions.

use serde::{Deserialize, Serialize};

use super::{is_constant, Degeneracy, Similarity};
use crate::error::{ensure_pair, EvalError, Result};

/// How many positions [`top_k_intersection`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopK {
    /// Exactly `k` positions (`1 <= k <= n`).
    Count(usize),
    /// `ceil(fraction * n)` positions, `0 < fraction <= 1`.
    Fraction(f64),
}

impl Default for TopK {
    /// The top 10% of positions.
    fn default() -> Self {
        TopK::Fraction(0.1)
    }
}

impl TopK {
    /// Number of positions to keep out of `n`.
    ///
    /// Errors: `Count` outside `1..=n`, `Fraction` outside `(0, 1]`.
    pub fn resolve(&self, n: usize) -> Result<usize> {
        match *self {
            TopK::Count(k) if k >= 1 && k <= n => Ok(k),
            TopK::Count(k) => Err(EvalError::InvalidParameter {
                name: "k",
                value: k.to_string(),
                reason: "must be between 1 and the number of map positions",
            }),
            TopK::Fraction(f) if f > 0.0 && f <= 1.0 => {
                Ok(((f * n as f64).ceil() as usize).clamp(1, n.max(1)))
            }
            TopK::Fraction(f) => Err(EvalError::InvalidParameter {
                name: "fraction",
                value: f.to_string(),
                reason: "must be in (0, 1]",
            }),
        }
    }
}

/// Top-k intersection: the fraction of the `k` largest-`|value|` positions of `a` that are also
/// among the `k` largest-`|value|` positions of `b`, `|top_k(a) ∩ top_k(b)| / k`, in `[0, 1]`.
/// Ties in `|value|` are broken by the lower flat index (deterministic). A map whose `|value|`
/// is constant has an arbitrary top-k and is reported as degenerate.
///
/// Errors: empty inputs, different lengths, NaN or infinity, invalid `k`.
pub fn top_k_intersection(a: &[f64], b: &[f64], k: TopK) -> Result<Similarity> {
    ensure_pair(a, b)?;
    let k = k.resolve(a.len())?;
    let top_a = top_k_positions(a, k);
    let top_b = top_k_positions(b, k);
    let mut in_b = vec![false; a.len()];
    for &i in &top_b {
        in_b[i] = true;
    }
    let shared = top_a.iter().filter(|&&i| in_b[i]).count();
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let degeneracy = Degeneracy::from_flags(is_constant(&abs(a)), is_constant(&abs(b)));
    Ok(Similarity { value: shared as f64 / k as f64, degeneracy })
}

/// Indices of the `k` largest `|values|` (ties: lower index first), unordered; O(n).
fn top_k_positions(values: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    let before =
        |i: &usize, j: &usize| values[*j].abs().total_cmp(&values[*i].abs()).then(i.cmp(j));
    if k < order.len() {
        order.select_nth_unstable_by(k - 1, before);
    }
    order.truncate(k);
    order
}
