//! The report page of a run directory: every user-supplied string (model, method, step and
//! class names, notes, reasons) is escaped, and the page's verdict matrix is the records'.

use std::path::Path;

use skepsis_eval::checks::{summarize, CheckReport, MethodRecord, Outcome, Record, Verdict};
use skepsis_report::run::{
    write_report, RunManifest, Stage, StageKind, StageStatus, VerdictMatrix, VERDICTS_JSON,
};

const EVIL: &str = "<script>alert('x')</script>&\"";

fn check_report() -> CheckReport {
    let methods = [EVIL, "gradient"];
    let steps = vec!["original".to_string(), format!("layer {EVIL}")];
    let mut records = Vec::new();
    for m in methods {
        for (k, step) in steps.iter().enumerate() {
            for image in 0..3 {
                records.push(Record {
                    method: m.to_string(),
                    step_index: k,
                    step: step.clone(),
                    image,
                    metric: "spearman-abs".into(),
                    value: if k == 0 { 1.0 } else { 0.1 * image as f64 },
                    degenerate: false,
                });
            }
        }
    }
    CheckReport {
        check: "model-randomization".into(),
        crate_version: "0".into(),
        seed: 7,
        parameters: serde_json::json!({ "note": EVIL }),
        methods: methods
            .iter()
            .map(|m| MethodRecord { label: m.to_string(), name: m.to_string(), baseline: false })
            .collect(),
        summaries: summarize(&records),
        steps,
        records,
        verdicts: vec![
            Verdict {
                method: EVIL.into(),
                baseline: false,
                outcome: Outcome::Pass,
                value: Some(0.1),
                rule: EVIL.into(),
                reason: EVIL.into(),
            },
            Verdict {
                method: "gradient".into(),
                baseline: false,
                outcome: Outcome::Fail,
                value: Some(0.9),
                rule: "r".into(),
                reason: "because".into(),
            },
        ],
        rule: EVIL.into(),
        notes: vec![format!("class names: {EVIL}")],
        refusal: None,
        complete: true,
    }
}

fn write_run(dir: &Path) {
    let stage_dir = dir.join("checks/m");
    std::fs::create_dir_all(&stage_dir).unwrap();
    let report = serde_json::to_string(&check_report()).unwrap();
    std::fs::write(stage_dir.join("report.json"), report).unwrap();
    let manifest = RunManifest {
        tool: "skepsis".into(),
        version: "0".into(),
        profile: EVIL.into(),
        seed: 7,
        threads: 1,
        data: EVIL.into(),
        parameters: serde_json::json!({ "model": EVIL }),
        stages: vec![Stage {
            id: "checks/m".into(),
            kind: StageKind::Check,
            title: EVIL.into(),
            column: Some(EVIL.into()),
            model: Some(EVIL.into()),
            dir: "checks/m".into(),
            seconds: 1.0,
            status: StageStatus::Done,
            summary: EVIL.into(),
            command: format!("skepsis check randomization --model '{EVIL}'"),
        }],
        seconds: 1.0,
        complete: true,
    };
    manifest.write(dir).unwrap();
}

#[test]
fn every_user_string_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    let outcome = write_report(dir.path()).unwrap();
    let html = std::fs::read_to_string(&outcome.index).unwrap();
    assert!(!html.contains("<script"), "unescaped script tag in the page");
    assert!(!html.contains("alert('x')"), "unescaped quote in the page");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
    assert!(html.contains("id=\"verdicts\""));
    // The curve chart and its PNG copy exist.
    assert!(html.contains("<svg"));
    assert!(outcome.figures.iter().any(|f| f.ends_with("spearman-abs.png")));
    for f in &outcome.figures {
        let bytes = std::fs::read(dir.path().join(f)).unwrap();
        image::load_from_memory(&bytes).unwrap();
    }
}

#[test]
fn the_page_matrix_is_the_records_matrix() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    let outcome = write_report(dir.path()).unwrap();
    let json = std::fs::read_to_string(dir.path().join(VERDICTS_JSON)).unwrap();
    let matrix: VerdictMatrix = serde_json::from_str(&json).unwrap();
    assert_eq!(matrix, outcome.matrix);
    assert_eq!(matrix.columns.len(), 1);
    let cell = |m: &str| &matrix.rows.iter().find(|r| r.method == m).unwrap().cells[0];
    assert_eq!((cell(EVIL).outcome, cell(EVIL).value), (Outcome::Pass, Some(0.1)));
    assert_eq!(cell("gradient").outcome, Outcome::Fail);
    let text = matrix.to_text();
    assert!(text.contains("gradient") && text.contains("FAIL"));
}

#[test]
fn corrupt_records_are_an_error_not_a_page() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    std::fs::write(dir.path().join("checks/m/report.json"), "{ not json").unwrap();
    let err = write_report(dir.path()).unwrap_err().to_string();
    assert!(err.contains("report.json") && err.contains("unreadable records"), "{err}");
    let missing = tempfile::tempdir().unwrap();
    assert!(write_report(missing.path()).unwrap_err().to_string().contains("run.json"));
}
