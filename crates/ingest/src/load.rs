//! Moving precomputed embeddings between files and a collection: import in logged batches,
//! export in stored order.

use crate::error::ImportError;
use crate::import::{ImportSource, Importer};
use crate::npy::{write_npy_f32, NpyReader};
use medvec_store::{Collection, StoreError};
use std::path::Path;
use std::time::Instant;

/// Errors of a load: reading the input or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A batch the store refused (a wrong dimension, say), with where it came from.
    #[error("{path}: records {first}-{last}: {refused}")]
    Batch {
        path: std::path::PathBuf,
        first: u64,
        last: u64,
        refused: StoreError,
    },
    /// Writing an export file failed.
    #[error("{}: export: {detail}", .path.display())]
    Export {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("{path}: {source}")]
    Csv {
        path: std::path::PathBuf,
        #[source]
        source: csv::Error,
    },
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub records: u64,
    pub batches: u64,
    pub seconds: f64,
}

/// Imports every record of `source` into `collection`, `batch_size` records per logged batch.
/// `progress(done, total)` is called after each batch. A bad row stops the import with an error
/// naming the file, row and column; batches before it stay stored, and re-running the import
/// upserts the same ids again, so it is safe to fix the file and repeat.
///
/// ```
/// use medvec_store::{Store, Schema, VectorField, PayloadField};
/// use medvec_ingest::import::ImportSource;
/// let dir = tempfile::tempdir().unwrap();
/// let jsonl = dir.path().join("cases.jsonl");
/// std::fs::write(&jsonl, "{\"id\": \"a\", \"image\": [1, 0], \"dx\": \"mel\"}\n").unwrap();
/// let store = Store::create(dir.path().join("store")).unwrap();
/// let schema = Schema { vectors: vec![VectorField::parse("image:2:cosine").unwrap()], payload: vec![PayloadField::parse("dx:string").unwrap()] };
/// let collection = store.create_collection("cases", schema).unwrap();
/// let source = ImportSource::Jsonl { path: jsonl, id_field: "id".into() };
/// let summary = medvec_ingest::load::import_into(&collection, &source, 64, |_, _| {}).unwrap();
/// assert_eq!(summary.records, 1);
/// ```
pub fn import_into(
    collection: &Collection,
    source: &ImportSource,
    batch_size: usize,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<ImportSummary, LoadError> {
    let started = Instant::now();
    let mut importer = Importer::open(source, &collection.schema(), batch_size)?;
    let total = importer.total_rows();
    let (mut records, mut batches) = (0u64, 0u64);
    while let Some(batch) = importer.next_batch()? {
        collection
            .upsert(&batch)
            .map_err(|refused| LoadError::Batch {
                path: main_file(source).to_path_buf(),
                first: records + 1,
                last: records + batch.len() as u64,
                refused,
            })?;
        records += batch.len() as u64;
        batches += 1;
        progress(records, total);
    }
    Ok(ImportSummary {
        records,
        batches,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The file that names the records (and so the one to fix) of an import source.
fn main_file(source: &ImportSource) -> &Path {
    match source {
        ImportSource::Npy { table, .. } => table,
        ImportSource::Csv { path, .. } | ImportSource::Jsonl { path, .. } => path,
    }
}

/// Reads a whole `.npy` matrix (for query files, which are small).
pub fn read_matrix(path: &Path) -> Result<Vec<Vec<f32>>, ImportError> {
    let mut reader = NpyReader::open(path)?;
    let dim = reader.dim();
    let mut flat = Vec::new();
    reader.read_rows(reader.rows(), &mut flat)?;
    Ok(flat.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
}

/// Writes the ids and payload of every live record to `table` (CSV) and, when `vectors` names a
/// field and a path, that field to a float32 `.npy` in the same order. Rows that lack the vector
/// get zeros, flagged by a `has_<field>` column. Returns the number of rows.
pub fn export_collection(
    collection: &Collection,
    vectors: Option<(&str, &Path)>,
    table: &Path,
) -> Result<u64, LoadError> {
    let schema = collection.schema();
    let dim = match vectors {
        Some((field, _)) => Some(schema.vector_field(field)?.dim),
        None => None,
    };
    let csv_error = |source| LoadError::Csv {
        path: table.to_path_buf(),
        source,
    };
    let file = crate::output::create_private(table).map_err(|e| csv_error(e.into()))?;
    let mut writer = csv::Writer::from_writer(file);
    let mut header = vec!["id".to_string()];
    header.extend(schema.payload.iter().map(|f| f.name.clone()));
    if let Some((field, _)) = vectors {
        header.push(format!("has_{field}"));
    }
    writer.write_record(&header).map_err(csv_error)?;
    let mut matrix: Vec<f32> = Vec::new();
    let mut rows = 0u64;
    collection.scan(|record| {
        let mut cells = vec![record.id.clone()];
        cells.extend(schema.payload.iter().map(|f| {
            record
                .payload
                .get(&f.name)
                .map(|v| v.to_string())
                .unwrap_or_default()
        }));
        if let (Some((field, _)), Some(dim)) = (vectors, dim) {
            let vector = record.vectors.get(field);
            cells.push(vector.is_some().to_string());
            matrix.extend(vector.cloned().unwrap_or_else(|| vec![0.0; dim]));
        }
        writer
            .write_record(&cells)
            .map_err(|e| StoreError::InvalidQuery(format!("{}: {e}", table.display())))?;
        rows += 1;
        Ok(())
    })?;
    writer.flush().map_err(|e| csv_error(e.into()))?;
    if let (Some((_, path)), Some(dim)) = (vectors, dim) {
        write_npy_f32(path, dim, matrix.chunks(dim))?;
    }
    Ok(rows)
}
