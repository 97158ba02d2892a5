//! How decoded 8-bit images become the normalized float tensors a model sees.
//!
//! A [`Preprocessing`] value is a description, not code: it is stored next to a data set and
//! (by skepsis-nn) in `model.json`, so that attribution later applies exactly the preprocessing
//! used in training. This module depends only on `serde` and `image` so that it can move
//! between crates unchanged.
//!
//! The steps, in order, for an 8-bit image with `c_in` channels (interleaved, row-major HWC):
//! 1. **color**: [`ColorMode::Grayscale`] turns RGB into luma with the ITU-R 601 weights PIL
//!    uses (`L = round(0.299 R + 0.587 G + 0.114 B)`), [`ColorMode::Rgb`] repeats a gray channel
//!    three times; an image already in the target mode is unchanged.
//! 2. **resize** to `[height, width]`, bilinear (the `image` crate's triangle filter), still 8-bit.
//! 3. **scale**: `v = byte * scale` (default `1/255`, giving `[0, 1]`).
//! 4. **normalize**: `v = (v - mean[c]) / std[c]` per channel; `mean`/`std` hold one value per
//!    output channel, or one value shared by all channels, or nothing (0 and 1).
//!
//! The output is planar CHW `f32`.

use serde::{Deserialize, Serialize};

/// Errors of [`Preprocessing`]: an invalid description or an image it cannot apply to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    /// A field of the description is out of range.
    #[error("preprocessing: invalid '{field}': {message}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// The pixel buffer does not hold `height * width * channels` bytes, or has a channel
    /// count other than 1 (gray), 3 (RGB) or 4 (RGBA, alpha dropped).
    #[error("preprocessing: image of {height}x{width}x{channels} cannot hold {bytes} bytes")]
    BadImage {
        /// Declared height.
        height: usize,
        /// Declared width.
        width: usize,
        /// Declared channel count.
        channels: usize,
        /// Bytes given.
        bytes: usize,
    },
}

/// The color mode of the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// One channel (luma).
    Grayscale,
    /// Three channels, R, G, B.
    Rgb,
}

impl ColorMode {
    /// The number of channels of this mode.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grayscale => 1,
            ColorMode::Rgb => 3,
        }
    }
}

fn default_scale() -> f32 {
    1.0 / 255.0
}

/// A description of input preprocessing (see the module documentation for the exact steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Target color mode.
    pub color: ColorMode,
    /// Target size `[height, width]`; `None` keeps the decoded size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<[usize; 2]>,
    /// Factor applied to the 8-bit values (default `1/255`).
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (empty: 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after subtracting the mean (empty: 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub std: Vec<f32>,
}

impl Default for Preprocessing {
    /// RGB, no resize, scale `1/255`, no normalization.
    fn default() -> Self {
        Preprocessing::rgb()
    }
}

impl Preprocessing {
    /// Grayscale, no resize, values in `[0, 1]` (MNIST style).
    pub fn grayscale() -> Self {
        Preprocessing {
            color: ColorMode::Grayscale,
            resize: None,
            scale: default_scale(),
            mean: Vec::new(),
            std: Vec::new(),
        }
    }

    /// RGB, no resize, values in `[0, 1]`.
    pub fn rgb() -> Self {
        Preprocessing { color: ColorMode::Rgb, ..Preprocessing::grayscale() }
    }

    /// Checks every field: positive finite scale, nonzero resize, `mean`/`std` of length 0, 1
    /// or the channel count, finite values, positive `std`.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let invalid =
            |field, message: String| Err(PreprocessError::InvalidField { field, message });
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return invalid("scale", format!("must be positive and finite, got {}", self.scale));
        }
        if let Some([h, w]) = self.resize {
            if h == 0 || w == 0 {
                return invalid("resize", format!("sizes must be positive, got [{h}, {w}]"));
            }
        }
        let channels = self.color.channels();
        for (field, values) in [("mean", &self.mean), ("std", &self.std)] {
            if !(values.is_empty() || values.len() == 1 || values.len() == channels) {
                return invalid(
                    field,
                    format!("needs 1 or {channels} values, got {}", values.len()),
                );
            }
            if values.iter().any(|v| !v.is_finite()) {
                return invalid(field, "values must be finite".to_string());
            }
        }
        if self.std.iter().any(|&s| s <= 0.0) {
            return invalid("std", "values must be positive".to_string());
        }
        Ok(())
    }

    /// The `[C, H, W]` shape of the output for a decoded image of `height` x `width`.
    pub fn output_shape(&self, height: usize, width: usize) -> [usize; 3] {
        let [h, w] = self.resize.unwrap_or([height, width]);
        [self.color.channels(), h, w]
    }

    /// Applies the preprocessing to an interleaved 8-bit image (`channels` = 1, 3 or 4; alpha is
    /// dropped) and returns planar CHW values, `output_shape(height, width)` of them.
    pub fn apply_u8(
        &self,
        pixels: &[u8],
        height: usize,
        width: usize,
        channels: usize,
    ) -> Result<Vec<f32>, PreprocessError> {
        self.validate()?;
        let bad = PreprocessError::BadImage { height, width, channels, bytes: pixels.len() };
        let expected = height.checked_mul(width).and_then(|n| n.checked_mul(channels));
        if !matches!(channels, 1 | 3 | 4) || expected != Some(pixels.len()) || height * width == 0 {
            return Err(bad);
        }
        let converted = convert_color(pixels, channels, self.color);
        let c = self.color.channels();
        let (resized, h, w) = match self.resize {
            Some([h, w]) if [h, w] != [height, width] => {
                (resize_u8(converted, height, width, c, h, w), h, w)
            }
            _ => (converted, height, width),
        };
        let mut out = vec![0.0f32; c * h * w];
        for ch in 0..c {
            let mean = channel_value(&self.mean, ch, 0.0);
            let std = channel_value(&self.std, ch, 1.0);
            let plane = &mut out[ch * h * w..(ch + 1) * h * w];
            for (i, v) in plane.iter_mut().enumerate() {
                *v = (f32::from(resized[i * c + ch]) * self.scale - mean) / std;
            }
        }
        Ok(out)
    }

    /// Applies the preprocessing to a decoded image of any pixel format (converted to 8-bit
    /// first; gray and gray-alpha count as gray, everything else as RGB).
    pub fn apply_image(&self, image: &image::DynamicImage) -> Result<Vec<f32>, PreprocessError> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        if image.color().has_color() {
            self.apply_u8(image.to_rgb8().as_raw(), h, w, 3)
        } else {
            self.apply_u8(image.to_luma8().as_raw(), h, w, 1)
        }
    }
}

fn channel_value(values: &[f32], channel: usize, default: f32) -> f32 {
    match values.len() {
        0 => default,
        1 => values[0],
        _ => values[channel],
    }
}

/// Interleaved 8-bit pixels in the target mode (alpha dropped).
fn convert_color(pixels: &[u8], channels: usize, target: ColorMode) -> Vec<u8> {
    match (channels, target) {
        (1, ColorMode::Grayscale) => pixels.to_vec(),
        (1, ColorMode::Rgb) => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        (_, ColorMode::Rgb) => {
            pixels.chunks_exact(channels).flat_map(|p| [p[0], p[1], p[2]]).collect()
        }
        (_, ColorMode::Grayscale) => pixels
            .chunks_exact(channels)
            .map(|p| {
                // PIL's "L" conversion: integer weights 299/587/114 per mille, rounded.
                let l = 299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]);
                ((l + 500) / 1000) as u8
            })
            .collect(),
    }
}

fn resize_u8(pixels: Vec<u8>, h: usize, w: usize, c: usize, nh: usize, nw: usize) -> Vec<u8> {
    use image::imageops::{resize, FilterType};
    let (w32, h32, nw32, nh32) = (w as u32, h as u32, nw as u32, nh as u32);
    if c == 1 {
        match image::GrayImage::from_raw(w32, h32, pixels) {
            Some(img) => resize(&img, nw32, nh32, FilterType::Triangle).into_raw(),
            None => vec![0; nh * nw],
        }
    } else {
        match image::RgbImage::from_raw(w32, h32, pixels) {
            Some(img) => resize(&img, nw32, nh32, FilterType::Triangle).into_raw(),
            None => vec![0; nh * nw * 3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_to_rgb_scales_and_normalizes() {
        let p = Preprocessing { mean: vec![0.5], std: vec![0.5], ..Preprocessing::rgb() };
        // Two gray pixels 0 and 255 -> [0,1] -> (v - 0.5) / 0.5 = -1, 1, repeated per channel.
        let out = p.apply_u8(&[0, 255], 1, 2, 1).unwrap();
        assert_eq!(out, vec![-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]);
    }

    #[test]
    fn rgb_to_gray_uses_pil_weights() {
        let p = Preprocessing { scale: 1.0, ..Preprocessing::grayscale() };
        // 0.299*200 + 0.587*100 + 0.114*50 = 59.8 + 58.7 + 5.7 = 124.2 -> 124
        let out = p.apply_u8(&[200, 100, 50], 1, 1, 3).unwrap();
        assert_eq!(out, vec![124.0]);
    }

    #[test]
    fn chw_order_and_resize_shape() {
        let p = Preprocessing { scale: 1.0, ..Preprocessing::rgb() };
        let out = p.apply_u8(&[1, 2, 3, 4, 5, 6], 1, 2, 3).unwrap();
        assert_eq!(out, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let p = Preprocessing { resize: Some([4, 6]), ..Preprocessing::grayscale() };
        assert_eq!(p.output_shape(2, 2), [1, 4, 6]);
        assert_eq!(p.apply_u8(&[9; 4], 2, 2, 1).unwrap().len(), 24);
    }

    #[test]
    fn invalid_descriptions_and_buffers_are_rejected() {
        let p = Preprocessing { std: vec![1.0, 0.0, 1.0], ..Preprocessing::rgb() };
        assert!(p.validate().is_err());
        let p = Preprocessing { mean: vec![0.1, 0.2], ..Preprocessing::rgb() };
        assert!(p.validate().is_err());
        let p = Preprocessing { scale: f32::NAN, ..Preprocessing::rgb() };
        assert!(p.validate().is_err());
        assert!(matches!(
            Preprocessing::rgb().apply_u8(&[0; 5], 1, 2, 3),
            Err(PreprocessError::BadImage { .. })
        ));
    }

    #[test]
    fn serde_defaults() {
        let p: Preprocessing = serde_json::from_str(r#"{"color":"grayscale"}"#).unwrap();
        assert_eq!(p, Preprocessing::grayscale());
    }
}
