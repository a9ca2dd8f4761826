//! Memory bounds at scale (issue 5), in the long mode only (`#[ignore]`; run by
//! `bash tools/reliability.sh`, or `cargo nextest run --release --test memory --run-ignored only`):
//! - `medvec import` of 1,000,000 generated 512-d vectors (2 GB of f32) stays under
//!   [`IMPORT_BOUND_MIB`] of peak RSS;
//! - `medvec ingest` of a 1,000,000-row manifest through an image model with 512-d output stays
//!   under [`INGEST_BOUND_MIB`].
//!
//! Where a writer's memory goes: the input is streamed in batches and one chunk of decoded
//! images is in memory at a time (constant); the unflushed tail holds at most the flush threshold
//! of 65,536 records (constant: 65,536 × the record size); the graph build of one segment
//! (constant); and two parts that grow with the collection: the in-memory id index over every
//! stored record, and the resident pages of the memory-mapped segment files the writer has
//! written and reopened (file-backed, so the kernel can reclaim them, but counted in RSS).
//! Measured: 966 MiB for 1M ingested rows of 512-d vectors (684 MiB in an earlier run with the
//! 32-d fixture model), 990 MiB for 1M × 512 imported, i.e.
//! roughly 0.5 KiB per stored record beyond the constant parts; the two growing parts are not
//! yet measured separately. The bounds are stated for one million records; a first guess of
//! 512 MiB for ingest was exceeded (684 MiB) for this reason.
//!
//! The measured figures are in `tests/README.md`.

mod util;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use util::{count_records, medvec_bin, run_measured, s};

const ROWS: usize = 1_000_000;
const DIM: usize = 512;
/// Stated bound for importing 1M × 512: the tail (65,536 × 2 KiB = 128 MiB), the graph build
/// of one segment, the growing parts (~0.5 GiB at 1M records, see above) and buffers.
const IMPORT_BOUND_MIB: f64 = 1536.0;
/// Stated bound for ingesting 1M rows of 512-d vectors (chunks of 64 images): as for import
/// (the tail of 65,536 × 2 KiB, one segment's graph build, the growing parts), plus ONNX Runtime.
const INGEST_BOUND_MIB: f64 = 1536.0;

/// Deterministic clustered rows, written as `.npy` without holding them all in memory.
fn write_vectors(path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({ROWS}, {DIM}), }}");
    let padded = (10 + header.len() + 1).div_ceil(64) * 64;
    let mut head = b"\x93NUMPY\x01\x00".to_vec();
    head.extend_from_slice(&((padded - 10) as u16).to_le_bytes());
    head.extend_from_slice(header.as_bytes());
    head.resize(padded - 1, b' ');
    head.push(b'\n');
    file.write_all(&head).unwrap();
    let mut state = 0x853c_49e6_748f_ea9bu64;
    let mut row = vec![0f32; DIM];
    for i in 0..ROWS {
        for (j, x) in row.iter_mut().enumerate() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
            *x = if j % 64 == i % 64 { 1.0 } else { 0.0 } + noise;
        }
        let bytes: Vec<u8> = row.iter().flat_map(|x| x.to_le_bytes()).collect();
        file.write_all(&bytes).unwrap();
    }
    file.flush().unwrap();
}

fn write_table(path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(file, "id,n").unwrap();
    for i in 0..ROWS {
        writeln!(file, "case-{i:07},{i}").unwrap();
    }
}

#[test]
#[ignore = "long mode: 2 GB of input, ~20 CPU-minutes of graph builds"]
fn importing_a_million_512d_vectors_stays_within_the_rss_bound() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = dir.path().join("store");
    let (npy, table) = (dir.path().join("v.npy"), dir.path().join("t.csv"));
    write_vectors(&npy);
    write_table(&table);
    util::medvec_ok(&[
        "create",
        s(&store),
        "cases",
        "--vector",
        &format!("image:{DIM}:cosine"),
        "--field",
        "n:int",
    ]);
    let cost = run_measured(
        Command::new(medvec_bin())
            .args(["import", s(&store), "cases", "--table", s(&table), "--npy"])
            .arg(format!("image={}", npy.display()))
            .stdout(Stdio::null()),
    );
    assert_eq!(cost.exit_code, Some(0));
    assert_eq!(count_records(&store), ROWS);
    eprintln!(
        "memory: import of {ROWS} x {DIM}: peak RSS {:.0} MiB (bound {IMPORT_BOUND_MIB}), {:.0} s wall, {:.0} CPU-s",
        cost.max_rss_mib, cost.wall, cost.cpu
    );
    assert!(cost.max_rss_mib < IMPORT_BOUND_MIB, "{cost:?}");
}

#[test]
#[ignore = "long mode: a million-row ingest"]
fn ingesting_a_million_rows_stays_within_the_rss_bound() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = dir.path().join("store");
    let manifest = dir.path().join("manifest.csv");
    let images = [
        "tiny_8x6.png",
        "wide_120x20.png",
        "square_64x64.png",
        "tall_30x90.jpg",
    ];
    let mut file = std::io::BufWriter::new(std::fs::File::create(&manifest).unwrap());
    writeln!(file, "id,path,age").unwrap();
    for i in 0..ROWS {
        writeln!(file, "case-{i:07},{},{}", images[i % images.len()], i % 90).unwrap();
    }
    drop(file);
    // The fixture conv net with a 512-d output layer, so the vectors are 512-d as in the issue.
    let model = dir.path().join("wide-image");
    let python = std::env::var("MEDVEC_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    let made = Command::new(python)
        .arg(root.join("tools/make_onnx_fixtures.py"))
        .arg("--wide-image")
        .arg(&model)
        .status()
        .expect("run MEDVEC_PYTHON (bash tools/setup.sh)");
    assert!(
        made.success(),
        "tools/make_onnx_fixtures.py --wide-image failed"
    );
    let cost = run_measured(
        Command::new(medvec_bin())
            .args([
                "ingest",
                s(&store),
                "cases",
                "--manifest",
                s(&manifest),
                "--root",
            ])
            .arg(root.join("fixtures/images"))
            .arg("--image-model")
            .arg(&model)
            .stdout(Stdio::null()),
    );
    assert_eq!(cost.exit_code, Some(0));
    assert_eq!(count_records(&store), ROWS);
    eprintln!(
        "memory: ingest of {ROWS} rows: peak RSS {:.0} MiB (bound {INGEST_BOUND_MIB}), {:.0} s wall, {:.0} CPU-s",
        cost.max_rss_mib, cost.wall, cost.cpu
    );
    assert!(cost.max_rss_mib < INGEST_BOUND_MIB, "{cost:?}");
}
