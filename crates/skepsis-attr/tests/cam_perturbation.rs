//! GradCAM / GradCAM++, Occlusion, RISE and the control baselines.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{cnn, host, inputs, linear_model, max_abs_diff};
use skepsis_attr::{
    registry, CamNormalization, CamWeighting, GradCam, GradCamSettings, GradientXInput, Method,
    Occlusion, OcclusionSettings, Rise, RiseSettings, Target,
};
use skepsis_nn::{BackwardPass, Stop};

#[test]
fn gradcam_plus_plus_matches_the_formula_on_the_layer_gradients() {
    let model = cnn([1, 12, 12], DType::F64);
    let x = inputs(2, [1, 12, 12], 1, DType::F64);
    let targets = vec![2, 6];
    let settings = GradCamSettings {
        weighting: CamWeighting::GradCamPlusPlus,
        layer: Some("relu2".into()),
        upsample: false,
        ..Default::default()
    };
    let map = host(
        &GradCam::new(settings)
            .unwrap()
            .attribute(&model, &x, &Target::Classes(targets.clone()))
            .unwrap()
            .map,
    );
    // Reference: A and g = dS/dA at relu2 straight from the engine.
    let k = model.node_index("relu2").unwrap();
    let trace = model.trace(&x).unwrap();
    let seed = skepsis_attr::engine::one_hot(&targets, 10, trace.logits()).unwrap();
    let g = host(
        &BackwardPass::new(&model, &trace).stop_at(Stop::Node(k)).run(&seed).unwrap().relevance,
    );
    let a = host(trace.output(k));
    let (c, hw) = (64, 36);
    for n in 0..2 {
        let mut cam = vec![0.0; hw];
        for ch in 0..c {
            let off = (n * c + ch) * hw;
            let sum_a: f64 = a[off..off + hw].iter().sum();
            let w: f64 = (0..hw)
                .map(|i| {
                    let gi = g[off + i];
                    let den = 2.0 * gi * gi + sum_a * gi.powi(3);
                    if den == 0.0 {
                        0.0
                    } else {
                        gi * gi / den * gi.max(0.0)
                    }
                })
                .sum();
            (0..hw).for_each(|i| cam[i] += w * a[off + i]);
        }
        for (i, v) in cam.iter().enumerate() {
            assert!((map[n * hw + i] - v.max(0.0)).abs() < 1e-12);
        }
    }
}

#[test]
fn gradcam_max_normalization_and_upsampled_cam() {
    let model = cnn([1, 12, 12], DType::F32);
    let x = inputs(3, [1, 12, 12], 2, DType::F32);
    let targets = vec![0, 1, 2];
    let plain = GradCam::new(GradCamSettings {
        layer: Some("relu2".into()),
        upsample: false,
        ..Default::default()
    })
    .unwrap();
    let cam = plain.cam(&model, &x, &targets).unwrap();
    assert_eq!(cam.dims(), &[3, 1, 6, 6]);
    let up = plain.upsampled_cam(&model, &x, &targets).unwrap();
    assert_eq!(up.dims(), &[3, 1, 12, 12]);
    let resized = skepsis_attr::interpolate::bilinear(&cam, [12, 12]).unwrap();
    assert_eq!(max_abs_diff(&up, &resized), 0.0);
    let norm = GradCam::new(GradCamSettings {
        layer: Some("relu2".into()),
        normalization: CamNormalization::Max,
        upsample: false,
        ..Default::default()
    })
    .unwrap();
    let m = host(&norm.cam(&model, &x, &targets).unwrap());
    for s in m.chunks(36) {
        let max = s.iter().copied().fold(f64::MIN, f64::max);
        assert!(max == 0.0 || (max - 1.0).abs() < 1e-6, "{max}");
    }
}

#[test]
fn single_element_occlusion_of_a_linear_model_is_gradient_times_input() {
    // f linear, baseline 0, 1x1x1 windows: d = f(x) - f(x with x_i = 0) = W_t,i x_i.
    let (model, _) = linear_model();
    let x = Tensor::from_vec(
        (0..12).map(|i| (i as f64 * 0.7).cos()).collect::<Vec<_>>(),
        (2, 1, 2, 3),
        &Device::Cpu,
    )
    .unwrap();
    let target = Target::Classes(vec![1, 2]);
    let occ = Occlusion::new(OcclusionSettings {
        window: vec![1, 1, 1],
        stride: vec![1, 1, 1],
        baseline: 0.0,
        batch_size: 5,
    })
    .unwrap();
    let a = occ.attribute(&model, &x, &target).unwrap().map;
    let b = GradientXInput::default().attribute(&model, &x, &target).unwrap().map;
    assert!(max_abs_diff(&a, &b) < 1e-12);
}

#[test]
fn occlusion_averages_over_the_covering_windows() {
    // f = sum of the 6 features times (k+1)(i-2.5)/10; window 1x2 over a 2x3 image with
    // stride 1: column 0 and 2 are covered once, column 1 twice.
    let (model, w) = linear_model();
    let x = Tensor::ones((1, 1, 2, 3), DType::F64, &Device::Cpu).unwrap();
    let occ = Occlusion::new(OcclusionSettings {
        window: vec![1, 2],
        stride: vec![1, 1],
        baseline: 0.0,
        batch_size: 2,
    })
    .unwrap();
    let a = host(&occ.attribute(&model, &x, &Target::Classes(vec![0])).unwrap().map);
    let w = &w[0];
    let expected = [
        w[0] + w[1],
        (w[0] + w[1] + w[1] + w[2]) / 2.0,
        w[1] + w[2],
        w[3] + w[4],
        (w[3] + 2.0 * w[4] + w[5]) / 2.0,
        w[4] + w[5],
    ];
    for (a, e) in a.iter().zip(expected) {
        assert!((a - e).abs() < 1e-12, "{a} vs {e}");
    }
}

#[test]
fn rise_with_every_cell_kept_gives_the_logit_everywhere() {
    // p = 1: every mask is 1, so map = (1 / M) sum_i f_t(x) * 1 = f_t(x).
    let model = cnn([1, 8, 8], DType::F64);
    let x = inputs(2, [1, 8, 8], 3, DType::F64);
    let rise =
        Rise::new(RiseSettings { masks: 5, grid: 3, p: 1.0, seed: 0, batch_size: 4 }).unwrap();
    let a = rise.attribute(&model, &x, &Target::Classes(vec![3, 8])).unwrap();
    assert_eq!(a.map.dims(), &[2, 1, 8, 8]);
    let logits = host(&model.forward(&x).unwrap());
    let map = host(&a.map);
    for (n, t) in [(0, 3), (1, 8)] {
        assert!(map[n * 64..(n + 1) * 64].iter().all(|v| (v - logits[n * 10 + t]).abs() < 1e-12));
    }
    // Masks lie in [0, 1] and are seeded.
    let masks =
        Rise::new(RiseSettings { masks: 10, grid: 4, ..Default::default() }).unwrap().masks(8, 8);
    assert!(masks.iter().flatten().all(|m| (0.0..=1.0).contains(m)));
    let again =
        Rise::new(RiseSettings { masks: 10, grid: 4, ..Default::default() }).unwrap().masks(8, 8);
    assert_eq!(masks, again);
}

#[test]
fn control_baselines() {
    let model = cnn([2, 8, 8], DType::F32);
    let x = inputs(2, [2, 8, 8], 4, DType::F32);
    let r = registry::parse("random:seed=4").unwrap();
    let a = r.attribute(&model, &x, &Target::Predicted).unwrap().map;
    let b = r.attribute(&model, &x, &Target::Predicted).unwrap().map;
    assert_eq!(a.dims(), x.dims());
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert!(host(&a).iter().all(|v| (0.0..1.0).contains(v)));
    let s =
        registry::parse("sobel").unwrap().attribute(&model, &x, &Target::Predicted).unwrap().map;
    assert_eq!(s.dims(), x.dims());
    assert!(host(&s).iter().all(|v| *v >= 0.0 && *v <= 1.0 + 1e-6));
}
