//! PNG copies of the SVG figures, rasterized with resvg.
//!
//! Text is drawn with the Ubuntu Light typeface embedded in the binary (from the
//! `epaint_default_fonts` crate, Ubuntu Font Licence), registered as the `sans-serif` family,
//! so a PNG looks the same on every machine and needs no system fonts.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

/// Why an SVG could not be rasterized.
#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    /// The SVG did not parse.
    #[error("SVG figure does not parse: {0}")]
    Parse(String),
    /// The figure's size is zero or too large.
    #[error("SVG figure of {width} x {height} pixels cannot be rasterized")]
    Size {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

/// Largest side of a rasterized figure in pixels.
const MAX_SIDE: u32 = 1 << 14;

fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(epaint_default_fonts::UBUNTU_LIGHT.to_vec());
        db.set_sans_serif_family("Ubuntu");
        db.set_serif_family("Ubuntu");
        db.set_monospace_family("Ubuntu");
        Arc::new(db)
    })
    .clone()
}

/// Rasterizes `svg` at `scale` times its size (2 gives a sharp figure on high-density
/// screens) on a white background and encodes it as PNG.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, RasterError> {
    let options = usvg::Options { fontdb: fonts(), ..usvg::Options::default() };
    let tree =
        usvg::Tree::from_str(svg, &options).map_err(|e| RasterError::Parse(e.to_string()))?;
    let size = tree.size().to_int_size().scale_by(scale).ok_or(RasterError::Size {
        width: (tree.size().width() * scale) as u32,
        height: (tree.size().height() * scale) as u32,
    })?;
    let (width, height) = (size.width(), size.height());
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(RasterError::Size { width, height });
    }
    let mut pixmap =
        tiny_skia::Pixmap::new(width, height).ok_or(RasterError::Size { width, height })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| RasterError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\" \
                       viewBox=\"0 0 40 20\" font-family=\"sans-serif\" font-size=\"12\">\
                       <rect x=\"0\" y=\"0\" width=\"20\" height=\"20\" fill=\"#ff0000\"/>\
                       <text x=\"22\" y=\"15\">Ag</text></svg>";

    #[test]
    fn draws_shapes_and_text_at_the_requested_scale() {
        let png = svg_to_png(SVG, 2.0).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (80, 40));
        assert_eq!(img.get_pixel(5, 5).0, [255, 0, 0]);
        // The text glyphs put dark pixels right of the square: the embedded font is used.
        let dark = (44..80)
            .flat_map(|x| (0..40).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 128)
            .count();
        assert!(dark > 10, "no text drawn ({dark} dark pixels)");
    }

    #[test]
    fn bad_svg_is_an_error() {
        assert!(matches!(svg_to_png("<svg", 1.0), Err(RasterError::Parse(_))));
        assert!(svg_to_png(SVG, 0.0).is_err());
    }
}
