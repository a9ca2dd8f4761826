//! Ingest benchmark: `medvec ingest` against the Python pipeline a notebook would run (Pillow +
//! onnxruntime, `tools/bench_ingest.py run`), same model, same images, same thread count, in the
//! same run, interleaved so that machine load hits both alike.
//!
//! `cargo bench --bench ingest` writes camera-sized JPEGs (640x480) and HAM10000-shaped manifests
//! under `target/bench-data/ingest/` (reused across runs), then:
//! - **throughput**: for the fixture model (`fixtures/models/tiny-image`) and a ViT-B/32-shaped
//!   model (`target/bench-models/vit-b32`, made by `tools/make_onnx_fixtures.py --bench-only`;
//!   skipped with a message when absent), images/s end to end (files → stored vectors for medvec,
//!   files → a saved `.npy` for Python), wall and per CPU-second, medians over repeats;
//! - **memory**: peak RSS (the child's `ru_maxrss`) of both at 1k and 10k images (fixture model).
//!
//! Environment: `MEDVEC_PYTHON` (default `.venv/bin/python`), `MEDVEC_BENCH_THREADS` (2),
//! `MEDVEC_BENCH_BATCH` (64), `MEDVEC_BENCH_REPEATS` (3), `MEDVEC_BENCH_TINY_N` (2000),
//! `MEDVEC_BENCH_VIT_N` (256), `MEDVEC_BENCH_RSS_NS` (`1000,10000`; empty skips).
//! `ORT_DYLIB_PATH` must point at ONNX Runtime (`. tools/.cache/env.sh`).

#[path = "common/mod.rs"]
mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn python() -> String {
    std::env::var("MEDVEC_PYTHON")
        .unwrap_or_else(|_| workspace().join(".venv/bin/python").display().to_string())
}

#[path = "../tests/util/mod.rs"]
mod util;
use util::{run_measured, Cost};

/// Runs a child to completion (it must succeed), measuring it.
fn measure(mut command: Command) -> Cost {
    let cost = run_measured(command.stdout(Stdio::null()).stderr(Stdio::inherit()));
    assert_eq!(cost.exit_code, Some(0), "child failed: {command:?}");
    cost
}

struct Bench {
    data: PathBuf,
    threads: usize,
    batch: usize,
    repeats: usize,
}

impl Bench {
    fn manifest(&self, n: usize) -> PathBuf {
        let status = Command::new(python())
            .arg(workspace().join("tools/bench_ingest.py"))
            .args(["photos", "--dir"])
            .arg(&self.data)
            .args(["--n", &n.to_string()])
            .status()
            .expect("run tools/bench_ingest.py (MEDVEC_PYTHON)");
        assert!(status.success(), "generating the photos failed");
        self.data.join(format!("manifest-{n}.csv"))
    }

    fn medvec(&self, manifest: &Path, model: &Path) -> Cost {
        let store = self.data.join("store");
        let _ = std::fs::remove_dir_all(&store);
        let mut command = Command::new(env!("CARGO_BIN_EXE_medvec"));
        command
            .arg("ingest")
            .arg(&store)
            .arg("bench")
            .arg("--manifest")
            .arg(manifest)
            .arg("--root")
            .arg(&self.data)
            .arg("--image-model")
            .arg(model)
            .args(["--threads", &self.threads.to_string()])
            .args(["--batch", &self.batch.to_string()]);
        let cost = measure(command);
        let _ = std::fs::remove_dir_all(&store);
        cost
    }

    fn python(&self, manifest: &Path, model: &Path) -> Cost {
        let mut command = Command::new(python());
        command
            .arg(workspace().join("tools/bench_ingest.py"))
            .arg("run")
            .arg("--manifest")
            .arg(manifest)
            .arg("--root")
            .arg(&self.data)
            .arg("--model")
            .arg(model)
            .args(["--threads", &self.threads.to_string()])
            .args(["--batch", &self.batch.to_string()])
            .arg("--out")
            .arg(self.data.join("python-vectors.npy"));
        measure(command)
    }

    /// Interleaved repeats of both; returns (medvec, python) costs.
    fn pair(&self, manifest: &Path, model: &Path, repeats: usize) -> (Vec<Cost>, Vec<Cost>) {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for round in 0..repeats {
            ours.push(self.medvec(manifest, model));
            theirs.push(self.python(manifest, model));
            eprintln!(
                "  round {}: medvec {:.2}s wall {:.2} cpu-s, python {:.2}s wall {:.2} cpu-s",
                round + 1,
                ours[round].wall,
                ours[round].cpu,
                theirs[round].wall,
                theirs[round].cpu
            );
        }
        (ours, theirs)
    }
}

fn throughput_row(bench: &Bench, label: &str, model: &Path, n: usize) -> String {
    eprintln!("throughput: {label}, {n} images");
    let manifest = bench.manifest(n);
    let (ours, theirs) = bench.pair(&manifest, model, bench.repeats);
    let rate = |costs: &[Cost], pick: fn(&Cost) -> f64| {
        median(costs.iter().map(|c| n as f64 / pick(c)).collect())
    };
    let (ours_wall, theirs_wall) = (rate(&ours, |c| c.wall), rate(&theirs, |c| c.wall));
    let (ours_cpu, theirs_cpu) = (rate(&ours, |c| c.cpu), rate(&theirs, |c| c.cpu));
    format!(
        "| {label} | {n} | {ours_wall:.1} | {theirs_wall:.1} | **{:.2}×** | {ours_cpu:.1} | {theirs_cpu:.1} | **{:.2}×** |",
        ours_wall / theirs_wall,
        ours_cpu / theirs_cpu
    )
}

fn rss_row(bench: &Bench, model: &Path, n: usize) -> String {
    eprintln!("memory: {n} images");
    let manifest = bench.manifest(n);
    let (ours, theirs) = bench.pair(&manifest, model, 1);
    format!(
        "| {n} | {:.0} | {:.0} | {:.1} | {:.1} |",
        ours[0].max_rss_mib,
        theirs[0].max_rss_mib,
        n as f64 / ours[0].wall,
        n as f64 / theirs[0].wall
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes every bench target
    }
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "ORT_DYLIB_PATH is not set: run `. tools/.cache/env.sh` (after `bash tools/setup.sh`)"
    );
    let bench = Bench {
        data: workspace().join("target/bench-data/ingest"),
        threads: env_usize("MEDVEC_BENCH_THREADS", 2),
        batch: env_usize("MEDVEC_BENCH_BATCH", 64),
        repeats: env_usize("MEDVEC_BENCH_REPEATS", 3),
    };
    std::fs::create_dir_all(&bench.data).expect("create target/bench-data/ingest");
    let tiny = workspace().join("fixtures/models/tiny-image");
    let vit = workspace().join("target/bench-models/vit-b32");
    let mut rows = vec![throughput_row(
        &bench,
        "fixture conv net (56×56)",
        &tiny,
        env_usize("MEDVEC_BENCH_TINY_N", 2000),
    )];
    if vit.join("vision_model.onnx").is_file() {
        let n = env_usize("MEDVEC_BENCH_VIT_N", 256);
        rows.push(throughput_row(&bench, "ViT-B/32 (224×224)", &vit, n));
    } else {
        eprintln!(
            "skipping ViT-B/32: run `.venv/bin/python tools/make_onnx_fixtures.py --bench-only`"
        );
    }
    let rss_ns: Vec<usize> = std::env::var("MEDVEC_BENCH_RSS_NS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let rss_rows: Vec<String> = rss_ns.iter().map(|&n| rss_row(&bench, &tiny, n)).collect();

    println!(
        "\nthreads {}, batch {}, medians of {} interleaved runs\n",
        bench.threads, bench.batch, bench.repeats
    );
    println!("| model | images | medvec img/s | Python img/s | ratio | medvec img/CPU-s | Python img/CPU-s | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    rows.iter().for_each(|r| println!("{r}"));
    if !rss_rows.is_empty() {
        println!("\n| images (fixture model) | medvec peak RSS MiB | Python peak RSS MiB | medvec img/s | Python img/s |");
        println!("|---:|---:|---:|---:|---:|");
        rss_rows.iter().for_each(|r| println!("{r}"));
    }
}
