//! Turns import sources (`.npy` + CSV, wide CSV, JSONL) into batches of [`Record`]s.
//!
//! Every source is streamed, so memory depends on the batch size and the widest row, never on
//! the file size. Errors name the file, the row (the line number for CSV and JSONL) and the
//! column, because someone has to find and fix that cell.

use crate::error::{ImportError, Result};
use crate::npy::NpyReader;
use medvec_store::privacy::Redacted;
use medvec_store::{validate_id, FieldType, PayloadField, Record, Schema, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The id column used when the user names none.
pub const DEFAULT_ID_COLUMN: &str = "id";

/// The longest JSONL line or CSV record accepted; longer ones are almost surely a broken file
/// (no newlines, an unclosed quote) and must not be buffered whole.
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSource {
    /// Row i of each .npy pairs with data row i of the CSV table; `id_column` (default "id")
    /// names the id column.
    Npy {
        vectors: Vec<(String, PathBuf)>,
        table: PathBuf,
        id_column: String,
    },
    /// One CSV with an id column, payload columns and vector columns named
    /// `PREFIX0..PREFIX{dim-1}`; `prefixes` pairs vector fields with column prefixes.
    Csv {
        path: PathBuf,
        id_column: String,
        prefixes: Vec<(String, String)>,
    },
    /// One JSON object per line: `{"id": "...", "<vector field>": [floats] or null,
    /// "<payload field>": value, ...}`.
    Jsonl { path: PathBuf, id_field: String },
}

/// Reads an [`ImportSource`] batch by batch.
///
/// After an error the importer is finished: later calls to [`Importer::next_batch`] return
/// `Ok(None)`, so callers must stop at the first error.
#[derive(Debug)]
pub struct Importer {
    reader: Reader,
    batch_size: usize,
    total_rows: Option<u64>,
    finished: bool,
}

#[derive(Debug)]
enum Reader {
    Npy(NpyTable),
    Csv(CsvTable),
    Jsonl(JsonlReader),
}

impl Importer {
    /// Opens the source and checks its columns against `schema`. A `batch_size` of 0 means 1.
    pub fn open(source: &ImportSource, schema: &Schema, batch_size: usize) -> Result<Importer> {
        let reader = match source {
            ImportSource::Npy {
                vectors,
                table,
                id_column,
            } => Reader::Npy(NpyTable::open(vectors, table, id_column, schema)?),
            ImportSource::Csv {
                path,
                id_column,
                prefixes,
            } => Reader::Csv(CsvTable::open(path, id_column, schema, prefixes)?),
            ImportSource::Jsonl { path, id_field } => {
                Reader::Jsonl(JsonlReader::open(path, id_field, schema)?)
            }
        };
        let total_rows = match &reader {
            Reader::Npy(npy) => npy.total_rows(),
            Reader::Csv(_) | Reader::Jsonl(_) => None,
        };
        Ok(Importer {
            reader,
            batch_size: batch_size.max(1),
            total_rows,
            finished: false,
        })
    }

    /// Number of data rows when known up front (npy: from the header), for a progress bar.
    pub fn total_rows(&self) -> Option<u64> {
        self.total_rows
    }

    /// Next batch of at most batch_size records, or None at the end.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Record>>> {
        let mut batch = Vec::with_capacity(self.batch_size.min(4096));
        while !self.finished && batch.len() < self.batch_size {
            let next = match &mut self.reader {
                Reader::Npy(npy) => npy.next_record(),
                Reader::Csv(csv) => csv.next_record(),
                Reader::Jsonl(jsonl) => jsonl.next_record(),
            };
            match next {
                Ok(Some(record)) => batch.push(record),
                Ok(None) => self.finished = true,
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}

/// The schema's vector fields named in a source, checked for existence and repetition.
fn check_vector_fields<'a>(
    path: &Path,
    schema: &'a Schema,
    fields: impl Iterator<Item = &'a str>,
) -> Result<Vec<usize>> {
    let mut dims = Vec::new();
    let mut seen = Vec::new();
    for field in fields {
        let Ok(vector) = schema.vector_field(field) else {
            let known: Vec<&str> = schema.vectors.iter().map(|v| v.name.as_str()).collect();
            let why = format!(
                "vector field `{field}` is not in the schema (it has {})",
                known.join(", ")
            );
            return Err(ImportError::file(path, why));
        };
        if seen.contains(&field) {
            return Err(ImportError::file(
                path,
                format!("vector field `{field}` is given twice"),
            ));
        }
        seen.push(field);
        dims.push(vector.dim);
    }
    Ok(dims)
}

/// `.npy` vector files read in step with a CSV table of ids and payload.
#[derive(Debug)]
struct NpyTable {
    table: CsvTable,
    npys: Vec<(String, NpyReader)>,
    rows_done: u64,
}

impl NpyTable {
    fn open(
        vectors: &[(String, PathBuf)],
        table: &Path,
        id_column: &str,
        schema: &Schema,
    ) -> Result<NpyTable> {
        let fields = vectors.iter().map(|(field, _)| field.as_str());
        let dims = check_vector_fields(table, schema, fields)?;
        let mut npys: Vec<(String, NpyReader)> = Vec::with_capacity(vectors.len());
        for ((field, path), dim) in vectors.iter().zip(dims) {
            let npy = open_npy(field, path, dim)?;
            if let Some((_, first)) = npys.first() {
                check_same_rows(first, &npy)?;
            }
            npys.push((field.clone(), npy));
        }
        let table = CsvTable::open(table, id_column, schema, &[])?;
        Ok(NpyTable {
            table,
            npys,
            rows_done: 0,
        })
    }

    fn total_rows(&self) -> Option<u64> {
        self.npys.first().map(|(_, npy)| npy.rows() as u64)
    }

    fn next_record(&mut self) -> Result<Option<Record>> {
        let Some(line) = self.table.next_row()? else {
            return self.check_all_rows_used().map(|()| None);
        };
        let mut record = self.table.record(line)?;
        for (field, npy) in &mut self.npys {
            let mut vector = Vec::with_capacity(npy.dim());
            if npy.read_rows(1, &mut vector)? == 0 {
                let why = format!(
                    "data row {} has no vector: {} holds only {} rows",
                    self.rows_done + 1,
                    npy.path().display(),
                    npy.rows()
                );
                return Err(ImportError::row(&self.table.path, line, why));
            }
            record.vectors.insert(field.clone(), vector);
        }
        self.rows_done += 1;
        Ok(Some(record))
    }

    /// At the end of the table every `.npy` row must have been used.
    fn check_all_rows_used(&self) -> Result<()> {
        match self.npys.first() {
            Some((_, npy)) if npy.rows() as u64 != self.rows_done => {
                let why = format!(
                    "{} data rows, but {} holds {} rows; row i of each .npy pairs with data row i of the table",
                    self.rows_done,
                    npy.path().display(),
                    npy.rows()
                );
                Err(ImportError::file(&self.table.path, why))
            }
            _ => Ok(()),
        }
    }
}

fn open_npy(field: &str, path: &Path, dim: usize) -> Result<NpyReader> {
    let npy = NpyReader::open(path)?;
    if npy.dim() != dim {
        let why = format!(
            "vector field `{field}` has dimension {dim} in the schema, but this file holds vectors of dimension {}",
            npy.dim()
        );
        return Err(ImportError::file(path, why));
    }
    Ok(npy)
}

fn check_same_rows(first: &NpyReader, other: &NpyReader) -> Result<()> {
    if first.rows() == other.rows() {
        return Ok(());
    }
    let why = format!(
        "holds {} rows, but {} holds {}; every .npy needs one row per data row of the table",
        other.rows(),
        first.path().display(),
        first.rows()
    );
    Err(ImportError::file(other.path(), why))
}

/// Counts bytes read since the last complete CSV record and fails past [`MAX_LINE_BYTES`], so
/// one endless record cannot exhaust memory (csv buffers a record whole).
#[derive(Debug)]
struct Bounded<R> {
    inner: R,
    since_record: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.since_record > MAX_LINE_BYTES {
            return Err(io::Error::other("CSV record too long"));
        }
        let n = self.inner.read(buf)?;
        self.since_record += n as u64;
        Ok(n)
    }
}

/// The columns `{prefix}0..{prefix}{dim-1}` holding one vector field.
#[derive(Debug)]
struct VectorColumns {
    field: String,
    columns: Vec<usize>,
}

/// A CSV table with an id column, payload columns and optionally vector columns.
#[derive(Debug)]
struct CsvTable {
    path: PathBuf,
    reader: csv::Reader<Bounded<File>>,
    record: csv::ByteRecord,
    headers: Vec<String>,
    id: usize,
    payload: Vec<(PayloadField, Option<usize>)>,
    vectors: Vec<VectorColumns>,
}

impl CsvTable {
    fn open(
        path: &Path,
        id_column: &str,
        schema: &Schema,
        prefixes: &[(String, String)],
    ) -> Result<CsvTable> {
        let dims = check_vector_fields(path, schema, prefixes.iter().map(|(f, _)| f.as_str()))?;
        let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(64 * 1024)
            .from_reader(Bounded {
                inner: file,
                since_record: 0,
            });
        let headers = read_headers(path, &mut reader)?;
        let columns = ColumnIndex::new(path, &headers);
        let id = columns
            .find(id_column)?
            .ok_or_else(|| columns.missing(id_column, "the id column"))?;
        let mut payload = Vec::with_capacity(schema.payload.len());
        for field in &schema.payload {
            payload.push((field.clone(), columns.find(&field.name)?));
        }
        let mut vectors = Vec::with_capacity(prefixes.len());
        for ((field, prefix), dim) in prefixes.iter().zip(dims) {
            vectors.push(columns.vector(field, prefix, dim)?);
        }
        Ok(CsvTable {
            path: path.to_path_buf(),
            reader,
            record: csv::ByteRecord::new(),
            headers,
            id,
            payload,
            vectors,
        })
    }

    fn next_record(&mut self) -> Result<Option<Record>> {
        match self.next_row()? {
            Some(line) => self.record(line).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the next data row into `self.record` and returns its line number.
    fn next_row(&mut self) -> Result<Option<u64>> {
        self.reader.get_mut().since_record = 0;
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                if self.record.len() != self.headers.len() {
                    let why = format!(
                        "has {} cells, the header has {}",
                        self.record.len(),
                        self.headers.len()
                    );
                    return Err(ImportError::row(&self.path, line, why));
                }
                Ok(Some(line))
            }
            Err(e) => Err(self.csv_error(e)),
        }
    }

    fn csv_error(&self, e: csv::Error) -> ImportError {
        let line = e
            .position()
            .map_or(self.reader.position().line(), |p| p.line());
        if self.reader.get_ref().since_record > MAX_LINE_BYTES {
            let why = format!(
                "record is longer than {} MiB (an unclosed quote?)",
                MAX_LINE_BYTES >> 20
            );
            return ImportError::row(&self.path, line, why);
        }
        if !matches!(e.kind(), csv::ErrorKind::Io(_)) {
            return ImportError::row(&self.path, line, e.to_string());
        }
        match e.into_kind() {
            csv::ErrorKind::Io(source) => ImportError::io(&self.path, source),
            _ => ImportError::row(&self.path, line, "unreadable record"),
        }
    }

    fn column_name(&self, column: usize) -> &str {
        self.headers.get(column).map_or("?", String::as_str)
    }

    fn cell_error(&self, line: u64, column: usize, why: impl AsRef<str>) -> ImportError {
        ImportError::cell(&self.path, line, self.column_name(column), why)
    }

    /// The text of one cell, refusing invalid UTF-8 and NUL bytes (signs of a binary or
    /// UTF-16 file that would otherwise import as garbage).
    fn cell(&self, line: u64, column: usize) -> Result<&str> {
        let bytes = self.record.get(column).unwrap_or_default();
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let why = format!(
                "invalid UTF-8 at byte {} of the cell; save the file as UTF-8",
                e.valid_up_to()
            );
            self.cell_error(line, column, why)
        })?;
        if text.contains('\0') {
            return Err(self.cell_error(line, column, "contains a NUL byte"));
        }
        Ok(text)
    }

    fn record(&self, line: u64) -> Result<Record> {
        // Spaces around a CSV id are formatting, and an id with them could never be looked up.
        let id = self.cell(line, self.id)?.trim();
        validate_id(id).map_err(|why| self.cell_error(line, self.id, why))?;
        let mut record = Record::new(id);
        for (field, column) in &self.payload {
            let value = match column {
                Some(column) => Value::parse_as(self.cell(line, *column)?, field.field_type)
                    .map_err(|why| self.cell_error(line, *column, why))?,
                None => Value::Null,
            };
            record.payload.insert(field.name.clone(), value);
        }
        for vector in &self.vectors {
            if let Some(values) = self.vector(line, vector)? {
                record.vectors.insert(vector.field.clone(), values);
            }
        }
        Ok(record)
    }

    /// A vector from its columns: all empty is an absent vector (a case may lack a modality),
    /// partly empty is an error.
    fn vector(&self, line: u64, vector: &VectorColumns) -> Result<Option<Vec<f32>>> {
        let mut values = Vec::with_capacity(vector.columns.len());
        let mut first_empty = None;
        for &column in &vector.columns {
            let text = self.cell(line, column)?.trim();
            if text.is_empty() {
                first_empty.get_or_insert(column);
                continue;
            }
            let value = text.parse::<f32>().map_err(|_| {
                let why = format!("`{}` is not a number", Redacted(text));
                self.cell_error(line, column, why)
            })?;
            values.push(value);
        }
        match first_empty {
            None => Ok(Some(values)),
            Some(_) if values.is_empty() => Ok(None),
            Some(column) => {
                let why = format!(
                    "empty, but other cells of vector `{}` are filled; fill all {} or leave all empty",
                    vector.field,
                    vector.columns.len()
                );
                Err(self.cell_error(line, column, why))
            }
        }
    }
}

/// Header names, trimmed and without the byte-order mark that Excel writes.
fn read_headers(path: &Path, reader: &mut csv::Reader<Bounded<File>>) -> Result<Vec<String>> {
    let headers = match reader.byte_headers() {
        Ok(headers) => headers.clone(),
        Err(e) => return Err(header_error(path, e, reader.get_ref().since_record)),
    };
    let mut names: Vec<String> = headers
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    if let Some(first) = names.first_mut() {
        if let Some(rest) = first.strip_prefix('\u{feff}') {
            *first = rest.trim().to_string();
        }
    }
    Ok(names)
}

fn header_error(path: &Path, e: csv::Error, bytes_read: u64) -> ImportError {
    if bytes_read > MAX_LINE_BYTES {
        return ImportError::row(
            path,
            1,
            format!("header is longer than {} MiB", MAX_LINE_BYTES >> 20),
        );
    }
    if !matches!(e.kind(), csv::ErrorKind::Io(_)) {
        return ImportError::row(path, 1, format!("unreadable header: {e}"));
    }
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ImportError::io(path, source),
        _ => ImportError::row(path, 1, "unreadable header"),
    }
}

/// Finds columns by header name; a name used twice is ambiguous only if we read it.
struct ColumnIndex<'a> {
    path: &'a Path,
    headers: &'a [String],
    positions: HashMap<&'a str, Vec<usize>>,
}

impl<'a> ColumnIndex<'a> {
    fn new(path: &'a Path, headers: &'a [String]) -> ColumnIndex<'a> {
        let mut positions: HashMap<&str, Vec<usize>> = HashMap::with_capacity(headers.len());
        for (i, name) in headers.iter().enumerate() {
            positions.entry(name.as_str()).or_default().push(i);
        }
        ColumnIndex {
            path,
            headers,
            positions,
        }
    }

    fn find(&self, name: &str) -> Result<Option<usize>> {
        match self.positions.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(*one)),
            Some([a, b, ..]) => {
                let why = format!(
                    "column `{name}` appears twice in the header (columns {} and {})",
                    a + 1,
                    b + 1
                );
                Err(ImportError::file(self.path, why))
            }
        }
    }

    fn missing(&self, name: &str, role: &str) -> ImportError {
        let shown: Vec<&str> = self.headers.iter().take(20).map(String::as_str).collect();
        let more = if self.headers.len() > shown.len() {
            ", ..."
        } else {
            ""
        };
        let why = format!(
            "no column `{name}` ({role}); the header has {}{more}",
            if shown.is_empty() {
                "no columns".to_string()
            } else {
                shown.join(", ")
            }
        );
        ImportError::file(self.path, why)
    }

    fn vector(&self, field: &str, prefix: &str, dim: usize) -> Result<VectorColumns> {
        let mut columns = Vec::with_capacity(dim);
        for i in 0..dim {
            let name = format!("{prefix}{i}");
            let missing = || {
                let role = format!(
                    "vector field `{field}` needs columns {prefix}0..{prefix}{}",
                    dim - 1
                );
                self.missing(&name, &role)
            };
            columns.push(self.find(&name)?.ok_or_else(missing)?);
        }
        Ok(VectorColumns {
            field: field.to_string(),
            columns,
        })
    }
}

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
struct JsonlReader<R = BufReader<File>> {
    path: PathBuf,
    reader: R,
    line: Vec<u8>,
    line_no: u64,
    id_field: String,
    schema: Schema,
}

type JsonMap = serde_json::Map<String, serde_json::Value>;

impl JsonlReader {
    fn open(path: &Path, id_field: &str, schema: &Schema) -> Result<JsonlReader> {
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
    fn next_record(&mut self) -> Result<Option<Record>> {
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

#[cfg(test)]
mod tests {
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
        let jsonl =
            "{\"id\": \"a\", \"image\": [1, 2, 3], \"age\": 3}\n{\"id\": 7, \"dx\": \"x\"}\n";
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
}
