//! Control "methods" shown next to real ones: a uniform random map and a Sobel edge
//! detector. A saliency method whose maps are no closer to the model than these fails the
//! sanity checks (Adebayo et al. 2018; Kim et al. 2022).

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use skepsis_nn::Model;

use crate::ig_baseline::reflect;
use crate::rows::{from_host, require_images, to_host};
use crate::{Attribution, Method, Result, Target};

/// Settings of [`RandomMap`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomMapSettings {
    /// Seed of the ChaCha8 generator (the same maps on every call).
    pub seed: u64,
}

/// Uniform random map: every element i.i.d. `U[0, 1)`, drawn in row-major order over the
/// batch from a ChaCha8 generator seeded with `seed`. Independent of the model and of the
/// input's values (the model is not even run); the baseline of SMERF (Kim et al. 2022) and
/// of Binder et al. 2023.
///
/// The stream is drawn in blocks of [`RANDOM_MAP_BLOCK`] values in parallel, each block's
/// generator moved to the block's position in the stream (each value takes two 32-bit
/// words): the values of one sequential pass, whatever the number of threads.
#[derive(Clone, Debug, Default)]
pub struct RandomMap {
    pub settings: RandomMapSettings,
}

impl Method for RandomMap {
    fn name(&self) -> String {
        format!("random:seed={}", self.settings.seed)
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let mut v = vec![0.0f64; x.elem_count()];
        v.par_chunks_mut(RANDOM_MAP_BLOCK).enumerate().for_each(|(b, block)| {
            let mut rng = ChaCha8Rng::seed_from_u64(self.settings.seed);
            rng.set_word_pos(2 * (b * RANDOM_MAP_BLOCK) as u128);
            block.iter_mut().for_each(|value| *value = rng.random::<f64>());
        });
        Ok(Attribution { map: from_host(v, x.dims(), x)?, targets, completeness_delta: None })
    }
}

/// Values of [`RandomMap`] drawn per parallel task.
pub const RANDOM_MAP_BLOCK: usize = 4096;

/// Settings of [`SobelEdges`] (none yet; kept for a uniform registry and reports).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SobelSettings {}

/// Sobel edge detector on the input, per channel, as `skimage.filters.sobel`:
/// `g_r = K_r * x`, `g_c = K_c * x` with `K_r = [1, 2, 1]^T [1, 0, -1] / 4` and its transpose
/// (correlation, borders mirrored half-sample symmetric, scipy's `reflect`), and
/// `map = sqrt((g_r^2 + g_c^2) / 2)`: non-negative, at most the input's range. The model is
/// not used beyond resolving the target: an "explanation" that is pure input structure.
#[derive(Clone, Debug, Default)]
pub struct SobelEdges {
    pub settings: SobelSettings,
}

impl Method for SobelEdges {
    fn name(&self) -> String {
        "sobel".into()
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let [_, _, h, w] = require_images("sobel", x)?;
        let v = to_host(x)?;
        let mut out = Vec::with_capacity(v.len());
        for plane in v.chunks_exact(h * w) {
            let at = |r: isize, c: isize| plane[reflect(r, h) * w + reflect(c, w)];
            for r in 0..h as isize {
                for c in 0..w as isize {
                    let smooth_c = |rr: isize| at(rr, c - 1) + 2.0 * at(rr, c) + at(rr, c + 1);
                    let smooth_r = |cc: isize| at(r - 1, cc) + 2.0 * at(r, cc) + at(r + 1, cc);
                    let g_r = (smooth_c(r - 1) - smooth_c(r + 1)) / 4.0;
                    let g_c = (smooth_r(c - 1) - smooth_r(c + 1)) / 4.0;
                    out.push(((g_r * g_r + g_c * g_c) / 2.0).sqrt());
                }
            }
        }
        Ok(Attribution { map: from_host(out, x.dims(), x)?, targets, completeness_delta: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The blocks drawn in parallel are one sequential ChaCha8 stream, cut anywhere (the
    /// batch spans several blocks and ends inside one), in 1- and 3-thread pools.
    #[test]
    fn random_map_is_one_sequential_stream() {
        let model = skepsis_nn::zoo::build(
            skepsis_nn::zoo::Architecture::parse("sc-cnn").unwrap(),
            [1, 28, 28],
            10,
            0,
        )
        .unwrap();
        let x = Tensor::zeros((11, 1, 28, 28), candle_core::DType::F32, &Device::Cpu).unwrap();
        let method = RandomMap { settings: RandomMapSettings { seed: 42 } };
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let want: Vec<f32> = (0..x.elem_count()).map(|_| rng.random::<f64>() as f32).collect();
        assert!(want.len() > 2 * RANDOM_MAP_BLOCK && want.len() % RANDOM_MAP_BLOCK != 0);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let a = pool.install(|| method.attribute(&model, &x, &Target::Classes(vec![0; 11])));
            let got = a.unwrap().map.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got, want, "{threads} thread(s)");
        }
    }

    #[test]
    fn sobel_of_a_vertical_step_edge() {
        // Columns 0..2 are 0, columns 2..4 are 1: at columns 1 and 2 the column gradient is
        // (1 * 4) / 4 = 1 in magnitude, so the map is sqrt(1 / 2); elsewhere 0.
        let v: Vec<f64> = (0..16).map(|i| if i % 4 >= 2 { 1.0 } else { 0.0 }).collect();
        let x = Tensor::from_vec(v, (1, 1, 4, 4), &Device::Cpu).unwrap();
        let model = skepsis_nn::zoo::build(skepsis_nn::zoo::Architecture::ScMlp, [1, 4, 4], 2, 0)
            .unwrap()
            .to_dtype(candle_core::DType::F64)
            .unwrap();
        let m = SobelEdges::default().attribute(&model, &x, &Target::Classes(vec![0])).unwrap();
        let m = to_host(&m.map).unwrap();
        for (i, v) in m.iter().enumerate() {
            let expected = if matches!(i % 4, 1 | 2) { 0.5f64.sqrt() } else { 0.0 };
            assert!((v - expected).abs() < 1e-12, "{i}: {v}");
        }
    }
}
