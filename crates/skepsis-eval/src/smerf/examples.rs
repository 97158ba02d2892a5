//! Example maps of a SMERF setup for figures (Kim et al. 2022, Fig. 3 style): a few scored
//! test images, one per bucket in bucket order, with their ground-truth boxes and every
//! method's map reduced to `[H, W]` with `max_c |a_c|` (the scoring's reduction, before blur).
//!
//! The metadata travels in the records ([`SmerfExample`] in `smerf.json`); the pixels go to
//! `examples/<setup>.safetensors` ([`write_examples`]): `image` `[k, C, H, W]` and one
//! `map/<method label>` `[k, H, W]` per method.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use skepsis_data::{Region, RegionKind, RegionShape};

use super::error::{SmerfError, SmerfResult};
use crate::MapDims;

/// Directory of the example files inside a SMERF output directory.
pub const EXAMPLES_DIR: &str = "examples";

/// One ground-truth box of an example image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleBox {
    /// `primary` or `secondary`.
    pub kind: String,
    /// The object it covers (`box1`, `text`, ...).
    pub object: String,
    /// Top row.
    pub y0: usize,
    /// Left column.
    pub x0: usize,
    /// Bottom row (exclusive).
    pub y1: usize,
    /// Right column (exclusive).
    pub x1: usize,
}

/// One example image of a setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmerfExample {
    /// Index in the setup's test split.
    pub index: usize,
    /// The bucket's name.
    pub bucket_name: String,
    /// True label.
    pub label: usize,
    /// The model's prediction.
    pub predicted: usize,
    /// Ground-truth boxes (mask regions are drawn by their bounding box).
    pub boxes: Vec<ExampleBox>,
}

/// The pixels of a setup's examples (not serialized into the records).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExamplePixels {
    /// Image shape `[C, H, W]`.
    pub image_dims: Vec<usize>,
    /// `k` images, row-major.
    pub images: Vec<f32>,
    /// Per method label: `k` reduced maps `[H, W]`, row-major.
    pub maps: Vec<(String, Vec<f32>)>,
}

/// Positions (in the scored subset) of the examples: the first image of each bucket, in
/// bucket order, at most `count`.
pub(crate) fn example_positions(bucket_ids: &[usize], count: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    let mut picks = Vec::new();
    for (i, &b) in bucket_ids.iter().enumerate() {
        if picks.len() >= count {
            break;
        }
        if !seen.contains(&b) {
            seen.push(b);
            picks.push(i);
        }
    }
    if bucket_ids.is_empty() {
        picks.extend(0..count.min(1));
    }
    picks
}

/// The boxes of one image's regions.
pub(crate) fn example_boxes(regions: &[Region]) -> Vec<ExampleBox> {
    regions
        .iter()
        .filter_map(|r| {
            let b = match &r.shape {
                RegionShape::Box(b) => *b,
                RegionShape::Mask(m) => mask_bounds(m)?,
            };
            Some(ExampleBox {
                kind: match r.kind {
                    RegionKind::Primary => "primary",
                    RegionKind::Secondary => "secondary",
                }
                .into(),
                object: r.object.clone(),
                y0: b.y0,
                x0: b.x0,
                y1: b.y1,
                x1: b.x1,
            })
        })
        .collect()
}

fn mask_bounds(m: &skepsis_data::Mask) -> Option<skepsis_data::BoundingBox> {
    let (mut y0, mut x0, mut y1, mut x1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..m.height() {
        for x in 0..m.width() {
            if m.contains(y, x) {
                (y0, x0, y1, x1) = (y0.min(y), x0.min(x), y1.max(y + 1), x1.max(x + 1));
            }
        }
    }
    (y0 != usize::MAX).then_some(skepsis_data::BoundingBox { y0, x0, y1, x1 })
}

/// `max_c |a_c|` of a `[C, H, W]` map.
pub(crate) fn reduce_max_abs(map: &[f64], dims: MapDims) -> Vec<f32> {
    let plane = dims.height() * dims.width();
    (0..plane)
        .map(|p| (0..dims.num_channels()).fold(0f64, |m, c| m.max(map[c * plane + p].abs())) as f32)
        .collect()
}

/// Writes `examples/<setup>.safetensors` for every setup with examples.
pub fn write_examples(pixels: &[(String, ExamplePixels)], dir: &Path) -> SmerfResult<()> {
    let out = dir.join(EXAMPLES_DIR);
    for (setup, p) in pixels {
        if p.images.is_empty() || p.image_dims.len() != 3 {
            continue;
        }
        std::fs::create_dir_all(&out)
            .map_err(|e| SmerfError::Io { path: out.clone(), source: e })?;
        let per = p.image_dims.iter().product::<usize>();
        let k = p.images.len() / per;
        let (h, w) = (p.image_dims[1], p.image_dims[2]);
        let mut tensors = HashMap::new();
        let mut dims = vec![k];
        dims.extend(&p.image_dims);
        tensors
            .insert("image".to_string(), Tensor::from_vec(p.images.clone(), dims, &Device::Cpu)?);
        for (method, values) in &p.maps {
            let t = Tensor::from_vec(values.clone(), (k, h, w), &Device::Cpu)?;
            tensors.insert(format!("map/{method}"), t);
        }
        let path = examples_file(dir, setup);
        candle_core::safetensors::save(&tensors, &path)?;
    }
    Ok(())
}

/// The example file of `setup` in a SMERF output directory.
pub fn examples_file(dir: &Path, setup: &str) -> PathBuf {
    dir.join(EXAMPLES_DIR).join(format!("{setup}.safetensors"))
}

/// Reads a setup's example pixels (`image` and `map/<method>`); empty when none were kept.
pub fn read_examples(dir: &Path, setup: &str) -> SmerfResult<HashMap<String, Tensor>> {
    let path = examples_file(dir, setup);
    if !path.exists() {
        return Ok(HashMap::new());
    }
    Ok(candle_core::safetensors::load(&path, &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_example_per_bucket_in_bucket_order() {
        assert_eq!(example_positions(&[0, 0, 1, 1, 2, 2], 2), vec![0, 2]);
        assert_eq!(example_positions(&[1, 0, 1, 0], 5), vec![0, 1]);
        assert!(example_positions(&[0, 1], 0).is_empty());
    }

    #[test]
    fn reduction_takes_the_largest_magnitude_over_channels() {
        let map = [1.0, -2.0, -3.0, 0.5];
        assert_eq!(reduce_max_abs(&map, MapDims::channels(2, 1, 2)), vec![3.0, 2.0]);
    }

    #[test]
    fn examples_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let pixels = ExamplePixels {
            image_dims: vec![1, 2, 2],
            images: vec![0.0, 0.25, 0.5, 1.0],
            maps: vec![("Grad".into(), vec![1.0, 2.0, 3.0, 4.0])],
        };
        write_examples(&[("1.11".into(), pixels)], dir.path()).unwrap();
        let read = read_examples(dir.path(), "1.11").unwrap();
        assert_eq!(read["image"].dims(), &[1, 1, 2, 2]);
        assert_eq!(read["map/Grad"].dims(), &[1, 2, 2]);
        assert!(read_examples(dir.path(), "2.11").unwrap().is_empty());
    }
}
