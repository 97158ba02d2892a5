//! `skepsis check smerf` end to end on a scaled-down setup 1.11 (Kim et al. 2022): trains to
//! the threshold, prints the verdict table, writes every record and the model, refuses to
//! overwrite without --force, and rejects bad options with exit status 2 before any work.

use std::process::Command;

fn skepsis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_skepsis"))
}

#[test]
fn quick_smerf_run_writes_records_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smerf");
    let args = |extra: &[&str]| {
        let mut c = skepsis();
        c.args(["check", "smerf", "--setup", "1.11", "--scale", "0.05", "--profile", "quick"])
            .args(["--epochs", "12", "--attempts", "3", "--images-per-bucket", "2"])
            .args(["--methods", "gradient", "--methods", "Random", "--out"])
            .arg(&out)
            .args(extra);
        c
    };
    let run = args(&[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("1.11") && stdout.contains("scored"), "{stdout}");
    assert!(stdout.contains("Random") && stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("rule: a method passes"), "{stdout}");
    for file in ["smerf.json", "images.csv", "setups.csv", "accuracy.csv", "training.csv"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    assert!(out.join("models/1.11/model.json").is_file());

    let again = args(&[]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.starts_with("skepsis: ") && stderr.contains("--force"), "{stderr}");

    // --fail-on-verdict: the random baseline fails, so the exit status is 1 (records written).
    let failing = args(&["--force", "--fail-on-verdict"]).output().unwrap();
    assert_eq!(failing.status.code(), Some(1));
}

#[test]
fn bad_options_fail_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        vec!["--setup", "4.2"],
        vec!["--methods", "gradiant"],
        vec!["--scale", "0"],
        vec!["--blur", "4"],
        vec!["--background", "/no/such/dir"],
    ] {
        let o = skepsis()
            .args(["check", "smerf", "--out"])
            .arg(dir.path().join("x"))
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.starts_with("skepsis: "), "{bad:?}: {stderr}");
        assert!(!dir.path().join("x").exists(), "{bad:?} did work");
    }
}
