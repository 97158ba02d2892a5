//! `run.json`: what a `skepsis run` did, stage by stage, so that the report can be rendered
//! (again) from the output directory alone and a resumed run knows which stages are done.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ReportError;

/// The manifest's file name in a run directory.
pub const MANIFEST_JSON: &str = "run.json";

/// What kind of work a stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    /// A data set was generated or imported.
    Data,
    /// A model was trained.
    Train,
    /// A sanity check of skepsis-eval (`report.json` in `dir`).
    Check,
    /// SMERF (`smerf.json` in `dir`).
    Smerf,
}

/// How a stage ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "reason")]
pub enum StageStatus {
    /// Finished.
    Done,
    /// Failed with an error (the run went on with the other stages).
    Failed(String),
}

/// One stage of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Unique id, also the stage's directory name under the run directory.
    pub id: String,
    /// Kind of work.
    pub kind: StageKind,
    /// Heading in the report, e.g. "Model randomization, cascading, top-down".
    pub title: String,
    /// Column label in the verdict matrix (checks and SMERF only).
    pub column: Option<String>,
    /// The model the stage used.
    pub model: Option<String>,
    /// Directory of the stage's output, relative to the run directory.
    pub dir: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// How it ended.
    pub status: StageStatus,
    /// One line for the report (accuracy reached, images generated, ...).
    pub summary: String,
    /// The equivalent `skepsis` command line, to reproduce or vary the stage by hand.
    #[serde(default)]
    pub command: String,
}

/// Everything `skepsis run` records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// `skepsis`.
    pub tool: String,
    /// skepsis version.
    pub version: String,
    /// `smoke`, `quick` or `paper`.
    pub profile: String,
    /// The seed every stage derives from.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Where the data came from.
    pub data: String,
    /// The profile's sizes and method list, verbatim.
    pub parameters: serde_json::Value,
    /// The stages, in run order.
    pub stages: Vec<Stage>,
    /// Wall-clock seconds of the whole run (all sessions of a resumed run).
    pub seconds: f64,
    /// False while stages are missing.
    pub complete: bool,
}

impl RunManifest {
    /// Reads `dir/run.json`.
    pub fn read(dir: &Path) -> Result<Self, ReportError> {
        let path = dir.join(MANIFEST_JSON);
        let text = std::fs::read_to_string(&path).map_err(|e| ReportError::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| ReportError::Records { path, message: e.to_string() })
    }

    /// Writes `dir/run.json` (through a temporary file).
    pub fn write(&self, dir: &Path) -> Result<(), ReportError> {
        let path = dir.join(MANIFEST_JSON);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| ReportError::Records { path: path.clone(), message: e.to_string() })?;
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, text).map_err(|e| ReportError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| ReportError::io(&path, e))
    }

    /// The stage with `id`.
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }
}
