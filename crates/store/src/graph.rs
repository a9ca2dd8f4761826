//! HNSW graphs: built in memory, then written in medvec's own flat layout so that a search runs
//! directly on the memory-mapped file, with no deserialisation at open.
//!
//! Two builders produce the same layout (`GraphBuilder` in the field's `HnswParams`):
//! [`native`], medvec's own (flat arrays, hnswlib's neighbour heuristic on every overflow), and
//! [`hnsw_rs_builder`], the `hnsw_rs` crate's. Either way medvec keeps only the graph's edges, as
//! fixed-width `u32` adjacency lists (layout in `FORMAT.md`), and searches them in place.

mod beam;
mod hnsw_rs_builder;
mod native;
mod order;

pub use order::{breadth_first_rows, RowOrder};

use crate::distance::{dot, l2_squared, normalized, prefetch};
use crate::error::{corrupt, Result, StoreError};
use crate::fileio::write_words;
use crate::schema::{GraphBuilder, HnswParams, Metric};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::path::Path;

/// Marks an empty adjacency slot.
const EMPTY: u32 = u32::MAX;
/// The most layers a graph may have (the file format's limit, and `hnsw_rs`'s).
const MAX_LAYERS: usize = 16;

/// Builds a graph over the rows of `vectors` (row-major, `dim` wide) for which `present` is true,
/// and returns the file body. Node numbers are row numbers. Cosine and dot graphs are built on
/// unit vectors; the search re-ranks with the true metric.
#[cfg(test)]
pub fn build(
    vectors: &[f32],
    dim: usize,
    present: &[bool],
    metric: Metric,
    params: HnswParams,
) -> Vec<u8> {
    build_from(vectors, dim, present, metric, params, None, None).encode()
}

/// An existing graph whose nodes are the first rows of a graph being built: its edges are kept
/// and only the rows after it are inserted, so a merge costs what it adds, not a rebuild.
#[derive(Clone, Copy)]
pub struct GraphSeed<'a> {
    pub words: &'a [u32],
    pub layout: &'a GraphLayout,
}

impl GraphSeed<'_> {
    /// Whether the native builder can extend this graph with `params` (same M; a graph with an
    /// entry point).
    pub fn fits(&self, params: HnswParams) -> bool {
        params.builder == GraphBuilder::Medvec
            && self.layout.m == params.m
            && self.layout.entry != EMPTY
            && self.layout.nodes > 0
    }
}

/// Like [`build`], but extends `seed` (when it [fits](GraphSeed::fits)) instead of starting from
/// nothing. The seed's rows must be the first rows of `vectors`, unchanged.
///
/// `inv_norms`, when given, holds each row's reciprocal norm (as a column file stores them):
/// medvec's builder then builds a cosine or dot graph by scaling dot products with them rather
/// than over a unit-vector copy of every row, which would double the vectors' memory during a
/// flush or merge (2 GB more for a 1M × 512 segment).
pub fn build_from(
    vectors: &[f32],
    dim: usize,
    present: &[bool],
    metric: Metric,
    params: HnswParams,
    seed: Option<GraphSeed>,
    inv_norms: Option<&[f32]>,
) -> BuiltGraph {
    let scaled = metric != Metric::L2 && params.builder == GraphBuilder::Medvec;
    let inv_norms = inv_norms.filter(|_| scaled);
    let unit: Vec<f32>;
    let data = if metric == Metric::L2 || inv_norms.is_some() {
        vectors
    } else {
        unit = vectors.chunks_exact(dim).flat_map(normalized).collect();
        &unit
    };
    let rows = BuildRows {
        data,
        dim,
        present,
        squared_l2: metric == Metric::L2,
        inv_norms,
    };
    let lists = match (params.builder, seed.filter(|s| s.fits(params))) {
        (GraphBuilder::Medvec, Some(seed)) => native::extend(&rows, params, seed),
        (GraphBuilder::Medvec, None) => native::build(&rows, params),
        (GraphBuilder::HnswRs, _) => hnsw_rs_builder::build(&rows, params),
    };
    BuiltGraph(lists)
}

/// A built graph, to be written as a file body.
#[cfg_attr(test, derive(Clone))]
pub struct BuiltGraph(GraphLists);

impl BuiltGraph {
    /// The file body, whole (for a file replaced at once).
    pub fn encode(self) -> Vec<u8> {
        let mut body = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.0.write_to(&mut body);
        body
    }

    /// The order to write the graph's rows in (see [`RowOrder`]).
    pub fn breadth_first(&self) -> RowOrder {
        self.0.breadth_first()
    }

    /// Streams the file body of the same graph over the rows as `order` writes them: every node
    /// number `n` becomes `order.position_of(n)`. Layer 0 is renumbered as it is written, not
    /// copied.
    pub fn write_renumbered(
        self,
        out: &mut dyn std::io::Write,
        order: &RowOrder,
    ) -> std::io::Result<()> {
        self.0.write_renumbered(out, order)
    }
}

/// What a builder indexes: the rows of `data` (row-major, `dim` wide) for which `present` is
/// true, compared by squared l2 distance if `squared_l2`, else by 1 − ⟨a,b⟩ of unit vectors:
/// `data` holds unit vectors, or raw ones with their reciprocal norms in `inv_norms`.
struct BuildRows<'a> {
    data: &'a [f32],
    dim: usize,
    present: &'a [bool],
    squared_l2: bool,
    inv_norms: Option<&'a [f32]>,
}

impl BuildRows<'_> {
    fn vector(&self, row: usize) -> &[f32] {
        &self.data[row * self.dim..(row + 1) * self.dim]
    }

    /// Starts loading row `row`'s vector and reciprocal norm, about to be scored. The norm lives
    /// in another part of the column; prefetching it too cut the CPU of a 200k × 128 build by
    /// about 12% (52.5 against 59.8 CPU-s, medians of 3 alternating runs), though not measurably
    /// at 1M × 128 (634.8 against 637.8 CPU-s, one run each; benches/README).
    fn prefetch(&self, row: usize) {
        prefetch(self.vector(row));
        if let Some(inv) = self.inv_norms {
            prefetch(&inv[row..row + 1]);
        }
    }

    /// The distance between rows `a` and `b`, as the graph is built on it.
    #[inline]
    fn distance(&self, a: usize, b: usize) -> f32 {
        let (x, y) = (self.vector(a), self.vector(b));
        if self.squared_l2 {
            return l2_squared(x, y);
        }
        match self.inv_norms {
            Some(inv) => 1.0 - dot(x, y) * inv[a] * inv[b],
            None => 1.0 - dot(x, y),
        }
    }
}

/// A built graph's edges, before encoding: a layer-0 list for every row, and lists for the nodes
/// of each upper layer.
#[cfg_attr(test, derive(Clone))]
struct GraphLists {
    m: usize,
    entry: Option<u32>,
    /// `rows` fixed-width slots of `1 + 2m` words: `[count, ids..., EMPTY...]`.
    layer0: Vec<u32>,
    /// `upper[l - 1]` holds (node, neighbours) of layer `l`.
    upper: Vec<Vec<(u32, Vec<u32>)>>,
}

impl GraphLists {
    fn new(rows: usize, m: usize, entry: Option<u32>, max_level: usize) -> GraphLists {
        let mut layer0 = vec![EMPTY; rows * (1 + 2 * m)];
        // Rows without a vector keep an empty list.
        for slot in layer0.chunks_exact_mut(1 + 2 * m) {
            slot[0] = 0;
        }
        GraphLists {
            m,
            entry,
            layer0,
            upper: vec![Vec::new(); max_level],
        }
    }

    /// Sets `node`'s neighbours on `layer`, keeping the first ones that fit its slot.
    fn set(&mut self, layer: usize, node: u32, ids: Vec<u32>) {
        if layer == 0 {
            let width = 1 + 2 * self.m;
            let at = node as usize * width;
            write_list(&mut self.layer0[at..at + width], &ids);
        } else {
            self.upper[layer - 1].push((node, ids));
        }
    }

    #[cfg(test)]
    fn encode(self) -> Vec<u8> {
        BuiltGraph(self).encode()
    }

    /// Writes the file body (layout in `FORMAT.md`) word by word: layer 0 is released as it is
    /// written, and no encoded copy of the graph is ever whole in memory.
    fn write_to(mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.write_header(out)?;
        write_words(out, std::mem::take(&mut self.layer0).into_iter())?;
        self.write_upper(out)
    }

    fn rows(&self) -> usize {
        self.layer0.len() / (1 + 2 * self.m)
    }

    fn write_header(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let header = [
            self.rows() as u32,
            self.upper.len() as u32,
            self.entry.unwrap_or(EMPTY),
            self.m as u32,
        ];
        write_words(out, header.into_iter())
    }

    /// Writes the upper layers, each sorted by node.
    fn write_upper(mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let m = self.m;
        for nodes in &mut self.upper {
            nodes.sort_by_key(|(node, _)| *node);
            let ids = nodes.iter().map(|(node, _)| *node);
            write_words(out, std::iter::once(nodes.len() as u32).chain(ids))?;
            write_words(out, nodes.iter().flat_map(|(_, ids)| slot_words(ids, m)))?;
        }
        Ok(())
    }
}

/// The words of an upper-layer slot of `1 + m` words: `[count, ids..., EMPTY...]`, keeping the
/// first ids that fit (as [`write_list`]).
fn slot_words(ids: &[u32], m: usize) -> impl Iterator<Item = u32> + '_ {
    let count = ids.len().min(m);
    std::iter::once(count as u32)
        .chain(ids[..count].iter().copied())
        .chain(std::iter::repeat_n(EMPTY, m - count))
}

/// Writes `[count, ids..., EMPTY...]` into a fixed-width slot, keeping the first ids that fit.
fn write_list(slot: &mut [u32], ids: &[u32]) {
    let count = ids.len().min(slot.len() - 1);
    slot[0] = count as u32;
    slot[1..1 + count].copy_from_slice(&ids[..count]);
}

/// Offsets of one upper layer inside the word array.
#[derive(Debug, Clone, Copy)]
struct UpperLayer {
    count: usize,
    nodes_at: usize,
    lists_at: usize,
}

/// A validated view of a graph body; `words` is the body as `u32`s.
#[derive(Debug)]
pub struct GraphLayout {
    nodes: usize,
    entry: u32,
    m: usize,
    upper: Vec<UpperLayer>,
    /// Lists are checked when a search reads them (see [`Nodes::list_intact`]), not at parse: at
    /// a million nodes layer 0 is 130 MB and the upper layers 4.5 MB, of which a search reads a
    /// few hundred KB.
    lists_on_use: bool,
}

/// When a graph's neighbour lists (nearly all of its bytes) are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListCheck {
    /// All of them, at parse (files without block checksums, and graphs used as merge seeds).
    AtParse,
    /// Each list when a search first reads it: its count and ids before use, its checksum block
    /// through [`Nodes::list_intact`]. Parse checks the header and each upper layer's count and
    /// node ids, through the `check_words` it is given.
    OnUse,
}

const LAYER0_AT: usize = 4;

impl GraphLayout {
    /// Checks every count, id and offset (the lists' only with [`ListCheck::AtParse`]), so a
    /// damaged file is an error here and search indexes nothing it has not checked.
    pub fn parse(
        path: &Path,
        words: &[u32],
        expected_nodes: usize,
        layer0: ListCheck,
    ) -> Result<GraphLayout> {
        Self::parse_checking(path, words, expected_nodes, layer0, &|_| Ok(()))
    }

    /// [`parse`](Self::parse) of a body checked lazily: `check_words` checks the checksum blocks
    /// of a range of words before parse reads them (the upper layers' counts and node ids).
    pub fn parse_checking(
        path: &Path,
        words: &[u32],
        expected_nodes: usize,
        layer0: ListCheck,
        check_words: &dyn Fn(std::ops::Range<usize>) -> Result<()>,
    ) -> Result<GraphLayout> {
        let bad = |what: &str| corrupt(path, format!("HNSW graph: {what}"));
        if words.len() < LAYER0_AT {
            return Err(bad("too short"));
        }
        let (nodes, max_level, entry, m) = (
            words[0] as usize,
            words[1] as usize,
            words[2],
            words[3] as usize,
        );
        if nodes != expected_nodes || max_level >= MAX_LAYERS || !(1..=256).contains(&m) {
            return Err(bad("header words out of range"));
        }
        let layer0_len = nodes
            .checked_mul(1 + 2 * m)
            .ok_or_else(|| bad("size overflow"))?;
        let mut at = LAYER0_AT + layer0_len;
        if words.len() < at {
            return Err(bad("layer 0 truncated"));
        }
        if layer0 == ListCheck::AtParse {
            check_lists(&words[LAYER0_AT..at], 2 * m, nodes).map_err(|e| bad(&e))?;
        }
        let mut upper = Vec::with_capacity(max_level);
        let lists_now = layer0 == ListCheck::AtParse;
        for level in 1..=max_level {
            let bad_layer = |e: &str| bad(&format!("layer {level}: {e}"));
            let layer = parse_upper(
                words,
                &mut at,
                (m, nodes, lists_now),
                check_words,
                &bad_layer,
            )?;
            upper.push(layer);
        }
        if at != words.len() {
            return Err(bad("trailing words"));
        }
        let layout = GraphLayout {
            nodes,
            entry,
            m,
            upper,
            lists_on_use: layer0 == ListCheck::OnUse,
        };
        let entry_ok = if nodes == 0 || entry == EMPTY {
            true
        } else {
            (entry as usize) < nodes
                && layout
                    .upper
                    .last()
                    .is_none_or(|top| layout.level_slot(words, top, entry).is_some())
        };
        if !entry_ok {
            return Err(bad("entry point is not on the top layer"));
        }
        Ok(layout)
    }

    /// The nodes on upper layer `level` (1-based), ascending.
    fn layer_nodes<'w>(&self, words: &'w [u32], level: usize) -> &'w [u32] {
        let layer = &self.upper[level - 1];
        &words[layer.nodes_at..layer.nodes_at + layer.count]
    }

    fn level_slot(&self, words: &[u32], layer: &UpperLayer, node: u32) -> Option<usize> {
        words[layer.nodes_at..layer.nodes_at + layer.count]
            .binary_search(&node)
            .ok()
    }

    /// Checks every list now, of layer 0 and the upper layers (what parse does unless told
    /// `OnUse`): before a graph seeds a merge, whose builder reads every list, and in `verify`.
    pub fn check_all_lists(&self, path: &Path, words: &[u32]) -> Result<()> {
        let end = LAYER0_AT + self.nodes * (1 + 2 * self.m);
        let layer0 = check_lists(&words[LAYER0_AT..end], 2 * self.m, self.nodes);
        let upper = self.upper.iter().try_for_each(|layer| {
            let end = layer.lists_at + layer.count * (1 + self.m);
            check_lists(&words[layer.lists_at..end], self.m, self.nodes)
        });
        layer0
            .and(upper)
            .map_err(|e| corrupt(path, format!("HNSW graph: {e}")))
    }

    /// The words of `node`'s layer-0 slot: its count word, then its neighbour words.
    fn slot0(&self, node: u32) -> std::ops::Range<usize> {
        let width = 1 + 2 * self.m;
        let at = LAYER0_AT + node as usize * width;
        at..at + width
    }

    /// The raw layer-0 slot of `node`: its count word, then its neighbour words.
    fn list0<'w>(&self, words: &'w [u32], node: u32) -> &'w [u32] {
        &words[self.slot0(node)]
    }

    /// `node`'s neighbours on `level`. A list checked on use that is damaged (a count above the
    /// width, an id beyond the graph, or its block's checksum if `nodes` checks it now) reads as
    /// empty, and `nodes` keeps the error for the caller to raise before answering.
    fn neighbours<'w, N: Nodes>(
        &self,
        words: &'w [u32],
        level: usize,
        node: u32,
        nodes: &N,
    ) -> &'w [u32] {
        let Some(slot) = self.slot(words, level, node) else {
            return &[];
        };
        if self.lists_on_use && !self.list_ok(words, slot.clone(), node, nodes) {
            return &[];
        }
        ids_in(&words[slot])
    }

    /// The words of `node`'s slot on `level` (its count word, then its neighbour words), if the
    /// node is on that level.
    fn slot(&self, words: &[u32], level: usize, node: u32) -> Option<std::ops::Range<usize>> {
        if level == 0 {
            return Some(self.slot0(node));
        }
        let layer = &self.upper[level - 1];
        let at = layer.lists_at + self.level_slot(words, layer, node)? * (1 + self.m);
        Some(at..at + 1 + self.m)
    }

    /// `node`'s neighbours on `level`, in a graph whose lists were checked (at parse, by
    /// [`check_all_lists`](Self::check_all_lists), or by the caller).
    pub(crate) fn checked_neighbours<'w>(
        &self,
        words: &'w [u32],
        level: usize,
        node: u32,
    ) -> &'w [u32] {
        self.slot(words, level, node)
            .map_or(&[], |slot| ids_in(&words[slot]))
    }

    fn list_ok<N: Nodes>(
        &self,
        words: &[u32],
        slot: std::ops::Range<usize>,
        node: u32,
        nodes: &N,
    ) -> bool {
        let list = &words[slot.clone()];
        if !nodes.list_intact(slot) {
            return false;
        }
        let count = list[0] as usize;
        let sound = count < list.len()
            && list[1..1 + count]
                .iter()
                .all(|&id| (id as usize) < self.nodes);
        if !sound {
            nodes.list_damaged(node);
        }
        sound
    }

    /// Searches for the `ef` nearest allowed nodes, returned as (distance, node), nearest first.
    /// `nodes.allowed` filters the results but not the traversal, so the graph stays connected
    /// under a filter.
    #[cfg(test)]
    pub fn search<N: Nodes>(&self, words: &[u32], ef: usize, nodes: &N) -> Vec<(f32, u32)> {
        self.search_within(words, ef, nodes, Bound::none())
    }

    /// [`search`](Self::search) for a query already searched in another segment, whose beam
    /// there reached `bound.distance`: once this walk has made `bound.settle` expansions and
    /// scored a node within that distance, the beam stops at the first candidate farther than
    /// it, as the other segment's beam did, instead of running a full `ef` beam past it.
    ///
    /// Why both conditions: a walk enters layer 0 where the upper layers' greedy descent ends,
    /// often outside the bound. Stopping it there, before it reached the query's neighbourhood,
    /// lost that segment's share of the answer: at 10M × 128 in 12 segments of similar size,
    /// recall@10 stalled at 0.90–0.92 for ef 256–1024 (0.97 at ef 256 with this rule;
    /// benches/README, long mode).
    pub fn search_within<N: Nodes>(
        &self,
        words: &[u32],
        ef: usize,
        nodes: &N,
        bound: Bound,
    ) -> Vec<(f32, u32)> {
        if self.nodes == 0 || self.entry == EMPTY || ef == 0 {
            return Vec::new();
        }
        let mut entry = Scored(nodes.distance(self.entry), self.entry);
        for level in (1..=self.upper.len()).rev() {
            entry = self.greedy(words, level, entry, nodes);
        }
        VISITED.with(|cell| {
            let mut visited = cell.borrow_mut();
            visited.reset(self.nodes);
            self.beam(words, &mut visited, (ef, bound), entry, nodes)
        })
    }

    fn greedy<N: Nodes>(&self, words: &[u32], level: usize, start: Scored, nodes: &N) -> Scored {
        let mut best = start;
        loop {
            let before = best.1;
            for &next in self.neighbours(words, level, best.1, nodes) {
                let d = nodes.distance(next);
                if d < best.0 {
                    best = Scored(d, next);
                }
            }
            if best.1 == before {
                return best;
            }
        }
    }
}

/// The distance a query's answer already reaches in other segments (see
/// [`GraphLayout::search_within`]), and how many expansions a search makes before heeding it
/// (which it also does only once it has scored a node within that distance).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub distance: f32,
    pub settle: usize,
}

impl Bound {
    /// No bound: a plain search.
    #[cfg(test)]
    pub fn none() -> Bound {
        Bound {
            distance: f32::INFINITY,
            settle: 0,
        }
    }
}

/// What a graph search needs to know about the nodes: distances to the query, a hint to start
/// loading a node's vector, and which nodes may be returned.
pub trait Nodes {
    fn distance(&self, node: u32) -> f32;
    /// Starts loading `node`'s vector into cache; the search calls it for a whole neighbour list
    /// before computing any of its distances, so the memory loads overlap.
    fn prefetch(&self, _node: u32) {}
    fn allowed(&self, _node: u32) -> bool {
        true
    }
    /// Whether [`allowed`](Self::allowed) may return false. A walk over nodes that all may be
    /// returned keeps one sorted beam instead of two heaps (`beam.rs`); true is always safe.
    fn filters(&self) -> bool {
        true
    }
    /// Whether the graph words `range` (a list's slot, on any layer) may be read: checks their checksum block
    /// (on damage, keeps the error and returns false), or notes the range to check after the
    /// walk, before any answer. Either way the list's count and ids are bounds-checked next.
    fn list_intact(&self, _range: std::ops::Range<usize>) -> bool {
        true
    }
    /// Layer-0 list of `node` holds a count or an id out of range: keep the error.
    fn list_damaged(&self, _node: u32) {}
}

/// Parses the upper layer at word `at` (moving `at` past it): its count and sorted node ids,
/// each read only after `check_words` passed its blocks, and its lists if `lists_now`. A damaged
/// shape is `bad(what)`.
fn parse_upper(
    words: &[u32],
    at: &mut usize,
    (m, nodes, lists_now): (usize, usize, bool),
    check_words: &dyn Fn(std::ops::Range<usize>) -> Result<()>,
    bad: &dyn Fn(&str) -> StoreError,
) -> Result<UpperLayer> {
    if *at >= words.len() {
        return Err(bad("truncated"));
    }
    check_words(*at..*at + 1)?;
    let count = words[*at] as usize;
    if count > nodes {
        return Err(bad("more nodes than the graph holds"));
    }
    let nodes_at = *at + 1;
    let lists_at = nodes_at + count;
    let end = count
        .checked_mul(1 + m)
        .and_then(|n| n.checked_add(lists_at))
        .filter(|&end| end <= words.len())
        .ok_or_else(|| bad("truncated"))?;
    check_words(nodes_at..lists_at)?;
    let ids = &words[nodes_at..lists_at];
    if ids.windows(2).any(|w| w[0] >= w[1]) || ids.last().is_some_and(|&n| n as usize >= nodes) {
        return Err(bad("node list unsorted or out of range"));
    }
    if lists_now {
        check_lists(&words[lists_at..end], m, nodes).map_err(|e| bad(&e))?;
    }
    *at = end;
    Ok(UpperLayer {
        count,
        nodes_at,
        lists_at,
    })
}

/// The ids of a `[count, ids...]` slot; a count above the width reads as the full width (a
/// list checked on use is refused before this if its count is out of range).
fn ids_in(slot: &[u32]) -> &[u32] {
    let count = (slot[0] as usize).min(slot.len() - 1);
    &slot[1..1 + count]
}

/// Checks fixed-width `[count, ids...]` lists: counts within width, ids within the node range.
fn check_lists(words: &[u32], width: usize, nodes: usize) -> Result<(), String> {
    for list in words.chunks_exact(1 + width) {
        let count = list[0] as usize;
        if count > width {
            return Err("neighbour count exceeds M".into());
        }
        if list[1..1 + count].iter().any(|&id| id as usize >= nodes) {
            return Err("neighbour id out of range".into());
        }
    }
    Ok(())
}

/// A (distance, node) pair ordered by distance, then node, so heaps are deterministic.
#[derive(Debug, Clone, Copy)]
struct Scored(f32, u32);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Per-thread visited marks, reset in O(1) by bumping an epoch. One byte per node: 1 MiB per
/// search thread at 1M nodes instead of 4 with a u32 epoch, at the cost of clearing the marks
/// once every 255 searches, when the epoch wraps (queries/s within noise of the u32 marks).
struct Visited {
    epoch: u8,
    marks: Vec<u8>,
}

impl Visited {
    fn reset(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `node`; returns false when it was already marked.
    fn mark(&mut self, node: u32) -> bool {
        let slot = &mut self.marks[node as usize];
        if *slot == self.epoch {
            false
        } else {
            *slot = self.epoch;
            true
        }
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { epoch: 0, marks: Vec::new() }) };
}

#[cfg(test)]
mod tests;
