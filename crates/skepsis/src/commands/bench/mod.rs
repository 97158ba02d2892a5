//! `skepsis bench`: the skepsis half of the side-by-side comparison with PyTorch, Captum and
//! Quantus (issue 10; `bench/run.sh` runs both halves and prints the table).
//!
//! It builds the SC MNIST CNN from the zoo, writes its weights and the seeded inputs for the
//! peer, measures the attainable fp32 rate (a 2048^3 sgemm) in the same process, then times
//! every workload (one warm-up, then the median of `--repeats` runs) through the library
//! calls the commands make, and records the peak resident set size of each. The warm-up's
//! maps go to `skepsis-outputs.safetensors` for the peer's equal-work check.

mod measure;
mod workloads;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use clap::Args;
use serde_json::{json, Value};
use skepsis_nn::model_file;
use skepsis_nn::zoo::{self, Architecture};

use measure::{sgemm_rate, SplitMix64, Timing};
use workloads::{Phase, Setup, Workload, SMOOTHGRAD_SAMPLES, SMOOTHGRAD_SIGMA, TRAIN_IMAGES};

/// Inputs the peer reads: `images`, `targets`, `smoothgrad_noise`.
const INPUTS: &str = "inputs.safetensors";
/// The warm-up maps of every workload that has one, named by workload id.
const OUTPUTS: &str = "skepsis-outputs.safetensors";
/// Settings, timings, rates and memory.
const REPORT: &str = "skepsis.json";
/// The model directory (`model.json` + `model.safetensors`, PyTorch key layout).
const MODEL_DIR: &str = "model";
/// Side of the square sgemm that measures the attainable rate (issue 10).
const SGEMM_N: usize = 2048;
/// Input shape of the SC MNIST CNN.
const IMAGE_SHAPE: [usize; 3] = [1, 28, 28];
/// Classes of the SC MNIST CNN.
const CLASSES: usize = 10;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Output directory: model/, inputs.safetensors, skepsis-outputs.safetensors and
    /// skepsis.json (timings, GFLOP/s, fraction of the sgemm rate, peak RSS).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Comma-separated workloads, or `all`: p0-forward, p0-gradient, p1-ig, p1b-smoothgrad,
    /// p1b-guided-backprop, p1b-gradcam, p2-mprt, p2-mprt-ssim, p3-train-epoch.
    #[arg(long, default_value = "all", value_name = "LIST")]
    pub workloads: String,
    /// Timed runs per workload after one warm-up; the median is reported.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeats: usize,
    /// Images explained per workload (the figures use 64).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub images: usize,
    /// Seed of the model's weights, the images, the classes and the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Overwrite the output of an earlier run.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let selected = Workload::parse_list(&args.workloads).context("--workloads")?;
    if args.repeats == 0 || args.images == 0 {
        bail!("--repeats and --images must be at least 1");
    }
    let out = &args.out;
    let model_dir = out.join(MODEL_DIR);
    for path in [
        model_dir.join(model_file::MODEL_JSON),
        model_dir.join(model_file::MODEL_WEIGHTS),
        out.join(INPUTS),
        out.join(OUTPUTS),
        out.join(REPORT),
    ] {
        crate::io::check_writable(&path, args.force)?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let threads = rayon::current_num_threads();
    eprintln!("bench: SC MNIST CNN, seed {}, {} images, {threads} threads", args.seed, args.images);
    let model = zoo::build(Architecture::ScCnn, IMAGE_SHAPE, CLASSES, args.seed)?;
    model_file::save(&model, &model_dir, args.force)?;
    let mut setup = draw_inputs(model, args.images, args.seed)?;
    save_inputs(&setup, &out.join(INPUTS))?;

    eprintln!("bench: sgemm {SGEMM_N}^3 ...");
    let sgemm = sgemm_rate(SGEMM_N, args.repeats.max(3))?;
    eprintln!("bench: sgemm {:.1} GFLOP/s (median of {} runs)", sgemm.gflops, sgemm.runs_s.len());

    let mut report = json!({
        "tool": "skepsis",
        "version": env!("CARGO_PKG_VERSION"),
        "seed": args.seed,
        "threads": threads,
        "images": args.images,
        "repeats": args.repeats,
        "cpu": cpu_model(),
        "model": { "architecture": "sc-cnn", "dir": MODEL_DIR },
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "sgemm": sgemm,
        "workloads": [],
    });
    let mut outputs: HashMap<String, Tensor> = HashMap::new();
    for w in selected {
        if w == Workload::TrainEpoch && setup.training.is_none() {
            // Drawn only now so that its 172 MB do not count in the other workloads' RSS.
            setup.training = Some(draw_training_data(args.seed)?);
        }
        eprintln!("bench: {} ({}) ...", w.id(), w.what());
        let repeats = w.repeats(args.repeats);
        let (first, timing) = measure::time(
            repeats,
            || w.run(&setup, Phase::WarmUp),
            || Ok(w.run(&setup, Phase::Timed)?.seconds),
        )
        .with_context(|| format!("workload {}", w.id()))?;
        let flop = w.flop(args.images);
        let gflops = flop / timing.median_s / 1e9;
        eprintln!("bench: {}: {}", w.id(), describe(&timing, gflops, sgemm.gflops));
        if let Some(map) = first.map {
            outputs.insert(w.id().to_string(), map.to_device(&Device::Cpu)?);
        }
        if w == Workload::TrainEpoch {
            setup.training = None;
        }
        let entry = json!({
            "id": w.id(),
            "what": w.what(),
            "parameters": w.parameters(),
            "flop": flop,
            "repeats": repeats,
            "timing": timing,
            "gflops": gflops,
            "fraction_of_sgemm": gflops / sgemm.gflops,
            "output": w.has_output().then(|| w.id()),
            "summary": first.summary,
        });
        if let Some(list) = report["workloads"].as_array_mut() {
            list.push(entry);
        }
        // Written after every workload, so that a failure later keeps what was measured.
        write_json(&out.join(REPORT), &report)?;
    }
    write_json(&out.join(REPORT), &report)?;
    let path = out.join(OUTPUTS);
    candle_core::safetensors::save(&outputs, &path)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("bench: wrote {}", out.display());
    Ok(())
}

/// Seeded images (uniform in [0, 1)), classes (uniform) and SmoothGrad noise (normal, std
/// `SMOOTHGRAD_SIGMA`), each from its own generator stream.
fn draw_inputs(model: skepsis_nn::Model, n: usize, seed: u64) -> Result<Setup> {
    let d: usize = IMAGE_SHAPE.iter().product();
    let mut rng = stream(seed, 1);
    let images: Vec<f32> = (0..n * d).map(|_| rng.uniform_f32()).collect();
    let mut rng = stream(seed, 2);
    let targets: Vec<usize> = (0..n).map(|_| rng.below(CLASSES)).collect();
    let mut rng = stream(seed, 3);
    let noise: Vec<f32> =
        (0..SMOOTHGRAD_SAMPLES * n * d).map(|_| (rng.normal() * SMOOTHGRAD_SIGMA) as f32).collect();
    let [c, h, w] = IMAGE_SHAPE;
    Ok(Setup {
        model,
        images: Tensor::from_vec(images, (n, c, h, w), &Device::Cpu)?,
        targets,
        noise: Tensor::from_vec(noise, (SMOOTHGRAD_SAMPLES, n, c, h, w), &Device::Cpu)?,
        training: None,
        seed,
    })
}

/// P3's images (uniform in [0, 1)) and labels (uniform): the cost of an epoch does not
/// depend on the data, so no generator is needed (the peer draws its own of the same shape).
fn draw_training_data(seed: u64) -> Result<(Tensor, Vec<usize>)> {
    let d: usize = IMAGE_SHAPE.iter().product();
    let mut rng = stream(seed, 4);
    let images: Vec<f32> = (0..TRAIN_IMAGES * d).map(|_| rng.uniform_f32()).collect();
    let labels = (0..TRAIN_IMAGES).map(|_| rng.below(CLASSES)).collect();
    let [c, h, w] = IMAGE_SHAPE;
    Ok((Tensor::from_vec(images, (TRAIN_IMAGES, c, h, w), &Device::Cpu)?, labels))
}

/// Generator `k` of `seed`: streams of one seed are independent, and so are the same stream
/// of different seeds (the seed goes through one SplitMix64 step first).
fn stream(seed: u64, k: u64) -> SplitMix64 {
    let base = SplitMix64::new(seed).next_u64();
    SplitMix64::new(base ^ k.wrapping_mul(0xd1b5_4a32_d192_ed03))
}

fn save_inputs(s: &Setup, path: &Path) -> Result<()> {
    let targets: Vec<i64> = s.targets.iter().map(|&t| t as i64).collect();
    let n = targets.len();
    let tensors: HashMap<String, Tensor> = [
        ("images".to_string(), s.images.clone()),
        ("targets".to_string(), Tensor::from_vec(targets, n, &Device::Cpu)?),
        ("smoothgrad_noise".to_string(), s.noise.clone()),
    ]
    .into_iter()
    .collect();
    candle_core::safetensors::save(&tensors, path)
        .with_context(|| format!("writing {}", path.display()))
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// One progress line: median, rate, fraction of the sgemm rate, peak RSS.
fn describe(t: &Timing, gflops: f64, sgemm_gflops: f64) -> String {
    let rss = t
        .peak_rss_bytes
        .map_or("unknown".to_string(), |b| format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64));
    format!(
        "median {} of {} run(s), {gflops:.1} GFLOP/s ({:.0}% of sgemm), peak RSS {rss}",
        seconds(t.median_s),
        t.runs_s.len(),
        100.0 * gflops / sgemm_gflops
    )
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// The CPU's model name (`/proc/cpuinfo`), for the record.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}
