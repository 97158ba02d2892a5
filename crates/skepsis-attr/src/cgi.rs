//! Competitive Gradient x Input (Gupta & Arora, "A Simple Saliency Method That Passes the
//! Sanity Checks", 2019).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use skepsis_nn::Model;

use crate::gradient::{GradientSettings, GradientXInput};
use crate::integrated_gradients::{IntegratedGradients, IntegratedGradientsSettings};
use crate::rows::{chunks, from_host, index_tensor, require_images, sample_len, to_host};
use crate::{Attribution, Error, Method, Result, Target};

const NAME: &str = "cgi";

/// Over what the classes compete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgiComparison {
    /// Every element `(c, h, w)` separately; the map is shaped like the input.
    #[default]
    Elementwise,
    /// Every pixel, on the maps summed over channels; the map is `[N, 1, H, W]`.
    Pixel,
}

/// The complete attribution method whose per-class maps compete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgiBase {
    /// `x * grad f_k` (the paper's choice).
    #[default]
    GradientXInput,
    /// Integrated Gradients with a zero baseline and the trapezoid rule with `steps`.
    IntegratedGradients,
}

/// Settings of [`Cgi`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CgiSettings {
    pub comparison: CgiComparison,
    pub base: CgiBase,
    /// Steps of the Integrated Gradients base.
    pub steps: usize,
    /// Most (input, class) pairs handed to the base method at once.
    pub batch_size: usize,
}

impl Default for CgiSettings {
    fn default() -> Self {
        CgiSettings {
            comparison: CgiComparison::Elementwise,
            base: CgiBase::GradientXInput,
            steps: 64,
            batch_size: 256,
        }
    }
}

/// Competitive Gradient x Input, Gupta & Arora 2019 (reference-protocols.md section 4):
/// with `S_k` the base method's map for class `k` (`x * grad f_k` by default), the map of
/// the explained class `y` keeps element `i` when
/// `S_y,i > 0 and S_y,i > S_k,i for every k != y`, or
/// `S_y,i < 0 and S_y,i < S_k,i for every k != y`, and is 0 elsewhere. The explained class
/// competes with the *other* classes only (comparing against a maximum that includes `y`
/// itself, as one public implementation does, never lets anything win).
///
/// Maps for every class are obtained with [`class_maps`]: (input, class) pairs are folded
/// into the batch of the base method, `batch_size` pairs at a time.
pub struct Cgi {
    settings: CgiSettings,
    base: Box<dyn Method>,
}

impl std::fmt::Debug for Cgi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cgi")
            .field("settings", &self.settings)
            .field("base", &self.base.name())
            .finish()
    }
}

impl Cgi {
    /// Validates `settings` (`batch_size` >= 1; `steps` as Integrated Gradients) and builds
    /// the base method.
    pub fn new(settings: CgiSettings) -> Result<Self> {
        if settings.batch_size == 0 {
            return Err(Error::parameter(NAME, "batch_size", "must be at least 1"));
        }
        let base: Box<dyn Method> = match settings.base {
            CgiBase::GradientXInput => Box::new(GradientXInput {
                settings: GradientSettings { batch_size: settings.batch_size },
            }),
            CgiBase::IntegratedGradients => Box::new(
                IntegratedGradients::new(IntegratedGradientsSettings {
                    steps: settings.steps,
                    batch_size: settings.batch_size,
                    ..Default::default()
                })
                .map_err(|e| match e {
                    Error::InvalidParameter { parameter, message, .. } => {
                        Error::parameter(NAME, parameter, message)
                    }
                    e => e,
                })?,
            ),
        };
        Ok(Cgi { settings, base })
    }

    /// Uses `base` (any complete method: maps shaped like the input) instead.
    pub fn with_base(mut self, base: Box<dyn Method>) -> Self {
        self.base = base;
        self
    }

    pub fn settings(&self) -> &CgiSettings {
        &self.settings
    }
}

/// Calls `visit(n, maps)` for every sample `n` of `x` with its maps for every class
/// (`maps[k * D..(k + 1) * D]` for class `k`, `D` the size of one map), computed by
/// `method` on (input, class) pairs folded into batches of at most `batch_size` pairs.
/// This is how skepsis explains "every class" without a dedicated [`Target`] variant.
pub fn class_maps(
    method: &dyn Method,
    model: &Model,
    x: &Tensor,
    classes: usize,
    batch_size: usize,
    mut visit: impl FnMut(usize, &[f64]) -> Result<()>,
) -> Result<()> {
    let n = x.dims()[0];
    let mut buf: Vec<f64> = Vec::new();
    for rows in chunks(n * classes, batch_size) {
        let images: Vec<usize> = rows.clone().map(|r| r / classes).collect();
        let xs = x.index_select(&index_tensor(&images, x)?, 0)?;
        let target = Target::Classes(rows.clone().map(|r| r % classes).collect());
        let maps = to_host(&method.attribute(model, &xs, &target)?.map)?;
        let d = maps.len() / rows.len().max(1);
        for (r, m) in rows.zip(maps.chunks_exact(d.max(1))) {
            buf.extend_from_slice(m);
            if r % classes == classes - 1 {
                visit(r / classes, &buf)?;
                buf.clear();
            }
        }
    }
    Ok(())
}

/// The competitive map of class `y` from the maps of all classes, each of length `d`.
fn compete(maps: &[f64], d: usize, y: usize) -> Vec<f64> {
    let own = &maps[y * d..(y + 1) * d];
    (0..d)
        .map(|i| {
            let s = own[i];
            let others = (0..maps.len() / d).filter(|&k| k != y).map(|k| maps[k * d + i]);
            let wins = if s > 0.0 {
                others.clone().all(|o| s > o)
            } else if s < 0.0 {
                others.clone().all(|o| s < o)
            } else {
                false
            };
            if wins {
                s
            } else {
                0.0
            }
        })
        .collect()
}

impl Method for Cgi {
    fn name(&self) -> String {
        let s = &self.settings;
        let cmp = match s.comparison {
            CgiComparison::Elementwise => "elementwise",
            CgiComparison::Pixel => "pixel",
        };
        format!("{NAME}:comparison={cmp},base={}", self.base.name())
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let classes = model.num_classes()?;
        let d = sample_len(x);
        let mut out = Vec::with_capacity(x.dims()[0] * d);
        let pixel = self.settings.comparison == CgiComparison::Pixel;
        let (c, hw) = if pixel {
            let [_, c, h, w] = require_images(NAME, x)?;
            (c, h * w)
        } else {
            (1, d)
        };
        class_maps(self.base.as_ref(), model, x, classes, self.settings.batch_size, |n, maps| {
            if maps.len() != classes * d {
                return Err(Error::InvalidInput(format!(
                    "{NAME}: the base method's maps are not shaped like the input"
                )));
            }
            if pixel {
                let summed: Vec<f64> = maps
                    .chunks_exact(d)
                    .flat_map(|m| {
                        (0..hw).map(move |p| (0..c).map(|ch| m[ch * hw + p]).sum::<f64>())
                    })
                    .collect();
                out.extend(compete(&summed, hw, targets[n]));
            } else {
                out.extend(compete(maps, d, targets[n]));
            }
            Ok(())
        })?;
        let mut shape = x.dims().to_vec();
        if pixel {
            shape[1] = 1;
        }
        Ok(Attribution { map: from_host(out, &shape, x)?, targets, completeness_delta: None })
    }
}

#[cfg(test)]
mod tests {
    use super::compete;

    #[test]
    fn the_explained_class_competes_with_the_others_only() {
        // Three classes, four elements; explained class 1.
        let maps = [
            0.5, -1.0, 2.0, 0.0, // class 0
            1.0, -2.0, 1.0, 0.0, // class 1
            0.2, 0.3, -1.0, 0.0, // class 2
        ];
        assert_eq!(compete(&maps, 4, 1), vec![1.0, -2.0, 0.0, 0.0]);
        // Ties do not win.
        assert_eq!(compete(&[1.0, 1.0], 1, 0), vec![0.0]);
    }
}
