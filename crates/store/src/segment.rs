//! Immutable segments: a directory of column files written once at flush or compaction.
//!
//! Per vector field a contiguous little-endian `f32` column (`<field>.f32`) followed by each row's
//! reciprocal norm, and an HNSW graph (`<field>.hnsw`) when the segment is large enough; the ids
//! and vector presence in `ids.idx`, the payload columns in `payload.cols` (`ids.rkyv` and
//! `payload.rkyv` before format version 2). All are read through
//! memory maps and never modified after the manifest references them.

use crate::blocks::{self, BlockChecks};
use crate::error::{corrupt, IoContext, Result};
use crate::fileio::{self, FileKind, Header, HEADER_LEN};
use crate::filter::{PayloadRow, ValueRef};
use crate::graph::{self, GraphLayout, ListCheck};
use crate::schema::{Schema, VectorField};
use crate::value::FieldType;
use crate::value::Value;
use crate::wal::LoggedRecord;
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// The directory name of segment `id`.
pub fn dir_name(id: u64) -> String {
    format!("seg-{id:08}")
}

mod ids;
mod payload;
mod write;

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

/// A file mapped into memory with its header checked. A blocked body (format version 2) has its
/// block table checked here and its blocks on first use; any other body is checked whole by
/// [`verify`](Self::verify), which small files call at open.
#[derive(Debug)]
struct MappedFile {
    path: PathBuf,
    map: Mmap,
    header: Header,
    blocks: Option<BlockChecks>,
}

impl MappedFile {
    fn open(path: &Path, kind: FileKind, owner_uid: u64) -> Result<MappedFile> {
        let file = File::open(path).at(path)?;
        // SAFETY: segment files are written once, fsynced and published by the manifest; medvec
        // never writes to or truncates a published file (compaction writes new files and deletes
        // old ones, which leaves existing mappings intact). Changing them behind medvec's back is
        // outside the format's contract (FORMAT.md, "Assumptions").
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        let header = Header::decode(path, &map, kind, Some(owner_uid))?;
        let body = header.body_slice(path, &map)?;
        let blocks = match blocks::shift_of(path, header.flags)? {
            Some(shift) => Some(BlockChecks::open(path, body, shift, header.body_crc)?),
            None => None,
        };
        if blocks.is_some() {
            // Columns, graphs and the id index are read at scattered rows: without this hint
            // each page fault maps the 15 pages around it as well, and a first query's RSS
            // grows by 64 KiB per row it reads. Only a hint, so a refusal changes nothing.
            let _ = map.advise(memmap2::Advice::Random);
        }
        Ok(MappedFile {
            path: path.to_path_buf(),
            map,
            header,
            blocks,
        })
    }

    /// The body without its block table, if any.
    fn data(&self) -> &[u8] {
        let body = &self.map[HEADER_LEN..];
        match &self.blocks {
            Some(blocks) => &body[..blocks.data_len()],
            None => body,
        }
    }

    fn is_blocked(&self) -> bool {
        self.blocks.is_some()
    }

    /// Checks the blocks of `range` of the data not checked yet (nothing for an unblocked body,
    /// which is checked whole by `verify`).
    #[inline]
    fn check(&self, range: std::ops::Range<usize>) -> Result<()> {
        match &self.blocks {
            Some(blocks) => blocks.check(&self.path, &self.map[HEADER_LEN..], range),
            None => Ok(()),
        }
    }

    /// Drops this process's mapping of the file's pages; the page cache keeps them, and a later
    /// read faults them back in. A merge calls it on the inputs it has streamed, so that their
    /// pages stop counting in its RSS while it builds the merged graph.
    fn release_pages(&self) {
        // SAFETY: `Mmap::map` makes a read-only shared file mapping, for which MADV_DONTNEED only
        // removes page table entries: nothing is freed or zeroed under any reference into the
        // map, and the next read of a page returns the same bytes of the same file, which is
        // never modified once published (FORMAT.md §1). Only a hint: a refusal changes nothing.
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// Checks every byte, blocked or not.
    fn verify(&self) -> Result<()> {
        self.header.check_body(&self.path, &self.map).map(|_| ())
    }
}

/// Reinterprets an aligned little-endian byte slice as `T` words.
fn cast_words<'a, T: Copy>(path: &Path, bytes: &'a [u8]) -> Result<&'a [T]> {
    let size = std::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size)
        || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>())
    {
        return Err(corrupt(path, "body is not a whole number of aligned words"));
    }
    // SAFETY: the pointer is aligned for T and the length is a multiple of its size (both checked
    // above); T is f32 or u32, for which every bit pattern is valid; the CPU is little-endian
    // (compile-time check), matching the file; the bytes live as long as the returned slice.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

/// One vector field's column, with its optional graph.
#[derive(Debug)]
pub struct Column {
    file: MappedFile,
    pub dim: usize,
    rows: usize,
    /// Whole-body check of an unblocked (version 1) column, once per process.
    verified: OnceLock<Result<(), String>>,
    graph: Option<LazyGraph>,
    /// SQ8 codes of a quantised field, beside its graph (derived data, like the graph).
    codes: Option<Codes>,
}

/// A segment's SQ8 codes of one field (`<field>.sq8`): the per-dimension ranges, then one code
/// of `dim` bytes per row. Checked a 4 KiB block at a time, on first use, like the column.
#[derive(Debug)]
pub struct Codes {
    file: MappedFile,
    dim: usize,
    rows: usize,
}

impl Codes {
    fn open(path: &Path, owner_uid: u64, (rows, dim): (usize, usize)) -> Result<Codes> {
        let file = MappedFile::open(path, FileKind::Sq8Codes, owner_uid)?;
        let [file_rows, file_dim, _] = file.header.extra;
        let expected_len = (rows as u64)
            .checked_add(8)
            .and_then(|n| n.checked_mul(dim as u64));
        if file_rows != rows as u64
            || file_dim != dim as u64
            || expected_len != Some(file.data().len() as u64)
            || !file.is_blocked()
        {
            return Err(corrupt(
                path,
                format!("holds {file_rows} codes of {file_dim}, expected {rows} of {dim}"),
            ));
        }
        cast_words::<f32>(path, &file.data()[..8 * dim])?;
        Ok(Codes { file, dim, rows })
    }

    /// The per-dimension `lo` and `step` of the codes, checked on first use.
    pub fn ranges(&self) -> Result<(&[f32], &[f32])> {
        let bytes = 8 * self.dim;
        self.file.check(0..bytes)?;
        let words = cast_words::<f32>(&self.file.path, &self.file.data()[..bytes])?;
        Ok(words.split_at(self.dim))
    }

    /// Checks the block(s) holding row `row`'s code.
    #[inline]
    pub fn check_row(&self, row: usize) -> Result<()> {
        self.file.check(self.code_bytes(row))
    }

    /// Row `row`'s code, unchecked: call [`check_row`](Self::check_row) first.
    #[inline]
    pub fn code(&self, row: usize) -> &[u8] {
        &self.file.data()[self.code_bytes(row)]
    }

    /// Where row `row`'s code lies in the body: after the ranges (`lo` and `step`, 4 bytes per
    /// dimension each), `dim` bytes per row.
    #[inline]
    fn code_bytes(&self, row: usize) -> std::ops::Range<usize> {
        let at = 8 * self.dim + row * self.dim;
        at..at + self.dim
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Checks every byte, and that the ranges are finite (a NaN would poison every distance).
    fn verify(&self) -> Result<()> {
        self.file.verify()?;
        self.check_row(self.rows.saturating_sub(1))?;
        let (lo, step) = self.ranges()?;
        if lo.iter().chain(step).any(|x| !x.is_finite()) || step.iter().any(|&s| s < 0.0) {
            return Err(corrupt(&self.file.path, "SQ8 ranges are not finite"));
        }
        Ok(())
    }
}

/// A graph file mapped at open, with its header checked; its body is checked and parsed on the
/// first search that uses it, so that opening a store (for `get`, say) reads none of it.
#[derive(Debug)]
struct LazyGraph {
    file: MappedFile,
    layout: OnceLock<Result<GraphLayout, String>>,
}

impl LazyGraph {
    /// The graph's layout, checked on first use. A blocked file (version 2) has its header
    /// words and upper layers' node ids checked here and its lists as searches read them; an
    /// older file is checked whole.
    fn layout(&self, rows: usize) -> Result<&GraphLayout> {
        let parsed = self.layout.get_or_init(|| {
            self.parse(rows)
                .map_err(|e| with_repair_hint(e).to_string())
        });
        parsed
            .as_ref()
            .map_err(|detail| corrupt(&self.file.path, detail_only(detail)))
    }

    fn parse(&self, rows: usize) -> Result<GraphLayout> {
        let path = &self.file.path;
        let words = cast_words::<u32>(path, self.file.data())?;
        if !self.file.is_blocked() {
            self.file.verify()?;
            return GraphLayout::parse(path, words, rows, ListCheck::AtParse);
        }
        // The header words now; the upper layers' counts and node ids as parse reads them; the
        // lists (4.5 MB of upper layers at 1M nodes, and layer 0) when a search reads them.
        self.file.check(0..16.min(4 * words.len()))?;
        let check_words =
            |range: std::ops::Range<usize>| self.file.check(4 * range.start..4 * range.end);
        GraphLayout::parse_checking(path, words, rows, ListCheck::OnUse, &check_words)
    }
}

/// A graph file that failed its checks while the segment was opened for repair.
#[derive(Debug)]
pub struct GraphDamage {
    /// Index of the vector field in the schema.
    pub field: usize,
    pub path: PathBuf,
    /// Why the file was rejected; `None` when it is missing although the segment needs one.
    pub error: Option<crate::error::StoreError>,
}

impl Column {
    /// Opens the column and maps its graph (checked on first use). With `damaged` given, a
    /// graph whose header fails is recorded there and left out instead of failing the open.
    fn open(
        dir: &Path,
        spec: &VectorField,
        owner_uid: u64,
        rows: usize,
        damaged: Option<&mut Option<crate::error::StoreError>>,
    ) -> Result<Column> {
        let (field, dim) = (spec.name.as_str(), spec.dim);
        let path = column_path(dir, field);
        let file = MappedFile::open(&path, FileKind::VectorColumn, owner_uid)?;
        let [file_rows, file_dim, _] = file.header.extra;
        let expected_len = (rows as u64)
            .checked_mul(dim as u64 + 1)
            .and_then(|n| n.checked_mul(4));
        if file_rows != rows as u64
            || file_dim != dim as u64
            || expected_len != Some(file.data().len() as u64)
        {
            return Err(corrupt(
                &path,
                format!("holds {file_rows} rows of {file_dim}, expected {rows} of {dim}"),
            ));
        }
        cast_words::<f32>(&path, file.data())?;
        let derived = Self::open_graph(dir, field, owner_uid).and_then(|graph| {
            let codes = Self::open_codes(dir, spec, owner_uid, rows, graph.is_some())?;
            Ok((graph, codes))
        });
        let (graph, codes) = match (derived, damaged) {
            (Err(e), Some(slot)) => {
                *slot = Some(e);
                (None, None)
            }
            (Err(e), None) => return Err(with_repair_hint(e)),
            (Ok(derived), _) => derived,
        };
        Ok(Column {
            file,
            dim,
            rows,
            verified: OnceLock::new(),
            graph,
            codes,
        })
    }

    /// A quantised field's codes, written with each graph: missing beside a graph is damage.
    fn open_codes(
        dir: &Path,
        spec: &VectorField,
        owner_uid: u64,
        rows: usize,
        has_graph: bool,
    ) -> Result<Option<Codes>> {
        if spec.quantization.is_none() || !has_graph {
            return Ok(None);
        }
        let path = codes_path(dir, &spec.name);
        if !path.exists() {
            return Err(corrupt(&path, "SQ8 codes are missing beside the graph"));
        }
        Codes::open(&path, owner_uid, (rows, spec.dim)).map(Some)
    }

    fn open_graph(dir: &Path, field: &str, owner_uid: u64) -> Result<Option<LazyGraph>> {
        let path = graph_path(dir, field);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(LazyGraph {
            file: MappedFile::open(&path, FileKind::Graph, owner_uid)?,
            layout: OnceLock::new(),
        }))
    }

    /// Checks the whole column once per process (a blocked column: each block not checked yet),
    /// for callers about to read all of it (merges, exports, exact scans of every row).
    pub fn ensure_verified(&self) -> Result<()> {
        if self.file.is_blocked() {
            return self.file.check(0..self.file.data().len());
        }
        let outcome = self
            .verified
            .get_or_init(|| self.file.verify().map_err(|e| e.to_string()));
        outcome
            .clone()
            .map_err(|detail| corrupt(&self.file.path, detail_only(&detail)))
    }

    /// Checks the blocks holding row `row`'s vector and reciprocal norm: a graph search touches
    /// a few thousand rows of millions, and checks only theirs. Two relaxed loads once checked.
    #[inline]
    pub fn check_row(&self, row: usize) -> Result<()> {
        if !self.file.is_blocked() {
            return self.ensure_verified();
        }
        let bytes = 4 * self.dim;
        self.file.check(row * bytes..(row + 1) * bytes)?;
        self.check_norm(row)
    }

    /// Checks the block holding row `row`'s reciprocal norm (only; see [`check_row`](Self::check_row)).
    #[inline]
    pub fn check_norm(&self, row: usize) -> Result<()> {
        if !self.file.is_blocked() {
            return self.ensure_verified();
        }
        let norm = 4 * (self.rows * self.dim + row);
        self.file.check(norm..norm + 4)
    }

    fn floats(&self) -> &[f32] {
        // Length and alignment were checked at open.
        cast_words::<f32>(&self.file.path, self.file.data()).unwrap_or(&[])
    }

    /// Row `row`'s vector, after checking the bytes it comes from.
    pub fn vector(&self, row: usize) -> Result<&[f32]> {
        self.check_row(row)?;
        Ok(&self.vectors()[row * self.dim..(row + 1) * self.dim])
    }

    /// Row `row`'s vector, unchecked: for callers that ran
    /// [`ensure_verified`](Self::ensure_verified) first.
    pub fn vector_unchecked(&self, row: usize) -> &[f32] {
        &self.vectors()[row * self.dim..(row + 1) * self.dim]
    }

    /// Every row's vector, row-major, unchecked: call [`ensure_verified`](Self::ensure_verified)
    /// first, or [`check_row`](Self::check_row) for each row used.
    pub fn vectors(&self) -> &[f32] {
        &self.floats()[..self.rows * self.dim]
    }

    /// Every row's reciprocal norm (0 for an all-zero vector), stored after the vectors;
    /// unchecked, like [`vectors`](Self::vectors).
    pub fn inv_norms(&self) -> &[f32] {
        let at = self.rows * self.dim;
        &self.floats()[at..at + self.rows]
    }

    /// Whether the segment has a graph file for this field (its body is checked on first use).
    pub fn has_graph(&self) -> bool {
        self.graph.is_some()
    }

    /// The graph's words and layout, checking and parsing the file on first use.
    pub fn graph(&self) -> Result<Option<(&[u32], &GraphLayout)>> {
        let Some(graph) = &self.graph else {
            return Ok(None);
        };
        let layout = graph.layout(self.rows)?;
        let words = cast_words::<u32>(&graph.file.path, graph.file.data())?;
        Ok(Some((words, layout)))
    }

    /// The field's SQ8 codes, if it is quantised and the segment has a graph.
    pub fn codes(&self) -> Option<&Codes> {
        self.codes.as_ref()
    }

    /// The graph with every list checked: for a merge, which extends it and reads every list.
    pub fn graph_checked_whole(&self) -> Result<Option<(&[u32], &GraphLayout)>> {
        let graph = self.graph()?;
        if let (Some((words, layout)), Some(lazy)) = (graph, &self.graph) {
            lazy.file.check(0..lazy.file.data().len())?;
            layout.check_all_lists(&lazy.file.path, words)?;
        }
        Ok(graph)
    }

    /// The graph file's path, if the column has a graph.
    pub fn graph_path(&self) -> Option<&Path> {
        self.graph.as_ref().map(|g| g.file.path.as_path())
    }

    /// Checks the checksum blocks of graph words `words` (a layer-0 list) on first use.
    #[inline]
    pub fn check_graph_words(&self, words: std::ops::Range<usize>) -> Result<()> {
        match &self.graph {
            Some(graph) => graph.file.check(4 * words.start..4 * words.end),
            None => Ok(()),
        }
    }

    pub fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.file.path.as_path()];
        if let Some(graph) = &self.graph {
            paths.push(&graph.file.path);
        }
        if let Some(codes) = &self.codes {
            paths.push(codes.path());
        }
        paths
    }

    fn verify_all(&self) -> Result<()> {
        self.file.verify()?;
        if let Some(codes) = &self.codes {
            codes.verify().map_err(with_repair_hint)?;
        }
        if let Some(graph) = &self.graph {
            let layout = graph.layout(self.rows)?;
            graph.file.verify().map_err(with_repair_hint)?;
            let words = cast_words::<u32>(&graph.file.path, graph.file.data())?;
            layout
                .check_all_lists(&graph.file.path, words)
                .map_err(with_repair_hint)?;
        }
        Ok(())
    }
}

/// Points at the cure in the message of a damaged graph: unlike other files it can be rebuilt.
fn with_repair_hint(error: crate::error::StoreError) -> crate::error::StoreError {
    match error {
        crate::error::StoreError::Corrupt { path, detail } => crate::error::StoreError::Corrupt {
            path,
            detail: format!(
                "{detail} (an HNSW graph can be rebuilt from its column: `medvec verify STORE COLLECTION --repair`)"
            ),
        },
        other => other,
    }
}

/// Strips the "path: corrupt: " prefix a cached error message already carries.
fn detail_only(message: &str) -> String {
    message
        .rsplit_once("corrupt: ")
        .map_or(message, |(_, d)| d)
        .to_string()
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
