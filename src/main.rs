//! The `medvec` command line: a thin layer over the `medvec-store`, `medvec-ingest` and
//! `medvec-query` libraries. Every command prints one line `medvec: error: ...` and exits
//! non-zero on failure; `--json` gives machine-readable output.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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
