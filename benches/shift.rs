//! Shifted search at scale (issue 16): how much beam does a graph walk need when the alignment
//! shift is applied at read time, on a store of the search bench?
//!
//! ```sh
//! MEDVEC_BENCH_DATA_DIR=target/bench-data cargo bench --bench shift
//! ```
//!
//! It opens `medvec-store` (collection `bench`, cosine field `v`) and reads `base.npy` and
//! `queries.npy` beside it, as `cargo bench --bench search` leaves them. The store's rows play
//! the images and the queries the text: Δ (mean image − mean text) is taken as
//! `MEDVEC_BENCH_GAP` (default 0.8, about the image–text gap of CLIP-like encoders) times a unit
//! direction, either the rows' mean direction (the shift moves every row along what they share,
//! the hard case) or a fixed pseudo-random one. For λ in 1 and −0.5, the stored rows are compared
//! as `normalize(x − λ/2·Δ)` and the queries are `normalize(q + λ/2·Δ)`, as `search_shifted`
//! does, and the truth is the exact shifted top-10 (`exact: true`). Queries and rows come from
//! one distribution, so every λ here opens a gap of 0.8·|λ| where a real λ 1 closes one; what is
//! measured is how far a shift moves the walk off the graph's geometry.
//!
//! A shifted walk widens the beam it is given (`medvec_store::shifted_ef`), so the bench names
//! the beam it wants and passes the ef that widens to it: `MEDVEC_BENCH_BEAMS`, multiples of the
//! store's default ef (default `1,2,4`). Prints recall@10 and queries per CPU-second for each,
//! beside the unshifted search at the default ef. `MEDVEC_BENCH_QUERIES` caps the queries
//! (default 300).

#[path = "common/mod.rs"]
mod common;
use common::*;

use medvec_store::{shifted_ef, Collection, Hit, SearchParams, Store};
use std::path::PathBuf;
use std::time::Instant;

const K: usize = 10;
const COLLECTION: &str = "bench";
const FIELD: &str = "v";

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    normalise(&mut v);
    v
}

/// The mean of the rows after L2-normalising each, as a unit vector.
fn mean_direction(base: &[f32], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f64; dim];
    for row in base.chunks_exact(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (s, x) in sum.iter_mut().zip(row) {
            *s += f64::from(x / norm);
        }
    }
    normalised(sum.into_iter().map(|s| s as f32).collect())
}

fn random_direction(dim: usize) -> Vec<f32> {
    let mut rng = SplitMix(0x5348_4946_5400_0001);
    normalised((0..dim).map(|_| rng.unit() - 0.5).collect())
}

/// Fraction of the exact hits a search found.
fn recall(found: &[Vec<Hit>], exact: &[Vec<Hit>]) -> f64 {
    let hits: usize = found
        .iter()
        .zip(exact)
        .map(|(f, e)| e.iter().filter(|h| f.iter().any(|x| x.id == h.id)).count())
        .sum();
    hits as f64 / exact.iter().map(Vec::len).sum::<usize>() as f64
}

/// (recall, queries per CPU-second): one pass for the answers, then the median of three.
fn measure(
    collection: &Collection,
    queries: &[Vec<f32>],
    params: &SearchParams,
    exact: &[Vec<Hit>],
) -> (f64, f64) {
    let found = collection.search_batch(FIELD, queries, params).unwrap();
    let cpus = (0..3)
        .map(|_| {
            let start = cpu_seconds();
            std::hint::black_box(collection.search_batch(FIELD, queries, params).unwrap());
            cpu_seconds() - start
        })
        .collect();
    (recall(&found, exact), queries.len() as f64 / median(cpus))
}

/// The smallest ef whose shifted beam is at least `beam`.
fn ef_widening_to(beam: usize, ef_search: usize) -> usize {
    (1..=beam)
        .find(|&ef| shifted_ef(ef, ef_search) >= beam)
        .unwrap_or(beam)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let data = PathBuf::from(
        std::env::var("MEDVEC_BENCH_DATA_DIR").unwrap_or_else(|_| "target/bench-data".into()),
    );
    let gap = std::env::var("MEDVEC_BENCH_GAP")
        .ok()
        .and_then(|v| v.parse::<f32>().ok())
        .unwrap_or(0.8);
    let (base, [rows, dim]) = read_npy_f32(&data.join("base.npy")).unwrap();
    let (queries, [nq, _]) = read_npy_f32(&data.join("queries.npy")).unwrap();
    let queries: Vec<Vec<f32>> = queries
        .chunks_exact(dim)
        .take(env_usize("MEDVEC_BENCH_QUERIES", 300).min(nq))
        .map(<[f32]>::to_vec)
        .collect();
    let store = Store::open_read_only(data.join("medvec-store")).expect("open store");
    let collection = store.collection(COLLECTION).expect("collection");
    let schema = collection.schema();
    let field = schema
        .vectors
        .iter()
        .position(|v| v.name == FIELD)
        .expect("field v");
    let default_ef = collection.stats().default_ef[field];
    let ef_search = schema.vectors[field].hnsw.ef_search;
    let efs: Vec<usize> = std::env::var("MEDVEC_BENCH_BEAMS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|m| ef_widening_to(m.trim().parse::<usize>().unwrap() * default_ef, ef_search))
        .collect();
    eprintln!(
        "shift: {rows} × {dim}, {} queries, default ef {default_ef}, ‖Δ‖ {gap}",
        queries.len()
    );

    let mut exact_params = SearchParams::top(K);
    exact_params.exact = true;
    let truth = collection
        .search_batch(FIELD, &queries, &exact_params)
        .unwrap();
    let (r, qps) = measure(&collection, &queries, &SearchParams::top(K), &truth);
    eprintln!("shift: unshifted, ef default: recall@{K} {r:.4}, {qps:.0} queries/CPU-s");

    for (name, direction) in [
        ("mean direction", mean_direction(&base, dim)),
        ("random direction", random_direction(dim)),
    ] {
        for lambda in [1.0f32, -0.5] {
            let half: Vec<f32> = direction.iter().map(|d| d * gap * lambda / 2.0).collect();
            let shifted: Vec<Vec<f32>> = queries
                .iter()
                .map(|q| {
                    normalised(
                        normalised(q.clone())
                            .iter()
                            .zip(&half)
                            .map(|(x, h)| x + h)
                            .collect(),
                    )
                })
                .collect();
            let offset = Some(half.iter().map(|h| -h).collect::<Vec<f32>>());
            let exact = SearchParams {
                offset: offset.clone(),
                ..exact_params.clone()
            };
            let started = Instant::now();
            let truth = collection.search_batch(FIELD, &shifted, &exact).unwrap();
            let exact_s = started.elapsed().as_secs_f64();
            for &ef in &efs {
                let params = SearchParams {
                    ef: Some(ef),
                    offset: offset.clone(),
                    ..SearchParams::top(K)
                };
                let (r, qps) = measure(&collection, &shifted, &params, &truth);
                eprintln!(
                    "shift: {name}, λ {lambda}: ef {ef} (beam {}): recall@{K} {r:.4}, {qps:.0} queries/CPU-s (exact: {exact_s:.1} s)",
                    shifted_ef(ef, ef_search)
                );
            }
        }
    }
}
