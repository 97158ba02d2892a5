//! Reading a run directory's records back: each stage's `report.json` or `smerf.json`.

use std::path::{Path, PathBuf};

use skepsis_eval::checks::{CheckReport, REPORT_JSON};
use skepsis_eval::smerf::SmerfReport;

use super::manifest::{RunManifest, Stage, StageKind, StageStatus};
use super::ReportError;

/// The records of one stage.
#[derive(Debug, Clone)]
pub enum StageRecords {
    /// A sanity check's report.
    Check(Box<CheckReport>),
    /// SMERF's records.
    Smerf(Box<SmerfReport>),
    /// Data and training stages have no records of their own.
    None,
    /// The stage failed or its records are missing, with the reason.
    Missing(String),
}

/// A stage with its records and its directory.
#[derive(Debug, Clone)]
pub struct LoadedStage {
    /// The manifest entry.
    pub stage: Stage,
    /// The stage's directory.
    pub dir: PathBuf,
    /// What it wrote.
    pub records: StageRecords,
}

/// File name of SMERF's JSON records.
pub const SMERF_JSON: &str = "smerf.json";

/// Every stage of `manifest` with its records. A stage whose records cannot be read is
/// [`StageRecords::Missing`] with the reason; corrupt JSON is an error.
pub fn load_stages(dir: &Path, manifest: &RunManifest) -> Result<Vec<LoadedStage>, ReportError> {
    manifest
        .stages
        .iter()
        .map(|stage| {
            let stage_dir = dir.join(&stage.dir);
            let records = match (&stage.status, stage.kind) {
                (StageStatus::Failed(reason), _) => StageRecords::Missing(reason.clone()),
                (_, StageKind::Check) => read_json(&stage_dir.join(REPORT_JSON))?
                    .map_or_else(missing, |r| StageRecords::Check(Box::new(r))),
                (_, StageKind::Smerf) => read_json(&stage_dir.join(SMERF_JSON))?
                    .map_or_else(missing, |r| StageRecords::Smerf(Box::new(r))),
                _ => StageRecords::None,
            };
            Ok(LoadedStage { stage: stage.clone(), dir: stage_dir, records })
        })
        .collect()
}

fn missing() -> StageRecords {
    StageRecords::Missing("its records are missing (run interrupted?)".into())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ReportError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ReportError::Records { path: path.to_path_buf(), message: e.to_string() })
}
