//! The rank-1 convergence test.

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use skepsis_attr::registry;
use skepsis_nn::train::Progress;
use skepsis_nn::{BackwardPass, Layer, Model, RuleMap, Stop, DEFAULT_TRACE_MEMO_BUDGET};

use super::error::{CheckError, CheckResult};
use super::maps::CheckData;
use super::methods::mix;
use super::randomization::fingerprint;
use super::report::{CheckReport, MethodRecord, Record};
use super::store::{RunControl, StepStore};
use super::verdict::{Aggregate, Direction, PassRule, StepRef};
use super::{assemble, digest, model_digest, Assembly};

/// Label of the control: random N(0, 1) vectors of each layer's channel dimension.
pub const RANDOM_VECTORS: &str = "random-vectors";
/// Metric name of the records.
pub const MEAN_ABS_COSINE: &str = "mean-abs-cosine";

/// Options of [`rank1_convergence`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rank1Options {
    /// Seed of the injected relevance (the same vectors for every method) and the control.
    pub seed: u64,
    /// Number of images.
    pub images: usize,
    /// The node at whose output relevance is injected (`None`: the second-to-last weighted
    /// layer, e.g. `fc1` of the SC CNN; the output node when there is only one).
    pub layer: Option<String>,
    /// Random relevance tensors injected per image (Sixt et al.: 5).
    pub vectors: usize,
    /// The pass rule (`None`: [`default_rule`]).
    pub rule: Option<PassRule>,
}

impl Default for Rank1Options {
    fn default() -> Self {
        Rank1Options { seed: 0, images: 16, layer: None, vectors: 5, rule: None }
    }
}

/// "Passes when the mean |cos| at the lowest reported layer is below the random-vector
/// control's upper 95% bound plus 0.2, or below 0.5": 0.5 is half-way between unrelated
/// high-dimensional vectors (|cos| near 0) and rank-1 collapse (|cos| = 1); the control term
/// takes over for layers with few channels, where even random vectors align.
pub fn default_rule() -> PassRule {
    PassRule {
        metric: MEAN_ABS_COSINE.into(),
        step: StepRef::Last,
        aggregate: Aggregate::Mean,
        direction: Direction::Below,
        threshold: Some(0.5),
        baseline: Some(RANDOM_VECTORS.into()),
        baseline_margin: 0.2,
    }
}

/// The model (canonized where the method canonizes) and the rule map a registry spec
/// propagates with ([`skepsis_attr::Method::propagation`]), or `None` when the method is not
/// a single rule-based backward walk (DeepLIFT needs a reference trace; wrappers such as IG
/// or SmoothGrad average walks).
pub fn rule_map_for_spec(spec: &str, model: &Model) -> CheckResult<Option<(Model, RuleMap)>> {
    Ok(registry::parse(spec)?.propagation(model).transpose()?)
}

/// Rank-1 convergence test, Sixt, Granz & Landgraf, "When Explanations Lie: Why Many
/// Modified BP Attributions Fail", ICML 2020.
///
/// Protocol (reference-protocols.md section 5): `vectors` (5) random relevance tensors with
/// i.i.d. N(0, 1) entries (ChaCha8, seeded from the check's seed, the same for every method)
/// are injected at the output of `options.layer` for every image and propagated downwards
/// with the method's own rules ([`rule_map_for_spec`]) by one batched backward walk that keeps
/// the relevance at every value. At each lower value with at least 2 channels (every node
/// output below the injection point except Flatten/Reshape copies, and the input), the
/// relevance of one image is reshaped to `(H*W, C)` (dense values: one position of `C`
/// features) and the record is the mean over positions and over the 10 pairs of injected
/// tensors of `|cos|` between their C-vectors (pairs with a zero vector are skipped; an image
/// with no valid pair is degenerate, value 0). Values near 1 mean the explanation no longer
/// depends on what is injected above: the method ignores the higher layers. The control,
/// `random-vectors`, is the same statistic for independent N(0, 1) vectors of each layer's
/// channel dimension. Steps are the layers from the injection point down; one step-file per
/// method. Methods that are not a single rule-based walk are reported as not applicable; the
/// random-map and edge-detector controls have no rules, so `random-vectors` replaces them.
///
/// Knobs: injection layer, number of vectors, images, seed, pass rule (default: mean |cos|
/// at the lowest layer below the control's upper 95% bound + 0.2, or below 0.5).
pub fn rank1_convergence(
    model: &Model,
    data: &CheckData,
    methods: &[String],
    options: &Rank1Options,
    control: &RunControl,
    progress: &mut dyn Progress,
) -> CheckResult<CheckReport> {
    if options.vectors < 2 || options.images == 0 {
        return Err(CheckError::option("vectors", "needs at least 2 vectors and 1 image"));
    }
    if methods.is_empty() {
        return Err(CheckError::option("methods", "give at least one method spec"));
    }
    let start = injection_node(model, options.layer.as_deref())?;
    let layers = reported_values(model, start)?;
    if layers.is_empty() {
        return Err(CheckError::option(
            "layer",
            format!("no value with 2 or more channels below node '{}'", model.nodes()[start].name),
        ));
    }
    let steps: Vec<String> = layers.iter().map(|(_, name)| name.clone()).collect();
    let (x, _) = data.take(options.images, model)?;
    let n = x.dims()[0];
    let parameters = serde_json::json!({
        "options": options,
        "methods": methods,
        "injection_node": model.nodes()[start].name,
        "model": model.name(),
        "model_digest": model_digest(model)?,
        "data_digest": digest(std::slice::from_ref(&x))?,
    });
    let mut store = StepStore::open(control, fingerprint("rank1", &parameters), &[])?;
    let repeated = Tensor::cat(&vec![x.clone(); options.vectors], 0)?;
    // Every method walks back from a pass on `repeated`: nodes its rules leave unchanged
    // (all of them, without a canonizer) are computed once.
    let model = &model.clone().with_trace_memo(&repeated, DEFAULT_TRACE_MEMO_BUDGET);
    let mut notes = vec![format!(
        "{} N(0,1) relevance tensors injected at the output of '{}'",
        options.vectors,
        model.nodes()[start].name
    )];
    let mut method_records = Vec::new();
    let mut records = Vec::new();
    let mut complete = true;
    progress.start(methods.len() as u64 + 1, "rank-1 convergence");
    for (m, spec) in methods.iter().enumerate() {
        let label = spec.trim().to_string();
        let name = registry::parse(spec)?.name();
        method_records.push(MethodRecord { label: label.clone(), name, baseline: false });
        let step = store.step(m, &label, || {
            let Some((walk_model, rules)) = rule_map_for_spec(spec, model)? else {
                return Ok(Vec::new());
            };
            let trace = walk_model.trace(&repeated)?;
            let seed = gaussian(trace.output(start).dims(), mix(options.seed, 0x72616e6b), &x)?;
            let out = BackwardPass::new(&walk_model, &trace)
                .rules(&rules)
                .start_at(start)
                .stop_at(Stop::Input)
                .keep_values()
                .run(&seed)?;
            let values = out.values.unwrap_or_default();
            let mut recs = Vec::new();
            for (k, (value, step)) in layers.iter().enumerate() {
                let r = match values.get(*value).and_then(Option::as_ref) {
                    Some(r) => r.clone(),
                    None => trace.value(skepsis_nn::ValueId(*value)).zeros_like()?,
                };
                let per_image = mean_abs_cosines(&r, n, options.vectors)?;
                recs.extend(per_image.into_iter().enumerate().map(
                    |(image, (value, degenerate))| Record {
                        method: label.clone(),
                        step_index: k,
                        step: step.clone(),
                        image,
                        metric: MEAN_ABS_COSINE.into(),
                        value,
                        degenerate,
                    },
                ));
            }
            Ok(recs)
        })?;
        match step {
            Some(r) if r.is_empty() => notes.push(format!(
                "{label}: not a single rule-based backward walk; rank-1 convergence not applicable"
            )),
            Some(r) => records.extend(r),
            None => {
                complete = false;
                break;
            }
        }
        progress.advance(1);
    }
    // The control is cheap and deterministic: recomputed, never stored as a step.
    method_records.push(MethodRecord {
        label: RANDOM_VECTORS.into(),
        name: "independent N(0,1) vectors of each layer's channel dimension".into(),
        baseline: true,
    });
    if complete {
        for (k, (value, step)) in layers.iter().enumerate() {
            let dims = model
                .trace(&x.narrow(0, 0, 1)?)?
                .value(skepsis_nn::ValueId(*value))
                .dims()
                .to_vec();
            let mut shape = dims.clone();
            shape[0] = n * options.vectors;
            let r = gaussian(&shape, mix(options.seed, 0x636f6e74 + k as u64), &x)?;
            for (image, (value, degenerate)) in
                mean_abs_cosines(&r, n, options.vectors)?.into_iter().enumerate()
            {
                records.push(Record {
                    method: RANDOM_VECTORS.into(),
                    step_index: k,
                    step: step.clone(),
                    image,
                    metric: MEAN_ABS_COSINE.into(),
                    value,
                    degenerate,
                });
            }
        }
    }
    progress.finish();
    let rule = options.rule.clone().unwrap_or_else(default_rule);
    let report = assemble(Assembly {
        check: "rank1",
        seed: options.seed,
        parameters,
        methods: method_records,
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

/// The injection node: `name`, or the second-to-last weighted node (the output node when the
/// model has fewer than two).
fn injection_node(model: &Model, name: Option<&str>) -> CheckResult<usize> {
    if let Some(name) = name {
        return Ok(model.node_index(name)?);
    }
    let affine = model.affine_nodes();
    Ok(match affine.len() {
        0 | 1 => model.output_node(),
        k => affine[k - 2],
    })
}

/// `(value id, name)` of every value below `start` with at least 2 channels, top first.
fn reported_values(model: &Model, start: usize) -> CheckResult<Vec<(usize, String)>> {
    let trace = model.trace(&Tensor::zeros(
        std::iter::once(1).chain(model.input_shape().iter().copied()).collect::<Vec<_>>(),
        model.dtype(),
        &model.device(),
    )?)?;
    let mut out = Vec::new();
    for index in (0..start).rev() {
        let node = &model.nodes()[index];
        if matches!(node.layer, Layer::Flatten | Layer::Reshape { .. }) {
            continue;
        }
        if channels(trace.output(index).dims()) >= 2 {
            out.push((index + 1, node.name.clone()));
        }
    }
    if channels(trace.input().dims()) >= 2 {
        out.push((0, "input".to_string()));
    }
    Ok(out)
}

fn channels(dims: &[usize]) -> usize {
    dims.get(1).copied().unwrap_or(0)
}

/// N(0, 1) entries of `shape`, like `like`'s dtype and device.
fn gaussian(shape: &[usize], seed: u64, like: &Tensor) -> CheckResult<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let count: usize = shape.iter().product();
    let v: Vec<f64> = (0..count).map(|_| StandardNormal.sample(&mut rng)).collect();
    Ok(Tensor::from_vec(v, shape, like.device())?.to_dtype(like.dtype())?)
}

/// Per image `i`: mean over positions and pairs `(a, b)` of `|cos(R[a*n+i, :, p], R[b*n+i, :, p])|`
/// for `r` of shape `[k*n, C, ...]`; `(0, true)` when no pair has two non-zero vectors.
fn mean_abs_cosines(r: &Tensor, n: usize, k: usize) -> CheckResult<Vec<(f64, bool)>> {
    let dims = r.dims();
    let c = channels(dims);
    let positions: usize = dims[2..].iter().product();
    let v = r.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let per_row = c * positions;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (mut total, mut count) = (0.0, 0usize);
        for p in 0..positions {
            let vector = |a: usize| {
                let row = &v[(a * n + i) * per_row..(a * n + i + 1) * per_row];
                (0..c).map(move |ch| row[ch * positions + p])
            };
            for a in 0..k {
                for b in a + 1..k {
                    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
                    for (x, y) in vector(a).zip(vector(b)) {
                        dot += x * y;
                        na += x * x;
                        nb += y * y;
                    }
                    if na > 0.0 && nb > 0.0 {
                        total += (dot / (na.sqrt() * nb.sqrt())).abs().min(1.0);
                        count += 1;
                    }
                }
            }
        }
        out.push(if count == 0 { (0.0, true) } else { (total / count as f64, false) });
    }
    Ok(out)
}
