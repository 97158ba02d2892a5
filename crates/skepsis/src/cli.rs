//! Command-line syntax (clap derive). Values are parsed here; everything that needs I/O
//! happens in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// skepsis computes saliency maps (feature attributions) and puts every method through the
/// sanity checks of the literature, so you can see which explanations of YOUR model can be
/// trusted.
///
/// Start with `skepsis methods` to see the attribution methods, `skepsis train` to train a
/// model of the papers on your data, and `skepsis attribute` to compute a map.
#[derive(Debug, Parser)]
#[command(name = "skepsis", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Worker threads for CPU kernels (default: one per core; RAYON_NUM_THREADS also works).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The built-in benchmark: trains the papers' models on generated data, runs every sanity
    /// check on every method family and writes an HTML report (index.html) with JSON/CSV
    /// records and PNG figures.
    ///
    /// Example: skepsis run (quick profile, about 10 minutes on 2 cores);
    /// skepsis run --profile paper --out paper-report/
    Run(crate::commands::run::RunArgs),
    /// Render (again) the HTML report of a `skepsis run` output directory from its records.
    Report(crate::commands::run::ReportArgs),
    /// Time the workloads of the performance comparison with Captum/Quantus/PyTorch (see
    /// bench/README.md); writes the weights, inputs, outputs and timings into --out.
    Bench(crate::commands::bench::BenchArgs),
    /// Compute an attribution map for one input (or a batch) and write it as an image or
    /// an array.
    ///
    /// Example: skepsis attribute --model my-model/ --input digit.png --method "ig:steps=64"
    /// --out map.png
    Attribute(AttributeArgs),
    /// Train a built-in architecture (see `skepsis models`) on labelled images.
    ///
    /// Example: skepsis train --arch sc-cnn --data train.safetensors --out my-model/
    Train(TrainArgs),
    /// Generate the built-in data sets (no downloads) or draw a sample grid of one.
    #[command(subcommand)]
    Data(DataCommand),
    /// Run a sanity check on a model and data set; writes records (JSON + CSV) and prints
    /// a verdict table. Exit status 1 with --fail-on-verdict when a method fails.
    #[command(subcommand)]
    Check(crate::commands::check::CheckCommand),
    /// List the attribution methods with their parameters and papers.
    Methods,
    /// List the built-in architectures.
    Models,
    /// Convert a model from another framework into a skepsis model directory.
    ///
    /// Example: skepsis import onnx resnet.onnx --out resnet/
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Args)]
pub struct AttributeArgs {
    /// Model directory holding model.json and model.safetensors, or an .onnx file
    /// (imported on the fly, see `skepsis import onnx`).
    #[arg(long, value_name = "DIR|FILE.onnx")]
    pub model: PathBuf,
    /// Input: a PNG/JPEG image, a .safetensors file with an `images` tensor `[N,C,H,W]`, or a
    /// data set directory (`skepsis data generate`; its first --count test images).
    #[arg(long, value_name = "FILE|DIR")]
    pub input: PathBuf,
    /// With a data set directory as input: how many test images to explain.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub count: usize,
    /// Method specification, e.g. `gradient`, `ig:steps=64,baseline=zero`,
    /// `smoothgrad:samples=50,sigma=0.15` (see `skepsis methods`).
    #[arg(long, default_value = "gradient", value_name = "SPEC")]
    pub method: String,
    /// Class to explain: an index, or `predicted` for the model's own prediction.
    #[arg(long, default_value = "predicted", value_name = "N|predicted")]
    pub target: String,
    /// Output file: .png (heatmap), .npy or .safetensors (the raw map).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// PNG rendering: `magnitude` (sum of |map| over channels, inferno colormap) or
    /// `signed` (sum over channels, blue-white-red, 0 = white).
    #[arg(long, default_value = "magnitude", value_parser = ["magnitude", "signed"])]
    pub rendering: String,
    /// PNG pixel size of one map element.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub zoom: u32,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Architecture name (see `skepsis models`), e.g. sc-cnn.
    #[arg(long, value_name = "NAME")]
    pub arch: String,
    /// Training data: a data set directory (`skepsis data generate ...`; its train split is
    /// used, its test split reports held-out accuracy) or a .safetensors file with `images`
    /// `[N,C,H,W]` (float, already preprocessed) and `labels` `[N]` (integer class indices).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Output model directory (model.json, model.safetensors, train_report.json).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Hold out the first N images for validation (the Sanity Checks protocol holds out
    /// 5000 of MNIST's training images).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub holdout: usize,
    /// Maximum number of epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// Optimizer.
    #[arg(long, default_value = "adam", value_parser = ["adam", "sgd"])]
    pub optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Stop when training (and validation) accuracy reach this value.
    #[arg(long, value_name = "ACCURACY")]
    pub target_accuracy: Option<f64>,
    /// Seed for the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of classes (default: largest label + 1).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Overwrite an existing model directory.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a generated data set (dataset.json + data.safetensors) into a directory.
    ///
    /// Examples: skepsis data generate digits --out digits/;
    /// skepsis data generate smerf --setup 3.71 --scale 0.1 --out smerf-3.71/
    Generate(GenerateArgs),
    /// Draw a labelled sample grid of a data set directory, ground-truth regions outlined
    /// (primary green, secondary red).
    Show(ShowArgs),
    /// Convert MNIST or Fashion-MNIST IDX files (the four standard files, optionally .gz) into
    /// a data set directory, pixels scaled to [0, 1].
    ///
    /// Example: skepsis data import-mnist ~/mnist/ --out mnist/
    ImportMnist(ImportMnistArgs),
    /// Copy the first N training (and/or test) images of a data set directory into a new one.
    ///
    /// Example: skepsis data subset digits/ --train 1000 --out digits-1k/
    Subset(SubsetArgs),
}

#[derive(Debug, Args)]
pub struct ImportMnistArgs {
    /// Directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
    /// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz).
    pub dir: PathBuf,
    /// Output data set directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Class names: `mnist` (digits 0-9) or `fashion` (Fashion-MNIST).
    #[arg(long, default_value = "mnist", value_parser = ["mnist", "fashion"])]
    pub classes: String,
    /// Overwrite an existing data set in the directory.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SubsetArgs {
    /// Source data set directory.
    pub dir: PathBuf,
    /// Output data set directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Keep the first N training images (default: all).
    #[arg(long, value_name = "N")]
    pub train: Option<usize>,
    /// Keep the first N test images (default: all).
    #[arg(long, value_name = "N")]
    pub test: Option<usize>,
    /// Overwrite an existing data set in the directory.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Which data set: `digits` (synthetic MNIST stand-in), `smerf` (Kim et al. 2022 scenes),
    /// `block-mnist` (Shah et al. 2021, from synthetic digits).
    #[arg(value_parser = ["digits", "smerf", "block-mnist"])]
    pub kind: String,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// digits / block-mnist: training images.
    #[arg(long, default_value_t = 60_000)]
    pub train: usize,
    /// digits / block-mnist: test images.
    #[arg(long, default_value_t = 10_000)]
    pub test: usize,
    /// smerf: setup id (1.11, 2.11, 1.2, 3.71, 3.72, 3.73, 3.74).
    #[arg(long, default_value = "1.11")]
    pub setup: String,
    /// smerf: factor on the paper's per-bucket image counts (1 = faithful).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// smerf: `black`, `texture` (procedural, darkened x0.7) or a folder of images.
    #[arg(long, default_value = "black", value_name = "black|texture|DIR")]
    pub background: String,
    /// Overwrite an existing data set in the directory.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Data set directory.
    pub dir: PathBuf,
    /// Output PNG.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Which split to draw.
    #[arg(long, default_value = "train", value_parser = ["train", "test"])]
    pub split: String,
    /// Number of images (the first ones of the split).
    #[arg(long, default_value_t = 32)]
    pub count: usize,
    /// Overwrite the output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Convert an ONNX file (opsets 11 to 21; Conv, Gemm, MatMul, pooling, BatchNorm,
    /// activations, reshapes, Add and Concat) into model.json + model.safetensors. Layer
    /// names come from the ONNX graph (PyTorch module names for torch.onnx exports).
    /// Commands that take --model also accept the .onnx file directly.
    Onnx(ImportOnnxArgs),
}

#[derive(Debug, Args)]
pub struct ImportOnnxArgs {
    /// The ONNX file; external tensor data must lie in its folder.
    #[arg(value_name = "FILE.onnx")]
    pub file: PathBuf,
    /// Output model directory (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite model.json and model.safetensors in the output directory.
    #[arg(long)]
    pub force: bool,
}
