//! `medvec search STORE COLLECTION --store B --store C ...`: one collection split over several
//! stores (shards) is searched in each and merged; with --exact the merged top-k equals the
//! exact top-k of one unsharded collection.

mod util;

use std::path::{Path, PathBuf};
use util::*;

const ROWS: usize = 4000;
const SHARDS: usize = 4;

/// One store with all rows, and SHARDS stores with a contiguous quarter each.
fn sharded(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let whole = dir.join("whole");
    create_cases(&whole);
    let jsonl = dir.join("all.jsonl");
    write_jsonl(&jsonl, 0, ROWS, 8);
    import_jsonl(&whole, &jsonl, 1500);
    let per = ROWS / SHARDS;
    let shards = (0..SHARDS)
        .map(|s| {
            let store = dir.join(format!("shard{s}"));
            create_cases(&store);
            let part = dir.join(format!("part{s}.jsonl"));
            write_jsonl(&part, s * per, per, 8);
            import_jsonl(&store, &part, 1500);
            store
        })
        .collect();
    (whole, shards)
}

fn hits(out: &str) -> Vec<Vec<(String, f64)>> {
    out.lines().map(json_hits).collect()
}

fn search(first: &Path, others: &[PathBuf], extra: &[&str]) -> Vec<Vec<(String, f64)>> {
    let mut args = vec!["search", s(first), "cases", "--field", "image", "--json"];
    for other in others {
        args.extend(["--store", s(other)]);
    }
    args.extend_from_slice(extra);
    hits(&medvec_ok(&args))
}

#[test]
fn merged_shards_equal_one_collection() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, shards) = sharded(dir.path());
    let queries = dir.path().join("q.npy");
    let rows: Vec<Vec<f32>> = (0..40)
        .map(|i| {
            (0..8)
                .map(|j| ((i * 7 + j * 3) % 11) as f32 - 5.0)
                .collect()
        })
        .collect();
    medvec_ingest::npy::write_npy_f32(&queries, 8, rows.iter().map(Vec::as_slice)).unwrap();
    for filter in [None, Some("n >= 1000 and n < 3500")] {
        let mut extra = vec!["--queries", s(&queries), "-k", "10", "--exact"];
        if let Some(f) = filter {
            extra.extend(["--filter", f]);
        }
        let expected = search(&whole, &[], &extra);
        let merged = search(&shards[0], &shards[1..], &extra);
        assert_eq!(merged.len(), expected.len());
        for (q, (m, e)) in merged.iter().zip(&expected).enumerate() {
            let ids = |h: &[(String, f64)]| h.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
            assert_eq!(ids(m), ids(e), "query {q}, filter {filter:?}");
            for (a, b) in m.iter().zip(e) {
                assert!((a.1 - b.1).abs() < 1e-6, "query {q}: {a:?} vs {b:?}");
            }
        }
        // The graph search merged over shards finds what the exact one does, nearly always.
        let approximate = search(&shards[0], &shards[1..], &extra[..4]);
        let found: usize = approximate
            .iter()
            .zip(&expected)
            .map(|(a, e)| a.iter().filter(|h| e.iter().any(|x| x.0 == h.0)).count())
            .sum();
        if filter.is_none() {
            assert!(found as f64 >= 0.95 * 400.0, "recall {found}/400");
        }
    }
    // --like finds its record in whichever shard holds it, and leaves it out of the hits.
    let like = search(
        &shards[0],
        &shards[1..],
        &["--like", "case-003999", "-k", "5", "--exact"],
    );
    let expected = search(
        &whole,
        &[],
        &["--like", "case-003999", "-k", "5", "--exact"],
    );
    assert_eq!(like, expected);
    assert!(like[0].iter().all(|h| h.0 != "case-003999"));
}

#[test]
fn shards_must_share_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    create_cases(&a);
    medvec_ok(&["create", s(&b), "cases", "--vector", "image:8:l2"]);
    let err = medvec_err(&[
        "search",
        s(&a),
        "cases",
        "--field",
        "image",
        "--vector",
        "1,0,0,0,0,0,0,0",
        "--store",
        s(&b),
    ]);
    assert!(
        err.contains("shards of one collection must share its schema"),
        "{err}"
    );
    let missing = dir.path().join("nothing");
    let err = medvec_err(&[
        "search",
        s(&a),
        "cases",
        "--field",
        "image",
        "--vector",
        "1,0,0,0,0,0,0,0",
        "--store",
        s(&missing),
    ]);
    assert!(err.contains("nothing"), "{err}");
}

#[test]
fn text_output_shows_the_payload_of_hits_in_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let (_, shards) = sharded(dir.path());
    let out = medvec_ok(&[
        "search",
        s(&shards[0]),
        "cases",
        "--field",
        "image",
        "--like",
        "case-003999",
        "-k",
        "3",
        "--exact",
        "--store",
        s(&shards[1]),
        "--store",
        s(&shards[2]),
        "--store",
        s(&shards[3]),
    ]);
    let rows: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(rows.len(), 3, "{out}");
    for row in rows {
        // The last shard holds case-003999's neighbours: their `n` is shown, not `-`.
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(cells[1].starts_with("case-00"), "{row}");
        assert_ne!(cells.last(), Some(&"-"), "{out}");
    }
}
