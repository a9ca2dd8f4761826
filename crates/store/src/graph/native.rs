//! medvec's own HNSW builder (Malkov & Yashunin 2018, as hnswlib implements it).
//!
//! Why not only `hnsw_rs`: on 100k × 512-d it spent 2.85× hnswlib's CPU time and its graph needed
//! twice the search ef for recall 0.95 (`benches/README.md`). Its points, neighbour lists and
//! candidates are individually allocated and `Arc`-linked, so reading a neighbour's id costs two
//! dependent cache misses, and an overflowing neighbour list keeps its 2M closest instead of
//! re-running the diversity heuristic. This builder keeps every list in one flat array of
//! atomics, marks visits in a per-thread epoch array, and re-runs the heuristic on overflow.
//!
//! Concurrency: nodes are inserted in parallel (rayon). A node stores its own lists before any
//! back-link makes it reachable (`Builder::insert`); from then on its lists are only rewritten
//! under its mutex (the orphan repair runs on one thread, after all insertions). Readers take no
//! lock and load the words one by one, so a reader may see a list half-updated. That is
//! harmless: a writer stores the ids before it publishes the count, every word with release
//! and every load with acquire (plain moves on x86), so every id a reader counts is one some
//! writer stored, that is a node whose own lists it can already see, and a slightly stale
//! neighbour only makes one search step less direct. Node levels are drawn
//! up front from a hash of the row number, so the top-level entry point is known before any
//! insertion and needs no global lock.

use super::beam::{Pool, MAX_POOLED_NODES};
use super::{BuildRows, GraphLists, GraphSeed, Scored, EMPTY, MAX_LAYERS, VISITED};
use crate::distance::prefetch;
use crate::schema::HnswParams;
use rayon::prelude::*;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Mutex;

/// Builds the graph of the present rows.
pub(super) fn build(rows: &BuildRows, params: HnswParams) -> GraphLists {
    assert_poolable(rows);
    let levels = draw_levels(rows.present, params.m);
    let Some(entry) = top_node(&levels) else {
        return GraphLists::new(rows.present.len(), params.m, None, 0);
    };
    let builder = Builder::new(rows, params, levels, entry);
    let order: Vec<u32> = (0..rows.present.len() as u32)
        .filter(|&row| rows.present[row as usize] && row != entry)
        .collect();
    order.par_iter().for_each(|&node| builder.insert(node));
    builder.reconnect_orphans();
    builder.into_lists()
}

/// The builder's beam flags expanded nodes in their ids' top bit ([`Pool`]), so a graph of
/// 2^31 rows or more would get wrong edges without an error. Segments hold fewer (rows are
/// `u32`s and rewrites stop at 2^31); a flush that large would need terabytes of tail.
fn assert_poolable(rows: &BuildRows) {
    assert!(
        rows.present.len() <= MAX_POOLED_NODES,
        "a graph of {} rows: the builder walks at most 2^31",
        rows.present.len()
    );
}

/// Extends `seed`, whose nodes are the first rows, by inserting the rows after it.
///
/// The seed keeps its edges, levels and entry point. New rows draw their levels as in [`build`]
/// but capped at the seed's top layer, so the entry point stays valid; the cap matters only for
/// the rare row that would have become the new top (the seed is normally the larger part).
pub(super) fn extend(rows: &BuildRows, params: HnswParams, seed: GraphSeed) -> GraphLists {
    assert_poolable(rows);
    let base = seed.layout.nodes;
    let top = seed.layout.upper.len();
    let mut levels = draw_levels(rows.present, params.m);
    for level in levels.iter_mut().skip(base).flatten() {
        *level = (*level).min(top as u8);
    }
    for level in levels.iter_mut().take(base).flatten() {
        *level = 0; // raised below to the seed's own level
    }
    for layer in 1..=top {
        for &node in seed.layout.layer_nodes(seed.words, layer) {
            levels[node as usize] = Some(layer as u8);
        }
    }
    let builder = Builder::new(rows, params, levels, seed.layout.entry);
    for node in 0..base as u32 {
        for layer in 0..=builder.level(node) {
            builder.store_list(
                node,
                layer,
                seed.layout.checked_neighbours(seed.words, layer, node),
            );
        }
    }
    let order: Vec<u32> = (base as u32..rows.present.len() as u32)
        .filter(|&row| rows.present[row as usize])
        .collect();
    order.par_iter().for_each(|&node| builder.insert(node));
    builder.reconnect_orphans();
    builder.into_lists()
}

/// The level of every present row (`None` for absent rows): ⌊−ln(u)·mL⌋ with mL = 1/ln(M), as in
/// the paper, with u drawn from a hash of the row so a rebuild assigns the same levels.
fn draw_levels(present: &[bool], m: usize) -> Vec<Option<u8>> {
    let scale = 1.0 / (m as f64).ln();
    present
        .iter()
        .enumerate()
        .map(|(row, &here)| {
            here.then(|| {
                let u = (splitmix64(row as u64) >> 11) as f64 / (1u64 << 53) as f64;
                let level = (-(1.0 - u).ln() * scale).floor() as usize;
                level.min(MAX_LAYERS - 1) as u8
            })
        })
        .collect()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The first row with the highest level: the graph's entry point.
fn top_node(levels: &[Option<u8>]) -> Option<u32> {
    let top = levels.iter().flatten().max()?;
    levels
        .iter()
        .position(|level| level.as_ref() == Some(top))
        .map(|row| row as u32)
}

struct Builder<'a> {
    rows: &'a BuildRows<'a>,
    m: usize,
    ef_construction: usize,
    levels: Vec<Option<u8>>,
    entry: u32,
    /// Layer-0 slots of `1 + 2m` words per row: `[count, ids...]`.
    layer0: Box<[AtomicU32]>,
    /// Per row, `level` slots of `1 + m` words for layers 1..=level.
    upper: Vec<Box<[AtomicU32]>>,
    locks: Vec<Mutex<()>>,
}

impl<'a> Builder<'a> {
    fn new(
        rows: &'a BuildRows<'a>,
        params: HnswParams,
        levels: Vec<Option<u8>>,
        entry: u32,
    ) -> Builder<'a> {
        let count = levels.len();
        let m = params.m;
        let empty_slots = |words: usize| (0..words).map(|_| AtomicU32::new(0)).collect();
        Builder {
            rows,
            m,
            ef_construction: params.ef_construction.max(m),
            upper: levels
                .iter()
                .map(|level| empty_slots(level.unwrap_or(0) as usize * (1 + m)))
                .collect(),
            layer0: empty_slots(count * (1 + 2 * m)),
            locks: (0..count).map(|_| Mutex::new(())).collect(),
            levels,
            entry,
        }
    }

    /// Every distance the builder takes is between two of its rows.
    fn distance(&self, a: u32, b: u32) -> f32 {
        self.rows.distance(a as usize, b as usize)
    }

    fn level(&self, node: u32) -> usize {
        self.levels[node as usize].unwrap_or(0) as usize
    }

    /// The slot of `node` on `layer` (a count word, then the ids).
    fn slot(&self, node: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let width = 1 + 2 * self.m;
            &self.layer0[node as usize * width..(node as usize + 1) * width]
        } else {
            let width = 1 + self.m;
            &self.upper[node as usize][(layer - 1) * width..layer * width]
        }
    }

    /// Copies `node`'s neighbours on `layer` into `out` without locking (see the module doc).
    fn neighbours_into(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        let slot = self.slot(node, layer);
        // Acquire pairs with the Release in `store_list`: the ids counted are already written,
        // and (acquire on each id) so are the lists of the nodes they name.
        let count = (slot[0].load(Acquire) as usize).min(slot.len() - 1);
        out.extend(
            slot[1..1 + count]
                .iter()
                .map(|id| id.load(Acquire))
                .filter(|&id| id != EMPTY),
        );
    }

    fn store_list(&self, node: u32, layer: usize, ids: &[u32]) {
        let slot = self.slot(node, layer);
        for (word, &id) in slot[1..].iter().zip(ids) {
            word.store(id, Release);
        }
        slot[0].store(ids.len() as u32, Release);
    }

    /// Inserts `node`: greedy descent to its level, then on each of its layers a beam search for
    /// `ef_construction` candidates and the heuristic's pick of M of them as its neighbours; then
    /// back-links from each of those.
    ///
    /// Why the back-links wait until every layer's list is stored: they are what makes `node`
    /// reachable, and a node reachable on layer 1 before its layer-0 list exists is a trap.
    /// Another thread's insertion that descends to it starts its beam on the layer below there,
    /// finds no neighbours, and links only to `node` and to the rows trapped the same way. Such rows
    /// formed small islands of mixed clusters that searches for them missed at any ef (2 of 40
    /// two-thread builds of 5,000 clustered rows, about 5 rows each; none on one thread). On
    /// one thread the order makes no difference: a layer's back-links change only that layer.
    fn insert(&self, node: u32) {
        let level = self.level(node);
        let top = self.level(self.entry);
        let mut nearest = Scored(self.distance(node, self.entry), self.entry);
        let mut scratch = Vec::with_capacity(2 * self.m);
        for layer in (level + 1..=top).rev() {
            nearest = self.greedy(node, layer, nearest, &mut scratch);
        }
        debug_assert!(
            level <= top,
            "levels are drawn (or capped) at the entry's or below"
        );
        let mut chosen_by_layer = Vec::with_capacity(level + 1);
        for layer in (0..=level).rev() {
            let candidates = self.beam(node, layer, nearest, &mut scratch);
            let chosen = self.select(&candidates, self.m);
            nearest = chosen.first().copied().unwrap_or(nearest);
            let ids: Vec<u32> = chosen.iter().map(|s| s.1).collect();
            // No lock: no other thread can reach `node` before its back-links exist.
            self.store_list(node, layer, &ids);
            chosen_by_layer.push((layer, chosen));
        }
        for (layer, chosen) in chosen_by_layer {
            self.link_back(node, layer, &chosen);
        }
    }

    fn greedy(&self, query: u32, layer: usize, start: Scored, scratch: &mut Vec<u32>) -> Scored {
        let mut best = start;
        loop {
            let before = best.1;
            self.neighbours_into(best.1, layer, scratch);
            for &next in scratch.iter() {
                let d = self.distance(query, next);
                if d < best.0 {
                    best = Scored(d, next);
                }
            }
            if best.1 == before {
                return best;
            }
        }
    }

    /// The `ef_construction` nearest nodes found on `layer` from `start`, nearest first. It
    /// keeps them in the search walk's sorted [`Pool`], which expands the same nodes as
    /// hnswlib's two heaps (candidates and results), except at exact ties with the farthest,
    /// without their pops.
    fn beam(&self, query: u32, layer: usize, start: Scored, scratch: &mut Vec<u32>) -> Vec<Scored> {
        VISITED.with(|cell| {
            let mut visited = cell.borrow_mut();
            visited.reset(self.levels.len());
            visited.mark(start.1);
            let mut pool = Pool::new(self.ef_construction);
            pool.insert(start);
            while let Some(current) = pool.expand_next() {
                self.neighbours_into(current.1, layer, scratch);
                scratch.retain(|&next| visited.mark(next));
                for &next in scratch.iter() {
                    self.rows.prefetch(next as usize);
                }
                if let Some(upcoming) = pool.peek_next() {
                    // Most likely the next node expanded: load its list while these are scored.
                    // Its count word was the builder's costliest miss (perf); a 200k × 128 build
                    // took 4–7% less CPU over 3 alternating runs.
                    prefetch(self.slot(upcoming, layer));
                }
                for &next in scratch.iter() {
                    pool.insert(Scored(self.distance(query, next), next));
                }
            }
            pool.into_scored()
        })
    }

    /// hnswlib's neighbour heuristic: walking the candidates nearest first, keep one only if it is
    /// closer to the query than to every candidate already kept, up to `limit`. This keeps edges
    /// pointing in different directions, which is what makes the graph navigable.
    fn select(&self, candidates: &[Scored], limit: usize) -> Vec<Scored> {
        let mut kept: Vec<Scored> = Vec::with_capacity(limit);
        for &candidate in candidates {
            if kept.len() >= limit {
                break;
            }
            if kept
                .iter()
                .all(|k| self.distance(candidate.1, k.1) >= candidate.0)
            {
                kept.push(candidate);
            }
        }
        kept
    }

    /// Links each of `chosen` back to `node` on `layer`, re-running the heuristic on a neighbour
    /// whose list is full.
    fn link_back(&self, node: u32, layer: usize, chosen: &[Scored]) {
        let capacity = if layer == 0 { 2 * self.m } else { self.m };
        let mut current = Vec::with_capacity(capacity);
        for &Scored(distance, neighbour) in chosen {
            let _guard = self.locks[neighbour as usize]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.neighbours_into(neighbour, layer, &mut current);
            if current.contains(&node) {
                continue;
            }
            if current.len() < capacity {
                current.push(node);
                self.store_list(neighbour, layer, &current);
            } else {
                self.shrink(neighbour, layer, &current, Scored(distance, node), capacity);
            }
        }
    }

    /// Rewrites the full list of `owner` plus `newcomer` as the heuristic's pick of `capacity`
    /// (`current` holds at least `capacity` ids, so one more always needs the pick).
    fn shrink(&self, owner: u32, layer: usize, current: &[u32], newcomer: Scored, capacity: usize) {
        let mut candidates: Vec<Scored> = current
            .iter()
            .map(|&id| Scored(self.distance(owner, id), id))
            .collect();
        candidates.push(newcomer);
        candidates.sort();
        let kept: Vec<u32> = self
            .select(&candidates, capacity)
            .iter()
            .map(|s| s.1)
            .collect();
        self.store_list(owner, layer, &kept);
    }

    /// Gives every node that layer 0 cannot reach from the entry point an in-edge again.
    ///
    /// Pruning a full list (`shrink`) can drop a node's last in-edge, and such a node would never
    /// be returned by any graph search (2 of 2,700 nodes in this module's test before this pass
    /// existed, and over a third of them when a thousand rows hold the same vector; hnswlib does
    /// not repair them either). Each orphan is searched for on layer 0 from the entry point, which
    /// finds only reachable nodes, and is linked from one of them (`link_from_host`).
    ///
    /// Every link keeps all that was reachable reachable, so one pass in row order suffices: the
    /// reachable set only grows, and is extended from each newly linked orphan. (An earlier
    /// version replaced an edge whose target had "another in-edge", but that in-edge could come
    /// from an unreachable node, so repairs could undo each other and about 2% of builds with many
    /// identical vectors kept hundreds of orphans.)
    fn reconnect_orphans(&self) {
        let mut reached = vec![false; self.levels.len()];
        self.reach_from(self.entry, &mut reached);
        let mut scratch = Vec::new();
        for orphan in 0..self.levels.len() as u32 {
            if self.levels[orphan as usize].is_none() || reached[orphan as usize] {
                continue;
            }
            let start = Scored(self.distance(orphan, self.entry), self.entry);
            let hosts = self.beam(orphan, 0, start, &mut scratch);
            self.link_from_host(&hosts, orphan);
            self.reach_from(orphan, &mut reached);
        }
    }

    /// Links `orphan` from the nearest of `hosts` (all reachable) with room in its list. If all
    /// are full, the nearest host's edge to its farthest neighbour is handed to `orphan`, and
    /// `orphan` links on to that neighbour, so whatever the edge reached is still reached, one
    /// hop further.
    fn link_from_host(&self, hosts: &[Scored], orphan: u32) {
        let mut list = Vec::with_capacity(2 * self.m);
        for &Scored(_, host) in hosts {
            self.neighbours_into(host, 0, &mut list);
            if list.len() < 2 * self.m {
                list.push(orphan);
                self.store_list(host, 0, &list);
                return;
            }
        }
        let Some(&Scored(_, host)) = hosts.first() else {
            return;
        };
        self.neighbours_into(host, 0, &mut list);
        let Some(slot) = self.farthest(host, &list) else {
            return;
        };
        let displaced = std::mem::replace(&mut list[slot], orphan);
        self.store_list(host, 0, &list);
        self.link_onward(orphan, displaced);
    }

    /// Adds the edge `orphan` → `target`, replacing `orphan`'s farthest neighbour if its list is
    /// full. Nothing is lost by the replacement: `orphan` was unreachable, so its edges reached
    /// nothing that a search could.
    fn link_onward(&self, orphan: u32, target: u32) {
        let mut list = Vec::with_capacity(2 * self.m);
        self.neighbours_into(orphan, 0, &mut list);
        if list.contains(&target) {
            return;
        }
        if list.len() < 2 * self.m {
            list.push(target);
        } else if let Some(slot) = self.farthest(orphan, &list) {
            list[slot] = target;
        }
        self.store_list(orphan, 0, &list);
    }

    /// The position in `list` of the neighbour farthest from `owner`.
    fn farthest(&self, owner: u32, list: &[u32]) -> Option<usize> {
        (0..list.len()).max_by(|&a, &b| {
            self.distance(owner, list[a])
                .total_cmp(&self.distance(owner, list[b]))
        })
    }

    /// Marks every node reachable on layer 0 from `start` (which is marked too).
    fn reach_from(&self, start: u32, reached: &mut [bool]) {
        reached[start as usize] = true;
        let mut stack = vec![start];
        let mut list = Vec::new();
        while let Some(node) = stack.pop() {
            self.neighbours_into(node, 0, &mut list);
            for &next in &list {
                if !std::mem::replace(&mut reached[next as usize], true) {
                    stack.push(next);
                }
            }
        }
    }

    fn into_lists(self) -> GraphLists {
        let rows = self.levels.len();
        let top = self.level(self.entry);
        let mut lists = GraphLists::new(rows, self.m, Some(self.entry), top);
        let mut ids = Vec::new();
        for node in 0..rows as u32 {
            if self.levels[node as usize].is_none() {
                continue;
            }
            for layer in 0..=self.level(node) {
                self.neighbours_into(node, layer, &mut ids);
                lists.set(layer, node, ids.clone());
            }
        }
        lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::l2_squared;
    use crate::graph::tests::{words_of, ClosureNodes};
    use crate::graph::GraphLayout;
    use std::path::Path;

    fn pseudo_random(n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim)
            .map(|i| (splitmix64(i as u64) >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect()
    }

    #[test]
    fn levels_follow_the_papers_distribution_and_repeat() {
        let present = vec![true; 100_000];
        let levels = draw_levels(&present, 16);
        assert_eq!(levels, draw_levels(&present, 16));
        let above0 = levels.iter().filter(|l| l.unwrap() >= 1).count() as f64;
        let above1 = levels.iter().filter(|l| l.unwrap() >= 2).count() as f64;
        // P(level >= l) = M^-l.
        assert!((above0 / 100_000.0 - 1.0 / 16.0).abs() < 0.005, "{above0}");
        assert!((above1 / 100_000.0 - 1.0 / 256.0).abs() < 0.001, "{above1}");
        assert_eq!(draw_levels(&[true, false], 16)[1], None);
    }

    #[test]
    fn the_heuristic_prefers_a_second_direction_over_a_closer_twin() {
        // Query at 0 on a line; candidates at 1.0 and 1.1 (same side) and -1.2 (other side).
        let data = [0.0f32, 1.0, 1.1, -1.2];
        let params = HnswParams::default();
        let levels = vec![Some(0); 4];
        let rows = BuildRows {
            data: &data,
            dim: 1,
            present: &[true; 4],
            squared_l2: true,
            inv_norms: None,
        };
        let builder = Builder::new(&rows, params, levels, 0);
        let candidates = [Scored(1.0, 1), Scored(1.21, 2), Scored(1.44, 3)];
        let kept: Vec<u32> = builder.select(&candidates, 2).iter().map(|s| s.1).collect();
        assert_eq!(kept, vec![1, 3]);
    }

    #[test]
    fn graphs_are_well_formed_and_connected() {
        let (rows, dim) = (3_000, 8);
        let data = pseudo_random(rows, dim);
        let present: Vec<bool> = (0..rows).map(|r| r % 10 != 3).collect();
        assert_connected(&data, dim, &present);
    }

    /// Copies of one vector (the same photo ingested twice, blank images) are all equally close to
    /// each other, which is where the heuristic prunes hardest.
    #[test]
    fn many_identical_vectors_stay_reachable() {
        let (rows, dim) = (3_000, 8);
        let mut data = pseudo_random(rows, dim);
        let copy = data[..dim].to_vec();
        for row in data.chunks_exact_mut(dim).skip(1_000).take(1_000) {
            row.copy_from_slice(&copy);
        }
        assert_connected(&data, dim, &vec![true; rows]);
    }

    /// Recall@10 of graph searches (ef 48) for 100 of the rows, against brute force.
    fn recall(data: &[f32], dim: usize, body: &[u8]) -> f64 {
        let rows = data.len() / dim;
        let words = words_of(body);
        let layout = GraphLayout::parse(
            Path::new("g"),
            &words,
            rows,
            crate::graph::ListCheck::AtParse,
        )
        .unwrap();
        let vector = |r: usize| &data[r * dim..(r + 1) * dim];
        let mut found = 0;
        for query in (0..rows).step_by(rows / 100) {
            let q = vector(query);
            let mut exact: Vec<(f32, u32)> = (0..rows as u32)
                .map(|r| (l2_squared(q, vector(r as usize)), r))
                .collect();
            exact.sort_by(|a, b| a.0.total_cmp(&b.0));
            let truth: Vec<u32> = exact[..10].iter().map(|e| e.1).collect();
            let nodes = ClosureNodes(|n: u32| l2_squared(q, vector(n as usize)), |_| true);
            let hits = layout.search(&words, 48, &nodes);
            found += hits[..10].iter().filter(|h| truth.contains(&h.1)).count();
        }
        found as f64 / (10 * rows.div_ceil(rows / 100)) as f64
    }

    /// A merge extends the larger input's graph: the seed's levels and entry point are kept, the
    /// new rows become reachable, and search is as good as on a graph built from scratch.
    #[test]
    fn an_extended_graph_keeps_its_seed_and_searches_like_a_fresh_one() {
        let (rows, dim, base) = (4_000, 8, 2_500);
        let data = pseudo_random(rows, dim);
        let present = vec![true; rows];
        let params = HnswParams {
            m: 8,
            ef_construction: 64,
            ..HnswParams::default()
        };
        let seed_rows = BuildRows {
            data: &data[..base * dim],
            dim,
            present: &present[..base],
            squared_l2: true,
            inv_norms: None,
        };
        let seed_body = build(&seed_rows, params).encode();
        let seed_words = words_of(&seed_body);
        let seed_layout = GraphLayout::parse(
            Path::new("s"),
            &seed_words,
            base,
            crate::graph::ListCheck::AtParse,
        )
        .unwrap();
        let seed = GraphSeed {
            words: &seed_words,
            layout: &seed_layout,
        };
        assert!(seed.fits(params));
        let all_rows = BuildRows {
            data: &data,
            dim,
            present: &present,
            squared_l2: true,
            inv_norms: None,
        };
        let extended = extend(&all_rows, params, seed).encode();
        let fresh = build(&all_rows, params).encode();
        let words = words_of(&extended);
        let layout = GraphLayout::parse(
            Path::new("e"),
            &words,
            rows,
            crate::graph::ListCheck::AtParse,
        )
        .unwrap();
        assert_eq!(
            layout.entry, seed_layout.entry,
            "the seed's entry point stays"
        );
        assert_eq!(layout.upper.len(), seed_layout.upper.len());
        for level in 1..=seed_layout.upper.len() {
            let on_layer = layout.layer_nodes(&words, level);
            for node in seed_layout.layer_nodes(&seed_words, level) {
                assert!(
                    on_layer.binary_search(node).is_ok(),
                    "{node} left layer {level}"
                );
            }
        }
        let (got, want) = (recall(&data, dim, &extended), recall(&data, dim, &fresh));
        assert!(
            got >= 0.95 && got >= want - 0.03,
            "recall {got} vs fresh {want}"
        );
        assert_connected_body(&extended, rows, &present, params);
    }

    fn assert_connected(data: &[f32], dim: usize, present: &[bool]) {
        let rows = present.len();
        let params = HnswParams {
            m: 6,
            ef_construction: 40,
            ..HnswParams::default()
        };
        let build_rows = BuildRows {
            data,
            dim,
            present,
            squared_l2: true,
            inv_norms: None,
        };
        let body = build(&build_rows, params).encode();
        assert_connected_body(&body, rows, present, params);
    }

    fn assert_connected_body(body: &[u8], rows: usize, present: &[bool], params: HnswParams) {
        let words = words_of(body);
        let layout = GraphLayout::parse(
            Path::new("g"),
            &words,
            rows,
            crate::graph::ListCheck::AtParse,
        )
        .unwrap();
        assert!(
            !layout.upper.is_empty(),
            "3,000 nodes at M = 6 have upper layers"
        );
        let mut reached = vec![false; rows];
        let mut stack = vec![layout.entry];
        reached[layout.entry as usize] = true;
        while let Some(node) = stack.pop() {
            let list = layout.checked_neighbours(&words, 0, node);
            assert!(list.len() <= 2 * params.m);
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                list.len(),
                "duplicate neighbour of {node}: {list:?}"
            );
            for &next in list {
                assert_ne!(next, node, "self-loop at {node}");
                assert!(present[next as usize], "edge to absent row {next}");
                if !reached[next as usize] {
                    reached[next as usize] = true;
                    stack.push(next);
                }
            }
        }
        let lost: Vec<usize> = (0..rows).filter(|&r| present[r] && !reached[r]).collect();
        assert!(
            lost.is_empty(),
            "{} unreachable: {:?}",
            lost.len(),
            &lost[..lost.len().min(20)]
        );
        assert!((0..rows).all(|r| present[r] || !reached[r]));
    }
}
