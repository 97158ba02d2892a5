//! SMERF ground-truth simulations (Kim, Plumb & Talwalkar, "Sanity Simulations for Saliency
//! Methods", ICML 2022): train a model on scenes whose true reasoning is known, then score how
//! much of each saliency map falls on the regions the model must use (primary) and must not
//! use (secondary).
//!
//! Per setup ([`run_smerf`]):
//! 1. **Data**: [`skepsis_data::generate_smerf`] with the run's background, `scale` (factor on
//!    the paper's per-bucket counts) and seed.
//! 2. **Training** ([`train_to_threshold`]): TextBoxCNN (simple setups 1.11, 2.11) or
//!    TextBoxCNN_adv (complex 1.2, 3.71-3.74), Adam, batch 128, lr 1e-4 (simple) / 1e-5
//!    (complex) in the paper profile; retrained with fresh seeds up to `attempts` times until
//!    accuracy on the full training set AND on the full test set both reach the threshold
//!    ([`accuracy_threshold`]: 0.98 simple / 0.95 complex; 0.90 / 0.95 on natural
//!    backgrounds). A model that never reaches it is reported ([`TrainingStatus::NotReached`])
//!    and NOT scored.
//! 3. **Scoring** ([`evaluate_model`]): per bucket the same `images_per_bucket` (paper: 20)
//!    test images, drawn with a seeded generator; every method explains the predicted class;
//!    each raw `[C,H,W]` map is reduced to `[H,W]` (default `max_c |a_c|`), blurred with a 7x7
//!    mean filter (reflect-101 border; configurable, 1 = no blur), min-max scaled to `[0, 1]`
//!    and divided by its sum; **AFL** is the mass on the union of the region's boxes, **MAFL**
//!    that mass divided by the union's area, **IoU** the mean over the region's boxes of the
//!    IoU between the box and the `k` pixels of largest blurred value, `k` = the primary
//!    region's area ([`IouKeep`]). Images without the region are skipped for that score.
//! 4. **Aggregation**: per bucket mean and population std over images; per setup the average
//!    and the minimum over buckets of the bucket means; simple vs complex summary over
//!    setups ([`GroupSummary`]).
//! 5. **Verdict** ([`PassRule`], stated in every output): a method passes a setup iff in every
//!    bucket with both regions its mean primary AFL exceeds its mean secondary AFL and the
//!    average over buckets of its mean primary AFL is >= 0.5 (the paper's correctness line).
//! 6. **Distinguishing models** ([`distinguish_models`]): the scored models explained on the
//!    same probe images, mean focus per model side by side, and whether each method tells
//!    models with different reasoning apart.
//!
//! Records ([`SmerfReport`]) are serde values carrying the configuration, seed and skepsis
//! version; [`write_records`] writes them as JSON and CSV.

mod config;
mod distinguish;
mod error;
mod evaluate;
mod examples;
mod records;
mod scoring;
mod seed;
mod stats;
mod training;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use skepsis_data::{generate_smerf, Dataset, SmerfConfig, SmerfSetup};
use skepsis_nn::train::Progress;
use skepsis_nn::Model;

pub use config::{
    accuracy_threshold, architecture, smerf_methods, BucketAggregate, ExplainTarget, IouKeep,
    MethodEntry, PassRule, ScoringOptions, SmerfRunConfig, TrainingOptions, TrainingProfile,
};
pub use distinguish::{
    distinguish_models, probe_images, DistinguishingView, MethodDistinction, ModelFocus,
    PairComparison, PROBE_BUCKET,
};
pub use error::{SmerfError, SmerfResult};
pub use evaluate::{
    evaluate_model, verdict, BucketStats, ImageRecord, MethodSummary, SetupScores, Verdict,
    VerdictStatus,
};
pub use examples::{
    examples_file, read_examples, write_examples, ExampleBox, ExamplePixels, SmerfExample,
    EXAMPLES_DIR,
};
pub use records::{verdict_table, write_records, RECORD_FILES};
pub use scoring::{attribute, build_method, score_map, select_images, MapScores};
pub use stats::{BucketSummary, MetricKey, PerMetric, Stat};
pub use training::{
    bucket_accuracy, train_to_threshold, AttemptRecord, BucketAccuracy, TrainingRecord,
    TrainingStatus,
};

/// The citation printed with every record.
pub const CITATION: &str =
    "Kim, Plumb & Talwalkar, Sanity Simulations for Saliency Methods, ICML 2022";

/// Everything one setup produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupRecord {
    /// Setup id, e.g. `1.11`.
    pub setup: String,
    /// Setup name, e.g. `Simple-FR`.
    pub name: String,
    /// `simple` or `complex`.
    pub complexity: String,
    /// Training images generated.
    pub train_images: usize,
    /// Test images generated.
    pub test_images: usize,
    /// How the model was trained and whether it was accepted.
    pub training: TrainingRecord,
    /// Per-bucket accuracy of the accepted model (of the best attempt when none was).
    pub bucket_accuracy: Vec<BucketAccuracy>,
    /// The scores; `None` when the model missed the threshold (never scored silently).
    pub scores: Option<SetupScores>,
    /// One verdict per method (not scored when the model missed the threshold).
    pub verdicts: Vec<(String, Verdict)>,
}

/// Simple (1.11, 2.11) vs complex (1.2, 3.7x) summary of one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// `simple` or `complex`.
    pub group: String,
    /// Method label.
    pub method: String,
    /// Setups of the group in the run.
    pub setups: usize,
    /// Of those, setups whose model was scored.
    pub scored: usize,
    /// Of those, setups the method passes.
    pub passed: usize,
    /// Mean over scored setups of the average-over-buckets primary AFL.
    pub mean_primary_afl: Option<f64>,
    /// Mean over scored setups of the average-over-buckets secondary AFL.
    pub mean_secondary_afl: Option<f64>,
    /// Minimum over scored setups of the minimum-over-buckets primary AFL.
    pub min_primary_afl: Option<f64>,
}

/// All records of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmerfReport {
    /// `skepsis`.
    pub tool: String,
    /// skepsis version that wrote the records.
    pub version: String,
    /// The paper.
    pub citation: String,
    /// The run's configuration (seed included).
    pub config: SmerfRunConfig,
    /// The pass rule in words.
    pub pass_rule: String,
    /// Per setup.
    pub setups: Vec<SetupRecord>,
    /// Simple vs complex, per method.
    pub groups: Vec<GroupSummary>,
    /// The distinguishing-models view (when two or more models were scored).
    pub distinguishing: Option<DistinguishingView>,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
}

/// A run's records and its trained models (accepted or not), for the caller to save.
#[derive(Debug)]
pub struct SmerfOutcome {
    /// The records.
    pub report: SmerfReport,
    /// Per setup: the model and whether it was accepted.
    pub models: Vec<(SmerfSetup, Model, bool)>,
}

/// Runs every setup of `config` (see the module documentation).
pub fn run_smerf(
    config: &SmerfRunConfig,
    progress: &mut dyn Progress,
) -> SmerfResult<SmerfOutcome> {
    config.validate()?;
    let started = Instant::now();
    let mut setups = Vec::new();
    let mut models = Vec::new();
    let mut probe: Option<(Vec<usize>, Dataset)> = None;
    let mut pool_for_probe = None;
    for &setup in &config.setups {
        progress.message(&format!("{} ({}): generating data", setup.id(), setup.name()));
        let splits = generate_smerf(&SmerfConfig {
            setup,
            background: config.background.clone(),
            scale: config.scale,
            seed: config.seed,
        })?;
        let (training, model) = train_to_threshold(
            setup,
            &config.background,
            &splits,
            &config.training,
            config.seed,
            progress,
        )?;
        let bucket_accuracy = bucket_accuracy(setup, &model, &splits)?;
        let (scores, verdicts) = if training.accepted() {
            progress.message(&format!("{}: scoring {} methods", setup.id(), config.methods.len()));
            let scores =
                evaluate_model(&model, &splits.test, splits.train.images(), config, progress)?;
            let verdicts =
                scores.methods.iter().map(|m| (m.method.clone(), m.verdict.clone())).collect();
            if probe.is_none() {
                probe = probe_images(&splits.test, config.images_per_bucket)?;
                pool_for_probe = Some(splits.train.images().clone());
            }
            (Some(scores), verdicts)
        } else {
            progress.message(&format!(
                "{}: no attempt reached accuracy {}; the setup is NOT scored",
                setup.id(),
                training.threshold
            ));
            let reason = format!(
                "model did not reach train and test accuracy {} in {} attempts",
                training.threshold, training.max_attempts
            );
            let verdicts = config
                .methods
                .iter()
                .map(|m| (m.label.clone(), Verdict::not_scored(reason.clone())))
                .collect();
            (None, verdicts)
        };
        setups.push(SetupRecord {
            setup: setup.id().to_string(),
            name: setup.name().to_string(),
            complexity: complexity(setup).to_string(),
            train_images: splits.train.len(),
            test_images: splits.test.len(),
            bucket_accuracy,
            scores,
            verdicts,
            training,
        });
        let accepted = setups.last().is_some_and(|s: &SetupRecord| s.training.accepted());
        models.push((setup, model, accepted));
    }
    let scored: Vec<(SmerfSetup, &Model)> =
        models.iter().filter(|(_, _, ok)| *ok).map(|(s, m, _)| (*s, m)).collect();
    let distinguishing = match (&probe, &pool_for_probe) {
        (Some((indices, images)), Some(pool)) if scored.len() >= 2 => {
            Some(distinguish_models(&scored, indices, images, pool, config, progress)?)
        }
        _ => None,
    };
    let groups = group_summaries(config, &setups);
    let report = SmerfReport {
        tool: "skepsis".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        citation: CITATION.to_string(),
        config: config.clone(),
        pass_rule: config.pass_rule.statement(),
        setups,
        groups,
        distinguishing,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(SmerfOutcome { report, models })
}

fn complexity(setup: SmerfSetup) -> &'static str {
    if setup.is_simple() {
        "simple"
    } else {
        "complex"
    }
}

/// Simple vs complex summary per method.
fn group_summaries(config: &SmerfRunConfig, setups: &[SetupRecord]) -> Vec<GroupSummary> {
    let mut out = Vec::new();
    for group in ["simple", "complex"] {
        let members: Vec<&SetupRecord> = setups.iter().filter(|s| s.complexity == group).collect();
        if members.is_empty() {
            continue;
        }
        for entry in &config.methods {
            let summaries: Vec<&MethodSummary> = members
                .iter()
                .filter_map(|s| s.scores.as_ref())
                .filter_map(|sc| sc.methods.iter().find(|m| m.method == entry.label))
                .collect();
            let mean = |values: Vec<f64>| {
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            };
            let primary: Vec<f64> = summaries
                .iter()
                .filter_map(|m| m.summary.primary_afl.as_ref())
                .map(|s| s.average)
                .collect();
            let secondary: Vec<f64> = summaries
                .iter()
                .filter_map(|m| m.summary.secondary_afl.as_ref())
                .map(|s| s.average)
                .collect();
            let minimum = summaries
                .iter()
                .filter_map(|m| m.summary.primary_afl.as_ref())
                .map(|s| s.minimum)
                .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.min(v))));
            out.push(GroupSummary {
                group: group.to_string(),
                method: entry.label.clone(),
                setups: members.len(),
                scored: summaries.len(),
                passed: summaries
                    .iter()
                    .filter(|m| m.verdict.status == VerdictStatus::Pass)
                    .count(),
                mean_primary_afl: mean(primary),
                mean_secondary_afl: mean(secondary),
                min_primary_afl: minimum,
            });
        }
    }
    out
}
