//! Helpers shared by the command-line tests: the real binary, the conformance fixtures.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `skepsis` binary built for these tests with `args` in `dir`.
pub fn skepsis(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skepsis"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("skepsis runs")
}

/// A model directory of the shared conformance fixtures (`SKEPSIS_CONFORMANCE_DIR` or
/// `../shared/conformance` next to the repository).
pub fn conformance_model(name: &str) -> PathBuf {
    let base = match std::env::var_os("SKEPSIS_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    base.join("models").join(name)
}

/// The process' standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
