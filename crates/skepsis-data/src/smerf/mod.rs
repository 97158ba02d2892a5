//! SMERF scenes (Kim, Plumb, Talwalkar, "Sanity Simulations for Saliency Methods", ICML 2022):
//! 64x64 RGB images of a white 10x10 box (Box1), a letter "A" or "B" and a white 4x4 box (Box2)
//! on a background, with labels that depend on chosen objects, so the regions a correct model
//! must use (primary) and must not use (secondary) are known.
//!
//! [`generate_smerf`] builds the train and test sets of a [`SmerfSetup`] bucket by bucket (in
//! SMERF's order), records each image's bucket id (index into [`SmerfSetup::buckets`]) and its
//! ground-truth boxes. Image `i` of a bucket depends only on (seed, split, bucket objects, i):
//! scaling the counts down keeps the first images, the background choice does not move the
//! objects, and setups sharing buckets (1.11 and 1.2) share scenes for the same seed.

mod background;
mod scene;
mod setup;

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use background::{Background, DARKEN};
pub use scene::{
    Scene, BOX1_SIDE, BOX1_TEXT_DIST2, BOX2_BOX1_DIST2, BOX2_SIDE, BOX2_TEXT_DIST2, SCENE_SIDE,
    TEXT_OFFSET,
};
pub use setup::{Bucket, Letter, Object, SmerfSetup};

use crate::dataset::{Dataset, Splits};
use crate::error::{Error, Result};
use crate::rng;
use background::Painter;

const SCENE_TAG: u64 = 0x736d_6572; // "smer"
const BACKGROUND_TAG: u64 = 0x626b_6764; // "bkgd"

/// Settings of [`generate_smerf`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmerfConfig {
    /// The setup.
    pub setup: SmerfSetup,
    /// The background of every scene.
    pub background: Background,
    /// Factor on the paper's per-bucket counts ([`SmerfSetup::paper_counts`]); each count is
    /// rounded and at least 1. 1.0 (the default) is faithful; use e.g. 0.05 for quick runs.
    pub scale: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl SmerfConfig {
    /// The faithful configuration of `setup`: black background, paper counts, seed 0.
    pub fn new(setup: SmerfSetup) -> Self {
        SmerfConfig { setup, background: Background::Black, scale: 1.0, seed: 0 }
    }

    /// The number of (train, test) images of a bucket under this configuration.
    pub fn counts(&self, bucket: Bucket) -> (usize, usize) {
        let (train, test) = self.setup.paper_counts(bucket);
        let scaled = |n: usize| ((n as f64 * self.scale).round() as usize).max(1);
        (scaled(train), scaled(test))
    }
}

/// A stable code of a bucket's objects, used in random stream paths.
fn bucket_code(b: Bucket) -> u64 {
    let text = match b.text {
        None => 0,
        Some(Letter::A) => 1,
        Some(Letter::B) => 2,
    };
    u64::from(b.box1) | (text << 1) | (u64::from(b.box2) << 3)
}

/// The scene of image `index` of `bucket` in `split` (0 = train, 1 = test), as
/// [`generate_smerf`] places it.
pub fn sample_scene(seed: u64, split: u64, bucket: Bucket, index: u64) -> Result<Scene> {
    let mut r = rng::stream(seed, &[SCENE_TAG, split, bucket_code(bucket), index]);
    Scene::sample(bucket, &mut r)
}

/// Generates the train and test sets of a SMERF setup: images `[N, 3, 64, 64]` in `[0, 1]`
/// (bytes / 255), labels per the setup's rule, classes `"0"`, `"1"`, ground-truth boxes per image
/// (objects `"box1"`, `"text"`, `"box2"`), bucket ids and names.
///
/// Memory: the faithful 3.7x setups hold 150,000 + 4,000 images (about 7.6 GB of `f32`).
pub fn generate_smerf(config: &SmerfConfig) -> Result<Splits> {
    if !(config.scale.is_finite() && config.scale > 0.0) {
        return Err(Error::parameter(
            "generate_smerf",
            "scale",
            format!("must be positive, got {}", config.scale),
        ));
    }
    let painter = Painter::new(&config.background)?;
    Ok(Splits { train: smerf_split(config, &painter, 0)?, test: smerf_split(config, &painter, 1)? })
}

fn smerf_split(config: &SmerfConfig, painter: &Painter, split: u64) -> Result<Dataset> {
    let buckets = config.setup.buckets();
    let mut items = Vec::new(); // (bucket id, index within bucket)
    for (k, &b) in buckets.iter().enumerate() {
        let (train, test) = config.counts(b);
        let n = if split == 0 { train } else { test };
        items.extend((0..n).map(|i| (k, i as u64)));
    }
    let plane = SCENE_SIDE * SCENE_SIDE;
    let mut data = vec![0f32; items.len() * 3 * plane];
    let scenes: Vec<Scene> = data
        .par_chunks_mut(3 * plane)
        .zip(items.par_iter())
        .map(|(out, &(k, i))| {
            let bucket = buckets[k];
            let scene = sample_scene(config.seed, split, bucket, i)?;
            let mut canvas = vec![0u8; 3 * plane];
            let mut r = rng::stream(config.seed, &[BACKGROUND_TAG, split, bucket_code(bucket), i]);
            painter.paint(&mut r, &mut canvas);
            scene.draw(&mut canvas);
            for p in 0..plane {
                for c in 0..3 {
                    out[c * plane + p] = f32::from(canvas[p * 3 + c]) / 255.0;
                }
            }
            Ok(scene)
        })
        .collect::<Result<_>>()?;
    let mut labels = Vec::with_capacity(items.len());
    for &(k, _) in &items {
        let label = config.setup.label(buckets[k]).ok_or_else(|| {
            Error::parameter(
                "generate_smerf",
                "setup",
                format!("bucket {} has no label", buckets[k].name()),
            )
        })?;
        labels.push(label);
    }
    let n = items.len();
    let images = Tensor::from_vec(data, (n, 3, SCENE_SIDE, SCENE_SIDE), &Device::Cpu)?;
    let regions = scenes.iter().map(|s| s.regions(config.setup)).collect();
    Dataset::new(images, labels, vec!["0".to_string(), "1".to_string()])?
        .with_regions(regions)?
        .with_buckets(
            buckets.iter().map(Bucket::name).collect(),
            items.iter().map(|&(k, _)| k).collect(),
        )
}
