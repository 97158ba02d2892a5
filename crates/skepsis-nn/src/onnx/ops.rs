//! ONNX operator -> skepsis layer, one function per operator (the table is in the module
//! documentation of [`super`]). Convolution and pooling live in `window`, the shape
//! operators in `reshape`.

use super::build::{Converted, NodeCx, Value};
use super::tensor::{Const, ConstData};
use super::{reshape, window};
use crate::{BatchNorm2d, Layer, Linear, Result};

/// Converts one node (its operator is one of [`super::SUPPORTED_OPERATORS`]).
pub fn convert(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    match cx.node.op_type.as_str() {
        "Conv" => window::conv(cx),
        "MaxPool" => window::max_pool(cx),
        "AveragePool" => window::average_pool(cx),
        "GlobalAveragePool" => window::global_average_pool(cx),
        "Gemm" => gemm(cx),
        "MatMul" => matmul(cx),
        "Add" => add(cx),
        "Relu" => elementwise(cx, &[], Layer::Relu),
        "Sigmoid" => elementwise(cx, &[], Layer::Sigmoid),
        "Tanh" => elementwise(cx, &[], Layer::Tanh),
        "LeakyRelu" => {
            let alpha = cx.attrs(&["alpha"])?.float("alpha", 0.01)?;
            elementwise(cx, &["alpha"], Layer::LeakyRelu { negative_slope: alpha })
        }
        "Softmax" => softmax(cx),
        "BatchNormalization" => batch_norm(cx),
        "Dropout" => dropout(cx),
        "Identity" => identity(cx),
        "Constant" => constant(cx),
        "Concat" => concat(cx),
        "Flatten" => reshape::flatten(cx),
        "Reshape" => reshape::reshape(cx),
        "Squeeze" => reshape::squeeze(cx),
        "Unsqueeze" => reshape::unsqueeze(cx),
        other => Err(cx.error(format!("operator '{other}' has no converter"))),
    }
}

/// A one-input layer that keeps the shape.
fn elementwise(cx: &mut NodeCx<'_, '_>, known: &[&str], layer: Layer) -> Result<Converted> {
    cx.attrs(known)?;
    cx.arity(1, 1)?;
    let (id, shape) = cx.dyn_input(0)?;
    Ok(Converted::Layer { layer, inputs: vec![id], shape })
}

/// `Gemm`: `Y = alpha * A' B' + beta * C` with A the activation `[N, K]`.
fn gemm(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["alpha", "beta", "transA", "transB"])?;
    cx.arity(2, 3)?;
    if attrs.int("transA", 0)? != 0 {
        return Err(cx.error("transA=1 would contract the batch axis; only transA=0 is supported"));
    }
    let trans_b = attrs.int("transB", 0)? != 0;
    let alpha = attrs.float("alpha", 1.0)?;
    let beta = attrs.float("beta", 1.0)?;
    let (id, shape) = cx.dyn_input(0)?;
    let &[k] = &shape[..] else {
        return Err(cx.error(format!("input A must be [N, K], found [N, {shape:?}]")));
    };
    let b = cx.const_input(1)?.ok_or_else(|| cx.error("input B is missing"))?;
    let &[r, c] = &b.dims[..] else {
        return Err(cx.error(format!("B must be 2-D, found {:?}", b.dims)));
    };
    let (out, inner) = if trans_b { (r, c) } else { (c, r) };
    if inner != k {
        return Err(cx.error(format!("B has shape {:?}, which does not match K = {k}", b.dims)));
    }
    let values = cx.floats(&b, &b.dims.clone(), "B")?;
    let mut weight = if trans_b { values } else { transpose(&values, r, c) };
    if alpha != 1.0 {
        weight.iter_mut().for_each(|w| *w *= alpha);
    }
    let bias = match cx.const_input(2)? {
        None => None,
        Some(c) => {
            let mut v = per_output(cx, &c, out, 2, "C")?;
            v.iter_mut().for_each(|x| *x *= beta);
            Some(v)
        }
    };
    linear(cx, id, weight, bias, out, k)
}

/// `MatMul` of an activation `[N, K]` and a constant `[K, M]`.
fn matmul(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    cx.attrs(&[])?;
    cx.arity(2, 2)?;
    let (id, shape) = cx.dyn_input(0)?;
    let &[k] = &shape[..] else {
        return Err(cx.error(format!(
            "only [N, K] x [K, M] is supported; the activation is [N, {shape:?}]"
        )));
    };
    let b = cx.const_input(1)?.ok_or_else(|| cx.error("input B is missing"))?;
    let &[bk, m] = &b.dims[..] else {
        return Err(cx.error(format!("the constant operand must be [K, M], found {:?}", b.dims)));
    };
    if bk != k {
        return Err(cx.error(format!("[N, {k}] x {:?}: inner sizes differ", b.dims)));
    }
    let values = cx.floats(&b, &b.dims.clone(), "B")?;
    linear(cx, id, transpose(&values, k, m), None, m, k)
}

fn linear(
    cx: &NodeCx<'_, '_>,
    id: crate::ValueId,
    weight: Vec<f64>,
    bias: Option<Vec<f64>>,
    out: usize,
    k: usize,
) -> Result<Converted> {
    let w = cx.tensor(weight, &[out, k], "weight")?;
    let b = bias.map(|b| cx.tensor(b, &[out], "bias")).transpose()?;
    Ok(Converted::Layer {
        layer: Layer::Linear(Linear::new(w, b)?),
        inputs: vec![id],
        shape: vec![out],
    })
}

/// Row-major `[r, c]` -> `[c, r]`.
fn transpose(v: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = v[i * c + j];
        }
    }
    out
}

/// A constant broadcast over `[N, out]` (shapes `[]`, `[1]`, `[out]`, `[1, out]`) as `[out]`.
fn per_output(
    cx: &NodeCx<'_, '_>,
    c: &Const,
    out: usize,
    i: usize,
    what: &str,
) -> Result<Vec<f64>> {
    let ConstData::Float(v) = &c.data else {
        return Err(cx.error(format!("{what} (input {i}) must be a float tensor")));
    };
    let ok =
        matches!(c.dims[..], [] | [1] | [1, 1]) || c.dims[..] == [out] || c.dims[..] == [1, out];
    if !ok {
        return Err(cx.error(format!(
            "{what} has shape {:?}; only a per-output vector [{out}] (or a scalar) is supported",
            c.dims
        )));
    }
    Ok(if v.len() == 1 { vec![v[0]; out] } else { v.clone() })
}

/// `Add`: activations of one shape -> `Add`; activation + constant -> a bias fused into the
/// `Linear`/`Conv2d` producing the activation, when this `Add` is its only use.
fn add(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    cx.attrs(&[])?;
    cx.arity(2, 2)?;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    match (a, b) {
        (Some(Value::Dyn { id: ia, shape: sa }), Some(Value::Dyn { id: ib, shape: sb })) => {
            if sa != sb {
                return Err(cx.error(format!(
                    "adds [N, {sa:?}] and [N, {sb:?}]; broadcasting between activations is not supported"
                )));
            }
            Ok(Converted::Layer { layer: Layer::Add, inputs: vec![ia, ib], shape: sa })
        }
        (Some(Value::Dyn { id, shape }), Some(Value::Const(c)))
        | (Some(Value::Const(c)), Some(Value::Dyn { id, shape })) => fuse_bias(cx, id, shape, &c),
        _ => Err(cx.error("adds two constants; constant folding is not supported")),
    }
}

fn fuse_bias(
    cx: &mut NodeCx<'_, '_>,
    id: crate::ValueId,
    shape: Vec<usize>,
    c: &Const,
) -> Result<Converted> {
    let dyn_name = if matches!(cx.input(0)?, Some(Value::Dyn { .. })) {
        cx.node.input[0].clone()
    } else {
        cx.node.input[1].clone()
    };
    let sole = cx.sole_consumer(&dyn_name);
    let unsupported = |cx: &NodeCx<'_, '_>| {
        cx.error("adds a constant to an activation; supported only as the bias of the MatMul/Gemm/Conv whose only use is this Add")
    };
    if !sole {
        return Err(unsupported(cx));
    }
    let bias = match shape[..] {
        [out] => per_output(cx, c, out, 1, "the added constant")?,
        [channels, _, _] => {
            let ok = matches!(c.dims[..], [] | [1])
                || c.dims[..] == [channels, 1, 1]
                || c.dims[..] == [1, channels, 1, 1];
            let ConstData::Float(v) = &c.data else { return Err(unsupported(cx)) };
            if !ok {
                return Err(cx.error(format!(
                    "adds a constant of shape {:?} to [N, {shape:?}]; only a per-channel bias [C, 1, 1] is supported",
                    c.dims
                )));
            }
            if v.len() == 1 {
                vec![v[0]; channels]
            } else {
                v.clone()
            }
        }
        _ => return Err(unsupported(cx)),
    };
    let n = bias.len();
    let bias_t = cx.tensor(bias, &[n], "bias")?;
    let Some(node) = cx.producer_mut(id) else { return Err(unsupported(cx)) };
    let slot = match &mut node.layer {
        Layer::Linear(l) if l.out_features() == n => &mut l.bias,
        Layer::Conv2d(conv) if conv.out_channels() == n => &mut conv.bias,
        _ => return Err(unsupported(cx)),
    };
    *slot = Some(match slot.take() {
        Some(old) => (old + bias_t)?,
        None => bias_t,
    });
    Ok(Converted::Alias(Value::Dyn { id, shape }))
}

/// `Softmax` over the class axis.
fn softmax(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["axis"])?;
    cx.arity(1, 1)?;
    let (id, shape) = cx.dyn_input(0)?;
    let rank = shape.len() as i64 + 1;
    let default = if cx.opset >= 13 { -1 } else { 1 };
    let axis = attrs.int("axis", default)?;
    let axis = if axis < 0 { axis + rank } else { axis };
    // Before opset 13, Softmax flattens axes [axis, rank) into one: the same as axis 1
    // only on [N, C] inputs.
    let ok = axis == 1 && (rank == 2 || cx.opset >= 13);
    if !ok {
        return Err(cx.error(format!(
            "softmax over axis {axis} of [N, {shape:?}] (opset {}); only the class axis 1 is supported",
            cx.opset
        )));
    }
    Ok(Converted::Layer { layer: Layer::Softmax, inputs: vec![id], shape })
}

/// `BatchNormalization` in inference mode on `[N, C, H, W]`.
fn batch_norm(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["epsilon", "momentum", "training_mode"])?;
    cx.arity(5, 5)?;
    if attrs.int("training_mode", 0)? != 0 {
        return Err(cx.error("training_mode=1 is not supported (inference only)"));
    }
    let eps = attrs.float("epsilon", 1e-5)?;
    let (id, shape) = cx.dyn_input(0)?;
    let &[c, _, _] = &shape[..] else {
        return Err(cx.error(format!("input must be [N, C, H, W], found [N, {shape:?}]")));
    };
    let mut t = Vec::with_capacity(4);
    for (i, key) in [(1, "weight"), (2, "bias"), (3, "running_mean"), (4, "running_var")] {
        let k = cx.const_input(i)?.ok_or_else(|| cx.error(format!("input {i} is missing")))?;
        let v = cx.floats(&k, &[c], key)?;
        t.push(cx.tensor(v, &[c], key)?);
    }
    let [w, b, m, v] = <[_; 4]>::try_from(t).map_err(|_| cx.error("internal: four tensors"))?;
    let bn = BatchNorm2d::new(w, b, m, v, eps)?;
    Ok(Converted::Layer { layer: Layer::BatchNorm2d(bn), inputs: vec![id], shape })
}

/// `Dropout`: identity at inference.
fn dropout(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["ratio", "seed"])?;
    cx.arity(1, 3)?;
    let (id, shape) = cx.dyn_input(0)?;
    let mut ratio = attrs.float("ratio", 0.5)?;
    if let Some(r) = cx.const_input(1)? {
        match r.floats() {
            Some(&[v]) => ratio = v,
            _ => return Err(cx.error("ratio must be a float scalar")),
        }
    }
    if let Some(t) = cx.const_input(2)? {
        if t.ints().is_none_or(|v| v.iter().any(|&x| x != 0)) {
            return Err(cx.error("training_mode must be false"));
        }
    }
    if !(0.0..1.0).contains(&ratio) {
        return Err(cx.error(format!("ratio {ratio} is outside [0, 1)")));
    }
    Ok(Converted::Layer { layer: Layer::Dropout { p: ratio }, inputs: vec![id], shape })
}

fn identity(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    cx.attrs(&[])?;
    cx.arity(1, 1)?;
    match cx.input(0)? {
        Some(Value::Const(c)) => Ok(Converted::Alias(Value::Const(c))),
        Some(Value::Dyn { id, shape }) => {
            Ok(Converted::Layer { layer: Layer::Identity, inputs: vec![id], shape })
        }
        None => Err(cx.error("input 0 is missing")),
    }
}

fn constant(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&[
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
        "sparse_value",
        "value_string",
        "value_strings",
    ])?;
    cx.arity(0, 0)?;
    if cx.node.attribute.len() != 1 {
        return Err(cx.error("needs exactly one value attribute"));
    }
    let c = if let Some(t) = attrs.tensor("value")? {
        cx.read_tensor(t)?
    } else if attrs.has("value_float") {
        Const { dims: vec![], data: ConstData::Float(vec![attrs.float("value_float", 0.0)?]) }
    } else if let Some(v) = attrs.floats("value_floats")? {
        Const {
            dims: vec![v.len()],
            data: ConstData::Float(v.iter().map(|&x| f64::from(x)).collect()),
        }
    } else if attrs.has("value_int") {
        Const { dims: vec![], data: ConstData::Int(vec![attrs.int("value_int", 0)?]) }
    } else if let Some(v) = attrs.ints("value_ints")? {
        Const { dims: vec![v.len()], data: ConstData::Int(v) }
    } else {
        return Err(cx.error("sparse and string constants are not supported"));
    };
    Ok(Converted::Const(c))
}

/// `Concat` of activations along a non-batch axis.
fn concat(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["axis"])?;
    if !attrs.has("axis") {
        return Err(cx.error("attribute 'axis' is required"));
    }
    let n = cx.node.input.len();
    if n == 0 || cx.node.input.iter().any(String::is_empty) {
        return Err(cx.error("needs one or more inputs"));
    }
    let mut ids = Vec::with_capacity(n);
    let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(n);
    for i in 0..n {
        let (id, s) = cx.dyn_input(i)?;
        ids.push(id);
        shapes.push(s);
    }
    let rank = shapes[0].len() as i64 + 1;
    let raw = attrs.int("axis", 1)?;
    let axis = if raw < 0 { raw + rank } else { raw };
    if axis < 1 || axis >= rank {
        return Err(cx.error(format!(
            "axis {raw} of rank-{rank} inputs: only axes 1 to {} (not the batch axis)",
            rank - 1
        )));
    }
    let a = (axis - 1) as usize;
    let mut shape = shapes[0].clone();
    for s in &shapes[1..] {
        let same_rest = s.len() == shape.len()
            && s.iter().zip(&shape).enumerate().all(|(j, (x, y))| j == a || x == y);
        if !same_rest {
            return Err(cx.error(format!(
                "inputs [N, {:?}] and [N, {s:?}] differ outside axis {axis}",
                shapes[0]
            )));
        }
        shape[a] += s[a];
    }
    if n == 1 {
        return Ok(Converted::Layer { layer: Layer::Identity, inputs: ids, shape });
    }
    Ok(Converted::Layer { layer: Layer::Concat { axis: axis as usize }, inputs: ids, shape })
}
