//! Writing a [`SmerfReport`] as JSON and CSV, and the verdict table printed by the CLI.

use std::fmt::Write as _;
use std::path::Path;

use super::error::{SmerfError, SmerfResult};
use super::evaluate::VerdictStatus;
use super::stats::MetricKey;
use super::SmerfReport;

/// The files [`write_records`] writes into its directory.
pub const RECORD_FILES: [&str; 8] = [
    "smerf.json",
    "images.csv",
    "buckets.csv",
    "setups.csv",
    "accuracy.csv",
    "training.csv",
    "groups.csv",
    "distinguishing.csv",
];

/// Writes `report` into `dir` (created if needed): `smerf.json` (everything) and one CSV per
/// table: `images.csv` (per setup, method and image), `buckets.csv` (per bucket: mean and std),
/// `setups.csv` (per setup and method: average / minimum over buckets and the verdict),
/// `accuracy.csv` (per-bucket accuracy of the models), `training.csv` (every attempt),
/// `groups.csv` (simple vs complex) and `distinguishing.csv` (the distinguishing-models view).
///
/// Errors: any of [`RECORD_FILES`] already exists and `force` is false; I/O failures.
pub fn write_records(report: &SmerfReport, dir: &Path, force: bool) -> SmerfResult<()> {
    if !force {
        if let Some(existing) = RECORD_FILES.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
            return Err(SmerfError::OutputExists { path: existing });
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| SmerfError::Io { path: dir.to_path_buf(), source: e })?;
    let json =
        serde_json::to_string_pretty(report).map_err(|e| SmerfError::Serialize(e.to_string()))?;
    let files = [
        ("smerf.json", json),
        ("images.csv", images_csv(report)),
        ("buckets.csv", buckets_csv(report)),
        ("setups.csv", setups_csv(report)),
        ("accuracy.csv", accuracy_csv(report)),
        ("training.csv", training_csv(report)),
        ("groups.csv", groups_csv(report)),
        ("distinguishing.csv", distinguishing_csv(report)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| SmerfError::Io { path, source: e })?;
    }
    let pixels: Vec<(String, super::ExamplePixels)> = report
        .setups
        .iter()
        .filter_map(|s| Some((s.setup.clone(), s.scores.as_ref()?.example_pixels.clone())))
        .collect();
    super::write_examples(&pixels, dir)
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v}"))
}

fn row(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

fn metric_header(suffixes: &[&str]) -> Vec<String> {
    MetricKey::ALL
        .iter()
        .flat_map(|k| suffixes.iter().map(move |s| format!("{}{s}", k.name())))
        .collect()
}

fn images_csv(report: &SmerfReport) -> String {
    let mut out = String::new();
    let mut header: Vec<String> =
        ["setup", "method", "bucket", "bucket_name", "index", "label", "predicted"]
            .map(String::from)
            .to_vec();
    header.extend(metric_header(&[""]));
    header.push("constant_map".into());
    row(&mut out, &header);
    for s in &report.setups {
        for r in s.scores.iter().flat_map(|sc| &sc.images) {
            let mut cells = vec![
                s.setup.clone(),
                r.method.clone(),
                r.bucket.to_string(),
                r.bucket_name.clone(),
                r.index.to_string(),
                r.label.to_string(),
                r.predicted.to_string(),
            ];
            cells.extend(MetricKey::ALL.iter().map(|&k| opt(*r.scores.get(k))));
            cells.push(r.constant_map.to_string());
            row(&mut out, &cells);
        }
    }
    out
}

fn buckets_csv(report: &SmerfReport) -> String {
    let mut out = String::new();
    let mut header: Vec<String> =
        ["setup", "method", "bucket", "bucket_name", "images", "constant_maps"]
            .map(String::from)
            .to_vec();
    header.extend(metric_header(&["_n", "_mean", "_std"]));
    row(&mut out, &header);
    for s in &report.setups {
        for b in s.scores.iter().flat_map(|sc| &sc.buckets) {
            let mut cells = vec![
                s.setup.clone(),
                b.method.clone(),
                b.bucket.to_string(),
                b.bucket_name.clone(),
                b.images.to_string(),
                b.constant_maps.to_string(),
            ];
            for &k in &MetricKey::ALL {
                let st = b.stats.get(k);
                cells.push(st.map_or(String::new(), |s| s.n.to_string()));
                cells.push(opt(st.map(|s| s.mean)));
                cells.push(opt(st.map(|s| s.std)));
            }
            row(&mut out, &cells);
        }
    }
    out
}

fn setups_csv(report: &SmerfReport) -> String {
    let mut out = String::new();
    let mut header: Vec<String> =
        ["setup", "complexity", "method", "spec", "scored"].map(String::from).to_vec();
    header.extend(metric_header(&["_average", "_minimum", "_minimum_bucket"]));
    header.extend(["verdict", "primary_above_secondary", "reason", "rule"].map(String::from));
    row(&mut out, &header);
    for s in &report.setups {
        for (method, verdict) in &s.verdicts {
            let summary =
                s.scores.as_ref().and_then(|sc| sc.methods.iter().find(|m| &m.method == method));
            let spec = report
                .config
                .methods
                .iter()
                .find(|m| &m.label == method)
                .map_or(String::new(), |m| m.spec.clone());
            let mut cells = vec![
                s.setup.clone(),
                s.complexity.clone(),
                method.clone(),
                spec,
                summary.is_some().to_string(),
            ];
            for &k in &MetricKey::ALL {
                let b = summary.and_then(|m| m.summary.get(k).as_ref());
                cells.push(opt(b.map(|b| b.average)));
                cells.push(opt(b.map(|b| b.minimum)));
                cells.push(b.map_or(String::new(), |b| b.minimum_bucket.clone()));
            }
            cells.push(verdict.status.word().to_string());
            cells.push(verdict.primary_above_secondary.map_or(String::new(), |v| v.to_string()));
            cells.push(verdict.reason.clone());
            cells.push(report.pass_rule.clone());
            row(&mut out, &cells);
        }
    }
    out
}

fn accuracy_csv(report: &SmerfReport) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &[
            "setup",
            "accepted",
            "bucket",
            "bucket_name",
            "label",
            "train_images",
            "train_accuracy",
            "test_images",
            "test_accuracy",
        ]
        .map(String::from),
    );
    for s in &report.setups {
        for b in &s.bucket_accuracy {
            row(
                &mut out,
                &[
                    s.setup.clone(),
                    s.training.accepted().to_string(),
                    b.bucket.to_string(),
                    b.name.clone(),
                    b.label.map_or(String::new(), |l| l.to_string()),
                    b.train_images.to_string(),
                    b.train_accuracy.to_string(),
                    b.test_images.to_string(),
                    b.test_accuracy.to_string(),
                ],
            );
        }
    }
    out
}

fn training_csv(report: &SmerfReport) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &[
            "setup",
            "architecture",
            "learning_rate",
            "batch_size",
            "max_epochs",
            "threshold",
            "attempt",
            "model_seed",
            "shuffle_seed",
            "epochs",
            "train_accuracy",
            "test_accuracy",
            "reached_threshold",
            "seconds",
        ]
        .map(String::from),
    );
    for s in &report.setups {
        let t = &s.training;
        for a in &t.attempts {
            row(
                &mut out,
                &[
                    s.setup.clone(),
                    t.architecture.clone(),
                    t.learning_rate.to_string(),
                    t.batch_size.to_string(),
                    t.max_epochs.to_string(),
                    t.threshold.to_string(),
                    a.attempt.to_string(),
                    a.model_seed.to_string(),
                    a.shuffle_seed.to_string(),
                    a.epochs.to_string(),
                    a.train_accuracy.to_string(),
                    a.test_accuracy.to_string(),
                    a.reached_threshold.to_string(),
                    format!("{:.2}", a.seconds),
                ],
            );
        }
    }
    out
}

fn groups_csv(report: &SmerfReport) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &[
            "group",
            "method",
            "setups",
            "scored",
            "passed",
            "mean_primary_afl",
            "mean_secondary_afl",
            "min_primary_afl",
        ]
        .map(String::from),
    );
    for g in &report.groups {
        row(
            &mut out,
            &[
                g.group.clone(),
                g.method.clone(),
                g.setups.to_string(),
                g.scored.to_string(),
                g.passed.to_string(),
                opt(g.mean_primary_afl),
                opt(g.mean_secondary_afl),
                opt(g.min_primary_afl),
            ],
        );
    }
    out
}

fn distinguishing_csv(report: &SmerfReport) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &[
            "kind",
            "method",
            "setup",
            "other_setup",
            "box1_afl",
            "text_afl",
            "box2_afl",
            "primary_focus",
            "secondary_focus",
            "primary_objects",
            "told_apart",
            "detail",
        ]
        .map(String::from),
    );
    let Some(view) = &report.distinguishing else { return out };
    for f in &view.focus {
        let afl = |name: &str| opt(f.object_afl.iter().find(|(o, _)| o == name).map(|(_, v)| *v));
        row(
            &mut out,
            &[
                "focus".into(),
                f.method.clone(),
                f.setup.clone(),
                String::new(),
                afl("box1"),
                afl("text"),
                afl("box2"),
                f.primary_focus.to_string(),
                f.secondary_focus.to_string(),
                f.primary_objects.join(";"),
                String::new(),
                String::new(),
            ],
        );
    }
    for p in &view.pairs {
        row(
            &mut out,
            &[
                "pair".into(),
                p.method.clone(),
                p.model_a.clone(),
                p.model_b.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                p.differing_objects.join(";"),
                p.told_apart.to_string(),
                p.detail.clone(),
            ],
        );
    }
    out
}

/// The verdict table printed at the end of a run: one row per method, one column per setup
/// with `PASS`/`FAIL` and the average primary / secondary AFL, the model accuracies, the simple
/// vs complex summary, the distinguishing-models summary and the rule.
pub fn verdict_table(report: &SmerfReport) -> String {
    let mut out = String::new();
    let width = report.config.methods.iter().map(|m| m.label.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(out, "SMERF ({}), seed {}", report.citation, report.config.seed);
    let _ = writeln!(out, "model accuracy (train / test, threshold):");
    for s in &report.setups {
        let accepted = s.training.attempts.iter().find(|a| a.reached_threshold);
        let last = accepted.or(s.training.attempts.last());
        let _ = writeln!(
            out,
            "  {:<5} {:<12} {:.4} / {:.4} (>= {}) after {} attempt(s): {}",
            s.setup,
            s.name,
            last.map_or(0.0, |a| a.train_accuracy),
            last.map_or(0.0, |a| a.test_accuracy),
            s.training.threshold,
            s.training.attempts.len(),
            if s.training.accepted() { "scored" } else { "NOT SCORED (threshold not reached)" }
        );
    }
    let _ = writeln!(out, "\nverdicts (average primary AFL / secondary AFL over buckets):");
    let _ = write!(out, "  {:<width$}", "method");
    for s in &report.setups {
        let _ = write!(out, " | {:<18}", s.setup);
    }
    out.push('\n');
    for entry in &report.config.methods {
        let _ = write!(out, "  {:<width$}", entry.label);
        for s in &report.setups {
            let verdict = s.verdicts.iter().find(|(m, _)| *m == entry.label).map(|(_, v)| v);
            let summary = s
                .scores
                .as_ref()
                .and_then(|sc| sc.methods.iter().find(|m| m.method == entry.label));
            let cell = match (verdict, summary) {
                (Some(v), Some(m)) if v.status != VerdictStatus::NotScored => {
                    let p = m.summary.primary_afl.as_ref().map(|b| b.average);
                    let q = m.summary.secondary_afl.as_ref().map(|b| b.average);
                    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
                    format!("{} {}/{}", v.status.word(), f(p), f(q))
                }
                _ => "not scored".to_string(),
            };
            let _ = write!(out, " | {cell:<18}");
        }
        out.push('\n');
    }
    if !report.groups.is_empty() {
        let _ = writeln!(out, "\nsimple vs complex (setups passed / scored, mean primary AFL):");
        for entry in &report.config.methods {
            let _ = write!(out, "  {:<width$}", entry.label);
            for g in report.groups.iter().filter(|g| g.method == entry.label) {
                let _ = write!(
                    out,
                    " | {:<7} {}/{} {}",
                    g.group,
                    g.passed,
                    g.scored,
                    g.mean_primary_afl.map_or("-".to_string(), |v| format!("{v:.2}"))
                );
            }
            out.push('\n');
        }
    }
    if let Some(view) = &report.distinguishing {
        let _ = writeln!(
            out,
            "\ndistinguishing models on {} ({} images; pairs told apart / pairs with different reasoning):",
            view.probe_bucket,
            view.probe_images.len()
        );
        for m in &view.methods {
            let _ = writeln!(out, "  {:<width$} {}/{}", m.method, m.told_apart, m.pairs);
        }
    }
    let _ = writeln!(out, "\nrule: {}", report.pass_rule);
    out
}
