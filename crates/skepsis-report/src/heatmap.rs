//! Attribution maps rendered as images.

use image::RgbImage;

use crate::Colormap;

/// How a `[C, H, W]` map becomes the 2-D field that is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendering {
    /// Sum of |map| over channels, divided by its maximum, drawn with a sequential map.
    Magnitude(Colormap),
    /// Sum over channels, divided by the maximum |value|, drawn with a diverging map
    /// (0 stays white whatever the scale).
    Signed,
}

/// Reduces `[C, H, W]` data (row-major) to `[H, W]` and scales it per map as the Sanity
/// Checks figures do: magnitude maps to [0, 1] by their maximum, signed maps to [-1, 1] by
/// their maximum absolute value. An all-zero map stays zero.
pub fn reduce_and_scale(
    data: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    rendering: Rendering,
) -> Vec<f64> {
    let plane = height * width;
    let mut field = vec![0f64; plane];
    for c in 0..channels {
        for (i, v) in data[c * plane..(c + 1) * plane].iter().enumerate() {
            field[i] += match rendering {
                Rendering::Magnitude(_) => (*v as f64).abs(),
                Rendering::Signed => *v as f64,
            };
        }
    }
    let scale = field.iter().fold(0f64, |m, v| if v.is_finite() { m.max(v.abs()) } else { m });
    if scale > 0.0 {
        field.iter_mut().for_each(|v| *v /= scale);
    }
    field
}

/// Draws a `[C, H, W]` map as an RGB image, each pixel enlarged to `zoom` x `zoom`.
pub fn render(
    data: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    rendering: Rendering,
    zoom: u32,
) -> RgbImage {
    let field = reduce_and_scale(data, channels, height, width, rendering);
    let cmap = match rendering {
        Rendering::Magnitude(c) => c,
        Rendering::Signed => Colormap::Diverging,
    };
    let zoom = zoom.max(1);
    RgbImage::from_fn(width as u32 * zoom, height as u32 * zoom, |x, y| {
        let i = (y / zoom) as usize * width + (x / zoom) as usize;
        image::Rgb(cmap.color(field[i]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_sums_channels_and_scales_by_max() {
        // Two channels, 1x2 pixels: |.| summed = [1+3, 2+0] = [4, 2] -> [1, 0.5].
        let f = reduce_and_scale(
            &[1.0, -2.0, -3.0, 0.0],
            2,
            1,
            2,
            Rendering::Magnitude(Colormap::Gray),
        );
        assert_eq!(f, vec![1.0, 0.5]);
        // Signed: [1-3, -2+0] = [-2, -2] -> [-1, -1].
        let f = reduce_and_scale(&[1.0, -2.0, -3.0, 0.0], 2, 1, 2, Rendering::Signed);
        assert_eq!(f, vec![-1.0, -1.0]);
        assert_eq!(reduce_and_scale(&[0.0; 4], 1, 2, 2, Rendering::Signed), vec![0.0; 4]);
    }

    #[test]
    fn zoom_enlarges_pixels() {
        let img = render(&[0.0, 1.0], 1, 1, 2, Rendering::Magnitude(Colormap::Gray), 3);
        assert_eq!(img.dimensions(), (6, 3));
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(5, 2).0, [255, 255, 255]);
    }
}
