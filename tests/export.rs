//! `medvec export --parquet`: read back with pyarrow (what pandas, Spark and DuckDB users have)
//! and compared value by value with `medvec get`.

mod util;

use std::path::Path;
use std::process::Command;
use util::{import_jsonl, medvec_err, medvec_json, medvec_ok, s};

fn python() -> String {
    std::env::var("MEDVEC_PYTHON").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".venv/bin/python")
            .display()
            .to_string()
    })
}

/// Every row of a Parquet file as JSON objects (vectors as lists, nulls as null), via pyarrow.
fn read_with_pyarrow(path: &Path) -> (Vec<serde_json::Value>, serde_json::Value) {
    let script = r#"
import json, sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
schema = {f.name: str(f.type) for f in table.schema}
print(json.dumps({"schema": schema, "rows": table.to_pylist(), "groups": pq.ParquetFile(sys.argv[1]).num_row_groups}))
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("run MEDVEC_PYTHON (bash tools/setup.sh installs pyarrow)");
    assert!(
        out.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut meta = value["schema"].clone();
    meta["groups"] = value["groups"].clone();
    (value["rows"].as_array().unwrap().clone(), meta)
}

#[test]
fn parquet_export_reads_back_with_pyarrow_value_for_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    medvec_ok(&[
        "create",
        s(&store),
        "cases",
        "--vector",
        "image:3:cosine",
        "--vector",
        "text:2:cosine",
        "--field",
        "dx:string",
        "--field",
        "age:int",
        "--field",
        "score:float",
        "--field",
        "biopsy:bool",
    ]);
    let jsonl = dir.path().join("cases.jsonl");
    let mut lines = String::new();
    for n in 0..25 {
        let mut record = serde_json::json!({
            "id": format!("case-{n:03}"),
            "image": [n as f32, 1.5, -2.25],
            "dx": if n % 2 == 0 { "mel" } else { "nv" },
            "age": 20 + n,
            "score": n as f64 / 4.0,
            "biopsy": n % 3 == 0,
        });
        if n % 5 != 0 {
            record["text"] = serde_json::json!([0.5, n as f32]); // every fifth lacks text
        }
        if n == 7 {
            record.as_object_mut().unwrap().remove("age"); // a missing payload value
        }
        lines.push_str(&format!("{record}\n"));
    }
    std::fs::write(&jsonl, lines).unwrap();
    import_jsonl(&store, &jsonl, 10);
    medvec_ok(&["delete", s(&store), "cases", "case-004"]);

    let out = dir.path().join("cases.parquet");
    let exported = medvec_json(&[
        "export",
        s(&store),
        "cases",
        "--parquet",
        s(&out),
        "--row-group",
        "8",
        "--json",
    ]);
    assert_eq!(exported["exported"], 24);
    let (rows, meta) = read_with_pyarrow(&out);
    assert_eq!(meta["id"], "string");
    assert_eq!(meta["age"], "int64");
    assert_eq!(meta["score"], "double");
    assert_eq!(meta["biopsy"], "bool");
    assert_eq!(meta["image"], "fixed_size_list<item: float not null>[3]");
    assert_eq!(meta["text"], "fixed_size_list<item: float not null>[2]");
    assert_eq!(meta["groups"], 3, "24 rows in row groups of 8");
    assert_eq!(rows.len(), 24);
    for row in &rows {
        let id = row["id"].as_str().unwrap();
        let got = medvec_json(&["get", s(&store), "cases", id, "--json"]);
        for field in ["dx", "age", "score", "biopsy"] {
            let stored = &got["payload"][field];
            let want = if stored.is_null() {
                &serde_json::Value::Null
            } else {
                stored
            };
            assert_eq!(&row[field], want, "{id}.{field}");
        }
        for field in ["image", "text"] {
            assert_eq!(row[field], got["vectors"][field], "{id}.{field}");
        }
    }
    assert!(
        rows.iter().all(|r| r["id"] != "case-004"),
        "deleted records are not exported"
    );
    assert!(!dir.path().join("cases.parquet.tmp").exists());
    assert!(
        rows.iter().any(|r| r["text"].is_null()),
        "a missing vector is a null"
    );
    assert!(
        rows.iter().any(|r| r["age"].is_null()),
        "a missing value is a null"
    );
}

#[test]
fn parquet_export_needs_a_writable_path_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    util::create_cases(&store);
    let jsonl = dir.path().join("cases.jsonl");
    util::write_jsonl(&jsonl, 0, 10, 8);
    medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&jsonl)]);
    let missing = dir.path().join("no/such/dir/out.parquet");
    let err = medvec_err(&["export", s(&store), "cases", "--parquet", s(&missing)]);
    assert!(err.contains("out.parquet"), "{err}");
    assert!(!missing.with_file_name("out.parquet.tmp").exists());
    let usage = util::medvec(&["export", s(&store), "cases"]);
    assert!(!usage.status.success());
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--table"));
}
