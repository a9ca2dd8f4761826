//! The `medvec` command line: a thin layer over the `medvec-store`, `medvec-ingest` and
//! `medvec-query` libraries. Every command prints one line `medvec: error: ...` and exits
//! non-zero on failure; `--json` gives machine-readable output.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the chain of causes joined, so scripts can grep it.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("medvec: error: {message}");
            ExitCode::FAILURE
        }
    }
}
