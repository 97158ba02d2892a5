//! Colormaps: gray for magnitudes, a diverging blue-white-red map for signed values (as
//! Adebayo et al. draw their figures), and inferno for single-map heatmaps.
//!
//! The perceptual maps are matplotlib's `inferno` (CC0, van der Walt & Smith) and
//! ColorBrewer's `RdBu` reversed, sampled at 16 points and interpolated linearly in sRGB.

use serde::{Deserialize, Serialize};

/// A colormap from [0, 1] (or [-1, 1] for diverging maps) to RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Colormap {
    /// Black (0) to white (1).
    Gray,
    /// Perceptually uniform, black - purple - orange - yellow.
    Inferno,
    /// Blue (-1) - white (0) - red (+1).
    Diverging,
}

const INFERNO: [[u8; 3]; 16] = [
    [0, 0, 4],
    [12, 8, 38],
    [36, 12, 79],
    [66, 10, 104],
    [93, 18, 110],
    [120, 28, 109],
    [147, 38, 103],
    [174, 48, 92],
    [199, 62, 76],
    [221, 81, 58],
    [237, 105, 37],
    [248, 133, 15],
    [252, 165, 10],
    [250, 198, 45],
    [242, 230, 97],
    [252, 255, 164],
];

const RDBU_R: [[u8; 3]; 16] = [
    [5, 48, 97],
    [24, 84, 147],
    [44, 117, 180],
    [67, 147, 195],
    [120, 180, 213],
    [167, 208, 228],
    [209, 229, 240],
    [234, 241, 245],
    [249, 238, 231],
    [253, 219, 199],
    [247, 183, 153],
    [234, 142, 112],
    [214, 96, 77],
    [190, 48, 54],
    [153, 16, 39],
    [103, 0, 31],
];

impl Colormap {
    /// Whether the map expects signed values in [-1, 1].
    pub fn is_diverging(self) -> bool {
        matches!(self, Colormap::Diverging)
    }

    /// The color of `v`: in [0, 1] for sequential maps, [-1, 1] for diverging maps; values
    /// outside are clamped, NaN is drawn as 0 (the lowest color, or white for diverging maps).
    pub fn color(self, v: f64) -> [u8; 3] {
        let v = if v.is_nan() { 0.0 } else { v };
        match self {
            Colormap::Gray => {
                let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                [g, g, g]
            }
            Colormap::Inferno => interpolate(&INFERNO, v.clamp(0.0, 1.0)),
            Colormap::Diverging => interpolate(&RDBU_R, (v.clamp(-1.0, 1.0) + 1.0) / 2.0),
        }
    }
}

fn interpolate(table: &[[u8; 3]; 16], t: f64) -> [u8; 3] {
    let x = t * 15.0;
    let i = (x.floor() as usize).min(14);
    let f = x - i as f64;
    let mut out = [0u8; 3];
    for c in 0..3 {
        let a = table[i][c] as f64;
        let b = table[i + 1][c] as f64;
        out[c] = (a + (b - a) * f).round() as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_midpoints() {
        assert_eq!(Colormap::Gray.color(0.0), [0, 0, 0]);
        assert_eq!(Colormap::Gray.color(1.0), [255, 255, 255]);
        assert_eq!(Colormap::Inferno.color(0.0), [0, 0, 4]);
        assert_eq!(Colormap::Inferno.color(1.0), [252, 255, 164]);
        assert_eq!(Colormap::Diverging.color(-1.0), [5, 48, 97]);
        assert_eq!(Colormap::Diverging.color(1.0), [103, 0, 31]);
        // Zero is (nearly) white: halfway between the two central samples.
        let [r, g, b] = Colormap::Diverging.color(0.0);
        assert!(r > 240 && g > 235 && b > 235, "{r} {g} {b}");
        assert_eq!(Colormap::Gray.color(f64::NAN), [0, 0, 0]);
        assert_eq!(Colormap::Diverging.color(f64::NAN), Colormap::Diverging.color(0.0));
        assert_eq!(Colormap::Inferno.color(7.0), Colormap::Inferno.color(1.0));
    }

    #[test]
    fn inferno_gets_brighter() {
        let luma = |c: [u8; 3]| 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
        let mut last = -1.0;
        for i in 0..=100 {
            let l = luma(Colormap::Inferno.color(i as f64 / 100.0));
            assert!(l >= last - 0.5, "luminance drops at {i}");
            last = l;
        }
    }
}
