//! Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
//! ECCV 2014).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use skepsis_nn::Model;

use crate::rows::{from_host, logit_rows, require_images, target_logits, to_host};
use crate::{Attribution, Error, Method, Result, Target};

const NAME: &str = "occlusion";

/// Settings of [`Occlusion`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OcclusionSettings {
    /// Window size `[h, w]` (covering every channel) or `[c, h, w]`.
    pub window: Vec<usize>,
    /// Step between window positions, same length as `window`.
    pub stride: Vec<usize>,
    /// The value written into the window.
    pub baseline: f64,
    /// Most occluded inputs per forward pass.
    pub batch_size: usize,
}

impl Default for OcclusionSettings {
    fn default() -> Self {
        OcclusionSettings { window: vec![4, 4], stride: vec![2, 2], baseline: 0.0, batch_size: 256 }
    }
}

/// Occlusion, Zeiler & Fergus 2014, in captum's form: for every position `p` of a window
/// sliding over `(C, H, W)` with the given stride (top-left corners `k * stride` while the
/// window fits, no padding), `d_p = f_t(x) - f_t(x with the window set to baseline)`; an
/// element's attribution is the mean of `d_p` over the windows containing it (0 for
/// elements no window covers). Only forward passes; all positions of all samples are
/// folded into the batch dimension.
#[derive(Clone, Debug)]
pub struct Occlusion {
    settings: OcclusionSettings,
}

impl Occlusion {
    /// Validates `settings`: `window` and `stride` of length 2 or 3 with entries >= 1,
    /// finite `baseline`, `batch_size` >= 1.
    pub fn new(settings: OcclusionSettings) -> Result<Self> {
        let s = &settings;
        if !(s.window.len() == 2 || s.window.len() == 3) || s.window.contains(&0) {
            return Err(Error::parameter(
                NAME,
                "window",
                format!("need [h, w] or [c, h, w] with sizes >= 1, got {:?}", s.window),
            ));
        }
        if s.stride.len() != s.window.len() || s.stride.contains(&0) {
            return Err(Error::parameter(
                NAME,
                "stride",
                format!("need {} entries >= 1, got {:?}", s.window.len(), s.stride),
            ));
        }
        if !s.baseline.is_finite() {
            return Err(Error::parameter(NAME, "baseline", "must be finite"));
        }
        if s.batch_size == 0 {
            return Err(Error::parameter(NAME, "batch_size", "must be at least 1"));
        }
        Ok(Occlusion { settings })
    }

    pub fn settings(&self) -> &OcclusionSettings {
        &self.settings
    }

    /// Window and stride as `[c, h, w]` for inputs with `c` channels.
    fn window_3d(&self, c: usize) -> ([usize; 3], [usize; 3]) {
        let (w, s) = (&self.settings.window, &self.settings.stride);
        if w.len() == 2 {
            ([c, w[0], w[1]], [c, s[0], s[1]])
        } else {
            ([w[0], w[1], w[2]], [s[0], s[1], s[2]])
        }
    }
}

impl Method for Occlusion {
    fn name(&self) -> String {
        let join = |v: &[usize]| v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(";");
        let s = &self.settings;
        format!(
            "{NAME}:window={},stride={},baseline={}",
            join(&s.window),
            join(&s.stride),
            s.baseline
        )
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let [n, c, h, w] = require_images(NAME, x)?;
        let (win, stride) = self.window_3d(c);
        let dims = [c, h, w];
        if win.iter().zip(&dims).any(|(a, b)| a > b) {
            return Err(Error::parameter(
                NAME,
                "window",
                format!("{:?} does not fit inputs [C, H, W] = {dims:?}", self.settings.window),
            ));
        }
        let counts: Vec<usize> = (0..3).map(|a| (dims[a] - win[a]) / stride[a] + 1).collect();
        let positions = counts.iter().product::<usize>();
        let corner = |p: usize| -> [usize; 3] {
            let (pc, rest) = (p / (counts[1] * counts[2]), p % (counts[1] * counts[2]));
            [pc * stride[0], (rest / counts[2]) * stride[1], (rest % counts[2]) * stride[2]]
        };
        // Flat indices of the elements under the window at `corner`.
        let cells = |k: [usize; 3]| {
            (k[0]..k[0] + win[0]).flat_map(move |ci| {
                (k[1]..k[1] + win[1])
                    .flat_map(move |hi| (k[2]..k[2] + win[2]).map(move |wi| (ci * h + hi) * w + wi))
            })
        };
        let d = c * h * w;
        let xs = to_host(x)?;
        let fx = target_logits(model, x, &targets, self.settings.batch_size)?;
        let mut sums = vec![0f64; n * d];
        logit_rows(
            model,
            n * positions,
            self.settings.batch_size,
            |rows| {
                let mut v = Vec::with_capacity(rows.len() * d);
                for r in rows.clone() {
                    let start = v.len();
                    v.extend_from_slice(&xs[(r / positions) * d..(r / positions + 1) * d]);
                    for e in cells(corner(r % positions)) {
                        v[start + e] = self.settings.baseline;
                    }
                }
                Ok((
                    from_host(v, &[rows.len(), c, h, w], x)?,
                    rows.map(|r| targets[r / positions]).collect(),
                ))
            },
            |rows, logits| {
                for (r, l) in rows.zip(logits) {
                    let img = r / positions;
                    let diff = fx[img] - l;
                    for e in cells(corner(r % positions)) {
                        sums[img * d + e] += diff;
                    }
                }
                Ok(())
            },
        )?;
        let mut cover = vec![0usize; d];
        for p in 0..positions {
            cells(corner(p)).for_each(|e| cover[e] += 1);
        }
        for (i, s) in sums.iter_mut().enumerate() {
            let k = cover[i % d];
            *s = if k == 0 { 0.0 } else { *s / k as f64 };
        }
        Ok(Attribution { map: from_host(sums, x.dims(), x)?, targets, completeness_delta: None })
    }
}
