//! Similarity metrics between two saliency maps of one sample (Adebayo et al. 2018, section
//! "Similarity metrics"; Wang et al. 2004 for SSIM; Dalal & Triggs 2005 for HOG).
//!
//! Every function here compares *one* pair of maps; nothing is normalized over a batch
//! (Quantus' batch-wide max normalization is a known defect, reference-protocols.md section 6).

mod correlation;
mod entropy;
mod hog;
mod rank;
mod ssim;
mod topk;

pub use correlation::{cosine, mse, pearson};
pub use entropy::{discrete_entropy, entropy_rise, ENTROPY_BINS};
pub use hog::{hog, hog_similarity, HogOptions};
pub(crate) use rank::spearman_with_ranks;
pub use rank::{average_ranks, spearman};
pub use ssim::{ssim, SsimCovariance, SsimOptions};
pub(crate) use ssim::{ssim_with_moments, LocalMoments};
pub use topk::{top_k_intersection, TopK};

use serde::{Deserialize, Serialize};

/// The value of a similarity metric for one pair of maps, and whether the pair was degenerate.
///
/// A pair is *degenerate* when at least one map is constant (every element equal) after the
/// metric's normalization. Correlations (Pearson, Spearman) are then undefined (0/0; scipy
/// returns NaN) and rank or structure comparisons carry no information. skepsis never returns
/// NaN: `value` is always finite, and `degeneracy` says which map was constant.
///
/// Fallback for undefined metrics (Pearson, Spearman, HOG-Spearman, cosine of a zero map):
/// `value = 1.0` when both maps are constant and elementwise equal,
/// `0.0` otherwise ("no measurable association"). Metrics that stay defined on constant maps
/// (SSIM, MSE, top-k, cosine of a non-zero constant) return their ordinary value and still
/// report the degeneracy, so checks can count or exclude such pairs uniformly. eMPRT's
/// [`entropy_rise`] documents its own fallback (0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    /// The metric's value (finite).
    pub value: f64,
    /// `Some` when at least one map was constant; see the type's documentation.
    pub degeneracy: Option<Degeneracy>,
}

impl Similarity {
    /// A regular, non-degenerate value.
    pub fn regular(value: f64) -> Self {
        Similarity { value, degeneracy: None }
    }

    /// True when the pair was degenerate.
    pub fn is_degenerate(&self) -> bool {
        self.degeneracy.is_some()
    }
}

/// Which map of a degenerate pair was constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Degeneracy {
    /// Only the first map is constant.
    FirstConstant,
    /// Only the second map is constant.
    SecondConstant,
    /// Both maps are constant.
    BothConstant,
}

impl Degeneracy {
    /// Degeneracy from the constancy of the two maps; `None` when neither is constant.
    pub fn from_flags(first_constant: bool, second_constant: bool) -> Option<Self> {
        match (first_constant, second_constant) {
            (false, false) => None,
            (true, false) => Some(Degeneracy::FirstConstant),
            (false, true) => Some(Degeneracy::SecondConstant),
            (true, true) => Some(Degeneracy::BothConstant),
        }
    }

    /// Combines two degeneracy reports of the same pair (a map is constant if either says so).
    pub(crate) fn merge(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        let first = |d: Option<Self>| {
            matches!(d, Some(Degeneracy::FirstConstant | Degeneracy::BothConstant))
        };
        let second = |d: Option<Self>| {
            matches!(d, Some(Degeneracy::SecondConstant | Degeneracy::BothConstant))
        };
        Degeneracy::from_flags(first(a) || first(b), second(a) || second(b))
    }
}

/// True when every element equals the first one (an empty slice counts as constant).
pub(crate) fn is_constant(values: &[f64]) -> bool {
    match values.first() {
        Some(&first) => values.iter().all(|&v| v == first),
        None => true,
    }
}

/// The documented fallback of an undefined metric: 1 for elementwise-equal maps, else 0.
pub(crate) fn fallback(a: &[f64], b: &[f64], degeneracy: Degeneracy) -> Similarity {
    let value = if a == b { 1.0 } else { 0.0 };
    Similarity { value, degeneracy: Some(degeneracy) }
}
