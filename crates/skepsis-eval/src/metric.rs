//! The named similarity metrics the checks loop over: each is one normalization followed by
//! one comparison, applied per sample.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dims::MapDims;
use crate::error::{EvalError, Result};
use crate::normalize::{normalize_unchecked, Normalization};
use crate::similarity::{
    cosine, hog_similarity, mse, pearson, spearman, ssim, top_k_intersection, Degeneracy,
    HogOptions, Similarity, SsimOptions, TopK,
};

/// A similarity metric of the sanity-checks literature together with its normalization.
/// Names are kebab-case (`spearman-abs`, `ssim-sc-exact`, ...) in [`Metric::parse`],
/// [`Metric::name`] and serde.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Spearman rank correlation of the raw maps, all elements (scipy.stats.spearmanr).
    Spearman,
    /// Spearman rank correlation after [`Normalization::AdebayoAbs`] (Adebayo et al. 2018,
    /// "absolute value" rank correlation).
    SpearmanAbs,
    /// Spearman rank correlation after [`Normalization::AdebayoSigned`] (Adebayo et al. 2018,
    /// "diverging" rank correlation).
    SpearmanSigned,
    /// Pearson correlation of the raw maps (scipy.stats.pearsonr).
    Pearson,
    /// Pearson correlation after [`Normalization::AdebayoAbs`].
    PearsonAbs,
    /// Cosine similarity of the raw maps (scale-invariant, so no normalization).
    Cosine,
    /// Mean squared error after [`Normalization::SecondMoment`] (Binder et al. 2023), so that
    /// the value does not depend on the maps' scale. A dissimilarity: 0 for equal maps.
    Mse,
    /// SSIM (Wang et al. 2004) after [`Normalization::MinMax`], `data_range = 1`, population
    /// moments, mean over channels (reference-protocols.md section 1, skepsis' default).
    Ssim,
    /// SSIM reproducing Adebayo et al.'s code exactly: as [`Metric::Ssim`] but with
    /// [`SsimOptions::sanity_checks_exact`] (`data_range = 2`, sample covariance).
    SsimScExact,
    /// HOG similarity (Dalal & Triggs 2005; Adebayo et al. 2018): Spearman of the HOG vectors
    /// of the [`Normalization::MinMax`]-scaled maps, [`HogOptions`] from the options.
    Hog,
    /// Top-k intersection of the pixel importances `sum_c |x|`
    /// ([`Normalization::AbsChannelSum`]); `k` from the options.
    Topk,
}

impl Metric {
    /// Every metric, in a stable order.
    pub const ALL: [Metric; 11] = [
        Metric::Spearman,
        Metric::SpearmanAbs,
        Metric::SpearmanSigned,
        Metric::Pearson,
        Metric::PearsonAbs,
        Metric::Cosine,
        Metric::Mse,
        Metric::Ssim,
        Metric::SsimScExact,
        Metric::Hog,
        Metric::Topk,
    ];

    /// The metric's kebab-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Spearman => "spearman",
            Metric::SpearmanAbs => "spearman-abs",
            Metric::SpearmanSigned => "spearman-signed",
            Metric::Pearson => "pearson",
            Metric::PearsonAbs => "pearson-abs",
            Metric::Cosine => "cosine",
            Metric::Mse => "mse",
            Metric::Ssim => "ssim",
            Metric::SsimScExact => "ssim-sc-exact",
            Metric::Hog => "hog",
            Metric::Topk => "topk",
        }
    }

    /// Parses a kebab-case name (surrounding whitespace ignored).
    ///
    /// Errors: [`EvalError::UnknownMetric`] listing the known names.
    pub fn parse(name: &str) -> Result<Metric> {
        let name = name.trim();
        Metric::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| EvalError::UnknownMetric {
            name: name.to_string(),
            known: Metric::ALL.map(|m| m.name()).join(", "),
        })
    }

    /// The normalization [`compare`] applies to both maps before this metric.
    pub fn normalization(&self) -> Normalization {
        match self {
            Metric::Spearman | Metric::Pearson | Metric::Cosine => Normalization::Identity,
            Metric::SpearmanAbs | Metric::PearsonAbs => Normalization::AdebayoAbs,
            Metric::SpearmanSigned => Normalization::AdebayoSigned,
            Metric::Mse => Normalization::SecondMoment,
            Metric::Ssim | Metric::SsimScExact | Metric::Hog => Normalization::MinMax,
            Metric::Topk => Normalization::AbsChannelSum,
        }
    }

    /// True for similarities (larger = more alike), false for the dissimilarity `mse`.
    pub fn higher_is_more_similar(&self) -> bool {
        !matches!(self, Metric::Mse)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self> {
        Metric::parse(s)
    }
}

/// Per-call options of [`compare_with`]; [`Default`] gives each metric's documented setting.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Replaces the metric's own [`Metric::normalization`] when set (for example
    /// [`Normalization::SecondMoment`] to follow Binder et al. 2023 for every metric).
    pub normalization: Option<Normalization>,
    /// SSIM options of [`Metric::Ssim`] ([`Metric::SsimScExact`] always uses
    /// [`SsimOptions::sanity_checks_exact`]).
    pub ssim: SsimOptions,
    /// HOG options of [`Metric::Hog`].
    pub hog: HogOptions,
    /// `k` of [`Metric::Topk`].
    pub top_k: TopK,
}

/// Compares one pair of maps of dimensions `dims` with `metric` and default options: both maps
/// are normalized per sample with [`Metric::normalization`], then compared.
///
/// Errors: empty or mismatched maps, non-finite values, maps too small for SSIM/HOG.
pub fn compare(metric: Metric, a: &[f64], b: &[f64], dims: MapDims) -> Result<Similarity> {
    compare_with(metric, a, b, dims, &CompareOptions::default())
}

/// [`compare`] with explicit options.
pub fn compare_with(
    metric: Metric,
    a: &[f64],
    b: &[f64],
    dims: MapDims,
    options: &CompareOptions,
) -> Result<Similarity> {
    dims.validate("a", a)?;
    dims.validate("b", b)?;
    let normalization = options.normalization.unwrap_or_else(|| metric.normalization());
    let na = normalize_unchecked(a, dims, normalization);
    let nb = normalize_unchecked(b, dims, normalization);
    let (x, y, d) = (&na.values, &nb.values, na.dims);
    let mut result = match metric {
        Metric::Spearman | Metric::SpearmanAbs | Metric::SpearmanSigned => spearman(x, y)?,
        Metric::Pearson | Metric::PearsonAbs => pearson(x, y)?,
        Metric::Cosine => cosine(x, y)?,
        Metric::Mse => mse(x, y)?,
        Metric::Ssim => ssim(x, y, d, &options.ssim)?,
        Metric::SsimScExact => ssim(x, y, d, &SsimOptions::sanity_checks_exact())?,
        Metric::Hog => hog_similarity(x, y, d, &options.hog)?,
        Metric::Topk => top_k_intersection(x, y, options.top_k)?,
    };
    // A raw constant map stays constant under every normalization, so the metric itself has
    // already flagged it; this also flags maps that only became constant by normalization.
    let raw = Degeneracy::from_flags(
        crate::similarity::is_constant(a),
        crate::similarity::is_constant(b),
    );
    result.degeneracy = Degeneracy::merge(result.degeneracy, raw);
    Ok(result)
}

/// Compares `n` pairs at once: `a` and `b` hold `n` maps of dimensions `dims` back to back
/// (`[N, ...]` row-major). Each pair is normalized and compared on its own (never across the
/// batch), in parallel with rayon; results are in sample order.
///
/// Errors: `a`, `b` not a whole number of maps or of different lengths, and every error of
/// [`compare_with`] (the first failing sample's).
pub fn compare_batch(
    metric: Metric,
    a: &[f64],
    b: &[f64],
    dims: MapDims,
    options: &CompareOptions,
) -> Result<Vec<Similarity>> {
    let per_map = dims.len();
    if per_map == 0 || a.is_empty() {
        return Err(EvalError::Empty { name: "a" });
    }
    if a.len() != b.len() {
        return Err(EvalError::LengthMismatch { left: a.len(), right: b.len() });
    }
    if a.len() % per_map != 0 {
        return Err(EvalError::ShapeMismatch {
            dims: format!("[N,{}]", &dims.to_string()[1..]),
            expected: (a.len() / per_map + 1) * per_map,
            actual: a.len(),
        });
    }
    a.par_chunks_exact(per_map)
        .zip(b.par_chunks_exact(per_map))
        .map(|(x, y)| compare_with(metric, x, y, dims, options))
        .collect()
}
