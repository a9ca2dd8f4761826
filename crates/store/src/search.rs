//! Nearest-neighbour search over a collection: a plan per segment (HNSW graph or exact scan),
//! an exact scan of the unflushed tail, and a merge into one top-k.

use crate::bitset::BitSet;
use crate::collection::{Collection, State};
use crate::distance::{prefetch, PreparedQuery};
use crate::error::{corrupt, Result, StoreError};
use crate::filter::{CompiledFilter, Filter};
use crate::graph::{Bound, Nodes};
use crate::memtable::LoggedRow;
use crate::schema::Metric;
use crate::schema::VectorField;
use crate::segment::{Codes, Column, Segment};
use crate::sq8::CodeQuery;
use rayon::prelude::*;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::Path;

/// Below this fraction of a segment's rows passing the filter, the planner scans exactly,
/// because a filtered graph walk visits mostly rejected nodes and its recall collapses.
pub const EXACT_SELECTIVITY: f64 = 0.10;
/// Below this many candidate rows an exact scan is as fast as a graph walk.
pub const EXACT_ROWS: usize = 4096;

/// What to search for, besides the query vectors.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    /// Number of hits per query.
    pub k: usize,
    /// Beam width for graph search, at least `k`; by default [`default_ef`] of the field's
    /// `ef_search` and its largest graph (`CollectionStats::default_ef`).
    pub ef: Option<usize>,
    /// Scan every row instead of walking the graphs.
    pub exact: bool,
    /// Only rows whose payload matches.
    pub filter: Option<Filter>,
    /// Compare against `normalize(x/‖x‖ + offset)` instead of each stored `x` (cosine fields
    /// only). This is how the alignment shift is applied at read time; graph searches widen
    /// their beam ([`shifted_ef`] of the named or default ef) and score every visited row under
    /// the shifted geometry.
    pub offset: Option<Vec<f32>>,
    /// On an SQ8 field, how many of a walk's best candidates per hit (`rescore · k`) are
    /// re-scored on the `f32` column; defaults to [`RESCORE`]. The walk's others are dropped.
    pub rescore: Option<usize>,
}

/// Candidates re-scored exactly per requested hit on SQ8 fields, by default.
pub const RESCORE: usize = 4;

/// Rows per graph up to which a field's `ef_search` is the default beam as it stands: it was
/// chosen on graphs of 100k rows (`HnswParams::default`).
pub const EF_SEARCH_ROWS: usize = 100_000;
/// How the default beam grows past [`EF_SEARCH_ROWS`]: `ef_search · (rows / 100k)^0.6`.
const EF_GROWTH: f64 = 0.6;

/// The beam a search walks with when the caller names none, for a field whose largest graph
/// has `graph_rows` rows. At a fixed ef, recall falls as a graph grows: on 128-d clustered
/// rows, ef 64 gives recall@10 0.98 on a graph of 100k rows, 0.72 on one of 1M, and 0.71 on 10M
/// rows in 12 graphs of up to 845k. So past [`EF_SEARCH_ROWS`] the field's `ef_search` is
/// scaled by `(rows / 100k)^0.6`, fitted to the smallest ef reaching recall 0.95 at 100k, 300k,
/// 1M and 10M rows (benches/README.md, "A default ef that grows with the graph"). A caller's
/// own `ef` is used as given.
pub fn default_ef(ef_search: usize, graph_rows: usize) -> usize {
    if graph_rows <= EF_SEARCH_ROWS {
        return ef_search;
    }
    let growth = (graph_rows as f64 / EF_SEARCH_ROWS as f64).powf(EF_GROWTH);
    (ef_search as f64 * growth).ceil() as usize
}

/// The beam of a graph walk under a read-time shift, for an unshifted beam of `ef` on a field
/// whose `ef_search` is `ef_search`: `max(2·ef, 4·min(ef, ef_search))`.
///
/// The graph was built for the unshifted geometry, and the shift moves queries and rows relative
/// to each other (a negative λ pushes queries away from the data), so a shifted walk needs a
/// wider beam. Four times the beam keeps recall@10 >= 0.95 on small, strongly gapped stores
/// (6,000 rows: 0.979 at 4×, 0.951 at 2×; crates/query/tests/alignment.rs). Once the default
/// beam has grown with the graph, twice is enough: at 1M rows, 0.978–0.982 at 2× against
/// 0.993–0.996 at 4×, for 1.37–1.46× the queries per CPU-second (benches/README.md, "Shifted
/// search at 1M"). Up to `ef_search` the beam is widened 4×, as it always was; past
/// `2·ef_search` it is widened 2×; between, it stays at `4·ef_search`, so a larger `ef` never
/// walks a narrower beam.
pub fn shifted_ef(ef: usize, ef_search: usize) -> usize {
    (2 * ef).max(4 * ef.min(ef_search))
}

impl SearchParams {
    pub fn top(k: usize) -> SearchParams {
        SearchParams {
            k,
            ..SearchParams::default()
        }
    }
}

/// One search result: the record id and its score (similarity for cosine and dot, distance for l2).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

/// How one segment is searched for one batch of queries.
enum Plan {
    Skip,
    Exact(Vec<u32>),
    /// A graph search over the rows of the mask; `None` when every row qualifies (no filter, no
    /// deletes, no missing vectors), which spares a single query the O(rows) mask.
    Graph(Option<BitSet>),
}

impl Collection {
    /// Finds the `params.k` records nearest to `query` in vector field `field`, best first.
    pub fn search(&self, field: &str, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>> {
        let mut hits = self.search_batch(field, std::slice::from_ref(&query.to_vec()), params)?;
        Ok(hits.pop().unwrap_or_default())
    }

    /// Searches many queries at once, in parallel on all cores; results are in query order.
    pub fn search_batch(
        &self,
        field: &str,
        queries: &[Vec<f32>],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        let state = self.read();
        let schema = &state.manifest.schema;
        let field_index = schema.vector_index(field)?;
        let spec = &schema.vectors[field_index];
        for (i, query) in queries.iter().enumerate() {
            check_query(spec, i, query)?;
        }
        check_offset(spec, params.offset.as_deref())?;
        let filter = params
            .filter
            .as_ref()
            .map(|f| f.compile(schema))
            .transpose()?;
        let plans = plan_segments(&state, field_index, filter.as_ref(), params.exact)?;
        let mut order: Vec<usize> = (0..state.segments.len()).collect();
        order.sort_by_key(|&s| std::cmp::Reverse(state.segments[s].rows));
        let ef = params
            .ef
            .unwrap_or_else(|| state.default_ef(field_index))
            .max(params.k);
        let ef = match params.offset {
            Some(_) => shifted_ef(ef, spec.hnsw.ef_search),
            None => ef,
        };
        let beam = (ef, params.rescore.unwrap_or(RESCORE).max(1));
        let search_one = |query: &Vec<f32>| {
            let mut prepared = PreparedQuery::new(spec.metric, query);
            if let Some(offset) = &params.offset {
                prepared = prepared.with_offset(offset);
            }
            let mut top = TopK::new(params.k);
            // Largest segment first: its beam bounds the walks of the smaller ones.
            for &s in &order {
                let (segment, plan) = (&state.segments[s], &plans[s]);
                search_segment(segment, field_index, plan, &prepared, beam, &mut top)?;
            }
            scan_tail(&state, field_index, filter.as_ref(), &prepared, &mut top);
            Ok(top.into_hits(spec.metric))
        };
        // One query runs on the caller's thread: handing it to the pool costs a wake-up, which
        // is a sizeable share of a single-query search (the latency a Python caller sees).
        if let [query] = queries {
            return Ok(vec![search_one(query)?]);
        }
        queries.par_iter().map(search_one).collect()
    }
}

fn check_query(spec: &VectorField, index: usize, query: &[f32]) -> Result<()> {
    if query.len() != spec.dim {
        return Err(StoreError::InvalidQuery(format!(
            "query {index} has dimension {}, field `{}` has {}",
            query.len(),
            spec.name,
            spec.dim
        )));
    }
    if query.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::InvalidQuery(format!(
            "query {index} has a NaN or infinite value"
        )));
    }
    Ok(())
}

fn check_offset(spec: &VectorField, offset: Option<&[f32]>) -> Result<()> {
    let Some(offset) = offset else { return Ok(()) };
    if spec.metric != crate::schema::Metric::Cosine {
        return Err(StoreError::InvalidQuery(format!(
            "a read-time shift needs a cosine field; `{}` is {}",
            spec.name,
            spec.metric.name()
        )));
    }
    if offset.len() != spec.dim || offset.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::InvalidQuery(format!(
            "shift offset has dimension {} (or a non-finite value); field `{}` has {}",
            offset.len(),
            spec.name,
            spec.dim
        )));
    }
    Ok(())
}

fn plan_segments(
    state: &State,
    field: usize,
    filter: Option<&CompiledFilter>,
    exact: bool,
) -> Result<Vec<Plan>> {
    state
        .segments
        .iter()
        .zip(&state.tombstones)
        .map(|(segment, tombstones)| {
            let column = &segment.columns[field];
            let unrestricted = filter.is_none()
                && segment.is_complete(field)
                && tombstones.count() == 0
                && column.has_graph();
            if unrestricted && !exact && segment.rows > EXACT_ROWS {
                return Ok(Plan::Graph(None));
            }
            if filter.is_some() {
                segment.check_scan()?;
            }
            let mut allowed = BitSet::new(segment.rows);
            for row in 0..segment.rows {
                let ok = !tombstones.get(row)
                    && segment.has_vector(field, row)
                    && filter.is_none_or(|f| f.matches(&segment.row(row)));
                if ok {
                    allowed.set(row);
                }
            }
            let count = allowed.count();
            let selective = (count as f64) < EXACT_SELECTIVITY * segment.rows as f64;
            Ok(if count == 0 {
                Plan::Skip
            } else if exact || !column.has_graph() || selective || count <= EXACT_ROWS {
                Plan::Exact(allowed.ones().map(|r| r as u32).collect())
            } else {
                Plan::Graph(Some(allowed))
            })
        })
        .collect()
}

impl State {
    /// The beam of a search of vector field `field` that names none: [`default_ef`] of the
    /// field's `ef_search` and the rows of its largest graph (0 when it has none).
    pub(crate) fn default_ef(&self, field: usize) -> usize {
        let graphs = self
            .segments
            .iter()
            .filter(|s| s.columns[field].has_graph());
        let largest = graphs.map(|s| s.rows).max().unwrap_or(0);
        default_ef(self.manifest.schema.vectors[field].hnsw.ef_search, largest)
    }
}

fn search_segment(
    segment: &Segment,
    field: usize,
    plan: &Plan,
    query: &PreparedQuery,
    (ef, rescore): (usize, usize),
    top: &mut TopK,
) -> Result<()> {
    let column = &segment.columns[field];
    match plan {
        Plan::Skip => {}
        Plan::Exact(rows) => {
            let nodes = ColumnNodes::new(column, query, None);
            for &row in rows {
                column.check_row(row as usize)?;
                let d = nodes.score(row);
                if top.accepts(d) {
                    top.push(d, segment.id_of(row as usize)?);
                }
            }
        }
        Plan::Graph(allowed) => {
            let Some((words, layout)) = column.graph()? else {
                return Ok(());
            };
            // Codes do not model a read-time shift; such walks read the f32 column.
            let codes = column.codes().filter(|_| !query.has_offset());
            let exact = ColumnNodes::new(column, query, allowed.as_ref());
            // A code walk re-ranks with exact distances; an f32 walk may skip the norms.
            let exact = match codes {
                Some(_) => exact,
                None => exact.walk_unit(),
            };
            let bound = Bound {
                distance: top.walk_bound,
                settle: top.k,
            };
            let coded = codes
                .map(|codes| CodeNodes::new(codes, &exact))
                .transpose()?;
            let found = match &coded {
                Some(coded) => {
                    let found = layout.search_within(words, ef, coded, bound);
                    coded.check()?;
                    found
                }
                None => layout.search_within(words, ef, &exact, bound),
            };
            top.narrow_walk_bound(&found, ef);
            let found = match coded {
                // The codes chose the candidates; their scores come from the f32 column.
                Some(_) => found
                    .into_iter()
                    .take(rescore.saturating_mul(top.k))
                    .map(|(_, row)| (exact.distance(row), row))
                    .collect(),
                // A unit-row walk ranked without the norms: returned scores use them. The rows
                // are in cache from the walk.
                None if exact.unit => found
                    .into_iter()
                    .map(|(_, row)| (exact.exact_score(row), row))
                    .collect(),
                None => found,
            };
            // Every row the walk scored is checked now; a damaged block ends the search here,
            // before any answer that used it.
            exact.check()?;
            for (d, row) in found {
                if top.accepts(d) {
                    top.push(d, segment.id_of(row as usize)?);
                }
            }
        }
    }
    Ok(())
}

/// The first damage met by a walk's distances, kept until the walk ends: the walk itself cannot
/// fail, so a damaged row scores as infinitely far and the search then reports the error.
#[derive(Default)]
struct Damage(std::sync::Mutex<Option<StoreError>>);

impl Damage {
    fn keep(&self, error: StoreError) {
        let mut damage = self.0.lock().unwrap_or_else(|p| p.into_inner());
        damage.get_or_insert(error);
    }

    fn check(&self) -> Result<()> {
        let mut damage = self.0.lock().unwrap_or_else(|p| p.into_inner());
        damage.take().map_or(Ok(()), Err)
    }
}

/// A segment column seen by a search: the rows' vectors and reciprocal norms, resolved once per
/// search rather than per distance.
///
/// A walk scores rows without checking them and notes which; [`check`](Self::check) then checks
/// each noted row's bytes against their block checksums, so a damaged block is an error before
/// any answer that used it. Reads stay in bounds either way (the mapping's length was checked at
/// open): a damaged row only misleads the walk that is about to fail. Checking each row as it was
/// scored cost 19% of an f32 search's CPU time at 1M × 128, though the checks themselves took
/// 3% of the samples: interleaved with the walk's cache misses, they slowed everything around them
/// (benches/README, "Block checks after the walk").
struct ColumnNodes<'a> {
    column: &'a Column,
    vectors: &'a [f32],
    inv_norms: &'a [f32],
    /// Walk as if every row were a unit vector (see [`walk_unit`](Self::walk_unit)).
    unit: bool,
    dim: usize,
    query: &'a PreparedQuery,
    allowed: Option<&'a BitSet>,
    log: WalkLog,
}

impl<'a> ColumnNodes<'a> {
    fn new(column: &'a Column, query: &'a PreparedQuery, allowed: Option<&'a BitSet>) -> Self {
        ColumnNodes {
            column,
            vectors: column.vectors(),
            inv_norms: column.inv_norms(),
            unit: false,
            dim: column.dim,
            query,
            allowed,
            log: WalkLog::default(),
        }
    }

    /// For a graph walk over a column whose rows are unit vectors already (FORMAT.md §4.4, flag
    /// `UNIT_ROWS`): its distances skip each row's reciprocal norm, which lives apart from the row
    /// and costs a second cache miss per row scored (about 7% of an f32 walk's CPU at 1M × 128,
    /// benches/README). The norms differ from 1 by rounding only, so the walk's ranking is the
    /// same; the caller re-scores what it returns with [`exact_score`](Self::exact_score).
    fn walk_unit(mut self) -> Self {
        self.unit = self.column.has_unit_rows();
        self
    }

    fn vector(&self, node: u32) -> &[f32] {
        let at = node as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    /// Row `node`'s distance to the query as the walk ranks it, unchecked: the caller checked
    /// the row, or noted it for [`check`](Self::check).
    fn score(&self, node: u32) -> f32 {
        if self.unit {
            return self.query.distance(self.vector(node), 1.0);
        }
        self.exact_score(node)
    }

    /// Row `node`'s exact distance to the query, unchecked (as [`score`](Self::score)).
    fn exact_score(&self, node: u32) -> f32 {
        self.query
            .distance(self.vector(node), self.inv_norms[node as usize])
    }

    /// Checks every row and list the walk read since the last call, and raises any damage met.
    fn check(&self) -> Result<()> {
        self.log
            .check(self.column, |row| self.column.check_row(row))
    }
}

/// What a walk read without checking (see [`ColumnNodes`]): the rows it scored and the layer-0
/// lists it expanded, checked against their blocks after the walk; and the damage it met.
#[derive(Default)]
struct WalkLog {
    scored: RefCell<Vec<u32>>,
    lists: RefCell<Vec<std::ops::Range<usize>>>,
    damage: Damage,
}

impl WalkLog {
    fn scored(&self, node: u32) {
        self.scored.borrow_mut().push(node);
    }

    /// Notes the graph words of an expanded list; their block is checked by [`check`](Self::check).
    fn expanded(&self, words: std::ops::Range<usize>) -> bool {
        self.lists.borrow_mut().push(words);
        true
    }

    /// Checks each noted row with `check_row` and each noted list in `column`'s graph (emptying
    /// both), then raises the first damage kept.
    fn check(&self, column: &Column, check_row: impl Fn(usize) -> Result<()>) -> Result<()> {
        let rows = std::mem::take(&mut *self.scored.borrow_mut());
        rows.iter().try_for_each(|&row| check_row(row as usize))?;
        let lists = std::mem::take(&mut *self.lists.borrow_mut());
        lists
            .into_iter()
            .try_for_each(|words| column.check_graph_words(words))?;
        self.damage.check()
    }
}

impl Nodes for ColumnNodes<'_> {
    fn distance(&self, node: u32) -> f32 {
        self.log.scored(node);
        self.score(node)
    }

    fn prefetch(&self, node: u32) {
        prefetch(self.vector(node));
        // The reciprocal norm lives in another part of the column. Without this its cache miss
        // took 36% of an f32 search's CPU samples at 1M × 128 (perf, cpu-clock); with it the
        // stall moves to the vector's own load, for a gain within this machine's noise.
        if !self.unit {
            prefetch(&self.inv_norms[node as usize..node as usize + 1]);
        }
    }

    fn allowed(&self, node: u32) -> bool {
        self.allowed.is_none_or(|set| set.get(node as usize))
    }

    fn filters(&self) -> bool {
        self.allowed.is_some()
    }

    fn list_intact(&self, words: std::ops::Range<usize>) -> bool {
        self.log.expanded(words)
    }

    fn list_damaged(&self, node: u32) {
        list_damaged(self.column, &self.log.damage, node)
    }
}

fn list_damaged(column: &Column, damage: &Damage, node: u32) {
    let path = column.graph_path().unwrap_or(Path::new("graph"));
    damage.keep(corrupt(
        path,
        format!("HNSW graph: list of node {node} is out of range"),
    ));
}

/// A quantised column seen by a walk: rows scored on their SQ8 codes (a quarter of the bytes of
/// `f32`), each code's blocks checked before it is read, as [`ColumnNodes`] does for vectors.
struct CodeNodes<'a> {
    codes: &'a Codes,
    query: CodeQuery,
    exact: &'a ColumnNodes<'a>,
    /// l2 adds each row's exact norm; the other metrics need none.
    needs_norm: bool,
    log: WalkLog,
}

impl<'a> CodeNodes<'a> {
    fn new(codes: &'a Codes, exact: &'a ColumnNodes<'a>) -> Result<Self> {
        let (lo, step) = codes.ranges()?;
        Ok(CodeNodes {
            codes,
            query: CodeQuery::new(exact.query, lo, step),
            exact,
            needs_norm: exact.query.metric() == Metric::L2,
            log: WalkLog::default(),
        })
    }

    /// Checks the code (and, for l2, the norm) of every row the walk scored.
    fn check(&self) -> Result<()> {
        self.log.check(self.exact.column, |row| {
            self.codes.check_row(row)?;
            match self.needs_norm {
                true => self.exact.column.check_norm(row),
                false => Ok(()),
            }
        })
    }
}

impl Nodes for CodeNodes<'_> {
    fn distance(&self, node: u32) -> f32 {
        let row = node as usize;
        self.log.scored(node);
        let inv_norm = if self.needs_norm {
            self.exact.inv_norms[row]
        } else {
            0.0
        };
        self.query.distance(self.codes.code(row), inv_norm)
    }

    fn prefetch(&self, node: u32) {
        prefetch(self.codes.code(node as usize));
    }

    fn allowed(&self, node: u32) -> bool {
        self.exact.allowed(node)
    }

    fn filters(&self) -> bool {
        self.exact.filters()
    }

    fn list_intact(&self, words: std::ops::Range<usize>) -> bool {
        self.log.expanded(words)
    }

    fn list_damaged(&self, node: u32) {
        list_damaged(self.exact.column, &self.log.damage, node)
    }
}

fn scan_tail(
    state: &State,
    field: usize,
    filter: Option<&CompiledFilter>,
    query: &PreparedQuery,
    top: &mut TopK,
) {
    for record in &state.tail.records {
        let Some(Some(vector)) = record.vectors.get(field) else {
            continue;
        };
        if filter.is_some_and(|f| !f.matches(&LoggedRow(record))) {
            continue;
        }
        let d = query.distance(vector, crate::distance::reciprocal_norm(vector));
        if top.accepts(d) {
            top.push(d, &record.id);
        }
    }
}

/// Keeps the k smallest (distance, id) pairs; ties break on id so results are deterministic.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
    /// Where the walks of the remaining segments may stop (see [`narrow_walk_bound`]).
    ///
    /// [`narrow_walk_bound`]: Self::narrow_walk_bound
    walk_bound: f32,
}

struct Entry(f32, String);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

impl TopK {
    pub(crate) fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            walk_bound: f32::INFINITY,
        }
    }

    /// Takes a finished walk's beam (`ef` results, best first) into the bound of the next
    /// segments' walks: the farthest of a full beam. A walk stops where a single graph's would,
    /// at a candidate farther than everything its beam holds, so the segments together are
    /// searched about as one graph with beam `ef` would be; the k-th best instead (tried first)
    /// cut smaller segments' walks after a few expansions, and recall@10 at 1M × 128 in four
    /// segments stalled at 0.84 (0.96 with this bound at ef 256, 0.99 with none; benches/README).
    fn narrow_walk_bound(&mut self, beam: &[(f32, u32)], ef: usize) {
        if beam.len() >= ef {
            if let Some(&(farthest, _)) = beam.last() {
                self.walk_bound = self.walk_bound.min(farthest);
            }
        }
    }

    /// Whether a candidate at distance `d` could enter; avoids allocating its id otherwise.
    pub(crate) fn accepts(&self, d: f32) -> bool {
        self.k > 0 && (self.heap.len() < self.k || self.heap.peek().is_some_and(|w| d <= w.0))
    }

    pub(crate) fn push(&mut self, d: f32, id: &str) {
        self.heap.push(Entry(d, id.to_string()));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    fn into_hits(self, metric: crate::schema::Metric) -> Vec<Hit> {
        let sorted = self.heap.into_sorted_vec();
        sorted
            .into_iter()
            .map(|Entry(distance, id)| Hit {
                id,
                score: metric.score(distance),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_beam_is_ef_search_up_to_100k_rows_then_grows() {
        assert_eq!(default_ef(64, 0), 64);
        assert_eq!(default_ef(64, EF_SEARCH_ROWS), 64);
        // 64 · 10^0.6 = 254.8 (recall@10 0.954 at 1M) and 64 · (2^20 / 10^5)^0.6 = 262.1.
        assert_eq!(default_ef(64, 1_000_000), 255);
        assert_eq!(default_ef(64, 1 << 20), 263);
        let mut last = 0;
        for rows in (0..40).map(|i| 50_000usize << (i / 2)) {
            let ef = default_ef(16, rows);
            assert!(ef >= last && ef >= 16, "{rows} rows: {ef} after {last}");
            last = ef;
        }
    }

    #[test]
    fn a_shifted_beam_is_four_times_up_to_ef_search_then_twice_and_never_narrower() {
        assert_eq!(shifted_ef(16, 64), 64);
        assert_eq!(shifted_ef(64, 64), 256);
        assert_eq!(shifted_ef(100, 64), 256);
        assert_eq!(shifted_ef(128, 64), 256);
        assert_eq!(shifted_ef(255, 64), 510);
        let mut last = 0;
        for ef in 1..2_000 {
            let beam = shifted_ef(ef, 64);
            assert!(
                beam >= last && beam >= 2 * ef,
                "ef {ef}: {beam} after {last}"
            );
            last = beam;
        }
    }
}
