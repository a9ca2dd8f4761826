//! Search benchmark: medvec against hnswlib, faiss-cpu and usearch on the same vectors, in the same
//! run.
//!
//! `cargo bench --bench search` generates (or reuses) 100,000 clustered 512-d unit vectors and
//! 1,000 queries under `target/bench-data/`, computes the exact top-10 by brute force, measures
//! medvec (build time, then recall@10 and QPS over an ef sweep after every build, open-to-first-
//! query and peak RSS in fresh processes), runs `tools/bench_peers.py` for hnswlib, faiss and usearch on
//! the same `.npy` files, and prints a markdown table with ratios. Times are reported both
//! wall-clock and per CPU-second, because the machine is shared. See `benches/README.md` for the
//! results and the knobs below.
//!
//! Environment:
//! - `MEDVEC_PYTHON`: interpreter with numpy, hnswlib, faiss (default `<workspace>/.venv/bin/python`)
//! - `MEDVEC_BENCH_N`, `MEDVEC_BENCH_DIM`, `MEDVEC_BENCH_QUERIES`, `MEDVEC_BENCH_CLUSTERS`:
//!   data size (defaults 100000, 512, 1000, 100)
//! - `MEDVEC_BENCH_REPEATS`: builds per system, median reported (default 3)
//! - `MEDVEC_BENCH_EFS`: ef sweep (default `16,32,64,128,256`)
//! - `MEDVEC_BENCH_SKIP_PEERS=1`: medvec only
//! - `MEDVEC_BENCH_DATA_DIR`: where the data, stores and reports go (default `target/bench-data`)
//! - `MEDVEC_BENCH_PEERS_FROM=PATH`: the peers' results of an earlier run on the same data (its
//!   `peers*.json`) instead of running them again (the report says so)
//! - `MEDVEC_BENCH_SKIP_HNSW_RS=1`: without the extra build and sweep with the `hnsw_rs` builder
//! - `MEDVEC_BENCH_AS_IMPORTED=1`: build as `medvec import` does (`CollectionOptions::bulk`: 8 MiB
//!   flushes, automatic merging, graphs deferred to one build at the end) instead of one flush
//!   into one segment
//! - `MEDVEC_BENCH_COMPACT=1`: the build ends with `compact` (as imported, one segment instead of
//!   one per tier; its time counts as build time)
//! - `MEDVEC_BENCH_QUANTIZE=sq8`: medvec's field is created with `Quantization::Sq8` (graph walks
//!   on int8 codes, exact f32 re-rank), its rows are labelled `medvec sq8`, and the int8 peers
//!   `usearch_i8` (usearch, dtype i8) and `faiss_sq8` (faiss `IndexHNSWSQ`, QT_8bit) run in the
//!   same run beside hnswlib, faiss and usearch. The store is kept in `medvec-store-sq8` (the f32
//!   run's `medvec-store` is left alone), the report in `report-sq8.md`, the peers' JSON in
//!   `peers-sq8.json`. `none` (or unset) is the f32 default; `sweep` honours it too
//! - `MEDVEC_BENCH_PEERS`: the peers to run, comma-separated (default `hnswlib,faiss,usearch`, or
//!   with `MEDVEC_BENCH_QUANTIZE=sq8` those plus `usearch_i8,faiss_sq8`)
//!
//! Sub-commands (used by the driver on itself, in fresh processes):
//! - `first-query STORE QUERIES EF`: open read-only, open the collection, search one query;
//!   prints the milliseconds taken as JSON
//! - `rss STORE QUERIES EF`: open and search every query; prints VmHWM (the peak), and RssAnon
//!   and RssFile at the end of the search, as JSON
//! - `build`: data generation and medvec build only (for profiling the graph build)
//! - `sweep`: the ef sweep of the store the last run built (for profiling the search), then
//!   the same queries without `ef` (`ef=default`: the store's default beam)
//! - `data`: generate (or check) the data set and its exact top-10 only (`benches/long.sh`)

#[path = "common/mod.rs"]
mod common;
use common::*;

#[path = "search/data.rs"]
mod data;
#[path = "search/markdown.rs"]
mod markdown;
#[path = "search/peers.rs"]
mod peers;
use data::*;
use markdown::*;
use peers::*;

use medvec_store::{
    CollectionOptions, GraphBuilder, HnswParams, Metric, Quantization, Record, Schema,
    SearchParams, Store, VectorField,
};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const K: usize = 10;
const COLLECTION: &str = "bench";
const FIELD: &str = "v";
const TARGET_RECALL: f64 = 0.95;
/// The peers `tools/bench_peers.py` can run, in the order of the report's ratio columns: first
/// the f32 peers (run by default, and always a column), then the int8 peers (run with
/// `MEDVEC_BENCH_QUANTIZE=sq8`, a column only when they ran).
const PEERS: [&str; 5] = ["hnswlib", "faiss", "usearch", "usearch_i8", "faiss_sq8"];
/// How many of [`PEERS`] are the f32 peers.
const F32_PEERS: usize = 3;

#[derive(Debug, Clone)]
struct Config {
    n: usize,
    dim: usize,
    queries: usize,
    clusters: usize,
    repeats: usize,
    efs: Vec<usize>,
    skip_peers: bool,
    /// Also build and sweep with the `hnsw_rs` builder, for comparison.
    with_hnsw_rs: bool,
    /// The bulk options of `medvec import` (flushes, merging, deferred graphs), not one flush.
    as_imported: bool,
    /// medvec's field quantisation (`MEDVEC_BENCH_QUANTIZE`).
    quantization: Quantization,
    /// The peers `tools/bench_peers.py` runs.
    peers: Vec<String>,
    data_dir: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let efs = std::env::var("MEDVEC_BENCH_EFS")
            .ok()
            .map(|v| {
                v.split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect::<Vec<usize>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec![16, 32, 64, 128, 256]);
        let quantization = match std::env::var("MEDVEC_BENCH_QUANTIZE") {
            Ok(v) if !v.trim().is_empty() => Quantization::parse(v.trim())
                .unwrap_or_else(|| panic!("MEDVEC_BENCH_QUANTIZE={v:?}: expected none or sq8")),
            _ => Quantization::None,
        };
        let peers = std::env::var("MEDVEC_BENCH_PEERS")
            .ok()
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<String>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| {
                let n = match quantization {
                    Quantization::None => F32_PEERS,
                    _ => PEERS.len(), // quantised: the int8 peers too
                };
                PEERS[..n].iter().map(|p| p.to_string()).collect()
            });
        Config {
            n: env_usize("MEDVEC_BENCH_N", 100_000),
            dim: env_usize("MEDVEC_BENCH_DIM", 512),
            queries: env_usize("MEDVEC_BENCH_QUERIES", 1_000),
            clusters: env_usize("MEDVEC_BENCH_CLUSTERS", 100),
            repeats: env_usize("MEDVEC_BENCH_REPEATS", 3).max(1),
            efs,
            skip_peers: std::env::var("MEDVEC_BENCH_SKIP_PEERS").is_ok_and(|v| v == "1"),
            with_hnsw_rs: !std::env::var("MEDVEC_BENCH_SKIP_HNSW_RS").is_ok_and(|v| v == "1"),
            as_imported: std::env::var("MEDVEC_BENCH_AS_IMPORTED").is_ok_and(|v| v == "1"),
            quantization,
            peers,
            data_dir: std::env::var_os("MEDVEC_BENCH_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace().join("target").join("bench-data")),
        }
    }

    /// `""` for f32, `"-sq8"` for SQ8: keeps a quantised run's store, report and peer results
    /// beside the f32 run's under `target/bench-data/`.
    fn suffix(&self) -> String {
        match self.quantization {
            Quantization::None => String::new(),
            q => format!("-{}", q.name()),
        }
    }

    /// medvec's name in the report: `medvec`, or `medvec sq8`.
    fn medvec_label(&self) -> String {
        match self.quantization {
            Quantization::None => "medvec".into(),
            q => format!("medvec {}", q.name()),
        }
    }

    /// The store directory of medvec's build (`medvec-store`, `medvec-store-sq8`), or of the
    /// `hnsw_rs` builder's (`medvec-store-hnsw_rs[-sq8]`).
    fn store_dir(&self, builder: GraphBuilder) -> PathBuf {
        let name = match builder {
            GraphBuilder::HnswRs => "medvec-store-hnsw_rs",
            _ => "medvec-store",
        };
        self.data_dir.join(format!("{name}{}", self.suffix()))
    }

    fn tag(&self) -> String {
        format!(
            "v{GENERATOR_VERSION}-n{}-d{}-q{}-c{}",
            self.n, self.dim, self.queries, self.clusters
        )
    }
}

// ---------------------------------------------------------------------------------------------
// medvec measurements

struct BuildTimes {
    import_s: f64,
    flush_s: f64,
    /// CPU time (user + system, all threads) of import + flush: robust to other load.
    cpu_s: f64,
}

/// `MEDVEC_BENCH_COMPACT=1`: the build ends with `compact` (one segment), timed with the flush.
fn compact_after_import() -> bool {
    std::env::var("MEDVEC_BENCH_COMPACT").is_ok_and(|v| v == "1")
}

/// Creates a store at `dir` (the field quantised as `quantization`), imports every vector
/// (batches of 5,000 upserts) and flushes one segment, which builds its HNSW graph; or,
/// `as_imported`, flushes and merges as the defaults make a user's import do.
fn build_medvec(
    dir: &Path,
    data: &Data,
    (dim, as_imported, quantization): (usize, bool, Quantization),
    builder: GraphBuilder,
) -> BuildTimes {
    let _ = std::fs::remove_dir_all(dir);
    drop(Store::create(dir).expect("create store"));
    let options = if as_imported {
        CollectionOptions::bulk()
    } else {
        CollectionOptions {
            flush_rows: usize::MAX,
            flush_bytes: usize::MAX,
            ..CollectionOptions::default()
        }
    };
    let store = Store::open_with(dir, options).expect("open store");
    let schema = Schema {
        vectors: vec![VectorField {
            name: FIELD.into(),
            dim,
            metric: Metric::Cosine,
            hnsw: HnswParams {
                m: 16,
                ef_construction: 200,
                builder,
                ..HnswParams::default()
            },
            quantization,
        }],
        payload: vec![],
    };
    let collection = store
        .create_collection(COLLECTION, schema)
        .expect("create collection");
    let cpu = cpu_seconds();
    let start = Instant::now();
    for (b, batch) in data.base.chunks(5_000 * dim).enumerate() {
        let records: Vec<Record> = batch
            .chunks_exact(dim)
            .enumerate()
            .map(|(j, v)| Record::new((b * 5_000 + j).to_string()).with_vector(FIELD, v.to_vec()))
            .collect();
        collection.upsert(&records).expect("upsert");
    }
    let import_s = start.elapsed().as_secs_f64();
    let flushed = Instant::now();
    collection.flush().expect("flush");
    if compact_after_import() {
        collection.compact().expect("compact");
    }
    let flush_s = flushed.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds() - cpu;
    eprintln!(
        "bench: {} segment(s) after the build",
        collection.stats().segments
    );
    store.close().expect("close");
    BuildTimes {
        import_s,
        flush_s,
        cpu_s,
    }
}

fn query_rows(queries: &[f32], dim: usize) -> Vec<Vec<f32>> {
    queries.chunks_exact(dim).map(|q| q.to_vec()).collect()
}

fn recall(hits: &[Vec<medvec_store::Hit>], truth: &[u32]) -> f64 {
    let mut found = 0usize;
    for (q, row) in hits.iter().enumerate() {
        let want = &truth[q * K..(q + 1) * K];
        found += row
            .iter()
            .filter_map(|h| h.id.parse::<u32>().ok())
            .filter(|id| want.contains(id))
            .count();
    }
    found as f64 / (hits.len() * K) as f64
}

#[derive(Debug, Clone)]
struct SweepPoint {
    ef: usize,
    /// Median over the builds.
    recall: f64,
    recall_min: f64,
    recall_max: f64,
    qps: f64,
    /// Queries per CPU-second (all threads): less sensitive to other load than `qps`.
    qps_cpu: f64,
}

fn sweep_medvec(dir: &Path, data: &Data, cfg: &Config) -> Vec<SweepPoint> {
    let store = Store::open_read_only(dir).expect("open store");
    let collection = store.collection(COLLECTION).expect("collection");
    let queries = query_rows(&data.queries, cfg.dim);
    let mut out = Vec::new();
    for &ef in &cfg.efs {
        let params = SearchParams {
            k: K,
            ef: Some(ef),
            ..SearchParams::default()
        };
        let (recall, qps, qps_cpu) = measure_point(&collection, &queries, &params, data, cfg);
        eprintln!(
            "bench: medvec ef={ef:<4} recall@{K}={recall:.4} QPS={qps:.0} queries/CPU-s={qps_cpu:.0}"
        );
        out.push(SweepPoint {
            ef,
            recall,
            recall_min: recall,
            recall_max: recall,
            qps,
            qps_cpu,
        });
    }
    out
}

/// Recall@10, QPS and queries per CPU-second of a search without `ef`, as a user's: the beam
/// is the store's default (`medvec_store::default_ef` of the largest graph).
fn measure_default_ef(dir: &Path, data: &Data, cfg: &Config) {
    let store = Store::open_read_only(dir).expect("open store");
    let collection = store.collection(COLLECTION).expect("collection");
    let queries = query_rows(&data.queries, cfg.dim);
    let params = SearchParams::top(K);
    let (recall, qps, qps_cpu) = measure_point(&collection, &queries, &params, data, cfg);
    eprintln!(
        "bench: medvec ef=default recall@{K}={recall:.4} QPS={qps:.0} queries/CPU-s={qps_cpu:.0}"
    );
}

/// One warm-up pass (faults in the pages this search touches) for the recall, then the median
/// of at least 5 timed passes: (recall@10, queries/s, queries per CPU-second).
fn measure_point(
    collection: &medvec_store::Collection,
    queries: &[Vec<f32>],
    params: &SearchParams,
    data: &Data,
    cfg: &Config,
) -> (f64, f64, f64) {
    let hits = collection.search_batch(FIELD, queries, params).unwrap();
    let r = recall(&hits, &data.truth);
    let (times, cpus): (Vec<f64>, Vec<f64>) = (0..cfg.repeats.max(5))
        .map(|_| {
            let (t, c) = (Instant::now(), cpu_seconds());
            let hits = collection.search_batch(FIELD, queries, params).unwrap();
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(hits);
            (s, cpu_seconds() - c)
        })
        .unzip();
    let n = queries.len() as f64;
    (r, n / median(times), n / median(cpus))
}

/// Per ef: the median recall and QPS over several builds' sweeps, and the recall range.
fn combine(sweeps: &[Vec<SweepPoint>]) -> Vec<SweepPoint> {
    let efs: Vec<usize> = sweeps[0].iter().map(|p| p.ef).collect();
    efs.into_iter()
        .map(|ef| {
            let points: Vec<&SweepPoint> = sweeps
                .iter()
                .filter_map(|s| s.iter().find(|p| p.ef == ef))
                .collect();
            let recalls: Vec<f64> = points.iter().map(|p| p.recall).collect();
            SweepPoint {
                ef,
                recall: median(recalls.clone()),
                recall_min: recalls.iter().copied().fold(f64::INFINITY, f64::min),
                recall_max: recalls.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                qps: median(points.iter().map(|p| p.qps).collect()),
                qps_cpu: median(points.iter().map(|p| p.qps_cpu).collect()),
            }
        })
        .collect()
}

/// The first sweep point reaching the target recall.
fn at_target(points: &[SweepPoint]) -> Option<&SweepPoint> {
    points.iter().find(|p| p.recall >= TARGET_RECALL)
}

fn vm_hwm_kib() -> u64 {
    status_kib("VmHWM:")
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Child: open the store read-only, open the collection, run one search (then a second one, to
/// show what the first paid once).
fn child_first_query(store: &Path, queries: &Path, ef: usize) {
    let (q, [_, dim]) = read_npy_f32(queries).expect("queries");
    let params = SearchParams {
        k: K,
        ef: Some(ef),
        ..SearchParams::default()
    };
    let t = Instant::now();
    let s = Store::open_read_only(store).expect("open");
    let opened = t.elapsed();
    let c = s.collection(COLLECTION).expect("collection");
    let collected = t.elapsed();
    let hits = c.search(FIELD, &q[..dim], &params).expect("search");
    let first = t.elapsed();
    assert_eq!(hits.len(), K);
    let t2 = Instant::now();
    let hits = c.search(FIELD, &q[dim..2 * dim], &params).expect("search");
    let second = t2.elapsed();
    assert_eq!(hits.len(), K);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "{{\"first_query_ms\": {}, \"open_ms\": {}, \"collection_ms\": {}, \"search_ms\": {}, \"second_search_ms\": {}}}",
        ms(first),
        ms(opened),
        ms(collected - opened),
        ms(first - collected),
        ms(second)
    );
}

/// Child: open and search every query (three passes), then report the peak RSS and the RSS at
/// the end (anonymous and file-backed).
fn child_rss(store: &Path, queries: &Path, ef: usize) {
    let (q, [_, dim]) = read_npy_f32(queries).expect("queries");
    let queries = query_rows(&q, dim);
    drop(q);
    let baseline = status_kib("VmRSS:");
    let s = Store::open_read_only(store).expect("open");
    let c = s.collection(COLLECTION).expect("collection");
    let params = SearchParams {
        k: K,
        ef: Some(ef),
        ..SearchParams::default()
    };
    for _ in 0..3 {
        std::hint::black_box(c.search_batch(FIELD, &queries, &params).expect("search"));
    }
    // VmHWM is the peak; RssAnon (the process's own memory) and RssFile (file pages mapped in:
    // the store's mmapped files, the binary) are read at the end of the search.
    println!(
        "{{\"vm_hwm_kib\": {}, \"baseline_kib\": {baseline}, \"rss_anon_kib\": {}, \"rss_file_kib\": {}}}",
        vm_hwm_kib(),
        status_kib("RssAnon:"),
        status_kib("RssFile:")
    );
}

fn run_child(args: &[&str]) -> serde_json::Value {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe).args(args).output().expect("spawn child");
    if !out.status.success() {
        panic!(
            "child {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).expect("child JSON")
}

/// Builds `cfg.repeats` times with `builder` into `dir`, sweeping every build (parallel graph
/// builds are not deterministic, so the report takes medians).
fn builds_and_sweeps(
    dir: &Path,
    data: &Data,
    cfg: &Config,
    builder: GraphBuilder,
    build_only: bool,
) -> (Vec<BuildTimes>, Vec<Vec<SweepPoint>>) {
    let mut builds = Vec::new();
    let mut sweeps = Vec::new();
    for i in 0..cfg.repeats {
        let t = build_medvec(
            dir,
            data,
            (cfg.dim, cfg.as_imported, cfg.quantization),
            builder,
        );
        eprintln!(
            "bench: medvec ({builder:?} builder) build {}/{}: import {:.1} s + flush (segment + HNSW graph) {:.1} s = {:.1} s, {:.1} CPU-s",
            i + 1,
            cfg.repeats,
            t.import_s,
            t.flush_s,
            t.import_s + t.flush_s,
            t.cpu_s
        );
        builds.push(t);
        if !build_only {
            sweeps.push(sweep_medvec(dir, data, cfg));
        }
    }
    (builds, sweeps)
}

/// The same store and search built with the `hnsw_rs` crate's builder: build time and sweep only
/// (opening and memory do not depend on the builder).
fn hnsw_rs_row(data: &Data, cfg: &Config) -> Row {
    let dir = cfg.store_dir(GraphBuilder::HnswRs);
    let (builds, sweeps) = builds_and_sweeps(&dir, data, cfg, GraphBuilder::HnswRs, false);
    let sweep = combine(&sweeps);
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        name: format!("{}, hnsw_rs builder", cfg.medvec_label()),
        build_s: median(builds.iter().map(|b| b.import_s + b.flush_s).collect()),
        build_cpu_s: median(builds.iter().map(|b| b.cpu_s).collect()),
        at_target: at_target(&sweep).cloned(),
        first_query_ms: f64::NAN,
        vm_hwm_mib: f64::NAN,
        delta_mib: f64::NAN,
        rss_anon_mib: f64::NAN,
        rss_file_mib: f64::NAN,
        sweep,
    }
}

fn main() {
    // Two threads everywhere, as for the peers (rayon reads this when its pool starts).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("first-query") => {
            return child_first_query(
                Path::new(&args[1]),
                Path::new(&args[2]),
                args[3].parse().unwrap(),
            )
        }
        Some("rss") => {
            return child_rss(
                Path::new(&args[1]),
                Path::new(&args[2]),
                args[3].parse().unwrap(),
            )
        }
        _ => {}
    }
    if args.first().is_some_and(|a| a == "data") {
        load_or_generate(&Config::from_env());
        return;
    }
    if args.first().is_some_and(|a| a == "sweep") {
        let cfg = Config::from_env();
        let data = load_or_generate(&cfg);
        sweep_medvec(&cfg.store_dir(GraphBuilder::Medvec), &data, &cfg);
        measure_default_ef(&cfg.store_dir(GraphBuilder::Medvec), &data, &cfg);
        return;
    }
    let build_only = args.first().is_some_and(|a| a == "build");
    let load_start = loadavg();
    let cfg = Config::from_env();
    let data = load_or_generate(&cfg);

    let store_dir = cfg.store_dir(GraphBuilder::Medvec);
    let (builds, sweeps) =
        builds_and_sweeps(&store_dir, &data, &cfg, GraphBuilder::Medvec, build_only);
    let build_s = median(builds.iter().map(|b| b.import_s + b.flush_s).collect());
    let build_cpu_s = median(builds.iter().map(|b| b.cpu_s).collect());
    if build_only {
        eprintln!(
            "bench: medvec build median {build_s:.1} s, {build_cpu_s:.1} CPU-s (import {:.1} s, flush {:.1} s)",
            median(builds.iter().map(|b| b.import_s).collect()),
            median(builds.iter().map(|b| b.flush_s).collect())
        );
        return;
    }
    let sweep = combine(&sweeps);
    let ef_target = at_target(&sweep).map_or(*cfg.efs.last().unwrap(), |p| p.ef);
    let queries_npy = npy_path(&cfg, "queries");
    let (store_arg, queries_arg, ef_arg) = (
        store_dir.to_str().unwrap(),
        queries_npy.to_str().unwrap(),
        ef_target.to_string(),
    );
    run_child(&["first-query", store_arg, queries_arg, &ef_arg]); // warms the page cache
    let firsts: Vec<serde_json::Value> = (0..7)
        .map(|_| run_child(&["first-query", store_arg, queries_arg, &ef_arg]))
        .collect();
    let part = |key: &str| median(firsts.iter().map(|v| v[key].as_f64().unwrap()).collect());
    let first_query_ms = part("first_query_ms");
    eprintln!(
        "bench: medvec open-to-first-query {first_query_ms:.2} ms = open_read_only {:.2} + collection() {:.2} + first search {:.2} (a second search: {:.2} ms)",
        part("open_ms"),
        part("collection_ms"),
        part("search_ms"),
        part("second_search_ms")
    );
    let rss: Vec<serde_json::Value> = (0..3)
        .map(|_| run_child(&["rss", store_arg, queries_arg, &ef_arg]))
        .collect();
    let kib = |key: &str| median(rss.iter().map(|v| v[key].as_f64().unwrap()).collect());
    let (hwm, base) = (kib("vm_hwm_kib"), kib("baseline_kib"));
    eprintln!(
        "bench: medvec peak RSS VmHWM {:.0} MiB (ef={ef_target})",
        hwm / 1024.0
    );
    let mut rows = vec![Row {
        name: cfg.medvec_label(),
        build_s,
        build_cpu_s,
        at_target: at_target(&sweep).cloned(),
        first_query_ms,
        vm_hwm_mib: hwm / 1024.0,
        delta_mib: (hwm - base) / 1024.0,
        rss_anon_mib: kib("rss_anon_kib") / 1024.0,
        rss_file_mib: kib("rss_file_kib") / 1024.0,
        sweep,
    }];
    if cfg.with_hnsw_rs {
        rows.push(hnsw_rs_row(&data, &cfg));
    }
    if !cfg.skip_peers {
        for p in run_peers(&cfg) {
            eprintln!(
                "bench: {} build runs {:?} s, index file {} bytes",
                p.name, p.build_runs_s, p.index_bytes
            );
            rows.push(Row {
                name: p.name.clone(),
                build_s: p.build_s,
                build_cpu_s: p.build_cpu_s,
                at_target: at_target(&p.sweep).cloned(),
                first_query_ms: p.first_query_ms,
                vm_hwm_mib: p.vm_hwm_kib / 1024.0,
                delta_mib: (p.vm_hwm_kib - p.baseline_kib) / 1024.0,
                rss_anon_mib: p.rss_anon_kib / 1024.0,
                rss_file_mib: p.rss_file_kib / 1024.0,
                sweep: p.sweep,
            });
        }
    }
    let text = report(&cfg, &rows, &load_start);
    println!("{text}");
    let _ = std::fs::write(
        cfg.data_dir.join(format!("report{}.md", cfg.suffix())),
        &text,
    );
}
