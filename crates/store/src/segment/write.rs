//! Writing a segment: from the flushed tail, or from the live rows of segments being merged.
//!
//! Rows come through [`RowSource`], so both cases share one writer and neither first copies its
//! rows into records. Vector columns are streamed to disk, and the graph is built over the column
//! as mapped from the file just written, so the writer never holds a second copy of the vectors.
//! A segment with a graph is written in the graph's breadth-first order ([`RowOrder`]): rows
//! that a search visits together then sit together in the column.

use super::{
    column_path, graph_path, ids, payload, MappedFile, Segment, COLUMN_UNIT_ROWS, MIN_GRAPH_ROWS,
};
use crate::error::{IoContext, Result};
use crate::faults;
use crate::fileio::{self, FileKind};
use crate::filter::ValueRef;
use crate::graph::{self, GraphSeed, RowOrder};
use crate::schema::{Schema, VectorField};
use crate::wal::LoggedRecord;
use std::path::Path;

/// The rows a segment is written from, in order.
pub trait RowSource: Sync {
    fn rows(&self) -> usize;
    fn id(&self, row: usize) -> &str;
    /// Row `row`'s vector in vector field `field`, if it has one.
    fn vector(&self, field: usize, row: usize) -> Option<&[f32]>;
    /// Row `row`'s value in payload column `column`.
    fn value(&self, column: usize, row: usize) -> ValueRef<'_>;
    /// Called after each file of the new segment is written: a source that reads mapped files
    /// releases their pages (they were streamed once), so that they do not add to the peak RSS
    /// of the rest of the write.
    fn release_pages(&self) {}
}

impl RowSource for [LoggedRecord] {
    fn rows(&self) -> usize {
        self.len()
    }

    fn id(&self, row: usize) -> &str {
        &self[row].id
    }

    fn vector(&self, field: usize, row: usize) -> Option<&[f32]> {
        self[row].vectors.get(field)?.as_deref()
    }

    fn value(&self, column: usize, row: usize) -> ValueRef<'_> {
        self[row]
            .payload
            .get(column)
            .map_or(ValueRef::Null, ValueRef::from)
    }
}

/// The live rows of several segments, one after the other: what a merge writes.
pub struct MergedRows<'a> {
    parts: Vec<(&'a Segment, Vec<u32>)>,
    /// `starts[i]` is the first merged row of part `i`; one more entry holds the total.
    starts: Vec<usize>,
}

impl<'a> MergedRows<'a> {
    /// `parts` pairs each segment with its live rows, ascending. Every input is checked whole
    /// here (a merge reads all of it anyway), so the row accessors below cannot meet damage.
    pub fn new(parts: Vec<(&'a Segment, Vec<u32>)>) -> Result<MergedRows<'a>> {
        let mut starts = vec![0];
        for (segment, rows) in &parts {
            segment.check_all()?;
            starts.push(starts.last().copied().unwrap_or(0) + rows.len());
        }
        Ok(MergedRows { parts, starts })
    }

    fn locate(&self, row: usize) -> (&'a Segment, usize) {
        let part = self.starts.partition_point(|&start| start <= row) - 1;
        let (segment, rows) = &self.parts[part];
        (segment, rows[row - self.starts[part]] as usize)
    }
}

impl RowSource for MergedRows<'_> {
    fn rows(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    fn id(&self, row: usize) -> &str {
        let (segment, row) = self.locate(row);
        // Checked in `new`.
        segment.id_of(row).unwrap_or_default()
    }

    fn vector(&self, field: usize, row: usize) -> Option<&[f32]> {
        let (segment, row) = self.locate(row);
        segment
            .has_vector(field, row)
            .then(|| segment.columns[field].vector_unchecked(row))
    }

    fn value(&self, column: usize, row: usize) -> ValueRef<'_> {
        let (segment, row) = self.locate(row);
        segment.value(column, row)
    }

    fn release_pages(&self) {
        self.parts
            .iter()
            .for_each(|(segment, _)| segment.release_pages());
    }
}

/// Writes a complete segment directory for `records` and fsyncs it. The segment becomes part of
/// the collection only when a manifest naming it is committed.
pub fn write(
    dir: &Path,
    owner_uid: u64,
    schema: &Schema,
    records: &[LoggedRecord],
    graphs: Graphs,
) -> Result<()> {
    write_rows(dir, owner_uid, schema, records, graphs.seeded(None))
}

/// Whether a segment is written with its graphs (and SQ8 codes), and from which seed.
#[derive(Clone, Copy)]
pub enum Graphs<'s> {
    /// Built now; with a seed (a segment whose rows are the first rows of the source, unchanged)
    /// each field's graph extends the seed's graph instead of being rebuilt.
    Build(Option<&'s Segment>),
    /// Left for later: a bulk load builds one graph over all its rows at its end instead of one
    /// per flush and merge (readers scan such a segment exactly until then).
    Defer,
}

impl<'s> Graphs<'s> {
    /// This policy, with `seed` when graphs are built.
    pub fn seeded<'t>(self, seed: Option<&'t Segment>) -> Graphs<'t> {
        match self {
            Graphs::Build(_) => Graphs::Build(seed),
            Graphs::Defer => Graphs::Defer,
        }
    }
}

/// Writes a segment from `source`, with its graphs built or deferred as `graphs` says.
///
/// When a graph is built, the rows are written in the breadth-first order of the first graphed
/// field's graph ([`RowOrder`]), not in the source's order: every file of the segment follows it.
pub fn write_rows(
    dir: &Path,
    owner_uid: u64,
    schema: &Schema,
    source: &(impl RowSource + ?Sized),
    graphs: Graphs,
) -> Result<()> {
    if dir.exists() {
        // Left by a failed attempt in this process (a full disk, say): a stale graph file in it
        // would not match the rows written now.
        std::fs::remove_dir_all(dir).at(dir)?;
    }
    fileio::create_private_dir(dir)?;
    let present = presence(schema, source);
    let graphed: Vec<bool> = present
        .iter()
        .map(|p| matches!(graphs, Graphs::Build(_)) && count_present(p) >= MIN_GRAPH_ROWS)
        .collect();
    // Graphed fields first: the first one's graph sets the order of every file's rows.
    let fields = (0..graphed.len()).filter(|&i| graphed[i]);
    let fields = fields.chain((0..graphed.len()).filter(|&i| !graphed[i]));
    let mut order = None;
    for index in fields {
        let field = (index, &schema.vectors[index]);
        if let (true, Graphs::Build(seed)) = (graphed[index], graphs) {
            write_graphed_field(
                dir,
                owner_uid,
                source,
                field,
                &present[index],
                seed,
                &mut order,
            )?;
        } else {
            let rows = InOrder::new(source, order.as_ref());
            let path = column_path(dir, &field.1.name);
            write_column(&path, owner_uid, rows.rows(), field.1.dim, |row| {
                rows.vector(index, row)
            })?;
        }
        source.release_pages();
    }
    let rows = InOrder::new(source, order.as_ref());
    let present = match &order {
        Some(order) => present.iter().map(|p| order.permute(p)).collect(),
        None => present,
    };
    ids::write_index(dir, owner_uid, rows.rows(), &|row| rows.id(row), &present)?;
    drop(present);
    source.release_pages();
    payload::write_columns(dir, owner_uid, schema, rows.rows(), &|column, row| {
        rows.value(column, row)
    })?;
    source.release_pages();
    fileio::sync_dir(dir)?;
    faults::point("segment-after-write");
    Ok(())
}

fn count_present(present: &[bool]) -> usize {
    present.iter().filter(|&&p| p).count()
}

fn presence(schema: &Schema, source: &(impl RowSource + ?Sized)) -> Vec<Vec<bool>> {
    (0..schema.vectors.len())
        .map(|field| {
            (0..source.rows())
                .map(|row| source.vector(field, row).is_some())
                .collect()
        })
        .collect()
}

/// `source`'s rows in the order a segment writes them: as `order` places them, if given.
struct InOrder<'a, S: ?Sized> {
    source: &'a S,
    order: Option<&'a RowOrder>,
}

impl<'a, S: RowSource + ?Sized> InOrder<'a, S> {
    fn new(source: &'a S, order: Option<&'a RowOrder>) -> Self {
        InOrder { source, order }
    }

    fn source_row(&self, row: usize) -> usize {
        self.order.map_or(row, |order| order.source_row(row))
    }
}

impl<S: RowSource + ?Sized> RowSource for InOrder<'_, S> {
    fn rows(&self) -> usize {
        self.source.rows()
    }

    fn id(&self, row: usize) -> &str {
        self.source.id(self.source_row(row))
    }

    fn vector(&self, field: usize, row: usize) -> Option<&[f32]> {
        self.source.vector(field, self.source_row(row))
    }

    fn value(&self, column: usize, row: usize) -> ValueRef<'_> {
        self.source.value(column, self.source_row(row))
    }
}

/// Writes one vector field's column and its graph. The graph is built over the column in the
/// source's order (which a seed needs: its rows come first, unchanged), as mapped from a first
/// write of it; the column is then written again in the rows' final order (`order`, which the
/// first graphed field sets to its graph's breadth-first order), and the graph renumbered to it.
fn write_graphed_field(
    dir: &Path,
    owner_uid: u64,
    source: &(impl RowSource + ?Sized),
    (index, field): (usize, &VectorField),
    present: &[bool],
    seed: Option<&Segment>,
    order: &mut Option<RowOrder>,
) -> Result<()> {
    let (rows, dim) = (source.rows(), field.dim);
    let path = column_path(dir, &field.name);
    let unordered = fileio::temp_sibling(&path);
    write_column(&unordered, owner_uid, rows, dim, |row| {
        source.vector(index, row)
    })?;
    source.release_pages();
    let column = MappedFile::open(&unordered, FileKind::VectorColumn, owner_uid)?;
    let (vectors, inv_norms) = split_column(&unordered, column.data(), rows, dim)?;
    let seed_graph = seed
        .and_then(|seed| checked_seed(&seed.columns[index]))
        .map(|(words, layout)| GraphSeed { words, layout });
    let graph = graph::build_from(
        vectors,
        dim,
        present,
        field.metric,
        field.hnsw,
        seed_graph,
        Some(inv_norms),
    );
    let order = order.get_or_insert_with(|| graph.breadth_first());
    write_column(&path, owner_uid, rows, dim, |new| {
        let old = order.source_row(new);
        present[old].then(|| &vectors[old * dim..][..dim])
    })?;
    drop(column);
    std::fs::remove_file(&unordered).at(&unordered)?;
    if !field.quantization.is_none() {
        let column = MappedFile::open(&path, FileKind::VectorColumn, owner_uid)?;
        let present = order.permute(present);
        let codes = super::codes_path(dir, &field.name);
        let columns = split_column(&path, column.data(), rows, dim)?;
        write_codes(&codes, owner_uid, field, columns, &present)?;
    }
    let extra = [rows as u64, 0, 0];
    let file = (FileKind::Graph, owner_uid, extra);
    let path = graph_path(dir, &field.name);
    fileio::write_streamed(&path, file, Some(GRAPH_BLOCK_SHIFT), |out| {
        graph.write_renumbered(out, order)
    })
}

/// A column file's body as its vectors (`rows` × `dim`) and their reciprocal norms.
fn split_column<'a>(
    path: &Path,
    data: &'a [u8],
    rows: usize,
    dim: usize,
) -> Result<(&'a [f32], &'a [f32])> {
    let values = super::cast_words::<f32>(path, data)?;
    if values.len() != rows * (dim + 1) {
        return Err(crate::error::corrupt(
            path,
            "column length disagrees with its rows",
        ));
    }
    Ok(values.split_at(rows * dim))
}

/// Writes the SQ8 codes of a quantised field's `vectors` (with their reciprocal norms).
pub(super) fn write_codes(
    path: &Path,
    owner_uid: u64,
    field: &VectorField,
    vectors: (&[f32], &[f32]),
    present: &[bool],
) -> Result<()> {
    let extra = [present.len() as u64, field.dim as u64, 0];
    let file = (FileKind::Sq8Codes, owner_uid, extra);
    fileio::write_streamed(path, file, Some(COLUMN_BLOCK_SHIFT), |out| {
        crate::sq8::write_body(out, vectors, present, field.dim, field.metric)
    })
}

/// Graphs and columns are checked in blocks of one 4 KiB page: a search reads a few thousand
/// rows and lists scattered over the whole file, so larger blocks would have it check nearly
/// every block (1 MiB blocks did: a first query at 1M × 128 checked 490 MB of column).
pub(super) const GRAPH_BLOCK_SHIFT: u32 = 12;
const COLUMN_BLOCK_SHIFT: u32 = 12;

/// The graph a merge may extend, checked whole. A damaged one is not used: the merged graph is
/// built afresh instead (graphs are derived from the columns), so damage to it cannot stop the
/// writer's merges, which run after a committed flush.
fn checked_seed(column: &super::Column) -> Option<(&[u32], &graph::GraphLayout)> {
    match column.graph_checked_whole() {
        Ok(graph) => graph,
        Err(error) => {
            eprintln!("warning: {error}; the merged segment's graph is built afresh");
            None
        }
    }
}

/// Streams every row's vector (`vector_of(row)`, zeros where a row has none), then each row's
/// reciprocal norm, into a new column file.
fn write_column<'v>(
    path: &Path,
    owner_uid: u64,
    rows: usize,
    dim: usize,
    vector_of: impl Fn(usize) -> Option<&'v [f32]>,
) -> Result<()> {
    let zeros = vec![0f32; dim];
    let file = (FileKind::VectorColumn, owner_uid);
    fileio::write_streamed_then(path, file, Some(COLUMN_BLOCK_SHIFT), |out| {
        // The reciprocal norms follow the vectors in the file; kept aside (4 bytes a row) so the
        // rows are read once.
        let mut inv_norms = Vec::with_capacity(rows);
        let mut unit_rows = true;
        for row in 0..rows {
            let vector = vector_of(row);
            let v = vector.unwrap_or(&zeros);
            fileio::write_words(out, v.iter().copied())?;
            let inv = crate::distance::reciprocal_norm(v);
            unit_rows &= vector.is_none() || crate::distance::is_unit(inv);
            inv_norms.push(inv);
        }
        fileio::write_words(out, inv_norms.into_iter())?;
        let flags = if unit_rows { COLUMN_UNIT_ROWS } else { 0 };
        Ok([rows as u64, dim as u64, flags])
    })
}
