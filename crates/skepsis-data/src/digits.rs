//! Synthetic digits: a 10-class, 28x28 grayscale stand-in for MNIST (LeCun et al. 1998),
//! generated without any download.
//!
//! Each image draws one digit of Noto Sans Mono (light, regular or bold) and varies its style:
//! - stroke width: a soft erosion or one to two soft dilations of the glyph, t ~ U(lo, hi) with
//!   (lo, hi) = (0, 1.5) light, (-0.5, 1.0) regular, (-0.6, 0.6) bold;
//! - geometry: ink height ~ U(14, 21) px, horizontal aspect ~ U(0.75, 1.3), rotation
//!   ~ U(-15, 15) degrees, shear ~ U(-0.35, 0.35), center offset ~ U(-2, 2) px per axis;
//! - elastic distortion (Simard et al., ICDAR 2003): a uniform [-1, 1] displacement field per
//!   axis, Gaussian-smoothed with sigma 4 and scaled by alpha ~ U(8, 34);
//! - ink gain ~ U(1.3, 2) (saturating strokes like MNIST's) and Gaussian pixel noise with
//!   std ~ U(0, 0.08) on inked pixels only.
//!
//! Rendering samples the warped glyph bilinearly at 2x2 points per pixel and quantizes to 8 bits,
//! so values are multiples of 1/255; the background is exactly 0, as in MNIST. Labels cycle
//! through 0..9 (balanced classes); image `i` of a split depends only on (seed, split, i).

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Splits};
use crate::error::{Error, Result};
use crate::font::{self, Glyph, Size, Weight};
use crate::idx::MNIST_CLASSES;
use crate::rng::{self, Rng};

/// Side of a digit image.
pub const DIGIT_SIDE: usize = 28;

/// Stream tag of the digits generator.
const TAG: u64 = 0x6469_6769; // "digi"

/// Settings of [`generate_digits`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitsConfig {
    /// Number of training images (MNIST: 60000).
    pub train: usize,
    /// Number of test images (MNIST: 10000).
    pub test: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for DigitsConfig {
    /// MNIST's sizes, 60000 / 10000, seed 0.
    fn default() -> Self {
        DigitsConfig { train: 60_000, test: 10_000, seed: 0 }
    }
}

/// Generates the synthetic digits train and test sets, `[N, 1, 28, 28]` in `[0, 1]`, classes
/// `"0"`..`"9"`.
pub fn generate_digits(config: &DigitsConfig) -> Result<Splits> {
    if config.train == 0 || config.test == 0 {
        return Err(Error::parameter("generate_digits", "train/test", "sizes must be positive"));
    }
    Ok(Splits {
        train: digits_split(config.seed, 0, config.train)?,
        test: digits_split(config.seed, 1, config.test)?,
    })
}

fn digits_split(seed: u64, split: u64, n: usize) -> Result<Dataset> {
    let side2 = DIGIT_SIDE * DIGIT_SIDE;
    let mut data = vec![0f32; n * side2];
    data.par_chunks_mut(side2).enumerate().for_each(|(i, out)| {
        let pixels = render_digit(seed, split, i as u64, i % 10);
        for (o, &p) in out.iter_mut().zip(&pixels) {
            *o = f32::from(p) / 255.0;
        }
    });
    let images = Tensor::from_vec(data, (n, 1, DIGIT_SIDE, DIGIT_SIDE), &Device::Cpu)?;
    let labels = (0..n).map(|i| i % 10).collect();
    Dataset::new(images, labels, MNIST_CLASSES.iter().map(|s| s.to_string()).collect())
}

/// Renders digit `digit` (0..9) as 28x28 8-bit pixels, from the stream (seed, split, index).
pub(crate) fn render_digit(seed: u64, split: u64, index: u64, digit: usize) -> Vec<u8> {
    let mut r = rng::stream(seed, &[TAG, split, index]);
    let (weight, min_stroke, max_stroke) =
        [(Weight::Light, 0.0, 1.5), (Weight::Regular, -0.5, 1.0), (Weight::Bold, -0.6, 0.6)]
            [rng::below(&mut r, 3)];
    let c = char::from(b'0' + (digit % 10) as u8);
    let Some(glyph) = font::ink(c, weight, Size::Px32) else {
        return vec![0; DIGIT_SIDE * DIGIT_SIDE];
    };
    let stroke = rng::uniform(&mut r, min_stroke, max_stroke);
    let (g, pad) = restroke(&glyph, stroke);
    let coverage: Vec<f32> = g.coverage.iter().map(|&v| f32::from(v) / 255.0).collect();

    // Forward map (glyph coordinates centered on the ink box -> output pixels):
    // o = R(theta) [[s * aspect, s * shear], [0, s]] g + t.
    let height = rng::uniform(&mut r, 14.0, 21.0);
    let s = height / glyph.height as f64;
    let aspect = rng::uniform(&mut r, 0.75, 1.3);
    let theta = rng::uniform(&mut r, -15.0, 15.0).to_radians();
    let shear = rng::uniform(&mut r, -0.35, 0.35);
    let half = DIGIT_SIDE as f64 / 2.0;
    let (ty, tx) = (half + rng::uniform(&mut r, -2.0, 2.0), half + rng::uniform(&mut r, -2.0, 2.0));
    let (a, b, cc, d) = (s * aspect, s * shear, 0.0, s); // [[a, b], [c, d]] acting on (x, y)
    let (cos, sin) = (theta.cos(), theta.sin());
    let m = [cos * a - sin * cc, cos * b - sin * d, sin * a + cos * cc, sin * b + cos * d];
    let det = m[0] * m[3] - m[1] * m[2];
    let inv = [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det];
    let (gcx, gcy) =
        (glyph.width as f64 / 2.0 + pad as f64, glyph.height as f64 / 2.0 + pad as f64);

    let alpha = rng::uniform(&mut r, 8.0, 34.0);
    let (dx, dy) = elastic_field(&mut r, DIGIT_SIDE, 4.0, alpha);
    let gain = rng::uniform(&mut r, 1.3, 2.0) as f32;
    let noise = rng::uniform(&mut r, 0.0, 0.08);

    let mut out = vec![0u8; DIGIT_SIDE * DIGIT_SIDE];
    for oy in 0..DIGIT_SIDE {
        for ox in 0..DIGIT_SIDE {
            let p = oy * DIGIT_SIDE + ox;
            let mut acc = 0f32;
            for (sy, sx) in [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)] {
                let x = ox as f64 + sx + dx[p] - tx;
                let y = oy as f64 + sy + dy[p] - ty;
                let gx = inv[0] * x + inv[1] * y + gcx - 0.5;
                let gy = inv[2] * x + inv[3] * y + gcy - 0.5;
                acc += bilinear(&coverage, g.height, g.width, gy, gx);
            }
            let mut v = (acc / 4.0 * gain).min(1.0);
            if v > 0.0 {
                v = (v as f64 + noise * rng::normal(&mut r)).clamp(0.0, 1.0) as f32;
            }
            out[p] = (v * 255.0).round() as u8;
        }
    }
    out
}

/// Bilinear sample of a coverage map at continuous pixel-center coordinates; 0 outside.
fn bilinear(cov: &[f32], h: usize, w: usize, y: f64, x: f64) -> f32 {
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = ((y - y0) as f32, (x - x0) as f32);
    let at = |yy: f64, xx: f64| -> f32 {
        if yy < 0.0 || xx < 0.0 || yy >= h as f64 || xx >= w as f64 {
            0.0
        } else {
            cov[yy as usize * w + xx as usize]
        }
    };
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1.0) * fx;
    let bottom = at(y0 + 1.0, x0) * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Changes the stroke width of a glyph: `t < 0` blends towards a 3x3 erosion, `0..1` towards a
/// 3x3 dilation, `1..2` dilates once and blends towards a second dilation. Returns the glyph
/// padded by 2 pixels on every side (room for the dilation) and the padding.
fn restroke(g: &Glyph, t: f64) -> (Glyph, usize) {
    const PAD: usize = 2;
    let (h, w) = (g.height + 2 * PAD, g.width + 2 * PAD);
    let mut padded = Glyph { height: h, width: w, coverage: vec![0; h * w] };
    for y in 0..g.height {
        for x in 0..g.width {
            padded.coverage[(y + PAD) * w + x + PAD] = g.coverage[y * g.width + x];
        }
    }
    let blend = |a: &Glyph, b: &Glyph, f: f64| Glyph {
        height: h,
        width: w,
        coverage: a
            .coverage
            .iter()
            .zip(&b.coverage)
            .map(|(&x, &y)| (f64::from(x) * (1.0 - f) + f64::from(y) * f).round() as u8)
            .collect(),
    };
    let out = if t < 0.0 {
        blend(&padded, &morph(&padded, false), -t)
    } else if t <= 1.0 {
        blend(&padded, &morph(&padded, true), t)
    } else {
        let once = morph(&padded, true);
        blend(&once, &morph(&once, true), t - 1.0)
    };
    (out, PAD)
}

/// 3x3 cross-shaped grayscale dilation (max) or erosion (min).
fn morph(g: &Glyph, dilate: bool) -> Glyph {
    let mut out = g.clone();
    for y in 0..g.height as isize {
        for x in 0..g.width as isize {
            let vals = [g.at(y, x), g.at(y - 1, x), g.at(y + 1, x), g.at(y, x - 1), g.at(y, x + 1)];
            let v = if dilate { vals.iter().max() } else { vals.iter().min() };
            out.coverage[y as usize * g.width + x as usize] = v.copied().unwrap_or(0);
        }
    }
    out
}

/// Simard et al.'s elastic displacement field: uniform [-1, 1] per pixel and axis, smoothed by
/// a Gaussian of std `sigma` (separable, radius 3 sigma, zero outside), scaled by `alpha`.
fn elastic_field(r: &mut Rng, side: usize, sigma: f64, alpha: f64) -> (Vec<f64>, Vec<f64>) {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> =
        (-radius..=radius).map(|t| (-((t * t) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let norm: f64 = kernel.iter().sum();
    let mut field = || {
        let raw: Vec<f64> = (0..side * side).map(|_| rng::uniform(r, -1.0, 1.0)).collect();
        let smooth = |src: &[f64], horizontal: bool| -> Vec<f64> {
            let mut dst = vec![0.0; side * side];
            for y in 0..side as isize {
                for x in 0..side as isize {
                    let mut acc = 0.0;
                    for (k, &kv) in kernel.iter().enumerate() {
                        let t = k as isize - radius;
                        let (yy, xx) = if horizontal { (y, x + t) } else { (y + t, x) };
                        if (0..side as isize).contains(&yy) && (0..side as isize).contains(&xx) {
                            acc += kv * src[yy as usize * side + xx as usize];
                        }
                    }
                    dst[y as usize * side + x as usize] = acc / norm;
                }
            }
            dst
        };
        let once = smooth(&raw, true);
        smooth(&once, false).iter().map(|v| v * alpha).collect::<Vec<f64>>()
    };
    let dx = field();
    let dy = field();
    (dx, dy)
}
