//! DICOM ingest benchmark (issue 12): `medvec ingest --root DIR` of a DICOM folder against the
//! pipeline a careful notebook would run (`tools/bench_dicom.py run`: pydicom + numpy windowing
//! exactly as `tools/reference_dicom.py`, then Pillow resize / crop / normalise and onnxruntime
//! in batches, vectors to a `.npy`), same model, same files, same thread count and batch, in the
//! same run, interleaved so that machine load hits both alike.
//!
//! `cargo bench --bench dicom` writes deterministic DICOM data sets with pydicom under
//! `target/bench-data/dicom/` (`tools/bench_dicom.py make`, reused across runs), then:
//! - **throughput**, fixture model (`fixtures/models/tiny-image`): images/s end to end (files →
//!   stored vectors for medvec, files → a saved `.npy` for Python), wall and per CPU-second
//!   (the child's user + system time), medians over interleaved rounds, on: CT slices (512×512,
//!   signed 16-bit, rescale slope / intercept, a window), radiographs (2000×2500, 12 bits in 16,
//!   MONOCHROME1 and MONOCHROME2, a window), and the CT slices again as RLE Lossless and as
//!   JPEG 2000 Lossless. After the rounds, medvec's stored vectors (`medvec export`) are compared
//!   with Python's: every image must agree at cosine ≥ 0.9999 (`bench_dicom.py compare`), so
//!   both did the same work;
//! - **memory**: peak RSS (the child's `ru_maxrss`) of both at 1k and 10k small files (64×64
//!   CT-like slices), one run each.
//!
//! The tables are printed and written to `target/bench-data/dicom/report.md`.
//!
//! `cargo bench --bench dicom -- stages` instead times both pipelines stage by stage, in one
//! thread, on each data set: Python's read (dcmread), decode (pixel_array), window, resize and
//! inference (`bench_dicom.py stages`), and medvec's whole ingest against its `--dry-run`
//! (which reads, decodes, windows and preprocesses every file but encodes and stores nothing),
//! both with `--threads 1`; the difference is inference + storing (`report-stages.md`).
//!
//! Environment: `MEDVEC_PYTHON` (default `.venv/bin/python`), `MEDVEC_BENCH_THREADS` (2),
//! `MEDVEC_BENCH_BATCH` (64), `MEDVEC_BENCH_REPEATS` (5), `MEDVEC_BENCH_CT_N` (500),
//! `MEDVEC_BENCH_XRAY_N` (60), `MEDVEC_BENCH_XRAY_SIZE` (`2000x2500`, columns × rows),
//! `MEDVEC_BENCH_RLE_N` (500), `MEDVEC_BENCH_J2K_N` (200), `MEDVEC_BENCH_RSS_NS`
//! (`1000,10000`; empty skips); any `_N` set to 0 leaves its data set out.
//! `MEDVEC_BENCH_STAGES_LIMIT` (for `stages`: only the first N files of each data set; default
//! 0, all). `ORT_DYLIB_PATH` must point at ONNX Runtime (`. tools/.cache/env.sh`).

#[path = "common/mod.rs"]
mod common;
use common::*;

#[path = "../tests/util/mod.rs"]
mod util;
use util::{run_measured, Cost};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs a child to completion (it must succeed), measuring it.
fn measure(mut command: Command) -> Cost {
    let cost = run_measured(command.stdout(Stdio::null()).stderr(Stdio::inherit()));
    assert_eq!(cost.exit_code, Some(0), "child failed: {command:?}");
    cost
}

/// A child's stdout (it must succeed).
fn output(command: &mut Command) -> String {
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(out.status.success(), "child failed: {command:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn bench_dicom_py() -> Command {
    let mut command = Command::new(python());
    command.arg(workspace().join("tools/bench_dicom.py"));
    command
}

/// The two pipelines compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipeline {
    Medvec,
    Python,
}

impl Pipeline {
    fn name(self) -> &'static str {
        match self {
            Pipeline::Medvec => "medvec",
            Pipeline::Python => "python",
        }
    }
}

/// One generated data set: `n` files of `kind` (`ct`, `xray`, `small`) at `size`, in `syntax`.
struct DataSet {
    label: String,
    kind: &'static str,
    n: usize,
    size: String,
    syntax: &'static str,
}

/// A data set on disk: its folder (the `--root`) and its file list (ids and relative paths).
struct Files {
    root: PathBuf,
    manifest: PathBuf,
}

struct Bench {
    data: PathBuf,
    model: PathBuf,
    threads: usize,
    batch: usize,
    repeats: usize,
}

impl Bench {
    /// Writes the data set's files on first use (`bench_dicom.py make`).
    fn files(&self, set: &DataSet) -> Files {
        let mut command = bench_dicom_py();
        command
            .args(["make", "--dir"])
            .arg(&self.data)
            .args(["--kind", set.kind, "--n", &set.n.to_string()])
            .args(["--size", &set.size, "--syntax", set.syntax]);
        let root = PathBuf::from(output(&mut command).trim());
        let manifest = root.with_extension("csv");
        assert!(manifest.is_file(), "no file list {}", manifest.display());
        Files { root, manifest }
    }

    /// `bench_dicom.py SUBCOMMAND` on the files and model, with `threads` and the run's batch.
    fn python_command(&self, subcommand: &str, files: &Files, threads: usize) -> Command {
        let mut command = bench_dicom_py();
        command
            .arg(subcommand)
            .arg("--manifest")
            .arg(&files.manifest)
            .arg("--root")
            .arg(&files.root)
            .arg("--model")
            .arg(&self.model)
            .args(["--threads", &threads.to_string()])
            .args(["--batch", &self.batch.to_string()]);
        command
    }

    fn python_vectors(&self) -> PathBuf {
        self.data.join("python-vectors.npy")
    }

    fn python(&self, files: &Files) -> Cost {
        let mut command = self.python_command("run", files, self.threads);
        command.arg("--out").arg(self.python_vectors());
        measure(command)
    }

    /// `medvec ingest` of the folder into a fresh `store` (left in place for the caller).
    fn medvec(&self, files: &Files, store: &Path) -> Cost {
        measure(self.medvec_command(files, store, self.threads))
    }

    /// `medvec ingest STORE bench --root ... --image-model ... --threads T --batch B` (the
    /// folder walk), `store` removed first.
    fn medvec_command(&self, files: &Files, store: &Path, threads: usize) -> Command {
        let _ = std::fs::remove_dir_all(store);
        let mut command = Command::new(env!("CARGO_BIN_EXE_medvec"));
        command
            .arg("ingest")
            .arg(store)
            .arg("bench")
            .arg("--root")
            .arg(&files.root)
            .arg("--image-model")
            .arg(&self.model)
            .args(["--threads", &threads.to_string()])
            .args(["--batch", &self.batch.to_string()]);
        command
    }

    fn store(&self) -> PathBuf {
        self.data.join("store")
    }

    fn run(&self, pipeline: Pipeline, files: &Files) -> Cost {
        match pipeline {
            Pipeline::Medvec => self.medvec(files, &self.store()),
            Pipeline::Python => self.python(files),
        }
    }

    /// Interleaved repeats: every round runs each pipeline once, in order, so that machine load
    /// hits all alike. Returns the costs per pipeline. The last round's medvec store and
    /// Python vectors are left for [`Bench::compare`].
    fn rounds(&self, pipelines: &[Pipeline], files: &Files, repeats: usize) -> Vec<Vec<Cost>> {
        let mut costs = vec![Vec::new(); pipelines.len()];
        for round in 0..repeats {
            let mut line = format!("  round {}:", round + 1);
            for (pipeline, costs) in pipelines.iter().zip(&mut costs) {
                let cost = self.run(*pipeline, files);
                line += &format!(
                    " {} {:.2}s wall {:.2} cpu-s {:.0} MiB,",
                    pipeline.name(),
                    cost.wall,
                    cost.cpu,
                    cost.max_rss_mib
                );
                costs.push(cost);
            }
            eprintln!("{}", line.trim_end_matches(','));
        }
        costs
    }

    /// The smallest cosine between medvec's stored vectors and Python's, per image (both from
    /// the last round); panics when the two stored different images or disagree.
    fn compare(&self, files: &Files) -> f64 {
        let (npy, table) = (self.data.join("medvec.npy"), self.data.join("medvec.csv"));
        let status = Command::new(env!("CARGO_BIN_EXE_medvec"))
            .arg("export")
            .arg(self.store())
            .args(["bench", "--field", "image", "--npy"])
            .arg(&npy)
            .arg("--table")
            .arg(&table)
            .stdout(Stdio::null())
            .status()
            .expect("run medvec export");
        assert!(status.success(), "medvec export failed");
        let mut command = bench_dicom_py();
        command
            .arg("compare")
            .arg("--manifest")
            .arg(&files.manifest)
            .arg("--python-npy")
            .arg(self.python_vectors())
            .arg("--medvec-npy")
            .arg(&npy)
            .arg("--medvec-table")
            .arg(&table);
        let text = output(&mut command);
        let json: serde_json::Value = serde_json::from_str(text.trim()).expect("compare JSON");
        let _ = std::fs::remove_dir_all(self.store());
        json["min_cosine"].as_f64().expect("min_cosine")
    }
}

/// Table rows (wall, per CPU-second) of one data set: images/s of both pipelines and medvec
/// over Python, and the smallest per-image cosine between their vectors.
fn throughput_row(bench: &Bench, set: &DataSet) -> String {
    eprintln!("throughput: {}, {} files", set.label, set.n);
    let files = bench.files(set);
    let pipelines = [Pipeline::Medvec, Pipeline::Python];
    let costs = bench.rounds(&pipelines, &files, bench.repeats);
    let cosine = bench.compare(&files);
    let rate = |c: &[Cost], pick: fn(&Cost) -> f64| {
        median(c.iter().map(|c| set.n as f64 / pick(c)).collect())
    };
    let (ours, theirs) = (&costs[0], &costs[1]);
    let (ow, oc) = (rate(ours, |c| c.wall), rate(ours, |c| c.cpu));
    let (tw, tc) = (rate(theirs, |c| c.wall), rate(theirs, |c| c.cpu));
    format!(
        "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | **{:.2}×** | **{:.2}×** | {:.0} / {:.0} | {:.6} |",
        set.label,
        set.n,
        ow,
        oc,
        tw,
        tc,
        ow / tw,
        oc / tc,
        median(ours.iter().map(|c| c.max_rss_mib).collect()),
        median(theirs.iter().map(|c| c.max_rss_mib).collect()),
        cosine
    )
}

fn rss_row(bench: &Bench, n: usize) -> String {
    eprintln!("memory: {n} files of 64x64");
    let set = DataSet {
        label: String::new(),
        kind: "small",
        n,
        size: "64x64".into(),
        syntax: "native",
    };
    let files = bench.files(&set);
    let costs = bench.rounds(&[Pipeline::Medvec, Pipeline::Python], &files, 1);
    let _ = std::fs::remove_dir_all(bench.store());
    let (ours, theirs) = (&costs[0][0], &costs[1][0]);
    format!(
        "| {n} | {:.0} | {:.0} | {:.1} | {:.1} |",
        ours.max_rss_mib,
        theirs.max_rss_mib,
        n as f64 / ours.wall,
        n as f64 / theirs.wall
    )
}

/// Milliseconds per image of each stage of the Python pipeline (one thread), wall (CPU); and of
/// medvec with one thread: the whole ingest, its dry run (read, decode, window, preprocess) and
/// the difference (inference and storing).
fn stages_row(bench: &Bench, set: &DataSet, limit: usize) -> (String, String) {
    eprintln!("stages: {}", set.label);
    let mut files = bench.files(set);
    let images = if limit > 0 && limit < set.n {
        files = first_files(bench, &files, limit);
        limit
    } else {
        set.n
    };
    let mut command = bench.python_command("stages", &files, 1);
    command.args(["--limit", &limit.to_string()]);
    let json: serde_json::Value =
        serde_json::from_str(output(&mut command).trim()).expect("stages JSON");
    assert_eq!(
        json["images"].as_u64(),
        Some(images as u64),
        "Python's image count"
    );
    let mut python = format!("| {} | {images} |", set.label);
    let (mut total, mut total_cpu) = (0.0, 0.0);
    for stage in ["read", "decode", "window", "resize", "inference"] {
        let ms = |key: &str| 1000.0 * json[stage][key].as_f64().expect("seconds") / images as f64;
        python += &format!(" {:.2} ({:.2}) |", ms("seconds"), ms("cpu_seconds"));
        total += ms("seconds");
        total_cpu += ms("cpu_seconds");
    }
    python += &format!(" {total:.2} ({total_cpu:.2}) |");

    // medvec, one thread: the dry run first (no store is created), then the whole ingest.
    let store = bench.store();
    let mut dry = bench.medvec_command(&files, &store, 1);
    dry.arg("--dry-run");
    let dry = measure(dry);
    let full = measure(bench.medvec_command(&files, &store, 1));
    let _ = std::fs::remove_dir_all(&store);
    let ms = |seconds: f64| 1000.0 * seconds / images as f64;
    let medvec = format!(
        "| {} | {images} | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.2} ({:.2}) |",
        set.label,
        ms(dry.wall),
        ms(dry.cpu),
        ms(full.wall - dry.wall),
        ms(full.cpu - dry.cpu),
        ms(full.wall),
        ms(full.cpu),
    );
    (python, medvec)
}

/// The first `limit` files of a data set, as a folder of hard links to them (medvec walks a
/// folder, and refuses symbolic links that leave it).
fn first_files(bench: &Bench, files: &Files, limit: usize) -> Files {
    let root = bench.data.join(format!("stages-first-{limit}"));
    let _ = std::fs::remove_dir_all(&root);
    let list = std::fs::read_to_string(&files.manifest).expect("read the file list");
    let mut manifest = String::from("id,path\n");
    for line in list.lines().skip(1).take(limit) {
        let rel = line.split(',').nth(1).expect("id,path");
        let link = root.join(rel);
        std::fs::create_dir_all(link.parent().expect("a folder")).expect("create folder");
        std::fs::hard_link(files.root.join(rel), &link).expect("link a file");
        manifest += line;
        manifest.push('\n');
    }
    let list = root.with_extension("csv");
    std::fs::write(&list, manifest).expect("write the file list");
    Files {
        root,
        manifest: list,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    if !ready_for_onnx() {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let bench = Bench {
        data: workspace().join("target/bench-data/dicom"),
        model: workspace().join("fixtures/models/tiny-image"),
        threads: env_usize("MEDVEC_BENCH_THREADS", 2),
        batch: env_usize("MEDVEC_BENCH_BATCH", 64),
        repeats: env_usize("MEDVEC_BENCH_REPEATS", 5),
    };
    std::fs::create_dir_all(&bench.data).expect("create target/bench-data/dicom");
    let xray = std::env::var("MEDVEC_BENCH_XRAY_SIZE").unwrap_or_else(|_| "2000x2500".into());
    let ct_n = env_usize("MEDVEC_BENCH_CT_N", 500);
    let mut sets = vec![
        DataSet {
            label: "CT 512×512, signed 16-bit, rescale + window".into(),
            kind: "ct",
            n: ct_n,
            size: "512x512".into(),
            syntax: "native",
        },
        DataSet {
            label: format!("radiograph {xray}, 12-bit, MONOCHROME1/2 + window"),
            kind: "xray",
            n: env_usize("MEDVEC_BENCH_XRAY_N", 60),
            size: xray.clone(),
            syntax: "native",
        },
    ];
    for (syntax, name, n) in [
        ("rle", "RLE Lossless", env_usize("MEDVEC_BENCH_RLE_N", 500)),
        (
            "j2k",
            "JPEG 2000 Lossless",
            env_usize("MEDVEC_BENCH_J2K_N", 200),
        ),
    ] {
        sets.push(DataSet {
            label: format!("CT 512×512 as above, {name}"),
            kind: "ct",
            n,
            size: "512x512".into(),
            syntax,
        });
    }
    sets.retain(|s| s.n > 0); // `MEDVEC_BENCH_..._N=0` leaves a data set out
    let start_load = load_average();
    let mut report = String::new();
    let mut line = |text: &str| {
        println!("{text}");
        report += text;
        report.push('\n');
    };

    if args.iter().any(|a| a == "stages") {
        let limit = env_usize("MEDVEC_BENCH_STAGES_LIMIT", 0);
        let rows: Vec<(String, String)> =
            sets.iter().map(|s| stages_row(&bench, s, limit)).collect();
        line(&format!(
            "\nms per image, wall (CPU), one thread (Python: 1 worker, 1 intra-op thread; medvec: --threads 1), batches of {}; load average at start {start_load}, at end {}\n",
            bench.batch,
            load_average()
        ));
        line("Python (`bench_dicom.py stages`):\n");
        line("| data set | images | read (dcmread) | decode (pixel_array) | window (LUTs → 8-bit RGB) | resize + crop + normalise | inference | total |");
        line("|---|---:|---:|---:|---:|---:|---:|---:|");
        rows.iter().for_each(|(python, _)| line(python));
        line("\nmedvec (`medvec ingest --threads 1`, whole process):\n");
        line("| data set | images | read + decode + window + preprocess (--dry-run) | inference + store (difference) | total |");
        line("|---|---:|---:|---:|---:|");
        rows.iter().for_each(|(_, medvec)| line(medvec));
        std::fs::write(bench.data.join("report-stages.md"), &report).expect("write the report");
        return;
    }

    let rows: Vec<String> = sets.iter().map(|s| throughput_row(&bench, s)).collect();
    let rss_ns: Vec<usize> = std::env::var("MEDVEC_BENCH_RSS_NS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let rss_rows: Vec<String> = rss_ns.iter().map(|&n| rss_row(&bench, n)).collect();

    line(&format!(
        "\nfixture model, threads {}, batch {}, medians of {} interleaved rounds; load average at start {}, at end {}\n",
        bench.threads,
        bench.batch,
        bench.repeats,
        start_load,
        load_average()
    ));
    if !rows.is_empty() {
        line("| data set | images | medvec img/s | medvec img/CPU-s | Python img/s | Python img/CPU-s | medvec ÷ Python (wall) | medvec ÷ Python (CPU) | peak RSS MiB medvec / Python | min cosine |");
        line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        rows.iter().for_each(|r| line(r));
    }
    if !rss_rows.is_empty() {
        line("\n| files (64×64 CT, 16-bit) | medvec peak RSS MiB | Python peak RSS MiB | medvec img/s | Python img/s |");
        line("|---:|---:|---:|---:|---:|");
        rss_rows.iter().for_each(|r| line(r));
    }
    std::fs::write(bench.data.join("report.md"), &report).expect("write the report");
}
