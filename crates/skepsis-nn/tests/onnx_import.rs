//! ONNX import of the conformance models: every `models/<name>/model.onnx` (exported by
//! torch.onnx) must give the same graph, state dict and logits as its model.json twin.

mod onnx_support;

use candle_core::{DType, Device, Tensor};
use skepsis_nn::{model_file, onnx, Model};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// A deterministic batch of 5 inputs in [0, 1) for `model`.
fn batch(model: &Model, dtype: DType) -> Tensor {
    let mut dims = vec![5];
    dims.extend_from_slice(model.input_shape());
    let n: usize = dims.iter().product();
    let v: Vec<f64> = onnx_support::values(7, n).iter().map(|x| (x + 1.0) / 2.0).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

fn check_model(dir: &std::path::Path, dtype: DType) {
    let reference = model_file::load(dir, dtype, &Device::Cpu).unwrap();
    let imported = onnx::import(&dir.join("model.onnx"), dtype, &Device::Cpu)
        .unwrap_or_else(|e| panic!("importing {}: {e}", dir.display()));
    let what = dir.display();
    assert_eq!(imported.name(), reference.name(), "{what}: model name");
    assert_eq!(imported.input_shape(), reference.input_shape(), "{what}: input shape");
    let names = |m: &Model| -> Vec<(String, &'static str)> {
        m.nodes().iter().map(|n| (n.name.clone(), n.layer.kind())).collect()
    };
    assert_eq!(names(&imported), names(&reference), "{what}: nodes");
    for (a, b) in imported.nodes().iter().zip(reference.nodes()) {
        assert_eq!(a.inputs, b.inputs, "{what}: inputs of {}", a.name);
        assert_eq!(
            format!("{:?}", spec(&a.layer)),
            format!("{:?}", spec(&b.layer)),
            "{what}: {}",
            a.name
        );
    }
    let (sa, sb) = (imported.state_dict(), reference.state_dict());
    assert_eq!(
        sa.iter().map(|(k, t)| (k.clone(), t.dims().to_vec())).collect::<Vec<_>>(),
        sb.iter().map(|(k, t)| (k.clone(), t.dims().to_vec())).collect::<Vec<_>>(),
        "{what}: state dict keys and shapes"
    );
    for ((k, a), (_, b)) in sa.iter().zip(&sb) {
        // The same float32 values: exactly equal.
        assert_eq!(
            max_abs_diff(&a.to_dtype(DType::F64).unwrap(), &b.to_dtype(DType::F64).unwrap()),
            0.0,
            "{what}: {k}"
        );
    }
    let x = batch(&reference, dtype);
    let (ya, yb) = (imported.forward(&x).unwrap(), reference.forward(&x).unwrap());
    let diff = max_abs_diff(&ya.to_dtype(DType::F64).unwrap(), &yb.to_dtype(DType::F64).unwrap());
    assert!(diff <= 1e-5, "{what}: logits differ by {diff:e}");
}

/// The geometry of a layer (everything but its tensors).
fn spec(layer: &skepsis_nn::Layer) -> String {
    use skepsis_nn::Layer;
    match layer {
        Layer::Conv2d(c) => {
            format!("conv {:?} {:?} bias={}", c.spec, c.weight.dims(), c.bias.is_some())
        }
        Layer::Linear(l) => format!("linear {:?} bias={}", l.weight.dims(), l.bias.is_some()),
        Layer::BatchNorm2d(b) => format!("bn {} {}", b.num_features(), b.eps),
        other => format!("{other:?}"),
    }
}

#[test]
fn conformance_models_import_like_their_model_json() {
    for dir in onnx_support::conformance_models() {
        check_model(&dir, DType::F32);
        check_model(&dir, DType::F64);
    }
}

#[test]
fn imported_model_round_trips_through_model_json() {
    let dir = onnx_support::conformance_models().into_iter().next().unwrap();
    let imported = onnx::import(&dir.join("model.onnx"), DType::F32, &Device::Cpu).unwrap();
    let out = tempfile::tempdir().unwrap();
    model_file::save(&imported, out.path(), false).unwrap();
    let reloaded = model_file::load(out.path(), DType::F32, &Device::Cpu).unwrap();
    let x = batch(&imported, DType::F32);
    let diff = max_abs_diff(
        &imported.forward(&x).unwrap().to_dtype(DType::F64).unwrap(),
        &reloaded.forward(&x).unwrap().to_dtype(DType::F64).unwrap(),
    );
    assert_eq!(diff, 0.0);
}

#[test]
fn import_bytes_names_the_model_and_rejects_f16() {
    let dir = onnx_support::conformance_models().into_iter().next().unwrap();
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let m = onnx::import_bytes(&bytes, "mine", None, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(m.name(), "mine");
    assert!(onnx::import_bytes(&bytes, "mine", None, DType::F16, &Device::Cpu).is_err());
}
