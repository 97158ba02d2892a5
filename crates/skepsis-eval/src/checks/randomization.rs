//! Model parameter randomization (MPRT): cascading and independent, top-down and bottom-up,
//! with the smooth (sMPRT) and efficient (eMPRT) variants.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use skepsis_nn::train::Progress;
use skepsis_nn::{randomize, Model, RandomizeOptions, DEFAULT_TRACE_MEMO_BUDGET};

use super::error::{CheckError, CheckResult};
use super::examples::{ExampleWriter, COMPARED, ORIGINAL};
use super::maps::{self, attribute, CheckData, CheckOptions, Maps, ReferenceMaps, TargetChoice};
use super::methods::{self, mix, Control, MethodEntry};
use super::report::{CheckReport, Record};
use super::store::{RunControl, StepStore};
use super::verdict::{Aggregate, Direction, PassRule, StepRef};
use super::{assemble, digest, model_digest, Assembly};
use crate::similarity::entropy_rise;
use crate::Metric;

/// Which layers are randomized at step `k` (layers in [`LayerOrder`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RandomizationMode {
    /// Layers `order[0..=k]` (cumulative), Adebayo et al.'s main experiment.
    #[default]
    Cascading,
    /// Only `order[k]`, every other layer trained.
    Independent,
}

/// The order in which layers are randomized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerOrder {
    /// From the logits to the input (Adebayo et al. 2018).
    #[default]
    TopDown,
    /// From the input to the logits (Hedström et al. 2023's recommendation).
    BottomUp,
}

/// The MPRT variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum MprtVariant {
    /// Compare single explanations (Adebayo et al. 2018).
    #[default]
    Standard,
    /// sMPRT (Hedström et al. 2024): every explanation is the mean over `samples` noisy
    /// copies of the input, noise std `sigma * (max - min)` per image (paper: 50, 0.1). The
    /// explained class is resolved on the clean input and kept for its copies.
    Smooth {
        /// Noisy copies per image.
        samples: usize,
        /// Noise std as a fraction of the image's value range.
        sigma: f64,
    },
    /// eMPRT (Hedström et al. 2024): only the original and the fully randomized model,
    /// score `(H(|e_rand|) - H(|e|)) / H(|e|)` with `H` the entropy of a 100-bin histogram
    /// ([`entropy_rise`]); higher is better. Maps are compared in absolute value (Quantus'
    /// default `abs=True`; its max-normalization does not change a histogram's entropy).
    Efficient,
}

/// Options of [`model_randomization`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RandomizationOptions {
    /// Seed, images, metrics, batch size.
    pub common: CheckOptions,
    /// Cascading or independent.
    pub mode: RandomizationMode,
    /// Top-down or bottom-up.
    pub order: LayerOrder,
    /// The explained class.
    pub target: TargetChoice,
    /// Standard, smooth or efficient.
    pub variant: MprtVariant,
    /// The layers to randomize, in graph order (`None`: every node with parameters).
    pub layers: Option<Vec<String>>,
    /// Passed to [`randomize`] (BatchNorm statistics are kept by default, as Adebayo et al.).
    pub randomize: RandomizeOptions,
    /// The pass rule (`None`: [`default_rule`]).
    pub rule: Option<PassRule>,
}

/// The default pass rule: for the standard and smooth variants, "passes when the mean of the
/// first metric, averaged over every randomization step (the area under the similarity curve
/// after the original), is below the random-map baseline's upper 95% bound, or below 0.5";
/// for eMPRT, "passes when the mean entropy rise is above 0".
///
/// Averaging over the steps follows Adebayo et al.'s reading of the cascade as a whole: a
/// method passes when its maps move away from the trained model's as layers are randomized,
/// not when one step happens to cross a line. On their reference numbers (Spearman on |map|,
/// MNIST CNN) it passes Gradient (.30), SmoothGrad (.31), GradCAM (.37) and Guided GradCAM
/// (.38) and fails Guided Backprop (.68), Integrated Gradients and Gradient x Input (.99).
pub fn default_rule(options: &RandomizationOptions) -> PassRule {
    if options.variant == MprtVariant::Efficient {
        return PassRule {
            metric: EMPRT.into(),
            step: StepRef::Last,
            aggregate: Aggregate::Mean,
            direction: Direction::Above,
            threshold: Some(0.0),
            baseline: None,
            baseline_margin: 0.0,
        };
    }
    let metric = options.common.metrics.first().copied().unwrap_or(Metric::SpearmanAbs);
    let similar = metric.higher_is_more_similar();
    PassRule {
        metric: metric.name().into(),
        step: StepRef::From(1),
        aggregate: Aggregate::Mean,
        direction: if similar { Direction::Below } else { Direction::Above },
        threshold: similar.then_some(0.5),
        baseline: Some(methods::RANDOM_MAP.into()),
        baseline_margin: 0.0,
    }
}

/// Metric name of eMPRT's records.
pub const EMPRT: &str = "emprt";

/// Model parameter randomization test (MPRT), Adebayo et al., "Sanity Checks for Saliency
/// Maps", NeurIPS 2018, with the bottom-up order and the sMPRT / eMPRT variants of
/// Hedström et al., "Sanity Checks Revisited: An Exploration to Repair the Model Parameter
/// Randomisation Test", 2023/2024.
///
/// Protocol (reference-protocols.md sections 1, 5, 6):
/// - The layers are the nodes with parameters (or `options.layers`), ordered top-down
///   (logits first, as Adebayo) or bottom-up. Step 0, `original`, compares the trained
///   model's maps with themselves (similarity 1: the curve's starting point). Step `k >= 1`,
///   named after `order[k-1]`, randomizes `order[..k]` (cascading) or only `order[k-1]`
///   (independent) in a fresh copy of the trained model.
/// - Randomization re-draws each layer's trainable tensors from its own initializer with a
///   generator seeded per (seed, layer index) ([`randomize`]); BatchNorm running statistics
///   stay trained. The trained model is never mutated.
/// - The explained class is `options.target`: the current model's argmax (default, as the
///   paper's code), the original model's prediction, or the label.
/// - Every method's maps for all images of a step come from one `attribute` call (or calls of
///   `batch_size` images). Every pair (original map, randomized map) is compared per sample
///   with every metric (normalizations are per sample, never per batch).
/// - The random-map and Sobel baselines always run; the random map draws a fresh seed per
///   model (`mix(seed, step)`), so it shows what two unrelated maps score.
/// - eMPRT compares the original with the fully randomized model only (one step named
///   `all-layers`, cascading over every layer).
///
/// Knobs: mode, order, target, variant (samples, sigma), layers, metrics and their options,
/// images, seed, the pass rule. Records: image x method x step x metric; the report also
/// summarizes mean and std per step and applies the pass rule.
pub fn model_randomization(
    model: &Model,
    data: &CheckData,
    methods: &[String],
    options: &RandomizationOptions,
    control: &RunControl,
    progress: &mut dyn Progress,
) -> CheckResult<CheckReport> {
    options.common.validate()?;
    if let MprtVariant::Smooth { samples, sigma } = options.variant {
        if samples == 0 || !(sigma.is_finite() && sigma >= 0.0) {
            return Err(CheckError::option("variant", "sMPRT needs samples >= 1 and sigma >= 0"));
        }
    }
    let entries = methods::prepare(methods)?;
    let order = layer_order(model, options)?;
    let (x, labels) = data.take(options.common.images, model)?;
    // Every model state of the check explains `x`: unchanged layers' activations (those below
    // the randomized ones, top-down) are computed once and shared across states and methods.
    let model = &model.clone().with_trace_memo(&x, DEFAULT_TRACE_MEMO_BUDGET);
    let steps: Vec<String> = if options.variant == MprtVariant::Efficient {
        vec!["all-layers".into()]
    } else {
        std::iter::once("original".to_string()).chain(order.iter().cloned()).collect()
    };
    let parameters = serde_json::json!({
        "options": options,
        "methods": methods,
        "layer_order": order,
        "model": model.name(),
        "model_digest": model_digest(model)?,
        "data_digest": digest(std::slice::from_ref(&x))?,
    });
    let mut store = StepStore::open(control, fingerprint("model-randomization", &parameters), &[])?;
    let examples = ExampleWriter::new(store.dir(), options.common.examples)?;
    examples.inputs(&[(ORIGINAL, &x)])?;
    let ctx = Context {
        model,
        x: &x,
        labels: labels.as_deref(),
        options,
        entries: &entries,
        examples: &examples,
        cascade: std::cell::RefCell::new(None),
        unchanged: std::cell::RefCell::new(vec![None; entries.len()]),
    };
    // The original model's predicted classes: the targets of every model for
    // `PredictedByOriginal`, of the original model for `Predicted`; labels need no forward pass.
    let original_predictions = match options.target {
        TargetChoice::Label => Vec::new(),
        _ => maps::predictions(model, &x, options.common.batch_size)?,
    };

    progress.start((steps.len() * entries.len()) as u64, "model randomization");
    let needs_originals = (0..steps.len()).any(|k| !store.has(k));
    let originals = if needs_originals {
        let original_classes = match options.target {
            TargetChoice::Predicted => original_predictions.clone(),
            _ => ctx.classes(model, &original_predictions)?,
        };
        entries
            .iter()
            .map(|e| ctx.maps(e, model, 0, &original_classes))
            .collect::<CheckResult<Vec<_>>>()?
    } else {
        Vec::new()
    };
    // Every step compares with the original maps: they are normalized, ranked or filtered once
    // (eMPRT compares entropies instead).
    let references = if options.variant == MprtVariant::Efficient {
        Vec::new()
    } else {
        originals
            .iter()
            .map(|o| ReferenceMaps::new(o, &options.common.metrics, &options.common.compare))
            .collect::<CheckResult<Vec<_>>>()?
    };
    let mut records = Vec::new();
    let mut complete = true;
    for (k, name) in steps.iter().enumerate() {
        let step = store.step(k, name, || {
            let originals = Originals { maps: &originals, references: &references };
            ctx.step(k, name, &order, originals, &original_predictions, &mut *progress)
        })?;
        match step {
            Some(r) => records.extend(r),
            None => {
                complete = false;
                break;
            }
        }
    }
    progress.finish();
    let rule = options.rule.clone().unwrap_or_else(|| default_rule(options));
    let notes = vec![format!(
        "{} randomization, {} order, explained class: {}",
        serde_name(&options.mode),
        serde_name(&options.order),
        serde_name(&options.target)
    )];
    let report = assemble(Assembly {
        check: "model-randomization",
        seed: options.common.seed,
        parameters,
        methods: entries.iter().map(|e| e.record()).collect(),
        steps,
        records,
        notes,
        refusal: None,
        complete,
        rule: &rule,
    });
    store.finish(&report)?;
    Ok(report)
}

/// `"{check}"` plus the parameters and the crate version: what `resume` must match.
pub(crate) fn fingerprint(check: &str, parameters: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "check": check,
        "version": super::report::CRATE_VERSION,
        "parameters": parameters,
    })
}

/// A serde enum's name (`cascading`, `top-down`, ...).
pub(crate) fn serde_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// The layer names in randomization order.
fn layer_order(model: &Model, options: &RandomizationOptions) -> CheckResult<Vec<String>> {
    let mut layers: Vec<String> = match &options.layers {
        Some(names) => {
            let mut indexed = Vec::with_capacity(names.len());
            for name in names {
                let index = model.node_index(name)?;
                if !model.nodes()[index].layer.has_parameters() {
                    return Err(CheckError::option(
                        "layers",
                        format!("node '{name}' has no parameters to randomize"),
                    ));
                }
                indexed.push((index, name.clone()));
            }
            indexed.sort();
            indexed.dedup();
            indexed.into_iter().map(|(_, n)| n).collect()
        }
        None => model.parametric_nodes().iter().map(|&i| model.nodes()[i].name.clone()).collect(),
    };
    if layers.is_empty() {
        return Err(CheckError::option("layers", "the model has no layer with parameters"));
    }
    if options.order == LayerOrder::TopDown {
        layers.reverse();
    }
    Ok(layers)
}

/// The original model's maps per method, and the same maps prepared for comparison.
#[derive(Clone, Copy)]
struct Originals<'a> {
    maps: &'a [Maps],
    references: &'a [ReferenceMaps],
}

struct Context<'a> {
    model: &'a Model,
    x: &'a candle_core::Tensor,
    labels: Option<&'a [usize]>,
    options: &'a RandomizationOptions,
    entries: &'a [MethodEntry],
    examples: &'a ExampleWriter,
    /// The last cascading model and its step: step `k` only re-draws `order[k - 1]` on top of
    /// step `k - 1`'s model. [`randomize`] seeds every layer by (seed, layer index), so this
    /// gives exactly the weights of randomizing `order[..k]` at once, each drawn once.
    cascade: std::cell::RefCell<Option<(usize, Model)>>,
    /// Per method, the records of a step whose maps are the original ones (the edge
    /// detector's: it does not read the model), computed at the first such step: every later
    /// step compares the same two maps.
    unchanged: std::cell::RefCell<Vec<Option<Vec<Record>>>>,
}

impl Context<'_> {
    /// The classes explained on `model`: the options' choice, with "predicted" resolved once
    /// per model (one forward pass shared by every method, instead of one per method).
    fn classes(&self, model: &Model, original_predictions: &[usize]) -> CheckResult<Vec<usize>> {
        match self.options.target.target(original_predictions, self.labels)? {
            skepsis_attr::Target::Classes(c) => Ok(c),
            _ => maps::predictions(model, self.x, self.options.common.batch_size),
        }
    }

    /// The maps of `entry` on `model` for `classes` (variant `variant` for the random map).
    fn maps(
        &self,
        entry: &MethodEntry,
        model: &Model,
        variant: u64,
        classes: &[usize],
    ) -> CheckResult<Maps> {
        let common = &self.options.common;
        let method = entry.instance(mix(common.seed, variant))?;
        let target = skepsis_attr::Target::Classes(classes.to_vec());
        match self.options.variant {
            MprtVariant::Smooth { samples, sigma } => {
                let repeated: Vec<usize> = (0..samples).flat_map(|_| classes.to_vec()).collect();
                let noisy = maps::noisy_copies(self.x, samples, sigma, mix(common.seed, 0x736d))?;
                let batch = common.batch_size.map(|b| b * samples);
                let all = attribute(
                    method.get(),
                    model,
                    &noisy,
                    &skepsis_attr::Target::Classes(repeated),
                    batch,
                )?;
                Ok(maps::average_copies(all, samples))
            }
            _ => attribute(method.get(), model, self.x, &target, common.batch_size),
        }
    }

    /// The records of method `e` comparing its original maps with themselves at step `step`:
    /// `compute`'s at the first call, then the same values under the new step.
    fn unchanged_records(
        &self,
        e: usize,
        (step_index, step): (usize, &str),
        compute: impl FnOnce() -> CheckResult<Vec<Record>>,
    ) -> CheckResult<Vec<Record>> {
        let mut unchanged = self.unchanged.borrow_mut();
        let first = match &unchanged[e] {
            Some(records) => records,
            None => unchanged[e].insert(compute()?),
        };
        Ok(first
            .iter()
            .map(|r| Record { step_index, step: step.to_string(), ..r.clone() })
            .collect())
    }

    /// The model of cascading step `k` (layers `order[..k]` randomized).
    fn cascading(&self, k: usize, order: &[String]) -> CheckResult<Model> {
        let (seed, options) = (self.options.common.seed, self.options.randomize);
        let mut cache = self.cascade.borrow_mut();
        let model = match cache.take() {
            Some((prev, m)) if prev + 1 == k => {
                randomize(&m, &[order[k - 1].as_str()], seed, options)?
            }
            _ => {
                let names: Vec<&str> = order[..k].iter().map(String::as_str).collect();
                randomize(self.model, &names, seed, options)?
            }
        };
        *cache = Some((k, model.clone()));
        Ok(model)
    }

    /// The records of step `k`.
    fn step(
        &self,
        k: usize,
        name: &str,
        order: &[String],
        originals: Originals<'_>,
        original_predictions: &[usize],
        progress: &mut dyn Progress,
    ) -> CheckResult<Vec<Record>> {
        let Originals { maps: originals, references } = originals;
        let common = &self.options.common;
        let efficient = self.options.variant == MprtVariant::Efficient;
        let randomized = if efficient {
            let all: Vec<&str> = order.iter().map(String::as_str).collect();
            Some(randomize(self.model, &all, common.seed, self.options.randomize)?)
        } else if k == 0 {
            None
        } else {
            Some(match self.options.mode {
                RandomizationMode::Cascading => self.cascading(k, order)?,
                RandomizationMode::Independent => randomize(
                    self.model,
                    &[order[k - 1].as_str()],
                    common.seed,
                    self.options.randomize,
                )?,
            })
        };
        let classes = match &randomized {
            Some(m) => self.classes(m, original_predictions)?,
            None => Vec::new(),
        };
        let mut records = Vec::new();
        let mut kept = Vec::new();
        for (e, (entry, original)) in self.entries.iter().zip(originals).enumerate() {
            match &randomized {
                None if entry.control == Control::Edges => {
                    records.extend(self.unchanged_records(e, (k, name), || {
                        references[e].records(&entry.label, (k, name), original)
                    })?)
                }
                None => records.extend(references[e].records(&entry.label, (k, name), original)?),
                Some(m) => {
                    let variant = if efficient { 1 } else { k as u64 };
                    // The edge detector does not read the model: its maps are the original's.
                    let maps = match entry.control {
                        Control::Edges => Cow::Borrowed(original),
                        _ => Cow::Owned(self.maps(entry, m, variant, &classes)?),
                    };
                    if efficient {
                        records.extend(emprt_records(&entry.label, (k, name), original, &maps)?);
                    } else if entry.control == Control::Edges {
                        records.extend(self.unchanged_records(e, (k, name), || {
                            references[e].records(&entry.label, (k, name), original)
                        })?);
                    } else {
                        records.extend(references[e].records(&entry.label, (k, name), &maps)?);
                    }
                    kept.push((entry.label.as_str(), maps));
                }
            }
            progress.advance(1);
        }
        // Step 0 (and eMPRT's single step) holds the trained model's maps; later steps hold
        // only the randomized model's.
        let mut sets = Vec::new();
        if k == 0 {
            sets.extend(
                self.entries.iter().zip(originals).map(|(e, o)| (ORIGINAL, e.label.as_str(), o)),
            );
        }
        sets.extend(kept.iter().map(|(l, m)| (COMPARED, *l, m.as_ref())));
        self.examples.step(k, &sets)?;
        Ok(records)
    }
}

/// eMPRT per image on `|map|`.
fn emprt_records(
    method: &str,
    (step_index, step): (usize, &str),
    original: &Maps,
    randomized: &Maps,
) -> CheckResult<Vec<Record>> {
    (0..original.n())
        .map(|i| {
            let abs = |m: &Maps| m.sample(i).iter().map(|v| v.abs()).collect::<Vec<f64>>();
            let s = entropy_rise(&abs(original), &abs(randomized))?;
            Ok(Record {
                method: method.to_string(),
                step_index,
                step: step.to_string(),
                image: i,
                metric: EMPRT.into(),
                value: s.value,
                degenerate: s.is_degenerate(),
            })
        })
        .collect()
}
