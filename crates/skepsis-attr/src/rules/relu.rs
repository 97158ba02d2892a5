//! The two modified ReLU backward rules of the "deconvolution" family.

use candle_core::Tensor;
use skepsis_nn::{Layer, Result, Rule, Step};

use super::{single_input, unsupported};

/// Guided Backpropagation's ReLU rule, Springenberg, Dosovitskiy, Brox & Riedmiller,
/// "Striving for Simplicity: The All Convolutional Net", ICLR workshop 2015:
///
/// ```text
/// g_in = [x > 0] · max(g_out, 0)
/// ```
///
/// the ReLU gradient with negative gradients removed. ReLU nodes only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Guided;

impl Rule for Guided {
    fn name(&self) -> String {
        "guided".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        let x = single_input(step, "guided")?;
        if !matches!(step.node.layer, Layer::Relu) {
            return Err(unsupported(step, "guided"));
        }
        Ok(vec![skepsis_nn::ops::pointwise::guided_relu_vjp(x, relevance)?])
    }
}

/// DeconvNet's ReLU rule, Zeiler & Fergus, "Visualizing and Understanding Convolutional
/// Networks", ECCV 2014:
///
/// ```text
/// g_in = max(g_out, 0)
/// ```
///
/// the backward signal is rectified instead of being masked by the forward activation.
/// ReLU nodes only; max pooling keeps its forward switches (plain gradient).
#[derive(Clone, Copy, Debug, Default)]
pub struct Deconv;

impl Rule for Deconv {
    fn name(&self) -> String {
        "deconv".into()
    }

    fn backward(&self, step: &Step<'_>, relevance: &Tensor) -> Result<Vec<Tensor>> {
        single_input(step, "deconv")?;
        if !matches!(step.node.layer, Layer::Relu) {
            return Err(unsupported(step, "deconv"));
        }
        Ok(vec![skepsis_nn::ops::pointwise::relu(relevance)?])
    }
}
