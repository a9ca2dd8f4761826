//! Immutable segments: a directory of column files written once at flush or compaction.
//!
//! Per vector field a contiguous little-endian `f32` column (`<field>.f32`) followed by each row's
//! reciprocal norm, and an HNSW graph (`<field>.hnsw`) when the segment is large enough; the ids
//! and vector presence in `ids.idx`, the payload columns in `payload.cols` (`ids.rkyv` and
//! `payload.rkyv` before format version 2). All are read through
//! memory maps and never modified after the manifest references them.

use crate::error::{corrupt, Result};
use crate::fileio::{self, FileKind, Header};
use crate::filter::{PayloadRow, ValueRef};
use crate::graph;
use crate::schema::{Schema, VectorField};
use crate::value::FieldType;
use crate::value::Value;
use crate::wal::LoggedRecord;
use std::path::{Path, PathBuf};

#[cfg(not(target_endian = "little"))]
compile_error!("medvec maps little-endian column files directly and needs a little-endian CPU");

/// One payload column, null where a row has no value.
#[derive(Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum PayloadColumn {
    String(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
}

#[derive(Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SegmentPayload {
    pub columns: Vec<PayloadColumn>,
}

/// Segments with fewer vectors than this in a field get no graph; exact scan is as fast.
pub const MIN_GRAPH_ROWS: usize = 1024;

/// Bit 0 of a vector column's flags (its kind word 2): every row that has a vector is a unit
/// vector, up to rounding (FORMAT.md §4.4).
const COLUMN_UNIT_ROWS: u64 = 1;

/// The directory name of segment `id`.
pub fn dir_name(id: u64) -> String {
    format!("seg-{id:08}")
}

mod column;
mod ids;
mod mapped;
mod payload;
mod write;

pub use column::{Codes, Column, GraphDamage};
use mapped::{cast_words, detail_only, MappedFile};

use ids::SegmentIdTable;
use payload::SegmentPayloadTable;

pub use write::{write, write_rows, Graphs, MergedRows, RowSource};

fn column_path(dir: &Path, field: &str) -> PathBuf {
    dir.join(format!("{field}.f32"))
}

fn graph_path(dir: &Path, field: &str) -> PathBuf {
    dir.join(format!("{field}.hnsw"))
}

fn codes_path(dir: &Path, field: &str) -> PathBuf {
    dir.join(format!("{field}.sq8"))
}

/// An open, validated segment.
#[derive(Debug)]
pub struct Segment {
    pub dir: PathBuf,
    pub rows: usize,
    ids: SegmentIdTable,
    payload: SegmentPayloadTable,
    pub columns: Vec<Column>,
    /// Per vector field: every row has a vector (so a search without a filter or deletes needs
    /// no per-row mask). Read once at open from the id table.
    complete: Vec<bool>,
}

impl Segment {
    /// Maps a segment and checks what every use needs: headers, lengths, the id table's
    /// presence bitmaps and the payload archive (fully). Ids, columns and graphs are checked
    /// on first use (ids and columns a block at a time, graphs whole), so an open reads little.
    pub fn open(dir: &Path, owner_uid: u64, schema: &Schema, rows: usize) -> Result<Segment> {
        Self::open_checked(dir, owner_uid, schema, rows, None)
    }

    /// Like [`open`](Self::open), but a graph that fails its checks (or is missing where the
    /// segment needs one) is reported in the returned list instead of failing the open. Every
    /// other file must be intact, columns included (their CRCs are checked here).
    pub fn open_for_repair(
        dir: &Path,
        owner_uid: u64,
        schema: &Schema,
        rows: usize,
    ) -> Result<(Segment, Vec<GraphDamage>)> {
        let mut damage = Vec::new();
        let mut segment = Self::open_checked(dir, owner_uid, schema, rows, Some(&mut damage))?;
        segment.ids.file().verify()?;
        segment.ids.check_order()?;
        segment.payload.file().verify()?;
        segment.payload.check_all()?;
        for (field, column) in segment.columns.iter_mut().enumerate() {
            column.file.verify()?;
            let whole = column
                .graph_checked_whole()
                .map(|_| ())
                .and_then(|()| column.codes.as_ref().map_or(Ok(()), Codes::verify));
            if let Err(error) = whole {
                column.graph = None;
                column.codes = None;
                damage.push(GraphDamage {
                    field,
                    path: graph_path(dir, &schema.vectors[field].name),
                    error: Some(error),
                });
            }
        }
        for (field, column) in segment.columns.iter().enumerate() {
            let present = (0..rows).filter(|&r| segment.has_vector(field, r)).count();
            let known = damage.iter().any(|d| d.field == field);
            if column.graph.is_none() && present >= MIN_GRAPH_ROWS && !known {
                damage.push(GraphDamage {
                    field,
                    path: graph_path(dir, &schema.vectors[field].name),
                    error: None,
                });
            }
        }
        damage.sort_by_key(|d| d.field);
        Ok((segment, damage))
    }

    fn open_checked(
        dir: &Path,
        owner_uid: u64,
        schema: &Schema,
        rows: usize,
        mut damage: Option<&mut Vec<GraphDamage>>,
    ) -> Result<Segment> {
        let ids = SegmentIdTable::open(dir, owner_uid, schema, rows)?;
        let payload = SegmentPayloadTable::open(dir, owner_uid, schema, rows)?;
        let complete = (0..schema.vectors.len())
            .map(|field| ids.has_every_vector(field, rows))
            .collect();
        let mut columns = Vec::with_capacity(schema.vectors.len());
        for (index, field) in schema.vectors.iter().enumerate() {
            let mut error = None;
            let slot = damage.is_some().then_some(&mut error);
            columns.push(Column::open(dir, field, owner_uid, rows, slot)?);
            if let (Some(list), Some(error)) = (damage.as_deref_mut(), error) {
                list.push(GraphDamage {
                    field: index,
                    path: graph_path(dir, &field.name),
                    error: Some(error),
                });
            }
        }
        let segment = Segment {
            dir: dir.to_path_buf(),
            rows,
            ids,
            payload,
            columns,
            complete,
        };
        // Opening read each file's header, block table and directory; the kernel maps the whole
        // page-cache folio around each such page, which for a freshly written file can be all of
        // it. Unmapped here, a writer that opens every segment after each flush does not carry
        // them all in its RSS (measured: +4 MiB from 1,000 to 10,000 DICOM files); what a read
        // needs later faults back in.
        segment.release_pages();
        Ok(segment)
    }

    /// Whether every row of the segment has a vector in field `field`.
    pub fn is_complete(&self, field: usize) -> bool {
        self.complete.get(field).copied().unwrap_or(false)
    }

    /// Row `row`'s id, checking the bytes it comes from.
    pub fn id_of(&self, row: usize) -> Result<&str> {
        self.ids.id(row)
    }

    /// The row holding `id`, deleted or not (the caller knows the tombstones).
    pub fn find(&self, id: &str) -> Result<Option<usize>> {
        self.ids.find(id)
    }

    /// Checks every row's id and payload, so that a scan over all rows (a filter) reads only
    /// checked bytes and cannot fail half-way.
    pub fn check_scan(&self) -> Result<()> {
        self.ids.check_all_ids()?;
        self.payload.check_all()
    }

    /// Checks every id and every column, for a reader of all rows (a merge) that then uses
    /// the unchecked accessors.
    pub fn check_all(&self) -> Result<()> {
        self.check_scan()?;
        self.columns.iter().try_for_each(Column::ensure_verified)
    }

    pub fn has_vector(&self, field: usize, row: usize) -> bool {
        self.ids.has_vector(field, row)
    }

    /// Row `row`'s value in payload column `column`; read in place, so call
    /// [`check_scan`](Self::check_scan) (or [`record`](Self::record), which checks its row) first.
    pub fn value(&self, column: usize, row: usize) -> ValueRef<'_> {
        self.payload.value(column, row)
    }

    /// Row `row` as the filter sees it; call [`check_scan`](Self::check_scan) first.
    pub fn row(&self, row: usize) -> SegmentRow<'_> {
        SegmentRow { segment: self, row }
    }

    /// Rebuilds a row as a logged record (for get, export and compaction).
    pub fn record(&self, row: usize) -> Result<LoggedRecord> {
        let vectors = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| match self.has_vector(i, row) {
                true => c.vector(row).map(|v| Some(v.to_vec())),
                false => Ok(None),
            })
            .collect::<Result<_>>()?;
        self.payload.check_row(row)?;
        let payload = (0..self.payload.columns())
            .map(|c| owned_value(self.value(c, row)))
            .collect();
        Ok(LoggedRecord {
            id: self.id_of(row)?.to_string(),
            vectors,
            payload,
        })
    }

    /// Checks every byte of every file against its checksum.
    pub fn verify(&self) -> Result<()> {
        self.ids.file().verify()?;
        self.ids.check_order()?;
        self.payload.file().verify()?;
        self.payload.check_all()?;
        self.columns.iter().try_for_each(Column::verify_all)
    }

    /// Builds field `field`'s graph afresh from its (verified) column and replaces the graph
    /// file atomically, like a flush writes it.
    pub fn rebuild_graph(&self, field: usize, spec: &VectorField, owner_uid: u64) -> Result<()> {
        let column = &self.columns[field];
        column.ensure_verified()?;
        let values = column.vectors();
        let present: Vec<bool> = (0..self.rows).map(|r| self.has_vector(field, r)).collect();
        let inv_norms = Some(column.inv_norms());
        let data = graph::build_from(
            values,
            column.dim,
            &present,
            spec.metric,
            spec.hnsw,
            None,
            inv_norms,
        )
        .encode();
        let extra = [self.rows as u64, 0, 0];
        let shift = write::GRAPH_BLOCK_SHIFT;
        let (header, body) = Header::blocked(FileKind::Graph, owner_uid, &data, extra, shift);
        if !spec.quantization.is_none() {
            let path = codes_path(&self.dir, &spec.name);
            let temp = fileio::temp_sibling(&path);
            write::write_codes(
                &temp,
                owner_uid,
                spec,
                (values, column.inv_norms()),
                &present,
            )?;
            fileio::rename_durably(&temp, &path)?;
        }
        fileio::replace_atomically(&graph_path(&self.dir, &spec.name), &header, &body)
    }

    /// Releases the mapped pages of every file of the segment (see `MappedFile::release_pages`).
    pub fn release_pages(&self) {
        self.ids.file().release_pages();
        self.payload.file().release_pages();
        for column in &self.columns {
            column.file.release_pages();
            if let Some(graph) = &column.graph {
                graph.file.release_pages();
            }
            if let Some(codes) = &column.codes {
                codes.file.release_pages();
            }
        }
    }

    pub fn file_paths(&self) -> Vec<&Path> {
        let mut paths = vec![
            self.ids.file().path.as_path(),
            self.payload.file().path.as_path(),
        ];
        paths.extend(self.columns.iter().flat_map(Column::paths));
        paths
    }
}

/// The archive of a version 1 `payload.rkyv` checked by [`check_payload`] at open.
fn legacy_archive(file: &MappedFile) -> &ArchivedSegmentPayload {
    // SAFETY: validated by `check_payload` when the segment opened; immutable mapping.
    unsafe { rkyv::access_unchecked::<ArchivedSegmentPayload>(file.data()) }
}

fn check_payload(file: &MappedFile, schema: &Schema, rows: usize) -> Result<()> {
    let archive = rkyv::access::<ArchivedSegmentPayload, rkyv::rancor::Error>(file.data())
        .map_err(|e| corrupt(&file.path, format!("payload table does not decode: {e}")))?;
    if archive.columns.len() != schema.payload.len() {
        return Err(corrupt(
            &file.path,
            "column count disagrees with the schema",
        ));
    }
    for (column, field) in archive.columns.iter().zip(&schema.payload) {
        let (len, field_type) = match column {
            ArchivedPayloadColumn::String(v) => (v.len(), FieldType::String),
            ArchivedPayloadColumn::Int(v) => (v.len(), FieldType::Int),
            ArchivedPayloadColumn::Float(v) => (v.len(), FieldType::Float),
            ArchivedPayloadColumn::Bool(v) => (v.len(), FieldType::Bool),
        };
        if len != rows || field_type != field.field_type {
            return Err(corrupt(
                &file.path,
                format!("column `{}` has the wrong type or length", field.name),
            ));
        }
    }
    Ok(())
}

fn archived_value(column: &ArchivedPayloadColumn, row: usize) -> ValueRef<'_> {
    match column {
        ArchivedPayloadColumn::String(v) => v[row]
            .as_ref()
            .map_or(ValueRef::Null, |s| ValueRef::Str(s.as_str())),
        ArchivedPayloadColumn::Int(v) => v[row]
            .as_ref()
            .map_or(ValueRef::Null, |x| ValueRef::Int(x.to_native())),
        ArchivedPayloadColumn::Float(v) => v[row]
            .as_ref()
            .map_or(ValueRef::Null, |x| ValueRef::Float(x.to_native())),
        ArchivedPayloadColumn::Bool(v) => v[row]
            .as_ref()
            .map_or(ValueRef::Null, |x| ValueRef::Bool(*x)),
    }
}

pub(crate) fn owned_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Bool(b) => Value::Bool(b),
        ValueRef::Int(i) => Value::Int(i),
        ValueRef::Float(f) => Value::Float(f),
        ValueRef::Str(s) => Value::String(s.to_string()),
    }
}

/// A segment row as the filter sees it.
pub struct SegmentRow<'a> {
    segment: &'a Segment,
    row: usize,
}

impl PayloadRow for SegmentRow<'_> {
    fn id(&self) -> &str {
        // Scans that read ids check them all first (`Segment::check_scan`); an id that fails
        // here anyway (it cannot, after that) matches nothing rather than panicking.
        self.segment.id_of(self.row).unwrap_or("")
    }

    fn value(&self, index: usize) -> ValueRef<'_> {
        self.segment.value(index, self.row)
    }
}
