//! Ground-truth metrics of SMERF (Kim, Plumb & Talwalkar, ICML 2022): how much of a map's
//! attribution falls on the regions a model is known to use (primary) or to ignore
//! (secondary). All functions take one 2-D map (see [`reduce_channels`]) of one sample.

mod blur;
mod focus;
mod iou;
mod reduce;
mod region;

pub use blur::{box_blur, BlurBoundary};
pub use focus::{
    attribution_focus_level, focus_distribution, mean_attribution_focus_level, FocusDistribution,
    FocusOptions,
};
pub use iou::intersection_over_union;
pub use reduce::{reduce_channels, ChannelReduction};
pub use region::{PixelBox, RegionMask};

use serde::{Deserialize, Serialize};

/// A ground-truth score of one map, and whether the (blurred) map was constant, in which case
/// the score follows the fallback documented on the metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthScore {
    /// The score (finite).
    pub value: f64,
    /// True when the blurred map was constant (no spatial information).
    pub constant_map: bool,
}
