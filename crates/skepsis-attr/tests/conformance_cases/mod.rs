//! Maps a conformance case (library method name, parameters, stored tensors) to the
//! skepsis method that must reproduce it. Part 1 (gradient family, CAM, perturbation, CGI)
//! and part 2 (modified backpropagation) each own one file.

use std::collections::HashMap;

use candle_core::Tensor;
use skepsis_attr::Method;

mod part1;
mod part2;

/// What a case offers for building its method.
pub struct CaseView<'a> {
    /// The case's method name as in cases.json (for input-invariance cases: the inner
    /// method).
    pub method: &'a str,
    pub params: &'a serde_json::Value,
    /// Stored tensors by role (`input`, `target`, `baseline`, `noise`, `alphas`, ...).
    pub tensors: &'a HashMap<String, Tensor>,
}

impl CaseView<'_> {
    /// Whether the case has no parameters.
    pub fn no_params(&self) -> bool {
        self.params.as_object().is_none_or(|m| m.is_empty())
    }
}

/// The skepsis method for the case, or `None` when skepsis does not implement it yet.
pub fn method_for(case: &CaseView<'_>) -> Option<Box<dyn Method>> {
    part1::method_for(case).or_else(|| part2::method_for(case))
}
