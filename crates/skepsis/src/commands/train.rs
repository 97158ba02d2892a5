//! `skepsis train`: a built-in architecture on labelled images.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use skepsis_nn::model_file;
use skepsis_nn::train::{self, Console, LabelledData, OptimizerConfig, TrainConfig};
use skepsis_nn::zoo::{self, Architecture};

use crate::cli::TrainArgs;

pub fn run(args: TrainArgs) -> Result<()> {
    let arch = Architecture::parse(&args.arch)?;
    let optimizer = match args.optimizer.as_str() {
        "sgd" => OptimizerConfig::Sgd { lr: args.lr, momentum: args.momentum, weight_decay: 0.0 },
        _ => OptimizerConfig::adam(args.lr),
    };
    optimizer.validate()?;
    let config = TrainConfig {
        optimizer,
        batch_size: args.batch_size,
        max_epochs: args.epochs,
        target_accuracy: args.target_accuracy,
        seed: args.seed,
    };
    for file in [model_file::MODEL_JSON, model_file::MODEL_WEIGHTS] {
        crate::io::check_writable(&args.out.join(file), args.force)?;
    }

    let source = read_training_data(&args.data)?;
    let (images, labels) = (source.images, source.labels);
    let n = labels.len();
    if args.holdout >= n {
        bail!("--holdout {} leaves no training images out of {n}", args.holdout);
    }
    let classes = match args.classes {
        Some(c) => c,
        None => labels.iter().max().map_or(0, |m| m + 1),
    };
    let dims = images.dims();
    if dims.len() != 4 {
        bail!("{}: images must be [N, C, H, W], found {:?}", args.data.display(), dims);
    }
    let mut model = zoo::build(arch, [dims[1], dims[2], dims[3]], classes, args.seed)?
        .with_preprocessing(source.preprocessing);
    if let Some(names) = source.class_names.filter(|n| n.len() == classes) {
        model = model.with_class_names(names);
    }
    let held = (args.holdout > 0).then(|| images.narrow(0, 0, args.holdout)).transpose()?;
    let train_images = images.narrow(0, args.holdout, n - args.holdout)?;
    let heldout = match (&held, &source.test) {
        (Some(h), _) => Some(LabelledData { images: h, labels: &labels[..args.holdout] }),
        (None, Some((images, labels))) => Some(LabelledData { images, labels }),
        (None, None) => None,
    };
    let data = LabelledData { images: &train_images, labels: &labels[args.holdout..] };
    let (trained, report) = train::train(&model, data, heldout, &config, &mut Console::new())?;
    model_file::save(&trained, &args.out, args.force)?;
    let report_path = args.out.join("train_report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", report_path.display()))?;
    eprintln!(
        "trained {} for {} epoch(s): train accuracy {:.4}{}; saved to {}",
        arch.name(),
        report.epochs.len(),
        report.final_train_accuracy,
        report
            .final_heldout_accuracy
            .map_or(String::new(), |a| format!(", held-out accuracy {a:.4}")),
        args.out.display()
    );
    Ok(())
}

/// Training images and labels with what is known about them.
struct TrainingData {
    images: Tensor,
    labels: Vec<usize>,
    /// The test split of a data set directory (held-out accuracy).
    test: Option<(Tensor, Vec<usize>)>,
    class_names: Option<Vec<String>>,
    preprocessing: Option<skepsis_nn::Preprocessing>,
}

/// Reads a data set directory or a safetensors file.
fn read_training_data(path: &std::path::Path) -> Result<TrainingData> {
    if path.is_dir() {
        let stored = skepsis_data::read_dataset(path)?;
        let (train, test) = (stored.splits.train, stored.splits.test);
        let test = (!test.is_empty()).then(|| (test.images().clone(), test.labels().to_vec()));
        return Ok(TrainingData {
            images: train.images().clone(),
            labels: train.labels().to_vec(),
            test,
            class_names: Some(train.class_names().to_vec()),
            preprocessing: Some(stored.info.preprocessing),
        });
    }
    let (images, labels) = read_labelled(path)?;
    Ok(TrainingData { images, labels, test: None, class_names: None, preprocessing: None })
}

/// Reads `images` `[N,C,H,W]` and `labels` `[N]` from a safetensors file.
fn read_labelled(path: &std::path::Path) -> Result<(Tensor, Vec<usize>)> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("{}: not a readable safetensors file", path.display()))?;
    let get = |k: &str| {
        tensors.get(k).with_context(|| format!("{}: no tensor named '{k}'", path.display()))
    };
    let images = get("images")?.to_dtype(DType::F32)?;
    let labels = get("labels")?.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
    if labels.iter().any(|&l| l < 0) {
        bail!("{}: negative label", path.display());
    }
    if images.dims().first() != Some(&labels.len()) {
        bail!("{}: {:?} images but {} labels", path.display(), images.dims(), labels.len());
    }
    Ok((images, labels.into_iter().map(|l| l as usize).collect()))
}
