//! One vector field of a segment: its `f32` column with reciprocal norms, and the derived
//! files beside it (the HNSW graph, checked and parsed on first use, and SQ8 codes).

use super::mapped::{cast_words, detail_only, MappedFile};
use super::{codes_path, column_path, graph_path, COLUMN_UNIT_ROWS};
use crate::error::{corrupt, Result};
use crate::fileio::FileKind;
use crate::graph::{GraphLayout, ListCheck};
use crate::schema::VectorField;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One vector field's column, with its optional graph.
#[derive(Debug)]
pub struct Column {
    pub(super) file: MappedFile,
    pub dim: usize,
    rows: usize,
    /// Whole-body check of an unblocked (version 1) column, once per process.
    verified: OnceLock<Result<(), String>>,
    pub(super) graph: Option<LazyGraph>,
    /// SQ8 codes of a quantised field, beside its graph (derived data, like the graph).
    pub(super) codes: Option<Codes>,
}

/// A segment's SQ8 codes of one field (`<field>.sq8`): the per-dimension ranges, then one code
/// of `dim` bytes per row. Checked a 4 KiB block at a time, on first use, like the column.
#[derive(Debug)]
pub struct Codes {
    pub(super) file: MappedFile,
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
    pub(super) fn verify(&self) -> Result<()> {
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
pub(super) struct LazyGraph {
    pub(super) file: MappedFile,
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
    pub(super) fn open(
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

    /// Whether every row with a vector is a unit vector, up to rounding, as the writer found
    /// (false for columns written before the flag, which may still be).
    pub fn has_unit_rows(&self) -> bool {
        self.file.header.extra[2] & COLUMN_UNIT_ROWS != 0
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

    pub(super) fn verify_all(&self) -> Result<()> {
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
pub(super) fn with_repair_hint(error: crate::error::StoreError) -> crate::error::StoreError {
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
