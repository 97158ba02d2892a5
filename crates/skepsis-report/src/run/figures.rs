//! Figure files of a report: every figure is written as a PNG under `figures/` and embedded
//! in the page (SVG charts inline, with their PNG copy beside the page).

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use image::{Rgb, RgbImage};

use super::ReportError;
use crate::html::Figure;
use crate::mosaic::{Mosaic, Tile};
use crate::raster::svg_to_png;
use crate::{render, Colormap, Rendering};

/// Directory of the PNG figures inside a run directory.
pub const FIGURES_DIR: &str = "figures";

/// Writes figures under `dir/figures` and hands back page figures.
pub struct FigureSink {
    dir: PathBuf,
    /// Files written, relative to the run directory.
    pub written: Vec<String>,
}

impl FigureSink {
    /// A sink writing into `run_dir/figures` (created).
    pub fn new(run_dir: &Path) -> Result<Self, ReportError> {
        let dir = run_dir.join(FIGURES_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| ReportError::io(&dir, e))?;
        Ok(FigureSink { dir, written: Vec::new() })
    }

    fn save(&mut self, name: &str, bytes: &[u8]) -> Result<(), ReportError> {
        let file = format!("{}.png", file_stem(name));
        let path = self.dir.join(&file);
        std::fs::write(&path, bytes).map_err(|e| ReportError::io(&path, e))?;
        self.written.push(format!("{FIGURES_DIR}/{file}"));
        Ok(())
    }

    /// An SVG chart: inline in the page, PNG copy saved as `name.png`.
    pub fn svg(&mut self, name: &str, svg: String, caption: &str) -> Result<Figure, ReportError> {
        let png = svg_to_png(&svg, 2.0)?;
        self.save(name, &png)?;
        Ok(Figure::svg(svg).with_caption(caption))
    }

    /// A mosaic: saved as `name.png` and embedded as that PNG.
    pub fn mosaic(
        &mut self,
        name: &str,
        mosaic: &Mosaic,
        caption: &str,
    ) -> Result<Figure, ReportError> {
        let png = mosaic.png()?;
        self.save(name, &png)?;
        Ok(Figure::png(png, mosaic.title.clone()).with_caption(caption))
    }
}

/// A file-name-safe version of `name` (letters, digits, `-`, `_`, `.`).
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(
            |c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' },
        )
        .collect()
}

/// Image `i` of a `[k, C, H, W]` map tensor as a tile (`None` when absent or malformed).
pub fn map_tile(maps: Option<&Tensor>, i: usize, rendering: Rendering) -> Option<Tile> {
    let (data, c, h, w) = plane(maps?, i)?;
    Some(Tile::new(render(&data, c, h, w, rendering, 1)))
}

/// `|a_i - b_i|` summed over channels, scaled by the largest `|a_i|` sum (so that a
/// difference that is small next to the map itself stays dark), as a gray tile.
pub fn difference_tile(a: Option<&Tensor>, b: Option<&Tensor>, i: usize) -> Option<Tile> {
    let (da, c, h, w) = plane(a?, i)?;
    let (db, ..) = plane(b?, i)?;
    let plane_len = h * w;
    let over_channels = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..plane_len).map(|p| (0..c).map(|ch| f(ch * plane_len + p)).sum()).collect()
    };
    let scale = over_channels(&|j| (da[j] as f64).abs()).iter().fold(0f64, |m, v| m.max(*v));
    let diff = over_channels(&|j| (da[j] as f64 - db[j] as f64).abs());
    let image = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let v = diff[y as usize * w + x as usize];
        let t = if scale > 0.0 {
            (v / scale).min(1.0)
        } else if v > 0.0 {
            1.0
        } else {
            0.0
        };
        Rgb(Colormap::Gray.color(t))
    });
    Some(Tile::new(image))
}

/// Image `i` of a `[k, C, H, W]` input tensor, min-max scaled, gray or RGB.
pub fn input_tile(images: Option<&Tensor>, i: usize) -> Option<Tile> {
    let (data, c, h, w) = plane(images?, i)?;
    let (lo, hi) =
        data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let px = |ch: usize, p: usize| (((data[ch * h * w + p] - lo) / span) * 255.0).round() as u8;
    let image = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let p = y as usize * w + x as usize;
        if c >= 3 {
            Rgb([px(0, p), px(1, p), px(2, p)])
        } else {
            let v = px(0, p);
            Rgb([v, v, v])
        }
    });
    Some(Tile::new(image))
}

/// Sample `i` of a `[k, C, H, W]` (or `[k, H, W]`) tensor: values and `(C, H, W)`.
fn plane(t: &Tensor, i: usize) -> Option<(Vec<f32>, usize, usize, usize)> {
    let dims = t.dims();
    let (c, h, w) = match dims {
        [_, c, h, w] => (*c, *h, *w),
        [_, h, w] => (1, *h, *w),
        _ => return None,
    };
    if i >= dims[0] {
        return None;
    }
    let data = t.get(i).ok()?.flatten_all().ok()?.to_dtype(candle_core::DType::F32).ok()?;
    Some((data.to_vec1::<f32>().ok()?, c, h, w))
}
