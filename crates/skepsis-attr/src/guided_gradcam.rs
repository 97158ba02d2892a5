//! Guided GradCAM, Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
//! Gradient-based Localization", ICCV 2017.

use candle_core::Tensor;
use skepsis_nn::Model;

use crate::gradcam::GradCam;
use crate::modified::GuidedBackprop;
use crate::{Attribution, Method, Result, Target};

/// Guided GradCAM: `map = GuidedBackprop(x) · upsample(GradCAM(x))`, the `[N, 1, H, W]`
/// GradCAM map at the chosen layer (ReLU applied, not normalized) resized bilinearly with
/// `align_corners = false` ([`GradCam::upsampled_cam`]) and broadcast over the input
/// channels. As captum's `GuidedGradCam` with `interpolate_mode="bilinear"` (captum's default
/// is nearest).
#[derive(Clone, Debug)]
pub struct GuidedGradCam {
    pub gradcam: GradCam,
    pub guided: GuidedBackprop,
}

impl Method for GuidedGradCam {
    fn name(&self) -> String {
        match &self.gradcam.settings().layer {
            Some(layer) => format!("guided-gradcam:layer={layer}"),
            None => "guided-gradcam".into(),
        }
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let guided = self.guided.map(model, x, &targets)?;
        let cam = self.gradcam.upsampled_cam(model, x, &targets)?;
        let map = guided.broadcast_mul(&cam)?;
        Ok(Attribution { map, targets, completeness_delta: None })
    }
}
