//! Python package benchmark (issue 13): `cargo bench --bench python` runs
//! `tools/bench_python.py` (in the venv `tools/setup.sh` makes, with the package built into it),
//! which measures in one run on the same data: single-query latency of `coll.search` against
//! hnswlib's `knn_query` (same M, ef_construction, ef), batch search in-process against the
//! `medvec search --queries` CLI, and `coll.to_arrow()`. It prints one JSON object; the table is
//! in `benches/README.md`.
//!
//! Environment: `MEDVEC_PYTHON` (default `.venv/bin/python`), `MEDVEC_BENCH_N` (100000),
//! `MEDVEC_BENCH_DIM` (512), `MEDVEC_BENCH_QUERIES` (1000), `MEDVEC_BENCH_REPEATS` (3).
//! The CLI measured is `target/release/medvec` (`cargo build --release` first).

#[path = "common/mod.rs"]
mod common;
use common::{env_usize, python, workspace};

use std::process::Command;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes every bench target
    }
    let status = Command::new(python())
        .arg(workspace().join("tools/bench_python.py"))
        .args(["--n", &env_usize("MEDVEC_BENCH_N", 100_000).to_string()])
        .args(["--dim", &env_usize("MEDVEC_BENCH_DIM", 512).to_string()])
        .args([
            "--queries",
            &env_usize("MEDVEC_BENCH_QUERIES", 1000).to_string(),
        ])
        .args([
            "--repeats",
            &env_usize("MEDVEC_BENCH_REPEATS", 3).to_string(),
        ])
        .env("MEDVEC_BIN", workspace().join("target/release/medvec"))
        .status()
        .expect("run tools/bench_python.py");
    assert!(status.success(), "tools/bench_python.py failed");
}
