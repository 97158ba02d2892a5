//! Attribution focus level (AFL) and mean AFL (MAFL) of SMERF (Kim et al. 2022).

use serde::{Deserialize, Serialize};

use super::blur::{box_blur, BlurBoundary};
use super::region::RegionMask;
use super::GroundTruthScore;
use crate::error::Result;

/// Preprocessing shared by AFL, MAFL and IoU: a `blur_size x blur_size` mean filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FocusOptions {
    /// Side of the box blur (odd; SMERF: 7; 1 disables the blur).
    pub blur_size: usize,
    /// Boundary handling of the blur (SMERF's `cv2.blur`: reflect-101).
    pub boundary: BlurBoundary,
}

impl Default for FocusOptions {
    /// SMERF's setting: 7x7 blur, reflect-101 boundary.
    fn default() -> Self {
        FocusOptions { blur_size: 7, boundary: BlurBoundary::Reflect101 }
    }
}

/// A 2-D map turned into a distribution of attribution mass, as SMERF's `get_afl` prepares it:
/// `p = blur(m)`, `p = (p - min p) / (max p - min p)`, `p = p / sum p`.
#[derive(Debug, Clone, PartialEq)]
pub struct FocusDistribution {
    values: Vec<f64>,
    height: usize,
    width: usize,
    constant_map: bool,
}

/// Builds the [`FocusDistribution`] of one `height x width` map (Kim et al. 2022):
/// blur with `options`, min-max scale to `[0, 1]`, divide by the total.
///
/// A map that is constant after the blur has no defined min-max scaling (SMERF would divide
/// 0 by 0); skepsis then uses the uniform distribution `1 / (H W)` ("no focus") and marks the
/// result `constant_map`.
///
/// Errors: shape mismatch, empty map, non-finite values, invalid blur size.
pub fn focus_distribution(
    map: &[f64],
    height: usize,
    width: usize,
    options: &FocusOptions,
) -> Result<FocusDistribution> {
    let blurred = box_blur(map, height, width, options.blur_size, options.boundary)?;
    let (low, high) = blurred
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let scale = high - low;
    let n = blurred.len() as f64;
    if scale > 0.0 {
        let scaled: Vec<f64> = blurred.iter().map(|v| (v - low) / scale).collect();
        // max is scaled to exactly 1, so the sum is >= 1.
        let total: f64 = scaled.iter().sum();
        let values = scaled.iter().map(|v| v / total).collect();
        Ok(FocusDistribution { values, height, width, constant_map: false })
    } else {
        Ok(FocusDistribution {
            values: vec![1.0 / n; blurred.len()],
            height,
            width,
            constant_map: true,
        })
    }
}

impl FocusDistribution {
    /// The normalized values (row-major, summing to 1).
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// True when the blurred map was constant (uniform fallback).
    pub fn is_constant_map(&self) -> bool {
        self.constant_map
    }

    /// AFL: attribution mass inside `region`, `sum_{i in region} p_i`, in `[0, 1]`.
    /// For several boxes pass their union; SMERF sums per box, which is the same for the
    /// non-overlapping boxes of its scenes.
    ///
    /// Errors: region of another map size.
    pub fn afl(&self, region: &RegionMask) -> Result<GroundTruthScore> {
        region.ensure_size(self.height, self.width)?;
        let value = self
            .values
            .iter()
            .zip(region.pixels())
            .filter(|(_, &inside)| inside)
            .map(|(v, _)| v)
            .sum();
        Ok(GroundTruthScore { value, constant_map: self.constant_map })
    }

    /// MAFL: mean of `p` over the pixels of `region`, `sum_{i in region} p_i / |region|`
    /// (SMERF `get_mafl`; with overlapping boxes SMERF would count shared pixels twice).
    ///
    /// Errors: region of another map size.
    pub fn mafl(&self, region: &RegionMask) -> Result<GroundTruthScore> {
        let mass = self.afl(region)?;
        let area = region.area().max(1) as f64;
        Ok(GroundTruthScore { value: mass.value / area, constant_map: self.constant_map })
    }
}

/// AFL of one map on `region` (Kim et al. 2022): see [`focus_distribution`] and
/// [`FocusDistribution::afl`].
pub fn attribution_focus_level(
    map: &[f64],
    height: usize,
    width: usize,
    region: &RegionMask,
    options: &FocusOptions,
) -> Result<GroundTruthScore> {
    focus_distribution(map, height, width, options)?.afl(region)
}

/// MAFL of one map on `region` (Kim et al. 2022): see [`focus_distribution`] and
/// [`FocusDistribution::mafl`].
pub fn mean_attribution_focus_level(
    map: &[f64],
    height: usize,
    width: usize,
    region: &RegionMask,
    options: &FocusOptions,
) -> Result<GroundTruthScore> {
    focus_distribution(map, height, width, options)?.mafl(region)
}
