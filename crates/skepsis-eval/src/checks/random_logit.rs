//! The random logit test.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skepsis_attr::Target;
use skepsis_nn::train::Progress;
use skepsis_nn::{Model, DEFAULT_TRACE_MEMO_BUDGET};

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

/// Options of [`random_logit`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RandomLogitOptions {
    /// Seed, images, metrics, batch size.
    pub common: CheckOptions,
    /// The class of the first map (default: the model's prediction; `label` uses the labels).
    pub target: TargetChoice,
    /// The pass rule (`None`: [`default_rule`]).
    pub rule: Option<PassRule>,
}

/// "Passes when the mean of the first metric is below the random-map baseline's upper 95%
/// bound, or below 0.5".
pub fn default_rule(options: &RandomLogitOptions) -> PassRule {
    let metric = options.common.metrics.first().copied().unwrap_or(Metric::Ssim);
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

/// Random logit test, Sixt, Granz & Landgraf, "When Explanations Lie: Why Many Modified BP
/// Attributions Fail", ICML 2020 (as Quantus' `RandomLogit`): a class-sensitive method's map
/// for the explained class `c` must differ from its map for a random other class `c'`.
///
/// Protocol: `c` per `options.target` (default the model's prediction); `c'` uniform over the
/// other classes, drawn per image from ChaCha8 seeded with `mix(seed, image)`. Both maps of
/// all images come from one `attribute` call each (or calls of `batch_size` images); every
/// pair is compared per sample with every metric. One step, `random-logit`. The random-map
/// baseline uses different seeds for its two maps; the Sobel baseline ignores the class and
/// so scores as similar as possible (a method that behaves like it fails).
///
/// Knobs: target, metrics (Quantus: SSIM), images, seed, pass rule.
pub fn random_logit(
    model: &Model,
    data: &CheckData,
    methods: &[String],
    options: &RandomLogitOptions,
    control: &RunControl,
    progress: &mut dyn Progress,
) -> CheckResult<CheckReport> {
    options.common.validate()?;
    let entries = methods::prepare(methods)?;
    let common = &options.common;
    let (x, labels) = data.take(common.images, model)?;
    // Every method explains two classes of `x` on one model: one forward pass serves all.
    let model = &model.clone().with_trace_memo(&x, DEFAULT_TRACE_MEMO_BUDGET);
    let classes = model.num_classes()?;
    if classes < 2 {
        return Err(CheckError::option("model", "the random logit test needs at least 2 classes"));
    }
    let predictions = maps::predictions(model, &x, common.batch_size)?;
    let first = match options.target.target(&predictions, labels.as_deref())? {
        Target::Classes(c) => c,
        _ => predictions.clone(),
    };
    let other: Vec<usize> = first
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(common.seed, i as u64));
            let pick = rng.random_range(0..classes - 1);
            if pick >= c {
                pick + 1
            } else {
                pick
            }
        })
        .collect();
    let parameters = serde_json::json!({
        "options": options,
        "methods": methods,
        "model": model.name(),
        "model_digest": model_digest(model)?,
        "data_digest": digest(std::slice::from_ref(&x))?,
    });
    let steps = vec!["random-logit".to_string()];
    let mut store = StepStore::open(control, fingerprint("random-logit", &parameters), &[])?;
    let examples = ExampleWriter::new(store.dir(), common.examples)?;
    examples.inputs(&[(ORIGINAL, &x)])?;
    progress.start(entries.len() as u64, "random logit");
    let step = store.step(0, &steps[0], || {
        let mut records = Vec::new();
        let mut kept = Vec::new();
        for entry in &entries {
            let a = entry.instance(mix(common.seed, 0))?;
            let b = entry.instance(mix(common.seed, 1))?;
            let explained = Target::Classes(first.clone());
            let random = Target::Classes(other.clone());
            let ma = attribute(a.get(), model, &x, &explained, common.batch_size)?;
            let mb = attribute(b.get(), model, &x, &random, common.batch_size)?;
            records.extend(compare_records(
                &entry.label,
                (0, "random-logit"),
                &ma,
                &mb,
                &common.metrics,
                &common.compare,
            )?);
            kept.push((entry.label.as_str(), ma, mb));
            progress.advance(1);
        }
        examples.pairs(&kept)?;
        Ok(records)
    })?;
    progress.finish();
    let complete = step.is_some();
    let rule = options.rule.clone().unwrap_or_else(|| default_rule(options));
    let report = assemble(Assembly {
        check: "random-logit",
        seed: common.seed,
        parameters,
        methods: entries.iter().map(|e| e.record()).collect(),
        steps,
        records: step.unwrap_or_default(),
        notes: vec![format!("{classes} classes; the other class is uniform over the rest")],
        refusal: None,
        complete,
        rule: &rule,
    });
    store.finish(&report)?;
    Ok(report)
}
