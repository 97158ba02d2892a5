//! Ground-truth regions: pixel boxes and masks.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// An axis-aligned pixel rectangle, half-open: columns `x0..x1`, rows `y0..y1`.
/// SMERF stores boxes as `(rmin, rmax, cmin, cmax)` = `(y0, y1, x0, x1)`; see
/// [`PixelBox::from_smerf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PixelBox {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// One past the last column.
    pub x1: usize,
    /// One past the last row.
    pub y1: usize,
}

impl PixelBox {
    /// Box of columns `x0..x1` and rows `y0..y1`.
    pub fn new(x0: usize, y0: usize, x1: usize, y1: usize) -> Self {
        PixelBox { x0, y0, x1, y1 }
    }

    /// From SMERF's `(rmin, rmax, cmin, cmax)` (half-open, as its `mask[rmin:rmax, cmin:cmax]`).
    pub fn from_smerf(rmin: usize, rmax: usize, cmin: usize, cmax: usize) -> Self {
        PixelBox { x0: cmin, y0: rmin, x1: cmax, y1: rmax }
    }

    /// Number of pixels (0 for an empty or inverted box).
    pub fn area(&self) -> usize {
        self.x1.saturating_sub(self.x0) * self.y1.saturating_sub(self.y0)
    }
}

/// A set of pixels of a `height x width` map: one object, or the union of several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionMask {
    height: usize,
    width: usize,
    inside: Vec<bool>,
}

impl RegionMask {
    /// The union of `boxes` in a `height x width` map.
    ///
    /// Errors: no boxes, a box with no pixels, or a box reaching outside the map.
    pub fn from_boxes(height: usize, width: usize, boxes: &[PixelBox]) -> Result<Self> {
        if boxes.is_empty() {
            return Err(EvalError::InvalidRegion { reason: "no boxes given".into() });
        }
        let mut inside = vec![false; height * width];
        for b in boxes {
            if b.area() == 0 {
                return Err(EvalError::InvalidRegion {
                    reason: format!("box {b:?} has no pixels"),
                });
            }
            if b.x1 > width || b.y1 > height {
                return Err(EvalError::InvalidRegion {
                    reason: format!("box {b:?} reaches outside the {height}x{width} map"),
                });
            }
            for r in b.y0..b.y1 {
                inside[r * width + b.x0..r * width + b.x1].fill(true);
            }
        }
        Ok(RegionMask { height, width, inside })
    }

    /// A mask given pixel by pixel (row-major, `true` = inside).
    ///
    /// Errors: length not `height * width`, or no pixel inside.
    pub fn from_mask(height: usize, width: usize, inside: Vec<bool>) -> Result<Self> {
        if inside.len() != height * width {
            return Err(EvalError::InvalidRegion {
                reason: format!(
                    "mask has {} pixels, a {height}x{width} map has {}",
                    inside.len(),
                    height * width
                ),
            });
        }
        if !inside.iter().any(|&v| v) {
            return Err(EvalError::InvalidRegion { reason: "mask has no pixel inside".into() });
        }
        Ok(RegionMask { height, width, inside })
    }

    /// Map height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Map width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of pixels inside.
    pub fn area(&self) -> usize {
        self.inside.iter().filter(|&&v| v).count()
    }

    /// Row-major membership flags.
    pub fn pixels(&self) -> &[bool] {
        &self.inside
    }

    /// Fails unless the mask belongs to a `height x width` map.
    pub(crate) fn ensure_size(&self, height: usize, width: usize) -> Result<()> {
        if self.height == height && self.width == width {
            Ok(())
        } else {
            Err(EvalError::InvalidRegion {
                reason: format!(
                    "region is {}x{}, map is {height}x{width}",
                    self.height, self.width
                ),
            })
        }
    }
}
