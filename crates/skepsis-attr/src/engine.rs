//! Batched backward walks seeded at the explained logit.

use candle_core::Tensor;
use skepsis_nn::{BackwardPass, Model, RuleMap};

use crate::{Error, Result};

/// One-hot rows `[N, K]` selecting `targets`, in the dtype and device of `like`.
pub fn one_hot(targets: &[usize], classes: usize, like: &Tensor) -> Result<Tensor> {
    let mut v = vec![0f64; targets.len() * classes];
    for (i, &t) in targets.iter().enumerate() {
        if t >= classes {
            return Err(Error::InvalidInput(format!(
                "target class {t} but the model has {classes} outputs"
            )));
        }
        v[i * classes + t] = 1.0;
    }
    Ok(Tensor::from_vec(v, (targets.len(), classes), like.device())?.to_dtype(like.dtype())?)
}

/// Relevance at the input of `d f_t / d x` with `rules` (the gradient when `None`),
/// computed in chunks of at most `batch_size` samples; also returns the explained logits.
pub fn input_relevance(
    model: &Model,
    x: &Tensor,
    targets: &[usize],
    rules: Option<&RuleMap>,
    batch_size: usize,
) -> Result<(Tensor, Vec<f64>)> {
    let n = x.dims()[0];
    if targets.len() != n {
        return Err(Error::InvalidInput(format!("{} targets for {n} inputs", targets.len())));
    }
    let chunk = batch_size.max(1);
    let mut maps = Vec::with_capacity(n.div_ceil(chunk));
    let mut logits = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let xs = x.narrow(0, start, len)?;
        let trace = model.trace(&xs)?;
        let out = trace.logits();
        let seed = one_hot(&targets[start..start + len], out.dims()[1], out)?;
        logits.extend((out * &seed)?.sum(1)?.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?);
        let mut pass = BackwardPass::new(model, &trace);
        if let Some(r) = rules {
            pass = pass.rules(r);
        }
        maps.push(pass.run(&seed)?.relevance);
        start += len;
    }
    let map = if maps.len() == 1 { maps.remove(0) } else { Tensor::cat(&maps, 0)? };
    Ok((map, logits))
}
