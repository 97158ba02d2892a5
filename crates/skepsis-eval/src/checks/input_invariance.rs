//! The input invariance check.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use skepsis_attr::Target;
use skepsis_nn::train::Progress;
use skepsis_nn::{Layer, Model, ValueId, DEFAULT_TRACE_MEMO_BUDGET};

use super::error::{CheckError, CheckResult};
use super::examples::{ExampleWriter, COMPARED, ORIGINAL};
use super::maps::{self, attribute, CheckData};
use super::methods::{self, mix};
use super::randomization::fingerprint;
use super::report::{CheckReport, Record};
use super::store::{RunControl, StepStore};
use super::verdict::{Aggregate, Direction, PassRule, StepRef};
use super::{assemble, digest, model_digest, Assembly};

/// The spec parameter value replaced by the "black image": `ig:baseline=constant,value=black`
/// runs IG from the black image `options.black` on the original network and from
/// `options.black + options.shift` (the black image shifted with the input) on the shifted
/// network. Any `key=black` parameter is replaced the same way.
pub const BLACK: &str = "black";

/// Metric name of the records: `max_j |map1_j - map2_j|` per image.
pub const MAX_ABS_DIFFERENCE: &str = "max-abs-difference";

/// Options of [`input_invariance`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputInvarianceOptions {
    /// Seed (random-map baseline; both networks use the same maps' seed).
    pub seed: u64,
    /// Number of images (the first ones of the data).
    pub images: usize,
    /// Images per `attribute` call (`None`: all at once).
    pub batch_size: Option<usize>,
    /// The constant shift `m`: network 2 sees `x + m` (Kindermans et al.: -1).
    pub shift: f64,
    /// The black image's value for network 1 (inputs in [0, 1]: 0), see [`BLACK`].
    pub black: f64,
    /// Absolute tolerance on map differences (Quantus: `np.isclose`, atol 1e-4).
    pub atol: f64,
    /// Tolerance on the logits of the two networks, relative to `max(1, max |logit|)`; above
    /// it the shift compensation is broken and the check refuses.
    pub logit_tolerance: f64,
    /// Run both networks in float64 so that the compensation is exact to rounding (~1e-12)
    /// and differences measure the method, not f32 rounding.
    pub float64: bool,
    /// Maps of the first `examples` images are kept for figures (0: none).
    #[serde(default)]
    pub examples: usize,
    /// The pass rule (`None`: [`default_rule`]).
    pub rule: Option<PassRule>,
}

impl Default for InputInvarianceOptions {
    fn default() -> Self {
        InputInvarianceOptions {
            seed: 0,
            images: 64,
            batch_size: None,
            shift: -1.0,
            black: 0.0,
            atol: 1e-4,
            logit_tolerance: 1e-4,
            float64: true,
            examples: 0,
            rule: None,
        }
    }
}

/// "Passes when the largest per-image max-abs-difference is at most `atol`".
pub fn default_rule(options: &InputInvarianceOptions) -> PassRule {
    PassRule {
        metric: MAX_ABS_DIFFERENCE.into(),
        step: StepRef::Index(0),
        aggregate: Aggregate::Max,
        direction: Direction::AtMost,
        threshold: Some(options.atol),
        baseline: None,
        baseline_margin: 0.0,
    }
}

/// Input invariance, Kindermans et al., "The (Un)reliability of saliency methods", 2017
/// (in "Explainable AI", Springer 2019).
///
/// Protocol (reference-protocols.md section 3): network 2 is a copy of the model whose first
/// weighted layer (reached from the input through shape-only layers: Flatten, Reshape,
/// Identity, Dropout) has its bias compensated for the constant input shift `m`:
/// dense `b2 = b1 - m W 1`; convolution `b2[o] = b1[o] - m sum_{i,kh,kw} W[o,i,kh,kw]`
/// ([`shifted_model`]). Network 1 explains `x`, network 2 explains `x + m`; every
/// pre-activation, output and gradient is then identical by construction. A zero-padded first
/// convolution cannot be compensated by a bias (the padded border sees the shift only through
/// some taps, so the needed correction varies per position): the check then refuses and says
/// so, rather than comparing networks that are not equivalent.
///
/// Before judging methods, the check compares the two networks' logits on the images; when
/// they differ by more than `logit_tolerance * max(1, max |logit|)` the check itself is broken
/// and refuses. Both maps explain the class network 1 predicts. Per method and image the
/// record is `max |map1 - map2|`; the default rule passes a method when the largest of these
/// is at most `atol` (1e-4, as Quantus). Methods with a reference point must move it with
/// the input to pass: write `value=black` ([`BLACK`]) for IG's "black image" baseline.
/// Expected (Kindermans et al.): Gradient and Guided Backprop pass; Gradient x Input and IG
/// with a zero baseline fail; IG with the black baseline passes.
///
/// Knobs: shift, black value, atol, logit tolerance, float64, images, pass rule.
pub fn input_invariance(
    model: &Model,
    data: &CheckData,
    methods: &[String],
    options: &InputInvarianceOptions,
    control: &RunControl,
    progress: &mut dyn Progress,
) -> CheckResult<CheckReport> {
    if !(options.shift.is_finite() && options.black.is_finite()) {
        return Err(CheckError::option("shift", "shift and black must be finite"));
    }
    if !(options.atol >= 0.0 && options.logit_tolerance >= 0.0) {
        return Err(CheckError::option("atol", "tolerances must be >= 0"));
    }
    if options.images == 0 || options.batch_size == Some(0) {
        return Err(CheckError::option("images", "images and batch_size must be at least 1"));
    }
    let net1 = if options.float64 { model.to_dtype(DType::F64)? } else { model.clone() };
    let specs1: Vec<String> = methods.iter().map(|s| with_black(s, options.black)).collect();
    let specs2: Vec<String> =
        methods.iter().map(|s| with_black(s, options.black + options.shift)).collect();
    let mut entries1 = methods::prepare(&specs1)?;
    let entries2 = methods::prepare(&specs2)?;
    for (e, label) in entries1.iter_mut().zip(methods) {
        e.label = label.trim().to_string();
    }
    let (x1, _) = data.take(options.images, &net1)?;
    let parameters = serde_json::json!({
        "options": options,
        "methods": methods,
        "model": model.name(),
        "model_digest": model_digest(model)?,
        "data_digest": digest(std::slice::from_ref(&x1))?,
    });
    let rule = options.rule.clone().unwrap_or_else(|| default_rule(options));
    let steps = vec!["shift".to_string()];
    let method_records = entries1.iter().map(|e| e.record()).collect();
    let refuse = |reason: String, notes: Vec<String>| {
        assemble(Assembly {
            check: "input-invariance",
            seed: options.seed,
            parameters: parameters.clone(),
            methods: entries1.iter().map(|e| e.record()).collect(),
            steps: steps.clone(),
            records: Vec::new(),
            notes,
            refusal: Some(reason),
            complete: true,
            rule: &rule,
        })
    };
    let net2 = match try_shift(&net1, options.shift)? {
        Ok(m) => m,
        Err(reason) => return Ok(refuse(reason, Vec::new())),
    };
    let x2 = (&x1 + options.shift)?;
    // Every method explains `x1` on `net1` and `x2` on `net2`: one forward pass per network
    // serves them all.
    let net1 = net1.with_trace_memo(&x1, DEFAULT_TRACE_MEMO_BUDGET);
    let net2 = net2.with_trace_memo(&x2, DEFAULT_TRACE_MEMO_BUDGET);
    let logits1 = net1.forward(&x1)?.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let logits2 = net2.forward(&x2)?.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let scale = logits1.iter().fold(1f64, |m, v| m.max(v.abs()));
    let gap = logits1.iter().zip(&logits2).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    let notes = vec![
        format!(
            "shift m = {}, black image {} -> {}",
            options.shift,
            options.black,
            options.black + options.shift
        ),
        format!(
            "largest logit difference between the two networks: {gap:.3e} \
             (largest |logit| {scale:.3})"
        ),
    ];
    if gap.is_nan() || gap > options.logit_tolerance * scale {
        return Ok(refuse(
            format!(
                "the shifted network's logits differ from the original's by {gap:.3e} > {:.1e}: \
                 the bias compensation is broken, so methods cannot be judged",
                options.logit_tolerance * scale
            ),
            notes,
        ));
    }
    let mut store = StepStore::open(control, fingerprint("input-invariance", &parameters), &[])?;
    let examples = ExampleWriter::new(store.dir(), options.examples)?;
    examples.inputs(&[(ORIGINAL, &x1), (COMPARED, &x2)])?;
    let classes = maps::predictions(&net1, &x1, options.batch_size)?;
    let target = Target::Classes(classes);
    progress.start(entries1.len() as u64, "input invariance");
    let step = store.step(0, "shift", || {
        let mut records = Vec::new();
        let mut kept = Vec::new();
        for (e1, e2) in entries1.iter().zip(&entries2) {
            // Both networks' random maps share one seed: the method is the same function.
            let variant = mix(options.seed, 0);
            let m1 =
                attribute(e1.instance(variant)?.get(), &net1, &x1, &target, options.batch_size)?;
            let m2 =
                attribute(e2.instance(variant)?.get(), &net2, &x2, &target, options.batch_size)?;
            for image in 0..m1.n() {
                let diff = m1
                    .sample(image)
                    .iter()
                    .zip(m2.sample(image))
                    .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
                records.push(Record {
                    method: e1.label.clone(),
                    step_index: 0,
                    step: "shift".into(),
                    image,
                    metric: MAX_ABS_DIFFERENCE.into(),
                    value: diff,
                    degenerate: false,
                });
            }
            kept.push((e1.label.clone(), m1, m2));
            progress.advance(1);
        }
        examples.pairs(&kept)?;
        Ok(records)
    })?;
    progress.finish();
    let report = assemble(Assembly {
        check: "input-invariance",
        seed: options.seed,
        parameters: parameters.clone(),
        methods: method_records,
        steps: steps.clone(),
        complete: step.is_some(),
        records: step.unwrap_or_default(),
        notes,
        refusal: None,
        rule: &rule,
    });
    store.finish(&report)?;
    Ok(report)
}

/// `spec` with every `key=black` parameter set to `value`.
fn with_black(spec: &str, value: f64) -> String {
    let Some((name, params)) = spec.split_once(':') else { return spec.to_string() };
    let params: Vec<String> = params
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if v.trim() == BLACK => format!("{}={value}", k.trim()),
            _ => pair.to_string(),
        })
        .collect();
    format!("{name}:{}", params.join(","))
}

/// Kindermans et al.'s network 2: a copy of `model` whose first weighted layer's bias
/// absorbs the constant input shift `shift`, so that `model2(x + shift) = model(x)` exactly
/// (up to rounding). See [`input_invariance`] for the layers supported; a zero-padded first
/// convolution is refused with [`CheckError::InvalidOption`] explaining why.
pub fn shifted_model(model: &Model, shift: f64) -> CheckResult<Model> {
    try_shift(model, shift)?.map_err(|reason| CheckError::option("model", reason))
}

/// The shifted model, or why it cannot be built.
fn try_shift(model: &Model, shift: f64) -> CheckResult<Result<Model, String>> {
    let consumers = model.consumers();
    let mut value = ValueId::INPUT;
    let index = loop {
        let users = &consumers[value.0];
        let [node] = users.as_slice() else {
            return Ok(Err(format!(
                "the input feeds {} nodes; the check needs one path to the first weighted layer",
                users.len()
            )));
        };
        let layer = &model.nodes()[*node].layer;
        match layer {
            Layer::Linear(_) | Layer::Conv2d(_) => break *node,
            Layer::Flatten | Layer::Reshape { .. } | Layer::Identity | Layer::Dropout { .. } => {
                value = ValueId::of_node(*node);
            }
            other => {
                return Ok(Err(format!(
                    "the input reaches a '{}' layer before any weighted layer; a constant shift \
                     cannot be compensated there",
                    other.kind()
                )))
            }
        }
    };
    let node = &model.nodes()[index];
    let (weight, bias, reduce): (&Tensor, Option<&Tensor>, Vec<usize>) = match &node.layer {
        Layer::Linear(l) => (&l.weight, l.bias.as_ref(), vec![1]),
        Layer::Conv2d(c) => {
            let p = c.spec.padding;
            if p.top + p.bottom + p.left + p.right > 0 {
                return Ok(Err(format!(
                    "the first layer '{}' is a zero-padded convolution (padding {:?}): at the \
                     border the padded zeros are not shifted, so the correction would differ \
                     per output position and no bias can compensate it; input invariance is \
                     only defined here for unpadded first convolutions or dense layers",
                    node.name,
                    (p.top, p.bottom, p.left, p.right)
                )));
            }
            (&c.weight, c.bias.as_ref(), vec![1, 2, 3])
        }
        other => return Ok(Err(format!("unexpected first layer '{}'", other.kind()))),
    };
    let mut row_sums = weight.clone();
    for &axis in reduce.iter().rev() {
        row_sums = row_sums.sum(axis)?;
    }
    let old = match bias {
        Some(b) => b.clone(),
        None => row_sums.zeros_like()?,
    };
    let new_bias = (old - (row_sums * shift)?)?;
    let mut out = model.clone();
    let layer = match &node.layer {
        Layer::Linear(l) => {
            let mut l = l.clone();
            l.bias = Some(new_bias);
            Layer::Linear(l)
        }
        Layer::Conv2d(c) => {
            let mut c = c.clone();
            c.bias = Some(new_bias);
            Layer::Conv2d(c)
        }
        other => return Ok(Err(format!("unexpected first layer '{}'", other.kind()))),
    };
    out.replace_layer(index, layer)?;
    Ok(Ok(out.with_name(format!("{}-shifted({shift})", model.name()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_parameters_follow_the_shift() {
        assert_eq!(
            with_black("ig:baseline=constant,value=black", -1.0),
            "ig:baseline=constant,value=-1"
        );
        assert_eq!(
            with_black("ig:baseline=constant,value=black", 0.0),
            "ig:baseline=constant,value=0"
        );
        assert_eq!(with_black("gradient", -1.0), "gradient");
    }
}
