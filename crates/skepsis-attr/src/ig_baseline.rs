//! Baselines (reference inputs) of Integrated Gradients: the point the path integral
//! starts from. Sturmfels, Lundberg & Lee, "Visualizing the Impact of Feature Attribution
//! Baselines", Distill 2020, compare these choices.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::rows::{from_host, require_images, to_host};
use crate::{Error, Result};

/// The baseline `b` of a path method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Baseline {
    /// `b = 0` (black image for inputs in [0, 1]).
    #[default]
    Zero,
    /// `b = value` everywhere.
    Constant { value: f64 },
    /// `b ~ U[low, high)` element-wise, drawn from a ChaCha8 generator seeded with `seed`
    /// (the same baseline for every call), in row-major order over the batch.
    Uniform { low: f64, high: f64, seed: u64 },
    /// The input blurred per channel by a Gaussian of standard deviation `sigma` pixels
    /// (as `scipy.ndimage.gaussian_filter`: radius `floor(4 sigma + 1/2)`, mode
    /// `reflect`, i.e. `d c b a | a b c d`).
    Blur { sigma: f64 },
    /// A tensor supplied by the caller (`[N, ...]` like the input, or `[1, ...]` /
    /// one sample `[...]`, broadcast over the batch).
    Given,
}

impl Baseline {
    /// The spec name (`baseline=`).
    pub fn name(&self) -> &'static str {
        match self {
            Baseline::Zero => "zero",
            Baseline::Constant { .. } => "constant",
            Baseline::Uniform { .. } => "uniform",
            Baseline::Blur { .. } => "blur",
            Baseline::Given => "given",
        }
    }

    /// Checks the parameters; errors name `method`'s parameter.
    pub fn validate(&self, method: &str) -> Result<()> {
        match *self {
            Baseline::Constant { value } if !value.is_finite() => {
                Err(Error::parameter(method, "value", format!("must be finite, got {value}")))
            }
            Baseline::Uniform { low, high, .. }
                if !(low.is_finite() && high.is_finite() && low < high) =>
            {
                Err(Error::parameter(
                    method,
                    "low",
                    format!("need finite low < high, got [{low}, {high})"),
                ))
            }
            Baseline::Blur { sigma } if !(sigma.is_finite() && sigma > 0.0) => {
                Err(Error::parameter(
                    method,
                    "sigma",
                    format!("must be a finite number > 0, got {sigma}"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The baseline for the batch `x`, shaped like `x`.
    pub fn tensor(&self, method: &str, x: &Tensor, given: Option<&Tensor>) -> Result<Tensor> {
        match *self {
            Baseline::Zero => Ok(x.zeros_like()?),
            Baseline::Constant { value } => Ok((x.zeros_like()? + value)?),
            Baseline::Uniform { low, high, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let v =
                    (0..x.elem_count()).map(|_| low + (high - low) * rng.random::<f64>()).collect();
                from_host(v, x.dims(), x)
            }
            Baseline::Blur { sigma } => gaussian_blur(x, sigma),
            Baseline::Given => {
                let b = given.ok_or_else(|| {
                    Error::parameter(
                        method,
                        "baseline",
                        "'given' needs a baseline tensor (with_baseline)",
                    )
                })?;
                broadcast_to_batch(method, b, x)
            }
        }
    }
}

/// `b` shaped like `x`: equal shape, `[1, ...]` or one sample `[...]` (broadcast).
pub(crate) fn broadcast_to_batch(method: &str, b: &Tensor, x: &Tensor) -> Result<Tensor> {
    let sample = &x.dims()[1..];
    let b = if b.dims() == sample { b.unsqueeze(0)? } else { b.clone() };
    if b.dims()[1..] != *sample || (b.dims()[0] != 1 && b.dims()[0] != x.dims()[0]) {
        return Err(Error::parameter(
            method,
            "baseline",
            format!("baseline of shape {:?} does not fit inputs {:?}", b.dims(), x.dims()),
        ));
    }
    Ok(b.to_dtype(x.dtype())?.to_device(x.device())?.broadcast_as(x.dims())?.contiguous()?)
}

/// Per-channel Gaussian blur of images `[N, C, H, W]` (see [`Baseline::Blur`]).
pub fn gaussian_blur(x: &Tensor, sigma: f64) -> Result<Tensor> {
    let [_, _, h, w] = require_images("blurred baseline", x)?;
    let radius = (4.0 * sigma + 0.5) as usize;
    let mut kernel: Vec<f64> = (0..=2 * radius)
        .map(|i| {
            let t = i as f64 - radius as f64;
            (-t * t / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let total: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let mut v = to_host(x)?;
    let mut line = Vec::new();
    for plane in v.chunks_mut(h * w) {
        for r in 0..h {
            line.clear();
            line.extend((0..w).map(|c| plane[r * w + c]));
            for c in 0..w {
                plane[r * w + c] = convolve_reflect(&line, c, &kernel, radius);
            }
        }
        for c in 0..w {
            line.clear();
            line.extend((0..h).map(|r| plane[r * w + c]));
            for r in 0..h {
                plane[r * w + c] = convolve_reflect(&line, r, &kernel, radius);
            }
        }
    }
    from_host(v, x.dims(), x)
}

/// `sum_t kernel[t] * line[reflect(i + t - radius)]`.
fn convolve_reflect(line: &[f64], i: usize, kernel: &[f64], radius: usize) -> f64 {
    kernel
        .iter()
        .enumerate()
        .map(|(t, k)| k * line[reflect(i as isize + t as isize - radius as isize, line.len())])
        .sum()
}

/// Half-sample symmetric index (`d c b a | a b c d | d c b a`), as scipy's `reflect`.
///
/// Indices inside `0..n`, nearly all of a filter's, return at once: the division of the
/// general case made the Sobel edge detector's 24 reflections per pixel its main cost.
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    if (0..n).contains(&i) {
        return i as usize;
    }
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn reflect_is_half_sample_symmetric() {
        let idx: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
        assert_eq!(reflect(-1, 1), 0);
        // More than one period away.
        assert_eq!((reflect(9, 4), reflect(-9, 4), reflect(17, 4)), (1, 0, 1));
    }

    #[test]
    fn blur_keeps_constants_and_mass() {
        let x = Tensor::ones((1, 2, 5, 6), candle_core::DType::F64, &Device::Cpu).unwrap();
        let b = to_host(&gaussian_blur(&x, 1.5).unwrap()).unwrap();
        assert!(b.iter().all(|v| (v - 1.0).abs() < 1e-12));
        // A centred impulse spreads symmetrically and keeps its mass.
        let mut v = vec![0f64; 81];
        v[40] = 1.0;
        let x = Tensor::from_vec(v, (1, 1, 9, 9), &Device::Cpu).unwrap();
        let b = to_host(&gaussian_blur(&x, 1.0).unwrap()).unwrap();
        assert!((b.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((b[39] - b[41]).abs() < 1e-15 && (b[31] - b[49]).abs() < 1e-15 && b[40] > b[39]);
    }

    #[test]
    fn invalid_parameters_are_named() {
        let e = Baseline::Blur { sigma: -1.0 }.validate("ig").unwrap_err().to_string();
        assert!(e.contains("sigma"), "{e}");
        let e = Baseline::Uniform { low: 1.0, high: 0.0, seed: 0 }
            .validate("ig")
            .unwrap_err()
            .to_string();
        assert!(e.contains("low"), "{e}");
    }
}
