//! The report of a `skepsis run`: reads `run.json` and every stage's records from the run
//! directory and writes `index.html` (self-contained: figures embedded, no external
//! resources), `figures/*.png` and the verdict matrix as `verdicts.json` / `verdicts.csv`.
//! Every number on the page comes from the records next to it, so the page can be rendered
//! again at any time (`skepsis report DIR`).

mod figures;
mod load;
mod manifest;
mod matrix;
mod sections;

use std::path::{Path, PathBuf};

pub use figures::FIGURES_DIR;
pub use load::{load_stages, LoadedStage, StageRecords, SMERF_JSON};
pub use manifest::{RunManifest, Stage, StageKind, StageStatus, MANIFEST_JSON};
pub use matrix::{MatrixCell, MatrixColumn, MatrixRow, VerdictMatrix};

use crate::html::{Cell, Page, Section, Table};

/// The page.
pub const INDEX_HTML: &str = "index.html";
/// The verdict matrix as JSON.
pub const VERDICTS_JSON: &str = "verdicts.json";
/// The verdict matrix as CSV.
pub const VERDICTS_CSV: &str = "verdicts.csv";

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A records file does not parse.
    #[error("{}: unreadable records: {message}", path.display())]
    Records {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Example maps could not be read.
    #[error(transparent)]
    Check(Box<skepsis_eval::checks::CheckError>),
    /// SMERF example maps could not be read.
    #[error(transparent)]
    Smerf(Box<skepsis_eval::smerf::SmerfError>),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] crate::CurveError),
    /// A figure could not be rasterized.
    #[error(transparent)]
    Raster(#[from] crate::RasterError),
    /// A mosaic could not be drawn.
    #[error(transparent)]
    Mosaic(#[from] crate::mosaic::MosaicError),
}

impl From<skepsis_eval::checks::CheckError> for ReportError {
    fn from(e: skepsis_eval::checks::CheckError) -> Self {
        ReportError::Check(Box::new(e))
    }
}

impl From<skepsis_eval::smerf::SmerfError> for ReportError {
    fn from(e: skepsis_eval::smerf::SmerfError) -> Self {
        ReportError::Smerf(Box::new(e))
    }
}

impl ReportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io { path: path.to_path_buf(), source }
    }
}

/// What [`write_report`] produced.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    /// The verdict matrix (also in `verdicts.json`).
    pub matrix: VerdictMatrix,
    /// `index.html`.
    pub index: PathBuf,
    /// The PNG figures, relative to the run directory.
    pub figures: Vec<String>,
}

/// Writes `index.html`, `figures/`, `verdicts.json` and `verdicts.csv` into `dir` from its
/// `run.json` and the stages' records (replacing earlier ones: they are derived files).
pub fn write_report(dir: &Path) -> Result<ReportOutcome, ReportError> {
    let manifest = RunManifest::read(dir)?;
    let stages = load_stages(dir, &manifest)?;
    let matrix = VerdictMatrix::from_stages(&stages);
    let figures_dir = dir.join(FIGURES_DIR);
    if figures_dir.exists() {
        std::fs::remove_dir_all(&figures_dir).map_err(|e| ReportError::io(&figures_dir, e))?;
    }
    let mut sink = figures::FigureSink::new(dir)?;

    let mut page = Page::new(format!("skepsis sanity-check report ({} profile)", manifest.profile));
    page = page.section(overview(&manifest));
    page = page.section(verdict_section(&matrix));
    for s in &stages {
        let section = match &s.records {
            StageRecords::Check(r) => sections::check_section(s, r, &mut sink)?,
            StageRecords::Smerf(r) => sections::smerf_section(s, r, &mut sink)?,
            StageRecords::Missing(reason) => {
                Section::new(s.stage.title.clone()).paragraph(format!("Not available: {reason}"))
            }
            StageRecords::None => continue,
        };
        page = page.section(section);
    }
    page = page.section(provenance(&manifest));

    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| ReportError::io(&path, e))
    };
    let json = serde_json::to_string_pretty(&matrix).map_err(|e| ReportError::Records {
        path: dir.join(VERDICTS_JSON),
        message: e.to_string(),
    })?;
    write(VERDICTS_JSON, &json)?;
    write(VERDICTS_CSV, &matrix.to_csv())?;
    write(INDEX_HTML, &page.render())?;
    Ok(ReportOutcome { matrix, index: dir.join(INDEX_HTML), figures: sink.written })
}

fn overview(m: &RunManifest) -> Section {
    let state = if m.complete { "complete" } else { "INCOMPLETE (resume with --resume)" };
    Section::new("What was run")
        .paragraph(format!(
            "skepsis {} ran the built-in sanity-check benchmark, profile '{}', seed {}, {} \
             threads, in {:.0} s; the run is {state}. Data: {}.",
            m.version, m.profile, m.seed, m.threads, m.seconds, m.data
        ))
        .paragraph(
            "Each check asks whether a saliency method's maps depend on what they claim to \
             explain: on the trained weights (model randomization, Adebayo et al. 2018), on the \
             labels the model learned (data randomization, ibid.), on the explained class \
             (random logit, Sixt et al. 2020), not on an input shift the model ignores (input \
             invariance, Kindermans et al. 2017), and whether they find the features a model is \
             known to use (SMERF, Kim et al. 2022). A random map and an edge detector run as \
             controls: a method that scores like the edge detector explains the image, not the \
             model.",
        )
}

fn verdict_section(matrix: &VerdictMatrix) -> Section {
    let mut rules = Table::new(["check", "rule"]).with_caption("The rule behind each column");
    for c in &matrix.columns {
        rules = rules.row([Cell::from(c.label.clone()), Cell::from(c.rule.clone())]);
    }
    Section::new("Verdicts")
        .paragraph(
            "pass / fail / n/a per method and check, with the value the rule looked at; hover a \
             cell for the reason. Records: verdicts.json, verdicts.csv and each check's \
             directory.",
        )
        .table(matrix.to_table())
        .table(rules)
}

fn provenance(m: &RunManifest) -> Section {
    let mut stages = Table::new(["stage", "model", "seconds", "status", "result", "records"])
        .with_caption("Stages, timings and where their records are");
    let mut commands = String::new();
    for s in &m.stages {
        let (status, class) = match &s.status {
            StageStatus::Done => ("done".to_string(), "pass"),
            StageStatus::Failed(reason) => (format!("failed: {reason}"), "fail"),
        };
        stages = stages.row([
            Cell::from(s.title.clone()),
            Cell::from(s.model.clone().unwrap_or_default()),
            Cell::styled(format!("{:.1}", s.seconds), "num", ""),
            Cell::styled(status, class, ""),
            Cell::from(s.summary.clone()),
            Cell::from(s.dir.clone()),
        ]);
        if !s.command.is_empty() {
            commands.push_str(&format!("# {}\n{}\n", s.title, s.command));
        }
    }
    let parameters = serde_json::to_string_pretty(&m.parameters).unwrap_or_default();
    Section::new("Parameters, seeds, versions and timings")
        .paragraph(format!(
            "{} {}, profile {}, seed {} (every random choice derives from it), {} threads.",
            m.tool, m.version, m.profile, m.seed, m.threads
        ))
        .table(stages)
        .paragraph("Each stage is an ordinary skepsis command; to reproduce or vary one:")
        .code(commands)
        .paragraph("The profile's parameters:")
        .code(parameters)
}
