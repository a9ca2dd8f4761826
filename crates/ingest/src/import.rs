//! Turns import sources (`.npy` + CSV, wide CSV, JSONL) into batches of [`Record`]s.
//!
//! Every source is streamed, so memory depends on the batch size and the widest row, never on
//! the file size. Errors name the file, the row (the line number for CSV and JSONL) and the
//! column, because someone has to find and fix that cell.

use crate::error::{ImportError, Result};
use crate::npy::NpyReader;
use jsonl::JsonlReader;
use medvec_store::privacy::Redacted;
use medvec_store::{validate_id, PayloadField, Record, Schema, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

mod jsonl;
pub use jsonl::jsonl_records;

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

#[cfg(test)]
mod tests;
