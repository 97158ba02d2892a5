//! Row batching shared by the wrapper methods (Integrated Gradients, NoiseTunnel,
//! Expected Gradients, Occlusion, RISE, CGI).
//!
//! A wrapper describes its work as `total` rows (one row = one model input with one
//! explained class: an interpolation step, a noisy copy, an occluded copy, ...). The rows
//! are evaluated in consecutive chunks of at most `batch_size`; the caller builds each
//! chunk's inputs and receives each chunk's results on the host in float64, where the
//! wrappers accumulate in row order. Their results therefore do not depend on the chunk
//! size beyond the engine's own rounding: the linear layers' matrix products may round
//! differently for different batch sizes (last bits; tested in `tests/batching.rs`).

use std::ops::Range;

use candle_core::{DType, Tensor};
use skepsis_nn::{BackwardPass, Model};

use crate::engine::one_hot;
use crate::{Error, Result};

/// The inputs `[len, ...]` of a chunk of rows and the class explained by each row.
pub(crate) type Chunk = (Tensor, Vec<usize>);

/// Evaluates `d f_t / d x` for `total` rows in chunks of at most `batch_size`.
///
/// `build(rows)` returns the chunk's inputs and classes; `consume(rows, grads, logits)`
/// receives the gradients flattened row-major (`rows.len()` rows of equal length) and the
/// explained logit of every row.
pub(crate) fn gradient_rows(
    model: &Model,
    total: usize,
    batch_size: usize,
    mut build: impl FnMut(Range<usize>) -> Result<Chunk>,
    mut consume: impl FnMut(Range<usize>, &[f64], &[f64]) -> Result<()>,
) -> Result<()> {
    for rows in chunks(total, batch_size) {
        let (inputs, classes) = build(rows.clone())?;
        check_chunk(&inputs, &classes, &rows)?;
        let trace = model.trace(&inputs)?;
        let out = trace.logits();
        let seed = one_hot(&classes, out.dims()[1], out)?;
        let logits = to_host(&(out * &seed)?.sum(1)?)?;
        let grads = BackwardPass::new(model, &trace).run(&seed)?.relevance;
        consume(rows, &to_host(&grads)?, &logits)?;
    }
    Ok(())
}

/// Evaluates the explained logit `f_t(x)` for `total` rows in chunks of at most
/// `batch_size` (forward passes only); `consume(rows, logits)` gets one value per row.
pub(crate) fn logit_rows(
    model: &Model,
    total: usize,
    batch_size: usize,
    mut build: impl FnMut(Range<usize>) -> Result<Chunk>,
    mut consume: impl FnMut(Range<usize>, &[f64]) -> Result<()>,
) -> Result<()> {
    for rows in chunks(total, batch_size) {
        let (inputs, classes) = build(rows.clone())?;
        check_chunk(&inputs, &classes, &rows)?;
        let out = model.forward(&inputs)?;
        let seed = one_hot(&classes, out.dims()[1], &out)?;
        consume(rows, &to_host(&(out * &seed)?.sum(1)?)?)?;
    }
    Ok(())
}

/// The explained logit of every sample of `x` (`targets[n]` for sample `n`).
pub(crate) fn target_logits(
    model: &Model,
    x: &Tensor,
    targets: &[usize],
    batch_size: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(targets.len());
    logit_rows(
        model,
        targets.len(),
        batch_size,
        |r| Ok((x.narrow(0, r.start, r.len())?, targets[r].to_vec())),
        |_, l| {
            out.extend_from_slice(l);
            Ok(())
        },
    )?;
    Ok(out)
}

/// Every logit of every sample of `x` (`[N][classes]`), in chunks of `batch_size`.
pub(crate) fn all_logits(model: &Model, x: &Tensor, batch_size: usize) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(x.dims()[0]);
    for r in chunks(x.dims()[0], batch_size) {
        let logits = model.forward(&x.narrow(0, r.start, r.len())?)?;
        out.extend(logits.to_dtype(DType::F64)?.to_vec2::<f64>()?);
    }
    Ok(out)
}

/// Consecutive ranges of at most `batch_size` (at least 1) covering `0..total`.
pub(crate) fn chunks(total: usize, batch_size: usize) -> impl Iterator<Item = Range<usize>> {
    let step = batch_size.max(1);
    (0..total.div_ceil(step)).map(move |i| i * step..((i + 1) * step).min(total))
}

fn check_chunk(inputs: &Tensor, classes: &[usize], rows: &Range<usize>) -> Result<()> {
    let n = inputs.dims().first().copied().unwrap_or(0);
    if n != rows.len() || classes.len() != rows.len() {
        return Err(Error::InvalidInput(format!(
            "internal: a chunk of {} rows built {n} inputs and {} classes",
            rows.len(),
            classes.len()
        )));
    }
    Ok(())
}

/// Sample indices as a `u32` index tensor on the device of `like`.
pub(crate) fn index_tensor(indices: &[usize], like: &Tensor) -> Result<Tensor> {
    let v: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    Ok(Tensor::from_vec(v, indices.len(), like.device())?)
}

/// Every element of `t` in row-major order, as float64 on the host.
pub(crate) fn to_host(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// A tensor of `shape` from host values, in the dtype and on the device of `like`.
pub(crate) fn from_host(values: Vec<f64>, shape: &[usize], like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_vec(values, shape, like.device())?.to_dtype(like.dtype())?)
}

/// Number of elements of one sample of `x` (`x.dims()[1..]`).
pub(crate) fn sample_len(x: &Tensor) -> usize {
    x.dims().iter().skip(1).product()
}

/// Checks that `x` is a batch `[N, C, H, W]` (the image methods need one).
pub(crate) fn require_images(method: &str, x: &Tensor) -> Result<[usize; 4]> {
    match *x.dims() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::InvalidInput(format!(
            "{method} needs image inputs [N, C, H, W], got {:?}",
            x.dims()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_rows_in_order() {
        let c: Vec<_> = chunks(7, 3).collect();
        assert_eq!(c, vec![0..3, 3..6, 6..7]);
        assert_eq!(chunks(0, 3).count(), 0);
        assert_eq!(chunks(2, 0).collect::<Vec<_>>(), vec![0..1, 1..2]);
    }
}
