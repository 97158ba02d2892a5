//! Part 1: gradient family, CAM, perturbation methods, CGI.

use candle_core::{DType, Tensor};
use skepsis_attr::{
    registry, Cgi, CgiComparison, CgiSettings, GradCam, GradCamSettings, Gradient,
    IntegratedGradients, IntegratedGradientsSettings, Method, NoiseReduction, NoiseTunnel,
    NoiseTunnelSettings, Occlusion, OcclusionSettings, QuadratureRule,
};

use super::CaseView;

pub fn method_for(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    match case.method {
        "gradient" if case.no_params() => registry::parse("gradient").ok(),
        "gradient_x_input" if case.no_params() => registry::parse("gradient-x-input").ok(),
        "integrated_gradients" => integrated_gradients(case),
        "smoothgrad" => noise_tunnel(case, NoiseReduction::SmoothGrad),
        "smoothgrad_sq" => noise_tunnel(case, NoiseReduction::SmoothGradSquared),
        "vargrad" => noise_tunnel(case, NoiseReduction::VarGrad),
        "gradcam" | "gradcam_upsampled" => gradcam(case),
        "occlusion" => occlusion(case),
        "cgi" => cgi(case),
        _ => None,
    }
}

fn values(t: &Tensor) -> Option<Vec<f64>> {
    t.flatten_all().ok()?.to_dtype(DType::F64).ok()?.to_vec1::<f64>().ok()
}

/// The stored alphas/weights are exactly what captum used (float32 linspace, float32
/// Gauss-Legendre weights); `tests/integrated_gradients.rs` checks that skepsis' own
/// quadrature rules reproduce them to float32 rounding.
fn integrated_gradients(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    let alphas = values(case.tensors.get("alphas")?)?;
    let weights = values(case.tensors.get("weights")?)?;
    let settings = IntegratedGradientsSettings {
        steps: alphas.len(),
        rule: QuadratureRule::Explicit { alphas, weights },
        batch_size: 24, // not a divisor of the 4 x 16 rows: exercises chunking
        ..Default::default()
    };
    let ig = IntegratedGradients::new(settings).ok()?;
    Some(Box::new(match case.tensors.get("baseline") {
        Some(b) => ig.with_baseline(b.clone()),
        None => ig,
    }))
}

fn noise_tunnel(case: &CaseView<'_>, reduction: NoiseReduction) -> Option<Box<dyn Method>> {
    let settings = NoiseTunnelSettings { reduction, batch_size: 5, ..Default::default() };
    let nt = NoiseTunnel::new(Box::new(Gradient::default()), settings).ok()?;
    Some(Box::new(nt.with_noise(case.tensors.get("noise")?.clone()).ok()?))
}

fn gradcam(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    let p = case.params;
    if p["relu_attributions"].as_bool() != Some(true) {
        return None;
    }
    let upsample = case.method == "gradcam_upsampled";
    if upsample
        && (p["interpolate_mode"].as_str() != Some("bilinear")
            || p["align_corners"].as_bool() != Some(false))
    {
        return None;
    }
    let settings = GradCamSettings {
        layer: Some(p["layer"].as_str()?.to_string()),
        upsample,
        batch_size: 3,
        ..Default::default()
    };
    Some(Box::new(GradCam::new(settings).ok()?))
}

fn occlusion(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    let list = |key: &str| -> Option<Vec<usize>> {
        case.params[key].as_array()?.iter().map(|v| v.as_u64().map(|v| v as usize)).collect()
    };
    let settings = OcclusionSettings {
        window: list("window")?,
        stride: list("strides")?,
        baseline: case.params["baseline"].as_f64()?,
        batch_size: 100,
    };
    Some(Box::new(Occlusion::new(settings).ok()?))
}

fn cgi(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    if case.params["comparison"].as_str() != Some("elementwise")
        || case.params["classes"].as_str() != Some("all")
    {
        return None;
    }
    let settings =
        CgiSettings { comparison: CgiComparison::Elementwise, batch_size: 7, ..Default::default() };
    Some(Box::new(Cgi::new(settings).ok()?))
}
