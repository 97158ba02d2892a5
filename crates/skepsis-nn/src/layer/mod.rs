//! The operations a [`Model`](crate::Model) node can hold.
//!
//! Adding an operation means one variant here, its forward, its gradient
//! (vector-Jacobian product) in `vjp`, its (de)serialization in `model_file`, and a
//! finite-difference test.

mod affine;
mod forward;
mod vjp;

pub use affine::{BatchNorm2d, Conv2d, Linear};

use rand_chacha::ChaCha8Rng;

use crate::init::{Fans, Initializer};
use crate::ops::Pool2dSpec;
use crate::{Error, Result};
use candle_core::Tensor;

/// One operation of the layer graph. Weights use PyTorch layouts (conv OIHW, linear
/// `[out, in]`) and activations NCHW.
#[derive(Clone, Debug)]
pub enum Layer {
    /// `y = x W^T + b` on `[N, in]` inputs.
    Linear(Linear),
    /// 2-D convolution (stride, padding, dilation, groups).
    Conv2d(Conv2d),
    /// `max(x, 0)`; its derivative at 0 is taken as 0 (PyTorch).
    Relu,
    /// `x` for `x > 0`, `negative_slope * x` otherwise.
    LeakyRelu {
        negative_slope: f64,
    },
    Tanh,
    Sigmoid,
    /// Softmax over axis 1 (classes or channels).
    Softmax,
    MaxPool2d(Pool2dSpec),
    AvgPool2d(Pool2dSpec),
    /// Average pooling to a fixed output size (PyTorch's bins).
    AdaptiveAvgPool2d {
        output_size: [usize; 2],
    },
    /// Batch normalization in evaluation mode (running statistics).
    BatchNorm2d(BatchNorm2d),
    /// `[N, d1, d2, ...] -> [N, d1 * d2 * ...]` in row-major order.
    Flatten,
    /// Reshape each sample to `shape` (batch axis kept).
    Reshape {
        shape: Vec<usize>,
    },
    /// Identity at evaluation time; `p` is kept for the record.
    Dropout {
        p: f64,
    },
    Identity,
    /// Element-wise sum of all inputs (residual connections).
    Add,
    /// Concatenation of all inputs along tensor axis `axis` (1 = channels; the batch axis 0
    /// cannot be concatenated).
    Concat {
        axis: usize,
    },
}

/// The layer type names used in `model.json`, in the order of [`Layer`]'s variants.
pub const LAYER_KINDS: &[&str] = &[
    "linear",
    "conv2d",
    "relu",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "softmax",
    "maxpool2d",
    "avgpool2d",
    "adaptive_avgpool2d",
    "batchnorm2d",
    "flatten",
    "reshape",
    "dropout",
    "identity",
    "add",
    "concat",
];

impl Layer {
    /// The layer's type name as written in `model.json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Linear(_) => "linear",
            Layer::Conv2d(_) => "conv2d",
            Layer::Relu => "relu",
            Layer::LeakyRelu { .. } => "leaky_relu",
            Layer::Tanh => "tanh",
            Layer::Sigmoid => "sigmoid",
            Layer::Softmax => "softmax",
            Layer::MaxPool2d(_) => "maxpool2d",
            Layer::AvgPool2d(_) => "avgpool2d",
            Layer::AdaptiveAvgPool2d { .. } => "adaptive_avgpool2d",
            Layer::BatchNorm2d(_) => "batchnorm2d",
            Layer::Flatten => "flatten",
            Layer::Reshape { .. } => "reshape",
            Layer::Dropout { .. } => "dropout",
            Layer::Identity => "identity",
            Layer::Add => "add",
            Layer::Concat { .. } => "concat",
        }
    }

    /// Number of inputs the layer takes (`None`: two or more).
    pub fn arity(&self) -> Option<usize> {
        match self {
            Layer::Add | Layer::Concat { .. } => None,
            _ => Some(1),
        }
    }

    /// Linear and Conv2d: the layers that LRP rules and GradCAM treat as "weighted".
    pub fn is_affine(&self) -> bool {
        matches!(self, Layer::Linear(_) | Layer::Conv2d(_))
    }

    /// Whether the layer holds tensors (weights or BatchNorm statistics).
    pub fn has_parameters(&self) -> bool {
        matches!(self, Layer::Linear(_) | Layer::Conv2d(_) | Layer::BatchNorm2d(_))
    }

    /// The layer's tensors with their PyTorch key suffixes (`weight`, `bias`,
    /// `running_mean`, `running_var`).
    pub fn named_tensors(&self) -> Vec<(&'static str, &Tensor)> {
        match self {
            Layer::Linear(l) => with_bias(&l.weight, l.bias.as_ref()),
            Layer::Conv2d(c) => with_bias(&c.weight, c.bias.as_ref()),
            Layer::BatchNorm2d(b) => vec![
                ("weight", &b.weight),
                ("bias", &b.bias),
                ("running_mean", &b.running_mean),
                ("running_var", &b.running_var),
            ],
            _ => Vec::new(),
        }
    }

    /// The tensors that training updates (everything but BatchNorm running statistics).
    pub fn trainable_tensors(&self) -> Vec<(&'static str, &Tensor)> {
        self.named_tensors()
            .into_iter()
            .filter(|(k, _)| !matches!(*k, "running_mean" | "running_var"))
            .collect()
    }

    /// A copy with the tensor `suffix` replaced; the shape must not change.
    pub fn with_tensor(&self, suffix: &str, tensor: Tensor) -> Result<Layer> {
        let mut layer = self.clone();
        let slot: &mut Tensor = match (&mut layer, suffix) {
            (Layer::Linear(l), "weight") => &mut l.weight,
            (Layer::Linear(l), "bias") if l.bias.is_some() => l.bias.as_mut().expect("checked"),
            (Layer::Conv2d(c), "weight") => &mut c.weight,
            (Layer::Conv2d(c), "bias") if c.bias.is_some() => c.bias.as_mut().expect("checked"),
            (Layer::BatchNorm2d(b), "weight") => &mut b.weight,
            (Layer::BatchNorm2d(b), "bias") => &mut b.bias,
            (Layer::BatchNorm2d(b), "running_mean") => &mut b.running_mean,
            (Layer::BatchNorm2d(b), "running_var") => &mut b.running_var,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "layer type '{}' has no tensor '{suffix}'",
                    self.kind()
                )))
            }
        };
        if slot.dims() != tensor.dims() {
            return Err(Error::ShapeMismatch {
                context: format!("tensor '{suffix}'"),
                expected: slot.dims().to_vec(),
                found: tensor.dims().to_vec(),
            });
        }
        *slot = tensor;
        Ok(layer)
    }

    /// The initializer of the tensor `suffix` (used by randomization).
    pub fn initializer(&self, suffix: &str) -> Initializer {
        match (self, suffix) {
            (Layer::Linear(l), "weight") => l.weight_init.clone(),
            (Layer::Linear(l), _) => l.bias_init.clone(),
            (Layer::Conv2d(c), "weight") => c.weight_init.clone(),
            (Layer::Conv2d(c), _) => c.bias_init.clone(),
            (Layer::BatchNorm2d(_), "weight") => Initializer::Constant { value: 1.0 },
            _ => Initializer::Constant { value: 0.0 },
        }
    }

    /// Fan-in and fan-out of the layer's weight, as PyTorch computes them.
    pub fn fans(&self) -> Fans {
        match self {
            Layer::Linear(l) => {
                let d = l.weight.dims();
                Fans { fan_in: d[1], fan_out: d[0] }
            }
            Layer::Conv2d(c) => {
                let d = c.weight.dims();
                let receptive = d[2] * d[3];
                Fans { fan_in: d[1] * receptive, fan_out: d[0] / c.spec.groups * receptive }
            }
            Layer::BatchNorm2d(b) => {
                let n = b.weight.dims()[0];
                Fans { fan_in: n, fan_out: n }
            }
            _ => Fans { fan_in: 1, fan_out: 1 },
        }
    }

    /// Draws fresh parameters for this layer (see [`crate::randomize`]).
    pub fn fresh(&self, rng: &mut ChaCha8Rng) -> Result<Layer> {
        self.reinitialized(rng, false)
    }
}

fn with_bias<'a>(weight: &'a Tensor, bias: Option<&'a Tensor>) -> Vec<(&'static str, &'a Tensor)> {
    let mut v = vec![("weight", weight)];
    if let Some(b) = bias {
        v.push(("bias", b));
    }
    v
}
