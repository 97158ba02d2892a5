//! The "distinguishing models" view of Kim et al. (2022, talk slides "Practical Viewpoint:
//! Distinguishing Models"): models trained on setups with different true reasoning are
//! explained on the *same* images, and a method is useful only if its maps tell the models
//! apart ("is any of the four models relying exclusively on the text?").
//!
//! Probe images: the first `k` test images of the bucket holding all three objects (Box1,
//! the letter A, Box2), identical for every setup because SMERF scenes depend only on (seed,
//! split, bucket, index). On that bucket each setup's ground truth says which objects its
//! model uses (primary) and ignores (secondary). For each method and model: the mean AFL on
//! each object, on the model's primary union and on its secondary union. Two models whose
//! primary objects differ are *told apart* by a method iff, for every object that exactly one
//! of them uses, the method's mean AFL on that object is higher for the model that uses it.

use serde::{Deserialize, Serialize};
use skepsis_data::smerf::{Bucket, Letter, Object};
use skepsis_data::{Dataset, RegionKind, SmerfSetup};
use skepsis_nn::train::Progress;
use skepsis_nn::Model;

use super::config::SmerfRunConfig;
use super::error::{SmerfError, SmerfResult};
use super::scoring::{attribute, build_method, region_mask, union};
use crate::ground_truth::{focus_distribution, reduce_channels, RegionMask};

/// The probe bucket: Box1, the letter A and Box2 all present.
pub const PROBE_BUCKET: Bucket = Bucket { box1: true, text: Some(Letter::A), box2: true };

const OBJECTS: [Object; 3] = [Object::Box1, Object::Text, Object::Box2];

/// Mean AFL of one method on one model over the probe images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFocus {
    /// Method label.
    pub method: String,
    /// Setup id of the model.
    pub setup: String,
    /// Objects the model uses on the probe bucket (its ground truth).
    pub primary_objects: Vec<String>,
    /// Objects it ignores.
    pub secondary_objects: Vec<String>,
    /// Mean AFL on `box1`, `text`, `box2`, in that order.
    pub object_afl: Vec<(String, f64)>,
    /// Mean AFL on the union of its primary objects.
    pub primary_focus: f64,
    /// Mean AFL on the union of its secondary objects.
    pub secondary_focus: f64,
}

/// Whether a method tells two models apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairComparison {
    /// Method label.
    pub method: String,
    /// First model's setup id.
    pub model_a: String,
    /// Second model's setup id.
    pub model_b: String,
    /// Objects used by exactly one of the two.
    pub differing_objects: Vec<String>,
    /// The verdict of the rule in the module documentation.
    pub told_apart: bool,
    /// Per differing object: who uses it and both AFLs.
    pub detail: String,
}

/// Per method: how many pairs with different reasoning it tells apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodDistinction {
    /// Method label.
    pub method: String,
    /// Pairs of models whose reasoning differs on the probe bucket.
    pub pairs: usize,
    /// Pairs the method tells apart.
    pub told_apart: usize,
}

/// The whole view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistinguishingView {
    /// Name of the probe bucket.
    pub probe_bucket: String,
    /// Test-split indices of the probe images.
    pub probe_images: Vec<usize>,
    /// Setup ids of the compared models.
    pub models: Vec<String>,
    /// Per method and model.
    pub focus: Vec<ModelFocus>,
    /// Per method and pair with different reasoning.
    pub pairs: Vec<PairComparison>,
    /// Per method.
    pub methods: Vec<MethodDistinction>,
    /// The rule in words.
    pub rule: String,
}

/// The first `k` test images of [`PROBE_BUCKET`] with their test-split indices, `None` when
/// the split has no such bucket.
pub fn probe_images(test: &Dataset, k: usize) -> SmerfResult<Option<(Vec<usize>, Dataset)>> {
    let name = PROBE_BUCKET.name();
    let Some(bucket) = test.bucket_names().iter().position(|n| *n == name) else {
        return Ok(None);
    };
    let ids = test.bucket_ids().unwrap_or(&[]);
    let indices: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == bucket).take(k).collect();
    if indices.is_empty() {
        return Ok(None);
    }
    let subset = test.subset(&indices)?;
    Ok(Some((indices, subset)))
}

/// Builds the view for `models` (setup, accepted model) on the probe images `probe`
/// (from [`probe_images`]), with the methods and scoring options of `config`.
pub fn distinguish_models(
    models: &[(SmerfSetup, &Model)],
    probe_indices: &[usize],
    probe: &Dataset,
    reference_pool: &candle_core::Tensor,
    config: &SmerfRunConfig,
    progress: &mut dyn Progress,
) -> SmerfResult<DistinguishingView> {
    let regions = probe
        .regions()
        .ok_or_else(|| SmerfError::option("data", "probe images have no regions"))?;
    let [_, h, w] = probe.image_shape();
    // Object masks per probe image, by object name (every setup's ground truth on the probe
    // bucket lists all three objects, as primary or secondary).
    let mut object_masks: Vec<Vec<RegionMask>> = Vec::with_capacity(regions.len());
    for image_regions in regions {
        let mut masks = Vec::new();
        for object in OBJECTS {
            let region =
                image_regions.iter().find(|r| r.object == object.name()).ok_or_else(|| {
                    SmerfError::option(
                        "data",
                        format!("probe image lacks object {}", object.name()),
                    )
                })?;
            masks.push(region_mask(region, h, w)?);
        }
        object_masks.push(masks);
    }
    let usage = |setup: SmerfSetup, kind: RegionKind| -> Vec<usize> {
        setup
            .ground_truth(PROBE_BUCKET)
            .into_iter()
            .filter(|&(_, k)| k == kind)
            .filter_map(|(o, _)| OBJECTS.iter().position(|&x| x == o))
            .collect()
    };
    let mut focus = Vec::new();
    let mut pairs = Vec::new();
    let mut methods = Vec::new();
    for entry in &config.methods {
        progress.message(&format!("distinguishing models: {}", entry.label));
        let method = build_method(entry, reference_pool)?;
        let mut per_model: Vec<(Vec<f64>, Vec<usize>)> = Vec::new();
        for &(setup, model) in models {
            let (maps, dims) = attribute(
                &entry.label,
                method.as_ref(),
                model,
                probe.images(),
                probe.labels(),
                config.target,
            )?;
            let primary = usage(setup, RegionKind::Primary);
            let secondary = usage(setup, RegionKind::Secondary);
            let mut sums = vec![0.0; OBJECTS.len() + 2];
            for (map, masks) in maps.iter().zip(&object_masks) {
                let plane = reduce_channels(map, dims, config.scoring.reduction)?;
                let d = focus_distribution(&plane, h, w, &config.scoring.focus)?;
                for (o, mask) in masks.iter().enumerate() {
                    sums[o] += d.afl(mask)?.value;
                }
                for (slot, objs) in [(OBJECTS.len(), &primary), (OBJECTS.len() + 1, &secondary)] {
                    let chosen: Vec<RegionMask> = objs.iter().map(|&o| masks[o].clone()).collect();
                    if let Some(u) = union(&chosen, h, w)? {
                        sums[slot] += d.afl(&u)?.value;
                    }
                }
            }
            let n = maps.len().max(1) as f64;
            let means: Vec<f64> = sums.iter().map(|s| s / n).collect();
            focus.push(ModelFocus {
                method: entry.label.clone(),
                setup: setup.id().to_string(),
                primary_objects: primary.iter().map(|&o| OBJECTS[o].name().to_string()).collect(),
                secondary_objects: secondary
                    .iter()
                    .map(|&o| OBJECTS[o].name().to_string())
                    .collect(),
                object_afl: OBJECTS
                    .iter()
                    .zip(&means)
                    .map(|(o, &m)| (o.name().to_string(), m))
                    .collect(),
                primary_focus: means[OBJECTS.len()],
                secondary_focus: means[OBJECTS.len() + 1],
            });
            per_model.push((means, primary));
        }
        let mut distinction =
            MethodDistinction { method: entry.label.clone(), pairs: 0, told_apart: 0 };
        for a in 0..models.len() {
            for b in a + 1..models.len() {
                let (fa, pa) = &per_model[a];
                let (fb, pb) = &per_model[b];
                let differing: Vec<usize> =
                    (0..OBJECTS.len()).filter(|o| pa.contains(o) != pb.contains(o)).collect();
                if differing.is_empty() {
                    continue;
                }
                let mut ok = true;
                let mut detail = Vec::new();
                for &o in &differing {
                    let (user, user_focus, other_focus) = if pa.contains(&o) {
                        (models[a].0.id(), fa[o], fb[o])
                    } else {
                        (models[b].0.id(), fb[o], fa[o])
                    };
                    ok &= user_focus > other_focus;
                    detail.push(format!(
                        "{} used by {user}: {user_focus:.3} vs {other_focus:.3}",
                        OBJECTS[o].name()
                    ));
                }
                distinction.pairs += 1;
                distinction.told_apart += usize::from(ok);
                pairs.push(PairComparison {
                    method: entry.label.clone(),
                    model_a: models[a].0.id().to_string(),
                    model_b: models[b].0.id().to_string(),
                    differing_objects: differing
                        .iter()
                        .map(|&o| OBJECTS[o].name().to_string())
                        .collect(),
                    told_apart: ok,
                    detail: detail.join("; "),
                });
            }
        }
        methods.push(distinction);
    }
    Ok(DistinguishingView {
        probe_bucket: PROBE_BUCKET.name(),
        probe_images: probe_indices.to_vec(),
        models: models.iter().map(|(s, _)| s.id().to_string()).collect(),
        focus,
        pairs,
        methods,
        rule: "two models whose primary objects differ on the probe bucket are told apart by a \
               method iff, for every object used by exactly one of them, the method's mean AFL \
               on that object is higher for the model that uses it"
            .to_string(),
    })
}
