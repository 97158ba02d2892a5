//! Shared machinery: the images a check explains, the explained class, batched attribution
//! to host maps, per-sample comparison, and sMPRT's noisy copies.

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use skepsis_attr::{Method, Target};
use skepsis_data::Dataset;
use skepsis_nn::train::predict;
use skepsis_nn::Model;

use super::error::{CheckError, CheckResult};
use super::report::Record;
use crate::{CompareOptions, MapDims, Metric, Reference};

/// The images a check explains, with their labels when known.
#[derive(Debug, Clone)]
pub struct CheckData {
    /// Images `[N, ...input_shape]`.
    pub images: Tensor,
    /// One class index per image (needed by `TargetChoice::Label`).
    pub labels: Option<Vec<usize>>,
}

impl CheckData {
    /// Images without labels.
    pub fn from_images(images: Tensor) -> Self {
        CheckData { images, labels: None }
    }

    /// A data set's images and labels.
    pub fn from_dataset(data: &Dataset) -> Self {
        CheckData { images: data.images().clone(), labels: Some(data.labels().to_vec()) }
    }

    /// The first `n` images (all if fewer) in the model's dtype and device, and their labels.
    pub(crate) fn take(
        &self,
        n: usize,
        model: &Model,
    ) -> CheckResult<(Tensor, Option<Vec<usize>>)> {
        let total = self.images.dims().first().copied().unwrap_or(0);
        if n == 0 || total == 0 {
            return Err(CheckError::option("images", "the check needs at least one image"));
        }
        if let Some(labels) = &self.labels {
            if labels.len() != total {
                return Err(CheckError::option(
                    "data",
                    format!("{total} images but {} labels", labels.len()),
                ));
            }
        }
        let n = n.min(total);
        if self.images.dims()[1..] != *model.input_shape() {
            return Err(CheckError::option(
                "data",
                format!(
                    "images of shape {:?} do not fit model '{}' (input {:?})",
                    &self.images.dims()[1..],
                    model.name(),
                    model.input_shape()
                ),
            ));
        }
        let x = self.images.narrow(0, 0, n)?.to_dtype(model.dtype())?.to_device(&model.device())?;
        Ok((x, self.labels.as_ref().map(|l| l[..n].to_vec())))
    }
}

/// Which class a map explains (reference-protocols.md section 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetChoice {
    /// The argmax logit of the model being explained, re-chosen for every randomized or
    /// retrained model (Adebayo et al.'s code, the default).
    #[default]
    Predicted,
    /// The class the original (trained) model predicts, kept for every model.
    PredictedByOriginal,
    /// The image's label.
    Label,
}

impl TargetChoice {
    /// Parses `predicted`, `predicted-by-original` or `label`.
    pub fn parse(s: &str) -> CheckResult<Self> {
        match s.trim() {
            "predicted" => Ok(TargetChoice::Predicted),
            "predicted-by-original" => Ok(TargetChoice::PredictedByOriginal),
            "label" => Ok(TargetChoice::Label),
            other => Err(CheckError::option(
                "target",
                format!("'{other}' is not one of predicted, predicted-by-original, label"),
            )),
        }
    }

    /// The target for explaining `x`, given the original model's predictions and the labels.
    pub(crate) fn target(
        self,
        original_predictions: &[usize],
        labels: Option<&[usize]>,
    ) -> CheckResult<Target> {
        match self {
            TargetChoice::Predicted => Ok(Target::Predicted),
            TargetChoice::PredictedByOriginal => Ok(Target::Classes(original_predictions.to_vec())),
            TargetChoice::Label => labels
                .map(|l| Target::Classes(l.to_vec()))
                .ok_or_else(|| CheckError::option("target", "'label' needs data with labels")),
        }
    }
}

/// Options every similarity check shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOptions {
    /// Seed of every random choice (randomized weights, random classes, noise, random maps).
    pub seed: u64,
    /// Number of images explained (the first ones of the data).
    pub images: usize,
    /// Metrics computed on every pair of maps.
    pub metrics: Vec<Metric>,
    /// Images per `attribute` call (`None`: all images of a step in one call; methods chunk
    /// further by their own `batch_size`).
    pub batch_size: Option<usize>,
    /// Metric options (normalization override, SSIM, HOG, top-k).
    pub compare: CompareOptions,
    /// Maps of the first `examples` images of every step are kept in the output directory
    /// for figures ([`examples`](super::examples)); 0 keeps none.
    #[serde(default)]
    pub examples: usize,
}

impl Default for CheckOptions {
    /// Seed 0, 64 images, Spearman on |map|, signed Spearman and SSIM, one call per step.
    fn default() -> Self {
        CheckOptions {
            seed: 0,
            images: 64,
            metrics: vec![Metric::SpearmanAbs, Metric::SpearmanSigned, Metric::Ssim],
            batch_size: None,
            compare: CompareOptions::default(),
            examples: 0,
        }
    }
}

impl CheckOptions {
    pub(crate) fn validate(&self) -> CheckResult<()> {
        if self.images == 0 {
            return Err(CheckError::option("images", "must be at least 1"));
        }
        if self.metrics.is_empty() {
            return Err(CheckError::option("metrics", "give at least one metric"));
        }
        if self.batch_size == Some(0) {
            return Err(CheckError::option("batch_size", "must be at least 1"));
        }
        Ok(())
    }
}

/// Maps of `n` samples on the host, row-major, with their per-sample dimensions.
#[derive(Debug, Clone)]
pub(crate) struct Maps {
    pub values: Vec<f64>,
    pub dims: MapDims,
    pub targets: Vec<usize>,
}

impl Maps {
    pub fn n(&self) -> usize {
        self.targets.len()
    }

    pub fn sample(&self, i: usize) -> &[f64] {
        let len = self.dims.len();
        &self.values[i * len..(i + 1) * len]
    }
}

fn map_dims(dims: &[usize]) -> CheckResult<MapDims> {
    match dims {
        [_, c, h, w] => Ok(MapDims::channels(*c, *h, *w)),
        [_, h, w] => Ok(MapDims::plane(*h, *w)),
        [_, d] => Ok(MapDims::plane(1, *d)),
        other => Err(CheckError::option(
            "methods",
            format!("maps of shape {other:?} are not [N, C, H, W]"),
        )),
    }
}

/// The maps of `method` on `model` for `x`, in calls of at most `batch` images.
pub(crate) fn attribute(
    method: &dyn Method,
    model: &Model,
    x: &Tensor,
    target: &Target,
    batch: Option<usize>,
) -> CheckResult<Maps> {
    let n = x.dims()[0];
    let chunk = batch.unwrap_or(n).max(1);
    let (mut values, mut targets, mut dims) = (Vec::new(), Vec::with_capacity(n), None);
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let part = match target {
            Target::Classes(c) => Target::Classes(c[start..start + len].to_vec()),
            other => other.clone(),
        };
        let a = method.attribute(model, &x.narrow(0, start, len)?, &part)?;
        dims = Some(map_dims(a.map.dims())?);
        let flat = a.map.flatten_all()?;
        match flat.dtype() {
            // Widened while copied out (exact), without an f64 tensor in between.
            DType::F32 => values.extend(flat.to_vec1::<f32>()?.into_iter().map(f64::from)),
            _ => values.extend(flat.to_dtype(DType::F64)?.to_vec1::<f64>()?),
        }
        targets.extend(a.targets);
        start += len;
    }
    let dims = dims.ok_or_else(|| CheckError::option("images", "no images"))?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(CheckError::option(
            "methods",
            format!("{} produced a non-finite value (image {})", method.name(), i / dims.len()),
        ));
    }
    Ok(Maps { values, dims, targets })
}

/// One record per image and metric comparing `a` and `b` sample by sample.
pub(crate) fn compare_records(
    method: &str,
    step: (usize, &str),
    a: &Maps,
    b: &Maps,
    metrics: &[Metric],
    options: &CompareOptions,
) -> CheckResult<Vec<Record>> {
    ReferenceMaps::new(a, metrics, options)?.records(method, step, b)
}

/// Maps that many others are compared with (the original model's, at every randomization
/// step), prepared once per metric ([`Reference`]).
pub(crate) struct ReferenceMaps {
    dims: MapDims,
    n: usize,
    per_metric: Vec<(Metric, Reference)>,
}

impl ReferenceMaps {
    pub fn new(a: &Maps, metrics: &[Metric], options: &CompareOptions) -> CheckResult<Self> {
        let per_metric = metrics
            .iter()
            .map(|&metric| Ok((metric, Reference::new(metric, &a.values, a.dims, options)?)))
            .collect::<CheckResult<Vec<_>>>()?;
        Ok(ReferenceMaps { dims: a.dims, n: a.n(), per_metric })
    }

    /// One record per image and metric comparing these maps with `b`, sample by sample.
    pub fn records(
        &self,
        method: &str,
        (step_index, step): (usize, &str),
        b: &Maps,
    ) -> CheckResult<Vec<Record>> {
        if self.dims != b.dims || self.n != b.n() {
            return Err(CheckError::option(
                "methods",
                format!("{method}: maps of different shapes cannot be compared"),
            ));
        }
        let per_metric = self
            .per_metric
            .iter()
            .map(|(_, reference)| reference.compare(&b.values))
            .collect::<Result<Vec<_>, _>>()?;
        let mut records = Vec::with_capacity(self.n * per_metric.len());
        for image in 0..self.n {
            for ((metric, _), values) in self.per_metric.iter().zip(&per_metric) {
                records.push(Record {
                    method: method.to_string(),
                    step_index,
                    step: step.to_string(),
                    image,
                    metric: metric.name().to_string(),
                    value: values[image].value,
                    degenerate: values[image].is_degenerate(),
                });
            }
        }
        Ok(records)
    }
}

/// The argmax class of every image under `model`.
pub(crate) fn predictions(
    model: &Model,
    x: &Tensor,
    batch: Option<usize>,
) -> CheckResult<Vec<usize>> {
    Ok(predict(model, x, batch.unwrap_or(256))?)
}

/// sMPRT's noisy copies (Hedström et al. 2024): `samples` copies of every image with
/// Gaussian noise of std `sigma * (max(x_i) - min(x_i))` per image, drawn from ChaCha8 seeded
/// with `seed` (the same noise for every model). Sample-major: row `s * N + i` is copy `s` of
/// image `i`.
pub(crate) fn noisy_copies(
    x: &Tensor,
    samples: usize,
    sigma: f64,
    seed: u64,
) -> CheckResult<Tensor> {
    let n = x.dims()[0];
    let values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let per = values.len() / n.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(values.len() * samples);
    for _ in 0..samples {
        for image in values.chunks_exact(per) {
            let (lo, hi) = image
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let std = sigma * (hi - lo);
            out.extend(image.iter().map(|v| {
                let z: f64 = StandardNormal.sample(&mut rng);
                v + std * z
            }));
        }
    }
    let mut dims = x.dims().to_vec();
    dims[0] = n * samples;
    Ok(Tensor::from_vec(out, dims, x.device())?.to_dtype(x.dtype())?)
}

/// Averages sample-major maps of `samples` copies back to one map per image.
pub(crate) fn average_copies(maps: Maps, samples: usize) -> Maps {
    let n = maps.n() / samples.max(1);
    let len = maps.dims.len();
    let mut values = vec![0.0; n * len];
    for s in 0..samples {
        let block = &maps.values[s * n * len..(s + 1) * n * len];
        for (acc, v) in values.iter_mut().zip(block) {
            *acc += v / samples as f64;
        }
    }
    Maps { values, dims: maps.dims, targets: maps.targets[..n].to_vec() }
}
