//! One module per subcommand.

mod attribute;
mod data;
mod listing;
mod train;

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use skepsis_nn::{model_file, Model};

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Attribute(args) => attribute::run(args),
        Command::Train(args) => train::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Methods => listing::methods(),
        Command::Models => listing::models(),
    }
}

/// Loads a model directory in f32 on the CPU.
pub fn load_model(path: &Path) -> Result<Model> {
    model_file::load(path, DType::F32, &Device::Cpu)
        .with_context(|| format!("loading model {}", path.display()))
}
