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

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`: the option before
/// `mi_option_use_numa_nodes`; libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Never hands freed pages back to the OS. With mimalloc's default delay (1 s) the large
/// buffers of one pass were purged and faulted in again (as zeroed transparent huge pages) a
/// few passes later: Integrated Gradients on 16 images took 7,104 page faults and 0.96 s of
/// system time, against 494 and 0.12 s without purging, at the same peak RSS (~230 MiB).
/// The process keeps its peak footprint until it exits, which for a command-line run is
/// what it would reach anyway.
fn keep_freed_memory() {
    // SAFETY: setting an option is a plain store into mimalloc's option table; it is
    // called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> ExitCode {
    keep_freed_memory();
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
