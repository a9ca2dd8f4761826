//! The `medvec` command line: a thin layer over the `medvec-store`, `medvec-ingest` and
//! `medvec-query` libraries. Every command prints one line `medvec: error: ...` and exits
//! non-zero on failure; `--json` gives machine-readable output.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    exit_quietly_on_closed_pipe();
    let cli = commands::Cli::parse();
    medvec_store::privacy::set_verbose(cli.verbose);
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the chain of causes joined, so scripts can grep it.
            let mut message = format!("{error:#}").replace('\n', " ");
            if message.contains(medvec_store::privacy::PLACEHOLDER) {
                message.push_str(" (payload values are hidden; --verbose shows them)");
            }
            eprintln!("medvec: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `medvec heads --json | head -1` must end quietly, as other Unix tools do, instead of
/// panicking on a write to a closed pipe: Rust ignores SIGPIPE by default, so the write fails
/// and `println!` panics. Restoring the default action ends the process on that signal.
fn exit_quietly_on_closed_pipe() {
    // SAFETY: called first in `main`, before any other thread exists; setting SIGPIPE back to
    // its default action has no other effect on the process's state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
