//! Columns of unit vectors (FORMAT.md §4.4, flag `UNIT_ROWS`): the writer records the flag only
//! when every row is a unit vector up to rounding, and a graph walk that skips the norms still
//! returns exact scores.

mod common;

use common::*;
use medvec_store::{SearchParams, Store};
use std::path::Path;

const ROWS: usize = 6000;
const DIM: usize = 64;
/// Within the writer's rounding tolerance (1e-5), but far above f32 noise in a score: a walk that
/// ranked rows without their norms and returned those distances would be off by about this much.
const STRETCH: f32 = 1.0 + 8e-6;

/// The column flags word (kind word 2, header bytes 52..60) of field `field`'s column.
fn column_flags(store_dir: &Path, collection: &str, field: &str) -> u64 {
    let dir = store_dir.join("collections").join(collection);
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .expect("a segment");
    let bytes = std::fs::read(segment.path().join(format!("{field}.f32"))).unwrap();
    u64::from_le_bytes(bytes[52..60].try_into().unwrap())
}

fn scaled(vectors: &[Vec<f32>], by: f32) -> Vec<Vec<f32>> {
    vectors
        .iter()
        .map(|v| v.iter().map(|x| x * by).collect())
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn the_flag_is_set_for_unit_rows_only() {
    let (_dir, store) = new_store();
    let vectors = clustered(ROWS, DIM, 8, 5);
    for (name, by) in [("unit", STRETCH), ("doubled", 2.0)] {
        let cases = store.create_collection(name, schema(DIM)).unwrap();
        cases.upsert(&records(&scaled(&vectors, by), 0)).unwrap();
        cases.flush().unwrap();
    }
    assert_eq!(column_flags(store.path(), "unit", "image") & 1, 1);
    assert_eq!(column_flags(store.path(), "doubled", "image") & 1, 0);
}

#[test]
fn a_walk_over_unit_rows_returns_exact_scores() {
    let (_dir, store) = new_store();
    let vectors = scaled(&clustered(ROWS, DIM, 8, 6), STRETCH);
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    cases.upsert(&records(&vectors, 0)).unwrap();
    cases.flush().unwrap();
    assert_eq!(column_flags(store.path(), "cases", "image") & 1, 1);
    let reopened = Store::open_read_only(store.path()).unwrap();
    let cases = reopened.collection("cases").unwrap();
    for q in (0..ROWS).step_by(500) {
        let query = &vectors[q];
        let hits = cases
            .search("image", query, &SearchParams::top(10))
            .unwrap();
        assert_eq!(hits.len(), 10);
        for hit in hits {
            let row: usize = hit.id["case-".len()..].parse().unwrap();
            let expected = cosine(query, &vectors[row]);
            assert!(
                (hit.score as f64 - expected).abs() < 2e-6,
                "query {q}, {}: score {} against exact {expected}",
                hit.id,
                hit.score
            );
        }
    }
}
