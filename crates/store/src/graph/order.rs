//! The order a segment's rows are written in: breadth-first over its first graph's layer 0.
//!
//! A search walks the graph from its entry point outwards, so rows numbered in the order of a
//! breadth-first walk put each row's neighbours near it in the column, on pages the walk has
//! just touched. At 1M × 128, ef 256, this gave 1.27× the queries per CPU-second of rows in
//! insertion order, with equal recall (`benches/layout.rs`, benches/README "Layout probe").

use super::{write_words, GraphLists, EMPTY};

/// A permutation of a segment's rows: the row written at position `new` is the source's row
/// `old_of[new]`. Public, like [`breadth_first_rows`], for `benches/layout.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOrder {
    old_of: Vec<u32>,
    new_of: Vec<u32>,
}

impl RowOrder {
    /// The order that writes source row `old_of[new]` at position `new`; `old_of` must be a
    /// permutation of `0..old_of.len()`.
    pub fn from_old_of(old_of: Vec<u32>) -> RowOrder {
        let mut new_of = vec![EMPTY; old_of.len()];
        for (new, &old) in old_of.iter().enumerate() {
            debug_assert_eq!(new_of[old as usize], EMPTY, "row {old} placed twice");
            new_of[old as usize] = new as u32;
        }
        RowOrder { old_of, new_of }
    }

    /// The source row written at position `new`.
    pub fn source_row(&self, new: usize) -> usize {
        self.old_of[new] as usize
    }

    /// The position source row `old` is written at.
    pub fn position_of(&self, old: u32) -> u32 {
        self.new_of[old as usize]
    }

    pub fn rows(&self) -> usize {
        self.old_of.len()
    }

    /// Per-row `values` of the source, in this order.
    pub fn permute<T: Copy>(&self, values: &[T]) -> Vec<T> {
        self.old_of
            .iter()
            .map(|&old| values[old as usize])
            .collect()
    }
}

/// The rows `0..rows` in breadth-first order from `entry` over the lists `list_of` gives, then
/// every row the walk did not reach (rows without a vector, and any part of the graph cut off
/// from the entry), each such row starting a walk of its own, in row order. Public for
/// `benches/layout.rs`, which walks graphs it maps itself.
pub fn breadth_first_rows<'a>(
    rows: usize,
    entry: Option<u32>,
    list_of: impl Fn(u32) -> &'a [u32],
) -> Vec<u32> {
    let mut seen = vec![false; rows];
    let mut order = Vec::with_capacity(rows);
    for root in entry.into_iter().chain(0..rows as u32) {
        if std::mem::replace(&mut seen[root as usize], true) {
            continue;
        }
        let mut head = order.len();
        order.push(root);
        while head < order.len() {
            for &next in list_of(order[head]) {
                if !std::mem::replace(&mut seen[next as usize], true) {
                    order.push(next);
                }
            }
            head += 1;
        }
    }
    order
}

impl GraphLists {
    fn layer0_list(&self, node: u32) -> &[u32] {
        let width = 1 + 2 * self.m;
        let slot = &self.layer0[node as usize * width..][..width];
        &slot[1..1 + slot[0] as usize]
    }

    /// Rows in breadth-first order from the entry point over layer 0 ([`breadth_first_rows`]).
    pub(super) fn breadth_first(&self) -> RowOrder {
        let rows = self.layer0.len() / (1 + 2 * self.m);
        RowOrder::from_old_of(breadth_first_rows(rows, self.entry, |node| {
            self.layer0_list(node)
        }))
    }

    /// Writes the file body of the same graph with every row renumbered as `order` writes it.
    /// Layer 0 is renumbered as it is streamed out, so no second copy of it is ever in memory.
    pub(super) fn write_renumbered(
        mut self,
        out: &mut dyn std::io::Write,
        order: &RowOrder,
    ) -> std::io::Result<()> {
        self.entry = self.entry.map(|entry| order.position_of(entry));
        for (node, ids) in self.upper.iter_mut().flatten() {
            *node = order.position_of(*node);
            ids.iter_mut().for_each(|id| *id = order.position_of(*id));
        }
        self.write_header(out)?;
        let width = 1 + 2 * self.m;
        let layer0 = (0..order.rows()).flat_map(|new| {
            let list = self.layer0_list(order.source_row(new) as u32);
            std::iter::once(list.len() as u32)
                .chain(list.iter().map(|&id| order.position_of(id)))
                .chain(std::iter::repeat_n(EMPTY, width - 1 - list.len()))
        });
        write_words(out, layer0)?;
        self.layer0 = Vec::new();
        self.write_upper(out)
    }
}
