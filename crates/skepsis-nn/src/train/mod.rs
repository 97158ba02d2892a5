//! Training with the same forward and backward engine the attribution methods use:
//! cross-entropy on logits, Adam or SGD, seeded shuffling, mini-batches, train and
//! held-out accuracy per epoch, early stop at an accuracy threshold, best model kept.

mod optim;
mod progress;

pub use optim::{Optimizer, OptimizerConfig};
pub use progress::{Console, Progress, Silent};

use std::time::Instant;

use candle_core::{DType, Tensor};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::init::layer_rng;
use crate::{BackwardPass, Error, Model, Result};

/// Settings of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub optimizer: OptimizerConfig,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Stop once the epoch's training accuracy and the held-out accuracy (when a held-out
    /// set is given) both reach this value.
    pub target_accuracy: Option<f64>,
    /// Seeds the shuffling of every epoch.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: OptimizerConfig::adam(1e-3),
            batch_size: 64,
            max_epochs: 10,
            target_accuracy: None,
            seed: 0,
        }
    }
}

/// Images `[N, ...]` and their class indices.
#[derive(Clone, Copy, Debug)]
pub struct LabelledData<'a> {
    pub images: &'a Tensor,
    pub labels: &'a [usize],
}

/// What happened in one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's mini-batches.
    pub train_loss: f64,
    /// Accuracy on the mini-batches as they were seen (weights changing during the epoch,
    /// as Keras and most training logs report it).
    pub train_accuracy: f64,
    pub heldout_accuracy: Option<f64>,
    pub seconds: f64,
}

/// The outcome of [`train`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub config: TrainConfig,
    pub epochs: Vec<EpochRecord>,
    /// Epoch (1-based) of the returned model: best held-out accuracy, or best training
    /// accuracy without a held-out set.
    pub best_epoch: usize,
    /// Accuracy of the returned model on the full training set (one evaluation pass).
    pub final_train_accuracy: f64,
    pub final_heldout_accuracy: Option<f64>,
    /// Whether `target_accuracy` was reached.
    pub reached_target: bool,
}

/// Trains a copy of `model` and returns the best model seen with the report.
pub fn train(
    model: &Model,
    data: LabelledData<'_>,
    heldout: Option<LabelledData<'_>>,
    config: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<(Model, TrainReport)> {
    check_data(model, data, "training")?;
    if let Some(h) = heldout {
        check_data(model, h, "held-out")?;
    }
    if config.batch_size == 0 || config.max_epochs == 0 {
        return Err(Error::parameter("training", "batch_size/max_epochs", "must be at least 1"));
    }
    if let Some(t) = config.target_accuracy {
        if !(0.0..=1.0).contains(&t) {
            return Err(Error::parameter("training", "target_accuracy", "must be in [0, 1]"));
        }
    }
    let keys: Vec<String> = model.trainable_parameters().into_iter().map(|(k, _)| k).collect();
    let mut optimizer = Optimizer::new(config.optimizer.clone(), keys.len())?;
    let mut current = model.clone();
    let mut best: Option<(f64, usize, Model)> = None;
    let mut epochs = Vec::new();
    let mut reached_target = false;
    let n = data.labels.len();
    let steps = n.div_ceil(config.batch_size);
    for epoch in 1..=config.max_epochs {
        let started = Instant::now();
        progress.start(steps as u64, &format!("epoch {epoch}/{}", config.max_epochs));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut layer_rng(config.seed, epoch));
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        for chunk in order.chunks(config.batch_size) {
            let (loss, hits) = train_step(&mut current, &keys, &mut optimizer, data, chunk)?;
            loss_sum += loss * chunk.len() as f64;
            correct += hits;
            progress.advance(1);
        }
        progress.finish();
        let heldout_accuracy =
            heldout.map(|h| accuracy(&current, h, config.batch_size.max(256))).transpose()?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / n as f64,
            train_accuracy: correct as f64 / n as f64,
            heldout_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress.message(&format!(
            "epoch {epoch}: loss {:.4}, train accuracy {:.4}{}, {:.1}s",
            record.train_loss,
            record.train_accuracy,
            heldout_accuracy.map_or(String::new(), |a| format!(", held-out accuracy {a:.4}")),
            record.seconds
        ));
        if !record.train_loss.is_finite() {
            return Err(Error::parameter(
                "training",
                "optimizer",
                "the loss diverged (NaN or infinite); lower the learning rate",
            ));
        }
        let score = heldout_accuracy.unwrap_or(record.train_accuracy);
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, epoch, current.clone()));
        }
        let done = config
            .target_accuracy
            .is_some_and(|t| record.train_accuracy >= t && heldout_accuracy.is_none_or(|a| a >= t));
        epochs.push(record);
        if done {
            reached_target = true;
            best = Some((score, epoch, current.clone()));
            break;
        }
    }
    let (_, best_epoch, best_model) = best.expect("at least one epoch ran");
    let final_train_accuracy = accuracy(&best_model, data, config.batch_size.max(256))?;
    let final_heldout_accuracy =
        heldout.map(|h| accuracy(&best_model, h, config.batch_size.max(256))).transpose()?;
    let report = TrainReport {
        config: config.clone(),
        epochs,
        best_epoch,
        final_train_accuracy,
        final_heldout_accuracy,
        reached_target,
    };
    Ok((best_model, report))
}

fn check_data(model: &Model, data: LabelledData<'_>, what: &str) -> Result<()> {
    let n = data.images.dims().first().copied().unwrap_or(0);
    if n == 0 || n != data.labels.len() {
        return Err(Error::InvalidInput(format!(
            "{what} data: {n} images but {} labels (need the same positive number)",
            data.labels.len()
        )));
    }
    let classes = model.num_classes()?;
    if let Some(bad) = data.labels.iter().find(|&&l| l >= classes) {
        return Err(Error::InvalidInput(format!(
            "{what} data: label {bad} but model '{}' has {classes} classes",
            model.name()
        )));
    }
    Ok(())
}

/// One optimizer step on the images `indices`; returns (mean loss, correct predictions).
fn train_step(
    model: &mut Model,
    keys: &[String],
    optimizer: &mut Optimizer,
    data: LabelledData<'_>,
    indices: &[usize],
) -> Result<(f64, usize)> {
    let device = data.images.device();
    let idx = Tensor::from_vec(
        indices.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        indices.len(),
        device,
    )?;
    let x = data.images.index_select(&idx, 0)?.to_dtype(model.dtype())?;
    let labels: Vec<usize> = indices.iter().map(|&i| data.labels[i]).collect();
    let trace = model.trace(&x)?;
    let (loss, hits, seed) = cross_entropy(trace.logits(), &labels)?;
    let out = BackwardPass::new(model, &trace)
        .parameter_gradients()
        .without_input_relevance()
        .run(&seed)?;
    let params: Vec<Tensor> = model.trainable_parameters().into_iter().map(|(_, t)| t).collect();
    let mut grads = Vec::with_capacity(keys.len());
    for key in keys {
        let g = out.parameter_gradients.iter().find(|(k, _)| k == key).map(|(_, g)| g.clone());
        grads.push(match g {
            Some(g) => g,
            None => params[grads.len()].zeros_like()?,
        });
    }
    let updated = optimizer.update(&params, &grads)?;
    for (key, t) in keys.iter().zip(updated) {
        model.set_tensor(key, t)?;
    }
    Ok((loss, hits))
}

/// Mean cross-entropy of softmax(logits) against `labels`, the number of correct argmax
/// predictions, and the gradient of the mean loss with respect to the logits,
/// `(softmax(logits) - one_hot(labels)) / N`.
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<(f64, usize, Tensor)> {
    let (n, k) = logits.dims2()?;
    let rows = logits.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let mut grad = Vec::with_capacity(n * k);
    let (mut loss, mut hits) = (0.0, 0);
    for (row, &y) in rows.iter().zip(labels) {
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        loss += sum.ln() + max - row[y];
        if argmax(row) == y {
            hits += 1;
        }
        for (j, v) in row.iter().enumerate() {
            let p = (v - max).exp() / sum;
            grad.push((p - if j == y { 1.0 } else { 0.0 }) / n as f64);
        }
    }
    let grad = Tensor::from_vec(grad, (n, k), logits.device())?.to_dtype(logits.dtype())?;
    Ok((loss / n as f64, hits, grad))
}

/// Index of the largest value (the first one on ties).
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// The predicted class of every image, evaluated in batches of `batch_size`.
pub fn predict(model: &Model, images: &Tensor, batch_size: usize) -> Result<Vec<usize>> {
    let n = images.dims()[0];
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let len = batch_size.max(1).min(n - start);
        let x = images.narrow(0, start, len)?.to_dtype(model.dtype())?;
        let logits = model.forward(&x)?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        out.extend(logits.iter().map(|r| argmax(r)));
        start += len;
    }
    Ok(out)
}

/// Fraction of images whose predicted class equals the label.
pub fn accuracy(model: &Model, data: LabelledData<'_>, batch_size: usize) -> Result<f64> {
    let predictions = predict(model, data.images, batch_size)?;
    let correct = predictions.iter().zip(data.labels).filter(|(p, l)| p == l).count();
    Ok(correct as f64 / data.labels.len().max(1) as f64)
}
