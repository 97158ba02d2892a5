//! Part 1: gradient family, CAM methods, perturbation methods, CGI.

use skepsis_attr::{registry, Method};

use super::CaseView;

pub fn method_for(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    match case.method {
        "gradient" if case.no_params() => registry::parse("gradient").ok(),
        "gradient_x_input" if case.no_params() => registry::parse("gradient-x-input").ok(),
        _ => None,
    }
}
