//! The 7x7 mean ("box") blur SMERF applies before scoring (OpenCV `cv2.blur`).

use serde::{Deserialize, Serialize};

use crate::dims::MapDims;
use crate::error::{EvalError, Result};

/// Boundary handling of [`box_blur`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlurBoundary {
    /// Mirror without repeating the edge pixel (`g f e | e f g h ...`), OpenCV's
    /// `BORDER_REFLECT_101`, the default of `cv2.blur` that SMERF calls. Default.
    #[default]
    Reflect101,
    /// Zero padding: outside pixels count as 0 and the sum is still divided by `size^2`
    /// (`cv2.blur` with `BORDER_CONSTANT`); mass leaks out at the border.
    Zero,
}

/// Normalized box filter: each output pixel is the mean of the `size x size` window centred on
/// it (Kim et al. 2022 blur with `size = 7`), with `boundary` handling outside pixels.
/// `size = 1` returns the map unchanged.
///
/// Errors: shape mismatch (`map.len() != height * width`), empty map, non-finite values,
/// `size` even or zero.
pub fn box_blur(
    map: &[f64],
    height: usize,
    width: usize,
    size: usize,
    boundary: BlurBoundary,
) -> Result<Vec<f64>> {
    MapDims::plane(height, width).validate("map", map)?;
    if size == 0 || size % 2 == 0 {
        return Err(EvalError::InvalidParameter {
            name: "blur size",
            value: size.to_string(),
            reason: "must be odd and >= 1",
        });
    }
    if size == 1 {
        return Ok(map.to_vec());
    }
    let radius = (size / 2) as isize;
    let sample = |line: &dyn Fn(usize) -> f64, i: isize, n: usize| -> f64 {
        match boundary {
            BlurBoundary::Reflect101 => line(reflect_101(i, n)),
            BlurBoundary::Zero => {
                if i < 0 || i >= n as isize {
                    0.0
                } else {
                    line(i as usize)
                }
            }
        }
    };
    let mut horizontal = vec![0.0; map.len()];
    for r in 0..height {
        let row = |c: usize| map[r * width + c];
        for c in 0..width {
            let c = c as isize;
            horizontal[r * width + c as usize] =
                (-radius..=radius).map(|k| sample(&row, c + k, width)).sum();
        }
    }
    let area = (size * size) as f64;
    let mut out = vec![0.0; map.len()];
    for c in 0..width {
        let column = |r: usize| horizontal[r * width + c];
        for r in 0..height {
            let r = r as isize;
            let sum: f64 = (-radius..=radius).map(|k| sample(&column, r + k, height)).sum();
            out[r as usize * width + c] = sum / area;
        }
    }
    Ok(out)
}

/// Index into `0..n` under reflection without edge repetition (period `2n - 2`).
fn reflect_101(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * n as isize - 2;
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_101_mirrors_without_edge() {
        // n = 4: ... 2 1 | 0 1 2 3 | 2 1 0 ...
        let got: Vec<usize> = (-2..7).map(|i| reflect_101(i, 4)).collect();
        assert_eq!(got, vec![2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }

    #[test]
    fn blur_of_constant_is_constant_with_reflection() {
        let out = box_blur(&[2.0; 25], 5, 5, 3, BlurBoundary::Reflect101).unwrap();
        assert!(out.iter().all(|&v| (v - 2.0).abs() < 1e-15));
        // zero padding: the corner sees 4 of 9 pixels -> 2 * 4 / 9
        let out = box_blur(&[2.0; 25], 5, 5, 3, BlurBoundary::Zero).unwrap();
        assert!((out[0] - 8.0 / 9.0).abs() < 1e-15);
    }
}
