//! The variants of model parameter randomization: independent mode, bottom-up order,
//! sMPRT and eMPRT (Hedström et al. 2023/2024). These properties hold for any model, so an
//! untrained conformance CNN (conv1, conv2, fc1, fc2) keeps the test fast.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use skepsis_eval::checks::{
    model_randomization, CheckData, CheckOptions, CheckReport, LayerOrder, MprtVariant,
    RandomizationMode, RandomizationOptions, Record, RunControl,
};
use skepsis_eval::Metric;
use skepsis_nn::train::Silent;
use skepsis_nn::{model_file, Model};

fn model() -> Model {
    let dir = match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    model_file::load(&dir.join("models/cnn"), DType::F32, &Device::Cpu).unwrap()
}

fn data() -> CheckData {
    CheckData::from_images(Tensor::rand(0f32, 1f32, (6, 1, 28, 28), &Device::Cpu).unwrap())
}

fn run(
    mode: RandomizationMode,
    order: LayerOrder,
    variant: MprtVariant,
    x: &CheckData,
) -> CheckReport {
    let options = RandomizationOptions {
        common: CheckOptions {
            seed: 11,
            images: 6,
            metrics: vec![Metric::SpearmanAbs],
            ..CheckOptions::default()
        },
        mode,
        order,
        variant,
        ..RandomizationOptions::default()
    };
    model_randomization(
        &model(),
        x,
        &["gradient".to_string()],
        &options,
        &RunControl::in_memory(),
        &mut Silent,
    )
    .unwrap()
}

/// The gradient records of step `index`, without the step's name.
fn step(report: &CheckReport, index: usize) -> Vec<(usize, String, f64)> {
    report
        .records
        .iter()
        .filter(|r: &&Record| r.method == "gradient" && r.step_index == index)
        .map(|r| (r.image, r.metric.clone(), r.value))
        .collect()
}

#[test]
fn independent_and_cascading_share_the_first_step_and_then_diverge() {
    let x = data();
    let cascading =
        run(RandomizationMode::Cascading, LayerOrder::TopDown, MprtVariant::Standard, &x);
    let independent =
        run(RandomizationMode::Independent, LayerOrder::TopDown, MprtVariant::Standard, &x);
    assert_eq!(cascading.steps.len(), 5);
    assert_eq!(independent.steps.len(), 5);
    // Step 1 randomizes only the top layer in both modes, with the same seeded weights.
    assert!(!step(&cascading, 1).is_empty());
    assert_eq!(step(&cascading, 1), step(&independent, 1));
    // Later steps randomize different sets of layers.
    assert_ne!(step(&cascading, 3), step(&independent, 3));
}

#[test]
fn bottom_up_reverses_the_order_and_ends_at_the_same_fully_random_model() {
    let x = data();
    let top_down =
        run(RandomizationMode::Cascading, LayerOrder::TopDown, MprtVariant::Standard, &x);
    let bottom_up =
        run(RandomizationMode::Cascading, LayerOrder::BottomUp, MprtVariant::Standard, &x);
    let names = |r: &CheckReport| {
        r.steps.iter().skip(1).map(|s| s.trim_start_matches('+').to_string()).collect::<Vec<_>>()
    };
    let mut reversed = names(&top_down);
    reversed.reverse();
    assert_eq!(names(&bottom_up), reversed);
    // Randomization is seeded per (seed, layer), not per step: after the last step both
    // orders have randomized every layer with the same weights.
    assert_eq!(step(&top_down, 4), step(&bottom_up, 4));
    assert_ne!(step(&top_down, 1), step(&bottom_up, 1));
}

#[test]
fn smooth_mprt_with_one_noiseless_sample_is_the_standard_test() {
    let x = data();
    let standard =
        run(RandomizationMode::Cascading, LayerOrder::TopDown, MprtVariant::Standard, &x);
    let smooth = run(
        RandomizationMode::Cascading,
        LayerOrder::TopDown,
        MprtVariant::Smooth { samples: 1, sigma: 0.0 },
        &x,
    );
    for k in 0..standard.steps.len() {
        assert_eq!(step(&standard, k), step(&smooth, k), "step {k}");
    }
    // With noise the explanations change.
    let noisy = run(
        RandomizationMode::Cascading,
        LayerOrder::TopDown,
        MprtVariant::Smooth { samples: 4, sigma: 0.1 },
        &x,
    );
    assert_ne!(step(&standard, 2), step(&noisy, 2));
}

#[test]
fn efficient_mprt_compares_only_the_original_and_the_fully_random_model() {
    let x = data();
    let report = run(RandomizationMode::Cascading, LayerOrder::TopDown, MprtVariant::Efficient, &x);
    // One step: the fully randomized model, scored against the original.
    assert_eq!(report.steps, vec!["all-layers"]);
    // The edge detector ignores the model: its histogram, hence its entropy, cannot change.
    let sobel: Vec<f64> = report
        .records
        .iter()
        .filter(|r| r.method == "sobel" && r.step_index == 0)
        .map(|r| r.value)
        .collect();
    assert_eq!(sobel.len(), 6);
    assert!(sobel.iter().all(|v| v.abs() < 1e-12), "{sobel:?}");
    let gradient = step(&report, 0);
    assert_eq!(gradient.len(), 6);
    assert!(gradient.iter().any(|(_, _, v)| v.abs() > 1e-6), "{gradient:?}");
}
