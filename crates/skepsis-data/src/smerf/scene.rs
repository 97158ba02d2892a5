//! One SMERF scene: where the objects are, how they are drawn, and their true boxes
//! (wnstlr/SMERF `smerf/textbox_data.py`, `vec2im`).
//!
//! - u, v ~ U(0, 1); the text anchor is `(int(36 v), int(36 u))` (row, column) and the glyph's
//!   ink top-left lies at anchor + 6 on both axes, i.e. at `(int(36 v + 6), int(36 u + 6))`.
//!   skepsis places the glyph's *ink* there (SMERF places PIL's text origin), so the text box
//!   is exactly the glyph's pixel bounding box. The letter is Noto Sans Mono regular in a 32-px
//!   cell (A: 14x17 px, B: 11x17; SMERF's Arial 20 gives about 13x19).
//! - Box1 (10x10) top-left uniform in `0..=53` per axis, redrawn until its squared distance to
//!   the text anchor exceeds 300. As in SMERF's code the anchor is sampled, and the constraint
//!   applied, even when the scene has no text.
//! - Box2 (4x4) top-left uniform in `0..=53`, redrawn until its squared distance exceeds 400 to
//!   the text anchor (if the text is present) and 300 to Box1's top-left (if Box1 is present).
//! - Drawing order: background, Box1, text, Box2; all objects white. The text is blended by its
//!   coverage: `out = bg + (255 - bg) * coverage / 255`, rounded.

use crate::error::{Error, Result};
use crate::font::{self, Glyph, Size, Weight};
use crate::region::{BoundingBox, Region};
use crate::rng::{self, Rng};

use super::setup::{Bucket, Letter, Object, SmerfSetup};

/// Side of a SMERF image.
pub const SCENE_SIDE: usize = 64;
/// Side of Box1.
pub const BOX1_SIDE: usize = 10;
/// Side of Box2.
pub const BOX2_SIDE: usize = 4;
/// Minimum squared distance (exclusive) between Box1's top-left and the text anchor.
pub const BOX1_TEXT_DIST2: usize = 300;
/// Minimum squared distance (exclusive) between Box2's top-left and the text anchor.
pub const BOX2_TEXT_DIST2: usize = 400;
/// Minimum squared distance (exclusive) between Box2's and Box1's top-left corners.
pub const BOX2_BOX1_DIST2: usize = 300;
/// Offset of the glyph from the text anchor on both axes.
pub const TEXT_OFFSET: usize = 6;
const MAX_POSITION: usize = 53;
const MAX_TRIES: usize = 100_000;

/// The placement of the objects of one scene; `(row, column)` coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scene {
    /// The objects present.
    pub bucket: Bucket,
    /// The text anchor `(int(36 v), int(36 u))`, sampled even without text.
    pub anchor: (usize, usize),
    /// Box1's top-left, when present.
    pub box1: Option<(usize, usize)>,
    /// Box2's top-left, when present.
    pub box2: Option<(usize, usize)>,
}

fn dist2(a: (usize, usize), b: (usize, usize)) -> usize {
    a.0.abs_diff(b.0).pow(2) + a.1.abs_diff(b.1).pow(2)
}

fn position(r: &mut Rng) -> (usize, usize) {
    // SMERF draws x first, then y.
    let x = rng::below(r, MAX_POSITION + 1);
    let y = rng::below(r, MAX_POSITION + 1);
    (y, x)
}

/// The glyph of a letter.
pub(crate) fn letter_glyph(letter: Letter) -> Option<Glyph> {
    font::ink(letter.char(), Weight::Regular, Size::Px32)
}

impl Scene {
    /// Samples the placement of the objects of `bucket` by rejection sampling.
    pub(crate) fn sample(bucket: Bucket, r: &mut Rng) -> Result<Self> {
        let u = rng::unit(r);
        let v = rng::unit(r);
        let anchor = ((36.0 * v) as usize, (36.0 * u) as usize);
        let retry = |what: &str| {
            Error::parameter(
                "Scene::sample",
                "placement",
                format!("no valid {what} position found"),
            )
        };
        let mut box1 = None;
        if bucket.box1 {
            box1 = Some(
                (0..MAX_TRIES)
                    .map(|_| position(r))
                    .find(|&p| dist2(p, anchor) > BOX1_TEXT_DIST2)
                    .ok_or_else(|| retry("Box1"))?,
            );
        }
        let mut box2 = None;
        if bucket.box2 {
            box2 = Some(
                (0..MAX_TRIES)
                    .map(|_| position(r))
                    .find(|&p| {
                        (bucket.text.is_none() || dist2(p, anchor) > BOX2_TEXT_DIST2)
                            && box1.is_none_or(|b| dist2(p, b) > BOX2_BOX1_DIST2)
                    })
                    .ok_or_else(|| retry("Box2"))?,
            );
        }
        Ok(Scene { bucket, anchor, box1, box2 })
    }

    /// The box of an object, `None` when the scene does not hold it.
    pub fn object_box(&self, object: Object) -> Option<BoundingBox> {
        match object {
            Object::Box1 => {
                self.box1.map(|(y, x)| BoundingBox::from_origin(y, x, BOX1_SIDE, BOX1_SIDE))
            }
            Object::Box2 => {
                self.box2.map(|(y, x)| BoundingBox::from_origin(y, x, BOX2_SIDE, BOX2_SIDE))
            }
            Object::Text => {
                let g = letter_glyph(self.bucket.text?)?;
                let (y, x) = (self.anchor.0 + TEXT_OFFSET, self.anchor.1 + TEXT_OFFSET);
                Some(BoundingBox::from_origin(y, x, g.height, g.width))
            }
        }
    }

    /// The ground-truth regions of this scene under `setup` (absent objects dropped).
    pub fn regions(&self, setup: SmerfSetup) -> Vec<Region> {
        setup
            .ground_truth(self.bucket)
            .into_iter()
            .filter_map(|(object, kind)| {
                self.object_box(object).map(|b| Region::new_box(kind, object.name(), b))
            })
            .collect()
    }

    /// Draws the objects onto an interleaved 8-bit RGB 64x64 background.
    pub fn draw(&self, canvas: &mut [u8]) {
        if let Some(b) = self.object_box(Object::Box1) {
            fill_white(canvas, b);
        }
        if let (Some(letter), Some(b)) = (self.bucket.text, self.object_box(Object::Text)) {
            if let Some(g) = letter_glyph(letter) {
                for gy in 0..g.height {
                    for gx in 0..g.width {
                        let a = u32::from(g.coverage[gy * g.width + gx]);
                        let (y, x) = (b.y0 + gy, b.x0 + gx);
                        if a == 0 || y >= SCENE_SIDE || x >= SCENE_SIDE {
                            continue;
                        }
                        for c in 0..3 {
                            let p = &mut canvas[(y * SCENE_SIDE + x) * 3 + c];
                            let bg = u32::from(*p);
                            *p = (bg + ((255 - bg) * a + 127) / 255) as u8;
                        }
                    }
                }
            }
        }
        if let Some(b) = self.object_box(Object::Box2) {
            fill_white(canvas, b);
        }
    }
}

fn fill_white(canvas: &mut [u8], b: BoundingBox) {
    for y in b.y0..b.y1.min(SCENE_SIDE) {
        for x in b.x0..b.x1.min(SCENE_SIDE) {
            canvas[(y * SCENE_SIDE + x) * 3..(y * SCENE_SIDE + x) * 3 + 3].fill(255);
        }
    }
}
