//! Forward computation of every layer type.

use candle_core::Tensor;

use super::Layer;
use crate::ops::{conv, linear, pointwise, pool};
use crate::{Error, Result};

impl Layer {
    /// Applies the layer to its inputs (one tensor, or several for Add and Concat).
    pub fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        check_arity(self, inputs.len())?;
        let x = inputs[0];
        Ok(match self {
            Layer::Linear(l) => linear::linear(x, &l.weight, l.bias.as_ref())?,
            Layer::Conv2d(c) => conv::conv2d(x, &c.weight, c.bias.as_ref(), &c.spec)?,
            Layer::Relu => pointwise::relu(x)?,
            Layer::LeakyRelu { negative_slope } => pointwise::leaky_relu(x, *negative_slope)?,
            Layer::Tanh => x.tanh()?,
            Layer::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Layer::Softmax => candle_nn::ops::softmax(x, 1)?,
            Layer::MaxPool2d(spec) => pool::max_pool2d(x, spec)?,
            Layer::AvgPool2d(spec) => pool::avg_pool2d(x, spec)?,
            Layer::AdaptiveAvgPool2d { output_size } => pool::adaptive_avg_pool2d(x, *output_size)?,
            Layer::BatchNorm2d(bn) => {
                check_channels(x, bn.num_features(), "batchnorm2d input")?;
                let (scale, shift) = bn.scale_shift()?;
                x.broadcast_mul(&scale)?.broadcast_add(&shift)?
            }
            Layer::Flatten => x.flatten_from(1)?,
            Layer::Reshape { shape } => {
                let per_sample: usize = x.dims()[1..].iter().product();
                if shape.iter().product::<usize>() != per_sample {
                    return Err(Error::ShapeMismatch {
                        context: "reshape (elements per sample must match)".into(),
                        expected: shape.clone(),
                        found: x.dims()[1..].to_vec(),
                    });
                }
                let mut dims = vec![x.dims()[0]];
                dims.extend_from_slice(shape);
                x.reshape(dims)?
            }
            Layer::Dropout { .. } | Layer::Identity => x.clone(),
            Layer::Add => {
                let mut sum = x.clone();
                for other in &inputs[1..] {
                    if other.dims() != x.dims() {
                        return Err(Error::ShapeMismatch {
                            context: "add (all inputs need the same shape)".into(),
                            expected: x.dims().to_vec(),
                            found: other.dims().to_vec(),
                        });
                    }
                    sum = (sum + *other)?;
                }
                sum
            }
            Layer::Concat { axis } => {
                if *axis == 0 || *axis >= x.rank() {
                    return Err(Error::parameter(
                        "concat",
                        "axis",
                        format!(
                            "must be between 1 and {} for rank-{} inputs",
                            x.rank() - 1,
                            x.rank()
                        ),
                    ));
                }
                Tensor::cat(inputs, *axis)?
            }
        })
    }
}

pub(super) fn check_arity(layer: &Layer, n: usize) -> Result<()> {
    let ok = match layer.arity() {
        Some(k) => n == k,
        None => n >= 2,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidGraph(format!(
            "layer type '{}' takes {} input(s), got {n}",
            layer.kind(),
            layer.arity().map_or("two or more".to_string(), |k| k.to_string())
        )))
    }
}

fn check_channels(x: &Tensor, channels: usize, context: &str) -> Result<()> {
    if x.rank() != 4 || x.dims()[1] != channels {
        return Err(Error::ShapeMismatch {
            context: format!("{context} [N, C, H, W]"),
            expected: vec![x.dims().first().copied().unwrap_or(0), channels, 0, 0],
            found: x.dims().to_vec(),
        });
    }
    Ok(())
}
