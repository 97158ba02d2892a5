//! The output directory of a check: one JSON file per finished step (so an interrupted run
//! can resume), then the full report as JSON and CSV.
//!
//! Layout: `steps/step-NNN.json` (the records of step NNN and the run's fingerprint),
//! `report.json`, `records.csv`, `summary.csv`, `verdicts.csv`, and the example maps in
//! `examples/` ([`examples`](super::examples)). Existing output is never replaced without
//! `force` (which removes all of it, so no stale example map outlives its run); `resume`
//! reuses every step file whose fingerprint (the check's parameters, methods, seed and crate
//! version) equals the new run's and computes the rest.
//! Steps are deterministic functions of the seed, so a resumed run ends with exactly the
//! records of an uninterrupted one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{CheckError, CheckResult};
use super::examples::EXAMPLES_DIR;
use super::report::{CheckReport, Record};

/// The full report.
pub const REPORT_JSON: &str = "report.json";
/// One row per record.
pub const RECORDS_CSV: &str = "records.csv";
/// One row per (method, step, metric).
pub const SUMMARY_CSV: &str = "summary.csv";
/// One row per method.
pub const VERDICTS_CSV: &str = "verdicts.csv";
/// The per-step files.
pub const STEPS_DIR: &str = "steps";

/// Where a check writes and how it treats existing output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunControl {
    /// Output directory (`None`: compute in memory only; resume is then impossible).
    pub out: Option<PathBuf>,
    /// Continue from the step files already in `out`.
    pub resume: bool,
    /// Replace existing output.
    pub force: bool,
    /// Stop after computing this many new steps (the report is then incomplete and nothing
    /// but the step files is written). For tests of `resume` and for splitting long runs.
    pub max_steps: Option<usize>,
}

impl RunControl {
    /// In memory, no files.
    pub fn in_memory() -> Self {
        RunControl::default()
    }

    /// Writes to `dir`.
    pub fn to_dir(dir: impl Into<PathBuf>) -> Self {
        RunControl { out: Some(dir.into()), ..RunControl::default() }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StepFile {
    fingerprint: serde_json::Value,
    step_index: usize,
    step: String,
    records: Vec<Record>,
}

/// Step bookkeeping of one run.
pub(crate) struct StepStore {
    dir: Option<PathBuf>,
    fingerprint: serde_json::Value,
    done: BTreeMap<usize, Vec<Record>>,
    computed: usize,
    max_steps: Option<usize>,
    stopped: bool,
}

impl StepStore {
    /// Prepares the output directory. `extra` names further files or directories of the check
    /// (removed by `force`, kept by `resume`).
    pub(crate) fn open(
        control: &RunControl,
        fingerprint: serde_json::Value,
        extra: &[&str],
    ) -> CheckResult<Self> {
        let mut store = StepStore {
            dir: control.out.clone(),
            fingerprint,
            done: BTreeMap::new(),
            computed: 0,
            max_steps: control.max_steps,
            stopped: false,
        };
        let Some(dir) = control.out.clone() else { return Ok(store) };
        let ours: Vec<PathBuf> =
            [REPORT_JSON, RECORDS_CSV, SUMMARY_CSV, VERDICTS_CSV, STEPS_DIR, EXAMPLES_DIR]
                .iter()
                .chain(extra)
                .map(|f| dir.join(f))
                .collect();
        let existing = ours.iter().find(|p| p.exists()).cloned();
        match existing {
            Some(path) if !control.resume && !control.force => {
                return Err(CheckError::OutputExists { path })
            }
            Some(_) if !control.resume => {
                for p in &ours {
                    remove(p)?;
                }
            }
            _ => {}
        }
        let steps = dir.join(STEPS_DIR);
        std::fs::create_dir_all(&steps).map_err(|e| CheckError::io(&steps, e))?;
        if control.resume {
            store.load(&steps)?;
        }
        Ok(store)
    }

    fn load(&mut self, steps: &Path) -> CheckResult<()> {
        let entries = std::fs::read_dir(steps).map_err(|e| CheckError::io(steps, e))?;
        for entry in entries {
            let path = entry.map_err(|e| CheckError::io(steps, e))?.path();
            let is_step = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-") && n.ends_with(".json"));
            if !is_step {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| CheckError::io(&path, e))?;
            let file: StepFile = serde_json::from_str(&text).map_err(|e| {
                CheckError::BadRecords { path: path.clone(), message: e.to_string() }
            })?;
            if file.fingerprint != self.fingerprint {
                return Err(CheckError::ResumeMismatch { path });
            }
            self.done.insert(file.step_index, file.records);
        }
        Ok(())
    }

    /// Whether step `index` is already done (loaded from disk).
    pub(crate) fn has(&self, index: usize) -> bool {
        self.done.contains_key(&index)
    }

    /// The records of step `index`: loaded, or computed by `compute` and written. `None` when
    /// the step budget (`max_steps`) is spent: the caller stops and reports an incomplete run.
    pub(crate) fn step(
        &mut self,
        index: usize,
        name: &str,
        compute: impl FnOnce() -> CheckResult<Vec<Record>>,
    ) -> CheckResult<Option<Vec<Record>>> {
        if let Some(records) = self.done.get(&index) {
            return Ok(Some(records.clone()));
        }
        if self.stopped || self.max_steps.is_some_and(|m| self.computed >= m) {
            self.stopped = true;
            return Ok(None);
        }
        let records = compute()?;
        if let Some(dir) = &self.dir {
            let file = StepFile {
                fingerprint: self.fingerprint.clone(),
                step_index: index,
                step: name.to_string(),
                records: records.clone(),
            };
            let path = dir.join(STEPS_DIR).join(format!("step-{index:03}.json"));
            write_atomic(&path, &to_json(&file, &path)?)?;
        }
        self.done.insert(index, records.clone());
        self.computed += 1;
        Ok(Some(records))
    }

    /// Writes the final report (JSON and CSV) when the run is complete.
    pub(crate) fn finish(&self, report: &CheckReport) -> CheckResult<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if !report.complete {
            return Ok(());
        }
        let json = dir.join(REPORT_JSON);
        write_atomic(&json, &to_json(report, &json)?)?;
        write_atomic(&dir.join(RECORDS_CSV), &report.records_csv())?;
        write_atomic(&dir.join(SUMMARY_CSV), &report.summary_csv())?;
        write_atomic(&dir.join(VERDICTS_CSV), &report.verdicts_csv())
    }

    /// The output directory, if any.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

fn to_json(value: &impl Serialize, path: &Path) -> CheckResult<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CheckError::BadRecords { path: path.to_path_buf(), message: e.to_string() })
}

/// Writes through a temporary file and a rename, so an interrupted run never leaves half a
/// step file behind.
fn write_atomic(path: &Path, text: &str) -> CheckResult<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text).map_err(|e| CheckError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CheckError::io(path, e))
}

fn remove(path: &Path) -> CheckResult<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else if path.exists() {
        std::fs::remove_file(path)
    } else {
        Ok(())
    };
    result.map_err(|e| CheckError::io(path, e))
}
