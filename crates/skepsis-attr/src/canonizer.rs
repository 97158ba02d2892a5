//! Canonizers: rewrite a model into a functionally equivalent one on which the rules work
//! as intended (zennit's `Canonizer`). They return a new [`Model`]; the input is not touched.
//!
//! * [`MergeBatchNorm`] folds an evaluation-mode BatchNorm into the convolution before it
//!   (zennit's `SequentialMergeBatchNorm`), so LRP rules see one affine layer.
//! * Residual `Add` nodes need no rewrite: the LRP composites put the
//!   [`Norm`](crate::rules::Norm) rule on them, which splits the relevance of `y = Σ_k x_k`
//!   in proportion to each input's contribution, `R_k = x_k · R / stab_ε(y)` (what zennit's
//!   ResNet canonizer achieves by turning the addition into a `Sum` module with the `Norm`
//!   rule). DeepLIFT treats `Add` as the linear layer it is (gradient: each input gets the
//!   full multiplier).

use candle_core::Tensor;
use skepsis_nn::{Conv2d, Layer, Model, Node, ValueId};

use crate::Result;

/// A model rewrite that keeps the model's function.
pub trait Canonizer {
    fn name(&self) -> &str;

    /// The rewritten model.
    fn apply(&self, model: &Model) -> Result<Model>;
}

/// Folds every BatchNorm2d whose input is the output of a Conv2d that feeds nothing else
/// into that convolution:
///
/// ```text
/// s = γ / sqrt(running_var + eps)
/// W' = W · s[:, None, None, None],   b' = (b − running_mean) · s + β   (b = 0 without bias)
/// ```
///
/// The BatchNorm node is kept, under its name, as an `Identity` (so node names and
/// positions do not change and the LRP pass rule applies to it); it is exact, whereas
/// stock zennit leaves `eps` in the emptied BatchNorm. A BatchNorm that does not directly
/// follow a convolution used only by it is left unchanged (and gets the gradient in LRP).
#[derive(Clone, Copy, Debug, Default)]
pub struct MergeBatchNorm;

impl Canonizer for MergeBatchNorm {
    fn name(&self) -> &str {
        "merge-batch-norm"
    }

    fn apply(&self, model: &Model) -> Result<Model> {
        let consumers = model.consumers();
        let mut nodes: Vec<Node> = model.nodes().to_vec();
        let mut changed = false;
        for index in 0..nodes.len() {
            let Layer::BatchNorm2d(bn) = &nodes[index].layer else { continue };
            let Some(producer) = nodes[index].inputs.first().and_then(|v| v.node()) else {
                continue;
            };
            let Layer::Conv2d(conv) = &nodes[producer].layer else { continue };
            if consumers[ValueId::of_node(producer).0].len() != 1 {
                continue;
            }
            let (scale, shift) = bn.scale_shift()?;
            let c = bn.num_features();
            let scale = scale.reshape(c)?;
            let weight = conv.weight.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
            let bias = match &conv.bias {
                Some(b) => (b * &scale)?,
                None => Tensor::zeros(c, scale.dtype(), scale.device())?,
            };
            let bias = (bias + shift.reshape(c)?)?;
            let merged = Conv2d::new(weight, Some(bias), conv.spec)?
                .with_init(conv.weight_init.clone(), conv.bias_init.clone());
            nodes[producer].layer = Layer::Conv2d(merged);
            nodes[index].layer = Layer::Identity;
            changed = true;
        }
        if !changed {
            return Ok(model.clone());
        }
        Ok(Model::new(model.name(), nodes, model.input_shape().to_vec())?
            .with_class_names(model.class_names().to_vec())
            .with_preprocessing(model.preprocessing().cloned()))
    }
}
