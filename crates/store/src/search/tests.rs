//! A single query's two lanes on two cores answer exactly as a batch does, where the lanes run
//! one after the other.

use super::{SearchParams, LANE_JOINS, PARALLEL_LANE_ROWS};
use crate::{CollectionOptions, Record, Schema, Store, VectorField};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// 32 dimensions of uniform noise: on 8, every walk found the same hits whatever its bound, and
/// the test passed with the batch walking all segments under one bound (as before the lanes).
const DIM: usize = 32;

fn unit_rows(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0f32)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

#[test]
fn a_single_query_on_two_cores_answers_as_the_batch_does() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::create(&root).unwrap();
    // Four segments of one flush each, no merges: the largest first, then lanes of two and one
    // segments, the smaller lane just above the rows that earn it a second core.
    let flush = PARALLEL_LANE_ROWS + 100;
    let options = CollectionOptions {
        flush_rows: flush,
        flush_bytes: usize::MAX,
        merge_factor: 0,
        ..CollectionOptions::default()
    };
    let store = Store::open_with(&root, options).unwrap();
    let schema = Schema {
        vectors: vec![VectorField::parse(&format!("v:{DIM}:cosine")).unwrap()],
        payload: Vec::new(),
    };
    let cases = store.create_collection("cases", schema).unwrap();
    let rows = unit_rows(4 * flush, 7);
    for (chunk, vectors) in rows.chunks(flush).enumerate() {
        let records: Vec<Record> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Record::new(format!("r{}", chunk * flush + i)).with_vector("v", v.clone())
            })
            .collect();
        cases.upsert(&records).unwrap();
    }
    cases.flush().unwrap();
    assert_eq!(cases.stats().segments, 4);

    let queries = unit_rows(40, 8);
    // A narrow beam, so that each lane's bound changes what its walks find.
    for ef in [10, 24] {
        let params = SearchParams {
            ef: Some(ef),
            ..SearchParams::top(10)
        };
        let joins = LANE_JOINS.with(|j| j.get());
        let batch = cases.search_batch("v", &queries, &params).unwrap();
        assert_eq!(
            LANE_JOINS.with(|j| j.get()),
            joins,
            "a batch ran lanes in parallel"
        );
        for (query, expected) in queries.iter().zip(&batch) {
            let single = cases.search("v", query, &params).unwrap();
            assert_eq!(&single, expected, "ef {ef}");
        }
        let ran = LANE_JOINS.with(|j| j.get()) - joins;
        assert_eq!(
            ran,
            queries.len(),
            "single queries did not run their lanes in parallel"
        );
    }
}
