//! `skepsis check smerf`: the SMERF ground-truth simulations (Kim, Plumb & Talwalkar, "Sanity
//! Simulations for Saliency Methods", ICML 2022). Parses and validates every option before
//! any work, runs `skepsis_eval::smerf::run_smerf`, prints the verdict table and writes the
//! records (and the trained models) into `--out`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use skepsis_data::{Background, SmerfSetup};
use skepsis_eval::ground_truth::{BlurBoundary, ChannelReduction, FocusOptions};
use skepsis_eval::smerf::{
    run_smerf, smerf_methods, verdict_table, write_records, BucketAggregate, MethodEntry, PassRule,
    ScoringOptions, SmerfRunConfig, TrainingOptions, TrainingProfile, VerdictStatus, RECORD_FILES,
};
use skepsis_nn::model_file;
use skepsis_nn::train::Console;

/// SMERF ground-truth simulations (Kim, Plumb & Talwalkar, ICML 2022): train on scenes with
/// a known true reasoning and score every method against it.
///
/// Scores how much of each map falls on the regions the model must use (primary) and must not
/// use (secondary), and states which methods pass. Each setup's data is generated, its model (TextBoxCNN for 1.11 / 2.11, TextBoxCNN_adv for
/// 1.2 / 3.7x) is trained with Adam and retrained with new seeds until train and test
/// accuracy both reach 0.98 (simple) / 0.95 (complex) (0.90 / 0.95 on natural backgrounds);
/// a model that never does is reported and not scored. Maps are reduced with max |.| over
/// channels, blurred 7x7, normalized to a distribution, and scored with AFL, MAFL and IoU.
///
/// Writes smerf.json, images.csv, buckets.csv, setups.csv, accuracy.csv, training.csv,
/// groups.csv, distinguishing.csv and `models/<setup>/` into `--out`.
///
/// Exit status: 0 done; 1 with --fail-on-verdict when a method fails a scored setup or a
/// setup could not be scored; 2 error.
///
/// Quick run: skepsis check smerf --setup 1.11 --scale 0.05 --profile quick
/// --images-per-bucket 5 --out smerf-quick/
#[derive(Debug, Args)]
pub struct SmerfArgs {
    /// Setups: `all`, or a comma-separated list of 1.11, 2.11, 1.2, 3.71, 3.72, 3.73, 3.74.
    #[arg(long, default_value = "all", value_name = "all|ID[,ID]")]
    pub setup: String,
    /// Scene background: black (the paper's default), texture (procedural natural-looking
    /// texture), or a directory of PNG/JPEG photos (SMERF used Places365).
    #[arg(long, default_value = "black", value_name = "black|texture|DIR")]
    pub background: String,
    /// Methods: `smerf` (the paper's list, then CGI, Random and Edge), a label of that list
    /// exactly as written (e.g. `DeepSHAP`), or a method spec (`ig:steps=32`, labelled as
    /// written); repeat the flag for several.
    #[arg(long = "methods", value_name = "SPEC", default_value = "smerf")]
    pub methods: Vec<String>,
    /// Output directory of the records and the trained models.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Factor on the paper's per-bucket image counts (1 = faithful; 0.05 for a quick run).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub scale: f64,
    /// Training attempts (fresh seeds) per setup before it is reported as not trained.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub attempts: usize,
    /// Epoch limit per attempt (default: paper profile 50 simple / 150 complex; quick 30).
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Training defaults: `paper` (Adam lr 1e-4 simple / 1e-5 complex, batch 128) or `quick`
    /// (lr 1e-3 everywhere, for scaled-down runs).
    #[arg(long, default_value = "paper", value_parser = ["paper", "quick"])]
    pub profile: String,
    /// Learning rate override.
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,
    /// Mini-batch size.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub batch_size: usize,
    /// Accuracy threshold override (default: 0.98 simple / 0.95 complex; 0.90 / 0.95 on
    /// natural backgrounds).
    #[arg(long, value_name = "ACCURACY")]
    pub threshold: Option<f64>,
    /// Example images per setup kept for the report's figures (one per bucket).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub examples: usize,
    /// Test images scored per bucket (seeded choice; the same images for every method).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub images_per_bucket: usize,
    /// Seed of the data, the training and the image choice.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Side of the mean blur applied before AFL, MAFL and IoU (SMERF: 7; 1 = no blur).
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub blur: usize,
    /// Channel reduction of the raw maps: max-abs (max over channels of |a|) or signed-sum.
    #[arg(long, default_value = "max-abs", value_parser = ["max-abs", "signed-sum"])]
    pub reduction: String,
    /// Primary AFL a method needs to pass (the paper's correctness line: 0.5).
    #[arg(long, default_value_t = 0.5, value_name = "AFL")]
    pub afl_threshold: f64,
    /// Aggregate over buckets that --afl-threshold applies to.
    #[arg(long, default_value = "average", value_parser = ["average", "minimum"])]
    pub aggregate: String,
    /// Overwrite existing records and models in --out.
    #[arg(long)]
    pub force: bool,
    /// Exit with status 1 when any method fails a scored setup or a setup is not scored.
    #[arg(long)]
    pub fail_on_verdict: bool,
}

/// Parses the setup list.
fn parse_setups(text: &str) -> Result<Vec<SmerfSetup>> {
    if text.trim() == "all" {
        return Ok(SmerfSetup::ALL.to_vec());
    }
    let mut setups = Vec::new();
    for id in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let setup = SmerfSetup::from_id(id)?;
        if !setups.contains(&setup) {
            setups.push(setup);
        }
    }
    if setups.is_empty() {
        bail!("--setup: no setup given");
    }
    Ok(setups)
}

/// Parses the method list: `smerf`, labels of the SMERF list, or specs.
fn parse_methods(values: &[String]) -> Vec<MethodEntry> {
    let table = smerf_methods();
    let mut out: Vec<MethodEntry> = Vec::new();
    for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        let entries = if value.eq_ignore_ascii_case("smerf") {
            table.clone()
        } else if let Some(e) = table.iter().find(|e| e.label == value) {
            vec![e.clone()]
        } else {
            vec![MethodEntry::new(value, value)]
        };
        for e in entries {
            if !out.iter().any(|o| o.label == e.label) {
                out.push(e);
            }
        }
    }
    out
}

/// Builds the validated configuration (no I/O beyond checking the background directory).
fn config(args: &SmerfArgs) -> Result<SmerfRunConfig> {
    let background = match args.background.as_str() {
        "black" => Background::Black,
        "texture" => Background::Texture,
        dir => {
            let path = PathBuf::from(dir);
            if !path.is_dir() {
                bail!("--background: '{dir}' is not black, texture or a directory");
            }
            Background::Folder(path)
        }
    };
    let config = SmerfRunConfig {
        setups: parse_setups(&args.setup)?,
        background,
        scale: args.scale,
        seed: args.seed,
        training: TrainingOptions {
            profile: match args.profile.as_str() {
                "quick" => TrainingProfile::Quick,
                _ => TrainingProfile::Paper,
            },
            learning_rate: args.lr,
            max_epochs: args.epochs,
            batch_size: args.batch_size,
            attempts: args.attempts,
            threshold: args.threshold,
        },
        images_per_bucket: args.images_per_bucket,
        methods: parse_methods(&args.methods),
        scoring: ScoringOptions {
            focus: FocusOptions { blur_size: args.blur, boundary: BlurBoundary::Reflect101 },
            reduction: match args.reduction.as_str() {
                "signed-sum" => ChannelReduction::SignedSum,
                _ => ChannelReduction::MaxAbs,
            },
            ..ScoringOptions::default()
        },
        target: Default::default(),
        pass_rule: PassRule {
            afl_threshold: args.afl_threshold,
            aggregate: match args.aggregate.as_str() {
                "minimum" => BucketAggregate::Minimum,
                _ => BucketAggregate::Average,
            },
            primary_above_secondary: true,
        },
        examples: args.examples,
    };
    config.validate()?;
    Ok(config)
}

/// Runs `skepsis check smerf`.
pub fn run(args: SmerfArgs) -> Result<()> {
    let config = config(&args)?;
    if !args.force {
        let models = args.out.join("models");
        let existing = RECORD_FILES.iter().map(|f| args.out.join(f)).chain([models]);
        if let Some(path) = existing.into_iter().find(|p| p.exists()) {
            bail!("{} already exists (pass --force to overwrite)", path.display());
        }
    }
    let outcome = run_smerf(&config, &mut Console::new())?;
    write_records(&outcome.report, &args.out, args.force)?;
    for (setup, model, _) in &outcome.models {
        let dir = args.out.join("models").join(setup.id());
        model_file::save(model, &dir, args.force)
            .with_context(|| format!("saving the {} model", setup.id()))?;
    }
    print!("{}", verdict_table(&outcome.report));
    println!("records written to {}", args.out.display());
    if args.fail_on_verdict {
        let failed = outcome
            .report
            .setups
            .iter()
            .flat_map(|s| &s.verdicts)
            .filter(|(_, v)| v.status != VerdictStatus::Pass)
            .count();
        if failed > 0 {
            eprintln!("skepsis: {failed} method/setup verdict(s) did not pass (--fail-on-verdict)");
            std::process::exit(1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_lists() {
        assert_eq!(parse_setups("all").unwrap().len(), 7);
        assert_eq!(
            parse_setups("1.11, 2.11,1.11").unwrap(),
            vec![SmerfSetup::SimpleFr, SmerfSetup::SimpleNr]
        );
        assert!(parse_setups("4.2").is_err());
        assert!(parse_setups(",").is_err());
    }

    #[test]
    fn method_lists() {
        assert_eq!(parse_methods(&["smerf".into()]).len(), smerf_methods().len());
        // A label of the paper's list selects its entry; anything else is a spec, labelled
        // as written (so `skepsis run` can line SMERF up with the other checks).
        let m = parse_methods(&[
            "gradient".into(),
            "ig:steps=8".into(),
            "DeepSHAP".into(),
            "gradient".into(),
        ]);
        let got: Vec<_> = m.iter().map(|e| (e.label.as_str(), e.spec.as_str())).collect();
        assert_eq!(got[..2], [("gradient", "gradient"), ("ig:steps=8", "ig:steps=8")]);
        assert_eq!((got.len(), got[2].0), (3, "DeepSHAP"));
    }
}
