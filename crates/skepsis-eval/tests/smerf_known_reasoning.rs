//! A hand-built model whose true reasoning is known exactly (Kim et al. 2022's premise, with
//! the model built rather than trained): it responds only to Box1, so a faithful map puts all
//! its mass on Box1.
//!
//! Model: conv 3->1, 10x10 kernel of ones, stride 1, VALID, bias -299.9 -> ReLU -> flatten ->
//! linear 2: logit_1 = sum of the ReLU outputs, logit_0 = 0.05. A 10x10 window sums 300 over
//! its 3 channels only when it covers a fully white 10x10 square, i.e. exactly Box1 (text
//! strokes and the 4x4 Box2 never fill a 10x10 window, and a letter drawn over Box1 keeps it
//! white), so in practice exactly one window is active (0.1 > 0.05: class 1 iff Box1 present, setup 1.11's rule). The gradient of logit_1
//! is therefore 1 on the 10x10x3 Box1 pixels and 0 elsewhere:
//! - unblurred: AFL(Box1) = 1, and AFL(text, Box2) = the share of Box1 they overlap (0 when
//!   they do not touch Box1);
//! - SMERF's 7x7 blur spreads the square over 16x16; an interior box keeps
//!   (58/70)^2 = 0.686 of the mass (1-D: blurred box sums 4+5+6+7+7+7+7+6+5+4 = 58 of 70).

use candle_core::{Device, Tensor};
use skepsis_data::{generate_smerf, Background, RegionKind, SmerfConfig, SmerfSetup};
use skepsis_eval::ground_truth::{BlurBoundary, FocusOptions};
use skepsis_eval::smerf::{
    evaluate_model, ExplainTarget, MethodEntry, ScoringOptions, SmerfRunConfig, VerdictStatus,
};
use skepsis_nn::ops::Conv2dSpec;
use skepsis_nn::train::{accuracy, LabelledData, Silent};
use skepsis_nn::{Conv2d, Layer, Linear, Model};

fn box1_detector() -> Model {
    let dev = Device::Cpu;
    let kernel = Tensor::ones((1, 3, 10, 10), candle_core::DType::F32, &dev).unwrap();
    let bias = Tensor::new(&[-299.9f32], &dev).unwrap();
    let conv = Conv2d::new(kernel, Some(bias), Conv2dSpec::default()).unwrap();
    let n = 55 * 55;
    let mut w = vec![0f32; 2 * n];
    w[n..].fill(1.0);
    let weight = Tensor::from_vec(w, (2, n), &dev).unwrap();
    let fc_bias = Tensor::new(&[0.05f32, 0.0], &dev).unwrap();
    let fc = Linear::new(weight, Some(fc_bias)).unwrap();
    Model::sequential(
        "box1-detector",
        vec![
            ("conv".into(), Layer::Conv2d(conv)),
            ("relu".into(), Layer::Relu),
            ("flatten".into(), Layer::Flatten),
            ("logits".into(), Layer::Linear(fc)),
        ],
        vec![3, 64, 64],
    )
    .unwrap()
}

fn config(blur_size: usize) -> SmerfRunConfig {
    let mut c = SmerfRunConfig::paper(vec![SmerfSetup::SimpleFr]);
    c.images_per_bucket = 5;
    c.methods = vec![MethodEntry::new("Gradient", "gradient"), MethodEntry::new("Edge", "sobel")];
    c.target = ExplainTarget::Label;
    c.scoring = ScoringOptions {
        focus: FocusOptions { blur_size, boundary: BlurBoundary::Reflect101 },
        ..ScoringOptions::default()
    };
    c
}

#[test]
fn gradient_of_a_box1_detector_focuses_on_box1_only() {
    let splits = generate_smerf(&SmerfConfig {
        setup: SmerfSetup::SimpleFr,
        background: Background::Black,
        scale: 0.01, // 5 test images per bucket
        seed: 3,
    })
    .unwrap();
    let model = box1_detector();
    let test = LabelledData { images: splits.test.images(), labels: splits.test.labels() };
    assert_eq!(accuracy(&model, test, 64).unwrap(), 1.0, "the detector implements 1.11's rule");

    let pool = splits.train.images();
    let scores = evaluate_model(&model, &splits.test, pool, &config(1), &mut Silent).unwrap();
    let regions = splits.test.regions().unwrap();
    let mut with_box1 = 0;
    for r in scores.images.iter().filter(|r| r.method == "Gradient") {
        let Some(p) = r.scores.primary_afl else { continue };
        with_box1 += 1;
        assert!((p - 1.0).abs() < 1e-9, "image {}: primary AFL {p}", r.index);
        // IoU keeps the 100 pixels of largest value: exactly Box1.
        assert!((r.scores.primary_iou.unwrap() - 1.0).abs() < 1e-9);
        // SMERF only keeps the text *anchor* away from Box1, so the text's 13x19 box may
        // overlap Box1 (the letter is drawn over it): the secondary mass is exactly the part
        // of Box1 that the secondary boxes cover, 0 when they do not touch it.
        let image_regions = &regions[r.index];
        let b1 = image_regions.iter().find(|g| g.object == "box1").unwrap().bbox().unwrap();
        let covered = (b1.y0..b1.y1)
            .flat_map(|y| (b1.x0..b1.x1).map(move |x| (y, x)))
            .filter(|&(y, x)| {
                image_regions
                    .iter()
                    .any(|g| g.kind == RegionKind::Secondary && g.shape.contains(y, x))
            })
            .count();
        let secondary = r.scores.secondary_afl.unwrap_or(0.0);
        assert!((secondary - covered as f64 / 100.0).abs() < 1e-9, "image {}", r.index);
    }
    assert_eq!(with_box1, 30, "six of 1.11's twelve buckets hold Box1, 5 images each");
    let summary = |label: &str| scores.methods.iter().find(|m| m.method == label).unwrap();
    assert_eq!(summary("Gradient").verdict.status, VerdictStatus::Pass);
    // The edge detector sees every object: it must not look like the detector's reasoning.
    let edge = summary("Edge").summary.primary_afl.as_ref().unwrap().average;
    assert!(edge < 0.8, "edge baseline primary AFL {edge}");

    // With SMERF's 7x7 blur the Box1 mass drops to about 0.686 (interior boxes; border boxes
    // keep more under reflect-101), while the secondary regions stay near 0.
    let blurred = evaluate_model(&model, &splits.test, pool, &config(7), &mut Silent).unwrap();
    let g = blurred.methods.iter().find(|m| m.method == "Gradient").unwrap();
    let p = g.summary.primary_afl.as_ref().unwrap();
    let s = g.summary.secondary_afl.as_ref().unwrap();
    assert!(p.minimum > 0.6 && p.average < 0.9, "blurred primary AFL {p:?}");
    assert!(s.average < 0.1, "blurred secondary AFL {s:?}");
    assert_eq!(g.verdict.status, VerdictStatus::Pass);
}
