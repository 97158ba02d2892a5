//! Builders for hand-written ONNX graphs (encoded with skepsis' own protobuf types) and the
//! location of the conformance fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use prost::Message;
use skepsis_nn::onnx::proto::{
    data_type, AttributeProto, AttributeType, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use skepsis_nn::{Model, Result};

/// `SKEPSIS_CONFORMANCE_DIR`, default `shared/conformance` next to the repository.
pub fn conformance_dir() -> PathBuf {
    match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    }
}

/// The conformance model directories (each holds model.json, model.safetensors, model.onnx).
pub fn conformance_models() -> Vec<PathBuf> {
    let dir = conformance_dir().join("models");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e} (set SKEPSIS_CONFORMANCE_DIR)", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no model.onnx under {}", dir.display());
    out
}

/// A float tensor stored as little-endian `raw_data`.
pub fn float_tensor(name: &str, dims: &[i64], data: &[f64]) -> TensorProto {
    assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "{name}");
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: Some(data.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A double tensor in `double_data` (exact in f64 tests).
pub fn double_tensor(name: &str, dims: &[i64], data: &[f64]) -> TensorProto {
    assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "{name}");
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::DOUBLE,
        double_data: data.to_vec(),
        ..Default::default()
    }
}

/// An int64 tensor in `int64_data`.
pub fn int_tensor(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: data_type::INT64,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i, r#type: AttributeType::Int as i32, ..Default::default() }
}

pub fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}

pub fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: AttributeType::String as i32,
        ..Default::default()
    }
}

pub fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        t: Some(t),
        r#type: AttributeType::Tensor as i32,
        ..Default::default()
    }
}

pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A float value with a shape (`None`: symbolic dimension `N`).
pub fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(v) => Dimension { dim_value: Some(*v), dim_param: None },
            None => Dimension { dim_value: None, dim_param: Some("N".into()) },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// A model with one input `input` of per-sample shape `sample` (dynamic batch) and one
/// output `output`.
pub fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    sample: &[i64],
    output: &str,
) -> ModelProto {
    let mut dims = vec![None];
    dims.extend(sample.iter().map(|&d| Some(d)));
    ModelProto {
        ir_version: 8,
        producer_name: "skepsis-test".into(),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
        graph: Some(GraphProto {
            name: "test".into(),
            node: nodes,
            initializer,
            input: vec![value_info("input", &dims)],
            output: vec![ValueInfoProto { name: output.into(), r#type: None }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Encodes `m` and imports the bytes (f64 weights on the CPU).
pub fn import(m: &ModelProto) -> Result<Model> {
    skepsis_nn::onnx::import_bytes(&m.encode_to_vec(), "test", None, DType::F64, &Device::Cpu)
}

/// Deterministic pseudo-random values in [-1, 1) (a 64-bit LCG; no extra dependency).
pub fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}
