//! The workloads of the side-by-side comparison with PyTorch, Captum and Quantus (issue 10),
//! each run through the library calls the `skepsis` commands make, with the settings under
//! which the peer does the same work (`bench/peer.py` reads them from `skepsis.json`).

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use serde_json::{json, Value};
use skepsis_attr::{
    registry, Gradient, GradientSettings, Method, NoiseReduction, NoiseScale, NoiseTunnel,
    NoiseTunnelSettings, Target,
};
use skepsis_eval::checks::{
    self, CheckData, CheckOptions, LayerOrder, RandomizationMode, RandomizationOptions, RunControl,
    TargetChoice,
};
use skepsis_eval::Metric;
use skepsis_nn::train::{self, LabelledData, OptimizerConfig, Silent, TrainConfig};
use skepsis_nn::Model;

/// FLOP of one SC MNIST CNN forward pass per image (issue 10): conv1 2*28*28*32*25 = 1.25 M,
/// conv2 2*14*14*64*32*25 = 20.07 M, fc1 2*3136*1024 = 6.42 M, logits 2*1024*10 = 0.02 M;
/// ReLU and pooling are not counted.
const FORWARD_MFLOP: f64 = 27.8;
/// Forward plus input gradient per image (issue 10): every layer's input VJP costs what its
/// forward costs.
const GRADIENT_MFLOP: f64 = 55.5;
/// GradCAM at relu2 per image: the forward plus the input VJPs of logits and fc1 (6.42 M;
/// pool2's VJP is a scatter): 27.8 + 6.4.
const GRADCAM_MFLOP: f64 = 34.2;
/// One training step per image: forward, weight gradients (each costs its layer's forward)
/// and the input VJPs of every layer but conv1 (27.8 - 1.25): 27.8 + 27.8 + 26.5.
const TRAIN_MFLOP: f64 = 82.1;

/// SmoothGrad's noise standard deviation, absolute (the images lie in [0, 1], so this is
/// Smilkov et al.'s 15% of the value range); Captum's `stdevs`.
pub const SMOOTHGRAD_SIGMA: f64 = 0.15;
/// SmoothGrad's noisy copies per image (issue 10).
pub const SMOOTHGRAD_SAMPLES: usize = 50;
/// Integrated Gradients' steps in P1 (issue 10).
const IG_STEPS: usize = 64;
/// Integrated Gradients' steps inside Quantus' MPRT (Quantus' built-in Captum call uses 10).
const MPRT_IG_STEPS: usize = 10;
/// Model states of the SC CNN's cascading MPRT: the original and one per parametric layer
/// (logits, fc1, conv2, conv1).
const MPRT_STATES: f64 = 5.0;
/// Training images of P3 (MNIST's training split less its 5,000 validation images).
pub const TRAIN_IMAGES: usize = 55_000;
/// P3's mini-batch size (issue 10).
const TRAIN_BATCH: usize = 50;
/// P3's Adam learning rate (PyTorch's and skepsis' default).
const TRAIN_LR: f64 = 1e-3;
/// Images of the short training run that warms P3 up (10 steps).
const TRAIN_WARMUP_IMAGES: usize = 500;

/// The six P2 methods: skepsis spec and the per-image MFLOP of one explanation.
const MPRT_METHODS: [(&str, f64); 6] = [
    ("gradient", GRADIENT_MFLOP),
    ("ig:steps=10,rule=captum-trapezoid", MPRT_IG_STEPS as f64 * GRADIENT_MFLOP),
    ("guided-backprop", GRADIENT_MFLOP),
    ("gradient-x-input", GRADIENT_MFLOP),
    // Quantus calls Captum's LayerGradCam without `relu_attributions` and upsamples.
    ("gradcam:layer=relu2,relu=false", GRADCAM_MFLOP),
    ("smoothgrad:samples=50,sigma=0.15,scale=absolute", SMOOTHGRAD_SAMPLES as f64 * GRADIENT_MFLOP),
];

/// A workload of issue 10.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Forward,
    Gradient,
    IntegratedGradients,
    SmoothGrad,
    GuidedBackprop,
    GradCam,
    Mprt,
    MprtSsim,
    TrainEpoch,
}

impl Workload {
    /// Every workload, in the order of the table.
    pub const ALL: [Workload; 9] = [
        Workload::Forward,
        Workload::Gradient,
        Workload::IntegratedGradients,
        Workload::SmoothGrad,
        Workload::GuidedBackprop,
        Workload::GradCam,
        Workload::Mprt,
        Workload::MprtSsim,
        Workload::TrainEpoch,
    ];

    /// The name used on the command line, in the files and in the table.
    pub fn id(self) -> &'static str {
        match self {
            Workload::Forward => "p0-forward",
            Workload::Gradient => "p0-gradient",
            Workload::IntegratedGradients => "p1-ig",
            Workload::SmoothGrad => "p1b-smoothgrad",
            Workload::GuidedBackprop => "p1b-guided-backprop",
            Workload::GradCam => "p1b-gradcam",
            Workload::Mprt => "p2-mprt",
            Workload::MprtSsim => "p2-mprt-ssim",
            Workload::TrainEpoch => "p3-train-epoch",
        }
    }

    /// Parses a comma-separated list of ids (`all` for every workload).
    pub fn parse_list(list: &str) -> Result<Vec<Workload>> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                out.extend(Workload::ALL);
                continue;
            }
            let w = Workload::ALL.into_iter().find(|w| w.id() == name).with_context(|| {
                format!(
                    "unknown workload '{name}' (known: all, {})",
                    Workload::ALL.map(Workload::id).join(", ")
                )
            })?;
            out.push(w);
        }
        out.dedup();
        if out.is_empty() {
            bail!("--workloads is empty");
        }
        Ok(out)
    }

    /// What is computed, in words.
    pub fn what(self) -> &'static str {
        match self {
            Workload::Forward => "forward, batch 64",
            Workload::Gradient => "forward + input gradient, batch 64",
            Workload::IntegratedGradients => {
                "Integrated Gradients, 64 steps, trapezoid, zero baseline"
            }
            Workload::SmoothGrad => "SmoothGrad, 50 samples",
            Workload::GuidedBackprop => "Guided Backprop",
            Workload::GradCam => "GradCAM at relu2",
            Workload::Mprt => "cascading MPRT top-down, Spearman, 6 methods",
            Workload::MprtSsim => "Saliency MPRT with SSIM",
            Workload::TrainEpoch => "one training epoch, 55,000 images, Adam, batch 50",
        }
    }

    /// The settings, for `skepsis.json`: what skepsis runs and what the peer must run to do
    /// the same work.
    pub fn parameters(self) -> Value {
        match self {
            Workload::Forward => json!({}),
            Workload::Gradient | Workload::GuidedBackprop => json!({ "spec": self.spec() }),
            Workload::IntegratedGradients => json!({
                "spec": self.spec(), "steps": IG_STEPS, "captum_method": "riemann_trapezoid",
                "baseline": "zero",
            }),
            Workload::SmoothGrad => json!({
                "spec": self.spec(), "samples": SMOOTHGRAD_SAMPLES, "stdev": SMOOTHGRAD_SIGMA,
                "base": "gradient (signed; Captum Saliency with abs=False)",
                "equal_work_noise": "inputs.safetensors: smoothgrad_noise [S, N, 1, 28, 28]",
            }),
            Workload::GradCam => json!({
                "spec": self.spec(), "layer": "relu2", "relu_attributions": true,
                "upsample": false,
            }),
            Workload::Mprt => json!({
                "methods": MPRT_METHODS.map(|(s, _)| s), "metric": Metric::SpearmanAbs.name(),
                "mode": "cascading", "order": "top-down", "target": "label",
                "model_states": MPRT_STATES, "ig_steps": MPRT_IG_STEPS,
                "smoothgrad_samples": SMOOTHGRAD_SAMPLES, "smoothgrad_stdev": SMOOTHGRAD_SIGMA,
            }),
            Workload::MprtSsim => json!({
                "methods": ["gradient"], "metric": Metric::Ssim.name(), "mode": "cascading",
                "order": "top-down", "target": "label", "model_states": MPRT_STATES,
            }),
            Workload::TrainEpoch => json!({
                "images": TRAIN_IMAGES, "batch_size": TRAIN_BATCH, "optimizer": "adam",
                "lr": TRAIN_LR, "data": "uniform random images in [0, 1), uniform random labels",
                "timed": "the epoch's own time (train()'s final accuracy pass excluded)",
            }),
        }
    }

    /// The registry spec of the single-method workloads.
    fn spec(self) -> &'static str {
        match self {
            Workload::Gradient => "gradient",
            Workload::IntegratedGradients => "ig:steps=64,rule=captum-trapezoid,baseline=zero",
            // The seed is appended per run (see `run`).
            Workload::SmoothGrad => "smoothgrad:samples=50,sigma=0.15,scale=absolute",
            Workload::GuidedBackprop => "guided-backprop",
            Workload::GradCam => "gradcam:layer=relu2,upsample=false",
            _ => "",
        }
    }

    /// FLOP of one run on `images` images (the per-image counts; MPRT: five model
    /// states times every method's explanation; training: per-image step cost).
    pub fn flop(self, images: usize) -> f64 {
        let per_image_mflop = match self {
            Workload::Forward => FORWARD_MFLOP,
            Workload::Gradient | Workload::GuidedBackprop => GRADIENT_MFLOP,
            Workload::IntegratedGradients => IG_STEPS as f64 * GRADIENT_MFLOP,
            Workload::SmoothGrad => SMOOTHGRAD_SAMPLES as f64 * GRADIENT_MFLOP,
            Workload::GradCam => GRADCAM_MFLOP,
            Workload::Mprt => MPRT_STATES * MPRT_METHODS.iter().map(|(_, f)| f).sum::<f64>(),
            Workload::MprtSsim => MPRT_STATES * GRADIENT_MFLOP,
            Workload::TrainEpoch => return TRAIN_IMAGES as f64 * TRAIN_MFLOP * 1e6,
        };
        images as f64 * per_image_mflop * 1e6
    }

    /// Whether the workload leaves a map (or logits) for the equal-work check.
    pub fn has_output(self) -> bool {
        !matches!(self, Workload::Mprt | Workload::MprtSsim | Workload::TrainEpoch)
    }

    /// Timed runs for `requested`: at least [`SHORT_REPEATS`] for the single passes, whose
    /// 10-40 ms medians of three moved by a third with one slow run on a shared machine. The
    /// peer (`bench/peer.py`) reads the count from `skepsis.json` and runs as many.
    pub fn repeats(self, requested: usize) -> usize {
        let short = matches!(
            self,
            Workload::Forward | Workload::Gradient | Workload::GuidedBackprop | Workload::GradCam
        );
        if short {
            requested.max(SHORT_REPEATS)
        } else {
            requested
        }
    }
}

/// Fewest timed runs of a single-pass workload ([`Workload::repeats`]).
pub const SHORT_REPEATS: usize = 15;

/// Everything the workloads run on.
pub struct Setup {
    pub model: Model,
    /// `[N, 1, 28, 28]` in [0, 1).
    pub images: Tensor,
    /// The explained class of every image.
    pub targets: Vec<usize>,
    /// SmoothGrad's noise `[S, N, 1, 28, 28]` (standard deviation `SMOOTHGRAD_SIGMA`).
    pub noise: Tensor,
    /// P3's images and labels (drawn only when P3 runs).
    pub training: Option<(Tensor, Vec<usize>)>,
    pub seed: u64,
}

/// What one run leaves.
#[derive(Default)]
pub struct Output {
    /// The map (or logits) for the equal-work check.
    pub map: Option<Tensor>,
    /// What the peer's result is checked against structurally (MPRT, training).
    pub summary: Option<Value>,
    /// Seconds to count instead of the run's wall-clock time (P3: the epoch alone).
    pub seconds: Option<f64>,
}

/// Whether a run is the warm-up (it then produces the equal-work output) or timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    WarmUp,
    Timed,
}

impl Workload {
    /// One run of the workload.
    pub fn run(self, s: &Setup, phase: Phase) -> Result<Output> {
        let classes = Target::Classes(s.targets.clone());
        let map = |m: &dyn Method| -> Result<Output> {
            let a = m.attribute(&s.model, &s.images, &classes)?;
            Ok(Output { map: Some(a.map), ..Output::default() })
        };
        match self {
            Workload::Forward => {
                Ok(Output { map: Some(s.model.forward(&s.images)?), ..Output::default() })
            }
            Workload::SmoothGrad if phase == Phase::WarmUp => {
                // The equal-work output: the same noise as the peer's (`inputs.safetensors`).
                let settings = NoiseTunnelSettings {
                    reduction: NoiseReduction::SmoothGrad,
                    samples: SMOOTHGRAD_SAMPLES,
                    sigma: SMOOTHGRAD_SIGMA,
                    scale: NoiseScale::Absolute,
                    seed: s.seed,
                    ..NoiseTunnelSettings::default()
                };
                let base = Box::new(Gradient { settings: GradientSettings { batch_size: 256 } });
                let tunnel = NoiseTunnel::new(base, settings)?.with_noise(s.noise.clone())?;
                map(&tunnel)
            }
            Workload::SmoothGrad => {
                // Timed: the noise drawn by skepsis itself, as the command line does.
                map(registry::parse(&format!("{},seed={}", self.spec(), s.seed))?.as_ref())
            }
            Workload::Gradient
            | Workload::IntegratedGradients
            | Workload::GuidedBackprop
            | Workload::GradCam => map(registry::parse(self.spec())?.as_ref()),
            Workload::Mprt => {
                mprt(s, &MPRT_METHODS.map(|(spec, _)| spec.to_string()), Metric::SpearmanAbs)
            }
            Workload::MprtSsim => mprt(s, &["gradient".to_string()], Metric::Ssim),
            Workload::TrainEpoch => train_epoch(s, phase),
        }
    }
}

/// Mixed into the seed of P2's randomized weights ([`mprt`]).
const MPRT_SEED_MIX: u64 = 0x6d70_7274;

/// Cascading top-down model randomization of `methods` on the setup's images, explaining
/// the given classes (Quantus explains `y_batch` on every model state).
fn mprt(s: &Setup, methods: &[String], metric: Metric) -> Result<Output> {
    let n = s.targets.len();
    let data = CheckData { images: s.images.clone(), labels: Some(s.targets.clone()) };
    let options = RandomizationOptions {
        common: CheckOptions {
            // Not the model's seed: the bench model is freshly initialized from `s.seed`, and
            // re-drawing its layers from the same seed would give the very same weights.
            seed: s.seed ^ MPRT_SEED_MIX,
            images: n,
            metrics: vec![metric],
            batch_size: None,
            ..CheckOptions::default()
        },
        mode: RandomizationMode::Cascading,
        order: LayerOrder::TopDown,
        target: TargetChoice::Label,
        ..RandomizationOptions::default()
    };
    let report = checks::model_randomization(
        &s.model,
        &data,
        methods,
        &options,
        &RunControl::in_memory(),
        &mut Silent,
    )?;
    let means: Vec<Value> = report
        .summaries
        .iter()
        .map(|m| json!({ "method": m.method, "step": m.step, "metric": m.metric, "mean": m.mean }))
        .collect();
    let summary = json!({
        "model_states": report.steps.len(),
        "steps": report.steps,
        "methods": report.methods.iter().filter(|m| !m.baseline).map(|m| &m.label).collect::<Vec<_>>(),
        "baselines": report.methods.iter().filter(|m| m.baseline).map(|m| &m.label).collect::<Vec<_>>(),
        "images": n,
        "metric": metric.name(),
        "records": report.records.len(),
        "means": means,
    });
    Ok(Output { summary: Some(summary), ..Output::default() })
}

/// One epoch of Adam (batch 50) on P3's images; the warm-up trains on the first
/// `TRAIN_WARMUP_IMAGES` only.
fn train_epoch(s: &Setup, phase: Phase) -> Result<Output> {
    let (images, labels) = s.training.as_ref().context("P3's training data was not drawn")?;
    let n =
        if phase == Phase::WarmUp { TRAIN_WARMUP_IMAGES.min(labels.len()) } else { labels.len() };
    let images = images.narrow(0, 0, n)?;
    let config = TrainConfig {
        optimizer: OptimizerConfig::adam(TRAIN_LR),
        batch_size: TRAIN_BATCH,
        max_epochs: 1,
        target_accuracy: None,
        seed: s.seed,
    };
    let data = LabelledData { images: &images, labels: &labels[..n] };
    let (_, report) = train::train(&s.model, data, None, &config, &mut Silent)?;
    let epoch = report.epochs.first().context("training ran no epoch")?;
    let summary = json!({
        "images": n,
        "steps": n.div_ceil(TRAIN_BATCH),
        "train_loss": epoch.train_loss,
        "train_accuracy": epoch.train_accuracy,
    });
    Ok(Output { summary: Some(summary), seconds: Some(epoch.seconds), map: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The single passes (one forward and at most one backward per image) run at least
    /// `SHORT_REPEATS` times, the others as asked; more runs than the floor are kept.
    #[test]
    fn single_passes_run_at_least_short_repeats() {
        let short = ["p0-forward", "p0-gradient", "p1b-guided-backprop", "p1b-gradcam"];
        for w in Workload::ALL {
            let expected = if short.contains(&w.id()) { SHORT_REPEATS } else { 1 };
            assert_eq!(w.repeats(1), expected, "{}", w.id());
            assert_eq!(w.repeats(40), 40);
        }
    }
}
