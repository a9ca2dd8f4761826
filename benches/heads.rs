//! Fusion-head benchmark: medvec against scikit-learn `MLPClassifier` on the same data, in the
//! same run (issue 4; the paper's efficiency table, method.md §5).
//!
//! `cargo bench --bench heads` generates (or reuses) deterministic synthetic data at the BRSET
//! shapes — 13,012 training and 3,254 test rows of CLIP 512 text + 512 image, and of LLaMA-2
//! 4096 text + DINOv2 768 image, binary with ~12% positives — as `.npy` under
//! `target/bench-data/heads/`, trains medvec's early and late heads (batch 64, AdamW 1e-3), times
//! training per epoch and inference over the test set, then runs `tools/bench_heads.py` on the
//! same files and prints a markdown table with ratios. Wall and process-CPU seconds are both
//! reported because the machine is shared.
//!
//! Environment:
//! - `MEDVEC_PYTHON`: interpreter with numpy and scikit-learn (default `<workspace>/.venv/bin/python`)
//! - `MEDVEC_BENCH_EPOCHS` (default 5), `MEDVEC_BENCH_REPEATS` trainings per system (default 3),
//!   `MEDVEC_BENCH_INFER_REPEATS` passes over the test set (default 10)
//! - `MEDVEC_BENCH_SKIP_PEERS=1`: medvec only

#[path = "common/mod.rs"]
mod common;
use common::*;

use medvec_query::heads::{train, HeadSpec, Inputs, Labelled, TrainConfig, TrainedHead};
use ndarray::{s, Array2};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TRAIN_ROWS: usize = 13_012;
const TEST_ROWS: usize = 3_254;
/// Rows of the validation set the trainer scores after each epoch (kept small: it is not
/// part of the per-epoch training time, but it is part of the CPU seconds).
const VAL_ROWS: usize = 512;
/// Bumped whenever the generator changes, so stale `.npy` files are regenerated.
const GENERATOR_VERSION: u32 = 1;

/// One data set: name, text and image dimensions, and the paper's 2-core figures
/// (s/epoch, s per inference pass) where it gives them (early fusion only).
struct Shape {
    name: &'static str,
    text_dim: usize,
    image_dim: usize,
    paper: Option<(f64, f64)>,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "clip",
        text_dim: 512,
        image_dim: 512,
        paper: Some((0.95, 0.28)),
    },
    Shape {
        name: "dino_llama",
        text_dim: 4096,
        image_dim: 768,
        paper: Some((1.54, 0.40)),
    },
];

struct Config {
    epochs: usize,
    repeats: usize,
    infer_repeats: usize,
    skip_peers: bool,
    data_dir: PathBuf,
}

// ---------------------------------------------------------------------------------------------
// Data

/// Labelled rows: ~12% positives (BRSET's diabetic-retinopathy balance); every value is
/// uniform noise, and positives are shifted on a fixed fifth of the dimensions, so the task
/// is learnable but not trivial.
struct Part {
    text: Array2<f32>,
    image: Array2<f32>,
    labels: Vec<usize>,
}

fn generate(rows: usize, shape: &Shape, seed: u64) -> Part {
    let mut rng = SplitMix(seed);
    let labels: Vec<usize> = (0..rows).map(|_| usize::from(rng.unit() < 0.12)).collect();
    let mut fill = |dim: usize| {
        Array2::from_shape_fn((rows, dim), |(r, j)| {
            let shift = if labels[r] == 1 && j % 5 == 0 {
                0.08
            } else {
                0.0
            };
            rng.unit() - 0.5 + shift
        })
    };
    let text = fill(shape.text_dim);
    let image = fill(shape.image_dim);
    Part {
        text,
        image,
        labels,
    }
}

fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let pad = (64 - (10 + dict.len() + 1) % 64) % 64;
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&((dict.len() + pad + 1) as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header.extend(std::iter::repeat_n(b' ', pad));
    header.push(b'\n');
    header
}

fn write_file(path: &Path, header: Vec<u8>, body: impl Iterator<Item = [u8; 4]>) {
    let tmp = path.with_extension("npy.tmp");
    let mut out = BufWriter::new(std::fs::File::create(&tmp).expect("create npy"));
    out.write_all(&header).expect("write npy");
    for bytes in body {
        out.write_all(&bytes).expect("write npy");
    }
    out.flush().expect("flush npy");
    drop(out);
    std::fs::rename(&tmp, path).expect("rename npy");
}

/// Writes `{name}_{part}_{text,image,labels}.npy` (labels as int32).
fn write_part(dir: &Path, name: &str, part_name: &str, part: &Part) {
    for (field, m) in [("text", &part.text), ("image", &part.image)] {
        let header = npy_header("<f4", &format!("({}, {})", m.nrows(), m.ncols()));
        let path = dir.join(format!("{name}_{part_name}_{field}.npy"));
        write_file(&path, header, m.iter().map(|v| v.to_le_bytes()));
    }
    let header = npy_header("<i4", &format!("({},)", part.labels.len()));
    let path = dir.join(format!("{name}_{part_name}_labels.npy"));
    write_file(
        &path,
        header,
        part.labels.iter().map(|&l| (l as i32).to_le_bytes()),
    );
}

/// Generates both parts of a shape and writes them unless the files of this generator
/// version are already there (the generator is deterministic, so they would be identical).
fn data(cfg: &Config, shape: &Shape) -> (Part, Part) {
    let train = generate(TRAIN_ROWS, shape, 0x6865_6164_0001);
    let test = generate(TEST_ROWS, shape, 0x6865_6164_0002);
    let stamp = cfg
        .data_dir
        .join(format!("{}.v{GENERATOR_VERSION}", shape.name));
    if !stamp.exists() {
        write_part(&cfg.data_dir, shape.name, "train", &train);
        write_part(&cfg.data_dir, shape.name, "test", &test);
        std::fs::write(&stamp, b"").expect("stamp");
    }
    (train, test)
}

// ---------------------------------------------------------------------------------------------
// medvec

/// Medians of one system on one shape and head.
#[derive(Debug, Clone, Default)]
struct Measured {
    s_per_epoch: f64,
    cpu_per_epoch: f64,
    infer_s: f64,
    macro_f1: f64,
}

fn measure_medvec(cfg: &Config, spec: HeadSpec, train_part: &Part, test: &Part) -> Measured {
    let set = Labelled::new(
        Inputs::new(train_part.text.view(), train_part.image.view()).unwrap(),
        &train_part.labels,
    )
    .unwrap();
    let (vt, vi) = (
        test.text.slice(s![..VAL_ROWS, ..]),
        test.image.slice(s![..VAL_ROWS, ..]),
    );
    let val = Labelled::new(Inputs::new(vt, vi).unwrap(), &test.labels[..VAL_ROWS]).unwrap();
    let test_inputs = Inputs::new(test.text.view(), test.image.view()).unwrap();
    let (mut epochs, mut cpu, mut passes, mut f1) = (vec![], vec![], vec![], vec![]);
    for repeat in 0..cfg.repeats {
        let config = TrainConfig {
            max_epochs: cfg.epochs,
            patience: None,
            seed: repeat as u64,
            ..TrainConfig::default()
        };
        let cpu0 = cpu_seconds();
        let head: TrainedHead = train(&spec, &set, &val, &config).unwrap();
        cpu.push((cpu_seconds() - cpu0) / cfg.epochs as f64);
        epochs.extend(head.history().iter().map(|e| e.train_seconds));
        for _ in 0..cfg.infer_repeats {
            let t0 = Instant::now();
            std::hint::black_box(head.predict_proba(&test_inputs).unwrap());
            passes.push(t0.elapsed().as_secs_f64());
        }
        f1.push(
            head.evaluate(&Labelled::new(test_inputs.clone(), &test.labels).unwrap())
                .unwrap()
                .macro_f1,
        );
    }
    Measured {
        s_per_epoch: median(epochs),
        cpu_per_epoch: median(cpu),
        infer_s: median(passes),
        macro_f1: median(f1),
    }
}

// ---------------------------------------------------------------------------------------------
// scikit-learn

/// Runs tools/bench_heads.py; results keyed by (shape name, fusion).
fn run_sklearn(cfg: &Config) -> Vec<(String, String, Measured)> {
    let out_path = cfg.data_dir.join("sklearn.json");
    let _ = std::fs::remove_file(&out_path);
    let mut cmd = Command::new(python());
    cmd.arg(workspace().join("tools/bench_heads.py"))
        .arg("--data")
        .arg(&cfg.data_dir)
        .arg("--epochs")
        .arg(cfg.epochs.to_string())
        .arg("--repeats")
        .arg(cfg.repeats.to_string())
        .arg("--infer-repeats")
        .arg(cfg.infer_repeats.to_string())
        .arg("--out")
        .arg(&out_path)
        // Same two threads as medvec's rayon pool.
        .env("OPENBLAS_NUM_THREADS", "2")
        .env("OMP_NUM_THREADS", "2");
    eprintln!("bench: running {cmd:?}");
    let status = cmd
        .status()
        .expect("run tools/bench_heads.py (set MEDVEC_PYTHON)");
    assert!(status.success(), "tools/bench_heads.py failed");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).expect("sklearn.json"))
            .expect("sklearn.json");
    let f = |v: &serde_json::Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    json.as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            let m = Measured {
                s_per_epoch: f(r, "s_per_epoch"),
                cpu_per_epoch: f(r, "cpu_per_epoch"),
                infer_s: f(r, "infer_s"),
                macro_f1: f(r, "macro_f1"),
            };
            let key = |k: &str| r[k].as_str().unwrap_or("?").to_string();
            (key("name"), key("fusion"), m)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Report

struct Row {
    shape: &'static Shape,
    fusion: &'static str,
    medvec: Measured,
    sklearn: Option<Measured>,
}

fn print_table(rows: &[Row], cfg: &Config) {
    println!(
        "\n{TRAIN_ROWS} training / {TEST_ROWS} test rows, batch 64, {} epochs x {} trainings, \
         {} inference passes per training; medians. sklearn late = MLPClassifier((64,)) on the \
         concatenation.\n",
        cfg.epochs, cfg.repeats, cfg.infer_repeats
    );
    println!(
        "| data | head | medvec s/epoch (CPU s) | sklearn s/epoch (CPU s) | speed-up | paper s/epoch \
         | medvec test pass s (rows/s) | sklearn test pass s | speed-up | paper pass s \
         | macro-F1 medvec / sklearn |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let m = &r.medvec;
        let sk = r.sklearn.clone().unwrap_or(Measured {
            s_per_epoch: f64::NAN,
            cpu_per_epoch: f64::NAN,
            infer_s: f64::NAN,
            macro_f1: f64::NAN,
        });
        let paper = r.shape.paper.filter(|_| r.fusion == "early");
        let fmt_paper = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
        println!(
            "| {} {}+{} | {} | {:.3} ({:.3}) | {:.3} ({:.3}) | {:.1}x | {} | {:.4} ({:.0}) | {:.4} \
             | {:.1}x | {} | {:.3} / {:.3} |",
            r.shape.name,
            r.shape.text_dim,
            r.shape.image_dim,
            r.fusion,
            m.s_per_epoch,
            m.cpu_per_epoch,
            sk.s_per_epoch,
            sk.cpu_per_epoch,
            sk.s_per_epoch / m.s_per_epoch,
            fmt_paper(paper.map(|p| p.0)),
            m.infer_s,
            TEST_ROWS as f64 / m.infer_s,
            sk.infer_s,
            sk.infer_s / m.infer_s,
            fmt_paper(paper.map(|p| p.1)),
            m.macro_f1,
            sk.macro_f1
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let cfg = Config {
        epochs: env_usize("MEDVEC_BENCH_EPOCHS", 5),
        repeats: env_usize("MEDVEC_BENCH_REPEATS", 3),
        infer_repeats: env_usize("MEDVEC_BENCH_INFER_REPEATS", 10),
        skip_peers: std::env::var("MEDVEC_BENCH_SKIP_PEERS").is_ok_and(|v| v == "1"),
        data_dir: workspace().join("target/bench-data/heads"),
    };
    std::fs::create_dir_all(&cfg.data_dir).expect("data dir");
    eprintln!(
        "bench: {} rayon threads, data in {}",
        rayon_threads(),
        cfg.data_dir.display()
    );
    let mut rows = Vec::new();
    for shape in &SHAPES {
        let (train_part, test) = data(&cfg, shape);
        for (fusion, spec) in [("early", HeadSpec::early()), ("late", HeadSpec::late())] {
            let medvec = measure_medvec(&cfg, spec, &train_part, &test);
            eprintln!("medvec {} {fusion}: {medvec:?}", shape.name);
            rows.push(Row {
                shape,
                fusion,
                medvec,
                sklearn: None,
            });
        }
    }
    if !cfg.skip_peers {
        for (name, fusion, m) in run_sklearn(&cfg) {
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.shape.name == name && r.fusion == fusion)
            {
                row.sklearn = Some(m);
            }
        }
    }
    print_table(&rows, &cfg);
}

/// Threads medvec's heads use (rayon's global pool: one per core unless RAYON_NUM_THREADS).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
