//! Scoring every method on one trained model: the same seeded test images per bucket for every
//! method, per-image scores, per-bucket mean and std, per-setup average and minimum over
//! buckets, and the verdict of the pass rule (Kim et al. 2022).

use super::examples::{
    example_boxes, example_positions, reduce_max_abs, ExamplePixels, SmerfExample,
};
use std::time::Instant;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use skepsis_data::Dataset;
use skepsis_nn::train::{predict, Progress};
use skepsis_nn::Model;

use super::config::{BucketAggregate, PassRule, SmerfRunConfig};
use super::error::SmerfResult;
use super::scoring::{attribute, build_method, score_map, select_images};
use super::stats::{BucketSummary, MetricKey, PerMetric, Stat};

/// The scores of one method on one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Method label.
    pub method: String,
    /// Bucket id.
    pub bucket: usize,
    /// Bucket name.
    pub bucket_name: String,
    /// Index of the image in the test split.
    pub index: usize,
    /// True label.
    pub label: usize,
    /// Predicted class.
    pub predicted: usize,
    /// AFL, MAFL, IoU on both regions (`None`: the image lacks the region).
    pub scores: PerMetric<Option<f64>>,
    /// The blurred map was constant (uniform focus fallback).
    pub constant_map: bool,
}

/// Mean and std over a bucket's scored images of one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketStats {
    /// Method label.
    pub method: String,
    /// Bucket id.
    pub bucket: usize,
    /// Bucket name.
    pub bucket_name: String,
    /// Images scored in the bucket.
    pub images: usize,
    /// Images whose blurred map was constant.
    pub constant_maps: usize,
    /// Per score: mean and population std over the images that have the region.
    pub stats: PerMetric<Option<Stat>>,
}

/// Outcome of the pass rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictStatus {
    /// The rule holds.
    Pass,
    /// The rule fails.
    Fail,
    /// Not scored (the model missed the accuracy threshold, or no bucket has a primary
    /// region).
    NotScored,
}

impl VerdictStatus {
    /// `PASS`, `FAIL` or `not scored`.
    pub fn word(self) -> &'static str {
        match self {
            VerdictStatus::Pass => "PASS",
            VerdictStatus::Fail => "FAIL",
            VerdictStatus::NotScored => "not scored",
        }
    }
}

/// The verdict of one method on one setup, with the numbers it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Pass, fail or not scored.
    pub status: VerdictStatus,
    /// The aggregate over buckets of the primary AFL that the threshold applies to.
    pub primary_afl: Option<f64>,
    /// Whether mean primary AFL > mean secondary AFL in every bucket with both regions.
    pub primary_above_secondary: Option<bool>,
    /// Buckets where the mean primary AFL does not exceed the mean secondary AFL.
    pub inverted_buckets: Vec<String>,
    /// Why, in words.
    pub reason: String,
}

impl Verdict {
    /// The verdict of a setup that is not scored.
    pub fn not_scored(reason: impl Into<String>) -> Self {
        Verdict {
            status: VerdictStatus::NotScored,
            primary_afl: None,
            primary_above_secondary: None,
            inverted_buckets: Vec::new(),
            reason: reason.into(),
        }
    }
}

/// One method's summary over a setup's buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// Method label.
    pub method: String,
    /// Its registry spec.
    pub spec: String,
    /// Per score: average, minimum and maximum over buckets of the per-bucket means.
    pub summary: PerMetric<Option<BucketSummary>>,
    /// The pass rule's verdict.
    pub verdict: Verdict,
    /// Seconds spent attributing.
    pub seconds: f64,
}

/// Everything scored on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupScores {
    /// Test-split indices of the scored images (same for every method).
    pub selected: Vec<usize>,
    /// Per method and image.
    pub images: Vec<ImageRecord>,
    /// Per method and bucket.
    pub buckets: Vec<BucketStats>,
    /// Per method.
    pub methods: Vec<MethodSummary>,
    /// The example images kept for figures (one per bucket, at most `config.examples`).
    #[serde(default)]
    pub examples: Vec<SmerfExample>,
    /// Their pixels and every method's reduced maps, written by
    /// [`write_examples`](super::write_examples) (not part of the JSON records).
    #[serde(skip)]
    pub example_pixels: ExamplePixels,
}

/// Scores every method of `config` on `model` over `test` (with ground-truth regions and
/// bucket ids): `config.images_per_bucket` seeded images per bucket, maps explaining
/// `config.target`, scores per [`score_map`], statistics and verdicts per
/// `config.pass_rule`. `reference_pool` is DeepSHAP's background (the training images).
pub fn evaluate_model(
    model: &Model,
    test: &Dataset,
    reference_pool: &Tensor,
    config: &SmerfRunConfig,
    progress: &mut dyn Progress,
) -> SmerfResult<SetupScores> {
    let selected = select_images(test, config.images_per_bucket, config.seed)?;
    let subset = test.subset(&selected)?;
    let regions = subset
        .regions()
        .ok_or_else(|| super::error::SmerfError::option("data", "test set has no regions"))?;
    let ids = subset.bucket_ids().unwrap_or(&[]).to_vec();
    let names = subset.bucket_names().to_vec();
    let predicted = predict(model, subset.images(), 256)?;
    let picks = example_positions(&ids, config.examples);
    let examples: Vec<SmerfExample> = picks
        .iter()
        .map(|&i| SmerfExample {
            index: selected[i],
            bucket_name: names.get(ids.get(i).copied().unwrap_or(0)).cloned().unwrap_or_default(),
            label: subset.labels()[i],
            predicted: predicted[i],
            boxes: example_boxes(&regions[i]),
        })
        .collect();
    let mut example_pixels = ExamplePixels::default();
    if !picks.is_empty() {
        let dims = subset.images().dims();
        example_pixels.image_dims = dims[1..].to_vec();
        for &i in &picks {
            let image = subset.images().get(i)?.to_dtype(candle_core::DType::F32)?;
            example_pixels.images.extend(image.flatten_all()?.to_vec1::<f32>()?);
        }
    }
    let mut images = Vec::new();
    let mut buckets = Vec::new();
    let mut methods = Vec::new();
    for entry in &config.methods {
        let started = Instant::now();
        let method = build_method(entry, reference_pool)?;
        let (maps, dims) = attribute(
            &entry.label,
            method.as_ref(),
            model,
            subset.images(),
            subset.labels(),
            config.target,
        )?;
        let seconds = started.elapsed().as_secs_f64();
        if !picks.is_empty() {
            let reduced = picks.iter().flat_map(|&i| reduce_max_abs(&maps[i], dims)).collect();
            example_pixels.maps.push((entry.label.clone(), reduced));
        }
        let mut records = Vec::with_capacity(maps.len());
        for (i, map) in maps.iter().enumerate() {
            let scored = score_map(map, dims, &regions[i], &config.scoring)?;
            let bucket = ids.get(i).copied().unwrap_or(0);
            records.push(ImageRecord {
                method: entry.label.clone(),
                bucket,
                bucket_name: names.get(bucket).cloned().unwrap_or_default(),
                index: selected[i],
                label: subset.labels()[i],
                predicted: predicted[i],
                scores: scored.scores,
                constant_map: scored.constant_map,
            });
        }
        let stats = bucket_stats(&entry.label, &records, &names);
        let summary = summarize(&stats);
        let verdict = verdict(&stats, &config.pass_rule);
        progress.message(&format!(
            "  {:<24} primary AFL {}  secondary AFL {}  {} ({seconds:.1}s)",
            entry.label,
            fmt_opt(summary.primary_afl.as_ref().map(|s| s.average)),
            fmt_opt(summary.secondary_afl.as_ref().map(|s| s.average)),
            verdict.status.word()
        ));
        methods.push(MethodSummary {
            method: entry.label.clone(),
            spec: entry.spec.clone(),
            summary,
            verdict,
            seconds,
        });
        buckets.extend(stats);
        images.extend(records);
    }
    Ok(SetupScores { selected, images, buckets, methods, examples, example_pixels })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "  -  ".to_string(), |v| format!("{v:.3}"))
}

/// Per-bucket statistics of one method's image records.
fn bucket_stats(method: &str, records: &[ImageRecord], names: &[String]) -> Vec<BucketStats> {
    (0..names.len())
        .filter_map(|b| {
            let rows: Vec<&ImageRecord> = records.iter().filter(|r| r.bucket == b).collect();
            if rows.is_empty() {
                return None;
            }
            let stats = PerMetric::from_fn(|key| {
                let values: Vec<f64> = rows.iter().filter_map(|r| *r.scores.get(key)).collect();
                Stat::of(&values)
            });
            Some(BucketStats {
                method: method.to_string(),
                bucket: b,
                bucket_name: names[b].clone(),
                images: rows.len(),
                constant_maps: rows.iter().filter(|r| r.constant_map).count(),
                stats,
            })
        })
        .collect()
}

/// Average / minimum / maximum over buckets of the per-bucket means.
fn summarize(stats: &[BucketStats]) -> PerMetric<Option<BucketSummary>> {
    PerMetric::from_fn(|key: MetricKey| {
        let means: Vec<(&str, f64)> = stats
            .iter()
            .filter_map(|s| s.stats.get(key).map(|st| (s.bucket_name.as_str(), st.mean)))
            .collect();
        BucketSummary::of(&means)
    })
}

/// The pass rule applied to one method's bucket statistics.
pub fn verdict(stats: &[BucketStats], rule: &PassRule) -> Verdict {
    let primary: Vec<(&str, f64)> = stats
        .iter()
        .filter_map(|s| s.stats.primary_afl.map(|st| (s.bucket_name.as_str(), st.mean)))
        .collect();
    let Some(summary) = BucketSummary::of(&primary) else {
        return Verdict::not_scored("no scored image has a primary region");
    };
    let aggregate = match rule.aggregate {
        BucketAggregate::Average => summary.average,
        BucketAggregate::Minimum => summary.minimum,
    };
    let inverted: Vec<String> = stats
        .iter()
        .filter(|s| match (s.stats.primary_afl, s.stats.secondary_afl) {
            (Some(p), Some(q)) => p.mean <= q.mean,
            _ => false,
        })
        .map(|s| s.bucket_name.clone())
        .collect();
    let above = inverted.is_empty();
    let reaches = aggregate >= rule.afl_threshold;
    let pass = reaches && (above || !rule.primary_above_secondary);
    let which = match rule.aggregate {
        BucketAggregate::Average => "average",
        BucketAggregate::Minimum => "minimum",
    };
    let mut reasons = vec![format!(
        "{which} primary AFL {aggregate:.3} {} {}",
        if reaches { ">=" } else { "<" },
        rule.afl_threshold
    )];
    if rule.primary_above_secondary {
        reasons.push(if above {
            "primary > secondary in every bucket".to_string()
        } else {
            format!("primary <= secondary in {}", inverted.join("; "))
        });
    }
    Verdict {
        status: if pass { VerdictStatus::Pass } else { VerdictStatus::Fail },
        primary_afl: Some(aggregate),
        primary_above_secondary: Some(above),
        inverted_buckets: inverted,
        reason: reasons.join(", "),
    }
}
