//! Glyphs from Noto Sans Mono, rasterized at build time by the `noto-sans-mono-bitmap` crate
//! (font: SIL Open Font License 1.1; crate: MIT). Used for the synthetic digits, the SMERF
//! letters and the labels of sample grids.

use noto_sans_mono_bitmap::{get_raster, FontWeight, RasterHeight};

/// Stroke weight of the font.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Light,
    Regular,
    Bold,
}

/// The available raster heights (pixel height of a character cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Size {
    Px16,
    Px32,
}

/// A grayscale glyph: coverage bytes (0 = no ink, 255 = full ink), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glyph {
    pub height: usize,
    pub width: usize,
    pub coverage: Vec<u8>,
}

impl Glyph {
    /// Coverage at `(y, x)`, 0 outside.
    pub fn at(&self, y: isize, x: isize) -> u8 {
        if y < 0 || x < 0 || y as usize >= self.height || x as usize >= self.width {
            0
        } else {
            self.coverage[y as usize * self.width + x as usize]
        }
    }
}

/// The full character cell of `c` (with the font's blank margins); `None` for characters
/// outside Basic Latin.
pub(crate) fn cell(c: char, weight: Weight, size: Size) -> Option<Glyph> {
    let w = match weight {
        Weight::Light => FontWeight::Light,
        Weight::Regular => FontWeight::Regular,
        Weight::Bold => FontWeight::Bold,
    };
    let s = match size {
        Size::Px16 => RasterHeight::Size16,
        Size::Px32 => RasterHeight::Size32,
    };
    let r = get_raster(c, w, s)?;
    let coverage: Vec<u8> = r.raster().iter().flat_map(|row| row.iter().copied()).collect();
    Some(Glyph { height: r.height(), width: r.width(), coverage })
}

/// The glyph of `c` cropped to its ink: the smallest box holding every pixel of nonzero
/// coverage (its true pixel bounding box). `None` for unknown or blank characters.
pub(crate) fn ink(c: char, weight: Weight, size: Size) -> Option<Glyph> {
    let g = cell(c, weight, size)?;
    let (mut y0, mut x0, mut y1, mut x1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..g.height {
        for x in 0..g.width {
            if g.coverage[y * g.width + x] > 0 {
                y0 = y0.min(y);
                x0 = x0.min(x);
                y1 = y1.max(y + 1);
                x1 = x1.max(x + 1);
            }
        }
    }
    if y1 == 0 {
        return None;
    }
    let coverage = (y0..y1)
        .flat_map(|y| g.coverage[y * g.width + x0..y * g.width + x1].iter().copied())
        .collect();
    Some(Glyph { height: y1 - y0, width: x1 - x0, coverage })
}

/// Draws `text` in the 16-pixel regular font onto an RGB image with its cell's top-left at
/// `(x, y)`, blending `color` by coverage; pixels outside the image are skipped.
pub(crate) fn draw_text(img: &mut image::RgbImage, x: i64, y: i64, text: &str, color: [u8; 3]) {
    let mut pen = x;
    for c in text.chars() {
        let Some(g) =
            cell(c, Weight::Regular, Size::Px16).or_else(|| cell('?', Weight::Regular, Size::Px16))
        else {
            continue;
        };
        for gy in 0..g.height {
            for gx in 0..g.width {
                let a = u32::from(g.coverage[gy * g.width + gx]);
                let (px, py) = (pen + gx as i64, y + gy as i64);
                if a == 0
                    || px < 0
                    || py < 0
                    || px >= i64::from(img.width())
                    || py >= i64::from(img.height())
                {
                    continue;
                }
                let p = img.get_pixel_mut(px as u32, py as u32);
                for (channel, &target) in p.0.iter_mut().zip(&color) {
                    let v = u32::from(*channel) * (255 - a) + u32::from(target) * a;
                    *channel = ((v + 127) / 255) as u8;
                }
            }
        }
        pen += g.width as i64;
    }
}

/// Width in pixels of `text` drawn by [`draw_text`].
pub(crate) fn text_width(text: &str) -> usize {
    text.chars().count() * cell('0', Weight::Regular, Size::Px16).map_or(8, |g| g.width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smerf_letters_have_plausible_ink_boxes() {
        // SMERF draws Arial size 20: letters about 13x19 px. Noto Sans Mono at a 32-px cell
        // gives 14x17 (A) and 11x17 (B).
        for c in ['A', 'B'] {
            let g = ink(c, Weight::Regular, Size::Px32).unwrap();
            assert!((15..=20).contains(&g.height) && (9..=16).contains(&g.width), "{c}: {g:?}");
            // The crop is tight: ink touches every edge.
            assert!((0..g.width).any(|x| g.coverage[x] > 0));
            assert!((0..g.width).any(|x| g.coverage[(g.height - 1) * g.width + x] > 0));
            assert!((0..g.height).any(|y| g.coverage[y * g.width] > 0));
            assert!((0..g.height).any(|y| g.coverage[y * g.width + g.width - 1] > 0));
        }
        assert!(ink(' ', Weight::Regular, Size::Px32).is_none());
    }
}
