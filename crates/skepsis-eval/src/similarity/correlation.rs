//! Pearson correlation, cosine similarity and mean squared error on flat maps.

use super::{fallback, is_constant, Degeneracy, Similarity};
use crate::error::{ensure_pair, Result};

/// Pearson's correlation coefficient of the flattened maps, identical to
/// `scipy.stats.pearsonr(a, b)[0]`:
/// `r = sum((a - mean a)(b - mean b)) / sqrt(sum((a - mean a)^2) * sum((b - mean b)^2))`,
/// clipped to `[-1, 1]` against rounding. Used on raw and on |.|-normalized maps by Adebayo et
/// al. (2018).
///
/// A constant input makes `r` undefined (0/0): the result is degenerate with the fallback value
/// documented on [`Similarity`].
///
/// Errors: empty inputs, different lengths, NaN or infinity.
pub fn pearson(a: &[f64], b: &[f64]) -> Result<Similarity> {
    ensure_pair(a, b)?;
    if let Some(d) = Degeneracy::from_flags(is_constant(a), is_constant(b)) {
        return Ok(fallback(a, b, d));
    }
    Ok(pearson_unchecked(a, b))
}

/// Pearson correlation of validated, non-constant inputs (two passes: means, then moments).
pub(crate) fn pearson_unchecked(a: &[f64], b: &[f64]) -> Similarity {
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x - mean_a, y - mean_b);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    let denominator = saa.sqrt() * sbb.sqrt();
    if denominator > 0.0 && denominator.is_finite() {
        Similarity::regular((sab / denominator).clamp(-1.0, 1.0))
    } else {
        // Non-constant inputs whose deviations underflow (e.g. values 1e-320 apart): report
        // as degenerate rather than dividing by zero.
        let d = Degeneracy::from_flags(saa <= 0.0, sbb <= 0.0).unwrap_or(Degeneracy::BothConstant);
        fallback(a, b, d)
    }
}

/// Cosine similarity `sum(a b) / (||a|| ||b||)` of the flattened maps, clipped to `[-1, 1]`.
///
/// Undefined when a map is all zero: then degenerate with the fallback value documented on
/// [`Similarity`]. A constant non-zero map gives a regular value but is still reported as
/// degenerate (constant maps carry no spatial information).
///
/// Errors: empty inputs, different lengths, NaN or infinity.
pub fn cosine(a: &[f64], b: &[f64]) -> Result<Similarity> {
    ensure_pair(a, b)?;
    let degeneracy = Degeneracy::from_flags(is_constant(a), is_constant(b));
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm_a = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let norm_b = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    let denominator = norm_a * norm_b;
    if denominator > 0.0 && denominator.is_finite() {
        Ok(Similarity { value: (dot / denominator).clamp(-1.0, 1.0), degeneracy })
    } else {
        Ok(fallback(a, b, degeneracy.unwrap_or(Degeneracy::BothConstant)))
    }
}

/// Mean squared error `mean((a - b)^2)` of the flattened maps (a dissimilarity: 0 for equal
/// maps). Always defined; constant maps are reported as degenerate.
///
/// Errors: empty inputs, different lengths, NaN or infinity.
pub fn mse(a: &[f64], b: &[f64]) -> Result<Similarity> {
    ensure_pair(a, b)?;
    let degeneracy = Degeneracy::from_flags(is_constant(a), is_constant(b));
    let sum: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    Ok(Similarity { value: sum / a.len() as f64, degeneracy })
}
