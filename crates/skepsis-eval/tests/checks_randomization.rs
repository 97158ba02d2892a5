//! Model parameter randomization and random logit on an SC CNN (Adebayo et al. 2018) trained
//! here on synthetic digits, plus resume. Run in release mode.

use std::sync::OnceLock;

use skepsis_data::{generate_digits, DigitsConfig, Splits};
use skepsis_eval::checks::{
    model_randomization, random_logit, CheckData, CheckOptions, CheckReport, Outcome,
    RandomLogitOptions, RandomizationOptions, RunControl,
};
use skepsis_eval::Metric;
use skepsis_nn::train::{accuracy, train, LabelledData, Silent, TrainConfig};
use skepsis_nn::zoo::{build, Architecture};
use skepsis_nn::Model;

struct Trained {
    model: Model,
    data: Splits,
}

/// SC CNN trained on 3000 synthetic digits for 3 epochs (Adam 1e-3, batch 50): above 92% test
/// accuracy for every initialization seed tried (0-3); two epochs gave 84-95%.
fn trained() -> &'static Trained {
    static CELL: OnceLock<Trained> = OnceLock::new();
    CELL.get_or_init(|| {
        let data = generate_digits(&DigitsConfig { train: 3000, test: 200, seed: 1 }).unwrap();
        let model = build(Architecture::ScCnn, [1, 28, 28], 10, 0).unwrap();
        let config =
            TrainConfig { batch_size: 50, max_epochs: 3, seed: 0, ..TrainConfig::default() };
        let labelled = LabelledData { images: data.train.images(), labels: data.train.labels() };
        let (model, _) = train(&model, labelled, None, &config, &mut Silent).unwrap();
        let test = LabelledData { images: data.test.images(), labels: data.test.labels() };
        let acc = accuracy(&model, test, 256).unwrap();
        eprintln!("SC CNN test accuracy after 3 epochs: {acc:.3}");
        assert!(acc > 0.9, "the SC CNN did not train: test accuracy {acc}");
        Trained { model, data }
    })
}

fn options(images: usize, metrics: Vec<Metric>) -> RandomizationOptions {
    RandomizationOptions {
        common: CheckOptions { seed: 7, images, metrics, ..CheckOptions::default() },
        ..RandomizationOptions::default()
    }
}

fn curve(report: &CheckReport, method: &str, metric: &str) -> Vec<f64> {
    report
        .steps
        .iter()
        .map(|s| report.summary(method, s, metric).map(|s| s.mean).unwrap())
        .collect()
}

#[test]
fn gradient_cascading_spearman_falls_and_the_random_map_sits_near_zero() {
    let t = trained();
    let data = CheckData::from_dataset(&t.data.test);
    let report = model_randomization(
        &t.model,
        &data,
        &["gradient".to_string()],
        &options(32, vec![Metric::SpearmanAbs, Metric::Ssim]),
        &RunControl::in_memory(),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(report.steps, vec!["original", "logits", "fc1", "conv2", "conv1"]);
    let gradient = curve(&report, "gradient", "spearman-abs");
    let random = curve(&report, "random", "spearman-abs");
    let edges = curve(&report, "sobel", "spearman-abs");
    eprintln!("gradient spearman-abs: {gradient:.3?}");
    eprintln!("gradient ssim:         {:.3?}", curve(&report, "gradient", "ssim"));
    eprintln!("random   spearman-abs: {random:.3?}");
    eprintln!("sobel    spearman-abs: {edges:.3?}");
    eprintln!("{}", skepsis_eval::checks::verdict_table(&report));
    // Trained vs trained: identical maps.
    assert_eq!(gradient[0], 1.0);
    // Randomizing the logits layer changes the map clearly, and the cascade keeps lowering it.
    // Near the bottom the maps are nearly unrelated to the original: the standard error of a
    // 32-image mean Spearman of unrelated 784-pixel maps is about 1/sqrt(784 * 32) = 0.006,
    // and adjacent steps may wobble by that much either way (the trained weights, and with
    // them these curves, move with the rounding of the kernels that trained them).
    assert!(gradient[1] < 0.5, "{gradient:?}");
    for k in 2..5 {
        assert!(gradient[k] <= gradient[k - 1] + 0.012, "{gradient:?}");
    }
    assert!(gradient[4] < gradient[1] - 0.02, "{gradient:?}");
    // Two independent random maps are unrelated.
    for r in &random[1..] {
        assert!(r.abs() < 0.1, "{random:?}");
    }
    // The edge detector ignores the model: its maps never change.
    assert!(edges.iter().all(|&e| e == 1.0), "{edges:?}");
    assert_eq!(report.verdict("sobel").unwrap().outcome, Outcome::Fail);
    assert_eq!(report.verdict("gradient").unwrap().outcome, Outcome::Pass);
    assert_eq!(report.records.len(), 3 * 5 * 32 * 2);
}

#[test]
fn resume_after_two_steps_reproduces_the_uninterrupted_records() {
    let t = trained();
    let data = CheckData::from_dataset(&t.data.test);
    let methods = vec!["gradient".to_string(), "guided-backprop".to_string()];
    let opts = options(6, vec![Metric::SpearmanAbs, Metric::Hog]);
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = model_randomization(
        &t.model,
        &data,
        &methods,
        &opts,
        &RunControl::to_dir(whole_dir.path()),
        &mut Silent,
    )
    .unwrap();
    assert!(whole.complete);

    let dir = tempfile::tempdir().unwrap();
    let first = RunControl { max_steps: Some(2), ..RunControl::to_dir(dir.path()) };
    let partial =
        model_randomization(&t.model, &data, &methods, &opts, &first, &mut Silent).unwrap();
    assert!(!partial.complete);
    assert!(partial.verdicts.iter().all(|v| v.outcome == Outcome::NotApplicable));
    assert!(!dir.path().join("report.json").exists());
    assert_eq!(std::fs::read_dir(dir.path().join("steps")).unwrap().count(), 2);

    // Without --resume or --force the existing output is refused.
    let refused = model_randomization(
        &t.model,
        &data,
        &methods,
        &opts,
        &RunControl::to_dir(dir.path()),
        &mut Silent,
    );
    assert!(refused.unwrap_err().to_string().contains("already holds check output"));
    // Resuming with other parameters is refused too.
    let other = options(5, vec![Metric::SpearmanAbs, Metric::Hog]);
    let resume = RunControl { resume: true, ..RunControl::to_dir(dir.path()) };
    let mismatch = model_randomization(&t.model, &data, &methods, &other, &resume, &mut Silent);
    assert!(mismatch.unwrap_err().to_string().contains("different parameters"));

    let resumed =
        model_randomization(&t.model, &data, &methods, &opts, &resume, &mut Silent).unwrap();
    assert!(resumed.complete);
    assert_eq!(resumed, whole);
    let csv = |d: &std::path::Path| std::fs::read_to_string(d.join("records.csv")).unwrap();
    assert_eq!(csv(dir.path()), csv(whole_dir.path()));
    let json: CheckReport =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json, whole);
}

#[test]
fn random_logit_separates_gradient_from_the_edge_detector() {
    let t = trained();
    let data = CheckData::from_dataset(&t.data.test);
    let opts = RandomLogitOptions {
        common: CheckOptions {
            seed: 3,
            images: 16,
            metrics: vec![Metric::Ssim, Metric::SpearmanAbs],
            ..CheckOptions::default()
        },
        ..RandomLogitOptions::default()
    };
    let report = random_logit(
        &t.model,
        &data,
        &["gradient".to_string()],
        &opts,
        &RunControl::in_memory(),
        &mut Silent,
    )
    .unwrap();
    eprintln!("{}", skepsis_eval::checks::verdict_table(&report));
    let mean = |m: &str| report.summary(m, "random-logit", "ssim").unwrap().mean;
    assert!(mean("gradient") < 0.9, "{}", mean("gradient"));
    assert_eq!(mean("sobel"), 1.0);
    assert!(mean("random").abs() < 0.1);
    assert_eq!(report.verdict("sobel").unwrap().outcome, Outcome::Fail);
}
