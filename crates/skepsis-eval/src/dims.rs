//! Dimensions of one saliency map stored as a flat row-major slice.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// Shape of one map (one sample, never a batch) stored row-major in a flat `&[f64]`.
///
/// `Plane` is an `[H, W]` map, `Channels` a `[C, H, W]` map (channel-major, like PyTorch's
/// NCHW without the batch axis). Adebayo et al. (2018) treat the two differently when
/// normalizing (see [`Normalization`](crate::Normalization)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapDims {
    /// A 2-D `[height, width]` map.
    Plane {
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
    /// A 3-D `[channels, height, width]` map.
    Channels {
        /// Channels.
        channels: usize,
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
}

impl MapDims {
    /// A 2-D `[height, width]` map.
    pub fn plane(height: usize, width: usize) -> Self {
        MapDims::Plane { height, width }
    }

    /// A 3-D `[channels, height, width]` map.
    pub fn channels(channels: usize, height: usize, width: usize) -> Self {
        MapDims::Channels { channels, height, width }
    }

    /// Number of channels (1 for a plane).
    pub fn num_channels(&self) -> usize {
        match *self {
            MapDims::Plane { .. } => 1,
            MapDims::Channels { channels, .. } => channels,
        }
    }

    /// Rows.
    pub fn height(&self) -> usize {
        match *self {
            MapDims::Plane { height, .. } | MapDims::Channels { height, .. } => height,
        }
    }

    /// Columns.
    pub fn width(&self) -> usize {
        match *self {
            MapDims::Plane { width, .. } | MapDims::Channels { width, .. } => width,
        }
    }

    /// Pixels per channel, `height * width`.
    pub fn pixels(&self) -> usize {
        self.height() * self.width()
    }

    /// Total number of elements, `channels * height * width`.
    pub fn len(&self) -> usize {
        self.num_channels() * self.pixels()
    }

    /// True when the map has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same spatial size as a 2-D plane (what channel reductions produce).
    pub fn to_plane(&self) -> MapDims {
        MapDims::plane(self.height(), self.width())
    }

    /// Checks that `values` is a non-empty, finite map of these dimensions.
    pub fn validate(&self, name: &'static str, values: &[f64]) -> Result<()> {
        if self.is_empty() {
            return Err(EvalError::Empty { name });
        }
        if values.len() != self.len() {
            return Err(EvalError::ShapeMismatch {
                dims: self.to_string(),
                expected: self.len(),
                actual: values.len(),
            });
        }
        crate::error::ensure_finite(name, values)
    }
}

impl std::fmt::Display for MapDims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            MapDims::Plane { height, width } => write!(f, "[{height},{width}]"),
            MapDims::Channels { channels, height, width } => {
                write!(f, "[{channels},{height},{width}]")
            }
        }
    }
}
