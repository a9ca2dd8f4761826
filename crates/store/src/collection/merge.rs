//! Automatic segment merging: which segments to merge (the policy) and the merge itself,
//! committed like a flush.
//!
//! Every flush adds a segment, and a query visits every segment's graph, so without merging the
//! cost of a query grows with the number of flushes. Merging costs twice: the merged segment's
//! files are written again (its column, ids, payload and graph: sequential I/O, linear in its
//! rows), and the rows of every input but the largest are inserted into a copy of the largest
//! input's graph (an HNSW graph cannot be merged with another for less than re-inserting one of
//! them). The policy is size-tiered, so that both stay logarithmic in the collection's size:
//!
//! - a segment's **tier** is 0 below [`TIER_FLOOR`] rows (segments without a graph, cheap to
//!   copy), then 1 + ⌊log_R(live rows / `TIER_FLOOR`)⌋ with the ratio R = max(F, 2), F being the
//!   merge factor (default 4): tier 1 is 1,024–4,095 rows, tier 2 4,096–16,383, and so on;
//! - when a tier holds more than F segments, they are merged, so only segments within a size
//!   ratio of about R of each other are ever merged. F + 1 segments of tier t hold more than R
//!   times the smallest size of tier t, so the merged one lands in a higher tier (unless deletes
//!   shrank its inputs): **a row is rewritten at most once per tier** above 0, about
//!   log_R(N / 1,024) times for N rows (in tier 0, below 1,024 rows and without a graph, a row
//!   may be copied a few more times when flushes are tiny), where growing one large segment rewrote it about N / (F · flush) times
//!   (60 times on the way to 1M × 512-d rows with the 8 MiB flushes of that time);
//! - the smallest tiers are merged first, and the largest input's graph is extended with the
//!   others' rows (when it has no deleted rows; otherwise rebuilt), so a merge of F + 1 similar
//!   segments inserts F / (F + 1) of its rows;
//! - a merge never writes more than `segment_rows` rows: segments that large are never merged,
//!   and a tier whose segments do not all fit merges its smallest ones that do (at least two).
//!
//! The one-off rewrites, the graph build that ends a bulk load and `compact`, may write larger
//! segments (up to `CollectionOptions::rewrite_bytes`, off by default): they run once, not after
//! every flush, and fewer graphs make every later query cheaper.
//!
//! So a collection keeps at most F segments per tier below `segment_rows`, O(F · log N) in all
//! (the digits of the flush count in base F + 1, when every flush is the same size).

use super::{add_live_sums, next_manifest, zero_sums, Collection, State};
use crate::error::Result;
use crate::faults;
use crate::manifest::Manifest;
use crate::manifest::SegmentEntry;
use crate::segment::{self, Graphs, MergedRows, MIN_GRAPH_ROWS};
use crate::wal::Wal;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Segments below this many live rows share tier 0. They have no graph (they are below
/// [`MIN_GRAPH_ROWS`]), so merging them copies a few thousand rows at most and inserts none into
/// a graph, and a tiny flush (the last rows at `close`) joins its peers instead of starting a
/// tier of its own.
const TIER_FLOOR: usize = MIN_GRAPH_ROWS;

/// The tier of a segment of `rows` live rows with ratio `ratio` between tiers (see the module
/// documentation).
fn tier(rows: usize, ratio: usize) -> u32 {
    if rows < TIER_FLOOR {
        0
    } else {
        1 + (rows / TIER_FLOOR).ilog(ratio)
    }
}

/// The segments (indices into `live_rows`) to merge next, if any: the segments of the lowest
/// tier holding more than `factor` segments below `max_rows` rows, or its smallest ones whose
/// rows fit in `max_rows` (at least two). A factor of 0 turns merging off.
pub(crate) fn pick(live_rows: &[usize], factor: usize, max_rows: usize) -> Option<Vec<usize>> {
    if factor < 1 {
        return None;
    }
    let ratio = factor.max(2);
    let mut tiers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, &rows) in live_rows.iter().enumerate() {
        if rows < max_rows {
            tiers.entry(tier(rows, ratio)).or_default().push(i);
        }
    }
    for mut members in tiers.into_values().filter(|m| m.len() > factor) {
        members.sort_by_key(|&i| (live_rows[i], i));
        let mut total = 0;
        let fitting = members
            .iter()
            .take_while(|&&i| {
                total += live_rows[i];
                total <= max_rows
            })
            .count();
        if fitting >= 2 {
            members.truncate(fitting);
            members.sort_unstable();
            return Some(members);
        }
    }
    None
}

/// The segments of each compacted segment: runs of consecutive segments whose live rows add up
/// to at most `max_rows` (a segment holding more forms a run of its own), skipping segments with
/// no live rows.
pub(super) fn compaction_groups(live: &[usize], max_rows: usize) -> Vec<Vec<usize>> {
    let nonempty = live
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, rows)| rows > 0);
    runs_up_to(nonempty, max_rows)
}

/// Groups `(segment, live rows)` in order into runs of at most `max_rows` live rows (a segment
/// holding more forms a run of its own).
fn runs_up_to(segments: impl Iterator<Item = (usize, usize)>, max_rows: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut rows_in_last = 0;
    for (i, rows) in segments {
        match groups.last_mut() {
            Some(last) if rows_in_last + rows <= max_rows => {
                last.push(i);
                rows_in_last += rows;
            }
            _ => {
                groups.push(vec![i]);
                rows_in_last = rows;
            }
        }
    }
    groups
}

/// The segments whose graphs were deferred, in the first run of at most `max_rows` live rows:
/// the next segment to write with its graphs. Empty segments are included, so that every
/// deferred segment leaves the list.
fn first_deferred_run(state: &State, max_rows: usize) -> Option<Vec<usize>> {
    let live = state.live_rows_per_segment();
    let deferred = (state.manifest.segments.iter().enumerate())
        .filter(|(_, entry)| entry.graphs_deferred)
        .map(|(i, _)| (i, live[i]));
    runs_up_to(deferred, max_rows).into_iter().next()
}

impl Collection {
    /// Merges segments while the policy asks for it. Called by the writer right after a flush,
    /// with the log lock held and the log empty, so no write is waiting to be applied.
    ///
    /// When graphs are built, the segments a bulk load wrote without graphs are first rewritten
    /// with them, in runs of up to `rewrite_bytes`: one graph over a whole load instead of one
    /// per flush and merge. While graphs are deferred, only deferred segments are merged (a
    /// cheap copy of their rows), so that a segment with a graph never loses it.
    pub(super) fn merge_as_needed(&self, wal: &mut Wal, graphs: Graphs) -> Result<()> {
        if matches!(graphs, Graphs::Build(_)) {
            self.build_deferred_graphs(wal)?;
        }
        while wal.is_empty() {
            let picked = {
                let state = self.read();
                let live = state.live_rows_per_segment();
                let deferring = matches!(graphs, Graphs::Defer);
                let eligible: Vec<usize> = (0..live.len())
                    .filter(|&i| !deferring || state.manifest.segments[i].graphs_deferred)
                    .collect();
                let rows: Vec<usize> = eligible.iter().map(|&i| live[i]).collect();
                pick(&rows, self.options.merge_factor, self.options.segment_rows)
                    .map(|chosen| chosen.into_iter().map(|c| eligible[c]).collect::<Vec<_>>())
            };
            let Some(picked) = picked else {
                return Ok(());
            };
            self.merge(wal, &picked, graphs)?;
        }
        Ok(())
    }

    /// Writes every segment whose graphs were deferred again, with its graphs, merged in runs of
    /// up to `rewrite_bytes` (one segment at a time when merging is off). Each run is committed
    /// like any merge.
    fn build_deferred_graphs(&self, wal: &mut Wal) -> Result<()> {
        let max_rows = match self.options.merge_factor {
            0 => 0,
            _ => self.options.rewrite_rows(&self.read().manifest.schema),
        };
        while wal.is_empty() {
            let run = first_deferred_run(&self.read(), max_rows);
            let Some(run) = run else {
                return Ok(());
            };
            self.merge(wal, &run, Graphs::Build(None))?;
        }
        Ok(())
    }

    /// Writes the live rows of segments `picked` as one new segment and commits it in their
    /// place. Readers keep the segments they mapped until they reopen.
    fn merge(&self, wal: &mut Wal, picked: &[usize], graphs: Graphs) -> Result<()> {
        let state = self.read();
        let mut manifest = next_manifest(&state);
        let entry = write_merged(&self.dir, &mut manifest, &state, picked, graphs)?;
        let old_dirs: Vec<_> = picked
            .iter()
            .map(|&i| state.segments[i].dir.clone())
            .collect();
        let first = *picked.iter().min().expect("a merge has inputs");
        let mut kept = Vec::with_capacity(manifest.segments.len());
        for (index, old) in std::mem::take(&mut manifest.segments)
            .into_iter()
            .enumerate()
        {
            if index == first {
                kept.push(entry.clone());
            }
            if !picked.contains(&index) {
                kept.push(old);
            }
        }
        manifest.segments = kept;
        drop(state);
        let mut state = self.write();
        self.commit_with_new_wal(&mut manifest, wal, &mut state)?;
        faults::point("merge-after-manifest");
        self.merged_rows
            .fetch_add(entry.rows as u64, Ordering::Relaxed);
        for dir in old_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        *state = super::load_state(&self.dir, manifest)?;
        Ok(())
    }
}

/// Writes the live rows of segments `picked` of `state` as the next segment of `manifest`, with
/// or without graphs as `graphs` says (the seed, if any, is chosen here), and returns its entry
/// (not yet in the manifest's list, not committed). Rows are read in place from the mapped
/// inputs, so memory does not grow with the rows copied.
pub(super) fn write_merged(
    dir: &Path,
    manifest: &mut Manifest,
    state: &State,
    picked: &[usize],
    graphs: Graphs,
) -> Result<SegmentEntry> {
    let live_row_numbers = |i: usize| {
        (0..state.segments[i].rows as u32)
            .filter(|&r| !state.tombstones[i].get(r as usize))
            .collect::<Vec<u32>>()
    };
    // The largest input goes first so that its graph can seed the merged one, which it can
    // only when all of its rows are kept, in order.
    let live = state.live_rows_per_segment();
    let mut order = picked.to_vec();
    order.sort_by_key(|&i| Reverse(live[i]));
    let seed = (state.tombstones[order[0]].count() == 0).then(|| &*state.segments[order[0]]);
    let graphs = graphs.seeded(seed);
    let parts = order
        .iter()
        .map(|&i| (&*state.segments[i], live_row_numbers(i)))
        .collect();
    let rows = MergedRows::new(parts)?;
    let id = manifest.next_segment;
    let schema = &manifest.schema;
    segment::write_rows(
        &dir.join(segment::dir_name(id)),
        manifest.uid,
        schema,
        &rows,
        graphs,
    )?;
    let mut sums = zero_sums(schema);
    for &i in picked {
        let written = &state.manifest.segments[i];
        add_live_sums(&mut sums, written, &state.segments[i], &state.tombstones[i])?;
    }
    manifest.next_segment += 1;
    Ok(SegmentEntry {
        id,
        rows: segment::RowSource::rows(&rows),
        deleted: Vec::new(),
        sums,
        graphs_deferred: matches!(graphs, Graphs::Defer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_runs_fill_up_to_the_limit_and_skip_empty_segments() {
        assert_eq!(
            compaction_groups(&[600, 0, 400, 300, 1_000, 1_200, 0], 1_000),
            [vec![0, 2], vec![3], vec![4], vec![5]]
        );
        assert!(compaction_groups(&[0, 0], 10).is_empty());
    }

    #[test]
    fn only_segments_of_one_tier_are_merged() {
        // Tiers (F = 4): 0 below 1,024 rows, 1 up to 4,095, 2 up to 16,383, ...
        assert_eq!(
            [0, 1_023, 1_024, 4_095, 4_096, 16_384].map(|r| tier(r, 4)),
            [0, 0, 1, 1, 2, 3]
        );
        let rows = [262_144, 3_000, 65_536, 3_000, 3_000, 3_000];
        assert_eq!(pick(&rows, 4, 1 << 20), None, "four in tier 1: not yet");
        let rows = [262_144, 3_000, 65_536, 3_000, 3_000, 3_000, 2_000];
        assert_eq!(
            pick(&rows, 4, 1 << 20),
            Some(vec![1, 3, 4, 5, 6]),
            "five in tier 1: they merge among themselves, not into the large ones"
        );
        assert_eq!(pick(&rows, 3, 1 << 20), Some(vec![1, 3, 4, 5, 6]));
        assert_eq!(
            pick(&rows, 0, 1 << 20),
            None,
            "a factor of 0 disables merging"
        );
        // The lowest full tier goes first: tiny segments (the rows left at a close) included.
        let rows = [5_000, 5_000, 5_000, 5_000, 5_000, 10, 900, 700, 700, 30];
        assert_eq!(pick(&rows, 4, 1 << 20), Some(vec![5, 6, 7, 8, 9]));
        // Within the cap: the smallest of the tier that fit together.
        let rows = [400, 300, 350, 380, 390];
        assert_eq!(pick(&rows, 4, 1_000), Some(vec![1, 2]));
        // Full segments are never merged.
        assert_eq!(pick(&[1_000, 1_000, 1_000, 1_000, 1_000], 4, 1_000), None);
    }

    /// Simulates `flushes` flushes of `flush` rows with the policy applied after each; returns
    /// the most segments seen and the rows the merges wrote.
    fn simulate(flush: usize, flushes: usize, factor: usize, max_rows: usize) -> (usize, usize) {
        let (mut live, mut most, mut written) = (Vec::<usize>::new(), 0, 0);
        for _ in 0..flushes {
            live.push(flush);
            while let Some(picked) = pick(&live, factor, max_rows) {
                let merged: usize = picked.iter().map(|&i| live[i]).sum();
                written += merged;
                live = (0..live.len())
                    .filter(|i| !picked.contains(i))
                    .map(|i| live[i])
                    .chain([merged])
                    .collect();
            }
            most = most.max(live.len());
        }
        (most, written)
    }

    /// Below the cap a collection keeps at most F segments per tier, and each row is rewritten
    /// at most once per tier: both logarithmic in the number of rows.
    #[test]
    fn segments_and_rewrites_stay_logarithmic() {
        for (flush, factor, max_rows) in [
            (4_000, 4, 1 << 20),
            (13_000, 4, 1 << 20),
            (700, 4, 1 << 20),
            (1_100, 2, 1 << 20),
            (3_000, 4, 100_000),
        ] {
            for flushes in [10, 100, 250, 1_000] {
                let rows = flush * flushes;
                let (most, written) = simulate(flush, flushes, factor, max_rows);
                let ratio = factor.max(2);
                let tiers = 1 + tier(rows.min(max_rows), ratio) as usize;
                let full = rows / (max_rows / 2);
                assert!(
                    most <= factor * tiers + full,
                    "{most} segments for {rows} rows (flush {flush}, F {factor})"
                );
                assert!(
                    written <= rows * tiers,
                    "{written} rows rewritten for {rows} rows in {tiers} tiers (flush {flush}, F {factor})"
                );
            }
        }
        // The case of issue 16: 1M rows of 512-d flushed every 4,096 rows. Growing one large
        // segment rewrote about 30M rows; the tiers (1, 3, 4 and 5 here) rewrite each row at
        // most four times, and hold at most four segments each.
        let (most, written) = simulate(4_096, 245, 4, 1 << 20);
        assert!(written <= 4 * 4_096 * 245, "{written}");
        assert!(most <= 4 * 4, "{most}");
    }
}
