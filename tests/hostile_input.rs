//! Hostile input through the `medvec` binary (issue 5): each case must end in a clear one-line
//! error (or a rejects-file row, for archive rows) naming the file, row and field, and must leave
//! the records already stored intact. The readers' own unit tests cover the same inputs in more
//! variants; these check what a user sees.

mod util;

use std::io::Write;
use std::path::{Path, PathBuf};
use util::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A store with collection `cases` (2-d l2 `image`, int `n`) holding three records.
fn store_with_three(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    medvec_ok(&[
        "create",
        s(&store),
        "cases",
        "--vector",
        "image:2:l2",
        "--field",
        "n:int",
    ]);
    let good = dir.join("good.jsonl");
    std::fs::write(
        &good,
        "{\"id\": \"a\", \"image\": [1, 0], \"n\": 1}\n\
         {\"id\": \"b\", \"image\": [0, 1], \"n\": 2}\n\
         {\"id\": \"c\", \"image\": [1, 1], \"n\": 3}\n",
    )
    .unwrap();
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&good)]);
    store
}

/// The three records are still there, whole, and the store verifies.
fn assert_intact(store: &Path) {
    assert_eq!(count_records(store), 3);
    let b = medvec_json(&["get", s(store), "cases", "b", "--json"]);
    assert_eq!(b["vectors"]["image"], serde_json::json!([0.0, 1.0]), "{b}");
    medvec_ok(&["verify", s(store)]);
}

fn import_err(store: &Path, flag: &str, file: &Path) -> String {
    medvec_err(&["import", s(store), "cases", flag, s(file)])
}

fn assert_mentions(line: &str, parts: &[&str]) {
    for part in parts {
        assert!(line.contains(part), "`{line}` should mention `{part}`");
    }
}

#[test]
fn npy_headers_with_huge_or_negative_dimensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_three(dir.path());
    let table = dir.path().join("t.csv");
    std::fs::write(&table, "id,n\nx,1\n").unwrap();
    let shapes = [
        ("negative.npy", "(-1, 2)", "negative"),
        ("negative-dim.npy", "(1, -2)", "negative"),
        (
            "huge.npy",
            "(4611686018427387904, 4611686018427387904)",
            "truncated",
        ),
        ("huger.npy", "(100000000000000000000000, 2)", "too large"),
        ("huge-dim.npy", "(1, 9223372036854775807)", "npy"),
    ];
    for (name, shape, why) in shapes {
        let npy = dir.path().join(name);
        std::fs::write(&npy, npy_with_shape(shape)).unwrap();
        let image = format!("image={}", s(&npy));
        let line = medvec_err(&[
            "import",
            s(&store),
            "cases",
            "--npy",
            &image,
            "--table",
            s(&table),
        ]);
        assert_mentions(&line, &[name, why]);
    }
    assert_intact(&store);
}

/// A float32 `.npy` whose header states `shape`, with 8 bytes of data.
fn npy_with_shape(shape: &str) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 8]);
    bytes
}

#[test]
fn csv_with_nul_bytes_or_invalid_utf8_names_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_three(dir.path());
    let cases: [(&str, &[u8], &[&str]); 4] = [
        (
            "nul.csv",
            b"id,n,v0,v1\nx,1,0,1\ny,2\x00,0,1\n",
            &["nul.csv", "row 3", "column n", "NUL"],
        ),
        (
            "nul-id.csv",
            b"id,n,v0,v1\nx\x00y,1,0,1\n",
            &["nul-id.csv", "row 2", "column id", "NUL"],
        ),
        (
            "latin1.csv",
            b"id,n,v0,v1\nx,1,0,1\ncaf\xe9,2,0,1\n",
            &["latin1.csv", "row 3", "column id", "invalid UTF-8"],
        ),
        (
            "utf16.csv",
            b"\xff\xfei\x00d\x00,\x00n\x00\n\x00",
            &["utf16.csv", "id"],
        ),
    ];
    for (name, bytes, parts) in cases {
        let csv = dir.path().join(name);
        std::fs::write(&csv, bytes).unwrap();
        let line = medvec_err(&[
            "import",
            s(&store),
            "cases",
            "--csv",
            s(&csv),
            "--vector-prefix",
            "image=v",
        ]);
        assert_mentions(&line, parts);
    }
    let jsonl = dir.path().join("latin1.jsonl");
    std::fs::write(&jsonl, b"{\"id\": \"x\"}\n{\"id\": \"caf\xe9\"}\n").unwrap();
    let line = import_err(&store, "--jsonl", &jsonl);
    assert_mentions(&line, &["latin1.jsonl", "row 2", "invalid UTF-8"]);
    assert_intact(&store);
}

/// A 1 GiB file that is one line: the first 80 MiB are text (more than the 64 MiB line limit),
/// the rest a hole, so the test writes little and the reader must stop at the limit.
fn one_gib_line(path: &Path, start: &str) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(start.as_bytes()).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..80 {
        file.write_all(&chunk).unwrap();
    }
    file.set_len(1 << 30).unwrap();
}

#[test]
fn a_one_gib_single_line_is_refused_at_the_line_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_three(dir.path());
    let jsonl = dir.path().join("long.jsonl");
    one_gib_line(&jsonl, "{\"id\": \"big\", \"n\": \"");
    let started = std::time::Instant::now();
    let line = import_err(&store, "--jsonl", &jsonl);
    assert_mentions(&line, &["long.jsonl", "row 1", "longer than 64 MiB"]);
    let csv = dir.path().join("long.csv");
    one_gib_line(&csv, "id,n,v0,v1\nbig,\"");
    let line = medvec_err(&[
        "import",
        s(&store),
        "cases",
        "--csv",
        s(&csv),
        "--vector-prefix",
        "image=v",
    ]);
    assert_mentions(&line, &["long.csv", "row 2", "longer than 64 MiB"]);
    let header = dir.path().join("long-header.csv");
    one_gib_line(&header, "id,");
    let line = medvec_err(&["import", s(&store), "cases", "--csv", s(&header)]);
    assert_mentions(
        &line,
        &["long-header.csv", "row 1", "header is longer than 64 MiB"],
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "reading stopped at the limit, not at the end of the gigabyte"
    );
    assert_intact(&store);
}

#[test]
fn a_line_at_the_limit_is_read_and_one_byte_more_is_refused() {
    let limit = medvec_ingest::import::MAX_LINE_BYTES as usize;
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_three(dir.path());
    // Whitespace padding keeps the record itself small; the newline counts towards the limit.
    let line_of = |len: usize| {
        let head = "{\"id\": \"padded\", \"image\": [2, 2], \"n\": 4";
        let mut text = String::with_capacity(len);
        text.push_str(head);
        text.push_str(&" ".repeat(len - head.len() - 2));
        text.push_str("}\n");
        text
    };
    let over = dir.path().join("over.jsonl");
    std::fs::write(&over, line_of(limit + 2)).unwrap();
    let line = import_err(&store, "--jsonl", &over);
    assert_mentions(&line, &["over.jsonl", "row 1", "longer than 64 MiB"]);
    assert_intact(&store);
    let at = dir.path().join("at.jsonl");
    std::fs::write(&at, line_of(limit)).unwrap();
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&at)]);
    let padded = medvec_json(&["get", s(&store), "cases", "padded", "--json"]);
    assert_eq!(padded["payload"]["n"], 4, "{padded}");
}

#[test]
fn ids_that_are_empty_too_long_padded_or_hold_control_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_three(dir.path());
    let long = "x".repeat(medvec_store::MAX_ID_BYTES + 1);
    let at_limit = "y".repeat(medvec_store::MAX_ID_BYTES);
    let cases = [
        (String::new(), "id is empty"),
        (long.clone(), "513 bytes long; the limit is 512"),
        ("a\u{7}bell".to_string(), "control character"),
        ("tab\there".to_string(), "control character"),
        ("new\nline".to_string(), "control character"),
        ("nul\u{0}".to_string(), "control character"),
        ("c1\u{85}".to_string(), "control character"),
        ("esc\u{1b}[31m".to_string(), "control character"),
        ("   ".to_string(), "starts or ends with whitespace"),
        (
            " ISIC_0027419".to_string(),
            "starts or ends with whitespace",
        ),
    ];
    for (i, (id, why)) in cases.iter().enumerate() {
        let jsonl = dir.path().join(format!("id-{i}.jsonl"));
        let record = serde_json::json!({"id": id, "image": [0, 0], "n": 0});
        std::fs::write(&jsonl, format!("{{\"id\": \"ok-{i}\"}}\n{record}\n")).unwrap();
        let line = import_err(&store, "--jsonl", &jsonl);
        assert_mentions(
            &line,
            &[&format!("id-{i}.jsonl"), "row 2", "column id", why],
        );
        assert!(
            !line.contains('\u{7}') && !line.contains('\u{1b}'),
            "{line:?}"
        );
    }
    // The same limits hold for CSV ids; surrounding spaces are trimmed first, so a blank id is
    // empty there (JSONL ids are taken as written).
    for (i, (id, why)) in [(long.as_str(), "the limit is 512"), ("   ", "id is empty")]
        .iter()
        .enumerate()
    {
        let csv = dir.path().join(format!("ids-{i}.csv"));
        std::fs::write(&csv, format!("id,n,v0,v1\nok,1,0,0\n{id},1,0,0\n")).unwrap();
        let line = medvec_err(&[
            "import",
            s(&store),
            "cases",
            "--csv",
            s(&csv),
            "--vector-prefix",
            "image=v",
        ]);
        assert_mentions(&line, &[&format!("ids-{i}.csv"), "row 3", "column id", why]);
    }
    assert_intact(&store);
    // Exactly at the limit is fine, and the id reads back whole.
    let ok = dir.path().join("limit.jsonl");
    std::fs::write(
        &ok,
        serde_json::json!({"id": at_limit, "image": [3, 3], "n": 9}).to_string() + "\n",
    )
    .unwrap();
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&ok)]);
    let got = medvec_json(&["get", s(&store), "cases", &at_limit, "--json"]);
    assert_eq!(got["id"], at_limit.as_str());
    // Lookups with hostile ids are plain "not found" errors on one line.
    let line = medvec_err(&["get", s(&store), "cases", "x\ny"]);
    assert!(line.starts_with("medvec: error: "), "{line}");
}

#[test]
fn filters_nested_ten_thousand_deep_are_refused_without_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_three(dir.path());
    let filters = [
        format!("{}n > 1{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{}n > 1", "not ".repeat(10_000)),
        format!("{}n > 1", "(n = 1 or ".repeat(10_000)),
        "(".repeat(10_000),
    ];
    for filter in &filters {
        let line = medvec_err(&[
            "search",
            s(&store),
            "cases",
            "--field",
            "image",
            "--vector",
            "0,0",
            "--filter",
            filter,
        ]);
        assert_mentions(&line, &["filter", "nested deeper than 128 levels"]);
        assert!(
            line.len() < 400,
            "the error does not echo the filter: {line}"
        );
    }
    // A long flat chain is not nesting and works.
    let flat = vec!["n = 1"; 10_000].join(" or ");
    let out = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--vector",
        "0,0",
        "--filter",
        &flat,
        "--json",
    ]);
    assert!(out.contains("\"a\""), "{out}");
    assert_intact(&store);
}

/// Ingest flags for the tiny image model over `root`.
fn ingest_args<'a>(
    store: &'a Path,
    manifest: &'a Path,
    root: &'a Path,
    model: &'a Path,
    rejects: &'a Path,
) -> Vec<&'a str> {
    vec![
        "ingest",
        s(store),
        "scans",
        "--manifest",
        s(manifest),
        "--root",
        s(root),
        "--image-model",
        s(model),
        "--rejects",
        s(rejects),
        "--json",
    ]
}

/// Rejected rows by id: (path, reason). The test's ids and paths hold no commas or quotes.
fn rejects_by_id(path: &Path) -> std::collections::BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().starts_with("id,path,reason"),
        "{text}"
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.splitn(4, ',').collect();
            (
                cells[0].to_string(),
                (cells[1].to_string(), cells[2].to_string()),
            )
        })
        .collect()
}

fn scans_count(store: &Path) -> serde_json::Value {
    medvec_json(&["stats", s(store), "scans", "--json"])["collections"][0]["count"].clone()
}

#[test]
fn archive_paths_escaping_the_root_and_image_bombs_are_rejected_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let image = fixtures().join("images/rgb_100x75.png");
    std::fs::copy(&image, root.join("in.png")).unwrap();
    std::fs::copy(&image, outside.join("secret.png")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.png"), root.join("link.png")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("sub/dir")).unwrap();
    std::os::unix::fs::symlink(root.join("in.png"), root.join("inner-link.png")).unwrap();
    std::fs::write(root.join("bomb.png"), png_header_only(30_000, 30_000)).unwrap();
    let huge = std::fs::File::create(root.join("huge.png")).unwrap();
    huge.set_len(600 << 20).unwrap();
    let absolute = outside.join("secret.png");
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(
        &manifest,
        format!(
            "id,path\n\
             good,in.png\n\
             inner,inner-link.png\n\
             parent,../outside/secret.png\n\
             dotted,sub/../../outside/secret.png\n\
             absolute,{}\n\
             symlink,link.png\n\
             dir-symlink,sub/dir/secret.png\n\
             bomb,bomb.png\n\
             huge,huge.png\n",
            absolute.display()
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let rejects = dir.path().join("rejects.csv");
    let model = fixtures().join("models/tiny-image");
    let out = medvec(&ingest_args(&store, &manifest, &root, &model, &rejects));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rejected = rejects_by_id(&rejects);
    let expected = [
        ("parent", "escapes-root"),
        ("dotted", "escapes-root"),
        ("absolute", "escapes-root"),
        ("symlink", "escapes-root"),
        ("dir-symlink", "escapes-root"),
        ("bomb", "too-many-pixels"),
        ("huge", "too-many-pixels"),
    ];
    for (id, reason) in expected {
        assert_eq!(
            rejected.get(id).map(|r| r.1.as_str()),
            Some(reason),
            "{id}: {rejected:?}"
        );
    }
    assert_eq!(rejected["parent"].0, "../outside/secret.png");
    assert_eq!(rejected.len(), expected.len(), "{rejected:?}");
    assert_eq!(scans_count(&store), 2, "good and inner are stored");
    medvec_ok(&["verify", s(&store)]);
}

/// A PNG whose header claims `width x height` pixels, with one empty zlib stream for data: a
/// decompression bomb must be refused from its header, before anything is allocated or inflated.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    png.extend_from_slice(&8u32.to_be_bytes());
    png.extend_from_slice(idat);
    png.extend_from_slice(&crc32(idat).to_be_bytes());
    png.extend_from_slice(&0u32.to_be_bytes());
    png.extend_from_slice(b"IEND");
    png.extend_from_slice(&crc32(b"IEND").to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_model_folder_with_a_malformed_preprocessor_config_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixtures().join("images");
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, "id,path\ngood,rgb_100x75.png\n").unwrap();
    let store = dir.path().join("store");
    let rejects = dir.path().join("rejects.csv");
    let good_model = fixtures().join("models/tiny-image");
    medvec_ok(&ingest_args(
        &store,
        &manifest,
        &root,
        &good_model,
        &rejects,
    ));
    assert_eq!(scans_count(&store), 1);

    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(&good_model).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let configs = [
        (
            "{\"size\": {\"shortest_edge\": ",
            "preprocessor_config.json",
        ),
        ("[1, 2]", "expected a JSON object"),
        ("{\"size\": \"large\"}", "size"),
        (
            "{\"size\": 64, \"image_mean\": [0, 0, 0], \"image_std\": [0, 0, 0]}",
            "image_std",
        ),
        ("{\"size\": 64, \"resample\": -3}", "resample"),
        ("\u{feff}\u{0}", "preprocessor_config.json"),
    ];
    std::fs::write(manifest.as_path(), "id,path\nother,rgb_80x60.jpg\n").unwrap();
    for (config, why) in configs {
        std::fs::write(model.join("preprocessor_config.json"), config).unwrap();
        let line = medvec_err(&ingest_args(&store, &manifest, &root, &model, &rejects));
        assert_mentions(&line, &["preprocessor_config.json", why]);
    }
    assert_eq!(scans_count(&store), 1, "nothing stored, nothing lost");
    medvec_ok(&["verify", s(&store)]);
}
