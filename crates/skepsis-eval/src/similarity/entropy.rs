//! Discrete entropy of a histogram of attribution values, and the eMPRT score built on it
//! (Hedström et al. 2023).

use super::{is_constant, Degeneracy, Similarity};
use crate::error::{ensure_finite, ensure_nonempty, EvalError, Result};

/// Number of histogram bins of eMPRT's entropy (Quantus' `discrete_entropy` default).
pub const ENTROPY_BINS: usize = 100;

/// Shannon entropy (natural log) of the histogram of `values`, as Quantus'
/// `discrete_entropy` computes it for eMPRT (Hedström et al. 2023):
/// `counts = numpy.histogram(values, bins)`; `p = counts / sum(counts)`;
/// `H = -sum p ln p` over non-empty bins (`scipy.stats.entropy`).
///
/// Bins follow numpy exactly: `bins` equal-width bins over `[min, max]` with edges
/// `min + k (max - min) / bins` (numpy.linspace, last edge exactly `max`); bin `k` holds
/// `edge_k <= v < edge_(k+1)`, the last bin is closed. A constant map uses numpy's range
/// `[v - 0.5, v + 0.5]`, so all values share one bin and `H = 0`. Values are taken flat, so
/// channels are pooled. `H = 0` exactly when the map is constant.
///
/// Errors: empty input, NaN or infinity, `bins == 0`.
pub fn discrete_entropy(values: &[f64], bins: usize) -> Result<f64> {
    ensure_nonempty("values", values)?;
    ensure_finite("values", values)?;
    if bins == 0 {
        return Err(EvalError::InvalidParameter {
            name: "bins",
            value: "0".into(),
            reason: "must be >= 1",
        });
    }
    let counts = histogram(values, bins);
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let entropy = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum::<f64>();
    Ok(entropy)
}

/// eMPRT's score (Hedström et al. 2023, "efficient MPRT"): the relative rise in explanation
/// entropy from the original to the fully randomized model,
/// `(H(randomized) - H(original)) / H(original)`, with `H` = [`discrete_entropy`] over
/// [`ENTROPY_BINS`] bins. Higher is better (randomization should make explanations noisier).
///
/// Degenerate when the original map is constant (`H(original) = 0`, division by zero): then
/// `value = 0.0` and `degeneracy` names the constant map(s). A constant randomized map alone
/// gives the regular value -1 and is reported as degenerate.
///
/// Errors: as [`discrete_entropy`]; the maps may differ in length.
pub fn entropy_rise(original: &[f64], randomized: &[f64]) -> Result<Similarity> {
    let h_original = discrete_entropy(original, ENTROPY_BINS)?;
    let h_randomized = discrete_entropy(randomized, ENTROPY_BINS)?;
    let degeneracy = Degeneracy::from_flags(is_constant(original), is_constant(randomized));
    let value = if h_original > 0.0 { (h_randomized - h_original) / h_original } else { 0.0 };
    Ok(Similarity { value, degeneracy })
}

/// numpy.histogram(values, bins) counts for finite, non-empty `values`.
fn histogram(values: &[f64], bins: usize) -> Vec<u64> {
    let (mut low, mut high) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if low == high {
        low -= 0.5;
        high += 0.5;
    }
    let edges = linspace(low, high, bins + 1);
    let span = high - low;
    let mut counts = vec![0u64; bins];
    for &v in values {
        // numpy's first guess, then its correction against the actual edges.
        let guess = ((v - low) / span) * bins as f64;
        let mut index = (guess as usize).min(bins - 1);
        if v < edges[index] && index > 0 {
            index -= 1;
        }
        if v >= edges[index + 1] && index != bins - 1 {
            index += 1;
        }
        counts[index] += 1;
    }
    counts
}

/// numpy.linspace(start, stop, num) with `endpoint=True`: `k * step + start`, last = `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut out: Vec<f64> = (0..num)
        .map(|k| if step == 0.0 { k as f64 / div * delta + start } else { k as f64 * step + start })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = stop;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_matches_numpy_edges() {
        // numpy.histogram([0, 1, 2, 3, 4], bins=4): edges 0,1,2,3,4 -> counts 1,1,1,2
        assert_eq!(histogram(&[0.0, 1.0, 2.0, 3.0, 4.0], 4), vec![1, 1, 1, 2]);
        // constant: range [v-0.5, v+0.5], all in the middle bin for 3 bins
        assert_eq!(histogram(&[2.0; 4], 3), vec![0, 4, 0]);
    }

    #[test]
    fn entropy_of_uniform_histogram() {
        // four values in four different bins: H = ln 4
        let h = discrete_entropy(&[0.0, 1.0, 2.0, 3.5], 4).unwrap();
        assert!((h - 4f64.ln()).abs() < 1e-15);
        assert_eq!(discrete_entropy(&[1.0; 5], 100).unwrap(), 0.0);
    }
}
