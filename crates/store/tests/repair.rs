//! `Store::repair` rebuilds damaged HNSW graphs from their columns, and changes nothing when
//! any other file is damaged.

mod common;

use common::*;
use medvec_store::{Hit, SearchParams, Store, StoreError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const QUERIES: usize = 30;

/// A store with one graph-indexed segment and a logged tail.
fn build_store() -> (tempfile::TempDir, PathBuf, Vec<Vec<f32>>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create(&root).unwrap();
    let cases = store.create_collection("cases", schema(16)).unwrap();
    let vectors = clustered(1600, 16, 6, 5);
    cases.upsert(&records(&vectors[..1500], 0)).unwrap();
    cases.flush().unwrap();
    cases.upsert(&records(&vectors[1500..], 1500)).unwrap();
    (dir, root, vectors)
}

fn segment_file(root: &Path, name: &str) -> PathBuf {
    root.join("collections/cases/seg-00000001").join(name)
}

fn search_all(root: &Path, vectors: &[Vec<f32>], exact: bool) -> Vec<Vec<Hit>> {
    let store = Store::open_read_only(root).unwrap();
    let cases = store.collection("cases").unwrap();
    let mut params = SearchParams::top(10);
    params.exact = exact;
    let queries: Vec<Vec<f32>> = vectors.iter().step_by(53).take(QUERIES).cloned().collect();
    ["image", "text"]
        .iter()
        .flat_map(|field| cases.search_batch(field, &queries, &params).unwrap())
        .collect()
}

fn ids(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

fn recall(graph: &[Vec<Hit>], exact: &[Vec<Hit>]) -> f64 {
    let found: usize = graph
        .iter()
        .zip(exact)
        .map(|(g, e)| ids(g).iter().filter(|id| ids(e).contains(id)).count())
        .sum();
    found as f64 / exact.iter().map(Vec::len).sum::<usize>() as f64
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(root)
        .into_iter()
        .filter(|f| !f.ends_with("LOCK"))
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

/// Ways to damage a graph file, each applied to a fresh store.
fn damage(kind: &str, path: &Path, twin: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    match kind {
        "zero-middle-page" => {
            let middle = bytes.len() / 2 / 4096 * 4096;
            bytes[middle..middle + 4096].fill(0);
        }
        "zero-first-page" => bytes[..4096].fill(0),
        "flip" => {
            let at = bytes.len() / 3;
            bytes[at] ^= 0x40;
        }
        "truncate" => bytes.truncate(bytes.len() - 1000),
        "swap" => bytes = std::fs::read(twin).unwrap(),
        "delete" => {
            std::fs::remove_file(path).unwrap();
            return;
        }
        _ => unreachable!(),
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_graph_is_rebuilt_from_its_column() {
    let (_other_dir, other_root, _) = build_store();
    let kinds = [
        "zero-middle-page",
        "zero-first-page",
        "flip",
        "truncate",
        "swap",
        "delete",
    ];
    for kind in kinds {
        let (_dir, root, vectors) = build_store();
        let exact_before = search_all(&root, &vectors, true);
        let graph = segment_file(&root, "image.hnsw");
        damage(kind, &graph, &segment_file(&other_root, "image.hnsw"));
        if kind != "delete" {
            // A damaged header fails the open; a damaged body, the first use or `verify`.
            let store = Store::open_read_only(&root).unwrap();
            let err = store
                .collection("cases")
                .err()
                .or_else(|| store.verify().err())
                .unwrap_or_else(|| panic!("{kind}: damage went unnoticed"))
                .to_string();
            assert!(
                err.contains("image.hnsw") && err.contains("--repair"),
                "{kind}: {err}"
            );
        }
        let store = Store::open(&root).unwrap();
        let report = store.repair("cases").unwrap();
        let rebuilt: Vec<&PathBuf> = report.rebuilt.iter().map(|(p, _)| p).collect();
        assert_eq!(rebuilt, vec![&graph], "{kind}: {report:?}");
        assert!(store.repair("cases").unwrap().rebuilt.is_empty(), "{kind}");
        store.verify().unwrap();
        drop(store);
        assert_eq!(search_all(&root, &vectors, true), exact_before, "{kind}");
        let graph_hits = search_all(&root, &vectors, false);
        let r = recall(&graph_hits, &exact_before);
        assert!(r >= 0.9, "{kind}: recall@10 {r} after the rebuild");
    }
}

/// Damages a file's bytes in place.
type Hurt = fn(&mut Vec<u8>);

#[test]
fn other_damage_is_not_repairable_and_changes_nothing() {
    let (_dir, root, _) = build_store();
    let graph = segment_file(&root, "image.hnsw");
    let cases: [(&str, Hurt); 4] = [
        ("ids.idx", |b| b[100] ^= 1),
        ("payload.cols", |b| b[200] ^= 1),
        ("image.f32", |b| {
            let middle = b.len() / 2;
            b[middle..middle + 4096].fill(0)
        }),
        ("MANIFEST", |b| b[70] ^= 1),
    ];
    for (name, hurt) in cases {
        let path = if name == "MANIFEST" {
            root.join("collections/cases/MANIFEST")
        } else {
            segment_file(&root, name)
        };
        let original = std::fs::read(&path).unwrap();
        let original_graph = std::fs::read(&graph).unwrap();
        let mut bytes = original.clone();
        hurt(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let mut graph_bytes = original_graph.clone();
        graph_bytes[5000] ^= 1;
        std::fs::write(&graph, &graph_bytes).unwrap();
        let before = snapshot(&root);
        let store = Store::open(&root).unwrap();
        let err = store.repair("cases").unwrap_err();
        assert!(matches!(err, StoreError::NotRepairable(_)), "{name}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(name) && message.contains("nothing was changed"),
            "{message}"
        );
        drop(store);
        assert_eq!(snapshot(&root), before, "{name}: repair modified files");
        std::fs::write(&path, &original).unwrap();
        std::fs::write(&graph, &original_graph).unwrap();
    }
    Store::open(&root).unwrap().verify().unwrap();
}

#[test]
fn repair_needs_the_writer() {
    let (_dir, root, _) = build_store();
    let err = Store::open_read_only(&root)
        .unwrap()
        .repair("cases")
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    let store = Store::open(&root).unwrap();
    assert!(matches!(
        store.repair("nope"),
        Err(StoreError::NoSuchCollection(_))
    ));
}
