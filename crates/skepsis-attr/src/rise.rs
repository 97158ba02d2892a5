//! RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skepsis_nn::Model;

use crate::interpolate::bilinear_weights;
use crate::rows::{from_host, logit_rows, require_images, to_host};
use crate::{Attribution, Error, Method, Result, Target};

const NAME: &str = "rise";

/// Settings of [`Rise`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RiseSettings {
    /// Number of masks `M`.
    pub masks: usize,
    /// Side `s` of the coarse binary grid.
    pub grid: usize,
    /// Probability `p` that a grid cell is kept.
    pub p: f64,
    /// Seed of the ChaCha8 generator drawing grids and shifts.
    pub seed: u64,
    /// Most masked inputs per forward pass.
    pub batch_size: usize,
}

impl Default for RiseSettings {
    fn default() -> Self {
        RiseSettings { masks: 4000, grid: 7, p: 0.5, seed: 0, batch_size: 256 }
    }
}

/// RISE, Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of
/// Black-box Models", BMVC 2018:
///
/// `map = (1 / (M p)) sum_i f_t(x * m_i) m_i`,
///
/// a pixel map `[N, 1, H, W]`. Each mask `m_i`: an `s x s` grid of cells kept with
/// probability `p` (0/1), resized bilinearly (align_corners = false, as torch) to
/// `(s + 1) ceil(H / s)` x `(s + 1) ceil(W / s)`, then cropped to `H x W` at an offset
/// drawn uniformly from `0..ceil(H / s)` x `0..ceil(W / s)`; the same mask multiplies every
/// channel. The reference code resizes with skimage (`mode="reflect"`), which differs from
/// this only in the outermost half cell. The same `M` masks (drawn from a ChaCha8
/// generator seeded with `seed`: grid cells row-major, then the row and column offsets)
/// serve every image. Defaults follow the paper's ImageNet setting (M = 4000, s = 7,
/// p = 0.5).
#[derive(Clone, Debug)]
pub struct Rise {
    settings: RiseSettings,
}

impl Rise {
    /// Validates `settings` (`masks`, `grid`, `batch_size` >= 1; `p` in (0, 1]).
    pub fn new(settings: RiseSettings) -> Result<Self> {
        for (name, v) in [
            ("masks", settings.masks),
            ("grid", settings.grid),
            ("batch_size", settings.batch_size),
        ] {
            if v == 0 {
                return Err(Error::parameter(NAME, name, "must be at least 1"));
            }
        }
        if !(settings.p > 0.0 && settings.p <= 1.0) {
            return Err(Error::parameter(
                NAME,
                "p",
                format!("must lie in (0, 1], got {}", settings.p),
            ));
        }
        Ok(Rise { settings })
    }

    pub fn settings(&self) -> &RiseSettings {
        &self.settings
    }

    /// The masks `[M][H * W]` for images of `h x w`.
    pub fn masks(&self, h: usize, w: usize) -> Vec<Vec<f64>> {
        let s = self.settings.grid;
        let (ch, cw) = (h.div_ceil(s), w.div_ceil(s));
        let (uh, uw) = ((s + 1) * ch, (s + 1) * cw);
        let (ry, rx) = (bilinear_weights(s, uh), bilinear_weights(s, uw));
        let mut rng = ChaCha8Rng::seed_from_u64(self.settings.seed);
        (0..self.settings.masks)
            .map(|_| {
                let cells: Vec<f64> = (0..s * s)
                    .map(|_| if rng.random::<f64>() < self.settings.p { 1.0 } else { 0.0 })
                    .collect();
                let (oy, ox) = (rng.random_range(0..ch), rng.random_range(0..cw));
                // Rows first: [s, s] -> [h, s] on the cropped rows, then columns.
                let mut tmp = vec![0f64; h * s];
                for i in 0..h {
                    let wr = &ry[(i + oy) * s..(i + oy + 1) * s];
                    for j in 0..s {
                        tmp[i * s + j] = (0..s).map(|k| wr[k] * cells[k * s + j]).sum();
                    }
                }
                let mut m = vec![0f64; h * w];
                for i in 0..h {
                    for j in 0..w {
                        let wc = &rx[(j + ox) * s..(j + ox + 1) * s];
                        m[i * w + j] = (0..s).map(|k| wc[k] * tmp[i * s + k]).sum();
                    }
                }
                m
            })
            .collect()
    }
}

impl Method for Rise {
    fn name(&self) -> String {
        let s = &self.settings;
        format!("{NAME}:masks={},grid={},p={},seed={}", s.masks, s.grid, s.p, s.seed)
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let [n, c, h, w] = require_images(NAME, x)?;
        let masks = self.masks(h, w);
        let (hw, d, m) = (h * w, c * h * w, masks.len());
        let xs = to_host(x)?;
        let mut sal = vec![0f64; n * hw];
        // Rows are i * N + n: mask i on image n.
        logit_rows(
            model,
            m * n,
            self.settings.batch_size,
            |rows| {
                let mut v = Vec::with_capacity(rows.len() * d);
                for r in rows.clone() {
                    let (mask, img) = (&masks[r / n], r % n);
                    for ci in 0..c {
                        let plane = &xs[img * d + ci * hw..img * d + (ci + 1) * hw];
                        v.extend(plane.iter().zip(mask).map(|(a, b)| a * b));
                    }
                }
                Ok((
                    from_host(v, &[rows.len(), c, h, w], x)?,
                    rows.map(|r| targets[r % n]).collect(),
                ))
            },
            |rows, logits| {
                for (r, l) in rows.zip(logits) {
                    let out = &mut sal[(r % n) * hw..(r % n + 1) * hw];
                    out.iter_mut().zip(&masks[r / n]).for_each(|(o, m)| *o += l * m);
                }
                Ok(())
            },
        )?;
        let scale = 1.0 / (m as f64 * self.settings.p);
        sal.iter_mut().for_each(|v| *v *= scale);
        Ok(Attribution {
            map: from_host(sal, &[n, 1, h, w], x)?,
            targets,
            completeness_delta: None,
        })
    }
}
