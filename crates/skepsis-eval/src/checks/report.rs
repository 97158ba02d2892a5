//! What a check returns: per-image records, per-step summaries, verdicts, and the run's
//! parameters, serializable to JSON and CSV.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::verdict::PassRule;

/// The version of skepsis-eval that produced a report.
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One value: image x method x step x metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The method's label (its spec as given, or the baseline's spec).
    pub method: String,
    /// Position of the step in [`CheckReport::steps`].
    pub step_index: usize,
    /// The step's name (e.g. `logits`, `+fc1`, `original`, a layer name for rank-1).
    pub step: String,
    /// Index of the image among the check's images.
    pub image: usize,
    /// The metric's name (`spearman-abs`, `max-abs-difference`, `mean-abs-cosine`, ...).
    pub metric: String,
    /// The value (always finite).
    pub value: f64,
    /// The pair was degenerate (a constant map, no valid vector pair); see
    /// [`Similarity::degeneracy`](crate::Similarity).
    pub degenerate: bool,
}

/// Mean and standard deviation of one (method, step, metric) over the images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The method's label.
    pub method: String,
    /// Position of the step.
    pub step_index: usize,
    /// The step's name.
    pub step: String,
    /// The metric's name.
    pub metric: String,
    /// Mean over images.
    pub mean: f64,
    /// Population standard deviation over images.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of images.
    pub n: usize,
    /// How many of them were degenerate.
    pub degenerate: usize,
}

impl Summary {
    /// Upper bound of the normal-approximation 95% confidence interval of the mean,
    /// `mean + 1.96 std / sqrt(n)`.
    pub fn upper_95(&self) -> f64 {
        self.mean + 1.96 * self.std / (self.n.max(1) as f64).sqrt()
    }

    /// Lower bound of the same interval, `mean - 1.96 std / sqrt(n)`.
    pub fn lower_95(&self) -> f64 {
        self.mean - 1.96 * self.std / (self.n.max(1) as f64).sqrt()
    }
}

/// The outcome of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The method passes the rule.
    Pass,
    /// The method fails the rule.
    Fail,
    /// The rule could not be applied (refused check, unsupported method, missing values).
    NotApplicable,
}

impl Outcome {
    /// `pass`, `fail` or `n/a`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NotApplicable => "n/a",
        }
    }
}

/// The verdict on one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The method's label.
    pub method: String,
    /// Whether the method is a control baseline (random map, edge detector, random vectors).
    pub baseline: bool,
    /// Pass, fail or not applicable.
    pub outcome: Outcome,
    /// The value the rule looked at, when there was one.
    pub value: Option<f64>,
    /// The rule, in words.
    pub rule: String,
    /// Why this outcome (the numbers compared, or why the rule does not apply).
    pub reason: String,
}

/// A method as the check ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodRecord {
    /// The label used in records.
    pub label: String,
    /// The method's own name with its parameters (`Method::name`).
    pub name: String,
    /// Whether it is a control baseline.
    pub baseline: bool,
}

/// Everything a check produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's name (`model-randomization`, `data-randomization`, `input-invariance`,
    /// `random-logit`, `rank1`).
    pub check: String,
    /// Version of skepsis-eval.
    pub crate_version: String,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// The check's options, verbatim.
    pub parameters: serde_json::Value,
    /// The methods, baselines included, in record order.
    pub methods: Vec<MethodRecord>,
    /// The steps, in order.
    pub steps: Vec<String>,
    /// Per-image values.
    pub records: Vec<Record>,
    /// Mean and std per (method, step, metric).
    pub summaries: Vec<Summary>,
    /// One verdict per method.
    pub verdicts: Vec<Verdict>,
    /// The pass rule, in words.
    pub rule: String,
    /// Facts a reader needs (accuracies, logit agreement, unsupported methods, ...).
    pub notes: Vec<String>,
    /// Set when the check refused to compare, with the reason (no records then).
    pub refusal: Option<String>,
    /// False when the run stopped early (`max_steps`); the records so far are in the output
    /// directory and `resume` continues.
    pub complete: bool,
}

impl CheckReport {
    /// The summary of (method, step, metric), if present.
    pub fn summary(&self, method: &str, step: &str, metric: &str) -> Option<&Summary> {
        self.summaries.iter().find(|s| s.method == method && s.step == step && s.metric == metric)
    }

    /// The verdict on `method`, if present.
    pub fn verdict(&self, method: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.method == method)
    }

    /// True when some non-baseline method failed its rule.
    pub fn any_method_failed(&self) -> bool {
        self.verdicts.iter().any(|v| !v.baseline && v.outcome == Outcome::Fail)
    }

    /// The records as CSV: `check,version,seed,method,baseline,step_index,step,image,metric,
    /// value,degenerate`.
    pub fn records_csv(&self) -> String {
        let mut out = String::from(
            "check,version,seed,method,baseline,step_index,step,image,metric,value,degenerate\n",
        );
        for r in &self.records {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{}",
                self.check,
                self.crate_version,
                self.seed,
                csv_field(&r.method),
                self.is_baseline(&r.method),
                r.step_index,
                csv_field(&r.step),
                r.image,
                r.metric,
                r.value,
                r.degenerate
            );
        }
        out
    }

    /// The summaries as CSV: `method,baseline,step_index,step,metric,mean,std,min,max,n,
    /// degenerate`.
    pub fn summary_csv(&self) -> String {
        let mut out =
            String::from("method,baseline,step_index,step,metric,mean,std,min,max,n,degenerate\n");
        for s in &self.summaries {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&s.method),
                self.is_baseline(&s.method),
                s.step_index,
                csv_field(&s.step),
                s.metric,
                s.mean,
                s.std,
                s.min,
                s.max,
                s.n,
                s.degenerate
            );
        }
        out
    }

    /// The verdicts as CSV: `method,baseline,outcome,value,rule,reason`.
    pub fn verdicts_csv(&self) -> String {
        let mut out = String::from("method,baseline,outcome,value,rule,reason\n");
        for v in &self.verdicts {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                csv_field(&v.method),
                v.baseline,
                v.outcome.label(),
                v.value.map_or(String::new(), |x| x.to_string()),
                csv_field(&v.rule),
                csv_field(&v.reason)
            );
        }
        out
    }

    fn is_baseline(&self, label: &str) -> bool {
        self.methods.iter().any(|m| m.label == label && m.baseline)
    }
}

/// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Mean, std, min and max per (method, step, metric), in order of first appearance.
pub fn summarize(records: &[Record]) -> Vec<Summary> {
    let mut keys: Vec<(String, usize, String, String)> = Vec::new();
    let mut groups: Vec<Vec<&Record>> = Vec::new();
    for r in records {
        let key = (r.method.clone(), r.step_index, r.step.clone(), r.metric.clone());
        match keys.iter().position(|k| *k == key) {
            Some(i) => groups[i].push(r),
            None => {
                keys.push(key);
                groups.push(vec![r]);
            }
        }
    }
    keys.into_iter()
        .zip(groups)
        .map(|((method, step_index, step, metric), group)| {
            let n = group.len();
            let mean = group.iter().map(|r| r.value).sum::<f64>() / n as f64;
            let var = group.iter().map(|r| (r.value - mean).powi(2)).sum::<f64>() / n as f64;
            Summary {
                method,
                step_index,
                step,
                metric,
                mean,
                std: var.sqrt(),
                min: group.iter().map(|r| r.value).fold(f64::INFINITY, f64::min),
                max: group.iter().map(|r| r.value).fold(f64::NEG_INFINITY, f64::max),
                n,
                degenerate: group.iter().filter(|r| r.degenerate).count(),
            }
        })
        .collect()
}

/// Applies `rule` to every method of the report (baselines included) and stores the verdicts
/// and the rule's wording.
pub(crate) fn apply_rule(report: &mut CheckReport, rule: &PassRule) {
    report.rule = rule.describe(&report.steps);
    report.verdicts = report
        .methods
        .iter()
        .map(|m| {
            rule.judge(&m.label, m.baseline, &report.steps, &report.summaries, &report.records)
        })
        .collect();
}

/// A fixed-width table of the verdicts and the values the rule looked at, for terminals.
pub fn verdict_table(report: &CheckReport) -> String {
    let names: Vec<String> = report
        .verdicts
        .iter()
        .map(|v| if v.baseline { format!("{} (baseline)", v.method) } else { v.method.clone() })
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(6).max(6);
    let mut out = format!("{} check: {}\n", report.check, report.rule);
    if let Some(reason) = &report.refusal {
        let _ = writeln!(out, "REFUSED: {reason}");
    }
    let _ = writeln!(out, "{:width$}  {:7}  {:>10}  reason", "method", "verdict", "value");
    for (name, v) in names.iter().zip(&report.verdicts) {
        let _ = writeln!(
            out,
            "{name:width$}  {:7}  {:>10}  {}",
            v.outcome.label(),
            v.value.map_or("-".to_string(), |x| format!("{x:.4}")),
            v.reason
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
