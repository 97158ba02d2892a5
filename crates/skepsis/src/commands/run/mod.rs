//! `skepsis run`: the built-in benchmark. Generates the data (or imports MNIST), trains the
//! papers' models, runs every sanity check on every method family, runs SMERF, and writes the
//! HTML report with JSON/CSV records and PNG figures. `skepsis report DIR` renders the page
//! again from the records.
//!
//! Every stage is an ordinary `skepsis` command line (see [`plan`](plan::plan)) run in-process; the
//! manifest (`run.json`) records each stage's command, time and outcome after it ends, so an
//! interrupted run continues with `--resume` (finished stages are skipped, a check resumes from
//! its finished steps).
//!
//! Exit codes: 0 when every stage ran (whatever the verdicts); 2 when a stage failed (the
//! report still shows everything that completed) or on bad arguments.

mod plan;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser};
use skepsis_eval::checks::{CheckReport, Outcome, REPORT_JSON};
use skepsis_nn::train::TrainReport;
use skepsis_report::run::{
    write_report, RunManifest, Stage, StageKind, StageStatus, INDEX_HTML, MANIFEST_JSON, SMERF_JSON,
};

use plan::{plan, DataSource, Planned, Profile};

/// `skepsis run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// `quick` (the default; about 10 minutes on 2 cores), `paper` (the papers' sizes: 60,000
    /// images, 50 epochs, 200 explained images, all seven SMERF setups at full size; hours to
    /// days on a CPU) or `smoke` (tiny sizes, seconds; for tests).
    #[arg(long, default_value = "quick", value_parser = ["smoke", "quick", "paper"])]
    pub profile: String,
    /// Output directory of the report, records, figures, data and models.
    #[arg(long, default_value = "skepsis-report", value_name = "DIR")]
    pub out: PathBuf,
    /// Use MNIST from this directory (the four IDX files, optionally .gz) instead of the
    /// generated digits.
    #[arg(long, value_name = "DIR")]
    pub mnist: Option<PathBuf>,
    /// Seed of every random choice of every stage.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue an interrupted run in --out: finished stages are kept.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Start over in an --out that holds an earlier run (its stages are deleted).
    #[arg(long)]
    pub force: bool,
}

/// `skepsis report` options.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The output directory of a `skepsis run`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// What a run writes at the top of its directory (removed by `--force`).
const RUN_ENTRIES: [&str; 9] = [
    "data",
    "models",
    "checks",
    "smerf",
    skepsis_report::run::FIGURES_DIR,
    INDEX_HTML,
    MANIFEST_JSON,
    skepsis_report::run::VERDICTS_JSON,
    skepsis_report::run::VERDICTS_CSV,
];

/// Runs `skepsis run`.
pub fn run(args: RunArgs) -> Result<()> {
    let profile = Profile::named(&args.profile)
        .with_context(|| format!("unknown profile '{}'", args.profile))?;
    let source = match &args.mnist {
        Some(dir) if !dir.is_dir() => bail!("--mnist {}: not a directory", dir.display()),
        Some(dir) => DataSource::Mnist(dir.clone()),
        None => DataSource::Generated,
    };
    let out = &args.out;
    let mut manifest = prepare_output(&args, &profile, &source)?;
    let planned = plan(&profile, out, args.seed, &source);
    let started = Instant::now();
    let earlier = manifest.seconds;
    let total = planned.len();
    for (i, p) in planned.iter().enumerate() {
        if manifest.stage(&p.stage.id).is_some_and(|s| s.status == StageStatus::Done) {
            eprintln!("[{}/{total}] {}: done in an earlier session", i + 1, label(&p.stage));
            continue;
        }
        eprintln!(
            "[{}/{total}] {} ({:.0} s elapsed)\n    {}",
            i + 1,
            label(&p.stage),
            earlier + started.elapsed().as_secs_f64(),
            p.stage.command
        );
        let stage = run_stage(p, out);
        if let StageStatus::Failed(reason) = &stage.status {
            eprintln!("    FAILED: {reason}");
        }
        match manifest.stages.iter_mut().find(|s| s.id == stage.id) {
            Some(slot) => *slot = stage,
            None => manifest.stages.push(stage),
        }
        manifest.seconds = earlier + started.elapsed().as_secs_f64();
        manifest.write(out)?;
    }
    manifest.seconds = earlier + started.elapsed().as_secs_f64();
    let failed: Vec<String> =
        manifest.stages.iter().filter(|s| s.status != StageStatus::Done).map(label).collect();
    manifest.complete = failed.is_empty();
    manifest.write(out)?;
    let report = write_report(out).context("writing the report")?;
    println!("\nVerdicts ({} profile, seed {}):", profile.name, args.seed);
    print!("{}", report.matrix.to_text());
    println!(
        "\nreport: {} ({} figures in {}/figures; records in each stage's directory) after {:.0} s",
        report.index.display(),
        report.figures.len(),
        out.display(),
        manifest.seconds
    );
    if !failed.is_empty() {
        bail!(
            "{} stage(s) failed: {}; the report shows what completed",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Renders the report of a run directory again.
pub fn report(args: ReportArgs) -> Result<()> {
    let report = write_report(&args.dir)
        .with_context(|| format!("rendering the report of {}", args.dir.display()))?;
    print!("{}", report.matrix.to_text());
    println!("report: {} ({} figures)", report.index.display(), report.figures.len());
    Ok(())
}

fn label(stage: &Stage) -> String {
    match &stage.model {
        Some(m) if stage.kind == StageKind::Check => format!("{} ({m})", stage.title),
        _ => stage.title.clone(),
    }
}

/// Checks `--out` against `--resume` / `--force` and returns the manifest to continue.
fn prepare_output(args: &RunArgs, profile: &Profile, source: &DataSource) -> Result<RunManifest> {
    let out = &args.out;
    let has_run = out.join(MANIFEST_JSON).exists();
    if args.resume && has_run {
        let m = RunManifest::read(out)?;
        if m.profile != profile.name || m.seed != args.seed {
            bail!(
                "{} holds a '{}' run with seed {}; resume it with the same --profile and --seed",
                out.display(),
                m.profile,
                m.seed
            );
        }
        return Ok(m);
    }
    if has_run && !args.force {
        bail!(
            "{} holds an earlier run; pass --resume to continue it or --force to start over",
            out.display()
        );
    }
    let foreign = out.is_dir()
        && std::fs::read_dir(out)?
            .filter_map(|e| e.ok())
            .any(|e| !RUN_ENTRIES.contains(&e.file_name().to_string_lossy().as_ref()));
    if !has_run && foreign && !args.force {
        bail!(
            "{} exists and is not a skepsis run directory; choose another --out (--force \
             replaces only what a run writes)",
            out.display()
        );
    }
    for entry in RUN_ENTRIES {
        let path = out.join(entry);
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let data = match source {
        DataSource::Generated => format!(
            "synthetic digits generated with seed {} ({} train / {} test images)",
            args.seed, profile.train_images, profile.test_images
        ),
        DataSource::Mnist(dir) => format!("MNIST from {}", dir.display()),
    };
    let manifest = RunManifest {
        tool: "skepsis".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        profile: profile.name.into(),
        seed: args.seed,
        threads: rayon::current_num_threads(),
        data,
        parameters: serde_json::json!({
            "profile": profile,
            "cnn_methods": profile.cnn_methods(),
            "mlp_methods": profile.mlp_methods(),
            "invariance_methods": profile.invariance_methods(),
        }),
        stages: Vec::new(),
        seconds: 0.0,
        complete: false,
    };
    manifest.write(out)?;
    Ok(manifest)
}

/// Runs one stage's command in-process and describes its outcome.
fn run_stage(p: &Planned, out: &Path) -> Stage {
    let started = Instant::now();
    let argv = std::iter::once("skepsis".to_string()).chain(p.args.iter().cloned());
    let result = crate::cli::Cli::try_parse_from(argv)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().lines().next().unwrap_or("bad arguments")))
        .and_then(super::run);
    let mut stage = p.stage.clone();
    stage.seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            stage.status = StageStatus::Done;
            stage.summary = summary(&stage, &out.join(&stage.dir)).unwrap_or_default();
        }
        Err(e) => stage.status = StageStatus::Failed(crate::one_line(&e)),
    }
    stage
}

/// One line on what a finished stage produced, from its records.
fn summary(stage: &Stage, dir: &Path) -> Option<String> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    match stage.kind {
        StageKind::Data => Some(format!("written to {}", stage.dir)),
        StageKind::Train => {
            let r: TrainReport = serde_json::from_str(&read("train_report.json")?).ok()?;
            Some(format!(
                "{} epoch(s): train accuracy {:.4}{}",
                r.epochs.len(),
                r.final_train_accuracy,
                r.final_heldout_accuracy.map_or(String::new(), |a| format!(", held-out {a:.4}"))
            ))
        }
        StageKind::Check => {
            let r: CheckReport = serde_json::from_str(&read(REPORT_JSON)?).ok()?;
            if let Some(reason) = &r.refusal {
                return Some(format!("refused: {reason}"));
            }
            let count =
                |o: Outcome| r.verdicts.iter().filter(|v| !v.baseline && v.outcome == o).count();
            Some(format!(
                "{} pass, {} fail, {} n/a",
                count(Outcome::Pass),
                count(Outcome::Fail),
                count(Outcome::NotApplicable)
            ))
        }
        StageKind::Smerf => {
            let r: skepsis_eval::smerf::SmerfReport =
                serde_json::from_str(&read(SMERF_JSON)?).ok()?;
            let scored = r.setups.iter().filter(|s| s.scores.is_some()).count();
            Some(format!("{} setup(s), {scored} scored", r.setups.len()))
        }
    }
}
