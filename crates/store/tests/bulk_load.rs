//! Bulk loads with deferred graphs (`CollectionOptions::bulk`, what `medvec import` uses): the
//! flushes and merges of the load write no graphs, readers scan those rows exactly, and the
//! closing flush builds one graph over the whole load. A load that is cut short loses nothing
//! and its graphs are built by the next writer.

mod common;

use common::*;
use medvec_store::{Collection, CollectionOptions, Store};
use std::path::{Path, PathBuf};

const DIM: usize = 16;
const FLUSH: usize = 1_100;

/// The options of a bulk load with a flush every [`FLUSH`] rows and `merge_factor`.
fn bulk_options(merge_factor: usize) -> CollectionOptions {
    CollectionOptions {
        flush_rows: FLUSH,
        merge_factor,
        ..CollectionOptions::bulk()
    }
}

fn bulk(root: &Path) -> Store {
    Store::open_with(root, bulk_options(4)).unwrap()
}

fn collection_dir(root: &Path) -> PathBuf {
    ["collections/cases", "cases"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.join("MANIFEST").exists())
        .unwrap()
}

/// Per segment of the manifest: (rows, graphs deferred).
fn manifest_segments(root: &Path) -> Vec<(usize, bool)> {
    let bytes = std::fs::read(collection_dir(root).join("MANIFEST")).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes[64..]).unwrap();
    manifest["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let deferred = s["graphs_deferred"].as_bool().unwrap_or(false);
            (s["rows"].as_u64().unwrap() as usize, deferred)
        })
        .collect()
}

fn graph_files(root: &Path) -> usize {
    files_under(&collection_dir(root))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "hnsw"))
        .count()
}

/// Recall@10 of graph search against exact search, over every 50th vector as a query.
fn recall(cases: &Collection, vectors: &[Vec<f32>]) -> f64 {
    let queries: Vec<Vec<f32>> = vectors.iter().step_by(50).cloned().collect();
    graph_recall(cases, &queries, 64)
}

/// Loads `flushes` flushes of vectors into a new bulk-opened store; returns it unclosed.
fn load(root: &Path, vectors: &[Vec<f32>]) -> (Store, std::sync::Arc<Collection>) {
    Store::create(root).unwrap();
    let store = bulk(root);
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    for (i, chunk) in vectors.chunks(500).enumerate() {
        cases.upsert(&records(chunk, i * 500)).unwrap();
    }
    (store, cases)
}

#[test]
fn a_bulk_load_writes_no_graph_until_its_end_and_then_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let vectors = clustered(12 * FLUSH, DIM, 6, 11);
    let (store, cases) = load(&root, &vectors);
    let during = manifest_segments(&root);
    assert!(during.len() >= 2, "{during:?}");
    assert!(during.iter().all(|&(_, deferred)| deferred), "{during:?}");
    assert_eq!(graph_files(&root), 0, "no graph while loading");
    // The deferred merges still keep the segments few: 10 flushes, merge factor 4.
    assert!(during.len() <= 6, "{during:?}");
    assert_eq!(cases.stats().segments_awaiting_graphs, during.len());
    // Meanwhile every row is found (exactly: no graph to miss it).
    assert_eq!(recall(&cases, &vectors[..10 * FLUSH]), 1.0);

    store.close().unwrap();
    let after = manifest_segments(&root);
    assert_eq!(
        after,
        vec![(vectors.len(), false)],
        "one segment with graphs"
    );
    assert_eq!(graph_files(&root), 2, "one graph per vector field");
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    assert_eq!(cases.len(), vectors.len());
    assert_eq!(cases.stats().segments_awaiting_graphs, 0);
    let recall = recall(&cases, &vectors);
    assert!(recall >= 0.95, "recall@10 {recall}");
    let report = cases.verify().unwrap();
    assert!(report.files_checked > 0);
}

#[test]
fn an_interrupted_load_loses_nothing_and_the_next_writer_builds_its_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let vectors = clustered(6 * FLUSH, DIM, 6, 12);
    let (store, cases) = load(&root, &vectors);
    // Dropped without close, as a killed import is: the log holds the unflushed tail.
    drop(cases);
    drop(store);
    assert!(manifest_segments(&root).iter().all(|&(_, d)| d));

    // A reader sees every row, and repair finds nothing to rebuild: no graph is damaged.
    let reader = Store::open_read_only(&root).unwrap();
    let cases = reader.collection("cases").unwrap();
    assert_eq!(cases.len(), vectors.len());
    assert_eq!(recall(&cases, &vectors), 1.0);
    drop(cases);
    drop(reader);
    let writer = Store::open(&root).unwrap();
    assert!(writer.repair("cases").unwrap().rebuilt.is_empty());

    // The next writer (default options, not a bulk load) builds the graphs at its flush.
    let cases = writer.collection("cases").unwrap();
    let extra = clustered(10, DIM, 6, 13);
    cases.upsert(&records(&extra, vectors.len())).unwrap();
    writer.close().unwrap();
    let segments = manifest_segments(&root);
    assert!(segments.iter().all(|&(_, d)| !d), "{segments:?}");
    assert!(graph_files(&root) >= 2);
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    assert_eq!(cases.len(), vectors.len() + extra.len());
    let recall = recall(&cases, &vectors);
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn rows_replaced_during_a_load_are_dropped_when_its_graphs_are_built() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let vectors = clustered(4 * FLUSH, DIM, 6, 14);
    let (store, cases) = load(&root, &vectors);
    // The same ids again with other vectors: the first flushes' rows are all tombstoned.
    let replacements = clustered(2 * FLUSH, DIM, 6, 15);
    for (i, chunk) in replacements.chunks(500).enumerate() {
        cases.upsert(&records(chunk, i * 500)).unwrap();
    }
    store.close().unwrap();
    let segments = manifest_segments(&root);
    let rows: usize = segments.iter().map(|s| s.0).sum();
    assert_eq!(
        rows,
        vectors.len(),
        "no tombstoned row is kept: {segments:?}"
    );
    assert!(segments.iter().all(|&(_, d)| !d), "{segments:?}");
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    assert_eq!(cases.len(), vectors.len());
    let first = cases.get("case-000000").unwrap().unwrap();
    assert_eq!(first.vectors["image"], replacements[0]);
    let last = format!("case-{:06}", vectors.len() - 1);
    assert_eq!(
        cases.get(&last).unwrap().unwrap().vectors["image"],
        vectors[vectors.len() - 1]
    );
}

#[test]
fn a_bulk_load_into_a_collection_with_graphs_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let vectors = clustered(4 * FLUSH, DIM, 6, 16);
    let (store, cases) = load(&root, &vectors);
    drop(cases);
    store.close().unwrap();
    let graph_dir = |root: &Path| {
        files_under(&collection_dir(root))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "hnsw"))
            .map(|p| p.parent().unwrap().to_path_buf())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let before = graph_dir(&root);
    // A second, smaller load: its flushes do not touch the first load's segment.
    let store = bulk(&root);
    let cases = store.collection("cases").unwrap();
    let more = clustered(2 * FLUSH, DIM, 6, 17);
    cases.upsert(&records(&more, vectors.len())).unwrap();
    assert!(
        before.is_subset(&graph_dir(&root)),
        "the first load's graph stays"
    );
    store.close().unwrap();
    let segments = manifest_segments(&root);
    assert!(segments.iter().all(|&(_, d)| !d), "{segments:?}");
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    assert_eq!(cases.len(), vectors.len() + more.len());
}

#[test]
fn with_merging_off_each_deferred_segment_gets_its_own_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create_with(&root, bulk_options(0)).unwrap();
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    let vectors = clustered(4 * FLUSH, DIM, 6, 18);
    for (i, chunk) in vectors.chunks(FLUSH).enumerate() {
        cases.upsert(&records(chunk, i * FLUSH)).unwrap();
    }
    let during = manifest_segments(&root);
    assert_eq!(during.len(), 4, "{during:?}");
    store.close().unwrap();
    let after = manifest_segments(&root);
    assert_eq!(
        after,
        vec![(FLUSH, false); 4],
        "one segment per flush, each with graphs"
    );
    assert_eq!(graph_files(&root), 8);
}

/// Automatic merges stop at `segment_rows`, while the one-off rewrites (the graph build at the
/// end of a bulk load, and `compact`) write segments of up to `rewrite_bytes` of vectors: fewer
/// graphs for a query to visit. With `rewrite_bytes` 0 they stop at `segment_rows` too.
#[test]
fn one_off_rewrites_write_segments_up_to_rewrite_bytes() {
    // Two fields of 16 dimensions: 4 · (16 + 1) bytes each per row.
    let row_bytes = 2 * 4 * (DIM + 1);
    let options = |rewrite_rows: usize| CollectionOptions {
        segment_rows: 3_000,
        rewrite_bytes: rewrite_rows * row_bytes,
        ..bulk_options(4)
    };
    let vectors = clustered(12 * FLUSH, DIM, 6, 12);
    let rows_after_load = |root: &Path, options: CollectionOptions| {
        Store::create(root).unwrap();
        let store = Store::open_with(root, options).unwrap();
        let cases = store.create_collection("cases", schema(DIM)).unwrap();
        for (i, chunk) in vectors.chunks(500).enumerate() {
            cases.upsert(&records(chunk, i * 500)).unwrap();
        }
        let during = manifest_segments(root);
        assert!(during.iter().all(|&(rows, _)| rows <= 3_000), "{during:?}");
        store.close().unwrap();
        let rows: Vec<usize> = manifest_segments(root).iter().map(|s| s.0).collect();
        assert_eq!(rows.iter().sum::<usize>(), vectors.len());
        rows
    };
    let dir = tempfile::tempdir().unwrap();
    let large = rows_after_load(&dir.path().join("large"), options(8_000));
    assert!(large.iter().all(|&r| r <= 8_000), "{large:?}");
    assert!(large.iter().any(|&r| r > 3_000), "{large:?}");
    assert!(large.len() <= 3, "{large:?}");

    let root = dir.path().join("small");
    let small = rows_after_load(&root, options(0));
    assert!(small.iter().all(|&r| r <= 3_000), "{small:?}");
    assert!(small.len() >= 5, "{small:?}");
    let store = Store::open_with(&root, options(8_000)).unwrap();
    let cases = store.collection("cases").unwrap();
    cases.compact().unwrap();
    let compacted: Vec<usize> = manifest_segments(&root).iter().map(|s| s.0).collect();
    assert!(compacted.iter().all(|&r| r <= 8_000), "{compacted:?}");
    assert!(compacted.len() < small.len(), "{compacted:?}");
    assert_eq!(cases.len(), vectors.len());
    let recall = recall(&cases, &vectors);
    assert!(recall >= 0.95, "recall@10 {recall}");
}
