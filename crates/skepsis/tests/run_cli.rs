//! `skepsis run --profile smoke` end to end with the real binary: the run completes, the
//! page's verdict matrix is the one printed and the one in the records, `--resume` skips
//! finished stages, existing output is never replaced without `--force`, and the page
//! renders in headless Chromium with every image loaded (when Chromium is installed;
//! `.ci/run` installs it and sets SKEPSIS_REQUIRE_CHROMIUM=1 so that CI cannot skip it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use skepsis_eval::checks::Outcome;
use skepsis_report::run::VerdictMatrix;

mod common;
use common::skepsis;

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The printed matrix as (method, [outcome words]).
fn printed_rows(stdout: &str) -> Vec<(String, Vec<String>)> {
    let table = stdout.split("\nVerdicts (").nth(1).expect("a verdict table is printed");
    table
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with('['))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let cells = words.iter().rev().take_while(|w| ["pass", "FAIL", "n/a"].contains(w));
            let mut cells: Vec<String> = cells.map(|w| w.to_string()).collect();
            cells.reverse();
            let name = words[..words.len() - cells.len()].join(" ");
            (name.trim_end_matches(" (control)").to_string(), cells)
        })
        .collect()
}

#[test]
fn smoke_run_writes_a_report_whose_records_match_the_printed_table() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = d.join("report");
    let run = skepsis(d, &["--threads", "2", "run", "--profile", "smoke", "--out", "report"]);
    let stdout = text(&run.stdout);
    assert_eq!(code(&run), Some(0), "{}\n{stdout}", text(&run.stderr));

    // The records: run.json, the matrix, every stage's records, the page and the figures.
    let json = std::fs::read_to_string(out.join("verdicts.json")).unwrap();
    let matrix: VerdictMatrix = serde_json::from_str(&json).unwrap();
    assert!(matrix.columns.len() >= 9, "{:?}", matrix.columns);
    for check in ["MPRT cascading top-down", "Data rand.", "Input invariance", "Random logit"] {
        assert!(matrix.columns.iter().any(|c| c.label.starts_with(check)), "no {check} column");
    }
    assert!(matrix.columns.iter().any(|c| c.label.starts_with("SMERF")), "no SMERF column");
    // The control baselines behave as controls: the random map passes model randomization.
    let random = matrix.rows.iter().find(|r| r.method == "random").unwrap();
    assert!(random.baseline);
    assert_eq!(random.cells[0].outcome, Outcome::Pass);

    // The printed table is the matrix of the records, cell by cell.
    let printed = printed_rows(&stdout);
    assert_eq!(printed.len(), matrix.rows.len(), "{stdout}");
    for ((name, cells), row) in printed.iter().zip(&matrix.rows) {
        assert_eq!(name, &row.method);
        let words: Vec<&str> = row
            .cells
            .iter()
            .map(|c| match c.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::NotApplicable => "n/a",
            })
            .collect();
        assert_eq!(cells, &words, "row {name}");
    }

    // The page states every verdict of the records.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<table id=\"verdicts\">"));
    for row in &matrix.rows {
        assert!(html.contains(&skepsis_report::escape(&row.method)), "{} not in page", row.method);
    }
    let figures: Vec<PathBuf> =
        std::fs::read_dir(out.join("figures")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(figures.len() >= 10, "{figures:?}");
    for f in &figures {
        image::open(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    assert!(figures.iter().any(|f| f.to_string_lossy().contains("cascade")));
    assert!(html.matches("<img ").count() >= 5);

    // Resume a complete run: every stage is skipped, the same matrix comes out.
    let again = skepsis(d, &["run", "--profile", "smoke", "--out", "report", "--resume"]);
    assert_eq!(code(&again), Some(0), "{}", text(&again.stderr));
    assert_eq!(text(&again.stderr).matches("done in an earlier session").count(), 15);
    let json_again = std::fs::read_to_string(out.join("verdicts.json")).unwrap();
    assert_eq!(json, json_again);

    // An interrupted run: one stage unfinished (its records gone); --resume runs only it.
    let manifest_path = out.join("run.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let stage = manifest["stages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["id"] == "checks/sc-cnn/random-logit")
        .unwrap();
    stage["status"] = serde_json::json!({ "state": "failed", "reason": "interrupted" });
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    std::fs::remove_file(out.join("checks/sc-cnn/random-logit/report.json")).unwrap();
    let resumed = skepsis(d, &["run", "--profile", "smoke", "--out", "report", "--resume"]);
    assert_eq!(code(&resumed), Some(0), "{}", text(&resumed.stderr));
    assert_eq!(text(&resumed.stderr).matches("done in an earlier session").count(), 14);
    assert_eq!(std::fs::read_to_string(out.join("verdicts.json")).unwrap(), json);

    // Nothing is overwritten without asking; a different profile cannot resume this run.
    let refused = skepsis(d, &["run", "--profile", "smoke", "--out", "report"]);
    assert_eq!(code(&refused), Some(2));
    assert!(
        text(&refused.stderr).contains("--resume") && text(&refused.stderr).contains("--force")
    );
    let other = skepsis(d, &["run", "--profile", "quick", "--out", "report", "--resume"]);
    assert_eq!(code(&other), Some(2));
    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::write(d.join("mine/notes.txt"), "keep").unwrap();
    let foreign = skepsis(d, &["run", "--profile", "smoke", "--out", "mine"]);
    assert_eq!(code(&foreign), Some(2));
    assert_eq!(std::fs::read_to_string(d.join("mine/notes.txt")).unwrap(), "keep");

    // `skepsis report` renders the same matrix again.
    let report = skepsis(d, &["report", "report"]);
    assert_eq!(code(&report), Some(0), "{}", text(&report.stderr));
    assert_eq!(std::fs::read_to_string(out.join("verdicts.json")).unwrap(), json);

    browser_check(&out, matrix.rows.len());
}

/// Renders the page in headless Chromium through a same-directory harness page that reads
/// the report's DOM: every `<img>` decoded, the verdict table present with one row per method.
fn browser_check(out: &Path, rows: usize) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        assert!(
            std::env::var_os("SKEPSIS_REQUIRE_CHROMIUM").is_none(),
            "SKEPSIS_REQUIRE_CHROMIUM is set but no chromium is installed"
        );
        eprintln!("chromium not installed: browser check skipped (.ci/run installs it)");
        return;
    };
    let harness = out.join("browser-check.html");
    std::fs::write(&harness, HARNESS).unwrap();
    let url = format!("file://{}", harness.display());
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--allow-file-access-from-files",
            "--virtual-time-budget=15000",
            "--dump-dom",
            &url,
        ])
        .output()
        .expect("chromium runs");
    let dom = text(&o.stdout);
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| panic!("no result in the dumped DOM: {}", text(&o.stderr)));
    let field = |name: &str| -> i64 {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in '{result}'"))
    };
    let (loaded, images) = (field("loaded"), field("images"));
    assert!(images >= 5, "{result}");
    assert_eq!(loaded, images, "images that failed to load: {result}");
    assert!(field("svgs") >= 5, "{result}");
    assert_eq!(field("verdict_rows"), rows as i64, "{result}");
}

const HARNESS: &str = r#"<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="page" src="index.html" width="1280" height="900"></iframe>
<script>
document.getElementById('page').addEventListener('load', function () {
  var d = this.contentDocument;
  var imgs = Array.from(d.images);
  var loaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var table = d.getElementById('verdicts');
  var rows = table ? table.querySelectorAll('tbody tr').length : -1;
  document.getElementById('result').textContent = 'loaded=' + loaded + ' images=' + imgs.length +
    ' svgs=' + d.querySelectorAll('svg').length + ' verdict_rows=' + rows;
});
</script></body></html>
"#;
