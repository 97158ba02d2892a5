//! SMERF backgrounds: black, a procedural natural-looking texture, or images from a folder.
//!
//! SMERF's "natural" variant pastes a Places365 photo resized to 64x64 and darkened by PIL's
//! `ImageEnhance.Brightness(0.7)`. skepsis cannot download Places365, so it offers a seeded
//! procedural texture in its place, and the user's own folder of photos for the faithful
//! variant. Both are darkened x0.7 (`floor(0.7 * byte)`), so white objects stay the brightest
//! pixels.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::folder::{decode, is_image_file, sorted_entries};
use crate::rng::{self, Rng};

use super::scene::SCENE_SIDE;

/// The darkening factor of natural backgrounds.
pub const DARKEN: f64 = 0.7;

/// The background of SMERF scenes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "path")]
pub enum Background {
    /// All zeros (SMERF's default).
    Black,
    /// Fractal value noise (six octaves, amplitude halving per octave: a 1/f-like spectrum),
    /// min-max scaled, tinted by a blend of two random colors that varies at low frequency,
    /// then darkened x0.7; seeded per image.
    Texture,
    /// PNG/JPEG images from a folder (sorted by name; one picked uniformly per scene), center
    /// cropped to a square, resized to 64x64 (bilinear), darkened x0.7.
    Folder(PathBuf),
}

/// A background ready to paint: the folder's images are decoded once.
#[derive(Debug, Clone)]
pub(crate) enum Painter {
    Black,
    Texture,
    Images(Vec<Vec<u8>>),
}

impl Painter {
    /// Prepares `background` (decodes a folder's images).
    pub(crate) fn new(background: &Background) -> Result<Self> {
        match background {
            Background::Black => Ok(Painter::Black),
            Background::Texture => Ok(Painter::Texture),
            Background::Folder(dir) => Ok(Painter::Images(load_folder(dir)?)),
        }
    }

    /// Paints an interleaved RGB 64x64 canvas.
    pub(crate) fn paint(&self, r: &mut Rng, canvas: &mut [u8]) {
        match self {
            Painter::Black => canvas.fill(0),
            Painter::Texture => texture(r, canvas),
            Painter::Images(images) => {
                let k = rng::below(r, images.len());
                canvas.copy_from_slice(&images[k]);
            }
        }
    }
}

fn darken(v: f64) -> u8 {
    (v * DARKEN).floor().clamp(0.0, 255.0) as u8
}

fn load_folder(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let files: Vec<PathBuf> =
        sorted_entries(dir)?.into_iter().filter(|p| is_image_file(p)).collect();
    if files.is_empty() {
        return Err(Error::corrupt(dir, "no PNG or JPEG background images"));
    }
    files
        .iter()
        .map(|path| {
            let img = decode(path)?.to_rgb8();
            let side = img.width().min(img.height());
            let (x, y) = ((img.width() - side) / 2, (img.height() - side) / 2);
            let square = image::imageops::crop_imm(&img, x, y, side, side).to_image();
            let s = SCENE_SIDE as u32;
            let small =
                image::imageops::resize(&square, s, s, image::imageops::FilterType::Triangle);
            Ok(small.into_raw().into_iter().map(|b| darken(f64::from(b))).collect())
        })
        .collect()
}

/// Value noise on a `cells x cells` lattice, smoothstep-interpolated at 64x64 pixels.
fn value_noise(r: &mut Rng, cells: usize) -> Vec<f64> {
    let n = cells + 1;
    let lattice: Vec<f64> = (0..n * n).map(|_| rng::unit(r)).collect();
    let mut out = vec![0.0; SCENE_SIDE * SCENE_SIDE];
    let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
    for y in 0..SCENE_SIDE {
        let fy = (y as f64 + 0.5) / SCENE_SIDE as f64 * cells as f64;
        let (iy, ty) = ((fy.floor() as usize).min(cells - 1), smooth(fy - fy.floor()));
        for x in 0..SCENE_SIDE {
            let fx = (x as f64 + 0.5) / SCENE_SIDE as f64 * cells as f64;
            let (ix, tx) = ((fx.floor() as usize).min(cells - 1), smooth(fx - fx.floor()));
            let at = |yy: usize, xx: usize| lattice[yy * n + xx];
            let top = at(iy, ix) * (1.0 - tx) + at(iy, ix + 1) * tx;
            let bottom = at(iy + 1, ix) * (1.0 - tx) + at(iy + 1, ix + 1) * tx;
            out[y * SCENE_SIDE + x] = top * (1.0 - ty) + bottom * ty;
        }
    }
    out
}

/// Fractal noise: octaves of value noise at 2, 4, .., 2^octaves cells, amplitude 2^-k.
fn fractal(r: &mut Rng, octaves: u32) -> Vec<f64> {
    let mut acc = vec![0.0; SCENE_SIDE * SCENE_SIDE];
    for k in 0..octaves {
        let layer = value_noise(r, 2 << k);
        let amp = 0.5f64.powi(k as i32);
        for (a, l) in acc.iter_mut().zip(&layer) {
            *a += amp * l;
        }
    }
    let (lo, hi) =
        acc.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let span = (hi - lo).max(1e-12);
    acc.iter().map(|v| (v - lo) / span).collect()
}

fn texture(r: &mut Rng, canvas: &mut [u8]) {
    let luminance = fractal(r, 6);
    let mix = fractal(r, 2);
    let c0: Vec<f64> = (0..3).map(|_| rng::uniform(r, 0.25, 1.0)).collect();
    let c1: Vec<f64> = (0..3).map(|_| rng::uniform(r, 0.25, 1.0)).collect();
    for p in 0..SCENE_SIDE * SCENE_SIDE {
        for c in 0..3 {
            let tint = c0[c] * (1.0 - mix[p]) + c1[c] * mix[p];
            canvas[p * 3 + c] = darken((luminance[p] * tint * 255.0).round());
        }
    }
}
