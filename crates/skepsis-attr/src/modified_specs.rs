//! Spec-string builders of the modified-backpropagation methods (registry entries
//! `guided-backprop`, `deconvnet`, `guided-gradcam`, `lrp`, `deep-taylor`,
//! `excitation-backprop`, `deeplift`, `deepshap`).

use skepsis_nn::Rule;

use crate::composite::{preset, Composite, CompositeParams};
use crate::deeplift::{DeepLift, DeepLiftRule, DeepLiftSettings, DeepShap, MaxPoolRule, Reference};
use crate::gradcam::{GradCam, GradCamSettings};
use crate::gradient::GradientSettings;
use crate::guided_gradcam::GuidedGradCam;
use crate::modified::{DeconvNet, GuidedBackprop, Lrp};
use crate::registry::{ParamInfo, Params};
use crate::rules::{AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus, DEFAULT_STABILIZER};
use crate::{Error, Method, Result};

pub(crate) const BATCH_SIZE: ParamInfo =
    ParamInfo { name: "batch_size", default: "256", help: "most samples per backward pass" };
const STABILIZER: ParamInfo = ParamInfo {
    name: "stabilizer",
    default: "1e-6",
    help: "stabilizer of the LRP rule denominators",
};
const LOW: ParamInfo = ParamInfo { name: "low", default: "0", help: "lower input bound of ZBox" };
const HIGH: ParamInfo = ParamInfo { name: "high", default: "1", help: "upper input bound of ZBox" };

pub(crate) const LRP_PARAMS: &[ParamInfo] = &[
    ParamInfo {
        name: "composite",
        default: "epsilon-plus-flat",
        help: "preset: epsilon-plus, epsilon-plus-flat, epsilon-gamma-box, epsilon-alpha2-beta1(-flat), preset-a-flat, preset-b-flat, deep-taylor, excitation-backprop",
    },
    ParamInfo {
        name: "rule",
        default: "",
        help: "one rule on every weighted layer instead of a composite: epsilon, zplus, alpha-beta, gamma, flat, wsquare, zbox",
    },
    ParamInfo { name: "epsilon", default: "1e-6", help: "epsilon of the Epsilon rule (preset A/B: 0.1)" },
    ParamInfo { name: "gamma", default: "0.25", help: "gamma of the Gamma rule" },
    ParamInfo { name: "alpha", default: "2", help: "alpha of AlphaBeta (alpha - beta = 1)" },
    ParamInfo { name: "beta", default: "1", help: "beta of AlphaBeta" },
    LOW,
    HIGH,
    STABILIZER,
    BATCH_SIZE,
];

pub(crate) const TAYLOR_PARAMS: &[ParamInfo] = &[LOW, HIGH, STABILIZER, BATCH_SIZE];
pub(crate) const EXCITATION_PARAMS: &[ParamInfo] = &[STABILIZER, BATCH_SIZE];
pub(crate) const GUIDED_GRADCAM_PARAMS: &[ParamInfo] = &[
    ParamInfo {
        name: "layer",
        default: "last 4-D layer",
        help: "node whose output GradCAM weighs",
    },
    BATCH_SIZE,
];

const DEEPLIFT_RULE: ParamInfo = ParamInfo {
    name: "rule",
    default: "rescale",
    help: "nonlinearity rule: rescale or reveal-cancel",
};
const MAXPOOL: ParamInfo = ParamInfo {
    name: "maxpool",
    default: "gradient",
    help: "max-pool rule: gradient (first maximum) or delta (captum's intended rule)",
};
pub(crate) const DEEPLIFT_PARAMS: &[ParamInfo] = &[
    DEEPLIFT_RULE,
    MAXPOOL,
    ParamInfo { name: "baseline", default: "zero", help: "reference input: zero or a constant" },
    BATCH_SIZE,
];
pub(crate) const DEEPSHAP_PARAMS: &[ParamInfo] = &[
    ParamInfo { name: "references", default: "100", help: "number of references averaged over" },
    ParamInfo { name: "seed", default: "0", help: "seed for drawing the references" },
    DEEPLIFT_RULE,
    MAXPOOL,
    BATCH_SIZE,
];

fn batch_size(p: &Params) -> Result<usize> {
    p.positive_usize("batch_size", 256)
}

fn stabilizer(p: &Params) -> Result<f64> {
    p.finite_f64("stabilizer", DEFAULT_STABILIZER)
}

pub(crate) fn guided_backprop(p: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(GuidedBackprop { settings: GradientSettings { batch_size: batch_size(p)? } }))
}

pub(crate) fn deconvnet(p: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(DeconvNet { settings: GradientSettings { batch_size: batch_size(p)? } }))
}

pub(crate) fn guided_gradcam(p: &Params) -> Result<Box<dyn Method>> {
    let batch_size = batch_size(p)?;
    let settings = GradCamSettings {
        layer: p.raw("layer").map(str::to_string),
        batch_size,
        ..GradCamSettings::default()
    };
    Ok(Box::new(GuidedGradCam {
        gradcam: GradCam::new(settings)?,
        guided: GuidedBackprop { settings: GradientSettings { batch_size } },
    }))
}

/// The single-rule composite of `lrp:rule=...`.
fn single_rule(p: &Params, rule: &str) -> Result<Composite> {
    let stab = stabilizer(p)?;
    match rule {
        "epsilon" => uniform(Epsilon::new(p.finite_f64("epsilon", DEFAULT_STABILIZER)?)?),
        "zplus" | "z-plus" => uniform(ZPlus::new(stab)?),
        "alpha-beta" | "alphabeta" => {
            uniform(AlphaBeta::new(p.finite_f64("alpha", 2.0)?, p.finite_f64("beta", 1.0)?, stab)?)
        }
        "gamma" => uniform(Gamma::new(p.finite_f64("gamma", 0.25)?, stab)?),
        "flat" => uniform(Flat::new(stab)?),
        "wsquare" => uniform(WSquare::new(stab)?),
        "zbox" => uniform(ZBox::new(p.finite_f64("low", 0.0)?, p.finite_f64("high", 1.0)?, stab)?),
        other => Err(Error::parameter(
            "lrp",
            "rule",
            format!("unknown rule '{other}' (known: epsilon, zplus, alpha-beta, gamma, flat, wsquare, zbox)"),
        )),
    }
}

fn uniform(rule: impl Rule + 'static) -> Result<Composite> {
    let name = rule.name();
    Composite::uniform(name, rule)
}

/// `lrp:composite=NAME,...` or `lrp:rule=NAME,...`.
pub(crate) fn lrp(p: &Params) -> Result<Box<dyn Method>> {
    let composite = match (p.raw("composite"), p.raw("rule")) {
        (Some(_), Some(_)) => {
            return Err(Error::parameter("lrp", "rule", "give either composite or rule, not both"))
        }
        (_, Some(rule)) => single_rule(p, rule)?,
        (composite, None) => {
            let params = CompositeParams {
                epsilon: p.raw("epsilon").map(|_| p.finite_f64("epsilon", 0.0)).transpose()?,
                gamma: p.finite_f64("gamma", 0.25)?,
                low: p.finite_f64("low", 0.0)?,
                high: p.finite_f64("high", 1.0)?,
                stabilizer: stabilizer(p)?,
            };
            preset(composite.unwrap_or("epsilon-plus-flat"), &params)?
        }
    };
    let mut lrp = Lrp::new(spec_name(p), composite);
    if p.raw("composite") == Some("excitation-backprop") {
        lrp.settings.seed = crate::modified::OutputSeed::OneHot;
    }
    lrp.settings.batch_size = batch_size(p)?;
    Ok(Box::new(lrp))
}

/// The spec as given, normalized (`name:key=value,...` in key order).
fn spec_name(p: &Params) -> String {
    if p.values.is_empty() {
        return p.method.clone();
    }
    let pairs: Vec<String> = p.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}:{}", p.method, pairs.join(","))
}

pub(crate) fn deep_taylor(p: &Params) -> Result<Box<dyn Method>> {
    let mut lrp =
        Lrp::deep_taylor(p.finite_f64("low", 0.0)?, p.finite_f64("high", 1.0)?, stabilizer(p)?)?;
    lrp.settings.batch_size = batch_size(p)?;
    Ok(Box::new(lrp))
}

pub(crate) fn excitation_backprop(p: &Params) -> Result<Box<dyn Method>> {
    let mut lrp = Lrp::excitation_backprop(stabilizer(p)?)?;
    lrp.settings.batch_size = batch_size(p)?;
    Ok(Box::new(lrp))
}

fn deeplift_settings(p: &Params) -> Result<DeepLiftSettings> {
    let rule = match p
        .choice("rule", &["rescale", "reveal-cancel", "revealcancel"], "rescale")?
        .as_str()
    {
        "rescale" => DeepLiftRule::Rescale,
        _ => DeepLiftRule::RevealCancel,
    };
    let maxpool = match p.choice("maxpool", &["gradient", "delta"], "gradient")?.as_str() {
        "gradient" => MaxPoolRule::Gradient,
        _ => MaxPoolRule::Delta,
    };
    Ok(DeepLiftSettings { rule, maxpool, batch_size: batch_size(p)? })
}

pub(crate) fn deeplift(p: &Params) -> Result<Box<dyn Method>> {
    let reference = match p.raw("baseline") {
        None | Some("zero") => Reference::Zero,
        Some(_) => Reference::Constant(p.finite_f64("baseline", 0.0)?),
    };
    Ok(Box::new(DeepLift { settings: deeplift_settings(p)?, reference }))
}

/// DeepSHAP from a parsed spec (without a reference set: set [`DeepShap::pool`] to supply
/// one).
pub fn deepshap_from(p: &Params) -> Result<DeepShap> {
    Ok(DeepShap {
        settings: deeplift_settings(p)?,
        references: p.positive_usize("references", 100)?,
        seed: p.get("seed", 0u64)?,
        pool: None,
    })
}

pub(crate) fn deepshap(p: &Params) -> Result<Box<dyn Method>> {
    Ok(Box::new(deepshap_from(p)?))
}
