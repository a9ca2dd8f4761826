use super::*;
use crate::npy::write_npy_f32;
use medvec_store::{PayloadField, VectorField};

fn schema() -> Schema {
    Schema {
        vectors: vec![
            VectorField::parse("image:3:cosine").unwrap(),
            VectorField::parse("text:2:l2").unwrap(),
        ],
        payload: ["dx:string", "age:int", "weight:float", "smoker:bool"]
            .iter()
            .map(|spec| PayloadField::parse(spec).unwrap())
            .collect(),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn csv_source(path: PathBuf) -> ImportSource {
    ImportSource::Csv {
        path,
        id_column: DEFAULT_ID_COLUMN.into(),
        prefixes: vec![
            ("image".into(), "img".into()),
            ("text".into(), "txt".into()),
        ],
    }
}

fn jsonl_source(path: PathBuf) -> ImportSource {
    ImportSource::Jsonl {
        path,
        id_field: DEFAULT_ID_COLUMN.into(),
    }
}

fn read_all(source: &ImportSource) -> Result<Vec<Record>> {
    let mut importer = Importer::open(source, &schema(), 2)?;
    let mut records = Vec::new();
    while let Some(batch) = importer.next_batch()? {
        assert!(!batch.is_empty() && batch.len() <= 2);
        records.extend(batch);
    }
    Ok(records)
}

/// The error of reading `source`, checked to be one line naming the file and `parts`.
fn error_of(source: &ImportSource, parts: &[&str]) -> String {
    let err = match read_all(source) {
        Ok(records) => panic!("expected an error, read {} records", records.len()),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains('\n'), "{err}");
    for part in parts {
        assert!(err.contains(part), "`{err}` lacks `{part}`");
    }
    err
}

fn payload(dx: Value, age: Value, weight: Value, smoker: Value) -> Record {
    Record::new("")
        .with_value("dx", dx)
        .with_value("age", age)
        .with_value("weight", weight)
        .with_value("smoker", smoker)
}

fn with_id(record: Record, id: &str) -> Record {
    Record {
        id: id.into(),
        ..record
    }
}

const CSV_HEADER: &str = "id,dx,age,smoker,img0,img1,img2,txt0,txt1,notes\n";

#[test]
fn csv_rows_become_records() {
    let dir = tempfile::tempdir().unwrap();
    let body = "\u{feff}ID_X,dx , age,smoker,img0,img1,img2,txt0,txt1,notes\n";
    let text = format!(
        "{}a1,mel,80,yes,0.5,1,-2e-1,1,2,x\n\n b2 ,\"b, c\",,no,,,,3,4,\"multi\nline\"\nc3,nv,50.0,,1,2,3,,,\n",
        body.replace("ID_X", "id")
    );
    let path = write(&dir, "wide.csv", text);
    let records = read_all(&csv_source(path)).unwrap();
    let null = || Value::Null;
    let expected = vec![
        with_id(
            payload(
                Value::String("mel".into()),
                Value::Int(80),
                null(),
                Value::Bool(true),
            ),
            "a1",
        )
        .with_vector("image", vec![0.5, 1.0, -0.2])
        .with_vector("text", vec![1.0, 2.0]),
        with_id(
            payload(
                Value::String("b, c".into()),
                null(),
                null(),
                Value::Bool(false),
            ),
            "b2",
        )
        .with_vector("text", vec![3.0, 4.0]),
        with_id(
            payload(Value::String("nv".into()), Value::Int(50), null(), null()),
            "c3",
        )
        .with_vector("image", vec![1.0, 2.0, 3.0]),
    ];
    assert_eq!(records, expected);
}

#[test]
fn npy_rows_pair_with_table_rows() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<Vec<f32>> = (0..3).map(|i| vec![i as f32, 1.0, 2.0]).collect();
    let texts: Vec<Vec<f32>> = (0..3).map(|i| vec![-(i as f32), 0.5]).collect();
    let image_path = dir.path().join("img.npy");
    let text_path = dir.path().join("txt.npy");
    write_npy_f32(&image_path, 3, images.iter().map(Vec::as_slice)).unwrap();
    write_npy_f32(&text_path, 2, texts.iter().map(Vec::as_slice)).unwrap();
    let table = write(
        &dir,
        "meta.csv",
        "case,weight,img0\nx0,1.5,9\nx1,,9\nx2,70,9\n",
    );
    let source = ImportSource::Npy {
        vectors: vec![("image".into(), image_path), ("text".into(), text_path)],
        table,
        id_column: "case".into(),
    };
    let importer = Importer::open(&source, &schema(), 10).unwrap();
    assert_eq!(importer.total_rows(), Some(3));
    let records = read_all(&source).unwrap();
    let weights = [Value::Float(1.5), Value::Null, Value::Float(70.0)];
    for (i, record) in records.iter().enumerate() {
        let expected = with_id(
            payload(Value::Null, Value::Null, weights[i].clone(), Value::Null),
            &format!("x{i}"),
        )
        .with_vector("image", images[i].clone())
        .with_vector("text", texts[i].clone());
        assert_eq!(record, &expected);
    }
    assert_eq!(records.len(), 3);
}

#[test]
fn jsonl_lines_become_records() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"id": "j1", "image": [1, 2.5, -3], "text": null, "dx": "mel", "age": 80.0, "weight": 3, "smoker": true, "other": [1]}"#,
        "   ",
        r#"{"id": 17, "text": [0.25, 0.5], "age": null}"#,
    ];
    let path = write(
        &dir,
        "cases.jsonl",
        format!("\u{feff}{}\r\n", lines.join("\n")),
    );
    let records = read_all(&jsonl_source(path)).unwrap();
    let expected = vec![
        with_id(
            payload(
                Value::String("mel".into()),
                Value::Int(80),
                Value::Float(3.0),
                Value::Bool(true),
            ),
            "j1",
        )
        .with_vector("image", vec![1.0, 2.5, -3.0]),
        with_id(
            payload(Value::Null, Value::Null, Value::Null, Value::Null),
            "17",
        )
        .with_vector("text", vec![0.25, 0.5]),
    ];
    assert_eq!(records, expected);
}

#[test]
fn reads_ten_thousand_rows_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(CSV_HEADER);
    let mut jsonl = String::new();
    for i in 0..10_000 {
        csv.push_str(&format!("r{i},dx,{i},no,{i},1,2,,,\n"));
        jsonl.push_str(&format!("{{\"id\": \"r{i}\", \"image\": [{i}, 1, 2]}}\n"));
    }
    let vectors: Vec<Vec<f32>> = (0..10_000).map(|i| vec![i as f32; 2]).collect();
    let npy = dir.path().join("t.npy");
    write_npy_f32(&npy, 2, vectors.iter().map(Vec::as_slice)).unwrap();
    let table = write(&dir, "big.csv", &csv);
    let sources = [
        csv_source(table.clone()),
        jsonl_source(write(&dir, "big.jsonl", &jsonl)),
        ImportSource::Npy {
            vectors: vec![("text".into(), npy)],
            table,
            id_column: "id".into(),
        },
    ];
    for source in &sources {
        let mut importer = Importer::open(source, &schema(), 64).unwrap();
        let (mut batches, mut rows) = (0, 0);
        while let Some(batch) = importer.next_batch().unwrap() {
            assert!(batch.len() == 64 || rows + batch.len() == 10_000);
            assert_eq!(batch[0].id, format!("r{rows}"));
            batches += 1;
            rows += batch.len();
        }
        assert_eq!((batches, rows), (157, 10_000));
        assert!(importer.next_batch().unwrap().is_none());
    }
}

#[test]
fn csv_cell_errors_name_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "a,mel,80,yes,,,,,,\nb,mel,eighty,no,,,,,,\n",
            "row 3, column age: `<hidden>` is not an integer",
        ),
        (
            "a,mel,80,maybe,,,,,,\n",
            "row 2, column smoker: `<hidden>` is not a boolean",
        ),
        (
            "a,mel,80,yes,1,,3,,,\n",
            "row 2, column img1: empty, but other cells of vector `image`",
        ),
        (
            "a,mel,80,yes,1,x2,3,,,\n",
            "row 2, column img1: `<hidden>` is not a number",
        ),
        (" ,mel,80,yes,,,,,,\n", "row 2, column id: id is empty"),
        (
            "a,\"m\nel\",80,yes,,,,,,\nc,mel,1.5,,,,,,,\n",
            "row 4, column age: `<hidden>` is not an integer",
        ),
    ];
    for (i, (rows, expected)) in cases.iter().enumerate() {
        let name = format!("cells{i}.csv");
        let path = write(&dir, &name, format!("{CSV_HEADER}{rows}"));
        let err = error_of(&csv_source(path), &[expected]);
        assert!(
            err.starts_with(&format!("{}: ", dir.path().join(&name).display())),
            "{err}"
        );
    }
}

#[test]
fn csv_rejects_invalid_utf8_nul_and_ragged_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = format!("{CSV_HEADER}a,mel,1,,,,,,,\nb,m").into_bytes();
    bytes.extend_from_slice(b"\xffl,2,,,,,,,\n");
    let path = write(&dir, "latin1.csv", bytes);
    error_of(
        &csv_source(path),
        &["latin1.csv: row 3, column dx: invalid UTF-8"],
    );

    let path = write(
        &dir,
        "nul.csv",
        format!("{CSV_HEADER}a,mel,1,,,,,,,\nb\0,mel,2,,,,,,,\n"),
    );
    error_of(
        &csv_source(path),
        &["nul.csv: row 3, column id: contains a NUL byte"],
    );

    let path = write(&dir, "ragged.csv", format!("{CSV_HEADER}a,mel,1,,,,\n"));
    error_of(
        &csv_source(path),
        &["ragged.csv: row 2: has 7 cells, the header has 10"],
    );

    // Invalid bytes in a column nobody imports do not matter.
    let path = write(&dir, "notes.csv", b"id,notes\na,\xff\0\n");
    let source = ImportSource::Csv {
        path,
        id_column: "id".into(),
        prefixes: vec![],
    };
    assert_eq!(read_all(&source).unwrap().len(), 1);
}

#[test]
fn csv_header_errors_name_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "noid.csv", "case,dx\na,b\n");
    error_of(
        &csv_source(path),
        &["noid.csv: no column `id` (the id column); the header has case, dx"],
    );

    let path = write(&dir, "twice.csv", "id,age,dx,age\na,1,b,2\n");
    error_of(
        &csv_source(path),
        &["twice.csv: column `age` appears twice"],
    );

    let path = write(&dir, "novec.csv", "id,img0,img1,txt0,txt1\n");
    error_of(
        &csv_source(path),
        &["novec.csv: no column `img2`", "vector field `image`"],
    );

    let path = write(&dir, "empty.csv", "");
    error_of(&csv_source(path), &["empty.csv: no column `id`"]);

    let path = write(&dir, "unknown.csv", CSV_HEADER);
    let source = ImportSource::Csv {
        path,
        id_column: "id".into(),
        prefixes: vec![("audio".into(), "aud".into())],
    };
    error_of(
        &source,
        &["unknown.csv: vector field `audio` is not in the schema (it has image, text)"],
    );
}

#[test]
fn csv_record_longer_than_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,dx\na,\"");
    // More than the limit plus csv's 64 KiB read-ahead, which the header read consumed.
    text.push_str(&"x".repeat(MAX_LINE_BYTES as usize + (256 << 10)));
    let path = write(&dir, "unclosed.csv", text);
    let source = ImportSource::Csv {
        path,
        id_column: "id".into(),
        prefixes: vec![],
    };
    error_of(
        &source,
        &["unclosed.csv: row 2: record is longer than 64 MiB"],
    );
}

fn npy_source(
    dir: &tempfile::TempDir,
    image_rows: usize,
    text_rows: usize,
    table_rows: usize,
) -> ImportSource {
    let image = dir.path().join("img.npy");
    let text = dir.path().join("txt.npy");
    write_npy_f32(&image, 3, vec![[0.0f32; 3].as_slice(); image_rows]).unwrap();
    write_npy_f32(&text, 2, vec![[0.0f32; 2].as_slice(); text_rows]).unwrap();
    let rows: String = (0..table_rows).map(|i| format!("r{i}\n")).collect();
    ImportSource::Npy {
        vectors: vec![("image".into(), image), ("text".into(), text)],
        table: write(dir, "meta.csv", format!("id\n{rows}")),
        id_column: "id".into(),
    }
}

#[test]
fn npy_row_counts_must_match() {
    let dir = tempfile::tempdir().unwrap();
    error_of(
        &npy_source(&dir, 3, 3, 2),
        &["meta.csv: 2 data rows, but ", "img.npy holds 3 rows"],
    );
    error_of(
        &npy_source(&dir, 3, 3, 4),
        &[
            "meta.csv: row 5: data row 4 has no vector: ",
            "img.npy holds only 3 rows",
        ],
    );
    error_of(
        &npy_source(&dir, 3, 4, 3),
        &["txt.npy: holds 4 rows, but ", "img.npy holds 3"],
    );
    assert_eq!(read_all(&npy_source(&dir, 3, 3, 3)).unwrap().len(), 3);
}

#[test]
fn npy_fields_and_dims_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.npy");
    write_npy_f32(&wide, 4, [[0.0f32; 4].as_slice()]).unwrap();
    let table = write(&dir, "t.csv", "id\na\n");
    let source = |field: &str| ImportSource::Npy {
        vectors: vec![(field.into(), wide.clone())],
        table: table.clone(),
        id_column: "id".into(),
    };
    error_of(
        &source("image"),
        &["wide.npy: vector field `image` has dimension 3 in the schema, but this file holds vectors of dimension 4"],
    );
    error_of(
        &source("audio"),
        &["t.csv: vector field `audio` is not in the schema"],
    );
    let twice = ImportSource::Npy {
        vectors: vec![
            ("image".into(), wide.clone()),
            ("image".into(), wide.clone()),
        ],
        table: table.clone(),
        id_column: "id".into(),
    };
    error_of(&twice, &["vector field `image` is given twice"]);
    let bad_table = write(&dir, "bad.csv", "id,age\na,old\n");
    let source = ImportSource::Npy {
        vectors: vec![],
        table: bad_table,
        id_column: "id".into(),
    };
    error_of(
        &source,
        &["bad.csv: row 2, column age: `<hidden>` is not an integer"],
    );
}

#[test]
fn jsonl_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"id": "a"}"#;
    let cases = [
        ("[1, 2]", "row 2: is not a JSON object (found an array)"),
        ("{\"id\": \"b\",", "row 2: invalid JSON: "),
        (
            r#"{"id": "b", "image": [1, "x", 3]}"#,
            "row 2, column image: value at index 1 is a string, not a number",
        ),
        (
            r#"{"id": "b", "image": "1,2,3"}"#,
            "row 2, column image: expected an array of numbers or null",
        ),
        (
            r#"{"id": "b", "age": "eighty"}"#,
            "row 2, column age: <hidden> is not an int",
        ),
        (
            r#"{"id": "b", "age": 80.5}"#,
            "row 2, column age: <hidden> is not an int",
        ),
        (
            r#"{"id": "b", "dx": {"a": 1}}"#,
            "row 2, column dx: an object is not a string",
        ),
        (r#"{"image": [1, 2, 3]}"#, "row 2, column id: no `id` key"),
        (
            r#"{"id": ["b"]}"#,
            "row 2, column id: the id is an array, not a string",
        ),
        (
            r#"{"id": "b\u0007"}"#,
            "row 2, column id: id contains a control character",
        ),
    ];
    for (i, (line, expected)) in cases.iter().enumerate() {
        let name = format!("bad{i}.jsonl");
        let path = write(&dir, &name, format!("{good}\n{line}\n{good}\n"));
        let expected = format!("{}: {expected}", dir.path().join(&name).display());
        error_of(&jsonl_source(path), &[&expected]);
    }
    let path = write(
        &dir,
        "utf.jsonl",
        b"{\"id\": \"a\"}\n\n{\"id\": \"\xff\"}\n",
    );
    error_of(&jsonl_source(path), &["utf.jsonl: row 3: invalid UTF-8"]);
}

#[test]
fn jsonl_line_longer_than_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("{\"id\": \"a\"}\n{\"id\": \"");
    text.push_str(&"x".repeat(MAX_LINE_BYTES as usize));
    text.push_str("\"}\n");
    let path = write(&dir, "long.jsonl", text);
    error_of(
        &jsonl_source(path),
        &["long.jsonl: row 2: line is longer than 64 MiB"],
    );
}

#[test]
fn missing_file_and_fused_after_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    error_of(&jsonl_source(missing), &["nope.jsonl: "]);
    let path = write(&dir, "two.jsonl", "[]\n{\"id\": \"a\"}\n");
    let mut importer = Importer::open(&jsonl_source(path), &schema(), 8).unwrap();
    assert!(importer.next_batch().is_err());
    assert!(importer.next_batch().unwrap().is_none());
}

/// Random edits of valid CSV and JSONL must give records or errors, never panics.
#[test]
fn never_panics_on_mutated_tables() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("{CSV_HEADER}a,\"m,x\",80,yes,1,2,3,,,n\nb,nv,,,,,,4,5,\n");
    let jsonl = "{\"id\": \"a\", \"image\": [1, 2, 3], \"age\": 3}\n{\"id\": 7, \"dx\": \"x\"}\n";
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let alphabet = b",\"\n\r\0\xff{}[]:0123456789.-eabnull ";
    for i in 0..1_000 {
        let (valid, extension) = if i % 2 == 0 {
            (csv.as_bytes(), "csv")
        } else {
            (jsonl.as_bytes(), "jsonl")
        };
        let mut bytes = valid.to_vec();
        for _ in 0..1 + next(4) {
            let at = next(bytes.len() + 1);
            match next(3) {
                0 => bytes.truncate(at),
                1 => bytes.insert(at, alphabet[next(alphabet.len())]),
                _ if at < bytes.len() => bytes[at] = alphabet[next(alphabet.len())],
                _ => {}
            }
        }
        // A fresh name each time: rewriting one file makes ext4 flush on every truncate.
        let path = write(&dir, &format!("f{i}.{extension}"), &bytes);
        let source = if i % 2 == 0 {
            csv_source(path)
        } else {
            jsonl_source(path)
        };
        let _ = read_all(&source);
    }
}

#[test]
fn importer_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Importer>();
}
