//! Helpers for tests that run the real `medvec` binary.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn medvec_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_medvec"))
}

pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub fn medvec(args: &[&str]) -> Output {
    Command::new(medvec_bin()).args(args).output().unwrap()
}

/// Runs medvec, asserting success; returns stdout.
pub fn medvec_ok(args: &[&str]) -> String {
    let out = medvec(args);
    assert!(
        out.status.success(),
        "medvec {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs medvec, asserting failure; returns the one-line error.
pub fn medvec_err(args: &[&str]) -> String {
    let out = medvec(args);
    assert!(!out.status.success(), "medvec {args:?} should have failed");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line, got {stderr:?}");
    assert!(lines[0].starts_with("medvec: error: "), "{stderr}");
    lines[0].to_string()
}

pub fn medvec_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(medvec_ok(args).trim()).unwrap()
}

/// Creates collection `cases` (8-d cosine `image`, int `n`) in `store`, creating the store too.
pub fn create_cases(store: &Path) {
    create_cases_with(store, "image:8:cosine");
}

/// The `cases` collection with SQ8 codes beside its graphs (crash and privacy tests: every
/// file kind a segment can hold).
pub fn create_quantised_cases(store: &Path) {
    create_cases_with(store, "image:8:cosine:sq8");
}

fn create_cases_with(store: &Path, vector: &str) {
    medvec_ok(&[
        "create",
        s(store),
        "cases",
        "--vector",
        vector,
        "--field",
        "n:int",
    ]);
}

/// Imports `jsonl` into the `cases` collection, flushing a segment every `flush_rows` records.
pub fn import_jsonl(store: &Path, jsonl: &Path, flush_rows: usize) {
    let flush_rows = flush_rows.to_string();
    medvec_ok(&[
        "import",
        s(store),
        "cases",
        "--jsonl",
        s(jsonl),
        "--flush-rows",
        &flush_rows,
    ]);
}

/// Writes records `first..first+count` as JSONL with `dim`-wide image vectors and payload `n`.
pub fn write_jsonl(path: &Path, first: usize, count: usize, dim: usize) {
    let mut text = String::new();
    for n in first..first + count {
        let vector: Vec<f32> = (0..dim)
            .map(|j| (((n * 31 + j * 17) % 97) as f32 - 48.0) / 50.0)
            .collect();
        let line = serde_json::json!({"id": format!("case-{n:06}"), "image": vector, "n": n});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// What a finished child process cost: wall seconds, CPU seconds, peak RSS (MiB), exit code.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub wall: f64,
    pub cpu: f64,
    pub max_rss_mib: f64,
    pub exit_code: Option<i32>,
}

/// Runs `command` to completion, measuring it with `wait4` (its own rusage, not the test's).
// The child is reaped by `wait4` (which also gives its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_measured(command: &mut Command) -> Cost {
    let start = std::time::Instant::now();
    let child = command.spawn().expect("spawn the child");
    let mut status = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in; the pid is our own child, reaped
    // here exactly once (std's `Child` is never waited on).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Cost {
        wall: start.elapsed().as_secs_f64(),
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
    }
}

/// Live records in collection `cases` of `store`, as `medvec stats` (another process) sees them.
pub fn count_records(store: &Path) -> usize {
    let stats = medvec_json(&["stats", s(store), "cases", "--json"]);
    stats["collections"][0]["count"].as_u64().unwrap() as usize
}

/// The (id, score) hits of one `medvec search --json` line.
pub fn json_hits(line: &str) -> Vec<(String, f64)> {
    hits_of(&serde_json::from_str(line.trim()).unwrap())
}

/// The (id, score) hits of `{"hits": [{"id", "score"}, ...]}` (the CLI's and the API's answer).
pub fn hits_of(value: &serde_json::Value) -> Vec<(String, f64)> {
    value["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// `medvec search STORE cases --field image --image IMAGE -k K [--filter F] --json`'s hits.
pub fn search_image(
    store: &Path,
    image: &Path,
    k: usize,
    filter: Option<&str>,
) -> Vec<(String, f64)> {
    search_hits(store, ["--image", s(image)], k, filter)
}

/// `medvec search STORE cases --field image QUERY -k K [--filter F] --json`'s hits, where QUERY
/// is `--image FILE`, `--like ID`, ...
pub fn search_hits(
    store: &Path,
    query: [&str; 2],
    k: usize,
    filter: Option<&str>,
) -> Vec<(String, f64)> {
    let k = k.to_string();
    let mut args = vec!["search", s(store), "cases", "--field", "image"];
    args.extend(query);
    args.extend(["-k", &k, "--json"]);
    if let Some(filter) = filter {
        args.extend(["--filter", filter]);
    }
    json_hits(&medvec_ok(&args))
}

/// The demo store (`medvec demo`) built from `fixtures/demo` in `dir/demo`.
pub fn demo_store(dir: &Path) -> PathBuf {
    let store = dir.join("demo");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    medvec_ok(&["demo", "--store", s(&store), "--fixtures", s(&fixtures)]);
    store
}

/// The demo store with a late-fusion head `dx-late` trained on `ham10000`'s train split, and
/// `medvec classify`'s predictions (JSON lines, parsed) for its test split.
pub fn demo_with_head(dir: &Path) -> (PathBuf, Vec<serde_json::Value>) {
    let store = demo_store(dir);
    let ham = ["ham10000", "--head"];
    let train = [
        "late",
        "--label",
        "dx",
        "--split-column",
        "split",
        "--name",
        "dx-late",
    ];
    medvec_ok(&[&["train", s(&store)][..], &ham, &train].concat());
    let preds = dir.join("preds.jsonl");
    let test = [
        "dx-late",
        "--filter",
        "split = \"test\"",
        "--out",
        s(&preds),
    ];
    medvec_ok(&[&["classify", s(&store)][..], &ham, &test].concat());
    let predictions = std::fs::read_to_string(&preds)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (store, predictions)
}

/// Copies a store's folder tree, leaving out its `LOCK` (the copy must get its own writer).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The arguments of `medvec ingest` of the fixture archive (8 good rows) into `cases` of `store`.
pub fn fixture_ingest_args(
    store: &Path,
    image_model: &Path,
    text_model: &Path,
    rejects: &Path,
) -> Vec<String> {
    let fixture = |p: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(p)
            .to_str()
            .unwrap()
            .to_string()
    };
    [
        "ingest",
        s(store),
        "cases",
        "--manifest",
        &fixture("fixtures/archive/manifest.csv"),
        "--root",
        &fixture("fixtures/images"),
        "--image-model",
        s(image_model),
        "--text-model",
        s(text_model),
        "--template",
        "ham10000",
        "--rejects",
        s(rejects),
    ]
    .map(str::to_string)
    .to_vec()
}

/// Trains an early head `name` on the fixture archive's `sex` label over `fields` (comma-separated)
/// of collection `cases`: a head small enough for the eight fixture records.
pub fn train_sex_head(store: &Path, name: &str, fields: &str) {
    let split = ["--split", "0.5,0.25,0.25", "--epochs", "3", "--name", name];
    let train = [
        "train",
        s(store),
        "cases",
        "--head",
        "early",
        "--label",
        "sex",
    ];
    medvec_ok(&[&train[..], &["--fields", fields], &split].concat());
}

/// `medvec classify --head HEAD --image PHOTO`'s one prediction (its JSON line), written via `out`.
pub fn classify_image(store: &Path, head: &str, photo: &Path, out: &Path) -> serde_json::Value {
    let classify = ["classify", s(store), "cases", "--head", head, "--image"];
    medvec_ok(&[&classify[..], &[s(photo), "--out", s(out)]].concat());
    serde_json::from_str(std::fs::read_to_string(out).unwrap().trim()).unwrap()
}
