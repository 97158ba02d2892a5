//! The architectures of the papers skepsis reproduces, buildable by name (`--arch sc-cnn`).
//!
//! Each builder draws its weights from the initializers its paper used (recorded in the
//! layers, so that randomization re-uses them) from an explicit seed.

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::init::{layer_rng, Initializer};
use crate::ops::{Conv2dSpec, Padding2d, Pool2dSpec};
use crate::{Conv2d, Error, Layer, Linear, Model, Result};

/// A built-in architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// MNIST CNN of Adebayo et al. 2018 (sanity_checks_saliency `train_cnn_models.py`):
    /// conv 5x5x32 SAME, ReLU, maxpool 2 -> conv 5x5x64 SAME, ReLU, maxpool 2 -> fc 1024,
    /// ReLU -> fc logits. Weights truncated normal (std 0.1), biases 0.1.
    ScCnn,
    /// MNIST MLP of Adebayo et al. 2018: 2500-1500-500 ReLU units -> logits. Weights
    /// truncated normal (std 2/sqrt(fan_in)), biases 0.
    ScMlp,
    /// MLP of Kindermans et al. 2017 ("The (Un)reliability of saliency methods"): three
    /// hidden layers of 1024 ReLU units. PyTorch default initialization.
    KindermansMlp,
    /// SMERF TextBoxCNN (Kim et al. 2022), for simple setups: conv 32/64/64 3x3 stride 2
    /// VALID with ReLU -> dense 200 ReLU -> dense logits. Keras defaults: Glorot-uniform
    /// weights, zero biases.
    TextboxCnn,
    /// SMERF TextBoxCNN_adv, for complex setups: conv 64/128/256/64 3x3 stride 2 VALID ->
    /// dense 200 -> dense 200 -> logits. Glorot-uniform weights, zero biases.
    TextboxCnnAdv,
    /// LeNet-sized CNN used as a speed reference: conv 32 3x3, ReLU, conv 64 3x3, ReLU,
    /// maxpool 2 -> fc 128 ReLU -> logits (the PyTorch MNIST example). PyTorch defaults.
    Lenet,
}

impl Architecture {
    /// Every architecture with its command-line name.
    pub const ALL: [(Architecture, &'static str); 6] = [
        (Architecture::ScCnn, "sc-cnn"),
        (Architecture::ScMlp, "sc-mlp"),
        (Architecture::KindermansMlp, "kindermans-mlp"),
        (Architecture::TextboxCnn, "textbox-cnn"),
        (Architecture::TextboxCnnAdv, "textbox-cnn-adv"),
        (Architecture::Lenet, "lenet"),
    ];

    /// Parses a command-line name.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(a, _)| *a).ok_or_else(|| {
            Error::parameter(
                "model zoo",
                "arch",
                format!(
                    "unknown architecture '{name}' (known: {})",
                    Self::ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(a, _)| *a == self).map(|(_, n)| *n).unwrap_or("?")
    }

    /// The input shape of the paper's setting.
    pub fn default_input_shape(self) -> [usize; 3] {
        match self {
            Architecture::TextboxCnn | Architecture::TextboxCnnAdv => [3, 64, 64],
            _ => [1, 28, 28],
        }
    }

    /// The number of classes of the paper's setting.
    pub fn default_num_classes(self) -> usize {
        match self {
            Architecture::TextboxCnn | Architecture::TextboxCnnAdv => 2,
            _ => 10,
        }
    }
}

/// Builds `arch` for inputs `[C, H, W]` and `num_classes` outputs, weights drawn from the
/// architecture's initializers with per-layer generators derived from `seed`.
pub fn build(
    arch: Architecture,
    input_shape: [usize; 3],
    num_classes: usize,
    seed: u64,
) -> Result<Model> {
    if num_classes == 0 {
        return Err(Error::parameter("model zoo", "num_classes", "must be at least 1"));
    }
    let mut b = Builder::new(input_shape, seed);
    let tn = |std| Initializer::TruncatedNormal { std };
    let glorot = Initializer::GlorotUniform;
    let zero = Initializer::Constant { value: 0.0 };
    match arch {
        Architecture::ScCnn => {
            let (w, bias) = (tn(0.1), Initializer::Constant { value: 0.1 });
            b.conv("conv1", 32, 5, 1, 2, &w, &bias)?.relu("relu1").maxpool("pool1", 2)?;
            b.conv("conv2", 64, 5, 1, 2, &w, &bias)?.relu("relu2").maxpool("pool2", 2)?;
            b.flatten().linear("fc1", 1024, &w, &bias)?.relu("relu3");
            b.linear("logits", num_classes, &w, &bias)?;
        }
        Architecture::ScMlp => {
            let w = Initializer::TruncatedNormalFanIn { gain: 2.0 };
            b.flatten();
            for (i, width) in [2500, 1500, 500].into_iter().enumerate() {
                b.linear(&format!("h{}", i + 1), width, &w, &zero)?.relu(&format!("relu{}", i + 1));
            }
            b.linear("logits", num_classes, &w, &zero)?;
        }
        Architecture::KindermansMlp => {
            let d = Initializer::PytorchDefault;
            b.flatten();
            for i in 1..=3 {
                b.linear(&format!("fc{i}"), 1024, &d, &d)?.relu(&format!("relu{i}"));
            }
            b.linear("logits", num_classes, &d, &d)?;
        }
        Architecture::TextboxCnn => {
            for (i, ch) in [32, 64, 64].into_iter().enumerate() {
                b.conv(&format!("conv{}", i + 1), ch, 3, 2, 0, &glorot, &zero)?
                    .relu(&format!("relu{}", i + 1));
            }
            b.flatten().linear("fc1", 200, &glorot, &zero)?.relu("relu4");
            b.linear("logits", num_classes, &glorot, &zero)?;
        }
        Architecture::TextboxCnnAdv => {
            for (i, ch) in [64, 128, 256, 64].into_iter().enumerate() {
                b.conv(&format!("conv{}", i + 1), ch, 3, 2, 0, &glorot, &zero)?
                    .relu(&format!("relu{}", i + 1));
            }
            b.flatten().linear("fc1", 200, &glorot, &zero)?.relu("relu5");
            b.linear("fc2", 200, &glorot, &zero)?.relu("relu6");
            b.linear("logits", num_classes, &glorot, &zero)?;
        }
        Architecture::Lenet => {
            let d = Initializer::PytorchDefault;
            b.conv("conv1", 32, 3, 1, 0, &d, &d)?.relu("relu1");
            b.conv("conv2", 64, 3, 1, 0, &d, &d)?.relu("relu2").maxpool("pool1", 2)?;
            b.flatten().linear("fc1", 128, &d, &d)?.relu("relu3");
            b.linear("logits", num_classes, &d, &d)?;
        }
    }
    let classes = (0..num_classes).map(|c| c.to_string()).collect();
    Ok(Model::sequential(arch.name(), b.layers, input_shape.to_vec())?.with_class_names(classes))
}

/// Appends layers while tracking the per-sample shape.
struct Builder {
    layers: Vec<(String, Layer)>,
    shape: Vec<usize>,
    seed: u64,
}

impl Builder {
    fn new(input_shape: [usize; 3], seed: u64) -> Self {
        Builder { layers: Vec::new(), shape: input_shape.to_vec(), seed }
    }

    fn push(&mut self, name: &str, layer: Layer) -> &mut Self {
        self.layers.push((name.to_string(), layer));
        self
    }

    #[allow(clippy::too_many_arguments)] // one argument per column of the papers' tables
    fn conv(
        &mut self,
        name: &str,
        out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        w_init: &Initializer,
        b_init: &Initializer,
    ) -> Result<&mut Self> {
        let spec = Conv2dSpec {
            stride: [stride, stride],
            padding: Padding2d::symmetric(pad, pad),
            ..Default::default()
        };
        let [oh, ow] =
            spec.output_hw([self.shape[1], self.shape[2]], [kernel, kernel]).ok_or_else(|| {
                Error::parameter(
                    name,
                    "input_shape",
                    format!("{:?} is too small for this network", self.shape),
                )
            })?;
        let placeholder = candle_core::Tensor::zeros(
            (out, self.shape[0], kernel, kernel),
            DType::F32,
            &Device::Cpu,
        )?;
        let bias = candle_core::Tensor::zeros(out, DType::F32, &Device::Cpu)?;
        let layer = Layer::Conv2d(
            Conv2d::new(placeholder, Some(bias), spec)?.with_init(w_init.clone(), b_init.clone()),
        );
        let layer = self.initialized(layer)?;
        self.shape = vec![out, oh, ow];
        Ok(self.push(name, layer))
    }

    fn linear(
        &mut self,
        name: &str,
        out: usize,
        w_init: &Initializer,
        b_init: &Initializer,
    ) -> Result<&mut Self> {
        let inp: usize = self.shape.iter().product();
        let placeholder = candle_core::Tensor::zeros((out, inp), DType::F32, &Device::Cpu)?;
        let bias = candle_core::Tensor::zeros(out, DType::F32, &Device::Cpu)?;
        let layer = Layer::Linear(
            Linear::new(placeholder, Some(bias))?.with_init(w_init.clone(), b_init.clone()),
        );
        let layer = self.initialized(layer)?;
        self.shape = vec![out];
        Ok(self.push(name, layer))
    }

    fn initialized(&self, layer: Layer) -> Result<Layer> {
        let mut rng = layer_rng(self.seed, self.layers.len());
        layer.fresh(&mut rng)
    }

    fn relu(&mut self, name: &str) -> &mut Self {
        self.push(name, Layer::Relu)
    }

    fn maxpool(&mut self, name: &str, k: usize) -> Result<&mut Self> {
        let spec = Pool2dSpec::square(k);
        let [oh, ow] = spec.output_hw([self.shape[1], self.shape[2]]).ok_or_else(|| {
            Error::parameter(
                name,
                "input_shape",
                format!("{:?} is too small for this network", self.shape),
            )
        })?;
        self.shape = vec![self.shape[0], oh, ow];
        Ok(self.push(name, Layer::MaxPool2d(spec)))
    }

    fn flatten(&mut self) -> &mut Self {
        self.shape = vec![self.shape.iter().product()];
        self.push("flatten", Layer::Flatten)
    }
}
