//! GradCAM (Selvaraju et al. 2017) and GradCAM++ (Chattopadhay et al. 2018): class
//! activation maps at a named layer.

use candle_core::{DType, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use skepsis_nn::{BackwardPass, Model, Stop};

use crate::engine::one_hot;
use crate::interpolate::bilinear;
use crate::rows::{chunks, from_host, require_images, to_host};
use crate::{Attribution, Error, Method, Result, Target};

/// How the channel weights of the map are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CamWeighting {
    /// GradCAM: `w_c = mean_ij dS/dA_cij`.
    #[default]
    GradCam,
    /// GradCAM++: `w_c = sum_ij a_cij relu(dS/dA_cij)` with
    /// `a_cij = g^2 / (2 g^2 + (sum_ab A_cab) g^3)`, `g = dS/dA_cij` (0 where the
    /// denominator is 0).
    GradCamPlusPlus,
}

/// Per-sample normalization of the map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CamNormalization {
    /// The raw map (captum's `LayerGradCam`).
    #[default]
    None,
    /// Divided by its maximum when that is positive (Adebayo et al. 2018).
    Max,
}

/// Settings of [`GradCam`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GradCamSettings {
    pub weighting: CamWeighting,
    /// The node whose output `A` `[N, C, h, w]` is used; `None`: the last node with a
    /// 4-D output.
    pub layer: Option<String>,
    /// Resize the map to the input's `H x W` bilinearly (align_corners = false, as
    /// `torch.nn.functional.interpolate`); otherwise the map is `[N, 1, h, w]`.
    pub upsample: bool,
    /// Apply a ReLU to the weighted sum (both papers do).
    pub relu: bool,
    pub normalization: CamNormalization,
    /// Most samples per backward pass.
    pub batch_size: usize,
}

impl Default for GradCamSettings {
    fn default() -> Self {
        GradCamSettings {
            weighting: CamWeighting::GradCam,
            layer: None,
            upsample: true,
            relu: true,
            normalization: CamNormalization::None,
            batch_size: 256,
        }
    }
}

/// GradCAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
/// Gradient-based Localization", ICCV 2017) and GradCAM++ (Chattopadhay, Sarkar, Howlader
/// & Balasubramanian, "Grad-CAM++: Improved Visual Explanations for Deep Convolutional
/// Networks", WACV 2018):
///
/// `cam = ReLU(sum_c w_c A_c)`, `A` the output of `layer`, `w_c` per [`CamWeighting`],
/// `S` the target logit, then optionally divided by its maximum and resized to the input.
///
/// GradCAM++ is stated for the score `Y = exp(S)`; its `a_cij` does not depend on the
/// factor `exp(S)`, and the factor `exp(S)` it puts on the weights only scales each map,
/// so it is left out (as pytorch-grad-cam does), which also avoids overflow. Higher
/// derivatives are taken as powers of the first (exact for piecewise-linear networks).
#[derive(Clone, Debug)]
pub struct GradCam {
    settings: GradCamSettings,
}

impl GradCam {
    /// Validates `settings` (`layer` non-empty when given, `batch_size` >= 1). Whether the
    /// layer exists and yields `[N, C, h, w]` is checked against the model on use.
    pub fn new(settings: GradCamSettings) -> Result<Self> {
        let name = method_name(settings.weighting);
        if settings.layer.as_deref().is_some_and(|l| l.trim().is_empty()) {
            return Err(Error::parameter(name, "layer", "must name a node of the model"));
        }
        if settings.batch_size == 0 {
            return Err(Error::parameter(name, "batch_size", "must be at least 1"));
        }
        Ok(GradCam { settings })
    }

    pub fn settings(&self) -> &GradCamSettings {
        &self.settings
    }

    /// The map `[N, 1, h, w]` (or `[N, 1, H, W]` when `upsample` is set) for `targets`.
    pub fn cam(&self, model: &Model, x: &Tensor, targets: &[usize]) -> Result<Tensor> {
        let cam = self.layer_cam(model, x, targets)?;
        if self.settings.upsample {
            self.resize(cam, x)
        } else {
            Ok(cam)
        }
    }

    /// The map resized to the input, `[N, 1, H, W]`, whatever `upsample` says (Guided
    /// GradCAM multiplies it with Guided Backprop).
    pub fn upsampled_cam(&self, model: &Model, x: &Tensor, targets: &[usize]) -> Result<Tensor> {
        let cam = self.layer_cam(model, x, targets)?;
        self.resize(cam, x)
    }

    fn resize(&self, cam: Tensor, x: &Tensor) -> Result<Tensor> {
        let [_, _, h, w] = require_images(method_name(self.settings.weighting), x)?;
        bilinear(&cam, [h, w])
    }

    /// The node index of the layer, checked against one traced sample.
    fn layer_node(&self, model: &Model, trace: &skepsis_nn::Trace) -> Result<usize> {
        let name = method_name(self.settings.weighting);
        let node = match &self.settings.layer {
            Some(layer) => model
                .node_index(layer)
                .map_err(|e| Error::parameter(name, "layer", e.to_string()))?,
            None => (0..model.nodes().len())
                .rev()
                .find(|&i| trace.output(i).rank() == 4)
                .ok_or_else(|| {
                    Error::parameter(
                        name,
                        "layer",
                        "the model has no layer with a [N, C, h, w] output",
                    )
                })?,
        };
        let dims = trace.output(node).dims();
        if dims.len() != 4 {
            return Err(Error::parameter(
                name,
                "layer",
                format!(
                    "node '{}' outputs {dims:?}, not a [N, C, h, w] feature map",
                    model.nodes()[node].name
                ),
            ));
        }
        Ok(node)
    }

    fn layer_cam(&self, model: &Model, x: &Tensor, targets: &[usize]) -> Result<Tensor> {
        let n = x.dims().first().copied().unwrap_or(0);
        if targets.len() != n || n == 0 {
            return Err(Error::InvalidInput(format!("{} targets for {n} inputs", targets.len())));
        }
        let mut maps = Vec::new();
        let mut shape = Vec::new();
        for rows in chunks(n, self.settings.batch_size) {
            let trace = model.trace(&x.narrow(0, rows.start, rows.len())?)?;
            let node = self.layer_node(model, &trace)?;
            let out = trace.logits();
            let seed = one_hot(&targets[rows.clone()], out.dims()[1], out)?;
            let grad =
                BackwardPass::new(model, &trace).stop_at(Stop::Node(node)).run(&seed)?.relevance;
            let act = trace.output(node);
            let [_, c, h, w] = [act.dims()[0], act.dims()[1], act.dims()[2], act.dims()[3]];
            shape = vec![n, 1, h, w];
            // f32 values are read as they are (each widened to f64 where it is used, which
            // is exact) rather than copied into an f64 tensor and then out of it.
            let cams = match act.dtype() {
                DType::F32 => {
                    let host = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
                    self.weighted_sum(&host(act)?, &host(&grad)?, c, h * w)
                }
                _ => self.weighted_sum(&to_host(act)?, &to_host(&grad)?, c, h * w),
            };
            maps.extend(cams);
        }
        from_host(maps, &shape, x)
    }

    /// `ReLU(sum_c w_c A_c)` per sample, normalized, on host values `[len, C, h*w]` (f32 or
    /// f64, summed in f64), the samples in parallel.
    fn weighted_sum<T>(&self, act: &[T], grad: &[T], channels: usize, hw: usize) -> Vec<f64>
    where
        T: Copy + Into<f64> + Sync,
    {
        let sample = channels * hw;
        if sample == 0 {
            return Vec::new();
        }
        let mut out = vec![0f64; act.len() / channels];
        out.par_chunks_mut(hw)
            .zip(act.par_chunks_exact(sample).zip(grad.par_chunks_exact(sample)))
            .for_each(|(cam, (a, g))| self.sample_cam(a, g, hw, cam));
        out
    }

    /// One sample's map into `cam` (zeroed, `hw` values).
    fn sample_cam<T: Copy + Into<f64>>(&self, a: &[T], g: &[T], hw: usize, cam: &mut [f64]) {
        for (ac, gc) in a.chunks_exact(hw).zip(g.chunks_exact(hw)) {
            let w = match self.settings.weighting {
                CamWeighting::GradCam => gc.iter().map(|&g| g.into()).sum::<f64>() / hw as f64,
                CamWeighting::GradCamPlusPlus => {
                    let sum_a: f64 = ac.iter().map(|&a| a.into()).sum();
                    gc.iter()
                        .map(|&g| {
                            let g: f64 = g.into();
                            let denom = 2.0 * g * g + sum_a * g * g * g;
                            if denom == 0.0 {
                                0.0
                            } else {
                                g * g / denom * g.max(0.0)
                            }
                        })
                        .sum()
                }
            };
            cam.iter_mut().zip(ac).for_each(|(m, &a)| *m += w * a.into());
        }
        if self.settings.relu {
            cam.iter_mut().for_each(|m| *m = m.max(0.0));
        }
        if self.settings.normalization == CamNormalization::Max {
            let max = cam.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max > 0.0 {
                cam.iter_mut().for_each(|m| *m /= max);
            }
        }
    }
}

fn method_name(w: CamWeighting) -> &'static str {
    match w {
        CamWeighting::GradCam => "gradcam",
        CamWeighting::GradCamPlusPlus => "gradcam-plus-plus",
    }
}

impl Method for GradCam {
    fn name(&self) -> String {
        let s = &self.settings;
        format!(
            "{}:layer={},upsample={},relu={},normalize={}",
            method_name(s.weighting),
            s.layer.as_deref().unwrap_or("last"),
            s.upsample,
            s.relu,
            match s.normalization {
                CamNormalization::None => "none",
                CamNormalization::Max => "max",
            }
        )
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let map = self.cam(model, x, &targets)?;
        Ok(Attribution { map, targets, completeness_delta: None })
    }
}
