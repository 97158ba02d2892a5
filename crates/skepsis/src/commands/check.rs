//! `skepsis check ...`: the sanity checks of skepsis-eval on a model directory and a data set
//! directory, writing records (JSON + CSV) and printing a verdict table.
//!
//! Exit codes: 0 the check ran (whatever the verdicts); 1 with `--fail-on-verdict` when a
//! method (not a control baseline) fails its rule; 2 an error (bad arguments, unreadable
//! files, failed computation), printed as one `skepsis: ...` line.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use skepsis_data::read_dataset;
use skepsis_eval::checks::{
    self, split_method_list, CheckData, CheckOptions, CheckReport, DataRandomizationOptions,
    InputInvarianceOptions, LayerOrder, MprtVariant, RandomLabelModel, RandomLogitOptions,
    RandomizationMode, RandomizationOptions, Rank1Options, RunControl, TargetChoice,
    TRAIN_REPORT_JSON,
};
use skepsis_eval::Metric;
use skepsis_nn::train::{Console, OptimizerConfig, Progress, TrainConfig, TrainReport};
use skepsis_nn::Model;

/// The checks.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Model parameter randomization (Adebayo et al. 2018; sMPRT / eMPRT of Hedström et al.
    /// 2023): re-initialize layers and compare each method's maps with the trained model's.
    ///
    /// Example: skepsis check randomization --model m/ --data digits/ --methods
    /// gradient,guided-backprop --mode cascading --order top-down --out checks/mprt
    Randomization(RandomizationArgs),
    /// Data randomization (Adebayo et al. 2018): train the same architecture on permuted
    /// labels, refuse unless it memorized them, then compare maps on the same test images.
    DataRandomization(DataRandomizationArgs),
    /// Input invariance (Kindermans et al. 2017): a copy of the model with the first layer's
    /// bias compensating a constant input shift must get the same maps on shifted inputs.
    /// Write `value=black` for a reference that moves with the input, e.g.
    /// `ig:baseline=constant,value=black`.
    InputInvariance(InputInvarianceArgs),
    /// Random logit (Sixt et al. 2020): the map for the predicted class must differ from the
    /// map for a random other class.
    RandomLogit(RandomLogitArgs),
    /// Rank-1 convergence (Sixt et al. 2020): inject random relevance at a layer and measure
    /// whether the method's rules collapse it to one direction on the way down.
    Rank1(Rank1Args),
    Smerf(crate::commands::smerf::SmerfArgs),
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Model directory (model.json + model.safetensors).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Data set directory (`skepsis data generate ...`): the check explains the first
    /// --images test images.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Comma-separated method specs (see `skepsis methods`); parameters may follow a spec:
    /// `gradient,ig:steps=32,rule=left,guided-backprop`. The random-map and Sobel baselines
    /// are always added.
    #[arg(long, default_value = "gradient", value_name = "LIST")]
    pub methods: String,
    /// Number of test images explained.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub images: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per attribution call (default: all images of a step at once).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Output directory for report.json, records.csv, summary.csv, verdicts.csv and steps/.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Continue an interrupted run from the step records in --out.
    #[arg(long)]
    pub resume: bool,
    /// Replace existing output in --out.
    #[arg(long)]
    pub force: bool,
    /// Exit with status 1 when a method (not a baseline) fails its rule.
    #[arg(long)]
    pub fail_on_verdict: bool,
    /// Keep the maps of the first N images of every step in --out/examples (for the report's
    /// figures; `skepsis report`).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub examples: usize,
    /// Stop after computing N new steps (resume later with --resume).
    #[arg(long, value_name = "N", hide = true)]
    pub max_steps: Option<usize>,
}

#[derive(Debug, Args)]
pub struct SimilarityArgs {
    /// Comma-separated metrics: spearman, spearman-abs, spearman-signed, pearson, pearson-abs,
    /// cosine, mse, ssim, ssim-sc-exact, hog, topk. The first decides the verdict.
    #[arg(long, default_value = "spearman-abs,ssim", value_name = "LIST")]
    pub metrics: String,
    /// Explained class: predicted (re-chosen by every model), predicted-by-original, label.
    #[arg(
        long,
        default_value = "predicted",
        value_parser = ["predicted", "predicted-by-original", "label"]
    )]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RandomizationArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
    /// cascading (layers 1..k randomized at step k) or independent (only layer k).
    #[arg(long, default_value = "cascading", value_parser = ["cascading", "independent"])]
    pub mode: String,
    /// top-down (logits first, Adebayo et al.) or bottom-up (Hedström et al.).
    #[arg(long, default_value = "top-down", value_parser = ["top-down", "bottom-up"])]
    pub order: String,
    /// standard, smooth (sMPRT) or efficient (eMPRT: original vs fully randomized only).
    #[arg(long, default_value = "standard", value_parser = ["standard", "smooth", "efficient"])]
    pub variant: String,
    /// sMPRT: noisy copies per image.
    #[arg(long, default_value_t = 50)]
    pub samples: usize,
    /// sMPRT: noise std as a fraction of each image's value range.
    #[arg(long, default_value_t = 0.1)]
    pub sigma: f64,
    /// Comma-separated layers to randomize (default: every layer with parameters).
    #[arg(long, value_name = "LIST")]
    pub layers: Option<String>,
}

#[derive(Debug, Args)]
pub struct DataRandomizationArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
    /// Epochs of the random-label model (default: the model's train_report.json, else 10).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate (Adam unless --optimizer sgd; default: the model's training settings).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimizer (default: the model's training settings, else adam).
    #[arg(long, value_parser = ["adam", "sgd"])]
    pub optimizer: Option<String>,
    /// Mini-batch size of training (default: the model's training settings).
    #[arg(long, value_name = "N")]
    pub train_batch_size: Option<usize>,
    /// Smallest training accuracy on the permuted labels for the check to compare maps.
    #[arg(long, default_value_t = 0.9)]
    pub fit_threshold: f64,
    /// Use this random-label model directory instead of training one.
    #[arg(long, value_name = "DIR")]
    pub random_model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InputInvarianceArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The constant shift m (network 2 sees x + m).
    #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
    pub shift: f64,
    /// The black image's value for the original network (`value=black` in specs).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub black: f64,
    /// Absolute tolerance on map differences.
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f64,
    /// Run in float32 instead of float64.
    #[arg(long)]
    pub float32: bool,
}

#[derive(Debug, Args)]
pub struct RandomLogitArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
}

#[derive(Debug, Args)]
pub struct Rank1Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Node at whose output relevance is injected (default: the second-to-last weighted layer).
    #[arg(long, value_name = "NODE")]
    pub layer: Option<String>,
    /// Random relevance tensors per image.
    #[arg(long, default_value_t = 5)]
    pub vectors: usize,
}

pub fn run(command: CheckCommand) -> Result<()> {
    let (report, fail_on_verdict) = match command {
        CheckCommand::Randomization(a) => (randomization(&a)?, a.common.fail_on_verdict),
        CheckCommand::DataRandomization(a) => (data_randomization(&a)?, a.common.fail_on_verdict),
        CheckCommand::InputInvariance(a) => (input_invariance(&a)?, a.common.fail_on_verdict),
        CheckCommand::RandomLogit(a) => (random_logit(&a)?, a.common.fail_on_verdict),
        CheckCommand::Rank1(a) => (rank1(&a)?, a.common.fail_on_verdict),
        CheckCommand::Smerf(a) => return crate::commands::smerf::run(a),
    };
    print!("{}", checks::verdict_table(&report));
    if !report.complete {
        eprintln!("stopped early; continue with --resume");
    }
    if fail_on_verdict && report.any_method_failed() {
        // The records are written; the exit status carries the verdict (documented: 1).
        std::process::exit(1);
    }
    Ok(())
}

fn methods(common: &CommonArgs) -> Result<Vec<String>> {
    let list = split_method_list(&common.methods);
    if list.is_empty() {
        bail!("--methods is empty");
    }
    for spec in &list {
        skepsis_attr::registry::parse(spec).with_context(|| format!("--methods '{spec}'"))?;
    }
    Ok(list)
}

fn metrics(args: &SimilarityArgs) -> Result<Vec<Metric>> {
    let list: Vec<Metric> = args
        .metrics
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Metric::parse)
        .collect::<std::result::Result<_, _>>()
        .context("--metrics")?;
    if list.is_empty() {
        bail!("--metrics is empty");
    }
    Ok(list)
}

fn options(common: &CommonArgs, similarity: &SimilarityArgs) -> Result<CheckOptions> {
    if common.images == 0 || common.batch_size == Some(0) {
        bail!("--images and --batch-size must be at least 1");
    }
    Ok(CheckOptions {
        seed: common.seed,
        images: common.images,
        metrics: metrics(similarity)?,
        batch_size: common.batch_size,
        examples: common.examples,
        ..CheckOptions::default()
    })
}

fn control(common: &CommonArgs) -> RunControl {
    RunControl {
        out: Some(common.out.clone()),
        resume: common.resume,
        force: common.force,
        max_steps: common.max_steps,
    }
}

fn test_data(dir: &Path) -> Result<CheckData> {
    let stored = read_dataset(dir)?;
    if stored.splits.test.is_empty() {
        bail!("{}: the data set has no test images", dir.display());
    }
    Ok(CheckData::from_dataset(&stored.splits.test))
}

/// The signature the checks that explain a data set's test images share.
type TestImagesCheck<O> = fn(
    &Model,
    &CheckData,
    &[String],
    &O,
    &RunControl,
    &mut dyn Progress,
) -> skepsis_eval::checks::CheckResult<CheckReport>;

/// Loads `--model` and the test images of `--data`, then runs `check` with progress on the
/// console and the output options of `common`.
fn on_test_data<O>(
    common: &CommonArgs,
    methods: &[String],
    options: &O,
    check: TestImagesCheck<O>,
) -> Result<CheckReport> {
    let model = super::load_model(&common.model)?;
    let data = test_data(&common.data)?;
    Ok(check(&model, &data, methods, options, &control(common), &mut Console::new())?)
}

fn target(s: &str) -> Result<TargetChoice> {
    Ok(TargetChoice::parse(s)?)
}

fn randomization(a: &RandomizationArgs) -> Result<CheckReport> {
    let methods = methods(&a.common)?;
    let variant = match a.variant.as_str() {
        "smooth" => MprtVariant::Smooth { samples: a.samples, sigma: a.sigma },
        "efficient" => MprtVariant::Efficient,
        _ => MprtVariant::Standard,
    };
    let options = RandomizationOptions {
        common: options(&a.common, &a.similarity)?,
        mode: if a.mode == "independent" {
            RandomizationMode::Independent
        } else {
            RandomizationMode::Cascading
        },
        order: if a.order == "bottom-up" { LayerOrder::BottomUp } else { LayerOrder::TopDown },
        target: target(&a.similarity.target)?,
        variant,
        layers: a.layers.as_ref().map(|l| split_method_list(l)),
        ..RandomizationOptions::default()
    };
    on_test_data(&a.common, &methods, &options, checks::model_randomization)
}

fn data_randomization(a: &DataRandomizationArgs) -> Result<CheckReport> {
    let methods = methods(&a.common)?;
    let model = super::load_model(&a.common.model)?;
    let report_path = a.common.model.join(TRAIN_REPORT_JSON);
    let mut train = match std::fs::read_to_string(&report_path) {
        Ok(text) => {
            serde_json::from_str::<TrainReport>(&text)
                .with_context(|| format!("{}: unreadable training report", report_path.display()))?
                .config
        }
        Err(_) => TrainConfig::default(),
    };
    let lr = a.lr.unwrap_or(match train.optimizer {
        OptimizerConfig::Adam { lr, .. } | OptimizerConfig::Sgd { lr, .. } => lr,
    });
    match (a.optimizer.as_deref(), &mut train.optimizer) {
        (Some("sgd"), _) => {
            train.optimizer = OptimizerConfig::Sgd { lr, momentum: 0.9, weight_decay: 0.0 }
        }
        (Some(_), _) => train.optimizer = OptimizerConfig::adam(lr),
        (None, OptimizerConfig::Adam { lr: l, .. } | OptimizerConfig::Sgd { lr: l, .. }) => *l = lr,
    }
    train.optimizer.validate()?;
    if let Some(e) = a.epochs {
        train.max_epochs = e;
    }
    if let Some(b) = a.train_batch_size {
        train.batch_size = b;
    }
    train.seed = a.common.seed;
    train.target_accuracy = None;
    let options = DataRandomizationOptions {
        common: options(&a.common, &a.similarity)?,
        target: target(&a.similarity.target)?,
        train,
        fit_threshold: a.fit_threshold,
        rule: None,
    };
    let stored = read_dataset(&a.common.data)?;
    if stored.splits.train.is_empty() || stored.splits.test.is_empty() {
        bail!("{}: data randomization needs a train and a test split", a.common.data.display());
    }
    let source = match &a.random_model {
        Some(dir) => RandomLabelModel::Given(Box::new(super::load_model(dir)?)),
        None => RandomLabelModel::Train,
    };
    Ok(checks::data_randomization(
        &model,
        &stored.splits.train,
        &CheckData::from_dataset(&stored.splits.test),
        &methods,
        &options,
        source,
        &control(&a.common),
        &mut Console::new(),
    )?)
}

fn input_invariance(a: &InputInvarianceArgs) -> Result<CheckReport> {
    let methods = methods_with_black(&a.common)?;
    let options = InputInvarianceOptions {
        seed: a.common.seed,
        images: a.common.images,
        batch_size: a.common.batch_size,
        shift: a.shift,
        black: a.black,
        atol: a.atol,
        float64: !a.float32,
        examples: a.common.examples,
        ..InputInvarianceOptions::default()
    };
    on_test_data(&a.common, &methods, &options, checks::input_invariance)
}

/// Method specs where `value=black` stands for the shifted black image (validated with 0).
fn methods_with_black(common: &CommonArgs) -> Result<Vec<String>> {
    let list = split_method_list(&common.methods);
    if list.is_empty() {
        bail!("--methods is empty");
    }
    for spec in &list {
        let probe = spec.replace(&format!("={}", checks::BLACK), "=0");
        skepsis_attr::registry::parse(&probe).with_context(|| format!("--methods '{spec}'"))?;
    }
    Ok(list)
}

fn random_logit(a: &RandomLogitArgs) -> Result<CheckReport> {
    let methods = methods(&a.common)?;
    let options = RandomLogitOptions {
        common: options(&a.common, &a.similarity)?,
        target: target(&a.similarity.target)?,
        rule: None,
    };
    on_test_data(&a.common, &methods, &options, checks::random_logit)
}

fn rank1(a: &Rank1Args) -> Result<CheckReport> {
    let methods = methods(&a.common)?;
    let options = Rank1Options {
        seed: a.common.seed,
        images: a.common.images,
        layer: a.layer.clone(),
        vectors: a.vectors,
        rule: None,
    };
    on_test_data(&a.common, &methods, &options, checks::rank1_convergence)
}
