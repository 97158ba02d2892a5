//! skepsis-eval: the metrics of saliency-map sanity checks.
//!
//! - [`similarity`]: per-sample similarity metrics between two maps (Spearman, Pearson,
//!   cosine, MSE, SSIM, HOG, top-k intersection) and eMPRT's entropy (Adebayo et al. 2018;
//!   Wang et al. 2004; Dalal & Triggs 2005; Hedström et al. 2023).
//! - [`normalize`](mod@normalize): the per-sample normalizations applied before comparing
//!   (Adebayo et al. 2018; Binder et al. 2023).
//! - [`Metric`] and [`compare`]: named metric = normalization + comparison, for the checks to
//!   loop over.
//! - [`ground_truth`]: SMERF's AFL, MAFL and IoU against known regions (Kim et al. 2022).
//! - [`checks`]: the sanity checks themselves (model and data randomization, input
//!   invariance, random logit, rank-1 convergence) with records, verdicts and resumable
//!   output (Adebayo et al. 2018; Kindermans et al. 2019; Sixt et al. 2020; Hedström et al.
//!   2023).
//!
//! Maps are plain row-major `&[f64]` slices of one sample with [`MapDims`]; the metrics do not
//! depend on a tensor library or device (the checks do: they run models). Degenerate inputs (constant maps) never yield NaN:
//! they are reported in [`Similarity::degeneracy`] / [`GroundTruthScore::constant_map`].

pub mod checks;
mod dims;
mod error;
pub mod ground_truth;
mod metric;
pub mod normalize;
pub mod similarity;
pub mod smerf;

pub use dims::MapDims;
pub use error::{EvalError, Result};
pub use ground_truth::GroundTruthScore;
pub use metric::{compare, compare_batch, compare_with, CompareOptions, Metric, Reference};
pub use normalize::{normalize, Normalization, Normalized};
pub use similarity::{Degeneracy, Similarity};
