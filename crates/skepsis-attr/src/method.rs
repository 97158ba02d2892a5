//! The `Method` trait, explanation targets and the attribution result.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use skepsis_nn::train::argmax;
use skepsis_nn::{Model, RuleMap};

use crate::{Error, Result};

/// Which output each sample's map explains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One class index per sample.
    Classes(Vec<usize>),
    /// The class the model predicts for each sample (argmax of the logits; first on ties).
    Predicted,
}

impl Target {
    /// The class index of every sample of `x` under `model`.
    pub fn resolve(&self, model: &Model, x: &Tensor) -> Result<Vec<usize>> {
        let n = x.dims().first().copied().unwrap_or(0);
        match self {
            Target::Classes(c) => {
                if c.len() != n {
                    return Err(Error::InvalidInput(format!(
                        "{} target classes for {n} inputs",
                        c.len()
                    )));
                }
                Ok(c.clone())
            }
            Target::Predicted => {
                let logits = model.forward(x)?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
                Ok(logits.iter().map(|r| argmax(r)).collect())
            }
        }
    }
}

/// An attribution map with what it explains.
#[derive(Clone, Debug)]
pub struct Attribution {
    /// The map, shaped like the input `[N, C, H, W]` (GradCAM without upsampling:
    /// `[N, 1, h, w]`).
    pub map: Tensor,
    /// The explained class of every sample.
    pub targets: Vec<usize>,
    /// Completeness delta per sample where the method defines one: sum of the map minus
    /// `f_t(x) - f_t(baseline)` (Integrated Gradients, DeepLIFT).
    pub completeness_delta: Option<Vec<f64>>,
}

/// An attribution method. The model is an argument, not owned, because the sanity checks
/// run one method on many (randomized, retrained, shifted) models.
pub trait Method: Send + Sync {
    /// The method's registry name with its parameters (e.g. `ig:steps=64,...`).
    fn name(&self) -> String;

    /// Attributes the explained logit of every sample of `x` (`[N, ...input_shape]`).
    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution>;

    /// For methods that are one rule-driven backward walk (Gradient, Gradient x Input,
    /// Guided Backprop, DeconvNet, LRP and its relatives): the model the walk runs on
    /// (canonized where the method canonizes) and the rule of every node. `None` for methods
    /// that are not a single walk (Integrated Gradients, SmoothGrad, GradCAM, DeepLIFT with
    /// its reference trace, perturbation methods). The rank-1 convergence test propagates
    /// random relevance with these rules.
    fn propagation(&self, _model: &Model) -> Option<Result<(Model, RuleMap)>> {
        None
    }
}
