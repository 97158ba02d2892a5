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

/// The check's records equal maps computed step by step, without the shared activations:
/// for each cascading step, the model with `order[..k]` randomized (seed 11), its predicted
/// classes, the gradient on it and Spearman of |map| against the trained model's map.
#[test]
fn cascading_records_equal_an_independent_recomputation() {
    use skepsis_attr::{registry, Target};
    use skepsis_eval::{compare, MapDims};
    use skepsis_nn::{randomize, train::predict, RandomizeOptions};

    let x = data();
    let report = run(RandomizationMode::Cascading, LayerOrder::TopDown, MprtVariant::Standard, &x);
    let plain = model();
    let method = registry::parse("gradient").unwrap();
    let map = |m: &Model| -> Vec<f64> {
        let classes = predict(m, &x.images, 256).unwrap();
        let a = method.attribute(m, &x.images, &Target::Classes(classes)).unwrap();
        a.map.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
    };
    let original = map(&plain);
    let order = ["fc2", "fc1", "conv2", "conv1"];
    assert_eq!(&report.steps[1..], &order.map(String::from));
    for k in 1..=order.len() {
        let randomized = randomize(&plain, &order[..k], 11, RandomizeOptions::default()).unwrap();
        let maps = map(&randomized);
        let expected: Vec<(usize, String, f64)> = (0..6)
            .map(|i| {
                let (a, b) = (&original[i * 784..][..784], &maps[i * 784..][..784]);
                let s = compare(Metric::SpearmanAbs, a, b, MapDims::channels(1, 28, 28)).unwrap();
                (i, Metric::SpearmanAbs.name().to_string(), s.value)
            })
            .collect();
        assert_eq!(step(&report, k), expected, "step {k}");
    }
}
