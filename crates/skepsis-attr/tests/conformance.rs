//! Conformance: every case of `shared/conformance/cases.json` whose method skepsis
//! implements must match the attributions of the established Python libraries (captum,
//! zennit) on the same weights and inputs, in float32, within the case's tolerances
//! (`|actual - expected| <= atol + rtol * |expected|`, element-wise).
//!
//! The fixture directory comes from `SKEPSIS_CONFORMANCE_DIR` (default
//! `../shared/conformance` next to the repository). The test fails if any case that ran
//! misses, or if no case ran; it prints `conformance: P passed, F failed, S skipped` and the
//! names of the skipped methods (visible with `--nocapture`).
//!
//! Every case runs twice: on the model loaded from `model.json` + `model.safetensors` and
//! on the same model imported from its `model.onnx` (torch.onnx export); both must pass.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use skepsis_attr::Target;
use skepsis_nn::{model_file, onnx, Model};

#[derive(Debug, Deserialize)]
struct Case {
    case: String,
    model: String,
    method: String,
    params: serde_json::Value,
    file: String,
    tensors: HashMap<String, String>,
    expected_shape: Vec<usize>,
    rtol: f64,
    atol: f64,
}

fn conformance_dir() -> PathBuf {
    match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    }
}

#[path = "conformance_cases/mod.rs"]
mod cases;

/// Where a conformance model is loaded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    ModelJson,
    Onnx,
}

const SOURCES: [Source; 2] = [Source::ModelJson, Source::Onnx];

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::ModelJson => "model.json",
            Source::Onnx => "model.onnx",
        }
    }
}

struct Fixtures {
    dir: PathBuf,
    models: HashMap<(String, Source), Model>,
    files: HashMap<String, HashMap<String, Tensor>>,
}

impl Fixtures {
    fn model(&mut self, name: &str, source: Source) -> &Model {
        let dir = self.dir.join("models").join(name);
        self.models.entry((name.to_string(), source)).or_insert_with(|| {
            let loaded = match source {
                Source::ModelJson => model_file::load(&dir, DType::F32, &Device::Cpu),
                Source::Onnx => onnx::import(&dir.join("model.onnx"), DType::F32, &Device::Cpu),
            };
            loaded.unwrap_or_else(|e| {
                panic!("loading conformance model {} ({}): {e}", dir.display(), source.label())
            })
        })
    }

    fn tensor(&mut self, file: &str, key: &str) -> Tensor {
        let path = self.dir.join(file);
        let tensors = self.files.entry(file.to_string()).or_insert_with(|| {
            candle_core::safetensors::load(&path, &Device::Cpu)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        });
        tensors.get(key).unwrap_or_else(|| panic!("{file} lacks tensor '{key}'")).clone()
    }
}

/// Largest violation of the tolerance (<= 0 when every element passes), with the worst
/// element's actual and expected values.
fn worst_violation(actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) -> (f64, f64, f64) {
    let a = actual.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
    let e = expected.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
    let mut worst = (f64::NEG_INFINITY, 0.0, 0.0);
    for (x, y) in a.iter().zip(&e) {
        let excess =
            if x.is_finite() { (x - y).abs() - (atol + rtol * y.abs()) } else { f64::INFINITY };
        if excess > worst.0 {
            worst = (excess, *x, *y);
        }
    }
    worst
}

#[test]
fn conformance_cases() {
    let dir = conformance_dir();
    let text = std::fs::read_to_string(dir.join("cases.json")).unwrap_or_else(|e| {
        panic!("reading {}: {e} (set SKEPSIS_CONFORMANCE_DIR)", dir.join("cases.json").display())
    });
    let cases: Vec<Case> = serde_json::from_str(&text).expect("cases.json parses");
    let mut fx = Fixtures { dir, models: HashMap::new(), files: HashMap::new() };
    let (mut passed, mut failed) = (HashMap::new(), HashMap::new());
    let mut skipped = BTreeSet::new();
    let mut skipped_count = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let (method_name, params) = if case.method == "input_invariance" {
            (case.params["method"].as_str().unwrap_or_default().to_string(), serde_json::json!({}))
        } else {
            (case.method.clone(), case.params.clone())
        };
        let roles: HashMap<String, Tensor> = case
            .tensors
            .iter()
            .filter(|(role, _)| !role.starts_with("expected"))
            .map(|(role, key)| (role.clone(), fx.tensor(&case.file, key)))
            .collect();
        let view = cases::CaseView { method: &method_name, params: &params, tensors: &roles };
        let Some(method) = cases::method_for(&view) else {
            skipped.insert(format!("{} {}", case.method, case.params));
            skipped_count += 1;
            continue;
        };
        let input = fx.tensor(&case.file, &case.tensors["input"]);
        let target = fx.tensor(&case.file, &case.tensors["target"]);
        let targets: Vec<usize> = target
            .to_dtype(DType::I64)
            .unwrap()
            .to_vec1::<i64>()
            .unwrap()
            .iter()
            .map(|&t| t as usize)
            .collect();
        let mut runs = vec![(case.model.clone(), input, "expected")];
        if case.method == "input_invariance" {
            let shifted_model =
                case.params["shifted_model"].as_str().expect("shifted_model").to_string();
            runs.push((
                shifted_model,
                fx.tensor(&case.file, &case.tensors["input_shifted"]),
                "expected_shifted",
            ));
        }
        for source in SOURCES {
            let mut ok = true;
            for (model_name, x, role) in runs.clone() {
                let expected = fx.tensor(&case.file, &case.tensors[role]);
                let model = fx.model(&model_name, source).clone();
                let result = method.attribute(&model, &x, &Target::Classes(targets.clone()));
                match result {
                    Ok(attr) if attr.map.dims() == case.expected_shape.as_slice() => {
                        let (excess, a, e) =
                            worst_violation(&attr.map, &expected, case.rtol, case.atol);
                        if excess > 0.0 {
                            ok = false;
                            failures.push(format!(
                                "{} [{}] ({role}): worst element {a:e} vs expected {e:e} (atol {:e}, rtol {:e})",
                                case.case,
                                source.label(),
                                case.atol,
                                case.rtol
                            ));
                        }
                    }
                    Ok(attr) => {
                        ok = false;
                        failures.push(format!(
                            "{} [{}]: shape {:?}, expected {:?}",
                            case.case,
                            source.label(),
                            attr.map.dims(),
                            case.expected_shape
                        ));
                    }
                    Err(e) => {
                        ok = false;
                        failures.push(format!("{} [{}]: error: {e}", case.case, source.label()));
                    }
                }
            }
            *(if ok { &mut passed } else { &mut failed }).entry(source).or_insert(0) += 1;
        }
    }
    for source in SOURCES {
        println!(
            "conformance ({}): {} passed, {} failed, {skipped_count} skipped",
            source.label(),
            passed.get(&source).unwrap_or(&0),
            failed.get(&source).unwrap_or(&0)
        );
    }
    for s in &skipped {
        println!("  skipped method: {s}");
    }
    for f in &failures {
        println!("  FAILED {f}");
    }
    assert!(
        failures.is_empty(),
        "{} conformance run(s) failed:\n{}",
        failed.values().sum::<usize>(),
        failures.join("\n")
    );
    for source in SOURCES {
        assert!(
            passed.get(&source).is_some_and(|&p| p > 0),
            "no conformance case ran on {}",
            source.label()
        );
    }
}
