//! Sliding-window operators: `Conv`, `MaxPool`, `AveragePool`, `GlobalAveragePool`.
//!
//! ONNX `pads` are `[top, left, bottom, right]` (begin values of both axes, then end
//! values) and map to [`Padding2d`] one to one. `auto_pad`: `NOTSET` uses `pads`, `VALID`
//! pads nothing, `SAME_UPPER`/`SAME_LOWER` pad `total = max(0, (ceil(in / stride) - 1) *
//! stride + (kernel - 1) * dilation + 1 - in)` per axis, the odd unit at the end (UPPER) or
//! at the beginning (LOWER); computable because the input shape is static.

use super::attrs::Attrs;
use super::build::{Converted, NodeCx};
use crate::ops::{Conv2dSpec, Padding2d, Pool2dSpec};
use crate::{Conv2d, Layer, Result};

/// `[C, H, W]` of a 4-D activation.
fn chw(cx: &NodeCx<'_, '_>, shape: &[usize]) -> Result<[usize; 3]> {
    match shape {
        &[c, h, w] => Ok([c, h, w]),
        _ => Err(cx.error(format!(
            "input is [N, {shape:?}]; only 2-D operators on [N, C, H, W] are supported"
        ))),
    }
}

/// Padding from `pads` / `auto_pad` for an input of `hw`.
fn padding(
    cx: &NodeCx<'_, '_>,
    attrs: &Attrs<'_>,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<Padding2d> {
    let auto = attrs.string("auto_pad", "NOTSET")?;
    let pads = attrs.sizes("pads", 4)?;
    if auto != "NOTSET" && pads.as_ref().is_some_and(|p| p.iter().any(|&x| x != 0)) {
        return Err(cx.error(format!("pads cannot be combined with auto_pad={auto}")));
    }
    let same = |upper: bool| {
        let mut before = [0usize; 2];
        let mut after = [0usize; 2];
        for a in 0..2 {
            let out = hw[a].div_ceil(stride[a]);
            let span = (out - 1) * stride[a] + (kernel[a] - 1) * dilation[a] + 1;
            let total = span.saturating_sub(hw[a]);
            let (small, large) = (total / 2, total - total / 2);
            (before[a], after[a]) = if upper { (small, large) } else { (large, small) };
        }
        Padding2d { top: before[0], bottom: after[0], left: before[1], right: after[1] }
    };
    Ok(match auto.as_str() {
        "NOTSET" => match pads {
            Some(p) => Padding2d { top: p[0], left: p[1], bottom: p[2], right: p[3] },
            None => Padding2d::default(),
        },
        "VALID" => Padding2d::default(),
        "SAME_UPPER" => same(true),
        "SAME_LOWER" => same(false),
        other => return Err(cx.error(format!("auto_pad '{other}' is not supported"))),
    })
}

/// Strides or dilations (default 1 each), at least 1.
fn positive_pair(cx: &NodeCx<'_, '_>, attrs: &Attrs<'_>, name: &str) -> Result<[usize; 2]> {
    match attrs.sizes(name, 2)? {
        None => Ok([1, 1]),
        Some(v) if v.contains(&0) => Err(cx.error(format!("{name} must be at least 1"))),
        Some(v) => Ok([v[0], v[1]]),
    }
}

/// `Conv` with a constant OIHW weight -> `Conv2d`.
pub fn conv(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])?;
    cx.arity(2, 3)?;
    let (id, shape) = cx.dyn_input(0)?;
    let [c, h, w] = chw(cx, &shape)?;
    let weight = cx.const_input(1)?.ok_or_else(|| cx.error("the weight is missing"))?;
    let &[m, cg, kh, kw] = &weight.dims[..] else {
        return Err(cx.error(format!(
            "weight has shape {:?}; only 2-D convolutions ([M, C/group, kH, kW]) are supported",
            weight.dims
        )));
    };
    if let Some(k) = attrs.sizes("kernel_shape", 2)? {
        if k != [kh, kw] {
            return Err(
                cx.error(format!("kernel_shape {k:?} differs from the weight's [{kh}, {kw}]"))
            );
        }
    }
    let group = attrs.int("group", 1)?;
    let groups = usize::try_from(group)
        .ok()
        .filter(|&g| g >= 1 && g <= c && m % g == 0 && cg.checked_mul(g) == Some(c))
        .ok_or_else(|| {
            cx.error(format!(
                "group {group} does not fit {c} input channels, weight {:?}",
                weight.dims
            ))
        })?;
    if kh == 0 || kw == 0 || m == 0 {
        return Err(cx.error(format!("weight has an empty dimension: {:?}", weight.dims)));
    }
    let stride = positive_pair(cx, &attrs, "strides")?;
    let dilation = positive_pair(cx, &attrs, "dilations")?;
    let pad = padding(cx, &attrs, [h, w], [kh, kw], stride, dilation)?;
    let spec = Conv2dSpec { stride, padding: pad, dilation, groups };
    let [oh, ow] = spec.output_hw([h, w], [kh, kw]).ok_or_else(|| {
        cx.error(format!("the {kh}x{kw} kernel does not fit the padded {h}x{w} input"))
    })?;
    let wv = cx.floats(&weight, &[m, cg, kh, kw], "weight")?;
    let wt = cx.tensor(wv, &[m, cg, kh, kw], "weight")?;
    let bias = match cx.const_input(2)? {
        None => None,
        Some(b) => {
            let v = cx.floats(&b, &[m], "bias")?;
            Some(cx.tensor(v, &[m], "bias")?)
        }
    };
    let layer = Layer::Conv2d(Conv2d::new(wt, bias, spec)?);
    Ok(Converted::Layer { layer, inputs: vec![id], shape: vec![m, oh, ow] })
}

/// Shared part of `MaxPool` and `AveragePool`.
fn pool(
    cx: &mut NodeCx<'_, '_>,
    attrs: &Attrs<'_>,
    count_include_pad: bool,
) -> Result<(Pool2dSpec, crate::ValueId, Vec<usize>)> {
    cx.arity(1, 1)?;
    let (id, shape) = cx.dyn_input(0)?;
    let [c, h, w] = chw(cx, &shape)?;
    if attrs.int("ceil_mode", 0)? != 0 {
        return Err(cx.error("ceil_mode=1 is not supported (floor mode only)"));
    }
    if positive_pair(cx, attrs, "dilations")? != [1, 1] {
        return Err(cx.error("dilated pooling is not supported"));
    }
    let kernel = attrs
        .sizes("kernel_shape", 2)?
        .ok_or_else(|| cx.error("attribute 'kernel_shape' is required"))?;
    let kernel = [kernel[0], kernel[1]];
    if kernel.contains(&0) {
        return Err(cx.error("kernel_shape must be at least 1"));
    }
    let stride = positive_pair(cx, attrs, "strides")?;
    let padding = padding(cx, attrs, [h, w], kernel, stride, [1, 1])?;
    if padding.top.max(padding.bottom) >= kernel[0] || padding.left.max(padding.right) >= kernel[1]
    {
        return Err(cx.error(format!(
            "padding {padding:?} reaches the kernel size {kernel:?} (a window could hold only padding)"
        )));
    }
    let spec = Pool2dSpec { kernel, stride, padding, count_include_pad };
    let [oh, ow] = spec
        .output_hw([h, w])
        .ok_or_else(|| cx.error(format!("the {kernel:?} window does not fit the {h}x{w} input")))?;
    Ok((spec, id, vec![c, oh, ow]))
}

/// `MaxPool` (padding never wins) -> `MaxPool2d`.
pub fn max_pool(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&[
        "auto_pad",
        "ceil_mode",
        "dilations",
        "kernel_shape",
        "pads",
        "storage_order",
        "strides",
    ])?;
    let (spec, id, shape) = pool(cx, &attrs, true)?;
    Ok(Converted::Layer { layer: Layer::MaxPool2d(spec), inputs: vec![id], shape })
}

/// `AveragePool` (ONNX's default `count_include_pad=0`) -> `AvgPool2d`.
pub fn average_pool(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    let attrs = cx.attrs(&[
        "auto_pad",
        "ceil_mode",
        "count_include_pad",
        "dilations",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    let include = attrs.int("count_include_pad", 0)? != 0;
    let (spec, id, shape) = pool(cx, &attrs, include)?;
    Ok(Converted::Layer { layer: Layer::AvgPool2d(spec), inputs: vec![id], shape })
}

/// `GlobalAveragePool` -> `AdaptiveAvgPool2d { output_size: [1, 1] }`.
pub fn global_average_pool(cx: &mut NodeCx<'_, '_>) -> Result<Converted> {
    cx.attrs(&[])?;
    cx.arity(1, 1)?;
    let (id, shape) = cx.dyn_input(0)?;
    let [c, _, _] = chw(cx, &shape)?;
    Ok(Converted::Layer {
        layer: Layer::AdaptiveAvgPool2d { output_size: [1, 1] },
        inputs: vec![id],
        shape: vec![c, 1, 1],
    })
}
