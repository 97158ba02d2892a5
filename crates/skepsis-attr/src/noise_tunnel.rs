//! NoiseTunnel: SmoothGrad (Smilkov et al. 2017), SmoothGrad^2 (Hooker et al. 2019) and
//! VarGrad (Adebayo et al. 2018) over any base method.

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use skepsis_nn::Model;

use crate::rows::{chunks, from_host, index_tensor, sample_len, to_host};
use crate::{Attribution, Error, Method, Result, Target};

/// How the noisy maps are reduced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseReduction {
    /// SmoothGrad (Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017):
    /// `(1/S) sum_s a_s`.
    #[default]
    SmoothGrad,
    /// SmoothGrad^2 (Hooker et al., "A Benchmark for Interpretability Methods in Deep
    /// Neural Networks", NeurIPS 2019): `(1/S) sum_s a_s^2`.
    SmoothGradSquared,
    /// VarGrad (Adebayo et al., "Local Explanation Methods for Deep Neural Networks Lack
    /// Sensitivity to Parameter Values", ICLR-W 2018): the population variance
    /// `(1/S) sum_s (a_s - mean_s a_s)^2` (ddof = 0, as captum).
    VarGrad,
}

impl NoiseReduction {
    /// The registry name of the resulting method.
    pub fn name(self) -> &'static str {
        match self {
            NoiseReduction::SmoothGrad => "smoothgrad",
            NoiseReduction::SmoothGradSquared => "smoothgrad-sq",
            NoiseReduction::VarGrad => "vargrad",
        }
    }
}

/// What `sigma` is relative to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseScale {
    /// Noise std = `sigma * (max(x_n) - min(x_n))` per image (Smilkov et al., PAIR).
    #[default]
    Range,
    /// Noise std = `sigma`.
    Absolute,
}

/// Settings of [`NoiseTunnel`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoiseTunnelSettings {
    pub reduction: NoiseReduction,
    /// Number of noisy copies `S` per input.
    pub samples: usize,
    /// Noise level (see `scale`).
    pub sigma: f64,
    pub scale: NoiseScale,
    /// Seed of the ChaCha8 generator drawing the noise (same noise on every call).
    pub seed: u64,
    /// Most noisy inputs handed to the base method at once (the base method chunks its own
    /// work, e.g. Integrated Gradients' steps, with its own batch size).
    pub batch_size: usize,
}

impl Default for NoiseTunnelSettings {
    fn default() -> Self {
        NoiseTunnelSettings {
            reduction: NoiseReduction::SmoothGrad,
            samples: 50,
            sigma: 0.15,
            scale: NoiseScale::Range,
            seed: 0,
            batch_size: 256,
        }
    }
}

/// A noise wrapper around any [`Method`]: `a_s = base(x + eps_s)` for `S` noisy copies
/// `eps_s ~ N(0, std_n^2)` (std per [`NoiseScale`]), reduced per [`NoiseReduction`].
///
/// Noise is drawn from a ChaCha8 generator seeded with `seed`, standard normals in the
/// order (sample s, image n, element), or given explicitly as `[S, N, ...]` with
/// [`NoiseTunnel::with_noise`] (then `std` and `seed` are unused). The classes are
/// resolved once on the clean input and explained on every noisy copy. Maps are reduced
/// on the host in float64 (Welford's update, visiting copies in order), so `batch_size`
/// changes nothing beyond the engine's rounding.
pub struct NoiseTunnel {
    base: Box<dyn Method>,
    settings: NoiseTunnelSettings,
    noise: Option<Tensor>,
}

impl std::fmt::Debug for NoiseTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseTunnel")
            .field("base", &self.base.name())
            .field("settings", &self.settings)
            .field("noise", &self.noise.as_ref().map(|n| n.dims().to_vec()))
            .finish()
    }
}

impl NoiseTunnel {
    /// Wraps `base`; errors name the parameter (`samples` >= 1, `sigma` finite >= 0,
    /// `batch_size` >= 1).
    pub fn new(base: Box<dyn Method>, settings: NoiseTunnelSettings) -> Result<Self> {
        let name = settings.reduction.name();
        if settings.samples == 0 {
            return Err(Error::parameter(name, "samples", "must be at least 1"));
        }
        if !(settings.sigma.is_finite() && settings.sigma >= 0.0) {
            return Err(Error::parameter(
                name,
                "sigma",
                format!("must be a finite number >= 0, got {}", settings.sigma),
            ));
        }
        if settings.batch_size == 0 {
            return Err(Error::parameter(name, "batch_size", "must be at least 1"));
        }
        Ok(NoiseTunnel { base, settings, noise: None })
    }

    /// Uses the given noise `[S, N, ...input]` instead of drawing it (`samples` becomes S).
    pub fn with_noise(mut self, noise: Tensor) -> Result<Self> {
        let s = noise.dims().first().copied().unwrap_or(0);
        if s == 0 || noise.rank() < 2 {
            return Err(Error::parameter(
                self.settings.reduction.name(),
                "noise",
                format!("expected [S, N, ...], got {:?}", noise.dims()),
            ));
        }
        self.settings.samples = s;
        self.noise = Some(noise);
        Ok(self)
    }

    pub fn settings(&self) -> &NoiseTunnelSettings {
        &self.settings
    }
}

impl Method for NoiseTunnel {
    fn name(&self) -> String {
        let s = &self.settings;
        let scale = match s.scale {
            NoiseScale::Range => "range",
            NoiseScale::Absolute => "absolute",
        };
        format!(
            "{}:samples={},sigma={},scale={scale},base={}",
            s.reduction.name(),
            s.samples,
            s.sigma,
            self.base.name()
        )
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let (n, d) = (x.dims()[0], sample_len(x));
        if n == 0 {
            return Err(Error::InvalidInput("empty batch".into()));
        }
        let samples = self.settings.samples;
        let noise = match &self.noise {
            Some(t) => {
                let mut want = vec![samples];
                want.extend_from_slice(x.dims());
                if t.dims() != want.as_slice() {
                    return Err(Error::parameter(
                        self.settings.reduction.name(),
                        "noise",
                        format!(
                            "noise of shape {:?} for inputs {:?} (expected {want:?})",
                            t.dims(),
                            x.dims()
                        ),
                    ));
                }
                let mut flat = vec![samples * n];
                flat.extend_from_slice(&x.dims()[1..]);
                Some(t.to_dtype(x.dtype())?.to_device(x.device())?.reshape(flat)?)
            }
            None => None,
        };
        let stds = self.noise_stds(x)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.settings.seed);
        // Rows are s * n_images + n: copy s of image n.
        let mut mean: Vec<f64> = Vec::new();
        let mut m2: Vec<f64> = Vec::new();
        let mut map_shape = Vec::new();
        for rows in chunks(samples * n, self.settings.batch_size) {
            let images: Vec<usize> = rows.clone().map(|r| r % n).collect();
            let clean = x.index_select(&index_tensor(&images, x)?, 0)?;
            let eps = match &noise {
                Some(t) => t.narrow(0, rows.start, rows.len())?,
                None => {
                    let v = images
                        .iter()
                        .flat_map(|&i| {
                            let std = stds[i];
                            (0..d)
                                .map(|_| {
                                    let z: f64 = StandardNormal.sample(&mut rng);
                                    std * z
                                })
                                .collect::<Vec<f64>>()
                        })
                        .collect();
                    from_host(v, clean.dims(), x)?
                }
            };
            let noisy = (clean + eps)?;
            let classes = Target::Classes(images.iter().map(|&i| targets[i]).collect());
            let a = self.base.attribute(model, &noisy, &classes)?.map;
            if map_shape.is_empty() {
                map_shape = a.dims().to_vec();
                map_shape[0] = n;
                let m = a.dims()[1..].iter().product::<usize>() * n;
                mean = vec![0.0; m];
                m2 = vec![0.0; m];
            }
            let a = to_host(&a)?;
            let md = mean.len() / n;
            if a.len() != rows.len() * md {
                return Err(Error::InvalidInput(
                    "base method returned maps of varying shape".into(),
                ));
            }
            for (r, row) in rows.zip(a.chunks_exact(md)) {
                let count = (r / n + 1) as f64;
                let img = r % n;
                let (mu, q) =
                    (&mut mean[img * md..(img + 1) * md], &mut m2[img * md..(img + 1) * md]);
                for ((mu, q), &v) in mu.iter_mut().zip(q.iter_mut()).zip(row) {
                    let v = if self.settings.reduction == NoiseReduction::SmoothGradSquared {
                        v * v
                    } else {
                        v
                    };
                    let delta = v - *mu;
                    *mu += delta / count;
                    *q += delta * (v - *mu);
                }
            }
        }
        let out = match self.settings.reduction {
            NoiseReduction::SmoothGrad | NoiseReduction::SmoothGradSquared => mean,
            NoiseReduction::VarGrad => m2.into_iter().map(|q| q / samples as f64).collect(),
        };
        Ok(Attribution { map: from_host(out, &map_shape, x)?, targets, completeness_delta: None })
    }
}

impl NoiseTunnel {
    /// The noise standard deviation of every image.
    fn noise_stds(&self, x: &Tensor) -> Result<Vec<f64>> {
        let sigma = self.settings.sigma;
        Ok(match self.settings.scale {
            NoiseScale::Absolute => vec![sigma; x.dims()[0]],
            NoiseScale::Range => {
                let v = to_host(x)?;
                v.chunks_exact(sample_len(x).max(1))
                    .map(|s| {
                        let (lo, hi) =
                            s.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                                (lo.min(v), hi.max(v))
                            });
                        sigma * (hi - lo)
                    })
                    .collect()
            }
        })
    }
}
