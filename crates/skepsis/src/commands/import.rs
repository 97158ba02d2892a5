//! `skepsis import onnx FILE --out DIR`: converts an ONNX model into a model directory.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use skepsis_nn::{model_file, onnx};

use crate::cli::{ImportCommand, ImportOnnxArgs};

/// Runs `skepsis import ...`.
pub fn run(cmd: ImportCommand) -> Result<()> {
    match cmd {
        ImportCommand::Onnx(args) => import_onnx(&args),
    }
}

/// Whether `path` names an ONNX file (by its `.onnx` extension, any case).
pub fn is_onnx(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

fn import_onnx(args: &ImportOnnxArgs) -> Result<()> {
    let model = onnx::import(&args.file, DType::F32, &Device::Cpu)
        .with_context(|| format!("importing ONNX model {}", args.file.display()))?;
    model_file::save(&model, &args.out, args.force)
        .with_context(|| format!("writing model directory {}", args.out.display()))?;
    let layers: Vec<String> =
        model.nodes().iter().map(|n| format!("{} ({})", n.name, n.layer.kind())).collect();
    println!(
        "imported '{}' ({} layers, input {:?}): {}",
        model.name(),
        layers.len(),
        model.input_shape(),
        layers.join(", ")
    );
    println!(
        "wrote {} and {}",
        args.out.join(model_file::MODEL_JSON).display(),
        args.out.join(model_file::MODEL_WEIGHTS).display()
    );
    Ok(())
}
