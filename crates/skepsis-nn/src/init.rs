//! Weight initializers and seeded randomization of named layers.
//!
//! The model parameter randomization test of Adebayo et al. ("Sanity Checks for Saliency
//! Maps", NeurIPS 2018) re-runs each layer's *own* initializer on its trainable weights.
//! Every layer therefore records the initializer of its weight and bias, and
//! [`randomize`] re-draws them from a generator seeded per (seed, layer index), so that
//! two layers of the same shape never receive the same "random" weights (a defect of
//! Quantus' MPRT, see reference-protocols.md section 6).

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{Error, Layer, Model, Result};

/// How a parameter tensor is initialized.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Initializer {
    /// PyTorch's default for `nn.Linear` and `nn.Conv2d` weights and biases:
    /// `kaiming_uniform_(a = sqrt(5))`, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    #[default]
    PytorchDefault,
    /// Normal(0, std) re-drawn until inside two standard deviations (TensorFlow's
    /// `truncated_normal`, used by the Sanity Checks models with std 0.1).
    TruncatedNormal { std: f64 },
    /// Truncated normal with std = `gain / sqrt(fan_in)` (the Sanity Checks MLP: gain 2).
    TruncatedNormalFanIn { gain: f64 },
    /// Glorot/Xavier uniform, U(-sqrt(6/(fan_in+fan_out)), +sqrt(...)) (Keras' default
    /// kernel initializer, used by the SMERF models).
    GlorotUniform,
    /// Uniform on [low, high).
    Uniform { low: f64, high: f64 },
    /// Every element equal to `value`.
    Constant { value: f64 },
}

/// Fan-in and fan-out of a parameter, as PyTorch computes them for the layer's weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    pub fan_in: usize,
    pub fan_out: usize,
}

impl Initializer {
    /// Checks the parameters of the initializer.
    pub fn validate(&self, context: &str) -> Result<()> {
        let bad = |p: &str, m: &str| Err(Error::parameter(context, p, m));
        match *self {
            Initializer::TruncatedNormal { std } if !(std.is_finite() && std > 0.0) => {
                bad("std", "must be a positive finite number")
            }
            Initializer::TruncatedNormalFanIn { gain } if !(gain.is_finite() && gain > 0.0) => {
                bad("gain", "must be a positive finite number")
            }
            Initializer::Uniform { low, high }
                if !(low.is_finite() && high.is_finite() && low < high) =>
            {
                bad("low/high", "need finite low < high")
            }
            Initializer::Constant { value } if !value.is_finite() => bad("value", "must be finite"),
            _ => Ok(()),
        }
    }

    /// Draws `n` values from this initializer.
    pub fn sample(&self, n: usize, fans: Fans, rng: &mut impl Rng) -> Vec<f64> {
        let fan_in = fans.fan_in.max(1) as f64;
        let fan_out = fans.fan_out.max(1) as f64;
        let uniform = |bound: f64, rng: &mut dyn rand::RngCore| -> Vec<f64> {
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        match *self {
            Initializer::PytorchDefault => uniform(1.0 / fan_in.sqrt(), rng),
            Initializer::GlorotUniform => uniform((6.0 / (fan_in + fan_out)).sqrt(), rng),
            Initializer::TruncatedNormal { std } => truncated_normal(n, std, rng),
            Initializer::TruncatedNormalFanIn { gain } => {
                truncated_normal(n, gain / fan_in.sqrt(), rng)
            }
            Initializer::Uniform { low, high } => {
                (0..n).map(|_| rng.random_range(low..high)).collect()
            }
            Initializer::Constant { value } => vec![value; n],
        }
    }

    /// A tensor of the given shape, dtype and device drawn from this initializer.
    pub fn tensor(
        &self,
        dims: &[usize],
        fans: Fans,
        dtype: DType,
        device: &Device,
        rng: &mut impl Rng,
    ) -> Result<Tensor> {
        let n = dims.iter().product();
        let values = self.sample(n, fans, rng);
        Ok(Tensor::from_vec(values, dims, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
    }
}

fn truncated_normal(n: usize, std: f64, rng: &mut (impl Rng + ?Sized)) -> Vec<f64> {
    (0..n)
        .map(|_| loop {
            let z: f64 = StandardNormal.sample(rng);
            if z.abs() <= 2.0 {
                break z * std;
            }
        })
        .collect()
}

/// The generator used for layer `layer_index` under `seed`: ChaCha8 seeded from a
/// SplitMix64 mix of both, so that every (seed, layer) pair has its own stream and the
/// streams are identical on every platform.
pub fn layer_rng(seed: u64, layer_index: usize) -> ChaCha8Rng {
    let mut z = seed ^ (layer_index as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ChaCha8Rng::seed_from_u64(z)
}

/// Options of [`randomize`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomizeOptions {
    /// Also reset BatchNorm running statistics (mean 0, variance 1). Off by default: the
    /// Sanity Checks protocol keeps the trained statistics.
    pub reset_batchnorm_statistics: bool,
}

/// Returns a copy of `model` in which the trainable parameters of the named layers are
/// re-drawn from their own initializers; the original model is untouched.
///
/// The generator of a layer is [`layer_rng`]`(seed, index)` where `index` is the node's
/// position in the model, so randomizing `["fc2"]` gives the same fc2 weights whether or
/// not other layers are randomized in the same call (cascading and independent
/// randomization share their random weights).
pub fn randomize(
    model: &Model,
    layers: &[&str],
    seed: u64,
    options: RandomizeOptions,
) -> Result<Model> {
    let mut out = model.clone();
    for name in layers {
        let index = model.node_index(name)?;
        let node = &model.nodes()[index];
        if !node.layer.has_parameters() {
            return Err(Error::parameter(
                format!("randomize '{name}'"),
                "layers",
                format!("layer type '{}' has no trainable parameters", node.layer.kind()),
            ));
        }
        let mut rng = layer_rng(seed, index);
        let layer = node.layer.reinitialized(&mut rng, options.reset_batchnorm_statistics)?;
        out.replace_layer(index, layer)?;
    }
    Ok(out)
}

impl Layer {
    /// A copy of the layer with its trainable parameters re-drawn from its initializers.
    pub(crate) fn reinitialized(&self, rng: &mut ChaCha8Rng, reset_stats: bool) -> Result<Layer> {
        let mut layer = self.clone();
        for (suffix, tensor) in self.named_tensors() {
            let is_buffer = matches!(suffix, "running_mean" | "running_var");
            if is_buffer && !reset_stats {
                continue;
            }
            let init = match suffix {
                "running_mean" => Initializer::Constant { value: 0.0 },
                "running_var" => Initializer::Constant { value: 1.0 },
                _ => self.initializer(suffix),
            };
            let fresh =
                init.tensor(tensor.dims(), self.fans(), tensor.dtype(), tensor.device(), rng)?;
            layer = layer.with_tensor(suffix, fresh)?;
        }
        Ok(layer)
    }
}
