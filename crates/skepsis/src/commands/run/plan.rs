//! The stages of `skepsis run` for each profile. Every stage is an ordinary `skepsis`
//! command line, run in-process, so each result can be reproduced (and varied) by hand with
//! the command the report lists next to it.

use std::path::Path;

use serde::Serialize;
use skepsis_report::run::{Stage, StageKind, StageStatus};

/// Sizes of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// `smoke`, `quick` or `paper`.
    pub name: &'static str,
    /// Generated training images (ignored with `--mnist`).
    pub train_images: usize,
    /// Generated test images (ignored with `--mnist`).
    pub test_images: usize,
    /// Images held out of training for validation (the Sanity Checks protocol: 5000).
    pub holdout: usize,
    /// Epochs of the SC CNN and the SC MLP.
    pub epochs: usize,
    /// Adam learning rate of the SC models.
    pub lr: f64,
    /// Images explained by every check.
    pub images: usize,
    /// Example images kept per check for the figures.
    pub examples: usize,
    /// SmoothGrad samples.
    pub smoothgrad_samples: usize,
    /// Integrated Gradients steps.
    pub ig_steps: usize,
    /// Training images of the random-label model (it must memorize them).
    pub memorize_images: usize,
    /// Epoch limit of the random-label model.
    pub memorize_epochs: usize,
    /// Epochs of the Kindermans MLP.
    pub kindermans_epochs: usize,
    /// Random relevance vectors of the rank-1 test.
    pub rank1_vectors: usize,
    /// SMERF setups.
    pub smerf_setups: &'static str,
    /// SMERF's factor on the paper's image counts.
    pub smerf_scale: f64,
    /// SMERF test images scored per bucket.
    pub smerf_images_per_bucket: usize,
    /// SMERF training attempts per setup.
    pub smerf_attempts: usize,
    /// SMERF epoch limit (`None`: the paper's 50 / 150).
    pub smerf_epochs: Option<usize>,
    /// SMERF training defaults (`quick` or `paper`).
    pub smerf_training: &'static str,
    /// Also run the bottom-up and independent randomizations and data randomization on the
    /// SC MLP.
    pub full_mlp: bool,
}

impl Profile {
    /// The profile called `name`.
    pub fn named(name: &str) -> Option<Profile> {
        let quick = Profile {
            name: "quick",
            train_images: 12_000,
            test_images: 2_000,
            holdout: 0,
            epochs: 3,
            lr: 1e-3,
            images: 16,
            examples: 2,
            smoothgrad_samples: 16,
            ig_steps: 16,
            memorize_images: 500,
            memorize_epochs: 60,
            kindermans_epochs: 3,
            rank1_vectors: 5,
            smerf_setups: "1.11,3.71",
            smerf_scale: 0.05,
            smerf_images_per_bucket: 5,
            smerf_attempts: 3,
            smerf_epochs: Some(30),
            smerf_training: "quick",
            full_mlp: false,
        };
        match name {
            "quick" => Some(quick),
            "smoke" => Some(Profile {
                name: "smoke",
                train_images: 600,
                test_images: 100,
                epochs: 1,
                images: 3,
                smoothgrad_samples: 3,
                ig_steps: 3,
                memorize_images: 60,
                memorize_epochs: 20,
                kindermans_epochs: 1,
                rank1_vectors: 2,
                smerf_setups: "1.11",
                smerf_scale: 0.02,
                smerf_images_per_bucket: 2,
                smerf_attempts: 1,
                smerf_epochs: Some(5),
                ..quick
            }),
            "paper" => Some(Profile {
                name: "paper",
                train_images: 60_000,
                test_images: 10_000,
                holdout: 5_000,
                epochs: 50,
                lr: 1e-4,
                images: 200,
                examples: 4,
                smoothgrad_samples: 50,
                ig_steps: 64,
                memorize_images: 55_000,
                memorize_epochs: 100,
                kindermans_epochs: 20,
                rank1_vectors: 5,
                smerf_setups: "all",
                smerf_scale: 1.0,
                smerf_images_per_bucket: 20,
                smerf_attempts: 20,
                smerf_epochs: None,
                smerf_training: "paper",
                full_mlp: true,
            }),
            _ => None,
        }
    }

    /// Every method family, for a convolutional model: gradient, input x gradient, noise
    /// averaging, path integration, modified backprop, CAM, relevance propagation,
    /// difference-from-reference, and the competitive fix (CGI). LRP uses zennit's
    /// EpsilonGammaBox with the [0, 1] pixel box: the default EpsilonPlusFlat spreads the first
    /// layer's relevance evenly, which makes every map of an MLP constant.
    pub fn cnn_methods(&self) -> Vec<String> {
        let mut m = self.mlp_methods();
        m.insert(6, "gradcam".into());
        m.insert(7, "guided-gradcam".into());
        m
    }

    /// The same families without the CAM methods (which need a convolutional layer).
    pub fn mlp_methods(&self) -> Vec<String> {
        vec![
            "gradient".into(),
            "gradient-x-input".into(),
            format!("smoothgrad:samples={},sigma=0.15", self.smoothgrad_samples),
            format!("ig:steps={}", self.ig_steps),
            "guided-backprop".into(),
            "deconvnet".into(),
            "lrp:composite=epsilon-gamma-box".into(),
            "deeplift".into(),
            "cgi".into(),
        ]
    }

    /// Kindermans et al.'s list for input invariance: IG with a zero and with a black
    /// reference (the latter moves with the shift).
    pub fn invariance_methods(&self) -> Vec<String> {
        vec![
            "gradient".into(),
            "gradient-x-input".into(),
            format!("ig:steps={}", self.ig_steps),
            format!("ig:steps={},baseline=constant,value=black", self.ig_steps),
            "guided-backprop".into(),
            "lrp:composite=epsilon-gamma-box".into(),
            "deeplift".into(),
            format!("smoothgrad:samples={},sigma=0.15", self.smoothgrad_samples),
        ]
    }
}

/// A stage to run: its manifest entry and its command line (without the program name).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The manifest entry (seconds and status filled in when it ran).
    pub stage: Stage,
    /// The `skepsis` arguments.
    pub args: Vec<String>,
}

/// Where the run's data comes from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// Generated synthetic digits.
    Generated,
    /// MNIST IDX files in a directory.
    Mnist(std::path::PathBuf),
}

/// The stages of a run into `out`.
pub fn plan(profile: &Profile, out: &Path, seed: u64, source: &DataSource) -> Vec<Planned> {
    let p = |rel: &str| out.join(rel).to_string_lossy().into_owned();
    let seed_s = seed.to_string();
    let mut stages = Vec::new();
    let mut add =
        |id: &str, kind: StageKind, title: String, model: Option<&str>, args: Vec<String>| {
            let column = matches!(kind, StageKind::Check | StageKind::Smerf).then(|| {
                let short = title
                    .replace("Model randomization", "MPRT")
                    .replace("Data randomization", "Data rand.");
                match model {
                    Some(m) if kind == StageKind::Check => format!("{short} ({m})"),
                    _ => short,
                }
            });
            stages.push(Planned {
                stage: Stage {
                    id: id.to_string(),
                    kind,
                    title,
                    column,
                    model: model.map(str::to_string),
                    dir: id.to_string(),
                    seconds: 0.0,
                    status: StageStatus::Failed("not run yet".into()),
                    summary: String::new(),
                    command: shell_line(&args),
                },
                args,
            });
        };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();

    // 1. Data.
    let digits = p("data/digits");
    let memorize = p("data/memorize");
    match source {
        DataSource::Generated => {
            add("data/digits", StageKind::Data, "Synthetic digits".into(), None, {
                let mut a = s(&["data", "generate", "digits", "--out", &digits, "--seed", &seed_s]);
                a.extend(s(&["--train", &profile.train_images.to_string()]));
                a.extend(s(&["--test", &profile.test_images.to_string(), "--force"]));
                a
            });
        }
        DataSource::Mnist(dir) => {
            let dir = dir.to_string_lossy().into_owned();
            add(
                "data/digits",
                StageKind::Data,
                "MNIST".into(),
                None,
                s(&["data", "import-mnist", &dir, "--out", &digits, "--force"]),
            );
        }
    }
    add("data/memorize", StageKind::Data, "Random-label training subset".into(), None, {
        let n = profile.memorize_images.to_string();
        s(&["data", "subset", &digits, "--out", &memorize, "--train", &n, "--force"])
    });

    // 2. Models.
    let train = |arch: &str, epochs: usize| {
        let mut a = s(&[
            "train",
            "--arch",
            arch,
            "--data",
            &digits,
            "--out",
            &p(&format!("models/{arch}")),
        ]);
        a.extend(s(&["--epochs", &epochs.to_string(), "--lr", &profile.lr.to_string()]));
        a.extend(s(&["--holdout", &profile.holdout.to_string(), "--seed", &seed_s, "--force"]));
        a
    };
    for (arch, epochs) in [
        ("sc-cnn", profile.epochs),
        ("sc-mlp", profile.epochs),
        ("kindermans-mlp", profile.kindermans_epochs),
    ] {
        add(
            &format!("models/{arch}"),
            StageKind::Train,
            format!("Train {arch}"),
            Some(arch),
            train(arch, epochs),
        );
    }

    // 3. Checks.
    let common = |model: &str, data: &str, methods: &[String], id: &str| {
        let mut a = s(&["--model", &p(&format!("models/{model}")), "--data", data]);
        a.extend(s(&["--methods", &methods.join(","), "--images", &profile.images.to_string()]));
        a.extend(s(&["--seed", &seed_s, "--examples", &profile.examples.to_string()]));
        a.extend(s(&["--out", &p(id), "--resume"]));
        a
    };
    let mut randomization = |model: &str, mode: &str, order: &str, methods: &[String]| {
        let id = format!("checks/{model}/mprt-{mode}-{order}");
        let mut a = s(&["check", "randomization"]);
        a.extend(common(model, &digits, methods, &id));
        a.extend(s(&[
            "--mode",
            mode,
            "--order",
            order,
            "--metrics",
            "spearman-abs,ssim,spearman-signed",
        ]));
        let title = format!("Model randomization {mode} {order}");
        add(&id, StageKind::Check, title, Some(model), a);
    };
    let (cnn, mlp) = (profile.cnn_methods(), profile.mlp_methods());
    for (mode, order) in [
        ("cascading", "top-down"),
        ("independent", "top-down"),
        ("cascading", "bottom-up"),
        ("independent", "bottom-up"),
    ] {
        randomization("sc-cnn", mode, order, &cnn);
        if profile.full_mlp || (mode, order) == ("cascading", "top-down") {
            randomization("sc-mlp", mode, order, &mlp);
        }
    }
    let mut data_randomization = |model: &str, methods: &[String]| {
        let id = format!("checks/{model}/data-randomization");
        let mut a = s(&["check", "data-randomization"]);
        a.extend(common(model, &memorize, methods, &id));
        a.extend(s(&[
            "--metrics",
            "spearman-abs,ssim",
            "--epochs",
            &profile.memorize_epochs.to_string(),
        ]));
        a.extend(s(&["--lr", &profile.lr.to_string()]));
        add(&id, StageKind::Check, "Data randomization".into(), Some(model), a);
    };
    data_randomization("sc-cnn", &cnn);
    if profile.full_mlp {
        data_randomization("sc-mlp", &mlp);
    }
    let id = "checks/kindermans-mlp/input-invariance";
    let mut a = s(&["check", "input-invariance"]);
    a.extend(common("kindermans-mlp", &digits, &profile.invariance_methods(), id));
    add(id, StageKind::Check, "Input invariance".into(), Some("kindermans-mlp"), a);
    let id = "checks/sc-cnn/random-logit";
    let mut a = s(&["check", "random-logit"]);
    a.extend(common("sc-cnn", &digits, &cnn, id));
    a.extend(s(&["--metrics", "spearman-abs,ssim"]));
    add(id, StageKind::Check, "Random logit".into(), Some("sc-cnn"), a);
    let id = "checks/sc-cnn/rank1";
    let mut a = s(&["check", "rank1"]);
    a.extend(common("sc-cnn", &digits, &cnn, id));
    a.extend(s(&["--vectors", &profile.rank1_vectors.to_string()]));
    add(id, StageKind::Check, "Rank-1 convergence".into(), Some("sc-cnn"), a);

    // 4. SMERF.
    let mut a = s(&["check", "smerf", "--setup", profile.smerf_setups, "--out", &p("smerf")]);
    a.extend(s(&[
        "--scale",
        &profile.smerf_scale.to_string(),
        "--profile",
        profile.smerf_training,
    ]));
    a.extend(s(&["--images-per-bucket", &profile.smerf_images_per_bucket.to_string()]));
    a.extend(s(&["--attempts", &profile.smerf_attempts.to_string(), "--seed", &seed_s]));
    a.extend(s(&["--examples", &profile.examples.to_string(), "--force"]));
    if let Some(e) = profile.smerf_epochs {
        a.extend(s(&["--epochs", &e.to_string()]));
    }
    for m in cnn.iter().chain([&"random".to_string(), &"sobel".to_string()]) {
        a.extend(s(&["--methods", m]));
    }
    add("smerf", StageKind::Smerf, "SMERF".into(), Some("textbox-cnn"), a);
    stages
}

/// `skepsis ARGS` with every argument that needs it single-quoted for a POSIX shell.
pub fn shell_line(args: &[String]) -> String {
    let quote = |a: &String| {
        if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+".contains(c)) {
            a.clone()
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    std::iter::once("skepsis".to_string())
        .chain(args.iter().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}
