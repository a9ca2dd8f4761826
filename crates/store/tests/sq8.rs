//! SQ8 fields (FORMAT.md, `<field>.sq8`): graph walks score rows on one-byte codes, and the
//! answers come back with exact `f32` scores at the recall of an unquantised field. The codes
//! are derived data like the graph: damage is an error naming the file, `verify` finds it and
//! repair rebuilds it.

mod common;

use common::*;
use medvec_store::{Hit, Metric, Quantization, Record, Schema, SearchParams, Store, VectorField};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const ROWS: usize = 6000;
const DIM: usize = 64;

fn coded_schema(metric: &str) -> Schema {
    Schema {
        vectors: vec![VectorField::parse(&format!("v:{DIM}:{metric}:sq8")).unwrap()],
        payload: vec![],
    }
}

/// Clustered vectors, scaled per row for the metrics that see lengths.
fn dataset(metric: Metric) -> Vec<Vec<f32>> {
    let mut vectors = clustered(ROWS + 50, DIM, 24, 9);
    if metric != Metric::Cosine {
        for (i, v) in vectors.iter_mut().enumerate() {
            let scale = 0.5 + (i % 7) as f32 * 0.25;
            v.iter_mut().for_each(|x| *x *= scale);
        }
    }
    vectors
}

fn rows(vectors: &[Vec<f32>]) -> Vec<Record> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("r{i:05}")).with_vector("v", v.clone()))
        .collect()
}

/// One flushed segment of `ROWS` rows (large enough for a graph walk); returns the queries.
fn build(store: &Store, name: &str, metric: Metric) -> Vec<Vec<f32>> {
    let vectors = dataset(metric);
    let (base, queries) = vectors.split_at(ROWS);
    let cases = store
        .create_collection(name, coded_schema(metric.name()))
        .unwrap();
    cases.upsert(&rows(base)).unwrap();
    cases.flush().unwrap();
    queries.to_vec()
}

fn exact_params(k: usize) -> SearchParams {
    SearchParams {
        exact: true,
        ..SearchParams::top(k)
    }
}

fn segment_file(root: &Path, collection: &str, name: &str) -> PathBuf {
    root.join("collections")
        .join(collection)
        .join("seg-00000001")
        .join(name)
}

#[test]
fn coded_walks_keep_recall_and_return_exact_scores() {
    let (_dir, store) = new_store();
    for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
        let name = metric.name();
        let queries = build(&store, name, metric);
        assert!(segment_file(store.path(), name, "v.sq8").exists());
        let cases = store.collection(name).unwrap();
        let mut found = 0;
        for query in &queries {
            let truth = cases.search("v", query, &exact_params(10)).unwrap();
            let walked = cases.search("v", query, &SearchParams::top(10)).unwrap();
            let truth_ids: HashSet<&str> = truth.iter().map(|h| h.id.as_str()).collect();
            found += walked
                .iter()
                .filter(|h| truth_ids.contains(h.id.as_str()))
                .count();
            // Every returned score is the exact one of that row, as an exact scan gives it.
            let all = cases.search("v", query, &exact_params(ROWS)).unwrap();
            for hit in &walked {
                let exact: &Hit = all.iter().find(|h| h.id == hit.id).unwrap();
                assert_eq!(hit.score, exact.score, "{name}: {}", hit.id);
            }
            assert!(walked
                .windows(2)
                .all(|w| metric_order(metric, &w[0], &w[1])));
        }
        let recall = found as f64 / (10 * queries.len()) as f64;
        assert!(recall >= 0.95, "{name}: recall@10 {recall}");
    }
}

fn metric_order(metric: Metric, a: &Hit, b: &Hit) -> bool {
    match metric {
        Metric::L2 => a.score <= b.score,
        Metric::Cosine | Metric::Dot => a.score >= b.score,
    }
}

#[test]
fn quantisation_is_kept_in_the_schema_and_merged_segments_get_codes() {
    let (dir, store) = new_store();
    let queries = build(&store, "cases", Metric::Cosine);
    let cases = store.collection("cases").unwrap();
    // A second segment, then a compaction: the merged segment is coded afresh.
    let more = clustered(ROWS, DIM, 24, 10);
    let extra: Vec<Record> = more
        .iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("s{i:05}")).with_vector("v", v.clone()))
        .collect();
    cases.upsert(&extra).unwrap();
    cases.flush().unwrap();
    cases.compact().unwrap();
    drop(cases);
    drop(store);
    let store = Store::open(dir.path().join("store")).unwrap();
    let cases = store.collection("cases").unwrap();
    let schema = cases.schema();
    let field = schema.vector_field("v").unwrap();
    assert_eq!(field.quantization, Quantization::Sq8);
    let coded: Vec<PathBuf> = files_under(&dir.path().join("store"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sq8"))
        .collect();
    assert_eq!(coded.len(), 1, "{coded:?}");
    let hits = cases
        .search("v", &queries[0], &SearchParams::top(5))
        .unwrap();
    assert_eq!(hits.len(), 5);
}

#[test]
fn damaged_codes_fail_the_walk_and_repair_rebuilds_them() {
    let (dir, store) = new_store();
    let queries = build(&store, "cases", Metric::Cosine);
    drop(store);
    let root = dir.path().join("store");
    let codes = segment_file(&root, "cases", "v.sq8");
    let mut bytes = std::fs::read(&codes).unwrap();
    // Every code block: any walk reads some of them.
    let body = 64 + 8 * 4 * DIM;
    for at in (body..body + ROWS * DIM).step_by(4096) {
        bytes[at] ^= 0x40;
    }
    std::fs::write(&codes, &bytes).unwrap();

    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    let err = cases
        .search("v", &queries[0], &SearchParams::top(10))
        .unwrap_err()
        .to_string();
    assert!(err.contains("v.sq8"), "{err}");
    // An exact scan reads only the f32 column and still answers.
    assert_eq!(
        cases
            .search("v", &queries[0], &exact_params(10))
            .unwrap()
            .len(),
        10
    );
    let err = store.verify().unwrap_err().to_string();
    assert!(err.contains("v.sq8"), "{err}");

    drop(cases);
    let report = store.repair("cases").unwrap();
    assert!(
        report
            .rebuilt
            .iter()
            .any(|(path, _)| path.ends_with("v.hnsw")),
        "{report:?}"
    );
    store.verify().unwrap();
    let cases = store.collection("cases").unwrap();
    let walked = cases
        .search("v", &queries[0], &SearchParams::top(10))
        .unwrap();
    let exact = cases.search("v", &queries[0], &exact_params(10)).unwrap();
    assert_eq!(walked[0], exact[0]);
}

#[test]
fn missing_codes_are_damage_that_repair_restores() {
    let (dir, store) = new_store();
    let queries = build(&store, "cases", Metric::Cosine);
    drop(store);
    let root = dir.path().join("store");
    let codes = segment_file(&root, "cases", "v.sq8");
    let original = std::fs::read(&codes).unwrap();
    std::fs::remove_file(&codes).unwrap();

    let store = Store::open(&root).unwrap();
    let err = store.collection("cases").err().unwrap().to_string();
    assert!(err.contains("v.sq8") && err.contains("missing"), "{err}");
    store.repair("cases").unwrap();
    // Codes are a function of the column: the rebuilt file is the same bytes.
    assert_eq!(std::fs::read(&codes).unwrap(), original);
    let cases = store.collection("cases").unwrap();
    assert_eq!(
        cases
            .search("v", &queries[1], &SearchParams::top(3))
            .unwrap()
            .len(),
        3
    );
}
