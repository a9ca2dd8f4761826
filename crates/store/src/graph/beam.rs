//! The layer-0 beam of a graph walk, in two forms: two heaps (candidates and results) for a
//! filtered walk, whose results hold only allowed nodes, and one sorted array of the `ef`
//! nearest for an unfiltered walk, where candidates and results are the same nodes. The two
//! expand the same nodes in the same order and return the same answer, except where a node's
//! distance ties the `ef`-th exactly: the heaps may still expand a node that tied it and was
//! dropped, the array has dropped it.
//!
//! Why two: the unfiltered walk is nearly every search, and on it the heaps' pops were 7–10%
//! of the CPU time (perf, 1M × 128, ef 256, f32 and SQ8). A sorted array needs no pop: the next
//! node to expand is the nearest one not yet expanded, found by a cursor. It gained about 1%
//! (f32) and 3% (SQ8) queries per CPU-second (benches/README, "One sorted beam"). An insertion
//! moves up to `ef` entries, so walks with an `ef` above [`MAX_POOLED_EF`] keep the heaps.
//! The graph builder's layer beam (`native.rs`) uses the same [`Pool`] for its
//! `ef_construction` nearest (about 3% less build CPU, benches/README, "The builder's beam on
//! the sorted array").

use super::{Bound, GraphLayout, Nodes, Scored, Visited};
use crate::distance::prefetch;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A pooled beam flags expanded nodes in their id's top bit, so it walks graphs of at most
/// 2^31 nodes; larger ones take the heaps (the builder refuses them, see `native.rs`).
pub(super) const MAX_POOLED_NODES: usize = EXPANDED as usize;
const EXPANDED: u32 = 1 << 31;
/// The largest `ef` a pooled beam serves: its insertions move up to 16 KiB here, and an `ef`
/// near the graph's size (an exhaustive walk) would make them quadratic in it.
const MAX_POOLED_EF: usize = 2048;

impl GraphLayout {
    /// The layer-0 beam from `start`: the `ef` nearest allowed nodes found, nearest first (see
    /// the module doc for its two forms).
    pub(super) fn beam<N: Nodes>(
        &self,
        words: &[u32],
        visited: &mut Visited,
        (ef, bound): (usize, Bound),
        start: Scored,
        nodes: &N,
    ) -> Vec<(f32, u32)> {
        visited.mark(start.1);
        let mut walk = Walk {
            layout: self,
            words,
            visited,
            nodes,
            bound,
            expanded: 0,
            reached: start.0 <= bound.distance,
        };
        match nodes.filters() || self.nodes > MAX_POOLED_NODES || ef > MAX_POOLED_EF {
            true => walk.with_heaps(ef, start),
            false => walk.with_pool(ef, start),
        }
    }
}

/// What both forms of the beam share: the graph, the visited marks, the bound and the steps
/// of one expansion.
struct Walk<'a, N> {
    layout: &'a GraphLayout,
    words: &'a [u32],
    visited: &'a mut Visited,
    nodes: &'a N,
    bound: Bound,
    expanded: usize,
    /// Whether a node within the bound has been scored.
    reached: bool,
}

impl<N: Nodes> Walk<'_, N> {
    /// Whether the bound stops the walk at a candidate `d` away (see
    /// [`GraphLayout::search_within`]).
    fn bound_stops_at(&self, d: f32) -> bool {
        self.reached && self.expanded >= self.bound.settle && d > self.bound.distance
    }

    /// Expands `node`: collects its unvisited neighbours into `fresh`, prefetching their rows,
    /// and starts loading the list of `upcoming`, the node most likely expanded next, while
    /// this one's distances are computed (+2–3% queries/s).
    fn expand(&mut self, node: u32, upcoming: Option<u32>, fresh: &mut Vec<u32>) {
        self.expanded += 1;
        let neighbours = self.layout.neighbours(self.words, 0, node, self.nodes);
        unvisited_with_prefetch(neighbours, self.visited, self.nodes, fresh);
        if let Some(upcoming) = upcoming {
            prefetch(self.layout.list0(self.words, upcoming));
        }
    }

    /// The distance of a fresh neighbour, noting whether it is within the bound.
    fn score(&mut self, node: u32) -> f32 {
        let d = self.nodes.distance(node);
        self.reached |= d <= self.bound.distance;
        d
    }

    /// The heaps' beam: candidates in a min-heap, the `ef` best allowed nodes in a max-heap.
    fn with_heaps(&mut self, ef: usize, start: Scored) -> Vec<(f32, u32)> {
        let mut candidates = BinaryHeap::new();
        let mut results: BinaryHeap<Scored> = BinaryHeap::new();
        let mut fresh = Vec::with_capacity(2 * self.layout.m);
        candidates.push(Reverse(start));
        if self.nodes.allowed(start.1) {
            results.push(start);
        }
        while let Some(Reverse(Scored(d, node))) = candidates.pop() {
            let worst = results.peek().map_or(f32::INFINITY, |w| w.0);
            if (results.len() >= ef && d > worst) || self.bound_stops_at(d) {
                break;
            }
            self.expand(node, candidates.peek().map(|c| c.0 .1), &mut fresh);
            for &next in &fresh {
                let dn = self.score(next);
                let worst = results.peek().map_or(f32::INFINITY, |w| w.0);
                if results.len() < ef || dn < worst {
                    candidates.push(Reverse(Scored(dn, next)));
                    if self.nodes.allowed(next) {
                        results.push(Scored(dn, next));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        // Ascending in `Scored`'s order: distance, then node.
        results
            .into_sorted_vec()
            .into_iter()
            .map(|s| (s.0, s.1))
            .collect()
    }

    /// The beam of an unfiltered walk (see the module doc): expands the nearest unexpanded node
    /// of the `ef` nearest scored so far until none is left, or until the bound stops it, and
    /// returns them nearest first. The heaps' beam expands the same nodes (but for ties, see
    /// the module doc): it never expands a node farther than the `ef`-th either, since it stops
    /// at the first one.
    fn with_pool(&mut self, ef: usize, start: Scored) -> Vec<(f32, u32)> {
        #[cfg(test)]
        POOLED_WALKS.with(|walks| walks.set(walks.get() + 1));
        let mut pool = Pool::new(ef);
        let mut fresh = Vec::with_capacity(2 * self.layout.m);
        pool.insert(start);
        while let Some(Scored(d, node)) = pool.expand_next() {
            if self.bound_stops_at(d) {
                break;
            }
            self.expand(node, pool.peek_next(), &mut fresh);
            for &next in &fresh {
                let dn = self.score(next);
                pool.insert(Scored(dn, next));
            }
        }
        pool.into_sorted()
    }
}

#[cfg(test)]
thread_local! {
    /// Walks this thread took with the pooled beam, so tests can tell which form ran.
    pub(super) static POOLED_WALKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The `ef` nearest nodes scored so far, sorted by [`Scored`]'s order, each with [`EXPANDED`]
/// set in its id once expanded; `cursor` is at or before the nearest unexpanded one. Node ids
/// must be below 2^31 ([`MAX_POOLED_NODES`]). Above [`MAX_POOLED_EF`] its insertions move up
/// to `ef` entries each: correct, but slow, which only an unusual `ef_construction` reaches.
pub(super) struct Pool {
    entries: Vec<Scored>,
    ef: usize,
    cursor: usize,
}

impl Pool {
    pub(super) fn new(ef: usize) -> Pool {
        Pool {
            // Capped: an `ef_construction` far above the rows (from a manifest or `--ef-
            // construction`) must not reserve more than a walk can fill; the Vec grows past it.
            entries: Vec::with_capacity(ef.min(MAX_POOLED_EF) + 1),
            ef,
            cursor: 0,
        }
    }

    /// Adds `scored` if it is nearer than the `ef`-th (the heaps' rule, on distance alone),
    /// dropping the farthest.
    pub(super) fn insert(&mut self, scored: Scored) {
        debug_assert!(
            scored.1 & EXPANDED == 0,
            "node {} too large to pool",
            scored.1
        );
        let full = self.entries.len() >= self.ef;
        if full
            && self
                .entries
                .last()
                .is_some_and(|last| scored.0.partial_cmp(&last.0) != Some(Ordering::Less))
        {
            return;
        }
        let at = self.entries.partition_point(|&e| unflagged(e) < scored);
        if full {
            self.entries.pop();
        }
        self.entries.insert(at, scored);
        self.cursor = self.cursor.min(at);
    }

    /// Flags the nearest unexpanded node expanded and returns it.
    pub(super) fn expand_next(&mut self) -> Option<Scored> {
        let at = self.skip_expanded(self.cursor);
        self.cursor = at;
        let entry = self.entries.get_mut(at)?;
        entry.1 |= EXPANDED;
        Some(unflagged(*entry))
    }

    /// The node [`expand_next`](Self::expand_next) would return now.
    pub(super) fn peek_next(&self) -> Option<u32> {
        let at = self.skip_expanded(self.cursor);
        self.entries.get(at).map(|e| e.1)
    }

    fn skip_expanded(&self, mut at: usize) -> usize {
        while self.entries.get(at).is_some_and(|e| e.1 & EXPANDED != 0) {
            at += 1;
        }
        at
    }

    fn into_sorted(self) -> Vec<(f32, u32)> {
        self.into_scored().into_iter().map(|s| (s.0, s.1)).collect()
    }

    /// The pooled nodes, nearest first.
    pub(super) fn into_scored(self) -> Vec<Scored> {
        self.entries.into_iter().map(unflagged).collect()
    }
}

fn unflagged(scored: Scored) -> Scored {
    Scored(scored.0, scored.1 & !EXPANDED)
}

/// Collects the neighbours not visited yet into `fresh` (marking them) and prefetches their
/// vectors: a neighbour's vector is usually not in cache, and loading several at once hides
/// most of the latency.
fn unvisited_with_prefetch<N: Nodes>(
    neighbours: &[u32],
    visited: &mut Visited,
    nodes: &N,
    fresh: &mut Vec<u32>,
) {
    fresh.clear();
    for &next in neighbours {
        if visited.mark(next) {
            nodes.prefetch(next);
            fresh.push(next);
        }
    }
}
