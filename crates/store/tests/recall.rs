//! Recall of HNSW search against exact search, with and without selective filters.

mod common;

use common::*;
use medvec_store::{Collection, Filter, GraphBuilder, SearchParams, Store};
use std::sync::{Arc, OnceLock};

/// One store shared by the tests: 10,000 clustered 64-d records in one segment with graphs,
/// plus 200 queries drawn from the same clusters, as a clinic's new cases would be.
type Fixture = (tempfile::TempDir, Store, Arc<Collection>, Vec<Vec<f32>>);

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (dir, store) = new_store();
        let cases = store.create_collection("cases", schema(64)).unwrap();
        let mut vectors = clustered(10_200, 64, 40, 11);
        let queries = vectors.split_off(10_000);
        cases.upsert(&records(&vectors, 0)).unwrap();
        cases.flush().unwrap();
        (dir, store, cases, queries)
    })
}

fn recall_at_10(filter: Option<&str>) -> f64 {
    let (_, _, cases, queries) = fixture();
    let mut approx = SearchParams::top(10);
    approx.filter = filter.map(|f| Filter::parse(f).unwrap());
    let mut exact = approx.clone();
    exact.exact = true;
    let got = cases.search_batch("image", queries, &approx).unwrap();
    let truth = cases.search_batch("image", queries, &exact).unwrap();
    let (mut found, mut total) = (0, 0);
    for (g, t) in got.iter().zip(&truth) {
        total += t.len();
        found += t.iter().filter(|h| g.iter().any(|x| x.id == h.id)).count();
    }
    assert!(
        total >= queries.len() * 5,
        "the filter left too few rows to measure"
    );
    found as f64 / total as f64
}

#[test]
fn default_parameters_reach_recall_095() {
    let recall = recall_at_10(None);
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn recall_holds_under_a_1_percent_filter() {
    let recall = recall_at_10(Some("bucket = 7"));
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn recall_holds_under_a_47_percent_filter_walked_in_the_graph() {
    let recall = recall_at_10(Some("bucket < 70 and dx != \"nv\""));
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn filtered_hits_all_match_the_filter() {
    let (_, _, cases, queries) = fixture();
    let mut params = SearchParams::top(10);
    params.filter = Some(Filter::parse("bucket = 7").unwrap());
    for hits in cases
        .search_batch("image", &queries[..20], &params)
        .unwrap()
    {
        for hit in hits {
            let n: usize = hit.id.trim_start_matches("case-").parse().unwrap();
            assert_eq!(n % 100, 7, "{} does not match bucket = 7", hit.id);
        }
    }
}

/// Recall@10 of graph search against exact search on the `image` field of a collection built
/// with `builder`, where every third record has no image vector, after a reopen.
fn recall_with_a_missing_modality(builder: GraphBuilder) -> f64 {
    let (dir, store) = new_store();
    let mut schema = schema(32);
    schema.vectors[0].hnsw.builder = builder;
    let cases = store.create_collection("cases", schema).unwrap();
    let mut vectors = clustered(4_100, 32, 20, 5);
    let queries = vectors.split_off(4_000);
    let mut batch = records(&vectors, 0);
    for record in batch.iter_mut().step_by(3) {
        record.vectors.remove("image");
    }
    cases.upsert(&batch).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    store.verify().unwrap();
    let cases = store.collection("cases").unwrap();
    let approx = SearchParams::top(10);
    let mut exact = approx.clone();
    exact.exact = true;
    let got = cases.search_batch("image", &queries, &approx).unwrap();
    let truth = cases.search_batch("image", &queries, &exact).unwrap();
    let mut found = 0;
    for (g, t) in got.iter().zip(&truth) {
        assert!(g.iter().all(|h| cases
            .get(&h.id)
            .unwrap()
            .unwrap()
            .vectors
            .contains_key("image")));
        found += t.iter().filter(|h| g.iter().any(|x| x.id == h.id)).count();
    }
    found as f64 / (10 * queries.len()) as f64
}

#[test]
fn medvec_builder_handles_rows_without_the_field() {
    let recall = recall_with_a_missing_modality(GraphBuilder::Medvec);
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn hnsw_rs_builder_handles_rows_without_the_field() {
    let recall = recall_with_a_missing_modality(GraphBuilder::HnswRs);
    assert!(recall >= 0.95, "recall@10 {recall}");
}

/// A search without `ef` walks a graph of more than `EF_SEARCH_ROWS` rows with the wider beam
/// `default_ef` gives, not the field's `ef_search`: its answers are those of that beam named
/// explicitly, and differ from those of `ef_search` itself.
#[test]
fn the_default_beam_grows_with_the_graph() {
    use medvec_store::{
        default_ef, CollectionOptions, Record, Schema, VectorField, EF_SEARCH_ROWS,
    };
    let rows = EF_SEARCH_ROWS + 20_000;
    let mut field = VectorField::parse("image:8:cosine").unwrap();
    // A small graph and a narrow beam keep the build short and make the two beams' answers differ.
    (
        field.hnsw.m,
        field.hnsw.ef_construction,
        field.hnsw.ef_search,
    ) = (6, 24, 10);
    let schema = Schema {
        vectors: vec![field],
        payload: vec![],
    };
    let options = CollectionOptions {
        flush_rows: rows,
        flush_bytes: 1 << 30,
        ..CollectionOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    Store::create(dir.path().join("s")).unwrap();
    let store = Store::open_with(dir.path().join("s"), options).unwrap();
    let cases = store.create_collection("cases", schema).unwrap();
    let mut vectors = clustered(rows + 300, 8, 30, 17);
    let queries = vectors.split_off(rows);
    let records: Vec<Record> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("r{i}")).with_vector("image", v))
        .collect();
    cases.upsert(&records).unwrap();
    cases.flush().unwrap();
    assert_eq!(cases.stats().segments, 1);

    let wider = default_ef(10, rows);
    assert!(wider > 10, "default_ef(10, {rows}) = {wider}");
    assert_eq!(cases.stats().default_ef, vec![wider]);
    let answers = |ef: Option<usize>| {
        let mut params = SearchParams::top(10);
        params.ef = ef;
        cases.search_batch("image", &queries, &params).unwrap()
    };
    let default = answers(None);
    assert_eq!(default, answers(Some(wider)));
    assert_ne!(default, answers(Some(10)));
}
