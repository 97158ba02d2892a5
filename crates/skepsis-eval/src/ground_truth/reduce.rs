//! Reduction of a `[C,H,W]` attribution map to the 2-D map SMERF scores.

use serde::{Deserialize, Serialize};

use crate::dims::MapDims;
use crate::error::Result;

/// How a `[C,H,W]` map becomes `[H,W]` before the ground-truth metrics (Kim et al. 2022,
/// SMERF `eval.py`, which takes `max` over the channel axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelReduction {
    /// `max_c |x[c, h, w]|` (default): magnitude of the strongest channel, sign ignored.
    #[default]
    MaxAbs,
    /// `sum_c x[c, h, w]`, signed: for heatmap-style methods whose sign is meaningful.
    SignedSum,
}

/// Reduces one map of dimensions `dims` to `[H,W]` with `reduction`. A `[H,W]` map is reduced
/// the same way with one channel (`MaxAbs` gives `|x|`, `SignedSum` gives `x`).
///
/// Errors: shape mismatch, empty map, NaN or infinity.
pub fn reduce_channels(
    values: &[f64],
    dims: MapDims,
    reduction: ChannelReduction,
) -> Result<Vec<f64>> {
    dims.validate("map", values)?;
    let pixels = dims.pixels();
    // 0 is the identity of both reductions (max of non-negative values, sum).
    let mut out = vec![0.0f64; pixels];
    for channel in values.chunks_exact(pixels) {
        for (o, &v) in out.iter_mut().zip(channel) {
            match reduction {
                ChannelReduction::MaxAbs => *o = o.max(v.abs()),
                ChannelReduction::SignedSum => *o += v,
            }
        }
    }
    Ok(out)
}
