//! Model graph, files, randomization and training.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use skepsis_nn::model_file::{self, MODEL_JSON, MODEL_WEIGHTS};
use skepsis_nn::train::{self, LabelledData, OptimizerConfig, Silent, TrainConfig};
use skepsis_nn::zoo::{self, Architecture};
use skepsis_nn::{input_gradient, randomize, Error, Model, RandomizeOptions, Result};

fn conformance_models() -> PathBuf {
    match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d).join("models"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/models"),
    }
}

fn load(name: &str) -> Model {
    model_file::load(&conformance_models().join(name), DType::F32, &Device::Cpu).unwrap()
}

fn uniform(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn conformance_models_load_and_run() {
    for name in ["mlp", "mlp_shifted", "cnn", "cnn_bn"] {
        let model = load(name);
        let mut dims = vec![3];
        dims.extend_from_slice(model.input_shape());
        let logits = model.forward(&uniform(&dims, 1)).unwrap();
        assert_eq!(logits.dims(), [3, 10], "{name}");
    }
}

#[test]
fn batched_equals_unbatched() -> Result<()> {
    for name in ["cnn", "cnn_bn", "mlp"] {
        let model = load(name);
        let mut dims = vec![5];
        dims.extend_from_slice(model.input_shape());
        let x = uniform(&dims, 2);
        let seed = uniform(&[5, 10], 3);
        let (_, grad) = input_gradient(&model, &x, &seed)?;
        let logits = model.forward(&x)?;
        for i in 0..5 {
            let xi = x.i(i..i + 1)?;
            let (_, gi) = input_gradient(&model, &xi, &seed.i(i..i + 1)?)?;
            assert!(max_abs_diff(&gi, &grad.i(i..i + 1)?) <= 1e-6, "{name} gradient of sample {i}");
            assert!(
                max_abs_diff(&model.forward(&xi)?, &logits.i(i..i + 1)?) <= 1e-5,
                "{name} logits {i}"
            );
        }
    }
    Ok(())
}

#[test]
fn forward_equals_trace_output_and_f64_agrees() -> Result<()> {
    let model = load("cnn");
    let x = uniform(&[2, 1, 28, 28], 4);
    let trace = model.trace(&x)?;
    assert_eq!(max_abs_diff(trace.logits(), &model.forward(&x)?), 0.0);
    let m64 = model.to_dtype(DType::F64)?;
    let y64 = m64.forward(&x.to_dtype(DType::F64)?)?.to_dtype(DType::F32)?;
    assert!(max_abs_diff(&y64, trace.logits()) < 1e-4);
    Ok(())
}

#[test]
fn save_and_load_round_trip() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let model = zoo::build(Architecture::Lenet, [1, 28, 28], 10, 5)?;
    model_file::save(&model, dir.path(), false)?;
    let back = model_file::load(dir.path(), DType::F32, &Device::Cpu)?;
    let x = uniform(&[2, 1, 28, 28], 6);
    assert_eq!(max_abs_diff(&model.forward(&x)?, &back.forward(&x)?), 0.0);
    assert_eq!(back.class_names().len(), 10);
    // The initializers survive the round trip (randomization needs them).
    let a = randomize(&model, &["conv1"], 9, RandomizeOptions::default())?;
    let b = randomize(&back, &["conv1"], 9, RandomizeOptions::default())?;
    assert_eq!(max_abs_diff(&a.forward(&x)?, &b.forward(&x)?), 0.0);
    // Nothing is overwritten without force.
    assert!(matches!(
        model_file::save(&model, dir.path(), false),
        Err(Error::AlreadyExists { .. })
    ));
    model_file::save(&model, dir.path(), true)?;
    Ok(())
}

#[test]
fn randomize_changes_exactly_the_named_layers() -> Result<()> {
    let model = load("cnn");
    let before = model.state_dict();
    let random = randomize(&model, &["conv2", "fc2"], 11, RandomizeOptions::default())?;
    for ((key, original), (key2, now)) in before.iter().zip(random.state_dict()) {
        assert_eq!(key, &key2);
        let changed = max_abs_diff(original, &now) > 0.0;
        let named = key.starts_with("conv2.") || key.starts_with("fc2.");
        assert_eq!(changed, named, "{key}");
    }
    // The original model is untouched.
    for ((_, a), (_, b)) in before.iter().zip(model.state_dict()) {
        assert_eq!(max_abs_diff(a, &b), 0.0);
    }
    // Same seed, same weights; per-layer streams do not depend on which other layers are
    // randomized in the same call (cascading and independent share their weights).
    let only_fc2 = randomize(&model, &["fc2"], 11, RandomizeOptions::default())?;
    let w = |m: &Model, k: &str| m.state_dict().into_iter().find(|(key, _)| key == k).unwrap().1;
    assert_eq!(max_abs_diff(&w(&random, "fc2.weight"), &w(&only_fc2, "fc2.weight")), 0.0);
    let other_seed = randomize(&model, &["fc2"], 12, RandomizeOptions::default())?;
    assert!(max_abs_diff(&w(&other_seed, "fc2.weight"), &w(&only_fc2, "fc2.weight")) > 0.0);
    // PyTorch's default initializer: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in 32 for fc2.
    let bound = 1.0 / (32f32).sqrt();
    let max = w(&only_fc2, "fc2.weight").abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    assert!(max <= bound && max > 0.8 * bound, "max |w| = {max}, bound {bound}");
    assert!(randomize(&model, &["relu1"], 1, RandomizeOptions::default()).is_err());
    assert!(matches!(
        randomize(&model, &["nope"], 1, RandomizeOptions::default()),
        Err(Error::UnknownNode { .. })
    ));
    Ok(())
}

#[test]
fn batchnorm_statistics_are_kept_unless_asked() -> Result<()> {
    let model = load("cnn_bn");
    let stat =
        |m: &Model| m.state_dict().into_iter().find(|(k, _)| k == "bn1.running_var").unwrap().1;
    let kept = randomize(&model, &["bn1"], 3, RandomizeOptions::default())?;
    assert_eq!(max_abs_diff(&stat(&kept), &stat(&model)), 0.0);
    let reset =
        randomize(&model, &["bn1"], 3, RandomizeOptions { reset_batchnorm_statistics: true })?;
    assert!(max_abs_diff(&stat(&reset), &stat(&model)) > 0.0);
    Ok(())
}

/// Copies a conformance model into a temporary directory, lets `edit` change the JSON
/// and the tensors, and loads it back.
fn load_edited(
    edit_json: impl Fn(&mut serde_json::Value),
    edit_weights: impl Fn(&mut std::collections::HashMap<String, Tensor>),
) -> (tempfile::TempDir, Result<Model>) {
    let src = conformance_models().join("cnn");
    let dir = tempfile::tempdir().unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join(MODEL_JSON)).unwrap()).unwrap();
    edit_json(&mut json);
    std::fs::write(dir.path().join(MODEL_JSON), json.to_string()).unwrap();
    let mut tensors =
        candle_core::safetensors::load(src.join(MODEL_WEIGHTS), &Device::Cpu).unwrap();
    edit_weights(&mut tensors);
    candle_core::safetensors::save(&tensors, dir.path().join(MODEL_WEIGHTS)).unwrap();
    let result = model_file::load(dir.path(), DType::F32, &Device::Cpu);
    (dir, result)
}

#[test]
fn missing_weight_names_layer_and_file() {
    let (_d, r) = load_edited(
        |_| {},
        |t| {
            t.remove("conv2.bias");
        },
    );
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::MissingWeight { layer, key, .. } if layer == "conv2" && key == "conv2.bias"),
        "{e}"
    );
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

#[test]
fn shape_mismatch_names_the_weight() {
    let (_d, r) = load_edited(|j| j["layers"][7]["out_features"] = 31.into(), |_| {});
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::ShapeMismatch { .. }) && e.to_string().contains("fc1.weight"),
        "{e}"
    );
}

#[test]
fn unknown_layer_type_is_named() {
    let (_d, r) = load_edited(|j| j["layers"][1]["type"] = "swish".into(), |_| {});
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::UnknownLayerType { layer, kind, .. } if layer == "relu1" && kind == "swish"),
        "{e}"
    );
}

#[test]
fn nan_weights_are_rejected() {
    let (_d, r) = load_edited(
        |_| {},
        |t| {
            let w = t["fc2.bias"].clone();
            let nan = Tensor::full(f32::NAN, w.dims(), &Device::Cpu).unwrap();
            t.insert("fc2.bias".into(), nan);
        },
    );
    let e = r.unwrap_err();
    assert!(matches!(&e, Error::NonFiniteWeight { layer, .. } if layer == "fc2"), "{e}");
}

#[test]
fn truncated_safetensors_is_rejected() {
    let src = conformance_models().join("cnn");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join(MODEL_JSON), dir.path().join(MODEL_JSON)).unwrap();
    let bytes = std::fs::read(src.join(MODEL_WEIGHTS)).unwrap();
    std::fs::write(dir.path().join(MODEL_WEIGHTS), &bytes[..bytes.len() / 2]).unwrap();
    let e = model_file::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&e, Error::Safetensors { .. }) && e.to_string().contains("model.safetensors"),
        "{e}"
    );
    std::fs::write(dir.path().join(MODEL_WEIGHTS), b"").unwrap();
    assert!(matches!(
        model_file::load(dir.path(), DType::F32, &Device::Cpu),
        Err(Error::Safetensors { .. })
    ));
    std::fs::remove_file(dir.path().join(MODEL_WEIGHTS)).unwrap();
    assert!(matches!(
        model_file::load(dir.path(), DType::F32, &Device::Cpu),
        Err(Error::Io { .. })
    ));
}

#[test]
fn wrong_input_shape_is_an_error_not_a_panic() {
    let model = load("cnn");
    let e = model.forward(&uniform(&[2, 3, 28, 28], 1)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
}

/// A 10-class problem the SC CNN must learn in seconds: class k is a bright 6x6 square at
/// the k-th of ten fixed positions, jittered by up to 2 pixels, on a noisy background.
fn toy_problem(n: usize, seed: u64) -> (Tensor, Vec<usize>) {
    let base = uniform(&[n, 28 * 28], seed).to_vec2::<f32>().unwrap();
    let jitter = uniform(&[n, 2], seed + 1).to_vec2::<f32>().unwrap();
    let mut data = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % 10;
        let (r0, c0) = (3 + (k / 5) * 12, 1 + (k % 5) * 5);
        let (dr, dc) = ((jitter[i][0] * 5.0) as usize, (jitter[i][1] * 3.0) as usize);
        for (p, noise) in base[i].iter().enumerate() {
            let (r, c) = (p / 28, p % 28);
            let inside = (r0 + dr..r0 + dr + 6).contains(&r) && (c0 + dc..c0 + dc + 4).contains(&c);
            data.push(if inside { 1.0 } else { 0.3 * noise });
        }
        labels.push(k);
    }
    (Tensor::from_vec(data, (n, 1, 28, 28), &Device::Cpu).unwrap(), labels)
}

#[test]
fn sc_cnn_learns_a_small_problem() -> Result<()> {
    let (images, labels) = toy_problem(400, 21);
    let model = zoo::build(Architecture::ScCnn, [1, 28, 28], 10, 1)?;
    let config = TrainConfig {
        optimizer: OptimizerConfig::adam(1e-4),
        batch_size: 50,
        max_epochs: 6,
        target_accuracy: Some(0.95),
        seed: 3,
    };
    let data = LabelledData { images: &images, labels: &labels };
    let (trained, report) = train::train(&model, data, None, &config, &mut Silent)?;
    assert!(report.final_train_accuracy > 0.9, "{report:?}");
    assert!(train::accuracy(&trained, data, 128)? > 0.9);
    // The original model is untouched and is not already accurate.
    assert!(train::accuracy(&model, data, 128)? < 0.5);
    Ok(())
}

#[test]
fn sgd_reduces_the_loss_of_an_mlp() -> Result<()> {
    let (images, labels) = toy_problem(200, 5);
    let model = zoo::build(Architecture::KindermansMlp, [1, 28, 28], 10, 2)?;
    let config = TrainConfig {
        optimizer: OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, weight_decay: 0.0 },
        batch_size: 20,
        max_epochs: 3,
        target_accuracy: None,
        seed: 4,
    };
    let (_, report) = train::train(
        &model,
        LabelledData { images: &images, labels: &labels },
        None,
        &config,
        &mut Silent,
    )?;
    assert!(report.epochs[2].train_loss < report.epochs[0].train_loss, "{report:?}");
    Ok(())
}

#[test]
fn training_rejects_bad_labels() {
    let (images, mut labels) = toy_problem(20, 5);
    labels[3] = 10;
    let model = zoo::build(Architecture::Lenet, [1, 28, 28], 10, 2).unwrap();
    let r = train::train(
        &model,
        LabelledData { images: &images, labels: &labels },
        None,
        &TrainConfig::default(),
        &mut Silent,
    );
    assert!(matches!(r, Err(Error::InvalidInput(_))));
}

/// Training's backward walk skips the first layer's input VJP: the parameter gradients are
/// bit for bit those of the full walk, and the relevance at the input is reported as zero.
#[test]
fn parameter_gradients_do_not_need_the_input_relevance() -> Result<()> {
    let model = zoo::build(Architecture::ScCnn, [1, 28, 28], 10, 3)?;
    let x = uniform(&[3, 1, 28, 28], 9);
    let trace = model.trace(&x)?;
    let seed = trace.logits().ones_like()?;
    let full = skepsis_nn::BackwardPass::new(&model, &trace).parameter_gradients().run(&seed)?;
    let lean = skepsis_nn::BackwardPass::new(&model, &trace)
        .parameter_gradients()
        .without_input_relevance()
        .run(&seed)?;
    assert_eq!(full.parameter_gradients.len(), lean.parameter_gradients.len());
    for ((k1, g1), (k2, g2)) in full.parameter_gradients.iter().zip(&lean.parameter_gradients) {
        assert_eq!(k1, k2);
        assert_eq!(max_abs_diff(g1, g2), 0.0, "{k1}");
    }
    assert!(max_abs_diff(&full.relevance, &full.relevance.zeros_like()?) > 0.0);
    assert_eq!(max_abs_diff(&lean.relevance, &lean.relevance.zeros_like()?), 0.0);
    assert_eq!(lean.relevance.dims(), x.dims());
    Ok(())
}
