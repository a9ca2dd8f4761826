//! Shared helpers for the store's integration tests.
#![allow(dead_code)]

use medvec_store::{PayloadField, Record, Schema, Store, Value, VectorField};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn schema(dim: usize) -> Schema {
    Schema {
        vectors: vec![
            VectorField::parse(&format!("image:{dim}:cosine")).unwrap(),
            VectorField::parse(&format!("text:{dim}:cosine")).unwrap(),
        ],
        payload: vec![
            PayloadField::parse("dx:string").unwrap(),
            PayloadField::parse("age:int").unwrap(),
            PayloadField::parse("bucket:int").unwrap(),
        ],
    }
}

/// `n` unit vectors in `clusters` Gaussian clusters, deterministic for a seed.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0f32)).collect())
        .collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..clusters)];
            let v: Vec<f32> = c
                .iter()
                .map(|x| x + rng.random_range(-0.35..0.35f32))
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

pub fn records(vectors: &[Vec<f32>], offset: usize) -> Vec<Record> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let n = i + offset;
            Record::new(format!("case-{n:06}"))
                .with_vector("image", v.clone())
                .with_vector("text", v.iter().rev().copied().collect())
                .with_value("dx", Value::String(["mel", "nv", "bkl"][n % 3].into()))
                .with_value("age", Value::Int((n % 90) as i64))
                .with_value("bucket", Value::Int((n % 100) as i64))
        })
        .collect()
}

pub fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store")).unwrap();
    (dir, store)
}

/// All regular files under `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Recall@10 of graph search against exact search for `queries`.
pub fn graph_recall(cases: &medvec_store::Collection, queries: &[Vec<f32>], ef: usize) -> f64 {
    let mut exact = medvec_store::SearchParams::top(10);
    exact.exact = true;
    let mut graph = medvec_store::SearchParams::top(10);
    graph.ef = Some(ef);
    let got = cases.search_batch("image", queries, &graph).unwrap();
    let truth = cases.search_batch("image", queries, &exact).unwrap();
    let found: usize = got
        .iter()
        .zip(&truth)
        .map(|(g, t)| t.iter().filter(|h| g.iter().any(|x| x.id == h.id)).count())
        .sum();
    found as f64 / (10 * queries.len()) as f64
}
