//! Registry parameters and builders of the gradient-family, CAM, perturbation, CGI and
//! baseline methods (the entries themselves live in [`crate::registry::METHODS`]).

use crate::baselines::{RandomMap, RandomMapSettings, SobelEdges};
use crate::cgi::{Cgi, CgiBase, CgiComparison, CgiSettings};
use crate::expected_gradients::{ExpectedGradients, ExpectedGradientsSettings};
use crate::gradcam::{CamNormalization, CamWeighting, GradCam, GradCamSettings};
use crate::gradient::{Gradient, GradientSettings, GradientXInput};
use crate::ig_baseline::Baseline;
use crate::integrated_gradients::{IntegratedGradients, IntegratedGradientsSettings};
use crate::noise_tunnel::{NoiseReduction, NoiseScale, NoiseTunnel, NoiseTunnelSettings};
use crate::occlusion::{Occlusion, OcclusionSettings};
use crate::quadrature::{QuadratureRule, RULE_NAMES};
use crate::registry::{ParamInfo, Params};
use crate::rise::{Rise, RiseSettings};
use crate::{Error, Method, Result};

const fn param(name: &'static str, default: &'static str, help: &'static str) -> ParamInfo {
    ParamInfo { name, default, help }
}

const BATCH: ParamInfo =
    param("batch_size", "256", "most rows (inputs x steps/samples/classes) per pass");
const SEED: ParamInfo = param("seed", "0", "seed of the random draws");
const STEPS: ParamInfo = param("steps", "64", "interpolation steps");

pub(crate) const IG: &[ParamInfo] = &[
    STEPS,
    param("rule", "trapezoid", "left, right, middle, trapezoid, captum-trapezoid, pair, gauss-legendre, innvestigate (= left)"),
    param("baseline", "zero", "zero, constant, uniform, blur"),
    param("value", "0", "constant baseline value"),
    param("low", "0", "uniform baseline: lower bound"),
    param("high", "1", "uniform baseline: upper bound"),
    param("sigma", "5", "blur baseline: Gaussian std in pixels"),
    SEED,
    BATCH,
];

pub(crate) fn integrated_gradients(p: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(IntegratedGradients::new(ig_settings(p)?)?))
}

fn ig_settings(p: &Params) -> Result<IntegratedGradientsSettings> {
    let rule = p.choice("rule", RULE_NAMES, "trapezoid")?;
    let baseline =
        match p.choice("baseline", &["zero", "constant", "uniform", "blur"], "zero")?.as_str() {
            "constant" => Baseline::Constant { value: p.finite_f64("value", 0.0)? },
            "uniform" => Baseline::Uniform {
                low: p.finite_f64("low", 0.0)?,
                high: p.finite_f64("high", 1.0)?,
                seed: p.get("seed", 0)?,
            },
            "blur" => Baseline::Blur { sigma: p.finite_f64("sigma", 5.0)? },
            _ => Baseline::Zero,
        };
    Ok(IntegratedGradientsSettings {
        steps: p.get("steps", 64)?,
        rule: QuadratureRule::parse(&rule).unwrap_or_default(),
        baseline,
        batch_size: p.get("batch_size", 256)?,
    })
}

pub(crate) const NOISE: &[ParamInfo] = &[
    param("samples", "50", "noisy copies per input (vargrad: 25)"),
    param("sigma", "0.15", "noise std (see scale)"),
    param("scale", "range", "range: std = sigma * (max - min) per image; absolute: std = sigma"),
    param("base", "gradient", "gradient, gradient-x-input, ig"),
    param("steps", "64", "steps of the ig base"),
    SEED,
    BATCH,
];

fn noise_tunnel(p: &Params, reduction: NoiseReduction, samples: usize) -> Result<Box<dyn Method>> {
    let batch_size = p.positive_usize("batch_size", 256)?;
    let base: Box<dyn Method> =
        match p.choice("base", &["gradient", "gradient-x-input", "ig"], "gradient")?.as_str() {
            "gradient-x-input" => {
                Box::new(GradientXInput { settings: GradientSettings { batch_size } })
            }
            "ig" => Box::new(IntegratedGradients::new(IntegratedGradientsSettings {
                steps: p.get("steps", 64)?,
                batch_size,
                ..Default::default()
            })?),
            _ => Box::new(Gradient { settings: GradientSettings { batch_size } }),
        };
    let scale = match p.choice("scale", &["range", "absolute"], "range")?.as_str() {
        "absolute" => NoiseScale::Absolute,
        _ => NoiseScale::Range,
    };
    let settings = NoiseTunnelSettings {
        reduction,
        samples: p.get("samples", samples)?,
        sigma: p.get("sigma", 0.15)?,
        scale,
        seed: p.get("seed", 0)?,
        batch_size,
    };
    Ok(Box::new(NoiseTunnel::new(base, settings)?))
}

pub(crate) fn smoothgrad(p: &Params) -> Result<Box<dyn Method>> {
    noise_tunnel(p, NoiseReduction::SmoothGrad, 50)
}

pub(crate) fn smoothgrad_sq(p: &Params) -> Result<Box<dyn Method>> {
    noise_tunnel(p, NoiseReduction::SmoothGradSquared, 50)
}

pub(crate) fn vargrad(p: &Params) -> Result<Box<dyn Method>> {
    noise_tunnel(p, NoiseReduction::VarGrad, 25)
}

pub(crate) const EXPECTED_GRADIENTS: &[ParamInfo] = &[
    param("samples", "50", "(reference, alpha) draws per input; references = the batch itself"),
    SEED,
    BATCH,
];

pub(crate) const GRADIENT_SHAP: &[ParamInfo] = &[
    param("samples", "50", "(reference, alpha) draws per input; references = the batch itself"),
    param("noise_std", "0", "std of Gaussian noise added to the input"),
    SEED,
    BATCH,
];

fn expected_gradients_named(p: &Params, name: &'static str) -> Result<Box<dyn Method>> {
    let settings = ExpectedGradientsSettings {
        samples: p.get("samples", 50)?,
        noise_std: p.get("noise_std", 0.0)?,
        seed: p.get("seed", 0)?,
        batch_size: p.get("batch_size", 256)?,
        ..Default::default()
    };
    Ok(Box::new(ExpectedGradients::new(name, settings)?))
}

pub(crate) fn expected_gradients(p: &Params) -> Result<Box<dyn Method>> {
    expected_gradients_named(p, "expected-gradients")
}

pub(crate) fn gradient_shap(p: &Params) -> Result<Box<dyn Method>> {
    expected_gradients_named(p, "gradient-shap")
}

pub(crate) const GRADCAM: &[ParamInfo] = &[
    param(
        "layer",
        "last 4-D layer",
        "node whose [N, C, h, w] output is weighted (SC MNIST CNN: relu2)",
    ),
    param("upsample", "true", "resize bilinearly to the input (align_corners = false)"),
    param("relu", "true", "ReLU on the weighted sum"),
    param("normalize", "none", "none, max (divide each map by its maximum, as Adebayo et al.)"),
    BATCH,
];

fn cam(p: &Params, weighting: CamWeighting) -> Result<Box<dyn Method>> {
    let normalization = match p.choice("normalize", &["none", "max"], "none")?.as_str() {
        "max" => CamNormalization::Max,
        _ => CamNormalization::None,
    };
    Ok(Box::new(GradCam::new(GradCamSettings {
        weighting,
        layer: p.raw("layer").map(str::to_string),
        upsample: p.get("upsample", true)?,
        relu: p.get("relu", true)?,
        normalization,
        batch_size: p.get("batch_size", 256)?,
    })?))
}

pub(crate) fn gradcam(p: &Params) -> Result<Box<dyn Method>> {
    cam(p, CamWeighting::GradCam)
}

pub(crate) fn gradcam_plus_plus(p: &Params) -> Result<Box<dyn Method>> {
    cam(p, CamWeighting::GradCamPlusPlus)
}

pub(crate) const OCCLUSION: &[ParamInfo] = &[
    param("window", "4;4", "window h;w (all channels) or c;h;w"),
    param("stride", "2;2", "stride, same length as window"),
    param("baseline", "0", "value written into the window"),
    BATCH,
];

fn usize_list(p: &Params, key: &str, default: &[usize]) -> Result<Vec<usize>> {
    match p.raw(key) {
        None => Ok(default.to_vec()),
        Some(v) => v
            .split(';')
            .map(|s| s.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::parameter(&p.method, key, format!("cannot parse '{v}' as a list like 4;4"))
            }),
    }
}

pub(crate) fn occlusion(p: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(Occlusion::new(OcclusionSettings {
        window: usize_list(p, "window", &[4, 4])?,
        stride: usize_list(p, "stride", &[2, 2])?,
        baseline: p.get("baseline", 0.0)?,
        batch_size: p.get("batch_size", 256)?,
    })?))
}

pub(crate) const RISE: &[ParamInfo] = &[
    param("masks", "4000", "number of random masks"),
    param("grid", "7", "side of the coarse mask grid"),
    param("p", "0.5", "probability that a grid cell is kept"),
    SEED,
    BATCH,
];

pub(crate) fn rise(p: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(Rise::new(RiseSettings {
        masks: p.get("masks", 4000)?,
        grid: p.get("grid", 7)?,
        p: p.get("p", 0.5)?,
        seed: p.get("seed", 0)?,
        batch_size: p.get("batch_size", 256)?,
    })?))
}

pub(crate) const CGI: &[ParamInfo] = &[
    param(
        "comparison",
        "elementwise",
        "elementwise (per channel) or pixel (maps summed over channels)",
    ),
    param("base", "gradient-x-input", "gradient-x-input or ig"),
    STEPS,
    BATCH,
];

pub(crate) fn cgi(p: &Params) -> Result<Box<dyn Method>> {
    let comparison =
        match p.choice("comparison", &["elementwise", "pixel"], "elementwise")?.as_str() {
            "pixel" => CgiComparison::Pixel,
            _ => CgiComparison::Elementwise,
        };
    let base = match p.choice("base", &["gradient-x-input", "ig"], "gradient-x-input")?.as_str() {
        "ig" => CgiBase::IntegratedGradients,
        _ => CgiBase::GradientXInput,
    };
    Ok(Box::new(Cgi::new(CgiSettings {
        comparison,
        base,
        steps: p.get("steps", 64)?,
        batch_size: p.get("batch_size", 256)?,
    })?))
}

pub(crate) const RANDOM: &[ParamInfo] = &[SEED];

pub(crate) fn random(p: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(RandomMap { settings: RandomMapSettings { seed: p.get("seed", 0)? } }))
}

pub(crate) fn sobel(_: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(SobelEdges::default()))
}
