//! The data randomization test.

use std::path::Path;

use serde::{Deserialize, Serialize};
use skepsis_data::Dataset;
use skepsis_nn::train::{accuracy, train, LabelledData, Progress, TrainConfig, TrainReport};
use skepsis_nn::{
    model_file, randomize, DType, Model, RandomizeOptions, DEFAULT_TRACE_MEMO_BUDGET,
};

use super::error::{CheckError, CheckResult};
use super::examples::{ExampleWriter, ORIGINAL};
use super::maps::{self, attribute, compare_records, CheckData, CheckOptions, TargetChoice};
use super::methods::{self, mix};
use super::randomization::fingerprint;
use super::report::CheckReport;
use super::store::{RunControl, StepStore};
use super::verdict::{Aggregate, Direction, PassRule, StepRef};
use super::{assemble, digest, model_digest, Assembly};
use crate::Metric;

/// Training report of a model directory written by `skepsis train` (its settings are reused
/// for the random-label model).
pub const TRAIN_REPORT_JSON: &str = "train_report.json";
/// Where the random-label model is kept in the output directory (for `resume`).
const RANDOM_MODEL_DIR: &str = "random-label-model";
const RANDOM_TRAIN_REPORT: &str = "random-label-train.json";

/// Options of [`data_randomization`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRandomizationOptions {
    /// Seed, images, metrics, batch size. The seed also drives the label permutation, the
    /// random-label model's initial weights and its training order.
    pub common: CheckOptions,
    /// The explained class (default: each model's own prediction).
    pub target: TargetChoice,
    /// Training settings of the random-label model: the original model's settings.
    pub train: TrainConfig,
    /// Smallest training accuracy on the permuted labels at which the random-label model
    /// counts as having fitted (memorized) its training set; below it the check refuses.
    pub fit_threshold: f64,
    /// The pass rule (`None`: [`default_rule`]).
    pub rule: Option<PassRule>,
}

impl Default for DataRandomizationOptions {
    fn default() -> Self {
        DataRandomizationOptions {
            common: CheckOptions::default(),
            target: TargetChoice::Predicted,
            train: TrainConfig::default(),
            fit_threshold: 0.9,
            rule: None,
        }
    }
}

/// Where the random-label model comes from.
#[derive(Debug, Clone)]
pub enum RandomLabelModel {
    /// Train it: the original model's architecture with freshly drawn weights (every layer
    /// re-initialized from its own initializer, seeded from the check's seed), the same
    /// training settings, on the permuted labels.
    Train,
    /// Use this model, already trained on the permuted labels of the same seed (its
    /// training accuracy on them is still measured and checked).
    Given(Box<Model>),
}

/// "Passes when the mean of the first metric is below the random-map baseline's upper 95%
/// bound, or below 0.5".
pub fn default_rule(options: &DataRandomizationOptions) -> PassRule {
    let metric = options.common.metrics.first().copied().unwrap_or(Metric::SpearmanAbs);
    let similar = metric.higher_is_more_similar();
    PassRule {
        metric: metric.name().into(),
        step: StepRef::Index(0),
        aggregate: Aggregate::Mean,
        direction: if similar { Direction::Below } else { Direction::Above },
        threshold: similar.then_some(0.5),
        baseline: Some(methods::RANDOM_MAP.into()),
        baseline_margin: 0.0,
    }
}

/// Data randomization test, Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018.
///
/// Protocol (reference-protocols.md section 1): the training labels are permuted globally
/// (`Dataset::permute_labels(mix(seed, 1))`); the same architecture is trained from fresh
/// weights with the same settings on them (or a given random-label model is used). It must
/// memorize: its training accuracy on the permuted labels is measured and, when below
/// `fit_threshold`, the check refuses to compare (a model that has not fitted random labels
/// says nothing about whether a method depends on the data-label relation). Otherwise the
/// maps of the original and the random-label model on the same test inputs are compared per
/// sample with every metric (one step, `random-labels`). Train accuracy (permuted labels) and
/// test accuracy (true labels) of both models are reported in the notes. With an output
/// directory the random-label model is saved (`random-label-model/`) and reused by `resume`.
///
/// Knobs: training settings (epochs, optimizer, batch size, seed), fit threshold, target,
/// metrics, images, seed, pass rule.
// Model, two data sets, methods, options, model source, output control, progress.
#[allow(clippy::too_many_arguments)]
pub fn data_randomization(
    model: &Model,
    train_data: &Dataset,
    test: &CheckData,
    methods: &[String],
    options: &DataRandomizationOptions,
    source: RandomLabelModel,
    control: &RunControl,
    progress: &mut dyn Progress,
) -> CheckResult<CheckReport> {
    options.common.validate()?;
    if !(0.0..=1.0).contains(&options.fit_threshold) {
        return Err(CheckError::option("fit_threshold", "must lie in [0, 1]"));
    }
    let entries = methods::prepare(methods)?;
    let common = &options.common;
    let (x, labels) = test.take(common.images, model)?;
    let permuted = train_data.permute_labels(mix(common.seed, 1));
    let source_name = match &source {
        RandomLabelModel::Train => "trained".to_string(),
        RandomLabelModel::Given(m) => format!("given: {}", m.name()),
    };
    let parameters = serde_json::json!({
        "options": options,
        "methods": methods,
        "model": model.name(),
        "random_label_model": source_name,
        "model_digest": model_digest(model)?,
        "train_digest": digest(std::slice::from_ref(train_data.images()))?,
        "data_digest": digest(std::slice::from_ref(&x))?,
    });
    let mut store = StepStore::open(
        control,
        fingerprint("data-randomization", &parameters),
        &[RANDOM_MODEL_DIR, RANDOM_TRAIN_REPORT],
    )?;
    let random_model = obtain_random_model(model, &permuted, options, source, &store, progress)?;

    let dtype = model.dtype();
    let train_images = permuted.images().to_dtype(dtype)?;
    let batch = options.train.batch_size.max(256);
    let fit = accuracy(
        &random_model,
        LabelledData { images: &train_images, labels: permuted.labels() },
        batch,
    )?;
    let mut notes = vec![format!(
        "random-label model: training accuracy on the permuted labels {fit:.4} (threshold {})",
        options.fit_threshold
    )];
    if let Some(l) = &labels {
        let data = LabelledData { images: &x, labels: l };
        notes.push(format!(
            "test accuracy on the check's {} images (true labels): original {:.4}, \
             random-label {:.4}",
            l.len(),
            accuracy(model, data, batch)?,
            accuracy(&random_model, data, batch)?
        ));
    }
    let rule = options.rule.clone().unwrap_or_else(|| default_rule(options));
    let steps = vec!["random-labels".to_string()];
    let method_records: Vec<_> = entries.iter().map(|e| e.record()).collect();
    if fit < options.fit_threshold {
        let report = assemble(Assembly {
            check: "data-randomization",
            seed: common.seed,
            parameters,
            methods: method_records,
            steps,
            records: Vec::new(),
            notes,
            refusal: Some(format!(
                "the random-label model did not fit its training set (accuracy {fit:.4} < {}): \
                 it has not memorized the permuted labels, so comparing its maps would not test \
                 data dependence; train it longer",
                options.fit_threshold
            )),
            complete: true,
            rule: &rule,
        });
        store.finish(&report)?;
        return Ok(report);
    }
    // Every method explains `x` on both models: one forward pass per model serves them all
    // (the models share no layer, so each has its own memo).
    let model = &model.clone().with_trace_memo(&x, DEFAULT_TRACE_MEMO_BUDGET);
    let random_model = random_model.with_trace_memo(&x, DEFAULT_TRACE_MEMO_BUDGET);
    let predictions = maps::predictions(model, &x, common.batch_size)?;
    let target = options.target.target(&predictions, labels.as_deref())?;
    let examples = ExampleWriter::new(store.dir(), common.examples)?;
    examples.inputs(&[(ORIGINAL, &x)])?;
    progress.start(entries.len() as u64, "data randomization");
    let step = store.step(0, &steps[0], || {
        let mut records = Vec::new();
        let mut kept = Vec::new();
        for entry in &entries {
            let m1 = entry.instance(mix(common.seed, 0))?;
            let m2 = entry.instance(mix(common.seed, 1))?;
            let a = attribute(m1.get(), model, &x, &target, common.batch_size)?;
            let b = attribute(m2.get(), &random_model, &x, &target, common.batch_size)?;
            records.extend(compare_records(
                &entry.label,
                (0, "random-labels"),
                &a,
                &b,
                &common.metrics,
                &common.compare,
            )?);
            kept.push((entry.label.as_str(), a, b));
            progress.advance(1);
        }
        examples.pairs(&kept)?;
        Ok(records)
    })?;
    progress.finish();
    let report = assemble(Assembly {
        check: "data-randomization",
        seed: common.seed,
        parameters,
        methods: method_records,
        steps,
        complete: step.is_some(),
        records: step.unwrap_or_default(),
        notes,
        refusal: None,
        rule: &rule,
    });
    store.finish(&report)?;
    Ok(report)
}

/// The random-label model: loaded from an earlier run's output, given, or trained (and then
/// saved to the output directory).
fn obtain_random_model(
    model: &Model,
    permuted: &Dataset,
    options: &DataRandomizationOptions,
    source: RandomLabelModel,
    store: &StepStore,
    progress: &mut dyn Progress,
) -> CheckResult<Model> {
    let saved = store.dir().map(|d| d.join(RANDOM_MODEL_DIR));
    // Present only when resuming: `StepStore::open` refuses or clears existing output otherwise.
    if let Some(dir) = saved.as_deref().filter(|d| d.join(model_file::MODEL_JSON).exists()) {
        return Ok(model_file::load(dir, model.dtype(), &model.device())?);
    }
    let trained = match source {
        RandomLabelModel::Given(m) => m.to_dtype(model.dtype())?,
        RandomLabelModel::Train => {
            let layers: Vec<&str> =
                model.parametric_nodes().iter().map(|&i| model.nodes()[i].name.as_str()).collect();
            let fresh = randomize(
                model,
                &layers,
                mix(options.common.seed, 2),
                RandomizeOptions::default(),
            )?;
            let images = permuted.images().to_dtype(model.dtype())?;
            let data = LabelledData { images: &images, labels: permuted.labels() };
            let (trained, report) = train(&fresh, data, None, &options.train, progress)?;
            if let Some(dir) = store.dir() {
                save_report(&dir.join(RANDOM_TRAIN_REPORT), &report)?;
            }
            trained
        }
    };
    if let Some(dir) = saved {
        model_file::save(&trained.to_dtype(DType::F32)?, &dir, true)?;
    }
    Ok(trained)
}

fn save_report(path: &Path, report: &TrainReport) -> CheckResult<()> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| CheckError::BadRecords { path: path.to_path_buf(), message: e.to_string() })?;
    std::fs::write(path, text).map_err(|e| CheckError::io(path, e))
}
