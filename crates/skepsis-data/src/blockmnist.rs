//! BlockMNIST (Shah, Jain, Netrapalli, "Do Input Gradients Highlight Discriminative Features?",
//! NeurIPS 2021): each image stacks two square blocks vertically, a *signal* block holding a
//! digit and a *null* block holding a pattern that is the same in every image and carries no
//! class information; the signal block is on top or at the bottom, uniformly at random per
//! image. A model can only use the signal block, so it is the primary ground-truth region and
//! the null block the secondary one.
//!
//! The paper's null block is a fixed, digit-sized "square" pattern; skepsis draws a hollow
//! square (outline 2 px wide, inset a quarter of the block side, value 1.0) by default, or
//! leaves the null block blank.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Splits};
use crate::digits::{generate_digits, DigitsConfig};
use crate::error::{Error, Result};
use crate::region::{BoundingBox, Region, RegionKind};
use crate::rng;

const TAG: u64 = 0x626c_6f63; // "bloc"

/// The content of the null block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NullBlock {
    /// A hollow square, the same in every image (default).
    Square,
    /// All zeros.
    Blank,
}

/// Settings of [`block_mnist`] and [`generate_block_digits`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMnistConfig {
    /// The null block's content.
    pub null_block: NullBlock,
    /// Seed of the signal positions (and of the digits for [`generate_block_digits`]).
    pub seed: u64,
}

impl Default for BlockMnistConfig {
    /// Square null block, seed 0.
    fn default() -> Self {
        BlockMnistConfig { null_block: NullBlock::Square, seed: 0 }
    }
}

/// The bucket names of BlockMNIST data sets: bucket 0 = signal on top, 1 = at the bottom.
pub const BLOCK_BUCKETS: [&str; 2] = ["signal=top", "signal=bottom"];

/// Builds BlockMNIST from single-channel digits `[N, 1, H, W]` (synthetic digits or a loaded
/// MNIST): images `[N, 1, 2H, W]`, same labels and classes, regions `signal` (primary) and
/// `null` (secondary), bucket = signal position. `stream` separates independent uses of one
/// seed (e.g. 0 for train, 1 for test).
pub fn block_mnist(digits: &Dataset, config: &BlockMnistConfig, stream: u64) -> Result<Dataset> {
    let [c, h, w] = digits.image_shape();
    if c != 1 {
        return Err(Error::ShapeMismatch {
            context: "block_mnist: single-channel digit images".to_string(),
            expected: vec![1, h, w],
            found: vec![c, h, w],
        });
    }
    let n = digits.len();
    let null = null_pattern(config.null_block, h, w);
    let null = Tensor::from_vec(null, (1, 1, h, w), digits.images().device())?;
    let mut r = rng::stream(config.seed, &[TAG, stream]);
    let bottom: Vec<bool> = (0..n).map(|_| rng::below(&mut r, 2) == 1).collect();
    let mut blocks = Vec::with_capacity(n);
    let mut regions = Vec::with_capacity(n);
    for (i, &signal_bottom) in bottom.iter().enumerate() {
        let digit = digits.images().narrow(0, i, 1)?;
        let (top, low) = if signal_bottom { (&null, &digit) } else { (&digit, &null) };
        blocks.push(Tensor::cat(&[top, low], 2)?);
        let (sy, ny) = if signal_bottom { (h, 0) } else { (0, h) };
        regions.push(vec![
            Region::new_box(RegionKind::Primary, "signal", BoundingBox::from_origin(sy, 0, h, w)),
            Region::new_box(RegionKind::Secondary, "null", BoundingBox::from_origin(ny, 0, h, w)),
        ]);
    }
    let images = if n == 0 {
        Tensor::zeros((0, 1, 2 * h, w), candle_core::DType::F32, digits.images().device())?
    } else {
        Tensor::cat(&blocks, 0)?
    };
    Dataset::new(images, digits.labels().to_vec(), digits.class_names().to_vec())?
        .with_regions(regions)?
        .with_buckets(
            BLOCK_BUCKETS.iter().map(|s| s.to_string()).collect(),
            bottom.iter().map(|&b| usize::from(b)).collect(),
        )
}

/// BlockMNIST from synthetic digits ([`generate_digits`] with the same seed): `[N, 1, 56, 28]`.
pub fn generate_block_digits(
    train: usize,
    test: usize,
    config: &BlockMnistConfig,
) -> Result<Splits> {
    let digits = generate_digits(&DigitsConfig { train, test, seed: config.seed })?;
    Ok(Splits {
        train: block_mnist(&digits.train, config, 0)?,
        test: block_mnist(&digits.test, config, 1)?,
    })
}

/// The null block's pixels, row-major `h x w`.
fn null_pattern(kind: NullBlock, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; h * w];
    if kind == NullBlock::Blank {
        return out;
    }
    let (y0, y1, x0, x1) = (h / 4, h - h / 4, w / 4, w - w / 4);
    let stroke = 2.min((y1 - y0) / 2).max(1);
    for y in y0..y1 {
        for x in x0..x1 {
            if y < y0 + stroke || y >= y1 - stroke || x < x0 + stroke || x >= x1 - stroke {
                out[y * w + x] = 1.0;
            }
        }
    }
    out
}
