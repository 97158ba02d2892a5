//! NoiseTunnel, Expected Gradients / GradientSHAP and CGI.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{cnn, host, inputs, linear_model, max_abs_diff};
use skepsis_attr::{
    Cgi, CgiComparison, CgiSettings, ExpectedGradients, ExpectedGradientsSettings, GradCam,
    GradCamSettings, Gradient, GradientXInput, IntegratedGradients, IntegratedGradientsSettings,
    Method, NoiseReduction, NoiseTunnel, NoiseTunnelSettings, Target,
};

fn tunnel(
    base: Box<dyn Method>,
    reduction: NoiseReduction,
    samples: usize,
    sigma: f64,
) -> NoiseTunnel {
    let settings = NoiseTunnelSettings { reduction, samples, sigma, ..Default::default() };
    NoiseTunnel::new(base, settings).unwrap()
}

#[test]
fn one_sample_of_zero_noise_equals_the_base_method_exactly() {
    for dtype in [DType::F32, DType::F64] {
        let model = cnn([1, 8, 8], dtype);
        let x = inputs(3, [1, 8, 8], 4, dtype);
        let target = Target::Classes(vec![1, 5, 9]);
        let bases: Vec<fn() -> Box<dyn Method>> = vec![
            || Box::new(Gradient::default()),
            || Box::new(GradientXInput::default()),
            || {
                let s = IntegratedGradientsSettings { steps: 5, ..Default::default() };
                Box::new(IntegratedGradients::new(s).unwrap())
            },
            || {
                let s = GradCamSettings {
                    layer: Some("relu2".into()),
                    upsample: false,
                    ..Default::default()
                };
                Box::new(GradCam::new(s).unwrap())
            },
        ];
        for base in bases {
            let expected = base().attribute(&model, &x, &target).unwrap().map;
            // Drawn noise with sigma = 0, and given zero noise.
            let drawn = tunnel(base(), NoiseReduction::SmoothGrad, 1, 0.0)
                .attribute(&model, &x, &target)
                .unwrap();
            assert_eq!(max_abs_diff(&drawn.map, &expected), 0.0, "{}", base().name());
            assert_eq!(drawn.map.dtype(), dtype);
            let zero = Tensor::zeros((1, 3, 1, 8, 8), dtype, &Device::Cpu).unwrap();
            let given =
                tunnel(base(), NoiseReduction::SmoothGrad, 1, 0.15).with_noise(zero).unwrap();
            assert_eq!(
                max_abs_diff(&given.attribute(&model, &x, &target).unwrap().map, &expected),
                0.0
            );
        }
    }
}

#[test]
fn reductions_match_a_direct_computation_over_the_given_noise() {
    let model = cnn([1, 8, 8], DType::F64);
    let x = inputs(2, [1, 8, 8], 5, DType::F64);
    let noise =
        (inputs(6, [1, 8, 8], 6, DType::F64) - 0.5).unwrap().reshape((3, 2, 1, 8, 8)).unwrap();
    let target = Target::Classes(vec![3, 4]);
    let grads: Vec<Vec<f64>> = (0..3)
        .map(|s| {
            let noisy = (&x + noise.get(s).unwrap()).unwrap();
            host(&Gradient::default().attribute(&model, &noisy, &target).unwrap().map)
        })
        .collect();
    let d = grads[0].len();
    let mean: Vec<f64> = (0..d).map(|i| grads.iter().map(|g| g[i]).sum::<f64>() / 3.0).collect();
    let mean_sq: Vec<f64> =
        (0..d).map(|i| grads.iter().map(|g| g[i] * g[i]).sum::<f64>() / 3.0).collect();
    let var: Vec<f64> =
        (0..d).map(|i| grads.iter().map(|g| (g[i] - mean[i]).powi(2)).sum::<f64>() / 3.0).collect();
    for (reduction, expected) in [
        (NoiseReduction::SmoothGrad, mean),
        (NoiseReduction::SmoothGradSquared, mean_sq),
        (NoiseReduction::VarGrad, var),
    ] {
        let m = tunnel(Box::new(Gradient::default()), reduction, 1, 0.0)
            .with_noise(noise.clone())
            .unwrap();
        let got = host(&m.attribute(&model, &x, &target).unwrap().map);
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-12 * scale, "{reduction:?}: {g} vs {e}");
        }
    }
    // Given noise of the wrong shape is rejected, naming the parameter.
    let bad = tunnel(Box::new(Gradient::default()), NoiseReduction::SmoothGrad, 1, 0.0)
        .with_noise(noise)
        .unwrap();
    let e = bad
        .attribute(&model, &x.narrow(0, 0, 1).unwrap(), &Target::Classes(vec![0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("noise"), "{e}");
}

#[test]
fn drawn_noise_is_seeded() {
    let model = cnn([1, 8, 8], DType::F64);
    let x = inputs(2, [1, 8, 8], 7, DType::F64);
    let run = |seed| {
        let s = NoiseTunnelSettings { samples: 4, seed, ..Default::default() };
        NoiseTunnel::new(Box::new(Gradient::default()), s)
            .unwrap()
            .attribute(&model, &x, &Target::Predicted)
            .unwrap()
            .map
    };
    assert_eq!(max_abs_diff(&run(1), &run(1)), 0.0);
    assert!(max_abs_diff(&run(1), &run(2)) > 0.0);
}

#[test]
fn expected_gradients_on_a_linear_model() {
    // grad f_t = W_t everywhere, so map = W_t * mean_s (x - r_{j_s}) and completeness holds
    // exactly with the drawn references: sum(map) = f_t(x) - mean_s f_t(r_{j_s}).
    let (model, w) = linear_model();
    let x = Tensor::from_vec(
        (0..12).map(|i| i as f64 / 5.0).collect::<Vec<_>>(),
        (2, 1, 2, 3),
        &Device::Cpu,
    )
    .unwrap();
    let refs = Tensor::from_vec(
        (0..18).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>(),
        (3, 1, 2, 3),
        &Device::Cpu,
    )
    .unwrap();
    let settings = ExpectedGradientsSettings { samples: 16, seed: 9, ..Default::default() };
    let m = ExpectedGradients::new("expected-gradients", settings)
        .unwrap()
        .with_references(refs.clone());
    let a = m.attribute(&model, &x, &Target::Classes(vec![1, 2])).unwrap();
    assert!(a.completeness_delta.unwrap().iter().all(|d| d.abs() < 1e-12));
    // Each element divided by W_t is x minus the mean of some references: within the
    // references' range shifted by x.
    let map = host(&a.map);
    let r = host(&refs);
    for (i, v) in map.iter().enumerate() {
        let (n, e) = (i / 6, i % 6);
        let wt = w[[1, 2][n]][e];
        let mean_ref = (i as f64 / 5.0) - v / wt;
        let (lo, hi) = (0..3)
            .map(|k| r[k * 6 + e])
            .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
        assert!(
            mean_ref >= lo - 1e-12 && mean_ref <= hi + 1e-12,
            "{i}: {mean_ref} not in [{lo}, {hi}]"
        );
    }
}

#[test]
fn cgi_keeps_only_winning_elements_and_pixel_mode_sums_channels() {
    let model = cnn([2, 8, 8], DType::F64);
    let x = inputs(2, [2, 8, 8], 8, DType::F64);
    let targets = vec![0, 7];
    let gxi: Vec<Vec<f64>> = (0..10)
        .map(|k| {
            host(
                &GradientXInput::default()
                    .attribute(&model, &x, &Target::Classes(vec![k, k]))
                    .unwrap()
                    .map,
            )
        })
        .collect();
    for comparison in [CgiComparison::Elementwise, CgiComparison::Pixel] {
        let m = Cgi::new(CgiSettings { comparison, batch_size: 3, ..Default::default() }).unwrap();
        let a = m.attribute(&model, &x, &Target::Classes(targets.clone())).unwrap();
        let map = host(&a.map);
        let pixel = comparison == CgiComparison::Pixel;
        assert_eq!(a.map.dims(), if pixel { &[2, 1, 8, 8][..] } else { &[2, 2, 8, 8][..] });
        let value = |k: usize, i: usize| -> f64 {
            if pixel {
                let (n, p) = (i / 64, i % 64);
                gxi[k][n * 128 + p] + gxi[k][n * 128 + 64 + p]
            } else {
                gxi[k][i]
            }
        };
        let per = map.len() / 2;
        let mut kept = 0;
        for (i, v) in map.iter().enumerate() {
            let y = targets[i / per];
            let s = value(y, i);
            let wins = (s > 0.0 && (0..10).all(|k| k == y || s > value(k, i)))
                || (s < 0.0 && (0..10).all(|k| k == y || s < value(k, i)));
            assert_eq!(*v, if wins { s } else { 0.0 }, "{comparison:?} {i}");
            kept += wins as usize;
        }
        assert!(kept > 0, "{comparison:?}: nothing won");
    }
}
