//! Gradient (Simonyan et al. 2014) and Gradient x Input (Shrikumar et al. 2016).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use skepsis_nn::{Model, RuleMap};

use crate::engine::input_relevance;
use crate::{Attribution, Method, Result, Target};

fn default_batch_size() -> usize {
    256
}

/// Settings shared by the plain gradient methods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientSettings {
    /// Most samples per backward pass.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl Default for GradientSettings {
    fn default() -> Self {
        GradientSettings { batch_size: default_batch_size() }
    }
}

/// Gradient ("vanilla saliency"), Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional
/// Networks", ICLR workshop 2014: `map = d f_t / d x`, signed (take `|map|` for the
/// paper's saliency map), with `f_t` the logit of the target class (no softmax).
#[derive(Clone, Debug, Default)]
pub struct Gradient {
    pub settings: GradientSettings,
}

impl Method for Gradient {
    fn name(&self) -> String {
        "gradient".into()
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let (map, _) = input_relevance(model, x, &targets, None, self.settings.batch_size)?;
        Ok(Attribution { map, targets, completeness_delta: None })
    }

    fn propagation(&self, model: &Model) -> Option<Result<(Model, RuleMap)>> {
        Some(Ok((model.clone(), RuleMap::gradient(model))))
    }
}

/// Gradient x Input, Shrikumar et al., "Not Just a Black Box: Learning Important Features
/// Through Propagating Activation Differences", 2016: `map = x * d f_t / d x`.
#[derive(Clone, Debug, Default)]
pub struct GradientXInput {
    pub settings: GradientSettings,
}

impl Method for GradientXInput {
    fn name(&self) -> String {
        "gradient-x-input".into()
    }

    fn attribute(&self, model: &Model, x: &Tensor, target: &Target) -> Result<Attribution> {
        let targets = target.resolve(model, x)?;
        let (grad, _) = input_relevance(model, x, &targets, None, self.settings.batch_size)?;
        Ok(Attribution { map: (grad * x)?, targets, completeness_delta: None })
    }

    fn propagation(&self, model: &Model) -> Option<Result<(Model, RuleMap)>> {
        Some(Ok((model.clone(), RuleMap::gradient(model))))
    }
}
