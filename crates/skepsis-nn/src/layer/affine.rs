//! The layers that hold tensors: Linear, Conv2d and BatchNorm2d.

use candle_core::Tensor;

use crate::init::Initializer;
use crate::ops::Conv2dSpec;
use crate::{Error, Result};

/// A fully connected layer: `y = x W^T + b`, weight `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub weight_init: Initializer,
    pub bias_init: Initializer,
}

impl Linear {
    /// Checks that the weight is `[out, in]` and the bias `[out]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::ShapeMismatch {
                context: "linear weight [out, in]".into(),
                expected: vec![0, 0],
                found: weight.dims().to_vec(),
            });
        }
        check_bias(&bias, weight.dims()[0], "linear")?;
        Ok(Linear {
            weight,
            bias,
            weight_init: Initializer::PytorchDefault,
            bias_init: Initializer::PytorchDefault,
        })
    }

    /// Sets the initializers used when the layer is randomized.
    pub fn with_init(mut self, weight: Initializer, bias: Initializer) -> Self {
        self.weight_init = weight;
        self.bias_init = bias;
        self
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }
}

/// A 2-D convolution with weight `[out, in / groups, kh, kw]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub spec: Conv2dSpec,
    pub weight_init: Initializer,
    pub bias_init: Initializer,
}

impl Conv2d {
    /// Checks the weight rank, the groups and the bias length.
    pub fn new(weight: Tensor, bias: Option<Tensor>, spec: Conv2dSpec) -> Result<Self> {
        if weight.rank() != 4 {
            return Err(Error::ShapeMismatch {
                context: "conv2d weight [out, in/groups, kh, kw]".into(),
                expected: vec![0, 0, 0, 0],
                found: weight.dims().to_vec(),
            });
        }
        let out = weight.dims()[0];
        if spec.groups == 0 || out % spec.groups != 0 {
            return Err(Error::parameter(
                "conv2d",
                "groups",
                format!("{} does not divide the {out} output channels", spec.groups),
            ));
        }
        if spec.stride.contains(&0) || spec.dilation.contains(&0) {
            return Err(Error::parameter("conv2d", "stride/dilation", "must be at least 1"));
        }
        check_bias(&bias, out, "conv2d")?;
        Ok(Conv2d {
            weight,
            bias,
            spec,
            weight_init: Initializer::PytorchDefault,
            bias_init: Initializer::PytorchDefault,
        })
    }

    /// Sets the initializers used when the layer is randomized.
    pub fn with_init(mut self, weight: Initializer, bias: Initializer) -> Self {
        self.weight_init = weight;
        self.bias_init = bias;
        self
    }

    pub fn in_channels(&self) -> usize {
        self.weight.dims()[1] * self.spec.groups
    }

    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn kernel_size(&self) -> [usize; 2] {
        let d = self.weight.dims();
        [d[2], d[3]]
    }
}

/// Batch normalization in evaluation mode:
/// `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`, per channel.
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f64,
}

impl BatchNorm2d {
    /// Checks that the four tensors are `[C]` vectors and `eps` is non-negative.
    pub fn new(
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: f64,
    ) -> Result<Self> {
        let c = weight.dims1()?;
        for (name, t) in
            [("bias", &bias), ("running_mean", &running_mean), ("running_var", &running_var)]
        {
            if t.dims() != [c] {
                return Err(Error::ShapeMismatch {
                    context: format!("batchnorm2d {name}"),
                    expected: vec![c],
                    found: t.dims().to_vec(),
                });
            }
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::parameter("batchnorm2d", "eps", "must be finite and >= 0"));
        }
        Ok(BatchNorm2d { weight, bias, running_mean, running_var, eps })
    }

    pub fn num_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Per-channel `scale = weight / sqrt(var + eps)` and `shift = bias - mean * scale`,
    /// each shaped `[1, C, 1, 1]`, so that `y = x * scale + shift`.
    pub fn scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let c = self.num_features();
        let scale = (&self.weight / (self.running_var.affine(1.0, self.eps)?.sqrt()?))?;
        let shift = (&self.bias - (&self.running_mean * &scale)?)?;
        Ok((scale.reshape((1, c, 1, 1))?, shift.reshape((1, c, 1, 1))?))
    }
}

fn check_bias(bias: &Option<Tensor>, out: usize, context: &str) -> Result<()> {
    if let Some(b) = bias {
        if b.dims() != [out] {
            return Err(Error::ShapeMismatch {
                context: format!("{context} bias"),
                expected: vec![out],
                found: b.dims().to_vec(),
            });
        }
    }
    Ok(())
}
