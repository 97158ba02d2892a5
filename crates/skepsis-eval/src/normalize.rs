//! Per-sample normalizations applied to a map before it is compared (Adebayo et al. 2018;
//! Binder et al. 2023 / Quantus). Every normalization uses statistics of the one map it is
//! given, never of a batch.

use serde::{Deserialize, Serialize};

use crate::dims::MapDims;
use crate::error::{ensure_finite, ensure_nonempty, EvalError, Result};

/// Percentile used by Adebayo et al.'s normalizations (PAIR saliency's default).
pub const ADEBAYO_PERCENTILE: f64 = 99.0;

/// A per-sample map normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    /// The map as it is (all channels kept).
    Identity,
    /// Adebayo et al. (2018), absolute version (PAIR saliency `VisualizeImageGrayscale` for
    /// 3-D maps, `abs_grayscale_norm` of the sanity-checks code):
    /// `[C,H,W]`: `s = sum_c |x|`, then `clip((s - min s) / (p99(s) - min s), 0, 1)` -> `[H,W]`;
    /// `[H,W]`: `|x| / max|x|`.
    AdebayoAbs,
    /// Adebayo et al. (2018), signed "diverging" version (PAIR `VisualizeImageDiverging`,
    /// `diverging_norm`): `[C,H,W]`: `s = sum_c x`, `span = |p99(s)|`,
    /// `clip((s + span) / (2 span), -1, 1)` -> `[H,W]` (the clip range `[-1, 1]` is PAIR's, so
    /// values below `-span` stay distinct down to `-3 span`); `[H,W]`: `x / max|x|`.
    AdebayoSigned,
    /// Min-max scaling of the whole map to `[0, 1]`: `(x - min) / (max - min)`, channels kept
    /// (Adebayo et al.'s preprocessing for SSIM and HOG).
    MinMax,
    /// Division by the square root of the second moment, `x / sqrt(mean(x^2))` over all
    /// elements (Binder et al. 2023; Quantus `normalise_by_average_second_moment_estimate`),
    /// channels kept.
    SecondMoment,
    /// `sum_c |x|` over channels -> `[H,W]`, no scaling (a pixel-importance map; used by top-k).
    AbsChannelSum,
}

/// A normalized map, its dimensions, and whether the normalization's scale was zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The normalized values, row-major.
    pub values: Vec<f64>,
    /// Their dimensions (`[H,W]` after a channel reduction).
    pub dims: MapDims,
    /// True when the divisor was zero (constant or all-zero input, or `p99 = min`); the output
    /// then follows the limit rule documented on [`normalize`].
    pub zero_scale: bool,
}

/// Applies `normalization` to one map of dimensions `dims`.
///
/// Zero divisors never produce NaN. The rule is the limit of the formula as the divisor goes to
/// `0+`: for `AdebayoAbs` on `[C,H,W]` (`p99 = min`, i.e. more than 99% of pixels at the
/// minimum, common on MNIST) pixels above the minimum become 1 and the others 0; for
/// `AdebayoSigned` on `[C,H,W]` (`span = 0`) positive sums become 1, negative -1, zero 0.5;
/// for divisions by `max|x|`, `max - min` or the second moment (all-zero or constant maps) the
/// output is all zeros. `zero_scale` reports every such case.
///
/// Percentiles are numpy's default (`method="linear"`): sort, virtual index `(n - 1) q / 100`,
/// linear interpolation between its neighbours (see [`percentile`]).
///
/// Errors: shape mismatch, NaN or infinity.
pub fn normalize(
    values: &[f64],
    dims: MapDims,
    normalization: Normalization,
) -> Result<Normalized> {
    dims.validate("map", values)?;
    Ok(normalize_unchecked(values, dims, normalization))
}

/// [`normalize`] for validated inputs.
pub(crate) fn normalize_unchecked(
    values: &[f64],
    dims: MapDims,
    normalization: Normalization,
) -> Normalized {
    let plane = dims.to_plane();
    let keep = |values: Vec<f64>, zero_scale| Normalized { values, dims, zero_scale };
    let reduced = |values: Vec<f64>, zero_scale| Normalized { values, dims: plane, zero_scale };
    match (normalization, dims) {
        (Normalization::Identity, _) => keep(values.to_vec(), false),
        (Normalization::AdebayoAbs, MapDims::Plane { .. }) => {
            let abs: Vec<f64> = values.iter().map(|v| v.abs()).collect();
            let (out, zero) = divide_by_max_abs(&abs);
            reduced(out, zero)
        }
        (Normalization::AdebayoSigned, MapDims::Plane { .. }) => {
            let (out, zero) = divide_by_max_abs(values);
            reduced(out, zero)
        }
        (Normalization::AdebayoAbs, MapDims::Channels { .. }) => {
            let sum = channel_sum(values, dims, f64::abs);
            let low = sum.iter().copied().fold(f64::INFINITY, f64::min);
            let high = percentile_sorted(&sorted(&sum), ADEBAYO_PERCENTILE);
            let scale = high - low;
            if scale > 0.0 {
                let out = sum.iter().map(|s| ((s - low) / scale).clamp(0.0, 1.0)).collect();
                reduced(out, false)
            } else {
                let out = sum.iter().map(|&s| if s > low { 1.0 } else { 0.0 }).collect();
                reduced(out, true)
            }
        }
        (Normalization::AdebayoSigned, MapDims::Channels { .. }) => {
            let sum = channel_sum(values, dims, |v| v);
            let span = percentile_sorted(&sorted(&sum), ADEBAYO_PERCENTILE).abs();
            if span > 0.0 {
                let out =
                    sum.iter().map(|s| ((s + span) / (2.0 * span)).clamp(-1.0, 1.0)).collect();
                reduced(out, false)
            } else {
                let limit = |s: f64| {
                    if s > 0.0 {
                        1.0
                    } else if s < 0.0 {
                        -1.0
                    } else {
                        0.5
                    }
                };
                reduced(sum.iter().map(|&s| limit(s)).collect(), true)
            }
        }
        (Normalization::MinMax, _) => {
            let (low, high) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let scale = high - low;
            if scale > 0.0 {
                keep(values.iter().map(|v| (v - low) / scale).collect(), false)
            } else {
                keep(vec![0.0; values.len()], true)
            }
        }
        (Normalization::SecondMoment, _) => {
            let moment = values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64;
            let root = moment.sqrt();
            if root > 0.0 {
                keep(values.iter().map(|v| v / root).collect(), false)
            } else {
                keep(vec![0.0; values.len()], true)
            }
        }
        (Normalization::AbsChannelSum, _) => reduced(channel_sum(values, dims, f64::abs), false),
    }
}

/// `q`-th percentile of `values` with numpy's default linear method: `v` sorted ascending,
/// virtual index `h = (n - 1) q / 100`, result = `v[floor h] + (v[floor h + 1] - v[floor h]) *
/// (h - floor h)` (numpy's `_lerp`, which computes from the upper neighbour when the fraction
/// is >= 0.5).
///
/// Errors: empty input, non-finite values, `q` outside `[0, 100]`.
pub fn percentile(values: &[f64], q: f64) -> Result<f64> {
    ensure_nonempty("values", values)?;
    ensure_finite("values", values)?;
    if !(0.0..=100.0).contains(&q) {
        return Err(EvalError::InvalidParameter {
            name: "q",
            value: q.to_string(),
            reason: "must be in [0, 100]",
        });
    }
    Ok(percentile_sorted(&sorted(values), q))
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// numpy's linear percentile of an already sorted, non-empty slice.
fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * (q / 100.0);
    let below = (virtual_index.floor() as usize).min(n - 1);
    let above = (below + 1).min(n - 1);
    let t = virtual_index - below as f64;
    let (a, b) = (sorted[below], sorted[above]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// `sum_c f(x[c, h, w])` -> `[H,W]` (for a plane: `f(x)`).
fn channel_sum(values: &[f64], dims: MapDims, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut out = vec![0.0; dims.pixels()];
    for channel in values.chunks_exact(dims.pixels()) {
        for (o, &v) in out.iter_mut().zip(channel) {
            *o += f(v);
        }
    }
    out
}

/// `x / max|x|`, or zeros (and `true`) when the map is all zero.
fn divide_by_max_abs(values: &[f64]) -> (Vec<f64>, bool) {
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max > 0.0 {
        (values.iter().map(|v| v / max).collect(), false)
    } else {
        (vec![0.0; values.len()], true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], 99): h = 3 * 0.99 = 2.97 -> 4 - 1 * 0.03 = 3.97
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0], 99.0).unwrap() - 3.97).abs() < 1e-12);
        // h = 3 * 0.5 = 1.5 -> 2.5
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0).unwrap(), 2.5);
        assert_eq!(percentile(&[5.0], 99.0).unwrap(), 5.0);
        assert!(percentile(&[1.0], 101.0).is_err());
    }
}
