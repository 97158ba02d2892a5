//! `skepsis data generate` and `skepsis data show`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use skepsis_data::{
    generate_block_digits, generate_digits, generate_smerf, load_mnist_dir, read_dataset,
    sample_grid, write_dataset, Background, BlockMnistConfig, DatasetInfo, DigitsConfig,
    GridOptions, Preprocessing, SmerfConfig, SmerfSetup, Splits, FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
};

use crate::cli::{DataCommand, GenerateArgs, ImportMnistArgs, ShowArgs, SubsetArgs};

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Generate(args) => generate(args),
        DataCommand::Show(args) => show(args),
        DataCommand::ImportMnist(args) => import_mnist(args),
        DataCommand::Subset(args) => subset(args),
    }
}

fn generate(args: GenerateArgs) -> Result<()> {
    let (info, splits) = match args.kind.as_str() {
        "digits" | "block-mnist" => {
            let digits = DigitsConfig { train: args.train, test: args.test, seed: args.seed };
            let info = |name: &str, generator| DatasetInfo {
                name: name.to_string(),
                kind: name.to_string(),
                seed: Some(args.seed),
                generator,
                preprocessing: Preprocessing::grayscale(),
            };
            if args.kind == "digits" {
                (info("digits", serde_json::to_value(&digits)?), generate_digits(&digits)?)
            } else {
                let config = BlockMnistConfig { seed: args.seed, ..Default::default() };
                let splits = generate_block_digits(args.train, args.test, &config)?;
                (info("blockmnist", serde_json::to_value(&config)?), splits)
            }
        }
        _ => {
            let setup = SmerfSetup::from_id(&args.setup)?;
            let background = match args.background.as_str() {
                "black" => Background::Black,
                "texture" => Background::Texture,
                dir => {
                    let dir = PathBuf::from(dir);
                    if !dir.is_dir() {
                        bail!(
                            "--background {}: neither black, texture nor a directory",
                            dir.display()
                        );
                    }
                    Background::Folder(dir)
                }
            };
            if !(args.scale.is_finite() && args.scale > 0.0) {
                bail!("--scale {} must be a positive number", args.scale);
            }
            let config = SmerfConfig { setup, background, scale: args.scale, seed: args.seed };
            let info = DatasetInfo {
                name: format!("smerf-{}", setup.id()),
                kind: "smerf".into(),
                seed: Some(args.seed),
                generator: serde_json::to_value(&config)?,
                preprocessing: Preprocessing::rgb(),
            };
            (info, generate_smerf(&config)?)
        }
    };
    write_dataset(&args.out, &info, &splits, args.force)?;
    report_written(&info, &splits, &args.out);
    Ok(())
}

fn show(args: ShowArgs) -> Result<()> {
    crate::io::check_writable(&args.out, args.force)?;
    let stored = read_dataset(&args.dir)?;
    let set = if args.split == "train" { &stored.splits.train } else { &stored.splits.test };
    if set.is_empty() {
        bail!("{}: the {} split is empty", args.dir.display(), args.split);
    }
    let indices: Vec<usize> = (0..args.count.min(set.len())).collect();
    let grid = sample_grid(set, &indices, &GridOptions::default())?;
    grid.save(&args.out).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("{} images of {} drawn to {}", indices.len(), stored.info.name, args.out.display());
    Ok(())
}

fn import_mnist(args: ImportMnistArgs) -> Result<()> {
    let names = if args.classes == "fashion" { FASHION_MNIST_CLASSES } else { MNIST_CLASSES };
    let preprocessing = Preprocessing::grayscale();
    let splits = load_mnist_dir(&args.dir, &names, &preprocessing)?;
    let info = DatasetInfo {
        name: if args.classes == "fashion" { "fashion-mnist" } else { "mnist" }.into(),
        kind: "mnist".into(),
        seed: None,
        generator: serde_json::Value::Null,
        preprocessing,
    };
    write_dataset(&args.out, &info, &splits, args.force)?;
    report_written(&info, &splits, &args.out);
    Ok(())
}

fn subset(args: SubsetArgs) -> Result<()> {
    let stored = read_dataset(&args.dir)?;
    let first = |set: &skepsis_data::Dataset, n: Option<usize>, what: &str| {
        let n = n.unwrap_or(set.len());
        if n == 0 || n > set.len() {
            bail!(
                "--{what} {n}: the {what} split of {} has {} images",
                args.dir.display(),
                set.len()
            );
        }
        Ok(set.subset(&(0..n).collect::<Vec<_>>())?)
    };
    let splits = Splits {
        train: first(&stored.splits.train, args.train, "train")?,
        test: first(&stored.splits.test, args.test, "test")?,
    };
    let mut info = stored.info;
    info.name = format!("{}-subset", info.name);
    write_dataset(&args.out, &info, &splits, args.force)?;
    report_written(&info, &splits, &args.out);
    Ok(())
}

fn report_written(info: &DatasetInfo, splits: &Splits, out: &std::path::Path) {
    eprintln!(
        "{}: {} training and {} test images written to {}",
        info.name,
        splits.train.len(),
        splits.test.len(),
        out.display()
    );
}
