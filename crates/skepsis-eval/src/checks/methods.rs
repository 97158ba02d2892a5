//! The methods a check runs: the user's specs plus the control baselines, built through the
//! attribution registry only (so every registered method works).

use skepsis_attr::{registry, Method};

use super::error::{CheckError, CheckResult};
use super::report::MethodRecord;

/// Registry name of the uniform random-map baseline.
pub const RANDOM_MAP: &str = "random";
/// Registry name of the Sobel edge-detector baseline.
pub const EDGE_DETECTOR: &str = "sobel";

/// Splits a comma-separated method list whose specs may themselves hold `key=value`
/// parameters separated by commas: a piece that contains `=` but no `:` continues the
/// previous spec. `gradient,ig:steps=32,rule=left,guided-backprop` gives `gradient`,
/// `ig:steps=32,rule=left` and `guided-backprop`.
pub fn split_method_list(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match out.last_mut() {
            Some(prev) if piece.contains('=') && !piece.contains(':') => {
                prev.push(',');
                prev.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// Which control a method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Not a control: a real attribution method.
    None,
    /// The uniform random map; its seed is re-drawn per model so two models' maps are
    /// independent (a fixed seed would make "random vs random" identical).
    RandomMap,
    /// The Sobel edge detector (model-independent).
    Edges,
}

/// One method of a check.
pub(crate) struct MethodEntry {
    /// Label in records (the spec as given).
    pub label: String,
    pub control: Control,
    /// Whether the spec fixed its own seed (then the random map keeps it).
    seeded: bool,
    method: Box<dyn Method>,
}

impl MethodEntry {
    fn new(spec: &str) -> CheckResult<Self> {
        let method = registry::parse(spec)?;
        let params = registry::Params::parse(spec)?;
        let canonical = registry::lookup(&params.method)?.name;
        let control = match canonical {
            RANDOM_MAP => Control::RandomMap,
            EDGE_DETECTOR => Control::Edges,
            _ => Control::None,
        };
        Ok(MethodEntry {
            label: spec.trim().to_string(),
            control,
            seeded: params.raw("seed").is_some(),
            method,
        })
    }

    /// Whether the method is a control baseline.
    pub fn is_baseline(&self) -> bool {
        self.control != Control::None
    }

    /// The method to run on "model variant" `variant` (a randomization step, the random-label
    /// model, ...). Only the unseeded random map changes with the variant: its seed becomes
    /// `variant`.
    pub fn instance(&self, variant: u64) -> CheckResult<MethodInstance<'_>> {
        if self.control == Control::RandomMap && !self.seeded {
            let spec = if self.label.contains(':') {
                format!("{},seed={variant}", self.label)
            } else {
                format!("{}:seed={variant}", self.label)
            };
            return Ok(MethodInstance::Owned(registry::parse(&spec)?));
        }
        Ok(MethodInstance::Borrowed(self.method.as_ref()))
    }

    pub fn record(&self) -> MethodRecord {
        MethodRecord {
            label: self.label.clone(),
            name: self.method.name(),
            baseline: self.is_baseline(),
        }
    }
}

/// A method borrowed from its entry or built for one variant.
pub(crate) enum MethodInstance<'a> {
    Borrowed(&'a dyn Method),
    Owned(Box<dyn Method>),
}

impl MethodInstance<'_> {
    pub fn get(&self) -> &dyn Method {
        match self {
            MethodInstance::Borrowed(m) => *m,
            MethodInstance::Owned(m) => m.as_ref(),
        }
    }
}

/// Builds the user's methods and appends the random-map and edge-detector baselines (when
/// registered and not already listed). Labels must be unique.
pub(crate) fn prepare(specs: &[String]) -> CheckResult<Vec<MethodEntry>> {
    if specs.is_empty() {
        return Err(CheckError::option("methods", "give at least one method spec"));
    }
    let mut entries = Vec::with_capacity(specs.len() + 2);
    for spec in specs {
        let entry = MethodEntry::new(spec)?;
        if entries.iter().any(|e: &MethodEntry| e.label == entry.label) {
            return Err(CheckError::option("methods", format!("'{spec}' is listed twice")));
        }
        entries.push(entry);
    }
    for (name, control) in [(RANDOM_MAP, Control::RandomMap), (EDGE_DETECTOR, Control::Edges)] {
        if entries.iter().any(|e| e.control == control) || registry::lookup(name).is_err() {
            continue;
        }
        entries.push(MethodEntry::new(name)?);
    }
    Ok(entries)
}

/// Mixes a seed with a stream index (SplitMix64), for per-step and per-image random choices.
pub(crate) fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_lists_keep_spec_parameters_together() {
        assert_eq!(
            split_method_list("gradient, ig:steps=32,rule=left,guided-backprop"),
            vec!["gradient", "ig:steps=32,rule=left", "guided-backprop"]
        );
        assert_eq!(split_method_list(""), Vec::<String>::new());
    }

    #[test]
    fn baselines_are_appended_once() {
        let entries = prepare(&["gradient".to_string(), "random:seed=3".to_string()]).unwrap();
        let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, vec!["gradient", "random:seed=3", "sobel"]);
        assert!(!entries[0].is_baseline() && entries[1].is_baseline() && entries[2].is_baseline());
    }
}
