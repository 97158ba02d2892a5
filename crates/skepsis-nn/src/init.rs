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
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use std::mem::MaybeUninit;

use crate::ops::{vec_written_by, Element};
use crate::ziggurat::TruncatedNormals;
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
        let draw = self.distribution(fans);
        (0..n).map(|_| draw.value(rng)).collect()
    }

    /// The distribution this initializer draws from for a parameter with these fans.
    fn distribution(&self, fans: Fans) -> Draw {
        let fan_in = fans.fan_in.max(1) as f64;
        let fan_out = fans.fan_out.max(1) as f64;
        match *self {
            Initializer::PytorchDefault => Draw::symmetric(1.0 / fan_in.sqrt()),
            Initializer::GlorotUniform => Draw::symmetric((6.0 / (fan_in + fan_out)).sqrt()),
            Initializer::TruncatedNormal { std } => Draw::TruncatedNormal { std },
            Initializer::TruncatedNormalFanIn { gain } => {
                Draw::TruncatedNormal { std: gain / fan_in.sqrt() }
            }
            Initializer::Uniform { low, high } => Draw::Uniform { low, high },
            Initializer::Constant { value } => Draw::Constant(value),
        }
    }

    /// A tensor of the given shape, dtype and device drawn from this initializer.
    ///
    /// A tensor of at most [`SEQUENTIAL_DRAW`] values is drawn from `rng` in order. A larger
    /// one (a fully connected layer's weight: 3.2 million values in the Sanity Checks CNN's
    /// fc1) is drawn in parallel chunks of [`SEQUENTIAL_DRAW`] values: one key is taken from
    /// `rng`, and chunk `c` draws from Xoshiro256++ seeded by ChaCha8 with the key on stream
    /// `c`. The values depend on the seed alone, never on the number of threads.
    pub fn tensor(
        &self,
        dims: &[usize],
        fans: Fans,
        dtype: DType,
        device: &Device,
        rng: &mut impl Rng,
    ) -> Result<Tensor> {
        let n: usize = dims.iter().product();
        let draw = self.distribution(fans);
        let cpu = &Device::Cpu;
        let host = if n <= SEQUENTIAL_DRAW || matches!(draw, Draw::Constant(_)) {
            Tensor::from_vec(self.sample(n, fans, rng), dims, cpu)?.to_dtype(dtype)?
        } else {
            let key: u64 = rng.random();
            match dtype {
                // Drawn in f64 and rounded once, as `to_dtype` rounds.
                DType::F32 => Tensor::from_vec(draw.chunked(n, key, |v| v as f32), dims, cpu)?,
                _ => Tensor::from_vec(draw.chunked(n, key, |v| v), dims, cpu)?.to_dtype(dtype)?,
            }
        };
        Ok(host.to_device(device)?)
    }
}

/// Tensors with more values than this are drawn in parallel chunks of this many values
/// ([`Initializer::tensor`]); smaller ones keep the single sequential stream.
pub const SEQUENTIAL_DRAW: usize = 1 << 16;

/// One initializer's distribution, its bounds resolved from the parameter's fans.
#[derive(Clone, Copy, Debug)]
enum Draw {
    Uniform { low: f64, high: f64 },
    TruncatedNormal { std: f64 },
    Constant(f64),
}

impl Draw {
    fn symmetric(bound: f64) -> Draw {
        Draw::Uniform { low: -bound, high: bound }
    }

    fn value(self, rng: &mut (impl Rng + ?Sized)) -> f64 {
        match self {
            Draw::Uniform { low, high } => rng.random_range(low..high),
            Draw::TruncatedNormal { std } => truncated_normal(std, rng),
            Draw::Constant(value) => value,
        }
    }

    /// `n` values; chunk `c` of [`SEQUENTIAL_DRAW`] values is drawn, the chunks in parallel,
    /// from ChaCha8(`key`) on stream `c`: for the truncated normal, by eight Xoshiro256++
    /// generators stepped side by side and the ziggurat ([`TruncatedNormals`], 0.9 ns per value
    /// on one thread); for the uniform, by one Xoshiro256++ seeded with its first 256 bits.
    /// Xoshiro256++ (Blackman & Vigna 2021) passes the same statistical batteries as ChaCha8
    /// and makes a value in a third of its time. The storage is written once, without being
    /// zeroed first. (One generator per value, a call per value, made a truncated-normal value
    /// cost 8.9 ns; the SC CNN's fc1 weight took 28.6 ms on one thread.)
    fn chunked<T: Element>(self, n: usize, key: u64, cast: impl Fn(f64) -> T + Sync) -> Vec<T> {
        let fill = |out: &mut [MaybeUninit<T>]| {
            out.par_chunks_mut(SEQUENTIAL_DRAW).enumerate().for_each(|(c, chunk)| {
                let mut seeder = ChaCha8Rng::seed_from_u64(key);
                seeder.set_stream(c as u64);
                match self {
                    Draw::Uniform { low, high } => {
                        let mut rng = Xoshiro256PlusPlus::from_rng(&mut seeder);
                        write_each(chunk, || cast(rng.random_range(low..high)))
                    }
                    Draw::TruncatedNormal { std } => {
                        TruncatedNormals::new(&mut seeder).fill(chunk, |z| cast(z * std))
                    }
                    Draw::Constant(value) => write_each(chunk, || cast(value)),
                }
            })
        };
        // SAFETY: the chunks cover the storage and every element of a chunk is written.
        unsafe { vec_written_by(n, fill) }
    }
}

/// Writes `value()` into every element of `out`, in order.
#[inline(always)]
fn write_each<T>(out: &mut [MaybeUninit<T>], mut value: impl FnMut() -> T) {
    for v in out {
        v.write(value());
    }
}

/// Normal(0, std) re-drawn until within two standard deviations.
#[inline(always)]
fn truncated_normal(std: f64, rng: &mut (impl Rng + ?Sized)) -> f64 {
    loop {
        let z: f64 = StandardNormal.sample(rng);
        if z.abs() <= 2.0 {
            return z * std;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const FANS: Fans = Fans { fan_in: 3136, fan_out: 1024 };

    fn values(init: &Initializer, n: usize, seed: u64) -> Vec<f32> {
        let t = init.tensor(&[n], FANS, DType::F32, &Device::Cpu, &mut layer_rng(seed, 2));
        t.unwrap().to_vec1::<f32>().unwrap()
    }

    /// A tensor drawn in chunks follows the initializer's distribution: truncated normal
    /// within two standard deviations, with the truncated law's standard deviation
    /// `0.87962 std`; uniform inside its bounds with variance `bound^2 / 3`.
    #[test]
    fn chunked_draws_follow_the_distribution() {
        let n = 3 * SEQUENTIAL_DRAW + 123;
        let std = 0.1;
        let tn = values(&Initializer::TruncatedNormal { std }, n, 5);
        assert!(tn.iter().all(|v| v.abs() <= (2.0 * std) as f32));
        let moments = |v: &[f32]| {
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
            (mean, var.sqrt())
        };
        let (mean, sd) = moments(&tn);
        assert!(mean.abs() < 1e-3, "mean {mean}");
        assert!((sd / std - 0.87962).abs() < 0.005, "std {sd}");
        let bound = 1.0 / (FANS.fan_in as f64).sqrt();
        let u = values(&Initializer::PytorchDefault, n, 5);
        assert!(u.iter().all(|v| v.abs() < bound as f32));
        let (mean, sd) = moments(&u);
        assert!(mean.abs() < 1e-3 * bound, "mean {mean}");
        assert!((sd / (bound / 3f64.sqrt()) - 1.0).abs() < 0.005, "std {sd}");
        // Every chunk has its own stream.
        let chunk = |c: usize| &tn[c * SEQUENTIAL_DRAW..][..1000];
        assert_ne!(chunk(0), chunk(1));
        assert_ne!(chunk(1), chunk(2));
    }

    /// Chunk `c` is the documented stream: the key from the layer's generator, then
    /// ChaCha8(key) on stream `c` seeding Xoshiro256++ (uniform: one `Draw::value` per
    /// element in order) or the eight-lane ziggurat (truncated normal, scaled by `std`).
    #[test]
    fn chunks_are_the_documented_streams() {
        let n = 2 * SEQUENTIAL_DRAW + 17;
        let std = 0.1;
        for init in [Initializer::TruncatedNormal { std }, Initializer::PytorchDefault] {
            let draw = init.distribution(FANS);
            let key: u64 = layer_rng(6, 2).random();
            let mut expected = Vec::with_capacity(n);
            for c in 0..n.div_ceil(SEQUENTIAL_DRAW) {
                let mut seeder = ChaCha8Rng::seed_from_u64(key);
                seeder.set_stream(c as u64);
                let len = SEQUENTIAL_DRAW.min(n - c * SEQUENTIAL_DRAW);
                if matches!(draw, Draw::TruncatedNormal { .. }) {
                    let mut chunk = vec![MaybeUninit::uninit(); len];
                    TruncatedNormals::new(&mut seeder).fill(&mut chunk, |z| (z * std) as f32);
                    // SAFETY: `fill` initializes every element.
                    expected.extend(chunk.into_iter().map(|v| unsafe { v.assume_init() }));
                } else {
                    let mut rng = Xoshiro256PlusPlus::from_rng(&mut seeder);
                    expected.extend((0..len).map(|_| draw.value(&mut rng) as f32));
                }
            }
            assert_eq!(values(&init, n, 6), expected, "{init:?}");
        }
    }

    /// The values depend on the seed, never on the number of threads.
    #[test]
    fn chunked_draws_do_not_depend_on_threads() {
        let init = Initializer::TruncatedNormal { std: 0.1 };
        let n = 5 * SEQUENTIAL_DRAW + 7;
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| values(&init, n, 9))
        };
        let one = on(1);
        assert_eq!(one, on(3));
        assert_ne!(one, values(&init, n, 10));
    }

    /// Tensors of at most `SEQUENTIAL_DRAW` values keep the sequential stream (`sample`), and
    /// f64 tensors are the f32 draws before rounding.
    #[test]
    fn small_tensors_keep_the_sequential_stream() {
        let init = Initializer::GlorotUniform;
        let n = SEQUENTIAL_DRAW;
        let expected = init.sample(n, FANS, &mut layer_rng(4, 2));
        let f32s = values(&init, n, 4);
        assert!(expected.iter().zip(&f32s).all(|(&e, &v)| e as f32 == v));
        let big = 2 * SEQUENTIAL_DRAW;
        let t = init.tensor(&[big], FANS, DType::F64, &Device::Cpu, &mut layer_rng(4, 2)).unwrap();
        let f64s = t.to_vec1::<f64>().unwrap();
        assert!(f64s.iter().zip(values(&init, big, 4)).all(|(&e, v)| e as f32 == v));
    }
}
