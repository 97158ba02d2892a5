//! ONNX import: an ONNX `ModelProto` becomes a skepsis [`Model`] with the same layer graph
//! that `model.json` describes, so every method and check runs on it.
//!
//! # Protobuf
//!
//! The file is decoded with [`prost`] into message structs transcribed by hand from
//! `onnx.proto` ([`proto`]; ONNX's Apache-2.0 notice is in `src/onnx/LICENSE-ONNX`).
//! Why this path: `prost` is the most widely used, maintained protobuf runtime in Rust; its
//! derive macro turns the structs into a decoder at compile time, so the build needs no
//! `protoc`, no build script and no network beyond `cargo fetch`; and owning the message
//! definitions lets the importer declare only what it reads and keep subgraphs opaque (see
//! [`proto`]). The alternatives were weighed: crates that ship the ONNX schema pre-generated
//! are small single-maintainer projects pinned to old ONNX versions (or pull a whole
//! inference runtime), and `protobuf` v3's pure-Rust `.proto` parser would move code
//! generation into a build script for a schema that changes a few fields per year. Before
//! decoding, `wire::check` validates the wire format and caps the number of messages,
//! since decoded messages are much larger than their encoding.
//!
//! # Operators (ONNX -> [`Layer`](crate::Layer))
//!
//! Opsets 11 to 21 of the default domain. "constant" means an initializer or the output of
//! a `Constant` node (or `Identity` of one); the batch axis is the first axis of the one
//! model input and is never reshaped, squeezed or concatenated.
//!
//! | ONNX | skepsis |
//! |---|---|
//! | `Conv` (4-D input, constant W, optional constant B; `group`, `dilations`, `strides`, `pads` incl. asymmetric, `auto_pad` NOTSET/VALID/SAME_UPPER/SAME_LOWER) | `Conv2d` |
//! | `Gemm` (`transA=0`; `transB` 0/1; `alpha`, `beta` folded into W and the bias; constant B, optional constant C broadcast to `[M]`) | `Linear` with `W = alpha * (B or B^T)`, `b = beta * C` |
//! | `MatMul` (`[N,K]` input, constant `[K,M]`) | `Linear` with `W = B^T`, no bias |
//! | `Add` of a constant to the only use of a bias-free or biased `Linear`/`Conv2d` output (per-output/per-channel constant) | fused into that layer's bias |
//! | `Add` of two or more activations of equal shape | `Add` |
//! | `Relu`, `Sigmoid`, `Tanh` | `Relu`, `Sigmoid`, `Tanh` |
//! | `LeakyRelu` (`alpha`, default 0.01) | `LeakyRelu { negative_slope: alpha }` |
//! | `Softmax` (axis 1 or -1 on `[N,C]`; axis 1 on any rank from opset 13) | `Softmax` |
//! | `MaxPool` (`ceil_mode=0`, `dilations` 1, pads below the kernel size, `auto_pad`) | `MaxPool2d` |
//! | `AveragePool` (`ceil_mode=0`, `dilations` 1, `count_include_pad`, `auto_pad`) | `AvgPool2d` |
//! | `GlobalAveragePool` | `AdaptiveAvgPool2d { output_size: [1, 1] }` |
//! | `BatchNormalization` (4-D input, constant scale/B/mean/var, `epsilon`, not training) | `BatchNorm2d` |
//! | `Flatten` (axis 1; axis k > 1 keeps axes 1..k) | `Flatten` (axis 1) or `Reshape` |
//! | `Reshape` (constant shape; 0 copies, -1 infers; first entry 0, -1 or the fixed batch) | `Flatten` (1-D result) or `Reshape` |
//! | `Squeeze`, `Unsqueeze` (constant axes: attribute before opset 13, input from 13; never axis 0) | `Flatten` or `Reshape` |
//! | `Concat` (activations, `axis` != 0) | `Concat { axis }` (one input: `Identity`) |
//! | `Dropout` (`ratio` attribute or constant input; `training_mode` false; mask unused) | `Dropout { p: ratio }` |
//! | `Identity` | `Identity` (of a constant: the constant) |
//! | `Constant` (`value`, `value_float(s)`, `value_int(s)`) | a constant |
//!
//! Attributes that an operator does not list are rejected, never ignored. Every other
//! operator (or domain) is reported in one [`Error::OnnxUnsupportedOperators`] that lists
//! all of them with their node names; the importer never returns a partial model. Nodes
//! whose results do not reach the graph output are skipped. Node names: see [`names`].
//!
//! Shapes are inferred statically from the model input's declared shape (only the batch
//! axis may be symbolic) and checked at every node and against the shapes the file declares
//! (`value_info`, outputs).
//!
//! # Hostile files
//!
//! Files over [`MAX_FILE_BYTES`], malformed or truncated protobuf, more than
//! [`MAX_MESSAGES`] messages, tensors whose dims disagree with their data or exceed
//! [`MAX_TENSOR_ELEMENTS`] elements, external data outside the model's folder,
//! cycles and dangling inputs are all rejected with typed errors before any large
//! allocation.

mod attrs;
mod build;
mod graph;
pub mod names;
mod ops;
pub mod proto;
mod reshape;
mod tensor;
mod window;
mod wire;

use std::path::Path;

use candle_core::{DType, Device};
use prost::Message;

pub use graph::{MAX_SAMPLE_ELEMENTS, OPSETS, SUPPORTED_OPERATORS};
pub use tensor::{MAX_TENSOR_ELEMENTS, MAX_TENSOR_RANK};
pub use wire::{MAX_FIELDS, MAX_MESSAGES};

use crate::{Error, Model, Result};

/// Largest ONNX file accepted (protobuf's own limit).
pub const MAX_FILE_BYTES: u64 = 2 << 30;
/// Most tensor elements decoded in one import (initializers and constants together).
pub const MAX_TOTAL_ELEMENTS: usize = 1 << 29;

/// Imports the ONNX file at `path` with weights in `dtype` on `device`. External tensor
/// data is looked up in the file's folder. The model is named after the file stem (after
/// the folder for a file called `model.onnx`).
pub fn import(path: &Path, dtype: DType, device: &Device) -> Result<Model> {
    let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if size > MAX_FILE_BYTES {
        return Err(Error::OnnxDecode {
            message: format!("{} holds {size} bytes (at most {MAX_FILE_BYTES})", path.display()),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = if stem == "model" {
        folder
            .canonicalize()
            .ok()
            .and_then(|f| f.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .unwrap_or_else(|| stem.to_string())
    } else {
        stem.to_string()
    };
    import_bytes(&bytes, &name, Some(folder), dtype, device)
}

/// Imports an ONNX model from memory and names it `name`. External tensor data is read
/// relative to `base_dir`; without one it is rejected.
pub fn import_bytes(
    bytes: &[u8],
    name: &str,
    base_dir: Option<&Path>,
    dtype: DType,
    device: &Device,
) -> Result<Model> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::OnnxDecode {
            message: format!("{} bytes (at most {MAX_FILE_BYTES})", bytes.len()),
        });
    }
    wire::check(bytes)?;
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| Error::OnnxDecode { message: e.to_string() })?;
    import_proto(&model, name, base_dir, dtype, device)
}

/// Imports a decoded ONNX model (see [`import_bytes`]).
pub fn import_proto(
    model: &proto::ModelProto,
    name: &str,
    base_dir: Option<&Path>,
    dtype: DType,
    device: &Device,
) -> Result<Model> {
    if !matches!(dtype, DType::F32 | DType::F64) {
        return Err(Error::InvalidInput(format!("ONNX import: dtype {dtype:?} is not F32 or F64")));
    }
    let analysis = graph::analyze(model)?;
    build::build(&analysis, name, base_dir, dtype, device)
}
