//! Automatic segment merging: which segments to merge (the policy) and the merge itself,
//! committed like a flush.
//!
//! Every flush adds a segment, and a query visits every segment's graph, so without merging the
//! cost of a query grows with the number of flushes. An HNSW graph can take new rows at the cost
//! of inserting them, but cannot be merged with another graph for less than re-inserting one of
//! them; so the policy grows one large segment by absorbing the small ones:
//!
//! - when at least F segments (the merge factor, default 4) sit beside the largest one, all of
//!   them are merged into it: its graph is extended with their rows (when it has no deleted rows;
//!   otherwise rebuilt), so a row's graph is built once at its flush and extended once more;
//! - a merge never writes more than `segment_rows` rows: when the largest segment cannot take the
//!   others, it is left as it is and the rule applies to the rest.
//!
//! So a collection below `segment_rows` rows has at most F + 1 live segments, one of them holding
//! most rows; above it, the segments that could not grow further, each holding at least about
//! half of `segment_rows`, plus those. The price is the rewrite of the large segment's column,
//! ids and graph at each merge (sequential I/O, linear in its size), which is much cheaper than the
//! graph insertions it saves.

use super::{add_live_sums, next_manifest, zero_sums, Collection};
use crate::error::Result;
use crate::faults;
use crate::manifest::SegmentEntry;
use crate::segment::{self, MergedRows};
use crate::wal::Wal;
use std::cmp::Reverse;

/// The segments (indices into `live_rows`) to merge next, if any: every segment below
/// `max_rows` rows, when there are more than `factor` of them and they fit in `max_rows`; when they
/// do not fit, the largest is set aside and the rule applies to the rest.
pub(crate) fn pick(live_rows: &[usize], factor: usize, max_rows: usize) -> Option<Vec<usize>> {
    if factor < 1 {
        return None;
    }
    let mut open: Vec<usize> = (0..live_rows.len())
        .filter(|&i| live_rows[i] < max_rows)
        .collect();
    open.sort_by_key(|&i| (Reverse(live_rows[i]), i));
    while open.len() > factor {
        let total: usize = open.iter().map(|&i| live_rows[i]).sum();
        if total <= max_rows {
            open.sort_unstable();
            return Some(open);
        }
        open.remove(0);
    }
    None
}

impl Collection {
    /// Merges segments while the policy asks for it. Called by the writer right after a flush,
    /// with the log lock held and the log empty, so no write is waiting to be applied.
    pub(super) fn merge_as_needed(&self, wal: &mut Wal) -> Result<()> {
        while wal.is_empty() {
            let picked = {
                let state = self.read();
                let live: Vec<usize> = state
                    .segments
                    .iter()
                    .zip(&state.tombstones)
                    .map(|(s, t)| s.rows - t.count())
                    .collect();
                pick(&live, self.options.merge_factor, self.options.segment_rows)
            };
            let Some(picked) = picked else {
                return Ok(());
            };
            self.merge(wal, &picked)?;
        }
        Ok(())
    }

    /// Writes the live rows of segments `picked` as one new segment and commits it in their
    /// place. Readers keep the segments they mapped until they reopen.
    fn merge(&self, wal: &mut Wal, picked: &[usize]) -> Result<()> {
        let state = self.read();
        let live_rows = |i: usize| {
            (0..state.segments[i].rows as u32)
                .filter(|&r| !state.tombstones[i].get(r as usize))
                .collect::<Vec<u32>>()
        };
        // The largest input goes first so that its graph can seed the merged one, which it can
        // only when all of its rows are kept, in order.
        let mut order = picked.to_vec();
        order.sort_by_key(|&i| Reverse(state.segments[i].rows - state.tombstones[i].count()));
        let seed = (state.tombstones[order[0]].count() == 0).then(|| &*state.segments[order[0]]);
        let parts = order
            .iter()
            .map(|&i| (&*state.segments[i], live_rows(i)))
            .collect();
        let rows = MergedRows::new(parts)?;
        let mut manifest = next_manifest(&state);
        let id = manifest.next_segment;
        let schema = &manifest.schema;
        segment::write_rows(
            &self.dir.join(segment::dir_name(id)),
            manifest.uid,
            schema,
            &rows,
            seed,
        )?;
        let mut sums = zero_sums(schema);
        for &i in picked {
            let written = &state.manifest.segments[i];
            add_live_sums(&mut sums, written, &state.segments[i], &state.tombstones[i])?;
        }
        let entry = SegmentEntry {
            id,
            rows: segment::RowSource::rows(&rows),
            deleted: Vec::new(),
            sums,
        };
        drop(rows);
        let old_dirs: Vec<_> = picked
            .iter()
            .map(|&i| state.segments[i].dir.clone())
            .collect();
        let first = *picked.iter().min().expect("a merge has inputs");
        manifest.next_segment += 1;
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
        for dir in old_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        *state = super::load_state(&self.dir, manifest)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_small_segments_are_merged_into_the_largest() {
        let rows = [262_144, 100, 65_536, 200];
        assert_eq!(
            pick(&rows, 4, 1 << 20),
            None,
            "three beside the largest: not yet"
        );
        assert_eq!(
            pick(&[262_144, 100, 65_536, 200, 300], 4, 1 << 20),
            Some(vec![0, 1, 2, 3, 4])
        );
        assert_eq!(pick(&rows, 3, 1 << 20), Some(vec![0, 1, 2, 3]));
        assert_eq!(
            pick(&rows, 0, 1 << 20),
            None,
            "a factor of 0 disables merging"
        );
        // The largest cannot take the others within the cap: set aside, the rest merge.
        let rows = [900, 100, 100, 100, 100, 100];
        assert_eq!(pick(&rows, 4, 1_000), Some(vec![1, 2, 3, 4, 5]));
        // Full segments are never merged.
        assert_eq!(pick(&[1_000, 1_000, 1, 1, 1, 1], 4, 1_000), None);
    }

    /// Simulates flushes of `flush` rows with the policy applied after each: below the cap the
    /// collection keeps at most F + 1 segments, above it about two per `max_rows` more, and each
    /// row is inserted into a graph at most about twice after its flush (merges extend the largest
    /// input's graph with the others' rows).
    #[test]
    fn segments_stay_few_and_rows_are_inserted_about_once() {
        for (flush, factor, max_rows) in [
            (65_536, 4, 1 << 20),
            (3_000, 4, 100_000),
            (1_000, 2, 50_000),
        ] {
            let mut live: Vec<usize> = Vec::new();
            let mut inserted = 0usize;
            for flushes in 1..=400usize {
                live.push(flush);
                while let Some(picked) = pick(&live, factor, max_rows) {
                    let merged: usize = picked.iter().map(|&i| live[i]).sum();
                    let largest = picked.iter().map(|&i| live[i]).max().unwrap_or(0);
                    inserted += merged - largest;
                    live = live
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !picked.contains(i))
                        .map(|(_, &r)| r)
                        .collect();
                    live.push(merged);
                }
                let rows = flushes * flush;
                assert!(
                    live.len() <= factor + 1 + 2 * rows / max_rows,
                    "{} segments for {rows} rows (flush {flush}, F {factor})",
                    live.len()
                );
                assert!(
                    inserted <= 2 * rows,
                    "{inserted} insertions for {rows} rows"
                );
            }
        }
    }
}
