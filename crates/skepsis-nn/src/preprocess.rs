//! The preprocessing a model was trained with, recorded in `model.json` so that attribution
//! feeds the model exactly what it saw during training.

use serde::{Deserialize, Serialize};

/// Color handling of decoded images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorMode {
    Grayscale,
    Rgb,
}

/// How raw 8-bit images become model inputs: convert color, resize, multiply by `scale`,
/// then subtract `mean` and divide by `std` per channel (empty vectors: no normalization).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub color: ColorMode,
    /// Target `[height, width]`, or `None` to require the model's input size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<[usize; 2]>,
    /// Factor applied to raw byte values (1/255 maps them to [0, 1]).
    pub scale: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mean: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub std: Vec<f64>,
}

impl Preprocessing {
    /// Bytes scaled to [0, 1], no normalization.
    pub fn unit_range(color: ColorMode) -> Self {
        Preprocessing { color, resize: None, scale: 1.0 / 255.0, mean: Vec::new(), std: Vec::new() }
    }

    /// Applies scale and per-channel normalization in place to CHW data of `channels`
    /// channels holding raw byte values.
    pub fn normalize_chw(&self, data: &mut [f32], channels: usize) {
        let plane = data.len() / channels.max(1);
        for (c, chunk) in data.chunks_mut(plane.max(1)).enumerate() {
            let mean = self.mean.get(c).or(self.mean.first()).copied().unwrap_or(0.0);
            let std = self.std.get(c).or(self.std.first()).copied().unwrap_or(1.0);
            for v in chunk {
                *v = ((*v as f64 * self.scale - mean) / std) as f32;
            }
        }
    }
}
