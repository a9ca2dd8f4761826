//! Export to Apache Parquet, the columnar format that distributed engines (Spark, Dask, Ray,
//! DuckDB, Polars, BigQuery) and pandas read, so a collection can leave the clinic's machine for a
//! cluster without a custom reader.
//!
//! One row per live record, in stored order:
//! - `id`: UTF-8, never null;
//! - one column per payload field, typed (`string` → UTF-8, `int` → Int64, `float` → Float64,
//!   `bool` → Boolean), null where the record has no value;
//! - one column per vector field, `FixedSizeList<Float32>` of the field's dimension, null where the
//!   record lacks that vector.
//!
//! The file is written in row groups of bounded size (memory does not grow with the collection),
//! Snappy-compressed, to a temporary sibling that is renamed into place when complete.

use crate::load::LoadError;
use arrow_array::builder::{
    BooleanBuilder, FixedSizeListBuilder, Float32Builder, Float64Builder, Int64Builder,
    StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use medvec_store::{Collection, FieldType, Record, Schema, StoreError, Value};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per row group unless told otherwise.
pub const DEFAULT_ROWS_PER_GROUP: usize = 8192;

/// Writes every live record of `collection` to the Parquet file `path` (see the
/// [module docs](self) for the columns); returns the number of rows.
///
/// ```
/// # use medvec_store::*;
/// # let dir = tempfile::tempdir().unwrap();
/// # let store = Store::create(dir.path().join("s")).unwrap();
/// # let schema = Schema { vectors: vec![VectorField::parse("image:2:cosine").unwrap()], payload: vec![PayloadField::parse("age:int").unwrap()] };
/// let cases = store.create_collection("cases", schema).unwrap();
/// cases.upsert(&[Record::new("a").with_vector("image", vec![1.0, 0.0]).with_value("age", Value::Int(61))]).unwrap();
/// let out = dir.path().join("cases.parquet");
/// let rows = medvec_ingest::columnar::export_parquet(&cases, &out, 8192).unwrap();
/// assert_eq!(rows, 1);
/// assert!(std::fs::read(&out).unwrap().starts_with(b"PAR1"));
/// ```
pub fn export_parquet(
    collection: &Collection,
    path: &Path,
    rows_per_group: usize,
) -> Result<u64, LoadError> {
    let schema = collection.schema();
    let arrow = Arc::new(arrow_schema(&schema));
    let temp = temp_path(path);
    let fail = |detail: String| LoadError::Export {
        path: path.to_path_buf(),
        detail,
    };
    let file = crate::output::create_private(&temp).map_err(|e| fail(e.to_string()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(rows_per_group.max(1)))
        .build();
    let mut writer = ArrowWriter::try_new(file, arrow.clone(), Some(properties))
        .map_err(|e| fail(e.to_string()))?;
    let mut pending: Vec<Record> = Vec::with_capacity(rows_per_group.max(1));
    let mut rows = 0u64;
    let mut write = |pending: &mut Vec<Record>| -> Result<(), String> {
        let batch = record_batch(&schema, &arrow, pending)?;
        writer.write(&batch).map_err(|e| e.to_string())?;
        rows += pending.len() as u64;
        pending.clear();
        Ok(())
    };
    let scanned = collection.scan(|record| {
        pending.push(record);
        if pending.len() >= rows_per_group.max(1) {
            write(&mut pending).map_err(StoreError::InvalidQuery)?;
        }
        Ok(())
    });
    let finished = scanned
        .map_err(|e| fail(e.to_string()))
        .and_then(|()| write(&mut pending).map_err(fail));
    let closed = finished.and_then(|()| writer.close().map(drop).map_err(|e| fail(e.to_string())));
    if let Err(e) = closed {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, path).map_err(|e| fail(e.to_string()))?;
    Ok(rows)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The Arrow schema of a collection's export.
fn arrow_schema(schema: &Schema) -> ArrowSchema {
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    for field in &schema.payload {
        let data_type = match field.field_type {
            FieldType::String => DataType::Utf8,
            FieldType::Int => DataType::Int64,
            FieldType::Float => DataType::Float64,
            FieldType::Bool => DataType::Boolean,
        };
        fields.push(Field::new(&field.name, data_type, true));
    }
    for field in &schema.vectors {
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let data_type = DataType::FixedSizeList(item, field.dim as i32);
        fields.push(Field::new(&field.name, data_type, true));
    }
    ArrowSchema::new(fields)
}

/// One row group's columns, in the order of [`arrow_schema`].
fn record_batch(
    schema: &Schema,
    arrow: &Arc<ArrowSchema>,
    records: &[Record],
) -> Result<RecordBatch, String> {
    let mut ids = StringBuilder::new();
    records.iter().for_each(|r| ids.append_value(&r.id));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ids.finish())];
    for field in &schema.payload {
        columns.push(payload_column(records, &field.name, field.field_type));
    }
    for field in &schema.vectors {
        columns.push(vector_column(records, &field.name, field.dim));
    }
    RecordBatch::try_new(arrow.clone(), columns).map_err(|e| e.to_string())
}

fn payload_column(records: &[Record], name: &str, field_type: FieldType) -> ArrayRef {
    let values = records.iter().map(|r| r.payload.get(name));
    match field_type {
        FieldType::String => {
            let mut b = StringBuilder::new();
            values.for_each(|v| match v {
                Some(Value::String(s)) => b.append_value(s),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        FieldType::Int => {
            let mut b = Int64Builder::new();
            values.for_each(|v| match v {
                Some(Value::Int(i)) => b.append_value(*i),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        FieldType::Float => {
            let mut b = Float64Builder::new();
            values.for_each(|v| match v {
                Some(Value::Float(x)) => b.append_value(*x),
                Some(Value::Int(i)) => b.append_value(*i as f64),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        FieldType::Bool => {
            let mut b = BooleanBuilder::new();
            values.for_each(|v| match v {
                Some(Value::Bool(x)) => b.append_value(*x),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
    }
}

fn vector_column(records: &[Record], name: &str, dim: usize) -> ArrayRef {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let mut b = FixedSizeListBuilder::with_capacity(
        Float32Builder::with_capacity(records.len() * dim),
        dim as i32,
        records.len(),
    )
    .with_field(item);
    for record in records {
        match record.vectors.get(name) {
            Some(vector) => {
                b.values().append_slice(vector);
                b.append(true);
            }
            None => {
                // A null list still occupies `dim` child slots.
                b.values().append_slice(&vec![0.0; dim]);
                b.append(false);
            }
        }
    }
    Arc::new(b.finish())
}
