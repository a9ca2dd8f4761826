//! A segment's payload: one typed column per schema payload field.
//!
//! Segments written since format version 2 keep it in `payload.cols` (FORMAT.md §4.6), a
//! memory-mapped file of plain columns with blocked checksums: a value is read in place, so
//! opening a segment reads none of it and a flush or merge writes it column by column without
//! building the table in memory. Older segments keep `payload.rkyv`, checked whole at open.

use super::{cast_words, MappedFile};
use crate::error::{corrupt, Result};
use crate::fileio::{self, FileKind};
use crate::filter::ValueRef;
use crate::schema::Schema;
use crate::value::FieldType;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

pub const COLUMNS_FILE: &str = "payload.cols";
pub const LEGACY_FILE: &str = "payload.rkyv";
const BLOCK_SHIFT: u32 = 12;
/// Directory words per column: type, start, end, string bytes.
const ENTRY_WORDS: usize = 4;

fn type_code(t: FieldType) -> u64 {
    match t {
        FieldType::String => 0,
        FieldType::Int => 1,
        FieldType::Float => 2,
        FieldType::Bool => 3,
    }
}

/// Where one column's parts are, in bytes of the data.
#[derive(Debug, Clone)]
struct ColumnLayout {
    field_type: FieldType,
    /// Validity bitmap: bit set when the row has a value.
    validity: usize,
    /// Values: i64 / f64 per row, a bitmap for bools, `rows + 1` u64 offsets for strings.
    values: usize,
    /// String bytes (strings only).
    strings: Range<usize>,
}

impl ColumnLayout {
    /// The byte length of a column of `rows` rows with `string_bytes` bytes of text.
    fn len(field_type: FieldType, rows: usize, string_bytes: usize) -> Option<usize> {
        let words = rows.div_ceil(64);
        let values = match field_type {
            FieldType::Int | FieldType::Float => rows.checked_mul(8)?,
            FieldType::Bool => words * 8,
            FieldType::String => rows
                .checked_add(1)?
                .checked_mul(8)?
                .checked_add(string_bytes)?,
        };
        (words * 8).checked_add(values)?.checked_next_multiple_of(8)
    }

    fn at(field_type: FieldType, start: usize, rows: usize, string_bytes: usize) -> ColumnLayout {
        let validity = start;
        let values = start + rows.div_ceil(64) * 8;
        let strings_at = values + (rows + 1) * 8;
        ColumnLayout {
            field_type,
            validity,
            values,
            strings: strings_at..strings_at + string_bytes,
        }
    }
}

/// An open segment's payload.
#[derive(Debug)]
pub enum SegmentPayloadTable {
    Columns(PayloadColumns),
    /// A validated version 1 `payload.rkyv`.
    Legacy(MappedFile),
}

impl SegmentPayloadTable {
    pub fn open(dir: &Path, owner_uid: u64, schema: &Schema, rows: usize) -> Result<Self> {
        let columns = dir.join(COLUMNS_FILE);
        if columns.exists() {
            return PayloadColumns::open(&columns, owner_uid, schema, rows)
                .map(SegmentPayloadTable::Columns);
        }
        let file = MappedFile::open(&dir.join(LEGACY_FILE), FileKind::Payload, owner_uid)?;
        file.verify()?;
        super::check_payload(&file, schema, rows)?;
        Ok(SegmentPayloadTable::Legacy(file))
    }

    /// Row `row`'s value in column `column`. Reads of a version 2 file are in place and
    /// unchecked here: callers check the row ([`check_row`](Self::check_row)) or the whole
    /// table ([`check_all`](Self::check_all)) first; a value that fails anyway reads as null.
    pub fn value(&self, column: usize, row: usize) -> ValueRef<'_> {
        match self {
            SegmentPayloadTable::Columns(columns) => columns.value(column, row),
            SegmentPayloadTable::Legacy(file) => {
                super::archived_value(&super::legacy_archive(file).columns[column], row)
            }
        }
    }

    pub fn columns(&self) -> usize {
        match self {
            SegmentPayloadTable::Columns(columns) => columns.layout.len(),
            SegmentPayloadTable::Legacy(file) => super::legacy_archive(file).columns.len(),
        }
    }

    /// Checks the bytes of row `row`'s values (and that its strings are UTF-8).
    pub fn check_row(&self, row: usize) -> Result<()> {
        match self {
            SegmentPayloadTable::Columns(columns) => columns.check_row(row),
            SegmentPayloadTable::Legacy(_) => Ok(()),
        }
    }

    /// Checks every value once per process: before scans that read every row (filters, merges).
    pub fn check_all(&self) -> Result<()> {
        match self {
            SegmentPayloadTable::Columns(columns) => columns.check_all(),
            SegmentPayloadTable::Legacy(_) => Ok(()),
        }
    }

    pub fn file(&self) -> &MappedFile {
        match self {
            SegmentPayloadTable::Columns(columns) => &columns.file,
            SegmentPayloadTable::Legacy(file) => file,
        }
    }
}

/// A mapped `payload.cols`.
#[derive(Debug)]
pub struct PayloadColumns {
    file: MappedFile,
    rows: usize,
    layout: Vec<ColumnLayout>,
    checked_all: OnceLock<Result<(), String>>,
}

impl PayloadColumns {
    fn open(path: &Path, owner_uid: u64, schema: &Schema, rows: usize) -> Result<PayloadColumns> {
        let file = MappedFile::open(path, FileKind::PayloadColumns, owner_uid)?;
        let [file_rows, count, _] = file.header.extra;
        let fields = &schema.payload;
        let bad = |what: &str| corrupt(path, format!("payload columns: {what}"));
        if file_rows != rows as u64 || count != fields.len() as u64 || !file.is_blocked() {
            return Err(bad("row or column count disagrees with the manifest"));
        }
        let directory_len = fields.len() * ENTRY_WORDS * 8;
        if file.data().len() < directory_len {
            return Err(bad("directory cut short"));
        }
        file.check(0..directory_len)?;
        let words = cast_words::<u64>(path, &file.data()[..directory_len])?;
        let mut layout = Vec::with_capacity(fields.len());
        let mut expected_start = directory_len;
        for (field, entry) in fields.iter().zip(words.chunks_exact(ENTRY_WORDS)) {
            let (code, start, end, strings) = (
                entry[0],
                entry[1] as usize,
                entry[2] as usize,
                entry[3] as usize,
            );
            let len = ColumnLayout::len(field.field_type, rows, strings);
            if code != type_code(field.field_type)
                || start != expected_start
                || len.and_then(|l| start.checked_add(l)) != Some(end)
            {
                return Err(bad(&format!(
                    "column `{}` has the wrong type or length",
                    field.name
                )));
            }
            layout.push(ColumnLayout::at(field.field_type, start, rows, strings));
            expected_start = end;
        }
        if expected_start != file.data().len() {
            return Err(bad("trailing bytes after the last column"));
        }
        Ok(PayloadColumns {
            file,
            rows,
            layout,
            checked_all: OnceLock::new(),
        })
    }

    fn word(&self, at: usize) -> u64 {
        self.file
            .data()
            .get(at..at + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn bit(&self, bitmap: usize, row: usize) -> bool {
        self.word(bitmap + 8 * (row / 64)) & (1 << (row % 64)) != 0
    }

    /// The byte range of a string value, if its offsets are in order and inside the text.
    fn string_range(&self, column: &ColumnLayout, row: usize) -> Option<Range<usize>> {
        let at = column.values + 8 * row;
        let (start, end) = (self.word(at) as usize, self.word(at + 8) as usize);
        (start <= end && end <= column.strings.len())
            .then(|| column.strings.start + start..column.strings.start + end)
    }

    fn value(&self, column: usize, row: usize) -> ValueRef<'_> {
        let Some(layout) = self.layout.get(column) else {
            return ValueRef::Null;
        };
        if row >= self.rows || !self.bit(layout.validity, row) {
            return ValueRef::Null;
        }
        match layout.field_type {
            FieldType::Int => ValueRef::Int(self.word(layout.values + 8 * row) as i64),
            FieldType::Float => ValueRef::Float(f64::from_bits(self.word(layout.values + 8 * row))),
            FieldType::Bool => ValueRef::Bool(self.bit(layout.values, row)),
            FieldType::String => self
                .string_range(layout, row)
                .and_then(|range| std::str::from_utf8(&self.file.data()[range]).ok())
                .map_or(ValueRef::Null, ValueRef::Str),
        }
    }

    fn check_row(&self, row: usize) -> Result<()> {
        for (index, layout) in self.layout.iter().enumerate() {
            let word = layout.validity + 8 * (row / 64);
            self.file.check(word..word + 8)?;
            let value = match layout.field_type {
                FieldType::Bool => {
                    layout.values + 8 * (row / 64)..layout.values + 8 * (row / 64) + 8
                }
                FieldType::String => layout.values + 8 * row..layout.values + 8 * row + 16,
                _ => layout.values + 8 * row..layout.values + 8 * row + 8,
            };
            self.file.check(value)?;
            if layout.field_type == FieldType::String && self.bit(layout.validity, row) {
                let range = self.string_range(layout, row).ok_or_else(|| {
                    corrupt(
                        &self.file.path,
                        format!("payload column {index}: row {row} lies outside the text"),
                    )
                })?;
                self.file.check(range.clone())?;
                std::str::from_utf8(&self.file.data()[range]).map_err(|_| {
                    corrupt(
                        &self.file.path,
                        format!("payload column {index}: row {row} is not UTF-8"),
                    )
                })?;
            }
        }
        Ok(())
    }

    fn check_all(&self) -> Result<()> {
        let outcome = self.checked_all.get_or_init(|| {
            self.file
                .check(0..self.file.data().len())
                .and_then(|()| (0..self.rows).try_for_each(|row| self.check_row(row)))
                .map_err(|e| e.to_string())
        });
        outcome
            .clone()
            .map_err(|detail| corrupt(&self.file.path, super::detail_only(&detail)))
    }
}

/// Writes `payload.cols` for `rows` rows whose values `value(column, row)` gives, column by
/// column, streaming: nothing but one column's string lengths is held.
pub fn write_columns<'a>(
    dir: &Path,
    owner_uid: u64,
    schema: &Schema,
    rows: usize,
    value: &(dyn Fn(usize, usize) -> ValueRef<'a> + Sync),
) -> Result<()> {
    let path = dir.join(COLUMNS_FILE);
    let fields = &schema.payload;
    let mut directory = Vec::with_capacity(fields.len() * ENTRY_WORDS);
    let mut start = fields.len() * ENTRY_WORDS * 8;
    for (index, field) in fields.iter().enumerate() {
        let strings: usize = match field.field_type {
            FieldType::String => (0..rows).map(|row| as_str(value(index, row)).len()).sum(),
            _ => 0,
        };
        let len = ColumnLayout::len(field.field_type, rows, strings)
            .ok_or_else(|| corrupt(&path, "payload too large for a segment"))?;
        directory.extend([
            type_code(field.field_type),
            start as u64,
            (start + len) as u64,
            strings as u64,
        ]);
        start += len;
    }
    let extra = [rows as u64, fields.len() as u64, 0];
    fileio::write_streamed(
        &path,
        (FileKind::PayloadColumns, owner_uid, extra),
        Some(BLOCK_SHIFT),
        |out| {
            fileio::write_words(out, directory.iter().copied())?;
            for (index, field) in fields.iter().enumerate() {
                let cell = |row| value(index, row);
                fileio::write_words(
                    out,
                    bitmap(rows, |row| !matches!(cell(row), ValueRef::Null)),
                )?;
                let mut written = rows.div_ceil(64) * 8;
                match field.field_type {
                    FieldType::Int => fileio::write_words(
                        out,
                        (0..rows).map(|r| match cell(r) {
                            ValueRef::Int(x) => x as u64,
                            _ => 0,
                        }),
                    )?,
                    FieldType::Float => fileio::write_words(
                        out,
                        (0..rows).map(|r| match cell(r) {
                            ValueRef::Float(x) => x.to_bits(),
                            _ => 0,
                        }),
                    )?,
                    FieldType::Bool => fileio::write_words(
                        out,
                        bitmap(rows, |r| matches!(cell(r), ValueRef::Bool(true))),
                    )?,
                    FieldType::String => {
                        let ends = (0..rows).scan(0u64, |end, row| {
                            *end += as_str(cell(row)).len() as u64;
                            Some(*end)
                        });
                        fileio::write_words(out, std::iter::once(0u64).chain(ends))?;
                        for row in 0..rows {
                            let text = as_str(cell(row));
                            out.write_all(text.as_bytes())?;
                            written += text.len();
                        }
                    }
                }
                written += match field.field_type {
                    FieldType::Int | FieldType::Float => rows * 8,
                    FieldType::Bool => rows.div_ceil(64) * 8,
                    FieldType::String => (rows + 1) * 8,
                };
                out.write_all(&vec![0u8; written.next_multiple_of(8) - written])?;
            }
            Ok(())
        },
    )
}

fn as_str(value: ValueRef<'_>) -> &str {
    match value {
        ValueRef::Str(s) => s,
        _ => "",
    }
}

/// Bits of `rows` rows as little-endian u64 words.
fn bitmap(rows: usize, bit: impl Fn(usize) -> bool) -> impl Iterator<Item = u64> {
    (0..rows.div_ceil(64)).map(move |word| {
        (0..64)
            .filter(|i| word * 64 + i < rows && bit(word * 64 + i))
            .fold(0u64, |acc, i| acc | (1 << i))
    })
}
