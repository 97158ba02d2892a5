//! Every conformance case of both method families run in float64: the fixture models and
//! inputs converted to F64 must reproduce the float64 references of captum, zennit and the
//! own torch references to ~1e-9 relative, far tighter than the float32 tolerances of
//! `conformance.rs`. Skipped (with a message) when the fixture directory is absent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use skepsis_attr::Target;
use skepsis_nn::model_file;

#[path = "conformance_cases/mod.rs"]
#[allow(dead_code)]
mod cases;

#[derive(Debug, Deserialize)]
struct Case {
    case: String,
    model: String,
    method: String,
    params: serde_json::Value,
    file: String,
    tensors: HashMap<String, String>,
}

/// Part 2: modified backpropagation.
const PART2: &[&str] =
    &["guided_backprop", "deconvnet", "guided_gradcam", "lrp", "deeplift", "deepliftshap"];

/// Part 1: the gradient family, CAM, perturbation and CGI.
const PART1: &[&str] = &[
    "gradient",
    "gradient_x_input",
    "integrated_gradients",
    "smoothgrad",
    "smoothgrad_sq",
    "vargrad",
    "gradcam",
    "gradcam_upsampled",
    "occlusion",
    "cgi",
];

fn conformance_dir() -> PathBuf {
    match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    }
}

/// Runs every case whose method is in `methods` on the F64 models and inputs; fails on any
/// element off by more than 1e-9 of the case's max |expected|, or if fewer than `at_least`
/// cases ran.
fn check_in_float64(methods: &[&str], at_least: usize, part: &str) {
    let dir = conformance_dir();
    let Ok(text) = std::fs::read_to_string(dir.join("cases.json")) else {
        eprintln!("no conformance fixtures at {}: skipped", dir.display());
        return;
    };
    let cases: Vec<Case> = serde_json::from_str(&text).expect("cases.json parses");
    let mut files: HashMap<String, HashMap<String, Tensor>> = HashMap::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in cases.iter().filter(|c| methods.contains(&c.method.as_str())) {
        let tensors = files.entry(case.file.clone()).or_insert_with(|| {
            candle_core::safetensors::load(dir.join(&case.file), &Device::Cpu)
                .expect("case tensors load")
        });
        let get = |role: &str| -> Tensor {
            let t = &tensors[&case.tensors[role]];
            if t.dtype() == DType::I64 {
                t.clone()
            } else {
                t.to_dtype(DType::F64).unwrap()
            }
        };
        let roles: HashMap<String, Tensor> = case
            .tensors
            .keys()
            .filter(|r| !r.starts_with("expected"))
            .map(|r| (r.clone(), get(r)))
            .collect();
        let view = cases::CaseView { method: &case.method, params: &case.params, tensors: &roles };
        let Some(method) = cases::method_for(&view) else {
            failures.push(format!("{}: no method", case.case));
            continue;
        };
        let model =
            model_file::load(&dir.join("models").join(&case.model), DType::F64, &Device::Cpu)
                .expect("fixture model loads");
        let targets: Vec<usize> =
            get("target").to_vec1::<i64>().unwrap().iter().map(|&t| t as usize).collect();
        let expected = get("expected");
        let map = match method.attribute(&model, &get("input"), &Target::Classes(targets)) {
            Ok(a) => a.map,
            Err(e) => {
                failures.push(format!("{}: {e}", case.case));
                continue;
            }
        };
        let scale = expected
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let worst =
            (&map - &expected).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        let worst = worst.to_scalar::<f64>().unwrap();
        if worst > 1e-9 * scale.max(1e-300) {
            failures.push(format!("{}: max |diff| {worst:e}, max |expected| {scale:e}", case.case));
        }
        ran += 1;
    }
    assert!(failures.is_empty(), "float64 {part} cases failed:\n{}", failures.join("\n"));
    assert!(ran >= at_least, "only {ran} {part} cases ran");
}

#[test]
fn part1_cases_match_in_float64() {
    check_in_float64(PART1, 30, "part-1");
}

#[test]
fn part2_cases_match_in_float64() {
    check_in_float64(PART2, 38, "part-2");
}
