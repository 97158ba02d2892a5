//! Vector-Jacobian products (the gradient rule) of every layer type, for inputs and for
//! parameters.

use candle_core::Tensor;

use super::forward::check_arity;
use super::Layer;
use crate::ops::{conv, linear, pointwise, pool};
use crate::Result;

impl Layer {
    /// Given `grad = dL/dy` at the layer's output, returns `dL/dx` for each input.
    ///
    /// `inputs` and `output` are the values recorded by the forward trace. The derivative
    /// of ReLU at exactly 0 is 0 (PyTorch); max pooling routes each window's gradient to
    /// its first maximal element in row-major order.
    pub fn input_vjp(
        &self,
        inputs: &[&Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Tensor>> {
        check_arity(self, inputs.len())?;
        let x = inputs[0];
        let single = match self {
            Layer::Linear(l) => linear::linear_input_vjp(grad, &l.weight)?,
            Layer::Conv2d(c) => conv::conv2d_input_vjp(grad, &c.weight, x.dims(), &c.spec)?,
            Layer::Relu => relu_mask(x, grad)?,
            Layer::LeakyRelu { negative_slope } => {
                pointwise::leaky_relu_vjp(x, grad, *negative_slope)?
            }
            Layer::Tanh => (grad * output.sqr()?.affine(-1.0, 1.0)?)?,
            Layer::Sigmoid => (grad * (output * output.affine(-1.0, 1.0)?)?)?,
            Layer::Softmax => {
                let dot = (grad * output)?.sum_keepdim(1)?;
                (output * grad.broadcast_sub(&dot)?)?
            }
            Layer::MaxPool2d(spec) => pool::max_pool2d_vjp(x, grad, spec)?,
            Layer::AvgPool2d(spec) => pool::avg_pool2d_vjp(grad, x.dims(), spec)?,
            Layer::AdaptiveAvgPool2d { output_size } => {
                pool::adaptive_avg_pool2d_vjp(grad, x.dims(), *output_size)?
            }
            Layer::BatchNorm2d(bn) => grad.broadcast_mul(&bn.scale_shift()?.0)?,
            Layer::Flatten | Layer::Reshape { .. } => grad.reshape(x.dims())?,
            Layer::Dropout { .. } | Layer::Identity => grad.clone(),
            Layer::Add => return Ok(vec![grad.clone(); inputs.len()]),
            Layer::Concat { axis } => {
                let mut start = 0;
                let mut parts = Vec::with_capacity(inputs.len());
                for input in inputs {
                    let len = input.dims()[*axis];
                    parts.push(grad.narrow(*axis, start, len)?);
                    start += len;
                }
                return Ok(parts);
            }
        };
        Ok(vec![single])
    }

    /// Given `grad = dL/dy`, returns `dL/dθ` for each trainable tensor (key suffixes as in
    /// [`Layer::trainable_tensors`]), summed over the batch.
    pub fn param_vjp(
        &self,
        inputs: &[&Tensor],
        grad: &Tensor,
    ) -> Result<Vec<(&'static str, Tensor)>> {
        let x = inputs[0];
        Ok(match self {
            Layer::Linear(l) => {
                let mut g = vec![("weight", linear::linear_weight_vjp(grad, x)?)];
                if l.bias.is_some() {
                    g.push(("bias", pointwise::sum_per_channel(grad)?));
                }
                g
            }
            Layer::Conv2d(c) => {
                let mut g =
                    vec![("weight", conv::conv2d_weight_vjp(x, grad, c.weight.dims(), &c.spec)?)];
                if c.bias.is_some() {
                    g.push(("bias", pointwise::sum_per_channel(grad)?));
                }
                g
            }
            Layer::BatchNorm2d(bn) => {
                let c = bn.num_features();
                let inv_std =
                    bn.running_var.affine(1.0, bn.eps)?.sqrt()?.recip()?.reshape((1, c, 1, 1))?;
                let x_hat = x
                    .broadcast_sub(&bn.running_mean.reshape((1, c, 1, 1))?)?
                    .broadcast_mul(&inv_std)?;
                vec![("weight", (grad * x_hat)?.sum((0, 2, 3))?), ("bias", grad.sum((0, 2, 3))?)]
            }
            _ => Vec::new(),
        })
    }
}

/// `grad * [x > 0]`: the ReLU vector-Jacobian product.
pub fn relu_mask(x: &Tensor, grad: &Tensor) -> Result<Tensor> {
    pointwise::relu_vjp(x, grad)
}
