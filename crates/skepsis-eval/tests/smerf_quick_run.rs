//! A scaled-down SMERF run of setup 1.11 (Simple-FR, label = Box1 present; Kim et al. 2022):
//! generates the data (5% of the paper's counts: 100 training and 25 test images per bucket),
//! trains TextBoxCNN to the 0.98 train AND test accuracy threshold (quick profile: Adam
//! lr 1e-3, batch 128), scores every SMERF method plus CGI and the baselines on 3 seeded
//! images per bucket with reduced sample counts, and writes the complete record set.
//!
//! The full-size run is the documented command `skepsis check smerf --setup all ...`, not a
//! test.

use skepsis_data::SmerfSetup;
use skepsis_eval::smerf::{
    run_smerf, smerf_methods, verdict_table, write_records, MethodEntry, SmerfRunConfig,
    TrainingProfile, VerdictStatus, RECORD_FILES,
};
use skepsis_nn::train::Silent;

/// The SMERF method list with the expensive methods' sample counts reduced for CI.
fn quick_methods() -> Vec<MethodEntry> {
    smerf_methods()
        .into_iter()
        .map(|m| {
            let spec = match m.label.as_str() {
                "SmoothGrad" => "smoothgrad-sq:samples=8,sigma=0.1,scale=absolute".to_string(),
                "Integrated Gradients" => {
                    "integrated-gradients:steps=16,baseline=zero,rule=innvestigate".to_string()
                }
                "DeepSHAP" => "deepshap:references=16".to_string(),
                _ => m.spec,
            };
            MethodEntry::new(m.label, spec)
        })
        .collect()
}

#[test]
fn quick_simple_fr_run_trains_to_threshold_and_writes_every_record() {
    let mut config = SmerfRunConfig::paper(vec![SmerfSetup::SimpleFr]);
    config.scale = 0.05;
    config.seed = 0;
    config.training.profile = TrainingProfile::Quick;
    config.training.max_epochs = Some(12);
    config.training.attempts = 3;
    config.images_per_bucket = 3;
    config.methods = quick_methods();
    let outcome = run_smerf(&config, &mut Silent).unwrap();
    let report = &outcome.report;
    let setup = &report.setups[0];
    let last = setup.training.attempts.last().unwrap();
    eprintln!(
        "1.11: {} attempt(s), train accuracy {:.4}, test accuracy {:.4}, {} epochs",
        setup.training.attempts.len(),
        last.train_accuracy,
        last.test_accuracy,
        last.epochs
    );
    assert!(setup.training.accepted(), "{:?}", setup.training);
    assert!(last.train_accuracy >= 0.98 && last.test_accuracy >= 0.98);
    assert_eq!((setup.train_images, setup.test_images), (1200, 300));
    assert_eq!(setup.bucket_accuracy.len(), 12);

    let scores = setup.scores.as_ref().expect("accepted models are scored");
    let methods = config.methods.len();
    assert_eq!(scores.selected.len(), 12 * 3);
    assert_eq!(scores.images.len(), 12 * 3 * methods);
    assert_eq!(scores.buckets.len(), 12 * methods);
    assert_eq!(scores.methods.len(), methods);
    assert_eq!(setup.verdicts.len(), methods);
    for m in &scores.methods {
        let p = m.summary.primary_afl.as_ref().expect("Box1 buckets give primary scores");
        let s = m.summary.secondary_afl.as_ref().expect("text/Box2 buckets give secondary scores");
        assert_eq!(p.buckets, 6);
        assert!(m.verdict.status != VerdictStatus::NotScored);
        assert!(m.summary.primary_iou.is_some() && m.summary.primary_mafl.is_some());
        eprintln!(
            "{:<24} primary AFL {:.3} (min {:.3})  secondary AFL {:.3}  {}",
            m.method,
            p.average,
            p.minimum,
            s.average,
            m.verdict.status.word()
        );
    }
    // The random map spreads its mass uniformly: Box1 (100 of 4096 px) gets ~2.4%.
    let random = scores.methods.iter().find(|m| m.method == "Random").unwrap();
    assert!(random.summary.primary_afl.as_ref().unwrap().average < 0.1);
    assert_eq!(random.verdict.status, VerdictStatus::Fail);
    assert!(report.groups.iter().all(|g| g.group == "simple"));
    assert!(report.distinguishing.is_none(), "one model: nothing to distinguish");

    let table = verdict_table(report);
    assert!(table.contains("Gradient") && table.contains("rule: a method passes"));
    let dir = tempfile::tempdir().unwrap();
    write_records(report, dir.path(), false).unwrap();
    for file in RECORD_FILES {
        assert!(dir.path().join(file).is_file(), "{file} written");
    }
    let images_csv = std::fs::read_to_string(dir.path().join("images.csv")).unwrap();
    assert_eq!(images_csv.lines().count(), 1 + 12 * 3 * methods);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("smerf.json")).unwrap())
            .unwrap();
    assert_eq!(json["config"]["seed"], 0);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    // Never overwritten without force.
    assert!(write_records(report, dir.path(), false).is_err());
    write_records(report, dir.path(), true).unwrap();
}
