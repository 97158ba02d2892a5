//! Scoring attribution maps against SMERF's primary and secondary regions (Kim et al. 2022,
//! `smerf/eval.py`), on raw attributions.
//!
//! For one `[C,H,W]` map `a` and one image:
//! 1. reduce to `[H,W]` with [`ScoringOptions::reduction`] (default `m = max_c |a_c|`);
//! 2. AFL and MAFL: blur `m` with the `blur_size x blur_size` mean filter (SMERF: 7x7,
//!    reflect-101), min-max scale to `[0, 1]`, divide by the total (`p`); AFL = `sum_{i in R} p_i`,
//!    MAFL = AFL / `|R|`, with `R` the union of the region's boxes;
//! 3. IoU: keep the `k` pixels of largest blurred value (`k` from [`IouKeep`]), IoU of the kept
//!    set with each box of the region, averaged over the boxes (SMERF `get_plain_iou`; note that
//!    with two primary boxes even a map lit exactly on both scores `mean_i |b_i| / k < 1`).
//!
//! An image without primary (secondary) boxes has no primary (secondary) scores (SMERF's `-1`,
//! dropped before averaging).

use candle_core::{DType, Tensor};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skepsis_attr::registry::{self, Params};
use skepsis_attr::{Method, Target};
use skepsis_data::{Dataset, Region, RegionKind, RegionShape};
use skepsis_nn::Model;

use super::config::{ExplainTarget, IouKeep, MethodEntry, ScoringOptions};
use super::error::{SmerfError, SmerfResult};
use super::seed::derive_seed;
use super::stats::PerMetric;
use crate::ground_truth::{
    focus_distribution, intersection_over_union, reduce_channels, RegionMask,
};
use crate::MapDims;

const SELECT_TAG: u64 = 0x7365_6c65; // "sele"

/// The test images scored in each bucket: `per_bucket` distinct indices drawn uniformly
/// without replacement with a generator seeded from `(seed, bucket id)`, sorted; every image
/// of a bucket that has fewer. Every method sees the same images.
pub fn select_images(test: &Dataset, per_bucket: usize, seed: u64) -> SmerfResult<Vec<usize>> {
    let ids = test
        .bucket_ids()
        .ok_or_else(|| SmerfError::option("data", "the test set carries no bucket ids"))?;
    let mut chosen = Vec::new();
    for bucket in 0..test.bucket_names().len() {
        let members: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == bucket).collect();
        if members.len() <= per_bucket {
            chosen.extend(members);
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &[SELECT_TAG, bucket as u64]));
        let mut picked: Vec<usize> =
            sample(&mut rng, members.len(), per_bucket).into_iter().map(|k| members[k]).collect();
        picked.sort_unstable();
        chosen.extend(picked);
    }
    Ok(chosen)
}

/// Builds the method of `entry`; a `deepshap` spec gets `reference_pool` (the setup's training
/// images) as its reference set, from which it draws its `references` images.
pub fn build_method(entry: &MethodEntry, reference_pool: &Tensor) -> SmerfResult<Box<dyn Method>> {
    let wrap = |e| SmerfError::method(&entry.label, e);
    let method = registry::parse(&entry.spec).map_err(wrap)?;
    let params = Params::parse(&entry.spec).map_err(wrap)?;
    if registry::lookup(&params.method).map_err(wrap)?.name == "deepshap" {
        let mut shap = skepsis_attr::modified_specs::deepshap_from(&params).map_err(wrap)?;
        shap.pool = Some(reference_pool.clone());
        return Ok(Box::new(shap));
    }
    Ok(method)
}

/// The maps of `method` for `images` (`[N,3,H,W]`), one row-major `[C,H,W]` vector per image
/// with its dimensions, explaining `target`.
pub fn attribute(
    label: &str,
    method: &dyn Method,
    model: &Model,
    images: &Tensor,
    labels: &[usize],
    target: ExplainTarget,
) -> SmerfResult<(Vec<Vec<f64>>, MapDims)> {
    let target = match target {
        ExplainTarget::Predicted => Target::Predicted,
        ExplainTarget::Label => Target::Classes(labels.to_vec()),
    };
    let x = images.to_dtype(model.dtype())?;
    let attribution =
        method.attribute(model, &x, &target).map_err(|e| SmerfError::method(label, e))?;
    let dims = attribution.map.dims().to_vec();
    let image_dims = images.dims();
    if dims.len() != 4 || dims[0] != image_dims[0] || dims[2..] != image_dims[2..] {
        return Err(SmerfError::option(
            "methods",
            format!(
                "`{label}` returned a map of shape {dims:?} for inputs {image_dims:?}; SMERF \
                 scores input-sized maps (GradCAM: keep upsample=true)"
            ),
        ));
    }
    let map_dims = MapDims::channels(dims[1], dims[2], dims[3]);
    let flat = attribution.map.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    Ok((flat.chunks_exact(map_dims.len()).map(<[f64]>::to_vec).collect(), map_dims))
}

/// The six scores of one map (see the module documentation) and whether its blurred 2-D map
/// was constant (uniform focus fallback).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapScores {
    /// AFL, MAFL and IoU on both regions; `None` where the image lacks the region.
    pub scores: PerMetric<Option<f64>>,
    /// True when the blurred map was constant.
    pub constant_map: bool,
}

/// Scores one `[C,H,W]` map of dimensions `dims` against the image's ground-truth `regions`.
///
/// Errors: malformed maps (shape, NaN), regions outside the map.
pub fn score_map(
    map: &[f64],
    dims: MapDims,
    regions: &[Region],
    options: &ScoringOptions,
) -> SmerfResult<MapScores> {
    let (h, w) = (dims.height(), dims.width());
    let plane = reduce_channels(map, dims, options.reduction)?;
    let distribution = focus_distribution(&plane, h, w, &options.focus)?;
    let objects = |kind| -> SmerfResult<Vec<RegionMask>> {
        regions.iter().filter(|r| r.kind == kind).map(|r| region_mask(r, h, w)).collect()
    };
    let primary = objects(RegionKind::Primary)?;
    let secondary = objects(RegionKind::Secondary)?;
    let primary_union = union(&primary, h, w)?;
    let secondary_union = union(&secondary, h, w)?;
    let focus = |u: &Option<RegionMask>| -> SmerfResult<(Option<f64>, Option<f64>)> {
        match u {
            None => Ok((None, None)),
            Some(mask) => {
                Ok((Some(distribution.afl(mask)?.value), Some(distribution.mafl(mask)?.value)))
            }
        }
    };
    let (primary_afl, primary_mafl) = focus(&primary_union)?;
    let (secondary_afl, secondary_mafl) = focus(&secondary_union)?;
    let iou = |objs: &[RegionMask], u: &Option<RegionMask>| -> SmerfResult<Option<f64>> {
        let Some(own) = u else { return Ok(None) };
        let keep = match (options.iou_keep, &primary_union) {
            (IouKeep::PrimaryArea, Some(p)) => p.area(),
            _ => own.area(),
        };
        Ok(Some(intersection_over_union(&plane, h, w, objs, keep, &options.focus)?.value))
    };
    let scores = PerMetric {
        primary_afl,
        secondary_afl,
        primary_mafl,
        secondary_mafl,
        primary_iou: iou(&primary, &primary_union)?,
        secondary_iou: iou(&secondary, &secondary_union)?,
    };
    Ok(MapScores { scores, constant_map: distribution.is_constant_map() })
}

/// The pixels of a region as a mask of a `h x w` map.
pub(crate) fn region_mask(region: &Region, h: usize, w: usize) -> SmerfResult<RegionMask> {
    match &region.shape {
        RegionShape::Box(b) => Ok(RegionMask::from_boxes(
            h,
            w,
            &[crate::ground_truth::PixelBox::new(b.x0, b.y0, b.x1, b.y1)],
        )?),
        RegionShape::Mask(m) => {
            if m.height() != h || m.width() != w {
                return Err(SmerfError::option(
                    "regions",
                    format!("a {}x{} mask on a {h}x{w} map", m.height(), m.width()),
                ));
            }
            Ok(RegionMask::from_mask(h, w, m.pixels().to_vec())?)
        }
    }
}

/// The union of `masks`, `None` when there are none.
pub(crate) fn union(masks: &[RegionMask], h: usize, w: usize) -> SmerfResult<Option<RegionMask>> {
    if masks.is_empty() {
        return Ok(None);
    }
    let mut inside = vec![false; h * w];
    for m in masks {
        for (o, &p) in inside.iter_mut().zip(m.pixels()) {
            *o |= p;
        }
    }
    Ok(Some(RegionMask::from_mask(h, w, inside)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ground_truth::{BlurBoundary, FocusOptions};
    use skepsis_data::BoundingBox;

    fn options(blur_size: usize) -> ScoringOptions {
        ScoringOptions {
            focus: FocusOptions { blur_size, boundary: BlurBoundary::Reflect101 },
            ..ScoringOptions::default()
        }
    }

    #[test]
    fn map_on_the_primary_box_scores_one_there_and_zero_elsewhere() {
        // 1 channel 8x8, value -2 on rows 1..3, cols 1..3 (4 px): max |.| = 2 there, 0 elsewhere.
        // Unblurred: p = 1/4 on the box; AFL_P = 1, MAFL_P = 1/4, IoU_P (keep 4) = 1; the
        // secondary box (rows 5..7, cols 5..7) gets AFL 0 and IoU 0 (keep = primary area 4).
        let mut map = vec![0.0; 64];
        for r in 1..3 {
            for c in 1..3 {
                map[r * 8 + c] = -2.0;
            }
        }
        let regions = vec![
            Region::new_box(RegionKind::Primary, "box1", BoundingBox::from_origin(1, 1, 2, 2)),
            Region::new_box(RegionKind::Secondary, "box2", BoundingBox::from_origin(5, 5, 2, 2)),
        ];
        let s = score_map(&map, MapDims::channels(1, 8, 8), &regions, &options(1)).unwrap();
        let v = s.scores;
        assert_eq!(v.primary_afl, Some(1.0));
        assert_eq!(v.primary_mafl, Some(0.25));
        assert_eq!((v.primary_iou, v.secondary_iou), (Some(1.0), Some(0.0)));
        assert_eq!((v.secondary_afl, v.secondary_mafl), (Some(0.0), Some(0.0)));
        assert!(!s.constant_map);
        // No secondary region: secondary scores absent.
        let s = score_map(&map, MapDims::channels(1, 8, 8), &regions[..1], &options(1)).unwrap();
        assert_eq!(s.scores.secondary_afl, None);
        assert_eq!(s.scores.secondary_iou, None);
    }
}
