//! Progress reporting for long steps: a bar with ETA on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Receives progress of a long computation (training epochs, check steps).
pub trait Progress {
    /// A new phase with `total` units of work.
    fn start(&mut self, total: u64, what: &str);
    /// `n` more units done.
    fn advance(&mut self, n: u64);
    /// A line worth keeping (e.g. one line per epoch).
    fn message(&mut self, line: &str);
    /// The phase is over.
    fn finish(&mut self);
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: u64, _: &str) {}
    fn advance(&mut self, _: u64) {}
    fn message(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

/// Writes to standard error: an indicatif bar with ETA when stderr is a terminal, one plain
/// line per message otherwise (logs and CI stay readable).
#[derive(Debug, Default)]
pub struct Console {
    bar: Option<ProgressBar>,
    started: Option<Instant>,
}

impl Console {
    pub fn new() -> Self {
        Console::default()
    }
}

impl Progress for Console {
    fn start(&mut self, total: u64, what: &str) {
        self.finish();
        self.started = Some(Instant::now());
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:24} [{bar:32}] {pos}/{len} {elapsed_precise} ETA {eta_precise}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_string());
            self.bar = Some(bar);
        }
    }

    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn message(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
