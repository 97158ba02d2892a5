//! Thresholded intersection over union of SMERF (Kim et al. 2022).

use super::blur::box_blur;
use super::focus::FocusOptions;
use super::region::RegionMask;
use super::GroundTruthScore;
use crate::error::{EvalError, Result};

/// IoU of Kim et al. (2022), top-k version: blur the `height x width` map with `options`, keep
/// the `keep` pixels of largest blurred value (ties: lower row-major index first), and average
/// over `objects` the IoU `|kept ∩ object| / |kept ∪ object|` of each object.
///
/// SMERF picks the threshold with a 10-bin histogram walk so that *about* `keep` pixels survive
/// (`get_plain_iou`); the exact top-k is the clean version of the same idea. SMERF sets `keep`
/// to the area of the primary boxes (`plain_single`) or of the scored boxes (`plain`); the
/// caller decides. A map that is constant after the blur makes the choice arbitrary: the
/// result is then marked `constant_map`.
///
/// Errors: shape mismatch, non-finite values, invalid blur, no objects, an object of another
/// size, `keep` outside `1..=height*width`.
pub fn intersection_over_union(
    map: &[f64],
    height: usize,
    width: usize,
    objects: &[RegionMask],
    keep: usize,
    options: &FocusOptions,
) -> Result<GroundTruthScore> {
    let blurred = box_blur(map, height, width, options.blur_size, options.boundary)?;
    if objects.is_empty() {
        return Err(EvalError::InvalidRegion { reason: "no objects given".into() });
    }
    for object in objects {
        object.ensure_size(height, width)?;
    }
    if keep == 0 || keep > blurred.len() {
        return Err(EvalError::InvalidParameter {
            name: "keep",
            value: keep.to_string(),
            reason: "must be between 1 and the number of pixels",
        });
    }
    let mut order: Vec<usize> = (0..blurred.len()).collect();
    let before = |i: &usize, j: &usize| blurred[*j].total_cmp(&blurred[*i]).then(i.cmp(j));
    if keep < order.len() {
        order.select_nth_unstable_by(keep - 1, before);
    }
    let mut kept = vec![false; blurred.len()];
    for &i in &order[..keep] {
        kept[i] = true;
    }
    let total: f64 = objects
        .iter()
        .map(|object| {
            let (mut inter, mut union) = (0usize, 0usize);
            for (&k, &o) in kept.iter().zip(object.pixels()) {
                inter += usize::from(k && o);
                union += usize::from(k || o);
            }
            inter as f64 / union as f64
        })
        .sum();
    let constant_map = blurred.iter().all(|&v| v == blurred[0]);
    Ok(GroundTruthScore { value: total / objects.len() as f64, constant_map })
}
