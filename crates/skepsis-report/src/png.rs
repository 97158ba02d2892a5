//! PNG encoding and tile grids for the report's raster figures (e.g. the cascade figure:
//! rows = methods, columns = original then each randomized layer).

use image::{ImageEncoder, Rgb, RgbImage};

/// Why a PNG or a grid could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// The image crate failed to encode.
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] image::ImageError),
    /// The composed grid would be larger than an image can be.
    #[error("grid of {width} x {height} pixels is too large")]
    TooLarge {
        /// Requested width in pixels.
        width: u64,
        /// Requested height in pixels.
        height: u64,
    },
}

/// Encodes `image` as an 8-bit RGB PNG file.
pub fn encode_png(image: &RgbImage) -> Result<Vec<u8>, PngError> {
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes).write_image(
        image.as_raw(),
        image.width(),
        image.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(bytes)
}

/// Largest grid side accepted by [`grid`], in pixels.
pub const MAX_GRID_SIDE: u64 = 1 << 15;

/// Composes `rows` of tiles into one image on a `background` colour, with `gap` pixels
/// between cells and around the border.
///
/// Each column is as wide as its widest tile and each row as tall as its tallest one; tiles
/// are placed at the top-left of their cell, and rows may have different lengths (missing
/// cells stay background). An empty grid is a `gap` x `gap` square of background (an
/// empty image for a zero gap). Errors when a side would exceed [`MAX_GRID_SIDE`].
pub fn grid(rows: &[Vec<RgbImage>], gap: u32, background: [u8; 3]) -> Result<RgbImage, PngError> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut col_w = vec![0u64; columns];
    let mut row_h = vec![0u64; rows.len()];
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            col_w[c] = col_w[c].max(u64::from(tile.width()));
            row_h[r] = row_h[r].max(u64::from(tile.height()));
        }
    }
    let gap = u64::from(gap);
    let width = col_w.iter().sum::<u64>() + gap * (columns as u64 + 1);
    let height = row_h.iter().sum::<u64>() + gap * (rows.len() as u64 + 1);
    if width > MAX_GRID_SIDE || height > MAX_GRID_SIDE {
        return Err(PngError::TooLarge { width, height });
    }
    // Both sides are at most MAX_GRID_SIDE, so every coordinate below fits in u32.
    let mut out = RgbImage::from_pixel(width as u32, height as u32, Rgb(background));
    let mut y = gap;
    for (r, row) in rows.iter().enumerate() {
        let mut x = gap;
        for (c, tile) in row.iter().enumerate() {
            image::imageops::replace(&mut out, tile, x as i64, y as i64);
            x += col_w[c] + gap;
        }
        y += row_h[r] + gap;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v, v]))
    }

    #[test]
    fn png_round_trip() {
        let img = RgbImage::from_fn(5, 3, |x, y| Rgb([x as u8 * 40, y as u8 * 80, 7]));
        let bytes = encode_png(&img).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let back =
            image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8();
        assert_eq!(back, img);
        assert_eq!(encode_png(&img).unwrap(), bytes);
    }

    #[test]
    fn grid_layout() {
        let rows = vec![vec![tile(2, 2, 10), tile(3, 1, 20)], vec![tile(1, 4, 30)]];
        let g = grid(&rows, 1, [255, 0, 0]).unwrap();
        // Columns 2 and 3 wide, rows 2 and 4 tall, plus 3 gaps each way.
        assert_eq!(g.dimensions(), (2 + 3 + 3, 2 + 4 + 3));
        assert_eq!(g.get_pixel(0, 0), &Rgb([255, 0, 0]));
        assert_eq!(g.get_pixel(1, 1), &Rgb([10, 10, 10]));
        assert_eq!(g.get_pixel(2, 2), &Rgb([10, 10, 10]));
        assert_eq!(g.get_pixel(4, 1), &Rgb([20, 20, 20]));
        assert_eq!(g.get_pixel(4, 2), &Rgb([255, 0, 0]));
        assert_eq!(g.get_pixel(1, 4), &Rgb([30, 30, 30]));
        assert_eq!(g.get_pixel(1, 7), &Rgb([30, 30, 30]));
        assert_eq!(g.get_pixel(4, 4), &Rgb([255, 0, 0]));
    }

    #[test]
    fn grid_edge_cases() {
        assert_eq!(grid(&[], 0, [0; 3]).unwrap().dimensions(), (0, 0));
        assert_eq!(grid(&[], 2, [0; 3]).unwrap().dimensions(), (2, 2));
        let g = grid(&[vec![tile(3, 2, 9)]], 0, [0; 3]).unwrap();
        assert_eq!(g, tile(3, 2, 9));
        assert!(matches!(
            grid(&[vec![tile(1, 1, 0)]], u32::MAX, [0; 3]),
            Err(PngError::TooLarge { .. })
        ));
    }
}
