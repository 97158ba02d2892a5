//! The `skepsis` command-line program.
//!
//! Exit codes: 0 success, 2 error (bad arguments, unreadable files, failed computation).

mod cli;
mod commands;
mod io;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed memory for reuse: the engine allocates many large activation and
/// gradient buffers per pass, and returning them to the OS costs a page fault per 4 KiB on
/// the next pass (measured: several ms per pass of the SC CNN at batch 64).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(threads) = cli.threads {
        // Fails only if the pool was already built, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
    }
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skepsis: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, without repeating a cause the message already
/// contains.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
