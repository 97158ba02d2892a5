//! The crate's error type: every user-reachable failure is a typed variant with its fields.

use thiserror::Error;

/// Errors of the metrics: malformed inputs or invalid parameters. Degenerate but well-formed
/// inputs (a constant map) are *not* errors; they are reported in
/// [`Similarity::degeneracy`](crate::Similarity) instead.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    /// A map (or vector) has no elements.
    #[error("empty input: `{name}` has no elements")]
    Empty {
        /// Which argument was empty.
        name: &'static str,
    },
    /// Two inputs that must have the same number of elements do not.
    #[error("length mismatch: first input has {left} elements, second has {right}")]
    LengthMismatch {
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// A slice's length does not match the dimensions it was given with.
    #[error("shape mismatch: dimensions {dims} need {expected} elements, got {actual}")]
    ShapeMismatch {
        /// The dimensions, printed as `[C,H,W]` or `[H,W]`.
        dims: String,
        /// Number of elements the dimensions imply.
        expected: usize,
        /// Number of elements supplied.
        actual: usize,
    },
    /// An input contains NaN or an infinity.
    #[error("non-finite value {value} at index {index} of `{name}`")]
    NonFinite {
        /// Which argument.
        name: &'static str,
        /// Flat index of the first offending element.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A map is too small for the metric (SSIM window, HOG block, ...).
    #[error("map of {height}x{width} is too small for {metric}: needs at least {min_height}x{min_width}")]
    MapTooSmall {
        /// The metric that needs the larger map.
        metric: &'static str,
        /// Map height.
        height: usize,
        /// Map width.
        width: usize,
        /// Smallest accepted height.
        min_height: usize,
        /// Smallest accepted width.
        min_width: usize,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What the valid range is.
        reason: &'static str,
    },
    /// A metric name that [`Metric::parse`](crate::Metric::parse) does not know.
    #[error("unknown metric `{name}`; known metrics: {known}")]
    UnknownMetric {
        /// The name that was given.
        name: String,
        /// Comma-separated list of the known names.
        known: String,
    },
    /// A ground-truth region lies (partly) outside the map or has no pixels.
    #[error("invalid region: {reason}")]
    InvalidRegion {
        /// What is wrong with it.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, EvalError>;

/// Fails with [`EvalError::NonFinite`] at the first NaN or infinity of `values`.
pub(crate) fn ensure_finite(name: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EvalError::NonFinite { name, index, value: values[index] }),
        None => Ok(()),
    }
}

/// Fails with [`EvalError::Empty`] when `values` is empty.
pub(crate) fn ensure_nonempty(name: &'static str, values: &[f64]) -> Result<()> {
    if values.is_empty() {
        Err(EvalError::Empty { name })
    } else {
        Ok(())
    }
}

/// Validates a pair of flat inputs: both non-empty, same length, finite.
pub(crate) fn ensure_pair(a: &[f64], b: &[f64]) -> Result<()> {
    ensure_nonempty("a", a)?;
    ensure_nonempty("b", b)?;
    if a.len() != b.len() {
        return Err(EvalError::LengthMismatch { left: a.len(), right: b.len() });
    }
    ensure_finite("a", a)?;
    ensure_finite("b", b)
}
