//! Every part-1 method gives the same maps for any `batch_size`: steps, samples, masks,
//! windows and classes are folded into the batch in chunks, and the wrappers accumulate
//! on the host in a fixed order (see `src/rows.rs`).
//!
//! What remains is the engine's own rounding: the linear layers' matrix products (forward
//! and backward) may round differently for different batch sizes, so maps are compared to
//! a few float32 / float64 ulps of their largest element. A wrapper that dropped, repeated
//! or misordered rows would miss by orders of magnitude more.

mod common;

use candle_core::DType;
use common::{cnn, host, inputs};
use skepsis_attr::{registry, Target};

/// Specs with a `{b}` placeholder for the batch size.
const SPECS: &[&str] = &[
    "gradient:batch_size={b}",
    "gradient-x-input:batch_size={b}",
    "ig:steps=7,rule=middle,batch_size={b}",
    "ig:steps=6,rule=gauss-legendre,baseline=uniform,seed=3,batch_size={b}",
    "smoothgrad:samples=5,sigma=0.2,batch_size={b}",
    "smoothgrad:samples=3,base=ig,steps=4,batch_size={b}",
    "smoothgrad-sq:samples=5,sigma=0.1,scale=absolute,batch_size={b}",
    "vargrad:samples=5,batch_size={b}",
    "expected-gradients:samples=5,seed=2,batch_size={b}",
    "gradient-shap:samples=4,noise_std=0.1,batch_size={b}",
    "gradcam:layer=relu2,batch_size={b}",
    "gradcam:layer=conv1,upsample=false,normalize=max,batch_size={b}",
    "gradcam-plus-plus:layer=relu2,batch_size={b}",
    "occlusion:window=3;3,stride=2;2,baseline=0.5,batch_size={b}",
    "occlusion:window=1;2;2,stride=1;2;2,batch_size={b}",
    "rise:masks=20,grid=3,batch_size={b}",
    "cgi:batch_size={b}",
    "cgi:comparison=pixel,base=ig,steps=3,batch_size={b}",
];

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

fn check(dtype: DType) {
    let shape = [2, 8, 8];
    let model = cnn(shape, dtype);
    let x = inputs(3, shape, 11, dtype);
    let rounding = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
    for spec in SPECS {
        let run = |b: usize| {
            let m = registry::parse(&spec.replace("{b}", &b.to_string())).unwrap();
            m.attribute(&model, &x, &Target::Predicted).unwrap_or_else(|e| panic!("{spec}: {e}"))
        };
        let whole = run(10_000);
        let (a, scale) = (host(&whole.map), 1.0);
        let scale = a.iter().fold(scale, |m: f64, v| m.max(v.abs()));
        assert!(a.iter().any(|v| *v != 0.0), "{spec}: map is all zero");
        for b in [1, 2, 5] {
            let chunked = run(b);
            assert_eq!(whole.map.dims(), chunked.map.dims(), "{spec}");
            let worst = max_diff(&a, &host(&chunked.map));
            let allowed = rounding * scale;
            assert!(worst <= allowed, "{spec} batch_size={b} ({dtype:?}): max |diff| {worst:e}");
            let (da, dc) = (whole.completeness_delta.clone(), chunked.completeness_delta.clone());
            assert_eq!(da.is_some(), dc.is_some());
            let worst = max_diff(&da.unwrap_or_default(), &dc.unwrap_or_default());
            assert!(
                worst <= rounding * 10.0,
                "{spec} batch_size={b}: completeness delta differs by {worst:e}"
            );
        }
    }
}

#[test]
fn chunked_equals_unchunked_f64() {
    check(DType::F64);
}

#[test]
fn chunked_equals_unchunked_f32() {
    check(DType::F32);
}
