//! Part 2: modified backpropagation (Guided Backprop, DeconvNet, Guided GradCAM, LRP,
//! DeepLIFT, DeepSHAP). Every case is built through the registry's spec strings, so the
//! conformance run also checks the spec names; only DeepSHAP's stored reference set is
//! passed in directly.

use skepsis_attr::{modified_specs, registry, DeepShap, Method};

use super::CaseView;

fn param_str<'a>(case: &'a CaseView<'_>, key: &str) -> Option<&'a str> {
    case.params.get(key).and_then(|v| v.as_str())
}

fn param_f64(case: &CaseView<'_>, key: &str) -> Option<f64> {
    case.params.get(key).and_then(|v| v.as_f64())
}

/// The skepsis spec of an LRP case (zennit composite or single rule).
fn lrp_spec(case: &CaseView<'_>) -> Option<String> {
    let stabilizer = param_f64(case, "stabilizer").unwrap_or(1e-6);
    if let Some(composite) = param_str(case, "composite") {
        let name = match composite {
            "EpsilonPlusFlat" => "epsilon-plus-flat",
            "EpsilonAlpha2Beta1Flat" => "epsilon-alpha2-beta1-flat",
            "EpsilonGammaBox" => "epsilon-gamma-box",
            _ => return None,
        };
        let mut spec = format!("lrp:composite={name},stabilizer={stabilizer:e}");
        for key in ["epsilon", "gamma", "low", "high"] {
            if let Some(v) = param_f64(case, key) {
                spec.push_str(&format!(",{key}={v:e}"));
            }
        }
        return Some(spec);
    }
    Some(match param_str(case, "rule")? {
        "Epsilon" => format!("lrp:rule=epsilon,epsilon={:e}", param_f64(case, "epsilon")?),
        "ZPlus" => format!("lrp:rule=zplus,stabilizer={stabilizer:e}"),
        "Gamma" => {
            format!(
                "lrp:rule=gamma,gamma={:e},stabilizer={stabilizer:e}",
                param_f64(case, "gamma")?
            )
        }
        "AlphaBeta" => format!(
            "lrp:rule=alpha-beta,alpha={:e},beta={:e},stabilizer={stabilizer:e}",
            param_f64(case, "alpha")?,
            param_f64(case, "beta")?
        ),
        _ => return None,
    })
}

fn deeplift_spec(case: &CaseView<'_>) -> Option<String> {
    let rule = match param_str(case, "rule").unwrap_or("rescale") {
        "rescale" => "rescale",
        "reveal_cancel" | "reveal-cancel" => "reveal-cancel",
        _ => return None,
    };
    let maxpool = param_str(case, "maxpool").unwrap_or("gradient");
    Some(format!("rule={rule},maxpool={maxpool}"))
}

pub fn method_for(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    let spec = match case.method {
        "guided_backprop" if case.no_params() => "guided-backprop".to_string(),
        "deconvnet" if case.no_params() => "deconvnet".to_string(),
        "guided_gradcam" => {
            if param_str(case, "interpolate_mode") != Some("bilinear") {
                return None;
            }
            format!("guided-gradcam:layer={}", param_str(case, "layer")?)
        }
        "lrp" => lrp_spec(case)?,
        "deeplift" => {
            if param_str(case, "baseline").is_some_and(|b| b != "zero") {
                return None;
            }
            format!("deeplift:{}", deeplift_spec(case)?)
        }
        "deepliftshap" => {
            let pool = case.tensors.get("baseline")?.clone();
            let k = pool.dims()[0];
            let spec = format!("deepshap:references={k},{}", deeplift_spec(case)?);
            let params = registry::Params::parse(&spec).ok()?;
            let method = modified_specs::deepshap_from(&params)
                .unwrap_or_else(|e| panic!("spec '{spec}': {e}"));
            return Some(Box::new(DeepShap { pool: Some(pool), ..method }));
        }
        _ => return None,
    };
    Some(registry::parse(&spec).unwrap_or_else(|e| panic!("spec '{spec}': {e}")))
}
