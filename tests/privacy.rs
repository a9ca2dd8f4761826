//! Patient data stays private: errors show payload values only with `--verbose`, and every file
//! of a store is readable by its owner only.

mod util;

use medvec_store::Store;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use util::*;

/// A value no message may show unless asked to.
const SECRET: &str = "JaneDoe-1957-03-14";

fn assert_hidden(err: &str) {
    assert!(!err.contains(SECRET), "payload value leaked: {err}");
    assert!(
        err.contains("<hidden>") && err.contains("--verbose"),
        "{err}"
    );
}

#[test]
fn a_bad_jsonl_row_shows_its_value_only_with_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let jsonl = dir.path().join("bad.jsonl");
    let row = serde_json::json!({"id": "case-1", "image": vec![0.5; 8], "n": SECRET});
    std::fs::write(&jsonl, format!("{row}\n")).unwrap();
    let args = ["import", s(&store), "cases", "--jsonl", s(&jsonl)];
    let err = medvec_err(&args);
    assert!(
        err.contains("bad.jsonl") && err.contains("row 1, column n"),
        "{err}"
    );
    assert!(err.contains("case-1") || err.contains("row 1"), "{err}");
    assert_hidden(&err);
    let mut verbose = args.to_vec();
    verbose.push("--verbose");
    let err = medvec_err(&verbose);
    assert!(
        err.contains(SECRET),
        "--verbose should show the value: {err}"
    );
}

#[test]
fn a_bad_csv_cell_shows_its_value_only_with_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let csv = dir.path().join("bad.csv");
    let vector: Vec<String> = (0..8).map(|i| format!("{i}")).collect();
    let header: Vec<String> = (0..8).map(|i| format!("v{i}")).collect();
    let text = format!(
        "id,n,{}\ncase-1,{SECRET},{}\n",
        header.join(","),
        vector.join(",")
    );
    std::fs::write(&csv, text).unwrap();
    let args = [
        "import",
        s(&store),
        "cases",
        "--csv",
        s(&csv),
        "--vector-prefix",
        "image=v",
    ];
    let err = medvec_err(&args);
    assert!(err.contains("bad.csv") && err.contains("column n"), "{err}");
    assert_hidden(&err);
    let mut verbose = vec!["--verbose"];
    verbose.extend(args);
    assert!(medvec_err(&verbose).contains(SECRET));
}

#[test]
fn every_file_of_a_store_is_private_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_quantised_cases(&store);
    let jsonl = dir.path().join("cases.jsonl");
    write_jsonl(&jsonl, 0, 1300, 8);
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&jsonl)]);
    write_jsonl(&jsonl, 1300, 10, 8);
    import_jsonl(&store, &jsonl, 100000);
    {
        let opened = Store::open(&store).unwrap();
        let cases = opened.collection("cases").unwrap();
        cases
            .upsert(&[medvec_store::Record::new("tail-1")])
            .unwrap();
        cases.save_head("early", b"weights").unwrap();
    }
    let mut checked = 0;
    check_modes(&store, &mut checked);
    assert!(checked >= 10, "only {checked} paths");
    let names: Vec<String> = walk(&store)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    for kind in [
        "LOCK",
        "MANIFEST",
        "early.head",
        "image.hnsw",
        "image.sq8",
        "image.f32",
        "ids.idx",
        "payload.cols",
    ] {
        assert!(names.iter().any(|n| n == kind), "no {kind} in {names:?}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn check_modes(root: &Path, checked: &mut usize) {
    for path in walk(root) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, expected, "{} is {mode:o}", path.display());
        *checked += 1;
    }
}

/// Exports leave the store with the same patient data in them: owner-only too.
#[test]
fn exported_files_are_private_to_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let jsonl = dir.path().join("cases.jsonl");
    write_jsonl(&jsonl, 0, 20, 8);
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&jsonl)]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (npy, table, parquet) = (out.join("x.npy"), out.join("x.csv"), out.join("x.parquet"));
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
    medvec_ok(&["export", s(&store), "cases", "--parquet", s(&parquet)]);
    for file in [&npy, &table, &parquet] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
}
