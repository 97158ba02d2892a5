//! Settings of a SMERF run (Kim, Plumb & Talwalkar, "Sanity Simulations for Saliency
//! Methods", ICML 2022): data, training profile, methods, metric options and the pass rule.

use serde::{Deserialize, Serialize};
use skepsis_data::{Background, SmerfSetup};
use skepsis_nn::zoo::Architecture;

use super::error::{SmerfError, SmerfResult};
use crate::ground_truth::{ChannelReduction, FocusOptions};

/// One attribution method of a run: a label for the tables and a registry spec
/// (`skepsis_attr::registry::parse`). A `deepshap` spec gets the setup's training images as
/// its reference pool (SMERF: 1000 training images as the DeepSHAP background).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodEntry {
    /// Name printed in tables and records.
    pub label: String,
    /// Registry spec, e.g. `integrated-gradients:steps=64,baseline=zero`.
    pub spec: String,
}

impl MethodEntry {
    /// An entry with the given label and spec.
    pub fn new(label: impl Into<String>, spec: impl Into<String>) -> Self {
        MethodEntry { label: label.into(), spec: spec.into() }
    }
}

/// The methods SMERF evaluates (`smerf/explanations.py`), with the paper's parameters, then
/// CGI (Gupta & Arora 2019) and the two control baselines:
///
/// | label | spec |
/// |---|---|
/// | Gradient | `gradient` (SMERF post-processes with `abs`; the max-|.| reduction does) |
/// | SmoothGrad | `smoothgrad-sq:samples=64,sigma=0.1,scale=absolute` (iNNvestigate `augment_by_n=64, noise_scale=0.1, postprocess="square"`: mean of squared gradients) |
/// | DeconvNet | `deconvnet` |
/// | Guided Backprop | `guided-backprop` |
/// | DeepTaylor | `deep-taylor:low=0,high=1` (bounded) |
/// | Gradient x Input | `gradient-x-input` |
/// | Integrated Gradients | `integrated-gradients:steps=64,baseline=zero,rule=innvestigate` |
/// | LRP-z | `lrp:rule=epsilon,epsilon=1e-7` (the z rule: epsilon only as a stabilizer) |
/// | LRP-epsilon | `lrp:rule=epsilon,epsilon=1` |
/// | LRP preset A flat | `lrp:composite=preset-a-flat,epsilon=1` |
/// | LRP preset B flat | `lrp:composite=preset-b-flat,epsilon=1` |
/// | DeepLIFT RevealCancel | `deeplift:rule=reveal-cancel,baseline=zero` |
/// | DeepLIFT Rescale | `deeplift:rule=rescale,baseline=zero` |
/// | GradCAM | `gradcam` (last 4-D layer = last conv ReLU, upsampled bilinearly) |
/// | DeepSHAP | `deepshap:references=1000` (1000 training images) |
/// | CGI | `cgi` |
/// | Random | `random` (uniform map) |
/// | Edge | `sobel` |
pub fn smerf_methods() -> Vec<MethodEntry> {
    [
        ("Gradient", "gradient"),
        ("SmoothGrad", "smoothgrad-sq:samples=64,sigma=0.1,scale=absolute"),
        ("DeconvNet", "deconvnet"),
        ("Guided Backprop", "guided-backprop"),
        ("DeepTaylor", "deep-taylor:low=0,high=1"),
        ("Gradient x Input", "gradient-x-input"),
        ("Integrated Gradients", "integrated-gradients:steps=64,baseline=zero,rule=innvestigate"),
        ("LRP-z", "lrp:rule=epsilon,epsilon=1e-7"),
        ("LRP-epsilon", "lrp:rule=epsilon,epsilon=1"),
        ("LRP preset A flat", "lrp:composite=preset-a-flat,epsilon=1"),
        ("LRP preset B flat", "lrp:composite=preset-b-flat,epsilon=1"),
        ("DeepLIFT RevealCancel", "deeplift:rule=reveal-cancel,baseline=zero"),
        ("DeepLIFT Rescale", "deeplift:rule=rescale,baseline=zero"),
        ("GradCAM", "gradcam"),
        ("DeepSHAP", "deepshap:references=1000"),
        ("CGI", "cgi"),
        ("Random", "random"),
        ("Edge", "sobel"),
    ]
    .into_iter()
    .map(|(label, spec)| MethodEntry::new(label, spec))
    .collect()
}

/// Learning-rate and epoch defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainingProfile {
    /// The paper's settings: Adam, batch 128, lr 1e-4 (simple setups) or 1e-5 (complex),
    /// at most 50 (simple) or 150 (complex) epochs. Default.
    #[default]
    Paper,
    /// For scaled-down runs: Adam, batch 128, lr 1e-3 for every setup, at most 30 epochs.
    /// At `scale` 0.05 the simple setups reach their threshold in a handful of epochs with
    /// this rate, where lr 1e-4 is still near chance after 8 epochs (measured on 1.11).
    Quick,
}

impl TrainingProfile {
    /// The profile's learning rate for `setup`.
    pub fn learning_rate(self, setup: SmerfSetup) -> f64 {
        match (self, setup.is_simple()) {
            (TrainingProfile::Paper, true) => 1e-4,
            (TrainingProfile::Paper, false) => 1e-5,
            (TrainingProfile::Quick, _) => 1e-3,
        }
    }

    /// The profile's epoch limit for `setup`.
    pub fn max_epochs(self, setup: SmerfSetup) -> usize {
        match (self, setup.is_simple()) {
            (TrainingProfile::Paper, true) => 50,
            (TrainingProfile::Paper, false) => 150,
            (TrainingProfile::Quick, _) => 30,
        }
    }
}

/// How models are trained and accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingOptions {
    /// Learning-rate and epoch defaults.
    pub profile: TrainingProfile,
    /// Learning rate override (`None`: the profile's).
    pub learning_rate: Option<f64>,
    /// Epoch limit override (`None`: the profile's).
    pub max_epochs: Option<usize>,
    /// Mini-batch size (paper: 128).
    pub batch_size: usize,
    /// Training attempts with fresh seeds before the setup is reported as not trained
    /// (paper: up to 20).
    pub attempts: usize,
    /// Accuracy threshold override (`None`: [`accuracy_threshold`]).
    pub threshold: Option<f64>,
}

impl Default for TrainingOptions {
    fn default() -> Self {
        TrainingOptions {
            profile: TrainingProfile::Paper,
            learning_rate: None,
            max_epochs: None,
            batch_size: 128,
            attempts: 20,
            threshold: None,
        }
    }
}

impl TrainingOptions {
    /// The learning rate used for `setup`.
    pub fn learning_rate_for(&self, setup: SmerfSetup) -> f64 {
        self.learning_rate.unwrap_or_else(|| self.profile.learning_rate(setup))
    }

    /// The epoch limit used for `setup`.
    pub fn max_epochs_for(&self, setup: SmerfSetup) -> usize {
        self.max_epochs.unwrap_or_else(|| self.profile.max_epochs(setup))
    }

    /// The accuracy threshold used for `setup` on `background`.
    pub fn threshold_for(&self, setup: SmerfSetup, background: &Background) -> f64 {
        self.threshold.unwrap_or_else(|| accuracy_threshold(setup, background))
    }
}

/// The accuracy that train and test accuracy must both reach before a model is scored
/// (Kim et al. 2022): 0.98 for simple setups and 0.95 for complex ones on black backgrounds;
/// 0.90 (simple) and 0.95 (complex) on natural backgrounds (texture or image folder).
pub fn accuracy_threshold(setup: SmerfSetup, background: &Background) -> f64 {
    match (setup.is_simple(), background) {
        (true, Background::Black) => 0.98,
        (true, _) => 0.90,
        (false, _) => 0.95,
    }
}

/// The architecture of a setup: TextBoxCNN for simple setups, TextBoxCNN_adv for complex
/// ones (Kim et al. 2022).
pub fn architecture(setup: SmerfSetup) -> Architecture {
    if setup.is_simple() {
        Architecture::TextboxCnn
    } else {
        Architecture::TextboxCnnAdv
    }
}

/// Which class each map explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExplainTarget {
    /// The predicted class (iNNvestigate's default `max_activation`, used by SMERF). Default.
    #[default]
    Predicted,
    /// The true label.
    Label,
}

/// How many pixels the IoU keeps (Kim et al. 2022, `get_plain_iou`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IouKeep {
    /// As many pixels as the primary region has, for both regions (SMERF `plain_single`);
    /// images without a primary region keep as many as the scored region has. Default.
    #[default]
    PrimaryArea,
    /// As many pixels as the scored region has (SMERF `plain`).
    RegionArea,
}

/// Metric options shared by every setup.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoringOptions {
    /// Blur before AFL, MAFL and IoU (SMERF: 7x7 mean filter, reflect-101 boundary; a
    /// `blur_size` of 1 scores the unblurred map).
    pub focus: FocusOptions,
    /// `[C,H,W]` -> `[H,W]` reduction of the raw attribution (default `max_c |a_c|`).
    pub reduction: ChannelReduction,
    /// Pixels kept by the IoU threshold.
    pub iou_keep: IouKeep,
}

/// Which aggregate over buckets the AFL threshold of [`PassRule`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BucketAggregate {
    /// The average over buckets of the per-bucket mean. Default.
    #[default]
    Average,
    /// The minimum over buckets of the per-bucket mean (worst bucket).
    Minimum,
}

/// When a method passes a setup (Kim et al. 2022): its primary focus must exceed its
/// secondary focus, and its primary AFL must reach the correctness line the paper draws at
/// 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PassRule {
    /// Primary AFL needed (paper: 0.5).
    pub afl_threshold: f64,
    /// Which aggregate over buckets of the primary AFL must reach `afl_threshold`.
    pub aggregate: BucketAggregate,
    /// Require, in every bucket that has both regions, mean primary AFL > mean secondary AFL.
    pub primary_above_secondary: bool,
}

impl Default for PassRule {
    fn default() -> Self {
        PassRule {
            afl_threshold: 0.5,
            aggregate: BucketAggregate::Average,
            primary_above_secondary: true,
        }
    }
}

impl PassRule {
    /// The rule in words, as printed with every verdict.
    pub fn statement(&self) -> String {
        let aggregate = match self.aggregate {
            BucketAggregate::Average => "the average over buckets",
            BucketAggregate::Minimum => "the minimum over buckets",
        };
        let mut s = String::from("a method passes a setup iff ");
        if self.primary_above_secondary {
            s.push_str(
                "in every bucket with both regions its mean primary AFL exceeds its mean \
                 secondary AFL, and ",
            );
        }
        s.push_str(&format!(
            "{aggregate} of its mean primary AFL is >= {} (Kim et al. 2022 draw the \
             correctness line at 0.5); setups whose model missed the accuracy threshold are \
             not scored",
            self.afl_threshold
        ));
        s
    }
}

/// Everything a SMERF run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmerfRunConfig {
    /// The setups to run, in order.
    pub setups: Vec<SmerfSetup>,
    /// Background of every scene.
    pub background: Background,
    /// Factor on the paper's per-bucket image counts (1.0 = faithful).
    pub scale: f64,
    /// Seed of the data, the model initializations, the shuffling and the image choice.
    pub seed: u64,
    /// Training and acceptance.
    pub training: TrainingOptions,
    /// Test images scored per bucket (paper: 20), chosen with a seeded draw.
    pub images_per_bucket: usize,
    /// The methods, in table order.
    pub methods: Vec<MethodEntry>,
    /// Metric options.
    pub scoring: ScoringOptions,
    /// Class each map explains.
    pub target: ExplainTarget,
    /// Pass rule of the verdicts.
    pub pass_rule: PassRule,
    /// Example images per setup kept for figures (one per bucket; 0: none).
    #[serde(default)]
    pub examples: usize,
}

impl SmerfRunConfig {
    /// The faithful configuration for `setups`: black background, paper counts and training,
    /// 20 images per bucket, every SMERF method, SMERF's metric settings, seed 0.
    pub fn paper(setups: Vec<SmerfSetup>) -> Self {
        SmerfRunConfig {
            setups,
            background: Background::Black,
            scale: 1.0,
            seed: 0,
            training: TrainingOptions::default(),
            images_per_bucket: 20,
            methods: smerf_methods(),
            scoring: ScoringOptions::default(),
            target: ExplainTarget::Predicted,
            pass_rule: PassRule::default(),
            examples: 2,
        }
    }

    /// Checks every option without doing any work (method specs are parsed).
    pub fn validate(&self) -> SmerfResult<()> {
        if self.setups.is_empty() {
            return Err(SmerfError::option("setup", "no setup given"));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(SmerfError::option("scale", format!("must be > 0, got {}", self.scale)));
        }
        let t = &self.training;
        if t.attempts == 0 || t.batch_size == 0 || t.max_epochs == Some(0) {
            return Err(SmerfError::option(
                "training",
                "attempts, batch size and epochs must be >= 1",
            ));
        }
        if let Some(lr) = t.learning_rate {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(SmerfError::option("lr", format!("must be > 0, got {lr}")));
            }
        }
        if let Some(th) = t.threshold {
            if !(0.0..=1.0).contains(&th) {
                return Err(SmerfError::option(
                    "threshold",
                    format!("must be in [0, 1], got {th}"),
                ));
            }
        }
        if self.images_per_bucket == 0 {
            return Err(SmerfError::option("images-per-bucket", "must be >= 1"));
        }
        if self.methods.is_empty() {
            return Err(SmerfError::option("methods", "no method given"));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if self.methods[..i].iter().any(|o| o.label == m.label) {
                return Err(SmerfError::option(
                    "methods",
                    format!("label `{}` given twice", m.label),
                ));
            }
            skepsis_attr::registry::parse(&m.spec).map_err(|e| SmerfError::method(&m.label, e))?;
        }
        let f = &self.scoring.focus;
        if f.blur_size == 0 || f.blur_size % 2 == 0 {
            return Err(SmerfError::option(
                "blur",
                format!("must be odd and >= 1, got {}", f.blur_size),
            ));
        }
        if !(0.0..=1.0).contains(&self.pass_rule.afl_threshold) {
            return Err(SmerfError::option("afl-threshold", "must be in [0, 1]"));
        }
        Ok(())
    }
}
