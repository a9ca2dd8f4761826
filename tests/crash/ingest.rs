//! Crashes during `medvec ingest` of images: a kill at random points, then a resume, and an
//! abort before and after every fsync and rename point lose no acknowledged chunk.

use super::*;
use std::path::{Path, PathBuf};

const ROWS: usize = 320;
const CHUNK: usize = 8;
const GOOD_IMAGES: [&str; 8] = [
    "rgb_100x75.png",
    "rgb_80x60.jpg",
    "gray_64x48.jpg",
    "palette_64x40.bmp",
    "rgb_80x60.tif",
    "lossy_80x60.webp",
    "rgba_60x80.png",
    "tall_30x90.jpg",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A manifest of ROWS cases cycling through good fixture images, ids in order.
fn manifest(dir: &Path) -> PathBuf {
    let mut text = String::from("id,path,age,sex\n");
    for i in 0..ROWS {
        let image = GOOD_IMAGES[i % GOOD_IMAGES.len()];
        text.push_str(&format!("case-{i:06},{image},{},female\n", 20 + i % 60));
    }
    let path = dir.join("manifest.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn args(store: &Path, manifest: &Path) -> Vec<String> {
    let fixture = |p: &str| repo().join(p).to_str().unwrap().to_string();
    [
        "ingest",
        s(store),
        "cases",
        "--manifest",
        s(manifest),
        "--root",
        &fixture("fixtures/images"),
        "--image-model",
        &fixture("fixtures/models/tiny-image"),
        "--batch",
        &CHUNK.to_string(),
        "--threads",
        "1",
    ]
    .map(str::to_string)
    .to_vec()
}

fn count(store: &Path) -> usize {
    let stats = medvec_json(&["stats", s(store), "cases", "--json"]);
    stats["collections"][0]["count"].as_u64().unwrap() as usize
}

/// After a crash: verify passes, whole chunks only, every acknowledged row (and every row
/// stored before, `previous`) present, at most one unacknowledged chunk beyond them.
fn check(store: &Path, acknowledged: usize, previous: usize, context: &str) -> usize {
    if !store.join("collections/cases").exists() {
        assert_eq!(acknowledged, 0, "{context}");
        return 0;
    }
    medvec_ok(&["verify", s(store)]);
    let n = count(store);
    assert_eq!(
        n % CHUNK,
        0,
        "{context}: a partial chunk is visible ({n} rows)"
    );
    let floor = acknowledged.max(previous);
    assert!(
        n >= floor && n <= floor + CHUNK,
        "{context}: {n} stored, {acknowledged} acknowledged, {previous} before"
    );
    n
}

/// Resumes to completion and checks a stored vector against `medvec embed`.
fn finish(store: &Path, manifest: &Path, context: &str) {
    let args = args(store, manifest);
    medvec_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(count(store), ROWS, "{context}: resume completes");
    let last = format!("case-{:06}", ROWS - 1);
    let got = medvec_json(&["get", s(store), "cases", &last, "--json"]);
    let image = repo()
        .join("fixtures/images")
        .join(GOOD_IMAGES[(ROWS - 1) % 8]);
    let model = repo().join("fixtures/models/tiny-image");
    let embedded = medvec_json(&["embed", "--image-model", s(&model), s(&image)]);
    let (a, b) = (&got["vectors"]["image"], &embedded["vector"]);
    assert_eq!(a.as_array().unwrap().len(), b.as_array().unwrap().len());
    for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
        assert!(
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-6,
            "{context}"
        );
    }
}

#[test]
fn an_ingest_killed_at_random_points_resumes_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path());
    let store = dir.path().join("store");
    let args = args(&store, &manifest);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut previous = 0;
    for (trial, delay) in delays(random_trials(), 350).into_iter().enumerate() {
        let acknowledged = run_until_killed(&args, Some(delay), None);
        let context = format!("ingest trial {trial}, kill after {delay:?}");
        previous = check(&store, acknowledged, previous, &context);
        let n = previous;
        if n == ROWS {
            medvec_ok(&["drop", s(&store), "cases"]);
            previous = 0;
        }
    }
    finish(&store, &manifest, "after the random kills");
    report("ingest, SIGKILL at random times", random_trials());
}

#[test]
fn an_ingest_aborted_before_and_after_every_fsync_and_rename_loses_nothing() {
    // rename 1 is the model record; later ones are segment flushes (none at this size)
    for spec in [
        "wal-before-fsync:2",
        "wal-after-fsync:2",
        "before-rename:1",
        "after-rename:1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path());
        let store = dir.path().join("store");
        let args = args(&store, &manifest);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let acknowledged = run_until_killed(&args, None, Some(spec));
        assert!(
            acknowledged < ROWS,
            "{spec}: the fault point was never reached"
        );
        check(&store, acknowledged, 0, spec);
        finish(&store, &manifest, spec);
        medvec_ok(&["verify", s(&store)]);
    }
    report("ingest, abort at each fsync/rename point", 4);
}
