//! Shape operators: `Flatten`, `Reshape`, `Squeeze`, `Unsqueeze`.
//!
//! Each keeps the batch axis and reshapes one sample; the result is a `Flatten` layer when
//! a sample becomes a vector and a `Reshape { shape }` (per-sample shape) otherwise. Axes and
//! shapes must be constants: attributes before opset 13 (`Squeeze`/`Unsqueeze` axes), inputs
//! from opset 13 (and always for `Reshape`'s shape).

use super::build::{Converted, NodeCx};
use crate::{Layer, Result, ValueId};

fn reshaped(id: ValueId, shape: Vec<usize>) -> Converted {
    let layer =
        if shape.len() == 1 { Layer::Flatten } else { Layer::Reshape { shape: shape.clone() } };
    Converted::Layer { layer, inputs: vec![id], shape }
}

/// Normalizes `axis` (negative counts from the end) against a tensor of rank `rank`
/// (batch axis included) and rejects the batch axis.
fn non_batch_axis(cx: &NodeCx<'_, '_>, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(cx.error(format!("axis {axis} is out of range for rank {rank}")));
    }
    if a == 0 {
        return Err(cx.error("the batch axis (0) cannot be reshaped"));
    }
    Ok(a as usize)
}

/// `Flatten(axis)`: axis 1 -> `Flatten`; axis k > 1 keeps axes 1..k and flattens the rest.
pub fn flatten(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["axis"])?;
    cx.arity(1, 1)?;
    let (id, shape) = cx.dyn_input(0)?;
    let rank = shape.len() + 1;
    let raw = attrs.int("axis", 1)?;
    let axis = if raw < 0 { raw + rank as i64 } else { raw };
    if axis == 0 {
        return Err(cx.error("axis 0 would merge the batch axis into the features"));
    }
    if axis < 0 || axis > rank as i64 {
        return Err(cx.error(format!("axis {raw} is out of range for rank {rank}")));
    }
    let k = axis as usize - 1;
    let mut out = shape[..k].to_vec();
    out.push(shape[k..].iter().product());
    Ok(reshaped(id, out))
}

/// `Reshape` with a constant target shape.
pub fn reshape(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["allowzero"])?;
    cx.arity(2, 2)?;
    let (id, shape) = cx.dyn_input(0)?;
    let target = cx.int_input(1)?.ok_or_else(|| cx.error("the shape input is missing"))?;
    let allowzero = attrs.int("allowzero", 0)? != 0;
    if allowzero && target.contains(&0) {
        return Err(cx.error("allowzero=1 with a 0 in the shape would create an empty tensor"));
    }
    let per_sample: usize = shape.iter().product();
    let Some((&first, rest)) = target.split_first() else {
        return Err(cx.error("the target shape is empty"));
    };
    let batch_ok =
        first == 0 || first == -1 || cx.b.analysis.batch.is_some_and(|b| first == b as i64);
    if !batch_ok {
        return Err(cx.error(format!(
            "target shape {target:?} starts with {first}; the batch axis must stay (0 or -1 there)"
        )));
    }
    let mut out = Vec::with_capacity(rest.len());
    let mut infer = None;
    for (j, &t) in rest.iter().enumerate() {
        match t {
            0 => out.push(*shape.get(j).ok_or_else(|| {
                cx.error(format!(
                    "target {target:?} copies axis {} that [N, {shape:?}] lacks",
                    j + 1
                ))
            })?),
            -1 if infer.is_none() && first != -1 => {
                infer = Some(j);
                out.push(1);
            }
            t if t > 0 => {
                out.push(usize::try_from(t).map_err(|_| cx.error("dimension too large"))?)
            }
            _ => return Err(cx.error(format!("target shape {target:?} is not supported"))),
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&k| k > 0)
        .ok_or_else(|| cx.error(format!("target shape {target:?} is too large or empty")))?;
    if let Some(j) = infer {
        if per_sample % known != 0 {
            return Err(cx.error(format!("cannot infer -1 in {target:?} for [N, {shape:?}]")));
        }
        out[j] = per_sample / known;
    }
    let total: usize = out.iter().product();
    if total != per_sample {
        return Err(cx.error(format!(
            "target shape {target:?} does not hold the {per_sample} elements of one [N, {shape:?}] sample (the batch axis must stay)"
        )));
    }
    Ok(reshaped(id, out))
}

/// Axes from the attribute (opset < 13) or the second input (opset >= 13).
fn axes(cx: &mut NodeCx<'_, '_>) -> Result<Option<Vec<i64>>> {
    let attrs = cx.attrs(if cx.opset < 13 { &["axes"] } else { &[] })?;
    if cx.opset < 13 {
        cx.arity(1, 1)?;
        attrs.ints("axes")
    } else {
        cx.arity(1, 2)?;
        cx.int_input(1)
    }
}

/// `Squeeze`: drops size-1 axes (all of them except the batch axis when no axes are given).
pub fn squeeze(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let axes = axes(cx)?;
    let (id, shape) = cx.dyn_input(0)?;
    let rank = shape.len() + 1;
    let drop: Vec<usize> = match axes {
        None => (1..rank).filter(|&a| shape[a - 1] == 1).collect(),
        Some(list) => {
            let mut v = Vec::with_capacity(list.len());
            for a in list {
                let a = non_batch_axis(cx, a, rank)?;
                if shape[a - 1] != 1 {
                    return Err(cx.error(format!(
                        "axis {a} of [N, {shape:?}] has size {}, not 1",
                        shape[a - 1]
                    )));
                }
                v.push(a);
            }
            v
        }
    };
    let out: Vec<usize> = (1..rank).filter(|a| !drop.contains(a)).map(|a| shape[a - 1]).collect();
    if out.is_empty() {
        return Err(cx.error("squeezing every axis but the batch axis is not supported"));
    }
    Ok(reshaped(id, out))
}

/// `Unsqueeze`: inserts size-1 axes at the given positions of the output.
pub fn unsqueeze(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let axes = axes(cx)?.ok_or_else(|| cx.error("axes are required"))?;
    let (id, shape) = cx.dyn_input(0)?;
    let rank = shape.len() + 1 + axes.len();
    if rank > 16 {
        return Err(cx.error(format!("would create a rank-{rank} tensor")));
    }
    let mut insert = Vec::with_capacity(axes.len());
    for a in axes {
        let a = non_batch_axis(cx, a, rank)?;
        if insert.contains(&a) {
            return Err(cx.error(format!("axis {a} is given twice")));
        }
        insert.push(a);
    }
    let mut rest = shape.iter();
    let out: Vec<usize> = (1..rank)
        .map(|a| if insert.contains(&a) { 1 } else { rest.next().copied().unwrap_or(1) })
        .collect();
    Ok(reshaped(id, out))
}
