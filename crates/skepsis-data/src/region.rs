//! Ground-truth regions: where in an image the evidence for its label is (primary) or is known
//! not to be (secondary), as used by the SMERF ground-truth metrics (AFL, MAFL, IoU).

use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixel coordinates, half-open: rows `y0..y1`, columns `x0..x1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoundingBox {
    /// First row.
    pub y0: usize,
    /// First column.
    pub x0: usize,
    /// One past the last row.
    pub y1: usize,
    /// One past the last column.
    pub x1: usize,
}

impl BoundingBox {
    /// The box with top-left `(y, x)` and the given size.
    pub fn from_origin(y: usize, x: usize, height: usize, width: usize) -> Self {
        BoundingBox { y0: y, x0: x, y1: y + height, x1: x + width }
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.y1.saturating_sub(self.y0)
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.x1.saturating_sub(self.x0)
    }

    /// Number of pixels.
    pub fn area(&self) -> usize {
        self.height() * self.width()
    }

    /// Whether pixel `(y, x)` lies inside.
    pub fn contains(&self, y: usize, x: usize) -> bool {
        (self.y0..self.y1).contains(&y) && (self.x0..self.x1).contains(&x)
    }
}

/// A binary pixel mask of an image's size, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    height: usize,
    width: usize,
    pixels: Vec<bool>,
}

impl Mask {
    /// A mask from row-major pixels; `None` unless `pixels.len() == height * width`.
    pub fn new(height: usize, width: usize, pixels: Vec<bool>) -> Option<Self> {
        (height.checked_mul(width) == Some(pixels.len())).then_some(Mask { height, width, pixels })
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Row-major pixels.
    pub fn pixels(&self) -> &[bool] {
        &self.pixels
    }

    /// Whether pixel `(y, x)` is set (false outside the mask).
    pub fn contains(&self, y: usize, x: usize) -> bool {
        y < self.height && x < self.width && self.pixels[y * self.width + x]
    }
}

/// The shape of a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionShape {
    /// A bounding box.
    Box(BoundingBox),
    /// A pixel mask.
    Mask(Mask),
}

impl RegionShape {
    /// Whether pixel `(y, x)` belongs to the region.
    pub fn contains(&self, y: usize, x: usize) -> bool {
        match self {
            RegionShape::Box(b) => b.contains(y, x),
            RegionShape::Mask(m) => m.contains(y, x),
        }
    }
}

/// Whether a region must be used by a correct model (primary) or must not (secondary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionKind {
    /// The model must rely on this region (SMERF's "ground-truth" features).
    Primary,
    /// The model must not rely on this region (SMERF's "avoid" features).
    Secondary,
}

/// One ground-truth region of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Primary or secondary.
    pub kind: RegionKind,
    /// The object this region covers, e.g. `"box1"`, `"text"`, `"box2"`, `"signal"`.
    pub object: String,
    /// Its pixels.
    pub shape: RegionShape,
}

impl Region {
    /// A box region.
    pub fn new_box(kind: RegionKind, object: &str, bbox: BoundingBox) -> Self {
        Region { kind, object: object.to_string(), shape: RegionShape::Box(bbox) }
    }

    /// The bounding box, for box regions.
    pub fn bbox(&self) -> Option<BoundingBox> {
        match &self.shape {
            RegionShape::Box(b) => Some(*b),
            RegionShape::Mask(_) => None,
        }
    }
}
