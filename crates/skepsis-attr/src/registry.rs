//! Methods built from specification strings, so the command line and configuration files
//! share one syntax: `name` or `name:key=value,key=value`, e.g.
//! `ig:steps=64,baseline=zero,rule=trapezoid`, `smoothgrad:samples=50,sigma=0.15`,
//! `gradcam:layer=conv2`. Unknown names or parameters are errors that list the valid ones.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::gradient::{Gradient, GradientSettings, GradientXInput};
use crate::modified_specs;
use crate::{specs, Error, Method, Result};

/// One parameter of a method, for `skepsis methods` and error messages.
#[derive(Clone, Copy, Debug)]
pub struct ParamInfo {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// A method of the registry.
#[derive(Clone, Copy)]
pub struct MethodInfo {
    /// The name used in specs.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// The paper that defines the method.
    pub paper: &'static str,
    /// One line on what the method computes.
    pub summary: &'static str,
    pub params: &'static [ParamInfo],
    /// Builds the method from validated parameters.
    pub build: fn(&Params) -> Result<Box<dyn Method>>,
}

impl std::fmt::Debug for MethodInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodInfo").field("name", &self.name).finish_non_exhaustive()
    }
}

const BATCH_SIZE: ParamInfo =
    ParamInfo { name: "batch_size", default: "256", help: "most samples per backward pass" };

/// Every method skepsis implements, in the order `skepsis methods` lists them.
pub static METHODS: &[MethodInfo] = &[
    MethodInfo {
        name: "gradient",
        aliases: &["saliency", "vanilla-gradient"],
        paper: "Simonyan, Vedaldi & Zisserman, Deep Inside Convolutional Networks, ICLR-W 2014",
        summary: "d f_t / d x, signed",
        params: &[BATCH_SIZE],
        build: |p| Ok(Box::new(Gradient { settings: gradient_settings(p)? })),
    },
    MethodInfo {
        name: "gradient-x-input",
        aliases: &["input-x-gradient", "gxi"],
        paper: "Shrikumar et al., Not Just a Black Box, 2016",
        summary: "x * d f_t / d x",
        params: &[BATCH_SIZE],
        build: |p| Ok(Box::new(GradientXInput { settings: gradient_settings(p)? })),
    },
    // Part 2: modified backpropagation (builders in `modified_specs`).
    MethodInfo {
        name: "guided-backprop",
        aliases: &["guided_backprop", "gbp"],
        paper: "Springenberg et al., Striving for Simplicity: The All Convolutional Net, ICLR-W 2015",
        summary: "gradient with ReLU backward [x > 0] * max(g, 0)",
        params: &[modified_specs::BATCH_SIZE],
        build: modified_specs::guided_backprop,
    },
    MethodInfo {
        name: "deconvnet",
        aliases: &["deconvolution"],
        paper: "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014",
        summary: "gradient with ReLU backward max(g, 0)",
        params: &[modified_specs::BATCH_SIZE],
        build: modified_specs::deconvnet,
    },
    MethodInfo {
        name: "guided-gradcam",
        aliases: &["guided_gradcam"],
        paper: "Selvaraju et al., Grad-CAM, ICCV 2017",
        summary: "Guided Backprop * bilinearly upsampled GradCAM",
        params: modified_specs::GUIDED_GRADCAM_PARAMS,
        build: modified_specs::guided_gradcam,
    },
    MethodInfo {
        name: "lrp",
        aliases: &[],
        paper: "Bach et al., Layer-Wise Relevance Propagation, PLoS ONE 2015; Montavon et al. 2019",
        summary: "relevance one_hot * logits propagated with a composite or one rule",
        params: modified_specs::LRP_PARAMS,
        build: modified_specs::lrp,
    },
    MethodInfo {
        name: "deep-taylor",
        aliases: &["deep_taylor", "deeptaylor"],
        paper: "Montavon et al., Explaining nonlinear classification decisions with deep Taylor decomposition, 2017",
        summary: "z+ on hidden layers, bounded zB on the input layer",
        params: modified_specs::TAYLOR_PARAMS,
        build: modified_specs::deep_taylor,
    },
    MethodInfo {
        name: "excitation-backprop",
        aliases: &["excitation_backprop"],
        paper: "Zhang et al., Top-down Neural Attention by Excitation Backprop, ECCV 2016",
        summary: "marginal winning probabilities through positive weights",
        params: modified_specs::EXCITATION_PARAMS,
        build: modified_specs::excitation_backprop,
    },
    MethodInfo {
        name: "deeplift",
        aliases: &[],
        paper: "Shrikumar, Greenside & Kundaje, Learning Important Features Through Propagating Activation Differences, ICML 2017",
        summary: "(x - x') * multipliers, Rescale or RevealCancel rule",
        params: modified_specs::DEEPLIFT_PARAMS,
        build: modified_specs::deeplift,
    },
    MethodInfo {
        name: "deepshap",
        aliases: &["deepliftshap", "deep-shap"],
        paper: "Lundberg & Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017",
        summary: "DeepLIFT averaged over a reference set",
        params: modified_specs::DEEPSHAP_PARAMS,
        build: modified_specs::deepshap,
    },
    // Gradient family, CAM, perturbation, CGI and baselines (builders in `specs`).
    MethodInfo {
        name: "integrated-gradients",
        aliases: &["ig", "integrated_gradients"],
        paper: "Sundararajan, Taly & Yan, Axiomatic Attribution for Deep Networks, ICML 2017",
        summary: "(x - b) * sum_k w_k grad f_t(b + alpha_k (x - b)); completeness delta",
        params: specs::IG,
        build: specs::integrated_gradients,
    },
    MethodInfo {
        name: "smoothgrad",
        aliases: &["sg"],
        paper: "Smilkov et al., SmoothGrad: removing noise by adding noise, 2017",
        summary: "mean of the base map over noisy copies",
        params: specs::NOISE,
        build: specs::smoothgrad,
    },
    MethodInfo {
        name: "smoothgrad-sq",
        aliases: &["smoothgrad2", "smoothgrad-squared", "smoothgrad_sq"],
        paper: "Hooker et al., A Benchmark for Interpretability Methods in Deep Neural Networks, NeurIPS 2019",
        summary: "mean of the squared base map over noisy copies",
        params: specs::NOISE,
        build: specs::smoothgrad_sq,
    },
    MethodInfo {
        name: "vargrad",
        aliases: &[],
        paper: "Adebayo et al., Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter Values, ICLR-W 2018",
        summary: "population variance of the base map over noisy copies",
        params: specs::NOISE,
        build: specs::vargrad,
    },
    MethodInfo {
        name: "expected-gradients",
        aliases: &["eg"],
        paper: "Erion et al., Improving performance of deep learning models with axiomatic attribution priors and expected gradients, Nat. Mach. Intell. 2021",
        summary: "mean over references r and alpha ~ U[0,1) of (x - r) * grad f_t(r + alpha (x - r))",
        params: specs::EXPECTED_GRADIENTS,
        build: specs::expected_gradients,
    },
    MethodInfo {
        name: "gradient-shap",
        aliases: &["gradientshap"],
        paper: "Lundberg & Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017",
        summary: "expected gradients with Gaussian noise on the input (captum GradientShap)",
        params: specs::GRADIENT_SHAP,
        build: specs::gradient_shap,
    },
    MethodInfo {
        name: "gradcam",
        aliases: &["grad-cam"],
        paper: "Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks, ICCV 2017",
        summary: "ReLU(sum_c mean_ij(dS/dA_c) A_c) at a layer, optionally upsampled",
        params: specs::GRADCAM,
        build: specs::gradcam,
    },
    MethodInfo {
        name: "gradcam-plus-plus",
        aliases: &["gradcam++", "gradcampp"],
        paper: "Chattopadhay et al., Grad-CAM++, WACV 2018",
        summary: "GradCAM with higher-order pixel weights alpha = g^2 / (2 g^2 + sum(A) g^3)",
        params: specs::GRADCAM,
        build: specs::gradcam_plus_plus,
    },
    MethodInfo {
        name: "occlusion",
        aliases: &[],
        paper: "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014",
        summary: "mean output drop over the sliding windows covering each element",
        params: specs::OCCLUSION,
        build: specs::occlusion,
    },
    MethodInfo {
        name: "rise",
        aliases: &[],
        paper: "Petsiuk, Das & Saenko, RISE: Randomized Input Sampling for Explanation, BMVC 2018",
        summary: "sum_i f_t(x * m_i) m_i / (M p) over random upsampled masks",
        params: specs::RISE,
        build: specs::rise,
    },
    MethodInfo {
        name: "cgi",
        aliases: &["competitive-gradient-x-input"],
        paper: "Gupta & Arora, A Simple Saliency Method That Passes the Sanity Checks, 2019",
        summary: "x * grad f_y where class y beats every other class, 0 elsewhere",
        params: specs::CGI,
        build: specs::cgi,
    },
    MethodInfo {
        name: "random",
        aliases: &["random-map", "uniform-random"],
        paper: "control baseline (Adebayo et al. 2018; Kim et al. 2022)",
        summary: "i.i.d. U[0,1) map, independent of model and input",
        params: specs::RANDOM,
        build: specs::random,
    },
    MethodInfo {
        name: "sobel",
        aliases: &["sobel-edges", "edges"],
        paper: "control baseline: Sobel edge detector on the input (Kim et al. 2022)",
        summary: "sqrt((g_r^2 + g_c^2) / 2) of the input per channel",
        params: &[],
        build: specs::sobel,
    },
];

fn gradient_settings(p: &Params) -> Result<GradientSettings> {
    Ok(GradientSettings { batch_size: p.positive_usize("batch_size", 256)? })
}

/// The registry entry called `name` (or one of its aliases).
pub fn lookup(name: &str) -> Result<&'static MethodInfo> {
    METHODS.iter().find(|m| m.name == name || m.aliases.contains(&name)).ok_or_else(|| {
        Error::InvalidSpec(format!(
            "unknown method '{name}' (known: {})",
            METHODS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Builds the method described by `spec` (`name` or `name:key=value,...`).
pub fn parse(spec: &str) -> Result<Box<dyn Method>> {
    let params = Params::parse(spec)?;
    let info = lookup(&params.method)?;
    for key in params.values.keys() {
        if !info.params.iter().any(|p| p.name == key) {
            return Err(Error::InvalidSpec(format!(
                "unknown parameter '{key}' for method '{}' (valid: {})",
                info.name,
                if info.params.is_empty() {
                    "none".to_string()
                } else {
                    info.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                }
            )));
        }
    }
    (info.build)(&params)
}

/// The parsed `key=value` pairs of a spec, with typed getters whose errors name the method
/// and the parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    pub method: String,
    pub values: BTreeMap<String, String>,
}

impl Params {
    /// Splits `name:key=value,key=value`. Values may not contain `,` or `=`; use `;`
    /// inside a value to separate a list (e.g. `layers=fc1;fc2`).
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
        if name.is_empty() {
            return Err(Error::InvalidSpec(format!("method spec '{spec}' has no method name")));
        }
        let mut values = BTreeMap::new();
        for pair in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::InvalidSpec(format!("in '{spec}': expected key=value, found '{pair}'"))
            })?;
            let (k, v) = (k.trim().replace('-', "_"), v.trim().to_string());
            if values.insert(k.clone(), v).is_some() {
                return Err(Error::InvalidSpec(format!(
                    "in '{spec}': parameter '{k}' given twice"
                )));
            }
        }
        Ok(Params { method: name.to_string(), values })
    }

    /// The raw value of `key`, if given.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// `key` parsed as `T`, or `default`.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::parameter(&self.method, key, format!("cannot parse '{v}'"))),
        }
    }

    /// `key` as an integer >= 1.
    pub fn positive_usize(&self, key: &str, default: usize) -> Result<usize> {
        let v = self.get(key, default)?;
        if v == 0 {
            return Err(Error::parameter(&self.method, key, "must be at least 1"));
        }
        Ok(v)
    }

    /// `key` as a finite number >= 0.
    pub fn non_negative_f64(&self, key: &str, default: f64) -> Result<f64> {
        let v: f64 = self.get(key, default)?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::parameter(
                &self.method,
                key,
                format!("must be a finite number >= 0, got {v}"),
            ));
        }
        Ok(v)
    }

    /// `key` as a finite number.
    pub fn finite_f64(&self, key: &str, default: f64) -> Result<f64> {
        let v: f64 = self.get(key, default)?;
        if !v.is_finite() {
            return Err(Error::parameter(&self.method, key, format!("must be finite, got {v}")));
        }
        Ok(v)
    }

    /// `key` as one of `choices`, or `default`.
    pub fn choice(&self, key: &str, choices: &[&str], default: &str) -> Result<String> {
        let v = self.raw(key).unwrap_or(default);
        if choices.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(Error::parameter(
                &self.method,
                key,
                format!("'{v}' is not one of {}", choices.join(", ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_parameters() {
        let p = Params::parse("ig:steps=64, baseline=zero,batch-size=8").unwrap();
        assert_eq!(p.method, "ig");
        assert_eq!(p.raw("steps"), Some("64"));
        assert_eq!(p.raw("batch_size"), Some("8"));
        assert_eq!(Params::parse("gradient").unwrap().values.len(), 0);
    }

    #[test]
    fn rejects_malformed_specs() {
        assert!(Params::parse(":x=1").is_err());
        assert!(Params::parse("ig:steps").is_err());
        assert!(Params::parse("ig:steps=1,steps=2").is_err());
    }

    #[test]
    fn unknown_method_and_parameter_list_the_valid_ones() {
        let e = parse("gradiant").err().unwrap().to_string();
        assert!(e.contains("unknown method 'gradiant'") && e.contains("gradient"), "{e}");
        let e = parse("gradient:steps=3").err().unwrap().to_string();
        assert!(e.contains("unknown parameter 'steps'") && e.contains("batch_size"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_parameter() {
        let e = parse("gradient:batch_size=0").err().unwrap().to_string();
        assert!(e.contains("batch_size") && e.contains("at least 1"), "{e}");
        let e = parse("gradient:batch_size=x").err().unwrap().to_string();
        assert!(e.contains("batch_size"), "{e}");
    }
}
