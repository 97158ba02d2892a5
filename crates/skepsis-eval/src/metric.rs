//! The named similarity metrics the checks loop over: each is one normalization followed by
//! one comparison, applied per sample.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dims::MapDims;
use crate::error::{EvalError, Result};
use crate::normalize::{normalize_unchecked, Normalization, Normalized};
use crate::similarity::{
    average_ranks, cosine, hog_similarity, is_constant, mse, pearson, spearman,
    spearman_with_ranks, ssim, ssim_with_moments, top_k_intersection, Degeneracy, HogOptions,
    LocalMoments, Similarity, SsimOptions, TopK,
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
    let result = measure(metric, options, &na.values, &PerMap::Nothing, &nb.values, na.dims)?;
    Ok(with_raw_degeneracy(result, a, b))
}

/// A raw constant map stays constant under every normalization, so the metric itself has
/// already flagged it; this also flags maps that only became constant by normalization.
fn with_raw_degeneracy(mut result: Similarity, a: &[f64], b: &[f64]) -> Similarity {
    let raw = Degeneracy::from_flags(is_constant(a), is_constant(b));
    result.degeneracy = Degeneracy::merge(result.degeneracy, raw);
    result
}

/// `metric` of the normalized maps `x` and `y` of dimensions `d`, with the work on `x` alone
/// done beforehand where `prepared` holds it.
fn measure(
    metric: Metric,
    options: &CompareOptions,
    x: &[f64],
    prepared: &PerMap,
    y: &[f64],
    d: MapDims,
) -> Result<Similarity> {
    let exact = SsimOptions::sanity_checks_exact();
    let ssim_options = if metric == Metric::SsimScExact { &exact } else { &options.ssim };
    match (metric, prepared) {
        (Metric::Spearman | Metric::SpearmanAbs | Metric::SpearmanSigned, PerMap::Ranks(r)) => {
            spearman_with_ranks(x, r, y)
        }
        (Metric::Spearman | Metric::SpearmanAbs | Metric::SpearmanSigned, _) => spearman(x, y),
        (Metric::Pearson | Metric::PearsonAbs, _) => pearson(x, y),
        (Metric::Cosine, _) => cosine(x, y),
        (Metric::Mse, _) => mse(x, y),
        (Metric::Ssim | Metric::SsimScExact, PerMap::Moments(m)) => {
            ssim_with_moments(x, m, y, d, ssim_options)
        }
        (Metric::Ssim | Metric::SsimScExact, _) => ssim(x, y, d, ssim_options),
        (Metric::Hog, _) => hog_similarity(x, y, d, &options.hog),
        (Metric::Topk, _) => top_k_intersection(x, y, options.top_k),
    }
}

/// Compares `n` pairs at once: `a` and `b` hold `n` maps of dimensions `dims` back to back
/// (`[N, ...]` row-major). Each pair is normalized and compared on its own (never across the
/// batch), in parallel with rayon; results are in sample order. The same as
/// [`compare_with`] on every pair.
///
/// Errors: `a`, `b` not a whole number of maps or of different lengths, and every error of
/// [`compare_with`] (of some failing sample).
pub fn compare_batch(
    metric: Metric,
    a: &[f64],
    b: &[f64],
    dims: MapDims,
    options: &CompareOptions,
) -> Result<Vec<Similarity>> {
    if dims.is_empty() || a.is_empty() {
        return Err(EvalError::Empty { name: "a" });
    }
    if a.len() != b.len() {
        return Err(EvalError::LengthMismatch { left: a.len(), right: b.len() });
    }
    Reference::new(metric, a, dims, options)?.compare(b)
}

/// One side of many comparisons under one metric, prepared once: every map validated and
/// normalized and, where the metric has work that depends on one map alone, that work done
/// (Spearman's average ranks; SSIM's local means and second moments, two of its five Gaussian
/// filters). The model randomization check compares the original model's maps with the maps
/// of every randomized model; it prepares the originals once instead of at every step.
///
/// `Reference::new(metric, a, dims, options)?.compare(b)` is [`compare_batch`] of `a`, `b`.
#[derive(Debug, Clone)]
pub struct Reference {
    metric: Metric,
    options: CompareOptions,
    dims: MapDims,
    maps: Vec<Prepared>,
}

/// One prepared map of a [`Reference`].
#[derive(Debug, Clone)]
struct Prepared {
    /// The map before normalization was constant.
    raw_constant: bool,
    /// The normalized map and its dimensions.
    normalized: Normalized,
    prepared: PerMap,
}

/// The work of a metric on one map alone.
#[derive(Debug, Clone)]
enum PerMap {
    Nothing,
    Ranks(Vec<f64>),
    Moments(LocalMoments),
}

impl Reference {
    /// Prepares the maps `maps` (`n` maps of dimensions `dims` back to back) for `metric`,
    /// in parallel.
    ///
    /// Errors: `maps` empty or not a whole number of maps, and every error of
    /// [`compare_with`] that concerns the first map alone.
    pub fn new(
        metric: Metric,
        maps: &[f64],
        dims: MapDims,
        options: &CompareOptions,
    ) -> Result<Reference> {
        let per_map = dims.len();
        if per_map == 0 || maps.is_empty() {
            return Err(EvalError::Empty { name: "a" });
        }
        whole_maps(maps, dims)?;
        let normalization = options.normalization.unwrap_or_else(|| metric.normalization());
        let maps = maps
            .par_chunks_exact(per_map)
            .map(|a| {
                dims.validate("a", a)?;
                let normalized = normalize_unchecked(a, dims, normalization);
                let x = &normalized.values;
                let prepared = match metric {
                    Metric::Spearman | Metric::SpearmanAbs | Metric::SpearmanSigned
                        if !is_constant(x) =>
                    {
                        PerMap::Ranks(average_ranks(x)?)
                    }
                    Metric::Ssim | Metric::SsimScExact => {
                        PerMap::Moments(LocalMoments::new(x, normalized.dims)?)
                    }
                    _ => PerMap::Nothing,
                };
                Ok(Prepared { raw_constant: is_constant(a), normalized, prepared })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Reference { metric, options: *options, dims, maps })
    }

    /// The number of maps.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// True when there are no maps (never, for a constructed reference).
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Compares map `i` of the reference with map `i` of `others` (as many maps of the same
    /// dimensions), in parallel; results are in sample order.
    ///
    /// Errors: `others` not as long as the reference's maps, and every error of
    /// [`compare_with`] that concerns the second map.
    pub fn compare(&self, others: &[f64]) -> Result<Vec<Similarity>> {
        let per_map = self.dims.len();
        let expected = self.maps.len() * per_map;
        if others.len() != expected {
            return Err(EvalError::LengthMismatch { left: expected, right: others.len() });
        }
        let normalization =
            self.options.normalization.unwrap_or_else(|| self.metric.normalization());
        self.maps
            .par_iter()
            .zip(others.par_chunks_exact(per_map))
            .map(|(a, b)| {
                self.dims.validate("b", b)?;
                let nb = normalize_unchecked(b, self.dims, normalization);
                let x = &a.normalized;
                let result = measure(
                    self.metric,
                    &self.options,
                    &x.values,
                    &a.prepared,
                    &nb.values,
                    x.dims,
                )?;
                let raw = Degeneracy::from_flags(a.raw_constant, is_constant(b));
                Ok(Similarity { degeneracy: Degeneracy::merge(result.degeneracy, raw), ..result })
            })
            .collect()
    }
}

/// `values` must hold a whole number of maps of dimensions `dims`.
fn whole_maps(values: &[f64], dims: MapDims) -> Result<()> {
    let per_map = dims.len();
    if values.len() % per_map != 0 {
        return Err(EvalError::ShapeMismatch {
            dims: format!("[N,{}]", &dims.to_string()[1..]),
            expected: (values.len() / per_map + 1) * per_map,
            actual: values.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Maps of every kind a check meets: smooth, noisy, quantized (rank ties), constant, and
    /// equal to the other side.
    fn maps(n: usize, len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        (0..n)
            .flat_map(|i| {
                let kind = i % 4;
                let values: Vec<f64> = (0..len)
                    .map(|j| match kind {
                        0 => (j as f64 * 0.37).sin() + 0.1 * next(),
                        1 => next(),
                        2 => (next() * 4.0).round(),
                        _ => 0.25,
                    })
                    .collect();
                values
            })
            .collect()
    }

    /// A prepared reference gives exactly [`compare_with`] on every pair, for every metric,
    /// on planes and multi-channel maps, with the metric's normalization or an override.
    #[test]
    fn a_prepared_reference_equals_comparing_each_pair() {
        for dims in [MapDims::plane(17, 16), MapDims::channels(3, 16, 18)] {
            let n = 9;
            let a = maps(n, dims.len(), 1);
            let mut b = maps(n, dims.len(), 2);
            // Pair 5 compares a map with itself.
            let len = dims.len();
            b[5 * len..6 * len].copy_from_slice(&a[5 * len..6 * len]);
            for override_ in [None, Some(Normalization::SecondMoment)] {
                let options = CompareOptions { normalization: override_, ..Default::default() };
                for metric in Metric::ALL {
                    let got = Reference::new(metric, &a, dims, &options).unwrap().compare(&b);
                    let got = got.unwrap();
                    assert_eq!(got.len(), n);
                    for (i, g) in got.iter().enumerate() {
                        let pair = |v: &[f64]| v[i * len..(i + 1) * len].to_vec();
                        let expected =
                            compare_with(metric, &pair(&a), &pair(&b), dims, &options).unwrap();
                        assert_eq!(*g, expected, "{metric} {dims} {override_:?} pair {i}");
                    }
                }
            }
        }
    }

    /// Bad batches are refused with the error of the map at fault.
    #[test]
    fn a_reference_refuses_bad_maps() {
        let dims = MapDims::plane(12, 12);
        let good = maps(2, dims.len(), 3);
        let options = CompareOptions::default();
        let new = |v: &[f64]| Reference::new(Metric::Ssim, v, dims, &options);
        assert!(matches!(new(&[]), Err(EvalError::Empty { .. })));
        assert!(matches!(new(&good[..200]), Err(EvalError::ShapeMismatch { .. })));
        let mut nan = good.clone();
        nan[150] = f64::NAN;
        assert!(new(&nan).is_err());
        let small = MapDims::plane(10, 10);
        assert!(matches!(
            Reference::new(Metric::Ssim, &good[..200], small, &options),
            Err(EvalError::MapTooSmall { .. })
        ));
        let reference = new(&good).unwrap();
        assert!(matches!(reference.compare(&good[..144]), Err(EvalError::LengthMismatch { .. })));
        assert!(reference.compare(&nan).is_err());
    }
}
