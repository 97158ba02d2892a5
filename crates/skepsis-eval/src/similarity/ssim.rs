//! Structural similarity (Wang et al. 2004) as skimage.metrics.structural_similarity computes it
//! with Gaussian weights.

use serde::{Deserialize, Serialize};

use super::{is_constant, Degeneracy, Similarity};
use crate::dims::MapDims;
use crate::error::{EvalError, Result};

/// Gaussian window standard deviation (Wang et al. 2004; skimage `sigma=1.5`).
pub const SSIM_SIGMA: f64 = 1.5;
/// Window radius: scipy's `int(truncate * sigma + 0.5)` with skimage's `truncate = 3.5`,
/// i.e. 5, an 11-tap window.
pub const SSIM_RADIUS: usize = 5;
/// Stabilizer constants of Wang et al. (2004): `C1 = (K1 L)^2`, `C2 = (K2 L)^2`.
pub const SSIM_K1: f64 = 0.01;
/// See [`SSIM_K1`].
pub const SSIM_K2: f64 = 0.03;
/// Number of window taps in 2-D, `11 * 11`: skimage's `NP` in the sample-covariance factor.
const WINDOW_POINTS: f64 = ((2 * SSIM_RADIUS + 1) * (2 * SSIM_RADIUS + 1)) as f64;

/// Which second moments SSIM uses inside each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SsimCovariance {
    /// Population moments `v = E[x^2] - E[x]^2` (skimage `use_sample_covariance=False`).
    #[default]
    Population,
    /// Population moments times `NP / (NP - 1)`, `NP = 121` (skimage
    /// `use_sample_covariance=True`, its default, used by Adebayo et al.'s code).
    Sample,
}

/// Options of [`ssim`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SsimOptions {
    /// Dynamic range `L` of the maps in `C1 = (K1 L)^2`, `C2 = (K2 L)^2`. Must be > 0.
    pub data_range: f64,
    /// Population or sample (co)variances.
    pub covariance: SsimCovariance,
}

impl Default for SsimOptions {
    /// `data_range = 1` (maps min-max scaled to `[0, 1]`), population moments: the conformance
    /// definition and skepsis' default.
    fn default() -> Self {
        SsimOptions { data_range: 1.0, covariance: SsimCovariance::Population }
    }
}

impl SsimOptions {
    /// Exact reproduction of Adebayo et al.'s code (skimage 0.15 defaults for float input):
    /// compared with [`Default`], it changes exactly two things: `data_range = 2` (skimage 0.15
    /// took the range of the float dtype, `[-1, 1]`, so `C1`, `C2` are 4x larger) and sample
    /// covariance (variances and covariance multiplied by `121 / 120`). Window, constants,
    /// boundary and crop are unchanged.
    pub fn sanity_checks_exact() -> Self {
        SsimOptions { data_range: 2.0, covariance: SsimCovariance::Sample }
    }

    fn validate(&self) -> Result<()> {
        if self.data_range.is_finite() && self.data_range > 0.0 {
            Ok(())
        } else {
            Err(EvalError::InvalidParameter {
                name: "data_range",
                value: self.data_range.to_string(),
                reason: "must be finite and > 0",
            })
        }
    }
}

/// Mean structural similarity (Wang et al. 2004) of two maps of dimensions `dims`, exactly as
/// `skimage.metrics.structural_similarity(a, b, data_range, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance)` computes it, per channel, then averaged over channels:
///
/// - local means `ux, uy` and moments `uxx, uyy, uxy` by a separable Gaussian filter
///   (sigma 1.5, 11 taps `exp(-t^2 / (2 sigma^2))` normalized to sum 1; rows, then columns),
///   boundary "reflect" = half-sample symmetric (`d c b a | a b c d`, scipy.ndimage's default);
/// - `vx = f (uxx - ux^2)`, `vy = f (uyy - uy^2)`, `vxy = f (uxy - ux uy)` with `f = 1`
///   (population) or `121 / 120` (sample);
/// - `S = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2))`,
///   `C1 = (0.01 L)^2`, `C2 = (0.03 L)^2`, `L = data_range`;
/// - result = mean of `S` after cropping 5 pixels on every side. The crop keeps exactly the
///   positions whose 11x11 window lies inside the map, so the boundary rule never reaches the
///   result, and only those positions are filtered.
///
/// The maps are used as given (no normalization here; [`compare`](crate::compare) min-max
/// scales them first). SSIM stays defined on constant maps; they are reported as degenerate.
///
/// Errors: shape mismatch, non-finite values, maps smaller than 11x11 (skimage refuses them
/// too), invalid `data_range`.
pub fn ssim(a: &[f64], b: &[f64], dims: MapDims, options: &SsimOptions) -> Result<Similarity> {
    dims.validate("a", a)?;
    dims.validate("b", b)?;
    options.validate()?;
    ensure_window(dims)?;
    if a == b {
        return Ok(identical(a, b));
    }
    Ok(combine(a, &LocalMoments::of(a, dims), b, &LocalMoments::of(b, dims), dims, options))
}

/// [`ssim`] of a map whose [`LocalMoments`] are known (validated and computed once for a map
/// compared with many others) with the map `b`.
pub(crate) fn ssim_with_moments(
    a: &[f64],
    moments: &LocalMoments,
    b: &[f64],
    dims: MapDims,
    options: &SsimOptions,
) -> Result<Similarity> {
    dims.validate("b", b)?;
    options.validate()?;
    if a == b {
        return Ok(identical(a, b));
    }
    Ok(combine(a, moments, b, &LocalMoments::of(b, dims), dims, options))
}

/// The local means and second moments of one map, per channel (`ux` and `uxx` of [`ssim`]):
/// two of SSIM's five Gaussian filters depend on one map alone, so a map compared with many
/// others (the original model's maps at every randomization step) is filtered once.
#[derive(Debug, Clone)]
pub(crate) struct LocalMoments {
    /// Per channel, the filtered map `ux` and the filtered squares `uxx`.
    planes: Vec<(Vec<f64>, Vec<f64>)>,
}

impl LocalMoments {
    /// The moments of a validated map of dimensions `dims`, at least 11x11.
    fn of(x: &[f64], dims: MapDims) -> LocalMoments {
        let (height, width, pixels) = (dims.height(), dims.width(), dims.pixels());
        let weights = gaussian_weights();
        let planes = x
            .chunks_exact(pixels)
            .map(|plane| {
                let squares: Vec<f64> = plane.iter().map(|v| v * v).collect();
                let filter =
                    |values: &[f64]| gaussian_filter_interior(values, height, width, &weights);
                (filter(plane), filter(&squares))
            })
            .collect();
        LocalMoments { planes }
    }

    /// Validates `x` as the first map of [`ssim`] and computes its moments.
    ///
    /// Errors: those of [`ssim`] for the first map (shape, non-finite values, smaller than
    /// 11x11).
    pub(crate) fn new(x: &[f64], dims: MapDims) -> Result<LocalMoments> {
        dims.validate("a", x)?;
        ensure_window(dims)?;
        Ok(LocalMoments::of(x, dims))
    }
}

/// Maps smaller than the 11x11 window are refused (as skimage refuses them).
fn ensure_window(dims: MapDims) -> Result<()> {
    let (height, width) = (dims.height(), dims.width());
    let window = 2 * SSIM_RADIUS + 1;
    if height < window || width < window {
        return Err(EvalError::MapTooSmall {
            metric: "ssim",
            height,
            width,
            min_height: window,
            min_width: window,
        });
    }
    Ok(())
}

/// SSIM of a map with an equal one: `S = 1` in every window. With `y = x` the numerator's and
/// the denominator's factors are the same numbers (`2 ux ux = ux^2 + ux^2`, `vxy = vx = vy`).
/// A check compares many maps with themselves (the original model's, the edge detector's at
/// every step).
fn identical(a: &[f64], b: &[f64]) -> Similarity {
    Similarity { value: 1.0, degeneracy: Degeneracy::from_flags(is_constant(a), is_constant(b)) }
}

/// Mean SSIM over the channels of two validated maps with their moments.
fn combine(
    x: &[f64],
    mx: &LocalMoments,
    y: &[f64],
    my: &LocalMoments,
    dims: MapDims,
    options: &SsimOptions,
) -> Similarity {
    let degeneracy = Degeneracy::from_flags(is_constant(x), is_constant(y));
    let pixels = dims.pixels();
    let total: f64 = x
        .chunks_exact(pixels)
        .zip(y.chunks_exact(pixels))
        .zip(mx.planes.iter().zip(&my.planes))
        .map(|((x, y), (mx, my))| ssim_plane(x, mx, y, my, dims.height(), dims.width(), options))
        .sum();
    Similarity { value: total / dims.num_channels() as f64, degeneracy }
}

/// SSIM of one validated `[height, width]` channel whose means `ux`, `uy` and second moments
/// `uxx`, `uyy` are given: only the filtered cross products `uxy` remain.
fn ssim_plane(
    x: &[f64],
    (ux, uxx): &(Vec<f64>, Vec<f64>),
    y: &[f64],
    (uy, uyy): &(Vec<f64>, Vec<f64>),
    height: usize,
    width: usize,
    options: &SsimOptions,
) -> f64 {
    let xy: Vec<f64> = x.iter().zip(y).map(|(u, v)| u * v).collect();
    let uxy = gaussian_filter_interior(&xy, height, width, &gaussian_weights());

    let cov_norm = match options.covariance {
        SsimCovariance::Population => 1.0,
        SsimCovariance::Sample => WINDOW_POINTS / (WINDOW_POINTS - 1.0),
    };
    let c1 = (SSIM_K1 * options.data_range).powi(2);
    let c2 = (SSIM_K2 * options.data_range).powi(2);

    // The moments hold the interior positions only, row-major.
    let mut sum = 0.0;
    for i in 0..uxy.len() {
        let vx = cov_norm * (uxx[i] - ux[i] * ux[i]);
        let vy = cov_norm * (uyy[i] - uy[i] * uy[i]);
        let vxy = cov_norm * (uxy[i] - ux[i] * uy[i]);
        let a1 = 2.0 * ux[i] * uy[i] + c1;
        let a2 = 2.0 * vxy + c2;
        let b1 = ux[i] * ux[i] + uy[i] * uy[i] + c1;
        let b2 = vx + vy + c2;
        sum += (a1 * a2) / (b1 * b2);
    }
    sum / uxy.len() as f64
}

/// scipy.ndimage's 1-D Gaussian kernel: `exp(-0.5 / sigma^2 * t^2)`, `t = -5..=5`, normalized.
/// Returned as the half kernel `w[0..=5]` (`w[j]` is the weight at offset `+-j`).
fn gaussian_weights() -> [f64; SSIM_RADIUS + 1] {
    let mut full = [0.0; 2 * SSIM_RADIUS + 1];
    let factor = -0.5 / (SSIM_SIGMA * SSIM_SIGMA);
    for (k, w) in full.iter_mut().enumerate() {
        let t = k as f64 - SSIM_RADIUS as f64;
        *w = (factor * (t * t)).exp();
    }
    let sum: f64 = full.iter().sum();
    let mut half = [0.0; SSIM_RADIUS + 1];
    for (j, w) in half.iter_mut().enumerate() {
        *w = full[SSIM_RADIUS + j] / sum;
    }
    half
}

/// Separable Gaussian filter, axis 0 (rows) then axis 1 (columns), like scipy.ndimage, of a
/// `[height, width]` plane at least 11x11, at the interior positions only: the
/// `[height - 10, width - 10]` positions [`ssim`] averages over after its crop, row-major.
///
/// Their windows lie inside the plane, so no sample is ever reflected, and the crop's border
/// is never filtered (for 28x28 maps, 53% of the full filter's work). The terms and their
/// order are scipy's, so the values are bitwise those of filtering the whole plane.
fn gaussian_filter_interior(
    values: &[f64],
    height: usize,
    width: usize,
    half: &[f64; SSIM_RADIUS + 1],
) -> Vec<f64> {
    let r = SSIM_RADIUS;
    debug_assert!(height > 2 * r && width > 2 * r);
    let (rows, cols) = (height - 2 * r, width - 2 * r);
    // Axis 0, interior rows, every column: output row `i` reads rows `i +- j`, each output
    // summed in a register.
    let mut along_rows = vec![0.0; rows * width];
    for (i, dst) in along_rows.chunks_exact_mut(width).enumerate() {
        let row = |at: usize| &values[at * width..][..width];
        let center = row(i + r);
        let pairs: [(&[f64], &[f64]); SSIM_RADIUS] =
            std::array::from_fn(|j| (row(i + r + j + 1), row(i + r - j - 1)));
        for (c, d) in dst.iter_mut().enumerate() {
            let mut acc = center[c] * half[0];
            for (j, (after, before)) in pairs.iter().enumerate() {
                acc += (after[c] + before[c]) * half[j + 1];
            }
            *d = acc;
        }
    }
    // Axis 1, interior columns.
    let mut out = vec![0.0; rows * cols];
    for (src, dst) in along_rows.chunks_exact(width).zip(out.chunks_exact_mut(cols)) {
        for (i, o) in dst.iter_mut().enumerate() {
            let c = i + r;
            let mut acc = src[c] * half[0];
            for (j, &weight) in half.iter().enumerate().skip(1) {
                acc += (src[c + j] + src[c - j]) * weight;
            }
            *o = acc;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index into `0..n` of position `i` under half-sample symmetric reflection (period `2n`).
    fn reflect(i: isize, n: isize) -> usize {
        let period = 2 * n;
        let m = i.rem_euclid(period);
        (if m < n { m } else { period - 1 - m }) as usize
    }

    /// The filter as scipy describes it: each column, then each row, as a 1-D line with every
    /// index reflected. The interior filter must give the same bits at the interior positions
    /// (same terms, same order).
    #[test]
    fn gaussian_filter_equals_the_line_by_line_definition() {
        let half = gaussian_weights();
        let r = SSIM_RADIUS as isize;
        let line_filter = |line: &[f64]| -> Vec<f64> {
            let n = line.len() as isize;
            (0..n)
                .map(|i| {
                    let mut acc = line[reflect(i, n)] * half[0];
                    for j in 1..=r {
                        acc +=
                            (line[reflect(i + j, n)] + line[reflect(i - j, n)]) * half[j as usize];
                    }
                    acc
                })
                .collect()
        };
        for (height, width) in [(11, 11), (28, 17), (13, 40)] {
            let values: Vec<f64> =
                (0..height * width).map(|i| ((i * 7919) % 103) as f64 / 7.0 - 3.0).collect();
            let mut expected = values.clone();
            for c in 0..width {
                let column: Vec<f64> = (0..height).map(|r| expected[r * width + c]).collect();
                for (r, v) in line_filter(&column).into_iter().enumerate() {
                    expected[r * width + c] = v;
                }
            }
            for row in expected.chunks_exact_mut(width) {
                let filtered = line_filter(row);
                row.copy_from_slice(&filtered);
            }
            let r = SSIM_RADIUS;
            let interior: Vec<f64> = expected
                .chunks_exact(width)
                .skip(r)
                .take(height - 2 * r)
                .flat_map(|row| row[r..width - r].to_vec())
                .collect();
            assert_eq!(gaussian_filter_interior(&values, height, width, &half), interior);
        }
    }

    /// The shortcut for identical maps gives what the windows give: every window's `S` is
    /// exactly 1 (both covariance options, constant maps included).
    #[test]
    fn a_map_compared_with_itself_is_what_the_windows_give() {
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for (height, width) in [(11, 11), (28, 28), (16, 23)] {
            for options in [SsimOptions::default(), SsimOptions::sanity_checks_exact()] {
                for kind in 0..3 {
                    let x: Vec<f64> = (0..height * width)
                        .map(|_| match kind {
                            0 => next(),
                            1 => (next() * 4.0).floor() / 4.0,
                            _ => 0.5,
                        })
                        .collect();
                    let dims = MapDims::plane(height, width);
                    let m = LocalMoments::of(&x, dims);
                    let windows = combine(&x, &m, &x, &m, dims, &options).value;
                    assert_eq!(windows, 1.0, "{height}x{width} {options:?} kind {kind}");
                    assert_eq!(ssim(&x, &x, dims, &options).unwrap().value, windows);
                }
            }
        }
    }

    #[test]
    fn reflect_is_half_sample_symmetric() {
        // d c b a | a b c d | d c b a  for n = 4
        let got: Vec<usize> = (-4..8).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
    }

    #[test]
    fn weights_sum_to_one() {
        let w = gaussian_weights();
        let sum = w[0] + 2.0 * w[1..].iter().sum::<f64>();
        assert!((sum - 1.0).abs() < 1e-15);
    }
}
