//! A labelled sample grid with ground-truth boxes, for `skepsis data show`.

use image::{Rgb, RgbImage};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::font;
use crate::region::{RegionKind, RegionShape};

/// Color of primary regions (green).
pub const PRIMARY_COLOR: [u8; 3] = [0, 200, 0];
/// Color of secondary regions (red).
pub const SECONDARY_COLOR: [u8; 3] = [220, 0, 0];

const PAD: u32 = 4;
const TEXT_ROW: u32 = 18;

/// Layout of [`sample_grid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridOptions {
    /// Images per row.
    pub columns: usize,
    /// Integer upscaling of each image (nearest neighbour); 0 picks one that makes the
    /// images at least 96 pixels wide.
    pub scale: u32,
    /// Whether to outline ground-truth regions.
    pub regions: bool,
}

impl Default for GridOptions {
    /// 8 columns, automatic scale, regions shown.
    fn default() -> Self {
        GridOptions { columns: 8, scale: 0, regions: true }
    }
}

/// Draws the images at `indices` in a grid: each upscaled image, its primary regions outlined in
/// green and secondary ones in red, and below it the class name (with the bucket id, `b<k>`,
/// when the data set has buckets), in the font of the generators.
///
/// Pixel values: images whose values all lie in `[0, 1]` are shown as they are; others (e.g.
/// mean/std-normalized) are min-max scaled per image. One channel is drawn as gray, three as
/// RGB; other channel counts show the first channel.
pub fn sample_grid(
    dataset: &Dataset,
    indices: &[usize],
    options: &GridOptions,
) -> Result<RgbImage> {
    if indices.is_empty() || options.columns == 0 {
        return Err(Error::parameter("sample_grid", "indices/columns", "nothing to draw"));
    }
    let subset = dataset.subset(indices)?;
    let [c, h, w] = subset.image_shape();
    let values: Vec<f32> = subset.images().flatten_all()?.to_vec1()?;
    let scale = if options.scale > 0 { options.scale } else { (96 / w.max(1) as u32).max(1) };
    let labels: Vec<String> = (0..subset.len())
        .map(|i| {
            let name = &subset.class_names()[subset.labels()[i]];
            match subset.bucket_ids() {
                Some(b) => format!("{name} b{}", b[i]),
                None => name.clone(),
            }
        })
        .collect();
    let text_w = labels.iter().map(|l| font::text_width(l) as u32).max().unwrap_or(0);
    let cell_w = (w as u32 * scale).max(text_w) + 2 * PAD;
    let cell_h = h as u32 * scale + TEXT_ROW + 2 * PAD;
    let cols = options.columns.min(subset.len()) as u32;
    let rows = subset.len().div_ceil(options.columns) as u32;
    let mut img = RgbImage::from_pixel(cols * cell_w, rows * cell_h, Rgb([255, 255, 255]));

    let per = c * h * w;
    for i in 0..subset.len() {
        let (ox, oy) = ((i as u32 % cols) * cell_w + PAD, (i as u32 / cols) * cell_h + PAD);
        let v = &values[i * per..(i + 1) * per];
        let (lo, hi) =
            v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        let (lo, span) =
            if lo >= 0.0 && hi <= 1.0 { (0.0, 1.0) } else { (lo, (hi - lo).max(1e-12)) };
        let byte = |x: f32| (((x - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
        for y in 0..h {
            for x in 0..w {
                let px = if c == 3 {
                    [byte(v[y * w + x]), byte(v[h * w + y * w + x]), byte(v[2 * h * w + y * w + x])]
                } else {
                    let g = byte(v[y * w + x]);
                    [g, g, g]
                };
                for sy in 0..scale {
                    for sx in 0..scale {
                        img.put_pixel(
                            ox + x as u32 * scale + sx,
                            oy + y as u32 * scale + sy,
                            Rgb(px),
                        );
                    }
                }
            }
        }
        if options.regions {
            for region in subset.regions().map(|r| r[i].as_slice()).unwrap_or(&[]) {
                let color = match region.kind {
                    RegionKind::Primary => PRIMARY_COLOR,
                    RegionKind::Secondary => SECONDARY_COLOR,
                };
                outline(&mut img, &region.shape, (ox, oy), scale, color);
            }
        }
        font::draw_text(
            &mut img,
            i64::from(ox),
            i64::from(oy + h as u32 * scale + 1),
            &labels[i],
            [0, 0, 0],
        );
    }
    Ok(img)
}

/// Outlines a region: the border pixels of the upscaled region (inside it), 1 pixel wide.
fn outline(
    img: &mut RgbImage,
    shape: &RegionShape,
    (ox, oy): (u32, u32),
    scale: u32,
    color: [u8; 3],
) {
    let inside = |y: i64, x: i64| -> bool {
        y >= 0
            && x >= 0
            && shape.contains((y / i64::from(scale)) as usize, (x / i64::from(scale)) as usize)
    };
    let (h, w) = match shape {
        RegionShape::Box(b) => (b.y1 as i64 * i64::from(scale), b.x1 as i64 * i64::from(scale)),
        RegionShape::Mask(m) => {
            (m.height() as i64 * i64::from(scale), m.width() as i64 * i64::from(scale))
        }
    };
    for y in 0..h {
        for x in 0..w {
            let border =
                !inside(y - 1, x) || !inside(y + 1, x) || !inside(y, x - 1) || !inside(y, x + 1);
            if inside(y, x) && border {
                let (px, py) = (ox + x as u32, oy + y as u32);
                if px < img.width() && py < img.height() {
                    img.put_pixel(px, py, Rgb(color));
                }
            }
        }
    }
}
