//! `skepsis check ...` end to end with the real binary on a small generated data set and a
//! briefly trained model (release mode).

use std::process::Output;

mod common;
use common::skepsis;

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn randomization_and_input_invariance_write_records_and_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&skepsis(
        d,
        &["data", "generate", "digits", "--train", "300", "--test", "20", "--out", "data"],
    ));
    ok(&skepsis(
        d,
        &[
            "train",
            "--arch",
            "kindermans-mlp",
            "--data",
            "data",
            "--epochs",
            "1",
            "--lr",
            "1e-3",
            "--out",
            "model",
        ],
    ));

    let check = [
        "check",
        "randomization",
        "--model",
        "model",
        "--data",
        "data",
        "--methods",
        "gradient,gradient-x-input",
        "--metrics",
        "spearman-abs,ssim",
        "--images",
        "4",
        "--out",
        "mprt",
    ];
    let table = ok(&skepsis(d, &check));
    assert!(
        table.contains("passes when the mean spearman-abs at steps 'logits' to 'fc1'"),
        "{table}"
    );
    assert!(table.contains("gradient-x-input") && table.contains("random (baseline)"), "{table}");
    for file in ["report.json", "records.csv", "summary.csv", "verdicts.csv"] {
        assert!(d.join("mprt").join(file).exists(), "{file}");
    }
    let csv = std::fs::read_to_string(d.join("mprt/records.csv")).unwrap();
    assert!(csv.starts_with("check,version,seed,method,baseline,step_index,step,image,metric"));
    // methods x steps (original + 4 layers) x images x metrics, plus the header.
    assert_eq!(csv.lines().count(), 1 + 4 * 5 * 4 * 2);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("mprt/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["check"], "model-randomization");
    assert_eq!(report["steps"].as_array().unwrap().len(), 5);

    // Existing output: refused with one line and status 2; --force replaces it.
    let again = skepsis(d, &check);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{err}");
    assert!(err.starts_with("skepsis: ") && err.contains("--force"), "{err}");
    // Example maps for the report: the first --examples images (default 4) of every step.
    let examples = d.join("mprt/examples");
    assert!(
        examples.join("step-000.safetensors").exists()
            && examples.join("step-004.safetensors").exists()
    );
    let mut forced = check.to_vec();
    forced.push("--force");
    ok(&skepsis(d, &forced));
    // --force replaces all earlier output: with no examples kept, none survive from before.
    forced.extend(["--examples", "0"]);
    ok(&skepsis(d, &forced));
    assert!(!examples.exists());

    // Input invariance: gradient x input fails, so --fail-on-verdict exits with 1.
    let invariance = [
        "check",
        "input-invariance",
        "--model",
        "model",
        "--data",
        "data",
        "--methods",
        "gradient,gradient-x-input,ig:steps=8,baseline=constant,value=black",
        "--images",
        "3",
        "--out",
        "inv",
        "--fail-on-verdict",
    ];
    let o = skepsis(d, &invariance);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{table}\n{}", String::from_utf8_lossy(&o.stderr));
    let verdict = |m: &str| {
        table.lines().find(|l| l.starts_with(&format!("{m} "))).unwrap_or_default().to_string()
    };
    assert!(verdict("gradient").contains("pass"), "{table}");
    assert!(verdict("gradient-x-input").contains("fail"), "{table}");
    assert!(verdict("ig:steps=8,baseline=constant,value=black").contains("pass"), "{table}");

    // Bad arguments: one line, status 2.
    let bad = skepsis(
        d,
        &[
            "check",
            "rank1",
            "--model",
            "model",
            "--data",
            "data",
            "--methods",
            "nope",
            "--out",
            "r",
        ],
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.starts_with("skepsis: ") && err.contains("unknown method 'nope'"), "{err}");
}
