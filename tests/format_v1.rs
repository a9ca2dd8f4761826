//! A store written by format version 1 (`fixtures/store-v1`, made by medvec before the id index
//! and block checksums) still reads, answers as it did then, and takes new writes: new segments
//! are written in version 2 beside the old ones, merges and compaction rewrite old rows.

mod util;

use std::path::{Path, PathBuf};
use util::{medvec_ok, s};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-v1")
}

/// A private copy: opening a writer creates a lock file, and the fixture must not change.
fn copy_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("st");
    util::copy_dir(&fixture().join("st"), &root);
    (dir, root)
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixture().join(name)).unwrap()
}

fn segment_files(root: &Path, name: &str) -> usize {
    let dir = root.join("collections/cases");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join(name).exists())
        .count()
}

fn answers(root: &Path) -> (String, String, String) {
    let like = [s(root), "cases", "--field", "image", "-k", "5", "--json"];
    let exact = medvec_ok(&[&["search"][..], &like, &["--like", "case-00010", "--exact"]].concat());
    let filtered = medvec_ok(
        &[
            &["search"][..],
            &like,
            &["--like", "late-0003", "--filter", "dx = \"mel\""],
        ]
        .concat(),
    );
    let got = medvec_ok(&["get", s(root), "cases", "case-00010", "late-0003"]);
    (exact, filtered, got)
}

#[test]
fn a_version_1_store_answers_as_it_did_and_takes_new_writes() {
    let (_dir, root) = copy_store();
    assert_eq!(
        segment_files(&root, "ids.rkyv"),
        2,
        "the fixture is version 1"
    );
    let (exact, filtered, got) = answers(&root);
    assert_eq!(exact, expected("expected-search.json"));
    assert_eq!(filtered, expected("expected-search-filtered.json"));
    assert_eq!(got, expected("expected-get.jsonl"));
    let missing = util::medvec_err(&["get", s(&root), "cases", "case-00003"]);
    assert!(missing.contains("case-00003"), "{missing}");
    medvec_ok(&["verify", s(&root)]);

    // New writes land in version 2 segments beside the old ones; deleting an old row and
    // replacing another go through the old segments' id tables.
    let jsonl = root.parent().unwrap().join("new.jsonl");
    let lines: Vec<String> = (0..30)
        .map(|i| {
            let v: Vec<f32> = (0..8).map(|d| ((i * 8 + d) as f32 * 0.37).sin()).collect();
            format!(r#"{{"id": "new-{i:03}", "image": {v:?}, "dx": "nv", "age": {i}}}"#)
        })
        .chain([
            r#"{"id": "case-00020", "image": [1,0,0,0,0,0,0,0], "dx": "df", "age": 1}"#.to_string(),
        ])
        .collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    medvec_ok(&["import", s(&root), "cases", "--jsonl", s(&jsonl)]);
    medvec_ok(&["delete", s(&root), "cases", "late-0010"]);
    assert_eq!(segment_files(&root, "ids.idx"), 1);
    assert_eq!(segment_files(&root, "ids.rkyv"), 2);
    let replaced = medvec_ok(&["get", s(&root), "cases", "case-00020", "new-007"]);
    assert!(
        replaced.contains(r#""dx":"df""#) && replaced.contains("new-007"),
        "{replaced}"
    );
    assert!(util::medvec_err(&["get", s(&root), "cases", "late-0010"]).contains("late-0010"));
    let stats = medvec_ok(&["stats", s(&root)]);
    assert!(stats.contains("1726 records"), "{stats}");
    assert_eq!(answers(&root).2, expected("expected-get.jsonl"));

    // Compaction rewrites every row in the new format; the answers stay the same.
    medvec_ok(&["compact", s(&root), "cases"]);
    assert_eq!(segment_files(&root, "ids.rkyv"), 0);
    assert_eq!(segment_files(&root, "ids.idx"), 1);
    medvec_ok(&["verify", s(&root)]);
    let (exact, _, got) = answers(&root);
    assert_eq!(got, expected("expected-get.jsonl"));
    // The old top 5 stays the top 5 unless a new record is nearer; check the old ids in order.
    let old: serde_json::Value = serde_json::from_str(&expected("expected-search.json")).unwrap();
    let new: serde_json::Value = serde_json::from_str(&exact).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let kept: Vec<String> = ids(&new)
        .into_iter()
        .filter(|id| !id.starts_with("new-"))
        .collect();
    assert_eq!(kept, ids(&old)[..kept.len()]);
}

fn heads_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/heads-v1")
}

/// `id → (predicted, probabilities in class order)` of `medvec classify --out FILE.jsonl`.
fn predictions(jsonl: &str) -> Vec<(String, String, Vec<f64>)> {
    jsonl
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let probabilities = row["probabilities"].as_object().unwrap();
            (
                row["id"].as_str().unwrap().to_string(),
                row["predicted"].as_str().unwrap().to_string(),
                probabilities
                    .values()
                    .map(|p| p.as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// Heads saved before heads could read any number of fields (head formats 1 and 2, MLP bodies
/// of encoding version 1) load as two-field heads over [text, image] with the pair
/// (image, text), and classify every record as the version that saved them did.
#[test]
fn heads_saved_by_the_two_field_version_classify_as_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("st");
    util::copy_dir(&heads_fixture().join("st"), &root);
    let listed = medvec_ok(&["heads", s(&root), "cases", "--json"]);
    let heads: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(heads.len(), 3);
    for head in heads {
        assert_eq!(head["meta"]["fields"], serde_json::json!(["text", "image"]));
        assert_eq!(
            head["meta"]["shift_pair"],
            serde_json::json!(["image", "text"])
        );
    }
    for name in ["early", "late", "knn"] {
        let out = dir.path().join(format!("{name}.jsonl"));
        medvec_ok(&[
            "classify",
            s(&root),
            "cases",
            "--head",
            name,
            "--out",
            s(&out),
        ]);
        let got = predictions(&std::fs::read_to_string(&out).unwrap());
        let want = predictions(
            &std::fs::read_to_string(heads_fixture().join(format!("expected-{name}.jsonl")))
                .unwrap(),
        );
        assert_eq!((got.len(), want.len()), (240, 240), "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.0, &g.1), (&w.0, &w.1), "{name}");
            let worst = g.2.iter().zip(&w.2).map(|(a, b)| (a - b).abs());
            assert!(
                worst.fold(0.0, f64::max) <= 1e-6,
                "{name} {}: {g:?} vs {w:?}",
                g.0
            );
        }
    }
}
