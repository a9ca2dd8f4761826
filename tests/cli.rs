//! End-to-end tests of the `medvec` binary: the command forms scripts depend on, their JSON, and
//! their one-line errors.

mod util;

use util::*;

fn store_with_records(dir: &std::path::Path, count: usize) -> std::path::PathBuf {
    let store = dir.join("store");
    medvec_ok(&[
        "create",
        s(&store),
        "cases",
        "--vector",
        "image:8:cosine",
        "--field",
        "n:int",
        "--field",
        "dx:string",
    ]);
    let jsonl = dir.join("cases.jsonl");
    write_jsonl(&jsonl, 0, count, 8);
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&jsonl)]);
    store
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        "create", "import", "search", "get", "delete", "stats", "verify", "compact", "drop",
        "export", "demo",
    ] {
        let help = medvec_ok(&[command, "--help"]);
        assert!(
            help.contains("Example"),
            "`medvec {command} --help` has no example"
        );
    }
}

#[test]
fn search_prints_one_json_object_per_query_best_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path(), 300);
    let out = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--like",
        "case-000007",
        "-k",
        "5",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["query"], 0);
    let hits = lines[0]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(
        hits.iter().all(|h| h["id"] != "case-000007"),
        "--like leaves the record itself out"
    );
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "cosine scores descend: {scores:?}"
    );

    let queries = dir.path().join("q.npy");
    let rows: Vec<Vec<f32>> = (0..3)
        .map(|i| (0..8).map(|j| ((i * 8 + j) % 5) as f32 - 2.0).collect())
        .collect();
    medvec_ingest::npy::write_npy_f32(&queries, 8, rows.iter().map(Vec::as_slice)).unwrap();
    let out = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--queries",
        s(&queries),
        "-k",
        "3",
        "--filter",
        "n < 100",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["query"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for line in &lines {
        for hit in line["hits"].as_array().unwrap() {
            let n: u64 = hit["id"].as_str().unwrap()[5..].parse().unwrap();
            assert!(n < 100, "filter n < 100 let {hit} through");
        }
    }
    let exact = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--queries",
        s(&queries),
        "-k",
        "3",
        "--filter",
        "n < 100",
        "--exact",
        "--json",
    ]);
    assert_eq!(
        out, exact,
        "small collections are searched exactly either way"
    );
}

/// Text output says who each hit is: its payload in aligned columns (`--show` picks them); the
/// `--json` shape stays {"query", "hits": [{"id", "score"}]}.
#[test]
fn search_text_output_names_each_hit_with_its_payload() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path(), 50);
    let search = |extra: &[&str]| {
        let mut args = vec![
            "search",
            s(&store),
            "cases",
            "--field",
            "image",
            "--like",
            "case-000007",
            "-k",
            "3",
        ];
        args.extend_from_slice(extra);
        medvec_ok(&args)
    };
    let out = search(&[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], "query 0:");
    let cells = |line: &str| {
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(cells(lines[1]), ["rank", "id", "score", "n", "dx"]);
    let id_column = lines[1].find("id").unwrap();
    for (rank, line) in lines[2..].iter().enumerate() {
        let row = cells(line);
        assert_eq!(row[0], format!("{}.", rank + 1));
        assert_eq!(line.find("case-"), Some(id_column), "aligned: {out}");
        let n: u64 = row[1]["case-".len()..].parse().unwrap();
        assert_eq!(row[3], n.to_string(), "the hit's own payload: {out}");
        assert_eq!(row[4], "-", "a missing value shows as -: {out}");
    }
    let out = search(&["--show", "dx"]);
    assert_eq!(
        cells(out.lines().nth(1).unwrap()),
        ["rank", "id", "score", "dx"]
    );
    let out = search(&["--show", ""]);
    assert_eq!(cells(out.lines().nth(1).unwrap()), ["rank", "id", "score"]);
    let err = medvec_err(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--like",
        "case-000007",
        "--show",
        "n,bogus",
    ]);
    assert!(err.contains("--show: `bogus`"), "{err}");
    let json = search(&["--json"]);
    let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    for hit in value["hits"].as_array().unwrap() {
        let keys: Vec<&String> = hit.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "score"]);
    }
}

#[test]
fn get_delete_stats_compact_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path(), 120);
    let got = medvec_json(&["get", s(&store), "cases", "case-000042", "--json"]);
    assert_eq!(got["payload"]["n"], 42);
    assert_eq!(got["vectors"]["image"].as_array().unwrap().len(), 8);
    let deleted = medvec_json(&[
        "delete",
        s(&store),
        "cases",
        "case-000001",
        "case-000002",
        "--json",
    ]);
    assert_eq!(deleted["deleted"], 2);
    let stats = medvec_json(&["stats", s(&store), "--json"]);
    assert_eq!(stats["collections"][0]["name"], "cases");
    assert_eq!(stats["collections"][0]["count"], 118);
    // A graph of 120 rows walks with the field's ef_search (64 unless set at create).
    assert_eq!(stats["collections"][0]["default_ef"]["image"], 64);
    medvec_ok(&["compact", s(&store), "cases"]);
    medvec_ok(&["verify", s(&store)]);
    let npy = dir.path().join("out.npy");
    let table = dir.path().join("out.csv");
    medvec_ok(&[
        "export",
        s(&store),
        "cases",
        "--field",
        "image",
        "--npy",
        s(&npy),
        "--table",
        s(&table),
    ]);
    let csv = std::fs::read_to_string(&table).unwrap();
    assert_eq!(csv.lines().next().unwrap(), "id,n,dx,has_image");
    assert_eq!(csv.lines().count(), 119);
    let matrix = medvec_ingest::load::read_matrix(&npy).unwrap();
    assert_eq!(matrix.len(), 118);
    let first_id = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let original = medvec_json(&["get", s(&store), "cases", &first_id, "--json"]);
    let expected: Vec<f32> = original["vectors"]["image"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(
        matrix[0], expected,
        "row 0 of the .npy is the first row of the table"
    );
}

#[test]
fn bad_input_gets_one_line_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path(), 30);
    let cases = [
        (
            vec![
                "search",
                s(&store),
                "nope",
                "--field",
                "image",
                "--vector",
                "1,2",
            ],
            "collection `nope` does not exist",
        ),
        (
            vec![
                "search",
                s(&store),
                "cases",
                "--field",
                "image",
                "--vector",
                "1,2",
            ],
            "dimension 2",
        ),
        (
            vec![
                "search",
                s(&store),
                "cases",
                "--field",
                "audio",
                "--vector",
                "1,2",
            ],
            "unknown field `audio`",
        ),
        (
            vec![
                "search",
                s(&store),
                "cases",
                "--field",
                "image",
                "--like",
                "case-000001",
                "--filter",
                "n >",
            ],
            "filter",
        ),
        (vec!["get", s(&store), "cases", "missing-id"], "missing-id"),
        (vec!["stats", "/nonexistent/store"], "not a medvec store"),
    ];
    for (args, expected) in cases {
        let line = medvec_err(&args);
        assert!(
            line.contains(expected),
            "`{line}` should mention `{expected}`"
        );
    }
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"x1\", \"image\": [1,2,3,4,5,6,7,8]}\n{\"id\": \"x2\", \"image\": [1,2,3]}\n",
    )
    .unwrap();
    let line = medvec_err(&["import", s(&store), "cases", "--jsonl", s(&bad)]);
    assert!(line.contains("x2") && line.contains("dimension"), "{line}");
    let missing = medvec_err(&[
        "import",
        s(&store),
        "cases",
        "--jsonl",
        "/nonexistent/file.jsonl",
    ]);
    assert!(missing.contains("/nonexistent/file.jsonl"), "{missing}");
    assert_eq!(count_records(&store), 30, "failed imports stored nothing");
}

#[test]
fn a_second_writer_gets_a_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path(), 10);
    let holder = medvec_store::Store::open(&store).unwrap();
    let line = medvec_err(&["delete", s(&store), "cases", "case-000001"]);
    assert!(line.contains("lock"), "{line}");
    // Readers still work while the writer holds the lock.
    medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--like",
        "case-000001",
        "--json",
    ]);
    drop(holder);
    medvec_ok(&["delete", s(&store), "cases", "case-000001"]);
}

#[test]
fn ingest_stores_good_rows_reports_bad_ones_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let store = dir.path().join("store");
    let rejects = dir.path().join("rejects.csv");
    let manifest = root.join("fixtures/archive/manifest.csv");
    let images = root.join("fixtures/images");
    let image_model = root.join("fixtures/models/tiny-image");
    let text_model = root.join("fixtures/models/tiny-text");
    let args = [
        "ingest",
        s(&store),
        "cases",
        "--manifest",
        s(&manifest),
        "--root",
        s(&images),
        "--image-model",
        s(&image_model),
        "--text-model",
        s(&text_model),
        "--template",
        "ham10000",
        "--rejects",
        s(&rejects),
        "--json",
    ];
    let out = medvec(&args);
    assert_eq!(
        out.status.code(),
        Some(3),
        "rejected rows make the run partial: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        lines.lines().count(),
        9,
        "header + 8 rejected rows:\n{lines}"
    );
    assert!(
        lines.contains("escapes-root") && lines.contains("truncated") && lines.contains("missing")
    );
    assert_eq!(count_records(&store), 8);
    let again = medvec(&args);
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(
        medvec_json(&["stats", s(&store), "cases", "--json"])["collections"][0]["count"],
        8,
        "resume stores nothing twice"
    );
    medvec_ok(&["verify", s(&store)]);
}

#[test]
fn create_records_the_chosen_graph_builder() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let create = |builder: &str| {
        medvec(&[
            "create",
            s(&store),
            &format!("c_{builder}"),
            "--vector",
            "image:4:cosine",
            "--graph-builder",
            builder,
        ])
    };
    assert!(create("hnsw_rs").status.success());
    let manifest = std::fs::read(store.join("collections/c_hnsw_rs/MANIFEST")).unwrap();
    assert!(String::from_utf8_lossy(&manifest).contains(r#""builder": "hnsw_rs""#));
    let refused = create("faiss");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("medvec or hnsw_rs"));
}

/// An import ends in one segment (its graphs are built once, over all its rows, at its end). A
/// second import into the same collection adds a segment of its own; with `--compact` the
/// collection ends in one.
#[test]
fn import_with_compact_ends_in_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    write_jsonl(&first, 0, 3_000, 8);
    write_jsonl(&second, 3_000, 2_000, 8);
    for (compact, segments) in [(false, 2), (true, 1)] {
        let store = dir.path().join(format!("store-{compact}"));
        create_cases(&store);
        let import = |jsonl: &std::path::Path, compact: bool| {
            let mut args = vec!["import", s(&store), "cases", "--jsonl", s(jsonl)];
            args.extend(["--flush-rows", "1100", "--json"]);
            if compact {
                args.push("--compact");
            }
            medvec_json(&args)
        };
        let imported = import(&first, false);
        assert_eq!(imported["imported"], 3_000);
        assert_eq!(imported["segments"], 1, "one graph over the first import");
        let imported = import(&second, compact);
        assert_eq!(imported["segments"], segments, "--compact {compact}");
        let stats = medvec_json(&["stats", s(&store), "--json"]);
        assert_eq!(stats["collections"][0]["count"], 5_000);
        assert_eq!(stats["collections"][0]["segments"], segments);
        assert_eq!(stats["collections"][0]["segments_awaiting_graphs"], 0);
        medvec_ok(&["verify", s(&store)]);
    }
}

/// An import stopped by a bad row keeps the batches before it, as before, and still builds their
/// graphs on the way out instead of leaving them to exact scans.
#[test]
fn an_import_stopped_by_a_bad_row_still_builds_the_graphs_of_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("cases.jsonl");
    write_jsonl(&jsonl, 0, 3_000, 8);
    let mut text = std::fs::read_to_string(&jsonl).unwrap();
    text.push_str("{\"id\": \"case-bad\", \"image\": [1.0, 2.0], \"n\": 1}\n");
    std::fs::write(&jsonl, text).unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let args = ["import", s(&store), "cases", "--jsonl", s(&jsonl)];
    let err = medvec_err(&[&args[..], &["--flush-rows", "1100"]].concat());
    assert!(err.contains("case-bad"), "{err}");
    // Batches of 1,024: the third holds the bad row and is refused whole.
    let stats = medvec_json(&["stats", s(&store), "--json"]);
    let cases = &stats["collections"][0];
    assert_eq!(cases["count"], 2_048, "{stats}");
    assert_eq!(cases["segments"], 1, "{stats}");
    assert_eq!(cases["segments_awaiting_graphs"], 0, "{stats}");
    medvec_ok(&["verify", s(&store)]);
}
