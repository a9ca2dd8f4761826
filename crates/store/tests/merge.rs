//! Automatic merging: segments stay few however many flushes a writer makes, and a merge loses,
//! duplicates or changes nothing a reader can see.

mod common;

use common::*;
use medvec_store::{Collection, CollectionOptions, SearchParams, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const DIM: usize = 16;
const FLUSH: usize = 1_100;

fn open(root: &Path, merge_factor: usize) -> Store {
    let options = CollectionOptions {
        flush_rows: FLUSH,
        merge_factor,
        ..CollectionOptions::default()
    };
    Store::open_with(root, options).unwrap()
}

/// A new store at `root` opened with `merge_factor`, its empty `cases` collection, and the
/// vectors of five flushes.
fn five_flushes_of_cases(
    root: &Path,
    merge_factor: usize,
) -> (Store, Arc<Collection>, Vec<Vec<f32>>) {
    Store::create(root).unwrap();
    let store = open(root, merge_factor);
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    (store, cases, clustered(5 * FLUSH, DIM, 6, 5))
}

/// Upserts flush number `flush` of `vectors`: FLUSH records, which the writer flushes.
fn write_flush(cases: &Collection, vectors: &[Vec<f32>], flush: usize) {
    let rows = &vectors[flush * FLUSH..(flush + 1) * FLUSH];
    cases.upsert(&records(rows, flush * FLUSH)).unwrap();
}

fn segment_dirs(root: &Path) -> usize {
    std::fs::read_dir(root.join("collections").join("cases"))
        .or_else(|_| std::fs::read_dir(root.join("cases")))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
                .count()
        })
        .unwrap_or(0)
}

/// Rows of each segment, from the manifest's JSON body (after its 64-byte header).
fn segment_rows(root: &Path) -> Vec<usize> {
    let dir = ["collections/cases", "cases"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.join("MANIFEST").exists())
        .unwrap();
    let bytes = std::fs::read(dir.join("MANIFEST")).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes[64..]).unwrap();
    manifest["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rows"].as_u64().unwrap() as usize)
        .collect()
}

fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    1.0 - dot / (norm(a) * norm(b))
}

#[test]
fn twenty_flushes_end_in_a_few_segments_and_every_record_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::create(&root).unwrap();
    let store = open(&root, 4);
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    let vectors = clustered(20 * FLUSH, DIM, 12, 31);
    // What the collection must hold: id → image vector.
    let mut expected: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let replacement = clustered(40, DIM, 3, 99);
    for flush in 0..20 {
        let batch = records(&vectors[flush * FLUSH..(flush + 1) * FLUSH], flush * FLUSH);
        for record in &batch {
            expected.insert(record.id.clone(), record.vectors["image"].clone());
        }
        cases.upsert(&batch).unwrap();
        if flush % 5 == 2 {
            // Deletes and replacements of rows already in segments, some about to be merged.
            let doomed: Vec<String> = (0..30)
                .map(|n| format!("case-{:06}", n * 37 + flush))
                .collect();
            cases.delete(&doomed).unwrap();
            doomed.iter().for_each(|id| {
                expected.remove(id);
            });
            let moved = records(&replacement[flush..flush + 10], 500 + flush * 13);
            for record in &moved {
                expected.insert(record.id.clone(), record.vectors["image"].clone());
            }
            cases.upsert(&moved).unwrap();
        }
    }
    cases.flush().unwrap();
    let stats = cases.stats();
    // Five flushes of a tier merge into one segment of the next: four of about 5,500 rows
    // after twenty, and the last flush's few rows beside them.
    assert!(
        stats.segments <= 5,
        "{} segments after 20 flushes: {:?}",
        stats.segments,
        segment_rows(&root)
    );
    assert!(
        stats.merged_rows >= 4 * 5 * FLUSH as u64 - 200,
        "{} rows merged",
        stats.merged_rows
    );
    assert_eq!(stats.count, expected.len());
    assert_eq!(
        segment_dirs(&root),
        stats.segments,
        "merged-away segments are removed"
    );
    check_contents(&cases, &expected);
    store.verify().unwrap();
    drop(cases);
    drop(store);
    let reopened = Store::open(&root).unwrap();
    check_contents(&reopened.collection("cases").unwrap(), &expected);
}

fn check_contents(cases: &medvec_store::Collection, expected: &BTreeMap<String, Vec<f32>>) {
    let mut seen = 0;
    cases
        .scan(|record| {
            assert_eq!(
                Some(&record.vectors["image"]),
                expected.get(&record.id),
                "{}",
                record.id
            );
            seen += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, expected.len(), "every record once");
    for id in expected.keys().step_by(97) {
        assert!(cases.get(id).unwrap().is_some(), "{id}");
    }
    assert!(
        cases.get("case-000002").unwrap().is_none(),
        "a deleted record stays deleted"
    );
    // Exact search equals brute force; graph search finds the exact top 10 nearly always.
    let mut found = 0;
    let queries: Vec<&Vec<f32>> = expected.values().step_by(700).collect();
    for query in &queries {
        let mut truth: Vec<(f32, &String)> = expected
            .iter()
            .map(|(id, v)| (cosine_distance(query, v), id))
            .collect();
        truth.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        let mut exact = SearchParams::top(10);
        exact.exact = true;
        let hits = cases.search("image", query, &exact).unwrap();
        for (hit, (distance, _)) in hits.iter().zip(&truth) {
            assert!(
                (1.0 - hit.score - distance).abs() < 1e-4,
                "{} vs {distance}",
                hit.score
            );
        }
        let top: Vec<&String> = truth[..10].iter().map(|t| t.1).collect();
        let hits = cases
            .search("image", query, &SearchParams::top(10))
            .unwrap();
        found += hits.iter().filter(|h| top.contains(&&h.id)).count();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    assert!(recall >= 0.95, "recall@10 {recall}");
    // The running sums survive merges: they equal a brute-force sum over the live rows.
    let sum = cases.field_sum("image").unwrap();
    assert_eq!(sum.count as usize, expected.len());
    for d in 0..DIM {
        let want: f64 = expected
            .values()
            .map(|v| f64::from(v[d]) / v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt())
            .sum();
        assert!((sum.sum[d] - want).abs() < 1e-6, "dimension {d}");
    }
}

#[test]
fn a_reader_keeps_its_version_while_the_writer_merges() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let (_store, cases, vectors) = five_flushes_of_cases(&root, 4);
    (0..4).for_each(|flush| write_flush(&cases, &vectors, flush));
    assert_eq!(cases.stats().segments, 4);
    let reader = Store::open_read_only(&root).unwrap();
    let before = reader.collection("cases").unwrap();
    write_flush(&cases, &vectors, 4);
    assert_eq!(
        cases.stats().segments,
        1,
        "four segments beside the largest: all merge into it"
    );
    // The reader still answers from the segments it mapped, which are gone from the directory.
    assert_eq!(before.len(), 4 * FLUSH);
    assert!(before.get("case-000001").unwrap().is_some());
    let hits = before
        .search("image", &vectors[5], &SearchParams::top(1))
        .unwrap();
    assert_eq!(hits[0].id, "case-000005");
    let after = Store::open_read_only(&root)
        .unwrap()
        .collection("cases")
        .unwrap();
    assert_eq!(after.len(), 5 * FLUSH);
    assert_eq!(after.stats().segments, 1);
}

#[test]
fn a_merge_factor_of_zero_keeps_every_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, cases, vectors) = five_flushes_of_cases(&dir.path().join("store"), 0);
    (0..5).for_each(|flush| write_flush(&cases, &vectors, flush));
    assert_eq!(cases.stats().segments, 5);
}

/// `compact` writes segments of at most `segment_rows` live rows (with `rewrite_bytes` 0) from
/// runs of consecutive segments, reading the rows in place; deleted rows are dropped, a run whose
/// largest segment has deletes is rebuilt and the others extend it, and nothing else changes.
#[test]
fn compaction_splits_at_segment_rows_and_keeps_every_live_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::create(&root).unwrap();
    let options = CollectionOptions {
        flush_rows: FLUSH,
        merge_factor: 0,
        segment_rows: 2_500,
        rewrite_bytes: 0,
        ..CollectionOptions::default()
    };
    let store = Store::open_with(&root, options).unwrap();
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    let vectors = clustered(5 * FLUSH, DIM, 6, 5);
    let mut expected: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for flush in 0..5 {
        let batch = records(&vectors[flush * FLUSH..(flush + 1) * FLUSH], flush * FLUSH);
        for record in &batch {
            expected.insert(record.id.clone(), record.vectors["image"].clone());
        }
        cases.upsert(&batch).unwrap();
    }
    let mut doomed: Vec<String> = (0..30).map(|n| format!("case-{:06}", n * 37)).collect();
    doomed.push("case-000002".into());
    cases.delete(&doomed).unwrap();
    doomed.iter().for_each(|id| {
        expected.remove(id);
    });
    assert_eq!(segment_rows(&root), [FLUSH; 5]);
    cases.compact().unwrap();
    let first = 2 * FLUSH - doomed.len();
    assert_eq!(segment_rows(&root), [first, 2 * FLUSH, FLUSH]);
    assert_eq!(
        segment_dirs(&root),
        3,
        "compacted-away segments are removed"
    );
    check_contents(&cases, &expected);
    drop((cases, store));
    let store = open(&root, 0);
    check_contents(&store.collection("cases").unwrap(), &expected);
}

/// The tail is bounded by bytes as well as rows, so a writer of large records flushes sooner.
#[test]
fn a_tail_of_large_records_flushes_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::create(&root).unwrap();
    let options = CollectionOptions {
        flush_bytes: 1 << 20,
        merge_factor: 0,
        ..CollectionOptions::default()
    };
    let store = Store::open_with(&root, options).unwrap();
    let cases = store.create_collection("cases", schema(256)).unwrap();
    // Two 256-d vectors per record: about 2 KiB each, so 1 MiB holds about 500.
    let vectors = clustered(2_000, 256, 4, 8);
    for chunk in 0..20 {
        cases
            .upsert(&records(
                &vectors[chunk * 100..(chunk + 1) * 100],
                chunk * 100,
            ))
            .unwrap();
    }
    let stats = cases.stats();
    assert!(stats.segments >= 3, "{} segments", stats.segments);
    assert!(
        stats.unflushed < 600,
        "{} rows in the tail",
        stats.unflushed
    );
    assert_eq!(stats.count, 2_000);
}

/// Filtered search across several graph-sized segments: at 1% selectivity (the planner scans
/// the matching rows exactly) and at 20% (a filtered graph walk), recall@10 against an exact
/// filtered search stays at or above 0.95, and every hit matches the filter.
#[test]
fn filtered_search_keeps_recall_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::create(&root).unwrap();
    let options = CollectionOptions {
        flush_rows: 5_000,
        merge_factor: 0,
        ..CollectionOptions::default()
    };
    let store = Store::open_with(&root, options).unwrap();
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    let vectors = clustered(20_000, DIM, 8, 11);
    for (i, chunk) in vectors.chunks(5_000).enumerate() {
        cases.upsert(&records(chunk, i * 5_000)).unwrap();
    }
    assert_eq!(segment_dirs(&root), 4);
    for (filter, selectivity) in [("bucket = 7", 0.01), ("bucket < 20", 0.20)] {
        let mut graph = SearchParams::top(10);
        graph.filter = Some(medvec_store::Filter::parse(filter).unwrap());
        let mut exact = graph.clone();
        exact.exact = true;
        let queries: Vec<Vec<f32>> = vectors.iter().step_by(397).take(50).cloned().collect();
        let got = cases.search_batch("image", &queries, &graph).unwrap();
        let truth = cases.search_batch("image", &queries, &exact).unwrap();
        let mut found = 0;
        for (g, t) in got.iter().zip(&truth) {
            assert_eq!(t.len(), 10);
            for hit in g {
                let n: usize = hit.id["case-".len()..].parse().unwrap();
                let bucket = n % 100;
                assert!(
                    if selectivity < 0.1 {
                        bucket == 7
                    } else {
                        bucket < 20
                    },
                    "{filter}: {}",
                    hit.id
                );
            }
            found += t.iter().filter(|h| g.iter().any(|x| x.id == h.id)).count();
        }
        let recall = found as f64 / (10 * queries.len()) as f64;
        assert!(recall >= 0.95, "{filter}: recall@10 {recall}");
    }
}

/// The tier of a segment of `rows` rows with merge factor 4 (`collection/merge.rs`): 0 below
/// 1,024 rows, then one more per factor of 4.
fn tier(rows: usize) -> u32 {
    if rows < 1_024 {
        0
    } else {
        1 + (rows / 1_024).ilog(4)
    }
}

/// Issue 16: small segments merge among themselves, so across many flushes the live segments
/// stay at most four per size tier (logarithmic in the rows), each merge joins segments of one
/// tier only, and the merges rewrite each row at most once per tier (counted by the writer).
#[test]
fn many_flushes_keep_few_segments_and_rewrite_each_row_once_per_tier() {
    const FLUSHES: usize = 26;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::create(&root).unwrap();
    let store = open(&root, 4);
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    let vectors = clustered(FLUSHES * FLUSH, DIM, 10, 17);
    for flush in 0..FLUSHES {
        write_flush(&cases, &vectors, flush);
        let rows = segment_rows(&root);
        for t in 0..=tier((flush + 1) * FLUSH) {
            let in_tier = rows.iter().filter(|&&r| tier(r) == t).count();
            assert!(
                in_tier <= 4,
                "after flush {flush}: {in_tier} in tier {t}: {rows:?}"
            );
        }
    }
    // 26 flushes of 1,100 rows (tier 1): 5 merges into 5,500-row segments (tier 2) and one of
    // those five into 27,500 (tier 3), 55,000 rows rewritten in all. Merging four flushes at a
    // time into the largest segment rewrote 1,100 × (1 + 4k) rows at its k-th merge, 99,000
    // by flush 25.
    let n = (FLUSHES * FLUSH) as u64;
    let stats = cases.stats();
    assert_eq!(segment_rows(&root), [27_500, 1_100]);
    assert_eq!(stats.merged_rows, 5 * 5_500 + 27_500);
    assert!(stats.merged_rows <= n * u64::from(tier(FLUSHES * FLUSH)));
    assert_eq!(stats.count as u64, n);
    for id in (0..FLUSHES * FLUSH).step_by(997) {
        let record = cases.get(&format!("case-{id:06}")).unwrap().unwrap();
        assert_eq!(record.vectors["image"], vectors[id], "{id}");
    }
    cases.verify().unwrap();
}

/// Unfiltered search over several graph segments of similar size (what tiered merging leaves)
/// finds what one graph over the same rows finds: the walks of the later segments stop where one
/// graph's beam would, not at the k-th best found so far (which cut them short).
#[test]
fn search_across_equal_segments_keeps_the_recall_of_one_graph() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    Store::create(&root).unwrap();
    let options = CollectionOptions {
        flush_rows: 6_000,
        merge_factor: 0,
        ..CollectionOptions::default()
    };
    let store = Store::open_with(&root, options).unwrap();
    // Wider than the other tests' vectors, so that a graph walk can miss.
    let dim = 64;
    let cases = store.create_collection("cases", schema(dim)).unwrap();
    let vectors = clustered(24_000, dim, 60, 23);
    for (i, chunk) in vectors.chunks(6_000).enumerate() {
        cases.upsert(&records(chunk, i * 6_000)).unwrap();
    }
    assert_eq!(segment_dirs(&root), 4);
    let queries: Vec<Vec<f32>> = clustered(200, dim, 61, 29)
        .into_iter()
        .zip(vectors.iter().step_by(97))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + 0.3 * y).collect())
        .collect();
    let efs = [32, 256];
    let split = efs.map(|ef| graph_recall(&cases, &queries, ef));
    cases.compact().unwrap();
    assert_eq!(segment_dirs(&root), 1);
    let whole = efs.map(|ef| graph_recall(&cases, &queries, ef));
    eprintln!("recall@10 at ef {efs:?}: four segments {split:?}, one graph {whole:?}");
    for i in 0..efs.len() {
        assert!(
            split[i] >= whole[i] - 0.02,
            "four segments {split:?}, one graph {whole:?}"
        );
    }
    assert!(
        whole[1] >= 0.9,
        "the queries are too hard to tell: {whole:?}"
    );
}
