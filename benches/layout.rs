//! Layout probe (issue 16, "f32 speed"): would interleaving each node's layer-0 list, reciprocal
//! norm and vector in one block, as hnswlib lays out its index, make medvec's f32 walks faster?
//! Answered before changing the file format.
//!
//! ```sh
//! cargo bench --bench layout -- SEGMENT_DIR [EF] [ROUNDS]
//! # e.g. the 1M × 128 store of `cargo bench --bench search`:
//! cargo bench --bench layout -- target/bench-data/medvec-store/collections/bench/seg-* 256 5
//! ```
//!
//! It reads one segment's `v.hnsw` and `v.f32` (FORMAT.md §4.4, §4.7) and the search bench's
//! `queries.npy` and `truth.npy` beside the store, and runs the same beam search (medvec's
//! distance kernel and prefetches, without block checks) on two layouts, alternately, on 2
//! threads: the files' layout (list, vector and norm in three places; read into memory, which
//! measured the same as mapping them), and hnswlib's, an interleaved copy (per node: list, norm, then the vector at a 64-byte boundary).
//! Prints queries per CPU-second per round and the medians' ratio. Both walks visit the same
//! nodes, so recall is equal by construction; it is printed as a check.
//!
//! A third layout asks whether renumbering the rows would help (graph reordering, as in Coleman
//! et al., "Graph Reordering for Cache-Efficient Near Neighbor Search", NeurIPS 2022): the same
//! files' layout with every node renumbered in breadth-first order from the entry point, so a
//! node's neighbours get nearby numbers and their rows and lists share pages. Its walk visits
//! the same nodes too (ties between equal distances aside); the truth is renumbered to match.

#[path = "common/mod.rs"]
mod common;

use common::*;
use medvec_store::distance::{dot, prefetch};
use medvec_store::{breadth_first_rows, RowOrder};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

/// Where a node's list, norm and vector are.
trait Layout: Sync {
    fn list(&self, node: u32) -> &[u32];
    fn vector(&self, node: u32) -> &[f32];
    fn inv_norm(&self, node: u32) -> f32;
    fn prefetch(&self, node: u32);
    fn prefetch_list(&self, node: u32);
}

/// The segment's files as they are: layer-0 slots in the graph, rows then norms in the column.
struct Separate<'a> {
    layer0: &'a [u32],
    vectors: &'a [f32],
    inv_norms: &'a [f32],
    dim: usize,
    width: usize,
}

impl Layout for Separate<'_> {
    fn list(&self, node: u32) -> &[u32] {
        let slot = &self.layer0[node as usize * self.width..][..self.width];
        &slot[1..1 + slot[0] as usize]
    }
    fn vector(&self, node: u32) -> &[f32] {
        &self.vectors[node as usize * self.dim..][..self.dim]
    }
    fn inv_norm(&self, node: u32) -> f32 {
        self.inv_norms[node as usize]
    }
    fn prefetch(&self, node: u32) {
        prefetch(self.vector(node));
        prefetch(&self.inv_norms[node as usize..node as usize + 1]);
    }
    fn prefetch_list(&self, node: u32) {
        prefetch(&self.layer0[node as usize * self.width..][..1]);
    }
}

/// hnswlib's layout: per node `[count, ids × 2M, norm]`, padded so the vector starts on a cache
/// line, then the vector; `stride` words per node.
struct Interleaved {
    words: Vec<u32>,
    stride: usize,
    vector_at: usize,
    dim: usize,
}

impl Interleaved {
    fn new(layout: &Separate) -> Interleaved {
        let vector_at = (layout.width + 1).next_multiple_of(16);
        let stride = (vector_at + layout.dim).next_multiple_of(16);
        let nodes = layout.inv_norms.len();
        let mut words = vec![0u32; nodes * stride];
        for (node, block) in words.chunks_exact_mut(stride).enumerate() {
            let slot = &layout.layer0[node * layout.width..][..layout.width];
            block[..layout.width].copy_from_slice(slot);
            block[vector_at - 1] = layout.inv_norms[node].to_bits();
            let vector = layout.vector(node as u32).iter().map(|x| x.to_bits());
            block[vector_at..vector_at + layout.dim]
                .iter_mut()
                .zip(vector)
                .for_each(|(w, x)| *w = x);
        }
        Interleaved {
            words,
            stride,
            vector_at,
            dim: layout.dim,
        }
    }

    fn block(&self, node: u32) -> &[u32] {
        &self.words[node as usize * self.stride..][..self.stride]
    }
}

impl Layout for Interleaved {
    fn list(&self, node: u32) -> &[u32] {
        let block = self.block(node);
        &block[1..1 + block[0] as usize]
    }
    fn vector(&self, node: u32) -> &[f32] {
        let words = &self.block(node)[self.vector_at..][..self.dim];
        // SAFETY: u32 and f32 have the same size and alignment, and every bit pattern is an f32.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<f32>(), words.len()) }
    }
    fn inv_norm(&self, node: u32) -> f32 {
        f32::from_bits(self.block(node)[self.vector_at - 1])
    }
    fn prefetch(&self, node: u32) {
        prefetch(&self.block(node)[self.vector_at - 16..]);
    }
    fn prefetch_list(&self, node: u32) {
        prefetch(&self.block(node)[..1]);
    }
}

/// The files' layout with the nodes renumbered breadth-first from the entry point on layer 0,
/// owned; `view` lends it as a [`Separate`].
struct Reordered {
    layer0: Vec<u32>,
    column: Vec<f32>,
    dim: usize,
    width: usize,
    upper: Upper,
    /// Each old number's new one.
    order: RowOrder,
}

impl Reordered {
    fn new(layout: &Separate, upper: &Upper) -> Reordered {
        let nodes = layout.inv_norms.len();
        let order = RowOrder::from_old_of(breadth_first_rows(nodes, Some(upper.entry), |node| {
            layout.list(node)
        }));
        let mut layer0 = Vec::with_capacity(layout.layer0.len());
        let mut vectors = Vec::with_capacity(nodes * layout.dim);
        let mut inv_norms = Vec::with_capacity(nodes);
        for old in (0..nodes).map(|new| order.source_row(new) as u32) {
            let slot = &layout.layer0[old as usize * layout.width..][..layout.width];
            let count = slot[0] as usize;
            layer0.push(slot[0]);
            layer0.extend(slot[1..1 + count].iter().map(|&n| order.position_of(n)));
            layer0.extend(std::iter::repeat_n(0, layout.width - 1 - count));
            vectors.extend_from_slice(layout.vector(old));
            inv_norms.push(layout.inv_norms[old as usize]);
        }
        vectors.extend(inv_norms);
        Reordered {
            layer0,
            column: vectors,
            dim: layout.dim,
            width: layout.width,
            upper: upper.renumbered(&order),
            order,
        }
    }

    fn view(&self) -> Separate<'_> {
        let nodes = self.order.rows();
        Separate {
            layer0: &self.layer0,
            vectors: &self.column[..nodes * self.dim],
            inv_norms: &self.column[nodes * self.dim..],
            dim: self.dim,
            width: self.width,
        }
    }
}

/// The graph's entry point and upper layers, walked greedily down to layer 0.
struct Upper {
    nodes: usize,
    entry: u32,
    m: usize,
    /// Per level from 1: sorted node ids and their `[count, ids × M]` lists.
    levels: Vec<(Vec<u32>, Vec<u32>)>,
}

impl Upper {
    /// The same layers with every node number replaced by its position in `order`, ids sorted
    /// again.
    fn renumbered(&self, order: &RowOrder) -> Upper {
        let width = 1 + self.m;
        let levels = self
            .levels
            .iter()
            .map(|(ids, lists)| {
                let mut slots: Vec<(u32, &[u32])> = ids
                    .iter()
                    .zip(lists.chunks_exact(width))
                    .map(|(&id, list)| (order.position_of(id), list))
                    .collect();
                slots.sort_unstable_by_key(|s| s.0);
                let ids = slots.iter().map(|s| s.0).collect();
                let lists = slots
                    .iter()
                    .flat_map(|(_, list)| {
                        let count = list[0] as usize;
                        std::iter::once(list[0])
                            .chain(list[1..1 + count].iter().map(|&n| order.position_of(n)))
                            .chain(std::iter::repeat_n(0, self.m - count))
                    })
                    .collect();
                (ids, lists)
            })
            .collect();
        Upper {
            nodes: self.nodes,
            entry: order.position_of(self.entry),
            m: self.m,
            levels,
        }
    }

    fn descend(&self, distance: impl Fn(u32) -> f32) -> (f32, u32) {
        let mut best = (distance(self.entry), self.entry);
        for (ids, lists) in self.levels.iter().rev() {
            loop {
                let before = best.1;
                let Ok(slot) = ids.binary_search(&best.1) else {
                    break;
                };
                let list = &lists[slot * (1 + self.m)..][..1 + self.m];
                for &next in &list[1..1 + list[0] as usize] {
                    let d = distance(next);
                    if d < best.0 {
                        best = (d, next);
                    }
                }
                if best.1 == before {
                    break;
                }
            }
        }
        best
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, u32);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// medvec's layer-0 beam (graph.rs), cosine on raw vectors and reciprocal norms, top 10.
fn search<L: Layout>(
    layout: &L,
    upper: &Upper,
    query: &[f32],
    ef: usize,
    visited: &mut [u32],
    epoch: u32,
) -> Vec<u32> {
    let distance = |node: u32| 1.0 - dot(query, layout.vector(node)) * layout.inv_norm(node);
    let (d, start) = upper.descend(distance);
    let mut candidates = BinaryHeap::from([Reverse(Scored(d, start))]);
    let mut results = BinaryHeap::from([Scored(d, start)]);
    visited[start as usize] = epoch;
    let mut fresh = Vec::new();
    while let Some(Reverse(Scored(d, node))) = candidates.pop() {
        if results.len() >= ef && d > results.peek().map_or(f32::INFINITY, |w| w.0) {
            break;
        }
        fresh.clear();
        for &next in layout.list(node) {
            if std::mem::replace(&mut visited[next as usize], epoch) != epoch {
                layout.prefetch(next);
                fresh.push(next);
            }
        }
        if let Some(Reverse(Scored(_, upcoming))) = candidates.peek() {
            layout.prefetch_list(*upcoming);
        }
        for &next in &fresh {
            let dn = distance(next);
            if results.len() < ef || dn < results.peek().map_or(f32::INFINITY, |w| w.0) {
                candidates.push(Reverse(Scored(dn, next)));
                results.push(Scored(dn, next));
                if results.len() > ef {
                    results.pop();
                }
            }
        }
    }
    results
        .into_sorted_vec()
        .iter()
        .take(10)
        .map(|s| s.1)
        .collect()
}

/// Searches every query on 2 threads; returns (recall@10, queries per CPU-second).
fn measure<L: Layout>(
    layout: &L,
    upper: &Upper,
    queries: &[Vec<f32>],
    truth: &[i32],
    ef: usize,
) -> (f64, f64) {
    let nodes = upper.nodes;
    let started = cpu_seconds();
    let found: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|half| {
                scope.spawn(move || {
                    let mut visited = vec![0u32; nodes];
                    let mut found = 0;
                    for (i, query) in queries.iter().enumerate().skip(half).step_by(2) {
                        let hits = search(layout, upper, query, ef, &mut visited, i as u32 + 1);
                        let want = &truth[i * 10..i * 10 + 10];
                        found += hits.iter().filter(|&&h| want.contains(&(h as i32))).count();
                    }
                    found
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let cpu = cpu_seconds() - started;
    (
        found as f64 / (10 * queries.len()) as f64,
        queries.len() as f64 / cpu,
    )
}

/// A file's data: the body after the 64-byte header, without the block table (FORMAT.md §3.1).
fn data_words(path: &Path) -> Vec<u32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let flags = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    let body = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    assert_eq!(flags & 1, 1, "{}: expected a blocked body", path.display());
    let block = 1usize << ((flags >> 8) & 0xff);
    let data = body - 4 * body.div_ceil(block + 4);
    bytes[64..64 + data]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn upper_layers(graph: &[u32], nodes: usize, m: usize) -> Upper {
    let mut at = 4 + nodes * (1 + 2 * m);
    let levels = (0..graph[1])
        .map(|_| {
            let count = graph[at] as usize;
            let ids = graph[at + 1..at + 1 + count].to_vec();
            let lists = graph[at + 1 + count..at + 1 + count + count * (1 + m)].to_vec();
            at += 1 + count + count * (1 + m);
            (ids, lists)
        })
        .collect();
    Upper {
        nodes,
        entry: graph[2],
        m,
        levels,
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(segment) = args.first().map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench layout -- SEGMENT_DIR [EF] [ROUNDS]");
        return;
    };
    let ef = args.get(1).map_or(256, |a| a.parse().expect("EF"));
    let rounds = args.get(2).map_or(5, |a| a.parse().expect("ROUNDS"));
    let graph = data_words(&segment.join("v.hnsw"));
    let column: Vec<f32> = data_words(&segment.join("v.f32"))
        .into_iter()
        .map(f32::from_bits)
        .collect();
    let (nodes, m) = (graph[0] as usize, graph[3] as usize);
    let dim = column.len() / nodes - 1;
    let data = workspace().join("target/bench-data");
    let (flat, [count, qdim]) = read_npy_f32(&data.join("queries.npy")).expect("queries.npy");
    assert_eq!(
        qdim, dim,
        "queries.npy does not match the segment's dimension"
    );
    let (truth, [_, k]) = read_npy_i32(&data.join("truth.npy")).expect("truth.npy");
    let truth: Vec<i32> = truth
        .chunks_exact(k)
        .flat_map(|row| row[..10].to_vec())
        .collect();
    let queries: Vec<Vec<f32>> = flat.chunks_exact(dim).map(|q| q.to_vec()).collect();
    let separate = Separate {
        layer0: &graph[4..4 + nodes * (1 + 2 * m)],
        vectors: &column[..nodes * dim],
        inv_norms: &column[nodes * dim..],
        dim,
        width: 1 + 2 * m,
    };
    let interleaved = Interleaved::new(&separate);
    let upper = upper_layers(&graph, nodes, m);
    let reordered = Reordered::new(&separate, &upper);
    let renumbered_truth: Vec<i32> = truth
        .iter()
        .map(|&t| reordered.order.position_of(t as u32) as i32)
        .collect();
    println!(
        "{nodes} nodes × {dim}, M {m}, {count} queries, ef {ef}; interleaved block {} bytes",
        4 * interleaved.stride
    );
    let (mut apart, mut together, mut renumbered) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (r1, q1) = measure(&separate, &upper, &queries, &truth, ef);
        let (r2, q2) = measure(&interleaved, &upper, &queries, &truth, ef);
        let (r3, q3) = measure(
            &reordered.view(),
            &reordered.upper,
            &queries,
            &renumbered_truth,
            ef,
        );
        println!("round {round}: separate files recall {r1:.4} {q1:.0} q/CPU-s; interleaved recall {r2:.4} {q2:.0} q/CPU-s; breadth-first renumbered recall {r3:.4} {q3:.0} q/CPU-s");
        apart.push(q1);
        together.push(q2);
        renumbered.push(q3);
    }
    let (a, t, r) = (median(apart), median(together), median(renumbered));
    println!("median: separate {a:.0} q/CPU-s, interleaved {t:.0} q/CPU-s ({:.2}x), breadth-first renumbered {r:.0} q/CPU-s ({:.2}x)", t / a, r / a);
}
