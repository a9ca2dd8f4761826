//! JSONL sources: one JSON object per line, from a file (`medvec import --jsonl`) or from memory
//! (the body of a `medvec serve --allow-writes` upsert), checked field by field against the schema.

use super::MAX_LINE_BYTES;
use crate::error::{ImportError, Result};
use medvec_store::privacy::Redacted;
use medvec_store::{validate_id, FieldType, Record, Schema, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The records of JSONL held in memory (the body of a `medvec serve --allow-writes` upsert), read
/// and checked exactly as `medvec import --jsonl` reads a file; `name` labels the bytes in
/// errors (`name: line 3, field `age`: ...`, values shown only with `--verbose`).
pub fn jsonl_records(name: &Path, bytes: &[u8], schema: &Schema) -> Result<Vec<Record>> {
    let mut reader = JsonlReader {
        path: name.to_path_buf(),
        reader: bytes,
        line: Vec::new(),
        line_no: 0,
        id_field: "id".into(),
        schema: schema.clone(),
    };
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    Ok(records)
}

/// One JSON object per line, from a file or (`R` = `&[u8]`) from memory.
#[derive(Debug)]
pub(super) struct JsonlReader<R = BufReader<File>> {
    path: PathBuf,
    reader: R,
    line: Vec<u8>,
    line_no: u64,
    id_field: String,
    schema: Schema,
}

type JsonMap = serde_json::Map<String, serde_json::Value>;

impl JsonlReader {
    pub(super) fn open(path: &Path, id_field: &str, schema: &Schema) -> Result<JsonlReader> {
        let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
        Ok(JsonlReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(64 * 1024, file),
            line: Vec::new(),
            line_no: 0,
            id_field: id_field.to_string(),
            schema: schema.clone(),
        })
    }
}

impl<R: BufRead> JsonlReader<R> {
    pub(super) fn next_record(&mut self) -> Result<Option<Record>> {
        while self.read_line()? {
            let object = match self.parse_line()? {
                Some(object) => object,
                None => continue,
            };
            return self.record(&object).map(Some);
        }
        Ok(None)
    }

    /// Reads one line into `self.line`, at most [`MAX_LINE_BYTES`] of it; false at the end.
    fn read_line(&mut self) -> Result<bool> {
        self.line.clear();
        let mut limited = (&mut self.reader).take(MAX_LINE_BYTES + 1);
        let n = limited
            .read_until(b'\n', &mut self.line)
            .map_err(|e| ImportError::io(&self.path, e))?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if self.line.len() as u64 > MAX_LINE_BYTES && self.line.last() != Some(&b'\n') {
            let why = format!("line is longer than {} MiB", MAX_LINE_BYTES >> 20);
            return Err(ImportError::row(&self.path, self.line_no, why));
        }
        Ok(true)
    }

    /// The current line as a JSON object, or None for a blank line.
    fn parse_line(&self) -> Result<Option<JsonMap>> {
        let mut bytes = self.line.as_slice();
        if self.line_no == 1 {
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        let bytes = bytes.trim_ascii();
        if bytes.is_empty() {
            return Ok(None);
        }
        let row_error = |why: String| ImportError::row(&self.path, self.line_no, why);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            row_error(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to()
            ))
        })?;
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(object)) => Ok(Some(object)),
            Ok(other) => Err(row_error(format!(
                "is not a JSON object (found {})",
                json_kind(&other)
            ))),
            Err(e) => Err(row_error(format!("invalid JSON: {e}"))),
        }
    }

    fn cell_error(&self, key: &str, why: impl AsRef<str>) -> ImportError {
        ImportError::cell(&self.path, self.line_no, key, why)
    }

    fn record(&self, object: &JsonMap) -> Result<Record> {
        let mut record = Record::new(self.id(object)?);
        for field in &self.schema.vectors {
            if let Some(vector) = self.vector(object, &field.name)? {
                record.vectors.insert(field.name.clone(), vector);
            }
        }
        for field in &self.schema.payload {
            let json = object.get(&field.name).unwrap_or(&serde_json::Value::Null);
            let value = self.value(json, &field.name, field.field_type)?;
            record.payload.insert(field.name.clone(), value);
        }
        Ok(record)
    }

    /// A string id, or an integer one written as a JSON number.
    fn id(&self, object: &JsonMap) -> Result<String> {
        let key = self.id_field.as_str();
        let id = match object.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            Some(other) => {
                return Err(
                    self.cell_error(key, format!("the id is {}, not a string", json_kind(other)))
                )
            }
            None => return Err(self.cell_error(key, format!("no `{key}` key"))),
        };
        validate_id(&id).map_err(|why| self.cell_error(key, why))?;
        Ok(id)
    }

    /// A vector is an array of numbers; absent or null means the case lacks it. Its length is
    /// left for the store to check against the schema.
    fn vector(&self, object: &JsonMap, key: &str) -> Result<Option<Vec<f32>>> {
        let items = match object.get(key) {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::Array(items)) => items,
            Some(other) => {
                let why = format!(
                    "expected an array of numbers or null, found {}",
                    json_kind(other)
                );
                return Err(self.cell_error(key, why));
            }
        };
        let mut vector = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(value) = item.as_f64() else {
                let why = format!("value at index {i} is {}, not a number", json_kind(item));
                return Err(self.cell_error(key, why));
            };
            vector.push(value as f32);
        }
        Ok(Some(vector))
    }

    fn value(&self, json: &serde_json::Value, key: &str, field_type: FieldType) -> Result<Value> {
        let wrong = || {
            let shown = match json {
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                    json_kind(json).to_string()
                }
                // A payload value may identify a patient: shown only with --verbose.
                _ => Redacted(json).to_string(),
            };
            self.cell_error(key, format!("{shown} is not {}", with_article(field_type)))
        };
        Value::from_json(json)
            .ok_or_else(wrong)?
            .coerce(field_type)
            .map_err(|_| wrong())
    }
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn with_article(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::String => "a string",
        FieldType::Int => "an int",
        FieldType::Float => "a float",
        FieldType::Bool => "a bool",
    }
}
