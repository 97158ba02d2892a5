//! `model.json` + `model.safetensors`: the on-disk form of a [`Model`].
//!
//! `model.json` describes the graph:
//!
//! ```json
//! { "name": "cnn", "input_shape": [1, 28, 28], "num_classes": 10,
//!   "class_names": ["0", "1", ...], "preprocessing": { "color": "grayscale", "scale": 0.00392 },
//!   "layers": [
//!     { "name": "conv1", "type": "conv2d", "in_channels": 1, "out_channels": 8,
//!       "kernel_size": [3, 3], "stride": [1, 1], "padding": [1, 1], "bias": true,
//!       "init": { "weight": { "kind": "truncated_normal", "std": 0.1 } } },
//!     { "name": "relu1", "type": "relu" },
//!     { "name": "skip", "type": "add", "inputs": ["relu1", "conv2"] } ] }
//! ```
//!
//! Layers are applied in list order; a layer without `inputs` consumes the previous
//! layer's output (`"input"` names the model input). `padding` is `[ph, pw]` (symmetric)
//! or `[top, left, bottom, right]` (ONNX order). `model.safetensors` holds the tensors
//! under PyTorch keys (`conv1.weight` OIHW, `fc1.weight` `[out, in]`, `bn1.running_mean`,
//! ...). The conformance fixtures of `shared/conformance/models` load as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::init::Initializer;
use crate::layer::LAYER_KINDS;
use crate::ops::{Conv2dSpec, Padding2d, Pool2dSpec};
use crate::{
    BatchNorm2d, Conv2d, Error, Layer, Linear, Model, Node, Preprocessing, Result, ValueId,
};

/// File name of the graph description inside a model directory.
pub const MODEL_JSON: &str = "model.json";
/// File name of the weights inside a model directory.
pub const MODEL_WEIGHTS: &str = "model.safetensors";

#[derive(Debug, Serialize, Deserialize)]
struct ModelFile {
    name: String,
    input_shape: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_classes: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    class_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preprocessing: Option<Preprocessing>,
    layers: Vec<serde_json::Value>,
}

/// A pair written as `n` or `[a, b]`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Pair {
    One(usize),
    Two([usize; 2]),
}

impl Pair {
    fn get(self) -> [usize; 2] {
        match self {
            Pair::One(v) => [v, v],
            Pair::Two(v) => v,
        }
    }
}

/// Padding written as `n`, `[ph, pw]` or `[top, left, bottom, right]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum PaddingConfig {
    One(usize),
    List(Vec<usize>),
}

impl PaddingConfig {
    fn get(&self) -> std::result::Result<Padding2d, String> {
        match self {
            PaddingConfig::One(p) => Ok(Padding2d::symmetric(*p, *p)),
            PaddingConfig::List(v) => match v[..] {
                [ph, pw] => Ok(Padding2d::symmetric(ph, pw)),
                [top, left, bottom, right] => Ok(Padding2d { top, bottom, left, right }),
                _ => Err(format!("padding must have 2 or 4 entries, found {}", v.len())),
            },
        }
    }

    fn from(p: Padding2d) -> Self {
        match p.as_symmetric() {
            Some((ph, pw)) => PaddingConfig::List(vec![ph, pw]),
            None => PaddingConfig::List(vec![p.top, p.left, p.bottom, p.right]),
        }
    }
}

fn one() -> Pair {
    Pair::One(1)
}
fn zero_padding() -> PaddingConfig {
    PaddingConfig::One(0)
}
fn yes() -> bool {
    true
}
fn groups_default() -> usize {
    1
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct InitConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<Initializer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bias: Option<Initializer>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LayerConfig {
    Linear {
        in_features: usize,
        out_features: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel_size: Pair,
        #[serde(default = "one")]
        stride: Pair,
        #[serde(default = "zero_padding")]
        padding: PaddingConfig,
        #[serde(default = "one")]
        dilation: Pair,
        #[serde(default = "groups_default")]
        groups: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    Relu,
    LeakyRelu {
        #[serde(default = "default_slope")]
        negative_slope: f64,
    },
    Tanh,
    Sigmoid,
    Softmax,
    #[serde(rename = "maxpool2d")]
    MaxPool2d {
        kernel_size: Pair,
        #[serde(default)]
        stride: Option<Pair>,
        #[serde(default = "zero_padding")]
        padding: PaddingConfig,
    },
    #[serde(rename = "avgpool2d")]
    AvgPool2d {
        kernel_size: Pair,
        #[serde(default)]
        stride: Option<Pair>,
        #[serde(default = "zero_padding")]
        padding: PaddingConfig,
        #[serde(default = "yes")]
        count_include_pad: bool,
    },
    #[serde(rename = "adaptive_avgpool2d")]
    AdaptiveAvgPool2d {
        output_size: Pair,
    },
    #[serde(rename = "batchnorm2d")]
    BatchNorm2d {
        num_features: usize,
        #[serde(default = "default_eps")]
        eps: f64,
    },
    Flatten,
    Reshape {
        shape: Vec<usize>,
    },
    Dropout {
        #[serde(default = "default_dropout")]
        p: f64,
    },
    Identity,
    Add,
    Concat {
        #[serde(default = "one_usize")]
        axis: usize,
    },
}

fn default_slope() -> f64 {
    0.01
}
fn default_eps() -> f64 {
    1e-5
}
fn default_dropout() -> f64 {
    0.5
}
fn one_usize() -> usize {
    1
}

#[derive(Debug, Serialize, Deserialize)]
struct LayerEntry {
    name: String,
    #[serde(flatten)]
    config: LayerConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inputs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    init: Option<InitConfig>,
}

/// Where a model's files live: a directory holding `model.json` and `model.safetensors`,
/// or the path of a `model.json` with its weights beside it.
fn resolve(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_dir() {
        (path.join(MODEL_JSON), path.join(MODEL_WEIGHTS))
    } else {
        let dir = path.parent().unwrap_or(Path::new("."));
        (path.to_path_buf(), dir.join(MODEL_WEIGHTS))
    }
}

/// Loads a model from a directory (or `model.json` path), with its weights in `dtype` on
/// `device`. Every weight is checked: present, of the declared shape, finite.
pub fn load(path: &Path, dtype: DType, device: &Device) -> Result<Model> {
    let (json_path, weights_path) = resolve(path);
    let text = std::fs::read_to_string(&json_path).map_err(|e| Error::io(&json_path, e))?;
    let file: ModelFile = serde_json::from_str(&text)
        .map_err(|e| Error::ModelDescription { path: json_path.clone(), message: e.to_string() })?;
    let bytes = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
    let tensors = read_safetensors(&bytes, &weights_path, dtype, device)?;
    let model = build(&file, &json_path, &weights_path, tensors)?;
    if let Some(n) = file.num_classes {
        let found = model.num_classes()?;
        if found != n {
            return Err(Error::ModelDescription {
                path: json_path,
                message: format!("num_classes is {n} but the network outputs {found} values"),
            });
        }
    }
    Ok(model)
}

/// Parses safetensors bytes into tensors of `dtype`, with errors naming `path`.
pub fn read_safetensors(
    bytes: &[u8],
    path: &Path,
    dtype: DType,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let bad = |message: String| Error::Safetensors { path: path.to_path_buf(), message };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let t = candle_core::safetensors::Load::load(&view, &Device::Cpu)
            .map_err(|e| bad(format!("tensor '{name}': {e}")))?;
        out.insert(name, t.to_dtype(dtype)?.to_device(device)?);
    }
    Ok(out)
}

fn build(
    file: &ModelFile,
    json_path: &Path,
    weights_path: &Path,
    mut tensors: HashMap<String, Tensor>,
) -> Result<Model> {
    let describe =
        |message: String| Error::ModelDescription { path: json_path.to_path_buf(), message };
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut nodes = Vec::with_capacity(file.layers.len());
    for (i, value) in file.layers.iter().enumerate() {
        let name = value
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| describe(format!("layer {i} has no \"name\"")))?;
        let kind = value
            .get("type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| describe(format!("layer '{name}' has no \"type\"")))?;
        if !LAYER_KINDS.contains(&kind) {
            return Err(Error::UnknownLayerType {
                layer: name,
                kind: kind.to_string(),
                known: LAYER_KINDS.join(", "),
            });
        }
        let entry: LayerEntry = serde_json::from_value(value.clone())
            .map_err(|e| describe(format!("layer '{name}': {e}")))?;
        let mut take = |suffix: &str, dims: &[usize]| -> Result<Tensor> {
            let key = format!("{name}.{suffix}");
            let t = tensors.remove(&key).ok_or_else(|| Error::MissingWeight {
                layer: name.clone(),
                key: key.clone(),
                path: weights_path.to_path_buf(),
            })?;
            if t.dims() != dims {
                return Err(Error::ShapeMismatch {
                    context: format!(
                        "layer '{name}': weight '{key}' in {}",
                        weights_path.display()
                    ),
                    expected: dims.to_vec(),
                    found: t.dims().to_vec(),
                });
            }
            check_finite(&t, &name, &key)?;
            Ok(t)
        };
        let layer = layer_from_config(&entry, &mut take).map_err(|e| match e {
            Error::InvalidParameter { .. } => describe(format!("layer '{name}': {e}")),
            other => other,
        })?;
        let inputs = match &entry.inputs {
            None if i == 0 => vec![ValueId::INPUT],
            None => vec![ValueId::of_node(i - 1)],
            Some(list) => list
                .iter()
                .map(|n| match n.as_str() {
                    "input" => Ok(ValueId::INPUT),
                    other => names.get(other).map(|&j| ValueId::of_node(j)).ok_or_else(|| {
                        describe(format!(
                            "layer '{name}' takes input '{other}', which is not an earlier layer"
                        ))
                    }),
                })
                .collect::<Result<Vec<_>>>()?,
        };
        names.insert(name.clone(), i);
        nodes.push(Node { name, layer, inputs });
    }
    let mut leftover: Vec<String> =
        tensors.into_keys().filter(|k| !k.ends_with(".num_batches_tracked")).collect();
    if !leftover.is_empty() {
        leftover.sort();
        return Err(Error::Safetensors {
            path: weights_path.to_path_buf(),
            message: format!(
                "tensors not used by any layer of {}: {}",
                json_path.display(),
                leftover.join(", ")
            ),
        });
    }
    Ok(Model::new(&file.name, nodes, file.input_shape.clone())?
        .with_class_names(file.class_names.clone())
        .with_preprocessing(file.preprocessing.clone()))
}

fn check_finite(t: &Tensor, layer: &str, key: &str) -> Result<()> {
    let values = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::NonFiniteWeight { layer: layer.to_string(), key: key.to_string() })
    }
}

fn layer_from_config(
    entry: &LayerEntry,
    take: &mut impl FnMut(&str, &[usize]) -> Result<Tensor>,
) -> Result<Layer> {
    let init = entry.init.clone().unwrap_or_default();
    let context = format!("layer '{}'", entry.name);
    let padding = |p: &PaddingConfig| p.get().map_err(|m| Error::parameter(&context, "padding", m));
    Ok(match &entry.config {
        LayerConfig::Linear { in_features, out_features, bias } => {
            let w = take("weight", &[*out_features, *in_features])?;
            let b = if *bias { Some(take("bias", &[*out_features])?) } else { None };
            Layer::Linear(
                Linear::new(w, b)?
                    .with_init(init.weight.unwrap_or_default(), init.bias.unwrap_or_default()),
            )
        }
        LayerConfig::Conv2d {
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding: pad,
            dilation,
            groups,
            bias,
        } => {
            let [kh, kw] = kernel_size.get();
            if *groups == 0 || in_channels % groups != 0 {
                return Err(Error::parameter(&context, "groups", "must divide in_channels"));
            }
            let w = take("weight", &[*out_channels, in_channels / groups, kh, kw])?;
            let b = if *bias { Some(take("bias", &[*out_channels])?) } else { None };
            let spec = Conv2dSpec {
                stride: stride.get(),
                padding: padding(pad)?,
                dilation: dilation.get(),
                groups: *groups,
            };
            Layer::Conv2d(
                Conv2d::new(w, b, spec)?
                    .with_init(init.weight.unwrap_or_default(), init.bias.unwrap_or_default()),
            )
        }
        LayerConfig::Relu => Layer::Relu,
        LayerConfig::LeakyRelu { negative_slope } => {
            Layer::LeakyRelu { negative_slope: *negative_slope }
        }
        LayerConfig::Tanh => Layer::Tanh,
        LayerConfig::Sigmoid => Layer::Sigmoid,
        LayerConfig::Softmax => Layer::Softmax,
        LayerConfig::MaxPool2d { kernel_size, stride, padding: pad } => {
            Layer::MaxPool2d(Pool2dSpec {
                kernel: kernel_size.get(),
                stride: stride.unwrap_or(*kernel_size).get(),
                padding: padding(pad)?,
                count_include_pad: true,
            })
        }
        LayerConfig::AvgPool2d { kernel_size, stride, padding: pad, count_include_pad } => {
            Layer::AvgPool2d(Pool2dSpec {
                kernel: kernel_size.get(),
                stride: stride.unwrap_or(*kernel_size).get(),
                padding: padding(pad)?,
                count_include_pad: *count_include_pad,
            })
        }
        LayerConfig::AdaptiveAvgPool2d { output_size } => {
            Layer::AdaptiveAvgPool2d { output_size: output_size.get() }
        }
        LayerConfig::BatchNorm2d { num_features, eps } => {
            let c = [*num_features];
            Layer::BatchNorm2d(BatchNorm2d::new(
                take("weight", &c)?,
                take("bias", &c)?,
                take("running_mean", &c)?,
                take("running_var", &c)?,
                *eps,
            )?)
        }
        LayerConfig::Flatten => Layer::Flatten,
        LayerConfig::Reshape { shape } => Layer::Reshape { shape: shape.clone() },
        LayerConfig::Dropout { p } => Layer::Dropout { p: *p },
        LayerConfig::Identity => Layer::Identity,
        LayerConfig::Add => Layer::Add,
        LayerConfig::Concat { axis } => Layer::Concat { axis: *axis },
    })
}

fn config_of(layer: &Layer) -> (LayerConfig, Option<InitConfig>) {
    let pool = |s: &Pool2dSpec| {
        (Pair::Two(s.kernel), Some(Pair::Two(s.stride)), PaddingConfig::from(s.padding))
    };
    let config = match layer {
        Layer::Linear(l) => LayerConfig::Linear {
            in_features: l.in_features(),
            out_features: l.out_features(),
            bias: l.bias.is_some(),
        },
        Layer::Conv2d(c) => LayerConfig::Conv2d {
            in_channels: c.in_channels(),
            out_channels: c.out_channels(),
            kernel_size: Pair::Two(c.kernel_size()),
            stride: Pair::Two(c.spec.stride),
            padding: PaddingConfig::from(c.spec.padding),
            dilation: Pair::Two(c.spec.dilation),
            groups: c.spec.groups,
            bias: c.bias.is_some(),
        },
        Layer::Relu => LayerConfig::Relu,
        Layer::LeakyRelu { negative_slope } => {
            LayerConfig::LeakyRelu { negative_slope: *negative_slope }
        }
        Layer::Tanh => LayerConfig::Tanh,
        Layer::Sigmoid => LayerConfig::Sigmoid,
        Layer::Softmax => LayerConfig::Softmax,
        Layer::MaxPool2d(s) => {
            let (kernel_size, stride, padding) = pool(s);
            LayerConfig::MaxPool2d { kernel_size, stride, padding }
        }
        Layer::AvgPool2d(s) => {
            let (kernel_size, stride, padding) = pool(s);
            LayerConfig::AvgPool2d {
                kernel_size,
                stride,
                padding,
                count_include_pad: s.count_include_pad,
            }
        }
        Layer::AdaptiveAvgPool2d { output_size } => {
            LayerConfig::AdaptiveAvgPool2d { output_size: Pair::Two(*output_size) }
        }
        Layer::BatchNorm2d(b) => {
            LayerConfig::BatchNorm2d { num_features: b.num_features(), eps: b.eps }
        }
        Layer::Flatten => LayerConfig::Flatten,
        Layer::Reshape { shape } => LayerConfig::Reshape { shape: shape.clone() },
        Layer::Dropout { p } => LayerConfig::Dropout { p: *p },
        Layer::Identity => LayerConfig::Identity,
        Layer::Add => LayerConfig::Add,
        Layer::Concat { axis } => LayerConfig::Concat { axis: *axis },
    };
    let init = match layer {
        Layer::Linear(Linear { weight_init, bias_init, .. })
        | Layer::Conv2d(Conv2d { weight_init, bias_init, .. }) => {
            Some(InitConfig { weight: Some(weight_init.clone()), bias: Some(bias_init.clone()) })
        }
        _ => None,
    };
    (config, init)
}

/// The `model.json` text of `model`.
pub fn describe(model: &Model) -> Result<String> {
    let mut layers = Vec::with_capacity(model.nodes().len());
    for (i, node) in model.nodes().iter().enumerate() {
        let (config, init) = config_of(&node.layer);
        let sequential = node.inputs.len() == 1 && node.inputs[0] == ValueId(i);
        let inputs = (!sequential).then(|| {
            node.inputs
                .iter()
                .map(|v| v.node().map_or("input".to_string(), |j| model.nodes()[j].name.clone()))
                .collect()
        });
        let entry = LayerEntry { name: node.name.clone(), config, inputs, init };
        layers.push(serde_json::to_value(entry).map_err(|e| Error::InvalidInput(e.to_string()))?);
    }
    let file = ModelFile {
        name: model.name().to_string(),
        input_shape: model.input_shape().to_vec(),
        num_classes: Some(model.num_classes()?),
        class_names: model.class_names().to_vec(),
        preprocessing: model.preprocessing().cloned(),
        layers,
    };
    serde_json::to_string_pretty(&file).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// Writes `model.json` and `model.safetensors` into `dir` (created if needed). Existing
/// files are only replaced when `force` is set.
pub fn save(model: &Model, dir: &Path, force: bool) -> Result<()> {
    let json_path = dir.join(MODEL_JSON);
    let weights_path = dir.join(MODEL_WEIGHTS);
    for p in [&json_path, &weights_path] {
        if p.exists() && !force {
            return Err(Error::AlreadyExists { path: p.clone() });
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let text = describe(model)?;
    let tensors: HashMap<String, Tensor> = model
        .state_dict()
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&tensors, &weights_path)
        .map_err(|e| Error::Safetensors { path: weights_path.clone(), message: e.to_string() })?;
    std::fs::write(&json_path, text).map_err(|e| Error::io(&json_path, e))?;
    Ok(())
}
