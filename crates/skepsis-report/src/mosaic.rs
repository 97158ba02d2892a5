//! Labelled grids of map tiles: the cascade figure of Adebayo et al. (2018, Fig. 2; rows =
//! methods, columns = the input, the trained model's map, then each randomization step), the
//! side-by-side maps of the data randomization and random-logit tests, the input-invariance
//! pairs of Kindermans et al. (2017, Fig. 1) and the SMERF examples with their ground-truth
//! boxes (Kim et al. 2022).
//!
//! A mosaic is laid out as SVG (tiles embedded as PNG data URIs, labels as text) and
//! rasterized to one PNG by [`crate::raster`], so the labels are part of the figure file.

use std::fmt::Write as _;

use image::RgbImage;

use crate::curves::coord;
use crate::html::{base64_encode, escape};
use crate::png::{encode_png, PngError};
use crate::raster::{svg_to_png, RasterError};

/// A rectangle drawn over a tile, in the tile's source pixels (before zoom).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outline {
    /// Top row.
    pub y0: usize,
    /// Left column.
    pub x0: usize,
    /// Bottom row (exclusive).
    pub y1: usize,
    /// Right column (exclusive).
    pub x1: usize,
    /// Stroke colour, e.g. `#00c000`.
    pub color: &'static str,
}

/// One cell of a mosaic.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// The image, at source resolution.
    pub image: RgbImage,
    /// Rectangles drawn on top.
    pub outlines: Vec<Outline>,
}

impl Tile {
    /// A tile without outlines.
    pub fn new(image: RgbImage) -> Self {
        Tile { image, outlines: Vec::new() }
    }
}

/// A labelled grid of tiles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mosaic {
    /// Title drawn above the grid.
    pub title: String,
    /// Column labels.
    pub columns: Vec<String>,
    /// Rows: a label and one optional tile per column (`None` leaves the cell empty).
    pub rows: Vec<(String, Vec<Option<Tile>>)>,
    /// Display size of every tile in pixels (tiles are scaled, nearest neighbour).
    pub tile_size: u32,
}

/// Why a mosaic could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum MosaicError {
    /// A tile could not be encoded.
    #[error(transparent)]
    Png(#[from] PngError),
    /// The mosaic could not be rasterized.
    #[error(transparent)]
    Raster(#[from] RasterError),
}

const LABEL_WIDTH: f64 = 170.0;
const HEADER: f64 = 62.0;
const GAP: f64 = 4.0;

impl Mosaic {
    /// The mosaic as SVG with embedded PNG tiles.
    pub fn svg(&self) -> Result<String, MosaicError> {
        let tile = f64::from(self.tile_size.max(8));
        let cols = self.columns.len().max(self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0));
        let width = LABEL_WIDTH + (tile + GAP) * cols as f64 + GAP;
        let height = HEADER + (tile + GAP) * self.rows.len() as f64 + GAP;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" \
             xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\
             <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
            w = coord(width),
            h = coord(height)
        );
        if !self.title.is_empty() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{}</text>",
                coord(GAP),
                escape(&self.title)
            );
        }
        for (c, label) in self.columns.iter().enumerate() {
            let x = LABEL_WIDTH + (tile + GAP) * c as f64 + tile / 2.0;
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
                coord(x),
                coord(HEADER - 8.0),
                escape(&shorten(label, tile))
            );
        }
        for (r, (label, tiles)) in self.rows.iter().enumerate() {
            let y = HEADER + (tile + GAP) * r as f64;
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
                coord(LABEL_WIDTH - 8.0),
                coord(y + tile / 2.0),
                escape(&shorten(label, LABEL_WIDTH - 10.0))
            );
            for (c, cell) in tiles.iter().enumerate() {
                let Some(t) = cell else { continue };
                let x = LABEL_WIDTH + (tile + GAP) * c as f64;
                let png = encode_png(&t.image)?;
                let _ = writeln!(
                    out,
                    "<image x=\"{}\" y=\"{}\" width=\"{s}\" height=\"{s}\" \
                     preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" \
                     xlink:href=\"data:image/png;base64,{}\"/>",
                    coord(x),
                    coord(y),
                    base64_encode(&png),
                    s = coord(tile)
                );
                let (sx, sy) = (
                    tile / f64::from(t.image.width().max(1)),
                    tile / f64::from(t.image.height().max(1)),
                );
                for o in &t.outlines {
                    let _ = writeln!(
                        out,
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" \
                         stroke=\"{}\" stroke-width=\"1.5\"/>",
                        coord(x + o.x0 as f64 * sx),
                        coord(y + o.y0 as f64 * sy),
                        coord(o.x1.saturating_sub(o.x0) as f64 * sx),
                        coord(o.y1.saturating_sub(o.y0) as f64 * sy),
                        escape(o.color)
                    );
                }
            }
        }
        out.push_str("</svg>\n");
        Ok(out)
    }

    /// The mosaic as a PNG file.
    pub fn png(&self) -> Result<Vec<u8>, MosaicError> {
        Ok(svg_to_png(&self.svg()?, 1.0)?)
    }
}

/// `text` cut with an ellipsis to fit about `width` pixels of 12 px text.
fn shorten(text: &str, width: f64) -> String {
    let max = ((width / 6.5) as usize).max(4);
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn tiles_and_outlines_land_in_their_cells() {
        let red = RgbImage::from_pixel(4, 4, Rgb([255, 0, 0]));
        let mut boxed = Tile::new(RgbImage::from_pixel(4, 4, Rgb([0, 0, 255])));
        boxed.outlines.push(Outline { y0: 0, x0: 0, y1: 4, x1: 4, color: "#00ff00" });
        let m = Mosaic {
            title: "t <&>".into(),
            columns: vec!["a".into(), "b".into()],
            rows: vec![("row".into(), vec![Some(Tile::new(red)), Some(boxed)])],
            tile_size: 40,
        };
        assert!(m.svg().unwrap().contains("t &lt;&amp;&gt;"));
        let img = image::load_from_memory(&m.png().unwrap()).unwrap().to_rgb8();
        let (x0, y0) = (LABEL_WIDTH as u32, HEADER as u32);
        assert_eq!(img.get_pixel(x0 + 20, y0 + 20).0, [255, 0, 0]);
        let x1 = x0 + 44;
        assert_eq!(img.get_pixel(x1 + 20, y0 + 20).0, [0, 0, 255]);
        let edge = img.get_pixel(x1 + 20, y0).0;
        assert!(edge[1] > 100 && edge[0] < 100, "outline not drawn: {edge:?}");
    }

    #[test]
    fn long_labels_are_shortened() {
        assert_eq!(shorten("abc", 100.0), "abc");
        assert!(shorten(&"x".repeat(100), 65.0).ends_with('…'));
    }
}
