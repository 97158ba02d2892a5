//! The verdict matrix: one row per method, one column per check (and SMERF group), each cell
//! the check's verdict on the method under the rule the column states.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use skepsis_eval::checks::{CheckReport, Outcome};
use skepsis_eval::smerf::SmerfReport;

use super::load::{LoadedStage, StageRecords};
use crate::html::{Cell, Table};

/// One column: a check run (or a SMERF group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixColumn {
    /// Short label, e.g. "MPRT cascading top-down (sc-cnn)".
    pub label: String,
    /// The stage it comes from.
    pub stage: String,
    /// The pass rule, in words.
    pub rule: String,
}

/// One cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixCell {
    /// Pass, fail or not applicable.
    pub outcome: Outcome,
    /// The value the rule looked at.
    pub value: Option<f64>,
    /// Why.
    pub reason: String,
}

/// One row: a method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// The method's label (its spec string).
    pub method: String,
    /// A control baseline (random map, edge detector), not a saliency method.
    pub baseline: bool,
    /// One cell per column.
    pub cells: Vec<MatrixCell>,
}

/// Methods x checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictMatrix {
    /// The columns.
    pub columns: Vec<MatrixColumn>,
    /// The rows, methods first in the order they were run, baselines last.
    pub rows: Vec<MatrixRow>,
}

impl VerdictMatrix {
    /// The matrix of every check and SMERF stage that has records.
    pub fn from_stages(stages: &[LoadedStage]) -> Self {
        let mut m = VerdictMatrix::default();
        for s in stages {
            let label = s.stage.column.clone().unwrap_or_else(|| s.stage.title.clone());
            match &s.records {
                StageRecords::Check(report) => m.add_check(&label, &s.stage.id, report),
                StageRecords::Smerf(report) => m.add_smerf(&label, &s.stage.id, report),
                _ => {}
            }
        }
        m.rows.sort_by_key(|r| r.baseline);
        m
    }

    fn row(&mut self, method: &str, baseline: bool) -> &mut MatrixRow {
        let i = match self.rows.iter().position(|r| r.method == method) {
            Some(i) => i,
            None => {
                let cells = vec![not_run(); self.columns.len().saturating_sub(1)];
                self.rows.push(MatrixRow { method: method.to_string(), baseline, cells });
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    fn push_column(&mut self, column: MatrixColumn, cells: Vec<(String, bool, MatrixCell)>) {
        self.columns.push(column);
        for (method, baseline, cell) in cells {
            let row = self.row(&method, baseline);
            row.cells.push(cell);
        }
        let n = self.columns.len();
        for row in &mut self.rows {
            row.cells.resize(n, not_run());
        }
    }

    fn add_check(&mut self, label: &str, stage: &str, report: &CheckReport) {
        let cells = report
            .verdicts
            .iter()
            .map(|v| {
                let cell =
                    MatrixCell { outcome: v.outcome, value: v.value, reason: v.reason.clone() };
                (v.method.clone(), v.baseline, cell)
            })
            .collect();
        let column = MatrixColumn {
            label: label.to_string(),
            stage: stage.into(),
            rule: report.rule.clone(),
        };
        self.push_column(column, cells);
    }

    fn add_smerf(&mut self, label: &str, stage: &str, report: &SmerfReport) {
        let baselines: Vec<&str> = report
            .config
            .methods
            .iter()
            .filter(|m| is_baseline_spec(&m.spec))
            .map(|m| m.label.as_str())
            .collect();
        for group in ["simple", "complex"] {
            let rows: Vec<_> = report.groups.iter().filter(|g| g.group == group).collect();
            if rows.iter().all(|g| g.setups == 0) {
                continue;
            }
            let cells = rows
                .iter()
                .map(|g| {
                    let outcome = if g.scored == 0 {
                        Outcome::NotApplicable
                    } else if g.passed == g.scored {
                        Outcome::Pass
                    } else {
                        Outcome::Fail
                    };
                    let reason = if g.scored == 0 {
                        format!("no {group} setup's model reached the accuracy threshold")
                    } else {
                        format!("passes {} of {} scored {group} setups", g.passed, g.scored)
                    };
                    let cell = MatrixCell { outcome, value: g.mean_primary_afl, reason };
                    (g.method.clone(), baselines.contains(&g.method.as_str()), cell)
                })
                .collect();
            let column = MatrixColumn {
                label: format!("{label} {group}"),
                stage: stage.into(),
                rule: format!("passes every scored {group} setup: {}", report.pass_rule),
            };
            self.push_column(column, cells);
        }
    }

    /// The matrix as a plain-text table for the terminal: numbered columns with a legend.
    pub fn to_text(&self) -> String {
        let width = self.rows.iter().map(|r| r.method.len()).max().unwrap_or(6).max(6) + 2;
        let mut out = format!("{:<width$}", "method");
        for i in 0..self.columns.len() {
            let _ = write!(out, " {:>5}", format!("[{}]", i + 1));
        }
        out.push('\n');
        for row in &self.rows {
            let name =
                if row.baseline { format!("{} (control)", row.method) } else { row.method.clone() };
            let _ = write!(out, "{name:<width$}");
            for cell in &row.cells {
                let _ = write!(out, " {:>5}", word(cell.outcome));
            }
            out.push('\n');
        }
        for (i, c) in self.columns.iter().enumerate() {
            let _ = writeln!(out, "[{}] {}", i + 1, c.label);
        }
        out
    }

    /// The matrix as CSV: `method,baseline,column,outcome,value,reason`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("method,baseline,check,outcome,value,reason\n");
        for row in &self.rows {
            for (c, cell) in self.columns.iter().zip(&row.cells) {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    csv(&row.method),
                    row.baseline,
                    csv(&c.label),
                    cell.outcome.label(),
                    cell.value.map(|v| v.to_string()).unwrap_or_default(),
                    csv(&cell.reason)
                );
            }
        }
        out
    }

    /// The matrix as an HTML table (`id="verdicts"`), cells coloured by outcome with the
    /// reason as tooltip.
    pub fn to_table(&self) -> Table {
        let mut header = vec!["method".to_string()];
        header.extend(self.columns.iter().map(|c| c.label.clone()));
        let mut table = Table::new(header).with_id("verdicts");
        for row in &self.rows {
            let name =
                if row.baseline { format!("{} (control)", row.method) } else { row.method.clone() };
            let mut cells = vec![Cell::from(name)];
            for cell in &row.cells {
                let text = match cell.value {
                    Some(v) => format!("{} ({v:.2})", cell.outcome.label()),
                    None => cell.outcome.label().to_string(),
                };
                let class = match cell.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "fail",
                    Outcome::NotApplicable => "na",
                };
                cells.push(Cell::styled(text, class, cell.reason.clone()));
            }
            table = table.row(cells);
        }
        table
    }
}

fn word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::NotApplicable => "n/a",
    }
}

fn not_run() -> MatrixCell {
    MatrixCell {
        outcome: Outcome::NotApplicable,
        value: None,
        reason: "not run in this check".into(),
    }
}

/// Whether a SMERF method spec is one of the control baselines.
fn is_baseline_spec(spec: &str) -> bool {
    let name = spec.split(':').next().unwrap_or(spec).trim();
    name == skepsis_eval::checks::RANDOM_MAP || name == skepsis_eval::checks::EDGE_DETECTOR
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
