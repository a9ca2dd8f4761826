//! Ingest benchmark: `medvec ingest` against the Python pipeline a notebook would run (Pillow +
//! onnxruntime, `tools/bench_ingest.py run`), same model, same images, same thread count, in the
//! same run, interleaved so that machine load hits both alike.
//!
//! `cargo bench --bench ingest` writes JPEGs (640x480, and camera-sized 4000x3000) and
//! HAM10000-shaped manifests under `target/bench-data/ingest/` (reused across runs), then:
//! - **throughput**: for the fixture model (`fixtures/models/tiny-image`) and a ViT-B/32-shaped
//!   model (`target/bench-models/vit-b32`, made by `tools/make_onnx_fixtures.py --bench-only`;
//!   skipped with a message when absent), on each image set, images/s end to end (files → stored
//!   vectors for medvec, files → a saved `.npy` for Python), wall and per CPU-second, medians
//!   over repeats, of four pipelines run in turn each round: medvec, `medvec --jpeg-draft`,
//!   Python, and Python with `im.draft("RGB", (n, n))`; plus, in the same rounds, the time the
//!   same ONNX Runtime session spends in `run` alone on the same batches (`bench_ingest.py
//!   infer`), which bounds what any pipeline of this model can reach;
//! - **memory**: peak RSS (the child's `ru_maxrss`) of both at 1k and 10k images (fixture model).
//!
//! Environment: `MEDVEC_PYTHON` (default `.venv/bin/python`), `MEDVEC_BENCH_THREADS` (2),
//! `MEDVEC_BENCH_BATCH` (64), `MEDVEC_BENCH_REPEATS` (3), `MEDVEC_BENCH_TINY_N` (2000),
//! `MEDVEC_BENCH_VIT_N` (256), `MEDVEC_BENCH_CAMERA_N` (120 rows over 40 distinct photos),
//! `MEDVEC_BENCH_CAMERA_SIZE` (`4000x3000`), `MEDVEC_BENCH_RSS_NS` (`1000,10000`; empty skips).
//! A size of 0 skips that image set.
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

/// The four pipelines compared: medvec and Python, each at full size and with the JPEG draft
/// decode (`medvec ingest --jpeg-draft`, `im.draft("RGB", (n, n))` in Python); and the
/// inference alone, the floor under every pipeline's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipeline {
    Medvec,
    MedvecDraft,
    Python,
    PythonDraft,
    InferenceOnly,
}

const ALL: [Pipeline; 5] = [
    Pipeline::Medvec,
    Pipeline::MedvecDraft,
    Pipeline::Python,
    Pipeline::PythonDraft,
    Pipeline::InferenceOnly,
];

impl Pipeline {
    fn draft(self) -> bool {
        matches!(self, Pipeline::MedvecDraft | Pipeline::PythonDraft)
    }

    fn name(self) -> &'static str {
        match self {
            Pipeline::Medvec => "medvec",
            Pipeline::MedvecDraft => "medvec draft",
            Pipeline::Python => "python",
            Pipeline::PythonDraft => "python draft",
            Pipeline::InferenceOnly => "inference only",
        }
    }
}

struct Bench {
    data: PathBuf,
    threads: usize,
    batch: usize,
    repeats: usize,
}

impl Bench {
    /// The manifest of `n` rows over photos of `size` ("640x480"), generated on first use.
    fn manifest(&self, n: usize, size: &str, distinct: usize) -> PathBuf {
        let status = Command::new(python())
            .arg(workspace().join("tools/bench_ingest.py"))
            .args(["photos", "--dir"])
            .arg(&self.data)
            .args(["--n", &n.to_string(), "--size", size])
            .args(["--distinct", &distinct.to_string()])
            .status()
            .expect("run tools/bench_ingest.py (MEDVEC_PYTHON)");
        assert!(status.success(), "generating the photos failed");
        let suffix = if size == "640x480" {
            String::new()
        } else {
            format!("-{size}")
        };
        self.data.join(format!("manifest{suffix}-{n}.csv"))
    }

    fn run(&self, pipeline: Pipeline, manifest: &Path, model: &Path) -> Cost {
        match pipeline {
            Pipeline::Medvec | Pipeline::MedvecDraft => {
                self.medvec(manifest, model, pipeline.draft())
            }
            Pipeline::Python | Pipeline::PythonDraft => {
                self.python(manifest, model, pipeline.draft())
            }
            Pipeline::InferenceOnly => self.inference_only(manifest, model),
        }
    }

    /// The seconds `bench_ingest.py infer` spent inside `sess.run` (wall and CPU), as a cost.
    fn inference_only(&self, manifest: &Path, model: &Path) -> Cost {
        let report = self.data.join("inference-only.json");
        let mut command = self.python_command("infer", manifest, model);
        command.arg("--report").arg(&report);
        let process = measure(command);
        let text = std::fs::read_to_string(&report).expect("read the inference report");
        let json: serde_json::Value = serde_json::from_str(&text).expect("inference report JSON");
        let seconds = |key: &str| json[key].as_f64().expect("a number of seconds");
        Cost {
            wall: seconds("run_seconds"),
            cpu: seconds("run_cpu_seconds"),
            ..process
        }
    }

    /// `tools/bench_ingest.py SUBCOMMAND` on the manifest and model, with the thread count and
    /// batch size of the run.
    fn python_command(&self, subcommand: &str, manifest: &Path, model: &Path) -> Command {
        let mut command = Command::new(python());
        command
            .arg(workspace().join("tools/bench_ingest.py"))
            .arg(subcommand)
            .arg("--manifest")
            .arg(manifest)
            .arg("--root")
            .arg(&self.data)
            .arg("--model")
            .arg(model)
            .args(["--threads", &self.threads.to_string()])
            .args(["--batch", &self.batch.to_string()]);
        command
    }

    fn medvec(&self, manifest: &Path, model: &Path, draft: bool) -> Cost {
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
        if draft {
            command.arg("--jpeg-draft");
        }
        let cost = measure(command);
        let _ = std::fs::remove_dir_all(&store);
        cost
    }

    fn python(&self, manifest: &Path, model: &Path, draft: bool) -> Cost {
        let mut command = self.python_command("run", manifest, model);
        command
            .arg("--out")
            .arg(self.data.join("python-vectors.npy"));
        if draft {
            command.arg("--jpeg-draft");
        }
        measure(command)
    }

    /// Interleaved repeats: every round runs each pipeline once, in order, so that machine load
    /// hits all alike. Returns the costs per pipeline.
    fn rounds(
        &self,
        pipelines: &[Pipeline],
        manifest: &Path,
        model: &Path,
        repeats: usize,
    ) -> Vec<Vec<Cost>> {
        let mut costs = vec![Vec::new(); pipelines.len()];
        for round in 0..repeats {
            let mut line = format!("  round {}:", round + 1);
            for (pipeline, costs) in pipelines.iter().zip(&mut costs) {
                let cost = self.run(*pipeline, manifest, model);
                line += &format!(
                    " {} {:.2}s wall {:.2} cpu-s,",
                    pipeline.name(),
                    cost.wall,
                    cost.cpu
                );
                costs.push(cost);
            }
            eprintln!("{}", line.trim_end_matches(','));
        }
        costs
    }
}

/// One image set for one model.
struct Case<'a> {
    label: String,
    model: &'a Path,
    n: usize,
    size: &'a str,
    distinct: usize,
}

/// Table rows (wall, per CPU-second) of one case: images/s of the four pipelines, then medvec
/// over Python, medvec draft over Python, and medvec draft over Python draft; last, the bound:
/// Python's time over the inference's alone, the most any pipeline with this model and runtime
/// could gain over Python (were its decoding and preprocessing free).
fn throughput_rows(bench: &Bench, case: &Case) -> (String, String) {
    eprintln!(
        "throughput: {}, {} images of {}",
        case.label, case.n, case.size
    );
    let manifest = bench.manifest(case.n, case.size, case.distinct);
    let costs = bench.rounds(&ALL, &manifest, case.model, bench.repeats);
    let row = |pick: fn(&Cost) -> f64| {
        let r: Vec<f64> = costs
            .iter()
            .map(|c| median(c.iter().map(|c| case.n as f64 / pick(c)).collect()))
            .collect();
        format!(
            "| {} | {} × {} | {:.1} | {:.1} | {:.1} | {:.1} | **{:.2}×** | **{:.2}×** | **{:.2}×** | {:.2}× |",
            case.label,
            case.n,
            case.size,
            r[0],
            r[1],
            r[2],
            r[3],
            r[0] / r[2],
            r[1] / r[2],
            r[1] / r[3],
            r[4] / r[2]
        )
    };
    (row(|c| c.wall), row(|c| c.cpu))
}

fn rss_row(bench: &Bench, model: &Path, n: usize) -> String {
    eprintln!("memory: {n} images");
    let manifest = bench.manifest(n, "640x480", 2000);
    let costs = bench.rounds(&[Pipeline::Medvec, Pipeline::Python], &manifest, model, 1);
    let (ours, theirs) = (&costs[0][0], &costs[1][0]);
    format!(
        "| {n} | {:.0} | {:.0} | {:.1} | {:.1} |",
        ours.max_rss_mib,
        theirs.max_rss_mib,
        n as f64 / ours.wall,
        n as f64 / theirs.wall
    )
}

fn main() {
    if !ready_for_onnx() {
        return;
    }
    let bench = Bench {
        data: workspace().join("target/bench-data/ingest"),
        threads: env_usize("MEDVEC_BENCH_THREADS", 2),
        batch: env_usize("MEDVEC_BENCH_BATCH", 64),
        repeats: env_usize("MEDVEC_BENCH_REPEATS", 3),
    };
    std::fs::create_dir_all(&bench.data).expect("create target/bench-data/ingest");
    let tiny = workspace().join("fixtures/models/tiny-image");
    let vit = workspace().join("target/bench-models/vit-b32");
    let camera = std::env::var("MEDVEC_BENCH_CAMERA_SIZE").unwrap_or_else(|_| "4000x3000".into());
    let camera_n = env_usize("MEDVEC_BENCH_CAMERA_N", 120);
    let mut cases = vec![
        Case {
            label: "fixture conv net (56×56)".into(),
            model: &tiny,
            n: env_usize("MEDVEC_BENCH_TINY_N", 2000),
            size: "640x480",
            distinct: 2000,
        },
        Case {
            label: "fixture conv net (56×56)".into(),
            model: &tiny,
            n: camera_n,
            size: &camera,
            distinct: 40,
        },
    ];
    if vit.join("vision_model.onnx").is_file() {
        for (n, size, distinct) in [
            (env_usize("MEDVEC_BENCH_VIT_N", 256), "640x480", 2000),
            (camera_n, camera.as_str(), 40),
        ] {
            cases.push(Case {
                label: "ViT-B/32 (224×224)".into(),
                model: &vit,
                n,
                size,
                distinct,
            });
        }
    } else {
        eprintln!(
            "skipping ViT-B/32: run `.venv/bin/python tools/make_onnx_fixtures.py --bench-only`"
        );
    }
    // A size of 0 skips that case (e.g. MEDVEC_BENCH_TINY_N=0 to time only the ViT rows).
    cases.retain(|c| c.n > 0);
    let rows: Vec<(String, String)> = cases.iter().map(|c| throughput_rows(&bench, c)).collect();
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
    for (unit, pick) in [("img/s", 0), ("img/CPU-s", 1)] {
        println!("\n| model | images | medvec {unit} | medvec draft | Python | Python draft | medvec ÷ Python | medvec draft ÷ Python | medvec draft ÷ Python draft | bound: inference alone ÷ Python |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (wall, cpu) in &rows {
            println!("{}", if pick == 0 { wall } else { cpu });
        }
    }
    if !rss_rows.is_empty() {
        println!("\n| images (fixture model) | medvec peak RSS MiB | Python peak RSS MiB | medvec img/s | Python img/s |");
        println!("|---:|---:|---:|---:|---:|");
        rss_rows.iter().for_each(|r| println!("{r}"));
    }
}
