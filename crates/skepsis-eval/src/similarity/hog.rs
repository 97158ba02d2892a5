//! Histogram of oriented gradients (Dalal & Triggs 2005) as skimage.feature.hog computes it,
//! and the HOG similarity of Adebayo et al. (2018).

use serde::{Deserialize, Serialize};

use super::{rank::spearman_unchecked, Degeneracy, Similarity};
use crate::dims::MapDims;
use crate::error::{EvalError, Result};

/// L2-Hys clipping threshold (Dalal & Triggs 2005; skimage).
const L2_HYS_CLIP: f64 = 0.2;
/// skimage's block-normalization epsilon, squared: `v / sqrt(|v|^2 + eps^2)`, `eps = 1e-5`.
const BLOCK_EPS_SQUARED: f64 = 1e-10;

/// Options of [`hog`]: skimage's `orientations`, `pixels_per_cell`, `cells_per_block`
/// (block normalization is always L2-Hys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HogOptions {
    /// Orientation bins over `[0, 180)` degrees (unsigned gradients).
    pub orientations: usize,
    /// Cell size `(rows, columns)` in pixels.
    pub pixels_per_cell: (usize, usize),
    /// Block size `(rows, columns)` in cells.
    pub cells_per_block: (usize, usize),
}

impl Default for HogOptions {
    /// 9 orientations, 8x8-pixel cells, 2x2-cell blocks: the conformance definition, which fits
    /// 28x28 MNIST-sized maps (3x3 cells, 2x2 blocks).
    fn default() -> Self {
        HogOptions { orientations: 9, pixels_per_cell: (8, 8), cells_per_block: (2, 2) }
    }
}

impl HogOptions {
    /// Adebayo et al.'s setting for 299x299 Inception maps: 9 orientations, 16x16-pixel cells,
    /// 3x3-cell blocks (needs maps of at least 48x48).
    pub fn sanity_checks() -> Self {
        HogOptions { orientations: 9, pixels_per_cell: (16, 16), cells_per_block: (3, 3) }
    }

    fn validate(&self) -> Result<()> {
        let checks = [
            ("orientations", self.orientations),
            ("pixels_per_cell.0", self.pixels_per_cell.0),
            ("pixels_per_cell.1", self.pixels_per_cell.1),
            ("cells_per_block.0", self.cells_per_block.0),
            ("cells_per_block.1", self.cells_per_block.1),
        ];
        for (name, value) in checks {
            if value == 0 {
                return Err(EvalError::InvalidParameter {
                    name,
                    value: value.to_string(),
                    reason: "must be >= 1",
                });
            }
        }
        Ok(())
    }

    /// Length of the feature vector for a `height x width` map, or an error when the map holds
    /// less than one block.
    pub fn feature_len(&self, height: usize, width: usize) -> Result<usize> {
        self.validate()?;
        let (cells_r, cells_c) = (height / self.pixels_per_cell.0, width / self.pixels_per_cell.1);
        let (block_r, block_c) = self.cells_per_block;
        if cells_r < block_r || cells_c < block_c {
            return Err(EvalError::MapTooSmall {
                metric: "hog",
                height,
                width,
                min_height: block_r * self.pixels_per_cell.0,
                min_width: block_c * self.pixels_per_cell.1,
            });
        }
        Ok((cells_r - block_r + 1)
            * (cells_c - block_c + 1)
            * block_r
            * block_c
            * self.orientations)
    }
}

/// HOG feature vector (Dalal & Triggs 2005) of one map, identical to
/// `skimage.feature.hog(map, orientations, pixels_per_cell, cells_per_block,
/// block_norm='L2-Hys', feature_vector=True)` without `transform_sqrt`:
///
/// - gradients `g_row[r] = m[r+1] - m[r-1]`, `g_col[c] = m[c+1] - m[c-1]`, zero on the first
///   and last row (column); for `[C,H,W]` maps each pixel takes the gradient of the channel
///   with the largest magnitude (first such channel), as skimage does with `channel_axis`;
/// - magnitude `hypot(g_col, g_row)`, angle `degrees(atan2(g_row, g_col)) mod 180`;
/// - cells of `pixels_per_cell` (remainder rows/columns ignored); bin `i` of a cell sums the
///   magnitudes with `180 i / n <= angle < 180 (i + 1) / n` (hard binning), accumulated in
///   **f32** like skimage's Cython kernel, then divided by the cell's pixel count;
/// - blocks of `cells_per_block` cells at a stride of one cell, L2-Hys normalized:
///   `v / sqrt(|v|^2 + 1e-10)`, clipped at 0.2, renormalized the same way;
/// - order: block row, block column, cell row, cell column, orientation.
///
/// Errors: shape mismatch, non-finite values, invalid options, map smaller than one block.
pub fn hog(map: &[f64], dims: MapDims, options: &HogOptions) -> Result<Vec<f64>> {
    dims.validate("map", map)?;
    let (height, width) = (dims.height(), dims.width());
    let feature_len = options.feature_len(height, width)?;
    let (g_row, g_col) = strongest_gradients(map, dims);
    let cells = cell_histograms(&g_row, &g_col, height, width, options);
    let features = normalized_blocks(&cells, height, width, options);
    debug_assert_eq!(features.len(), feature_len);
    Ok(features)
}

/// HOG similarity of Adebayo et al. (2018): Spearman rank correlation (average ranks) of the
/// two [`hog`] feature vectors. Degenerate when a feature vector is constant (e.g. a constant
/// map has all-zero gradients), with the fallback value documented on [`Similarity`].
///
/// Errors: as [`hog`], for either map.
pub fn hog_similarity(
    a: &[f64],
    b: &[f64],
    dims: MapDims,
    options: &HogOptions,
) -> Result<Similarity> {
    let ha = hog(a, dims, options)?;
    let hb = hog(b, dims, options)?;
    let on_maps = Degeneracy::from_flags(super::is_constant(a), super::is_constant(b));
    let mut result = spearman_unchecked(&ha, &hb);
    result.degeneracy = Degeneracy::merge(result.degeneracy, on_maps);
    Ok(result)
}

/// Per-pixel gradients `(g_row, g_col)` of a `[H,W]` or `[C,H,W]` map; for several channels the
/// channel with the largest `hypot(g_row, g_col)` wins (first on ties).
fn strongest_gradients(map: &[f64], dims: MapDims) -> (Vec<f64>, Vec<f64>) {
    let (height, width, pixels) = (dims.height(), dims.width(), dims.pixels());
    let mut best_row = vec![0.0; pixels];
    let mut best_col = vec![0.0; pixels];
    let mut best_magnitude = vec![f64::NEG_INFINITY; pixels];
    for channel in map.chunks_exact(pixels) {
        for r in 0..height {
            for c in 0..width {
                let at = |rr: usize, cc: usize| channel[rr * width + cc];
                let g_row =
                    if r == 0 || r + 1 == height { 0.0 } else { at(r + 1, c) - at(r - 1, c) };
                let g_col =
                    if c == 0 || c + 1 == width { 0.0 } else { at(r, c + 1) - at(r, c - 1) };
                let magnitude = g_row.hypot(g_col);
                let i = r * width + c;
                if magnitude > best_magnitude[i] {
                    best_magnitude[i] = magnitude;
                    best_row[i] = g_row;
                    best_col[i] = g_col;
                }
            }
        }
    }
    (best_row, best_col)
}

/// Cell histograms `[cells_r, cells_c, orientations]`, each bin accumulated in f32 as skimage's
/// `cell_hog` does (`total = (float)(total + magnitude)`), divided by the cell's pixel count.
fn cell_histograms(
    g_row: &[f64],
    g_col: &[f64],
    height: usize,
    width: usize,
    options: &HogOptions,
) -> Vec<f64> {
    let (cell_r, cell_c) = options.pixels_per_cell;
    let (cells_r, cells_c) = (height / cell_r, width / cell_c);
    let bins = options.orientations;
    let magnitude: Vec<f64> = g_col.iter().zip(g_row).map(|(gc, gr)| gc.hypot(*gr)).collect();
    // numpy: `arctan2(g_row, g_col) * (180 / pi) % 180` (floored modulo, = rem_euclid here).
    let angle: Vec<f64> = g_row
        .iter()
        .zip(g_col)
        .map(|(gr, gc)| (gr.atan2(*gc) * (180.0 / std::f64::consts::PI)).rem_euclid(180.0))
        .collect();
    let per_bin = 180.0 / bins as f64;
    // skimage stores the bin edges in C `float` variables.
    let edge = |i: usize| (per_bin * i as f64) as f32 as f64;
    let mut histogram = vec![0.0; cells_r * cells_c * bins];
    for bin in 0..bins {
        let (low, high) = (edge(bin), edge(bin + 1));
        for cr in 0..cells_r {
            for cc in 0..cells_c {
                let mut total: f32 = 0.0;
                for r in cr * cell_r..(cr + 1) * cell_r {
                    for c in cc * cell_c..(cc + 1) * cell_c {
                        let i = r * width + c;
                        if angle[i] >= high || angle[i] < low {
                            continue;
                        }
                        total = (total as f64 + magnitude[i]) as f32;
                    }
                }
                let value = total / (cell_r * cell_c) as f32;
                histogram[(cr * cells_c + cc) * bins + bin] = value as f64;
            }
        }
    }
    histogram
}

/// L2-Hys normalized blocks, flattened in skimage's order.
fn normalized_blocks(cells: &[f64], height: usize, width: usize, options: &HogOptions) -> Vec<f64> {
    let (cells_r, cells_c) =
        (height / options.pixels_per_cell.0, width / options.pixels_per_cell.1);
    let (block_r, block_c) = options.cells_per_block;
    let bins = options.orientations;
    let mut features = Vec::new();
    let mut block = Vec::with_capacity(block_r * block_c * bins);
    for br in 0..=cells_r - block_r {
        for bc in 0..=cells_c - block_c {
            block.clear();
            for r in br..br + block_r {
                for c in bc..bc + block_c {
                    let start = (r * cells_c + c) * bins;
                    block.extend_from_slice(&cells[start..start + bins]);
                }
            }
            l2_normalize(&mut block);
            for v in block.iter_mut() {
                *v = v.min(L2_HYS_CLIP);
            }
            l2_normalize(&mut block);
            features.extend_from_slice(&block);
        }
    }
    features
}

/// `v / sqrt(|v|^2 + 1e-10)` in place.
fn l2_normalize(values: &mut [f64]) {
    let norm = (values.iter().map(|v| v * v).sum::<f64>() + BLOCK_EPS_SQUARED).sqrt();
    for v in values.iter_mut() {
        *v /= norm;
    }
}
