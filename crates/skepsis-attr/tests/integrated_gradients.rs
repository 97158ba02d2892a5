//! Integrated Gradients: completeness, quadrature conventions, baselines.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::{cnn, host, inputs, linear_model, max_abs_diff};
use skepsis_attr::{
    Baseline, IntegratedGradients, IntegratedGradientsSettings, Method, QuadratureRule, Target,
};

fn ig(steps: usize, rule: QuadratureRule) -> IntegratedGradients {
    IntegratedGradients::new(IntegratedGradientsSettings { steps, rule, ..Default::default() })
        .unwrap()
}

fn mean_abs(v: &[f64]) -> f64 {
    v.iter().map(|d| d.abs()).sum::<f64>() / v.len() as f64
}

#[test]
fn completeness_delta_shrinks_as_steps_grow_on_a_relu_net() {
    let model = cnn([1, 12, 12], DType::F64);
    let x = inputs(4, [1, 12, 12], 1, DType::F64);
    let deltas: Vec<f64> = [4, 16, 64, 256]
        .iter()
        .map(|&n| {
            let a =
                ig(n, QuadratureRule::Trapezoid).attribute(&model, &x, &Target::Predicted).unwrap();
            mean_abs(&a.completeness_delta.unwrap())
        })
        .collect();
    println!("mean |delta| for 4/16/64/256 steps: {deltas:?}");
    assert!(deltas[3] < deltas[1] && deltas[2] < deltas[0], "{deltas:?}");
    assert!(deltas[3] < deltas[0] / 10.0, "{deltas:?}");
}

#[test]
fn linear_model_is_exact_for_every_normalized_rule() {
    // f_t linear: grad f_t = W_t everywhere, so map = (x - b) * W_t * sum(w_k) and the
    // completeness delta is 0 when the weights sum to 1; captum's trapezoid sums to (n-1)/n.
    let (model, w) = linear_model();
    let x = Tensor::from_vec(
        (0..12).map(|i| i as f64 / 7.0).collect::<Vec<_>>(),
        (2, 1, 2, 3),
        &Device::Cpu,
    )
    .unwrap();
    let targets = Target::Classes(vec![2, 0]);
    for rule in [
        QuadratureRule::RiemannLeft,
        QuadratureRule::RiemannRight,
        QuadratureRule::RiemannMiddle,
        QuadratureRule::Trapezoid,
        QuadratureRule::PairLinspace,
        QuadratureRule::GaussLegendre,
    ] {
        let a = ig(8, rule.clone()).attribute(&model, &x, &targets).unwrap();
        let m = host(&a.map);
        for (i, v) in m.iter().enumerate() {
            let t = if i < 6 { 2 } else { 0 };
            assert!((v - (i as f64 / 7.0) * w[t][i % 6]).abs() < 1e-12, "{rule:?} {i}");
        }
        assert!(a.completeness_delta.unwrap().iter().all(|d| d.abs() < 1e-12), "{rule:?}");
    }
    let a = ig(8, QuadratureRule::CaptumTrapezoid).attribute(&model, &x, &targets).unwrap();
    let exact = ig(8, QuadratureRule::Trapezoid).attribute(&model, &x, &targets).unwrap();
    let scaled = (exact.map * (7.0 / 8.0)).unwrap();
    assert!(max_abs_diff(&a.map, &scaled) < 1e-12);
}

fn conformance_dir() -> PathBuf {
    match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    }
}

#[test]
fn own_quadrature_reproduces_the_alphas_and_weights_captum_used() {
    // The conformance cases store captum's float32 nodes; skepsis' rules give the same
    // values up to float32 rounding (captum: torch.linspace in float32, Gauss-Legendre
    // weights rounded to float32).
    let path = conformance_dir().join("cases/mlp.safetensors");
    let tensors =
        candle_core::safetensors::load(&path, &Device::Cpu).expect("conformance fixtures");
    for (case, rule, steps) in [
        ("mlp__ig_trapezoid16", QuadratureRule::CaptumTrapezoid, 16),
        ("mlp__ig_right16_noise_baseline", QuadratureRule::RiemannRight, 16),
        ("mlp__ig_gausslegendre32", QuadratureRule::GaussLegendre, 32),
    ] {
        let (alphas, weights) = rule.nodes("ig", steps).unwrap();
        for (role, ours) in [("alphas", alphas), ("weights", weights)] {
            let stored = host(&tensors[&format!("{case}.{role}")]);
            assert_eq!(stored.len(), ours.len(), "{case} {role}");
            for (a, b) in stored.iter().zip(&ours) {
                assert!((a - b).abs() <= 1e-7 * b.abs().max(1e-1), "{case} {role}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn pair_and_innvestigate_conventions() {
    // PAIR (Adebayo et al.): linspace(0, 1, n) with both endpoints, divided by n.
    let (a, w) = QuadratureRule::PairLinspace.nodes("ig", 5).unwrap();
    assert_eq!(a, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    assert!(w.iter().all(|w| *w == 0.2));
    // iNNvestigate / SMERF: k / n, k = 0..n-1, divided by n: the left Riemann rule.
    let (a, w) = QuadratureRule::parse("innvestigate").unwrap().nodes("ig", 4).unwrap();
    assert_eq!(a, vec![0.0, 0.25, 0.5, 0.75]);
    assert!(w.iter().all(|w| *w == 0.25));
}

#[test]
fn constant_baseline_equals_the_same_given_tensor_and_works_in_f32() {
    let model = cnn([2, 8, 8], DType::F32);
    let x = inputs(3, [2, 8, 8], 2, DType::F32);
    let settings = IntegratedGradientsSettings {
        steps: 8,
        baseline: Baseline::Constant { value: 0.25 },
        ..Default::default()
    };
    let a = IntegratedGradients::new(settings.clone())
        .unwrap()
        .attribute(&model, &x, &Target::Predicted)
        .unwrap();
    assert_eq!(a.map.dtype(), DType::F32);
    let given = Tensor::full(0.25f32, (2, 8, 8), &Device::Cpu).unwrap();
    let b = IntegratedGradients::new(settings)
        .unwrap()
        .with_baseline(given)
        .attribute(&model, &x, &Target::Predicted)
        .unwrap();
    assert_eq!(max_abs_diff(&a.map, &b.map), 0.0);
    assert_eq!(a.targets, b.targets);
}

#[test]
fn blurred_and_uniform_baselines_run_and_are_seeded() {
    let model = cnn([1, 8, 8], DType::F64);
    let x = inputs(2, [1, 8, 8], 3, DType::F64);
    for baseline in
        [Baseline::Blur { sigma: 2.0 }, Baseline::Uniform { low: 0.0, high: 1.0, seed: 5 }]
    {
        let settings = IntegratedGradientsSettings { steps: 32, baseline, ..Default::default() };
        let m = IntegratedGradients::new(settings).unwrap();
        let a = m.attribute(&model, &x, &Target::Predicted).unwrap();
        let b = m.attribute(&model, &x, &Target::Predicted).unwrap();
        assert_eq!(max_abs_diff(&a.map, &b.map), 0.0);
        assert!(host(&a.map).iter().any(|v| *v != 0.0));
    }
}
