//! One module per subcommand.

mod attribute;
pub(crate) mod bench;
pub(crate) mod check;
mod data;
mod import;
mod listing;
pub(crate) mod run;
pub(crate) mod smerf;
mod train;

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use skepsis_nn::{model_file, Model};

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Report(args) => run::report(args),
        Command::Bench(args) => bench::run(args),
        Command::Attribute(args) => attribute::run(args),
        Command::Train(args) => train::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Check(cmd) => check::run(cmd),
        Command::Methods => listing::methods(),
        Command::Models => listing::models(),
        Command::Import(cmd) => import::run(cmd),
    }
}

/// Loads a model directory (or an `.onnx` file, imported on the fly) in f32 on the CPU.
pub fn load_model(path: &Path) -> Result<Model> {
    if import::is_onnx(path) {
        return skepsis_nn::onnx::import(path, DType::F32, &Device::Cpu)
            .with_context(|| format!("importing ONNX model {}", path.display()));
    }
    model_file::load(path, DType::F32, &Device::Cpu)
        .with_context(|| format!("loading model {}", path.display()))
}
