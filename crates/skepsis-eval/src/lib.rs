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
//!
//! Maps are plain row-major `&[f64]` slices of one sample with [`MapDims`]; nothing here
//! depends on a tensor library or device. Degenerate inputs (constant maps) never yield NaN:
//! they are reported in [`Similarity::degeneracy`] / [`GroundTruthScore::constant_map`].

mod dims;
mod error;
pub mod ground_truth;
mod metric;
pub mod normalize;
pub mod similarity;

pub use dims::MapDims;
pub use error::{EvalError, Result};
pub use ground_truth::GroundTruthScore;
pub use metric::{compare, compare_batch, compare_with, CompareOptions, Metric};
pub use normalize::{normalize, Normalization, Normalized};
pub use similarity::{Degeneracy, Similarity};
