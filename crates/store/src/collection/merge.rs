//! Automatic segment merging: which segments to merge (a size-tiered policy) and the merge
//! itself, committed like a flush.
//!
//! Every flush adds a segment, and a query visits every segment's graph, so without merging the
//! cost of a query grows with the number of flushes. The policy keeps the number of live
//! segments logarithmic in the number of rows:
//!
//! - a segment's *tier* is ⌊log_F(live rows / 1,024)⌋, with F the merge factor (default 4);
//! - when a tier holds F segments, they are merged into one, which lands a tier higher;
//! - segments are never merged past `segment_rows` rows.
//!
//! So a tier holds at most F − 1 segments after merging, and N rows live in at most
//! (F − 1)·(log_F(N / 1,024) + 1) segments; each row is rewritten about log_F(N / flush) times.
//! The merged segment's graph extends the graph of the largest input (when it has no deleted
//! rows) instead of being rebuilt: the cost of a merge is the insertion of the smaller inputs.

use super::{next_manifest, segment_sums, Collection};
use crate::error::Result;
use crate::faults;
use crate::manifest::SegmentEntry;
use crate::segment::{self, MergedRows};
use crate::wal::Wal;
use std::cmp::Reverse;

/// Segments below this many live rows share the lowest tier.
const TIER_BASE_ROWS: usize = 1024;

/// The tier of a segment with `rows` live rows.
fn tier(rows: usize, factor: usize) -> u32 {
    let mut tier = 0;
    let mut bound = TIER_BASE_ROWS.saturating_mul(factor);
    while rows >= bound {
        tier += 1;
        bound = bound.saturating_mul(factor);
    }
    tier
}

/// The segments (indices into `live_rows`) to merge next, if any: the `factor` smallest of the
/// lowest tier that holds `factor` segments whose sum stays within `max_rows`.
pub(crate) fn pick(live_rows: &[usize], factor: usize, max_rows: usize) -> Option<Vec<usize>> {
    if factor < 2 {
        return None;
    }
    let mut by_tier: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (index, &rows) in live_rows.iter().enumerate() {
        by_tier.entry(tier(rows, factor)).or_default().push(index);
    }
    by_tier.into_values().find_map(|mut members| {
        members.sort_by_key(|&i| (live_rows[i], i));
        members.truncate(factor);
        let total: usize = members.iter().map(|&i| live_rows[i]).sum();
        (members.len() == factor && total <= max_rows).then_some(members)
    })
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
        let rows = MergedRows::new(parts);
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
        let entry = SegmentEntry {
            id,
            rows: segment::RowSource::rows(&rows),
            deleted: Vec::new(),
            sums: segment_sums(schema, &rows),
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
    fn tiers_grow_by_the_factor() {
        assert_eq!(tier(0, 4), 0);
        assert_eq!(tier(4095, 4), 0);
        assert_eq!(tier(4096, 4), 1);
        assert_eq!(tier(65_536, 4), 3);
        assert_eq!(tier(262_144, 4), 4);
    }

    #[test]
    fn the_lowest_full_tier_is_merged_first() {
        let rows = [65_536, 100, 65_536, 200, 65_536, 300, 65_536];
        assert_eq!(pick(&rows, 4, 1 << 20), Some(vec![0, 2, 4, 6]));
        assert_eq!(pick(&rows[..6], 4, 1 << 20), None);
        let small = [10, 20, 30, 40, 50];
        assert_eq!(pick(&small, 4, 1 << 20), Some(vec![0, 1, 2, 3]));
        assert_eq!(
            pick(&small, 0, 1 << 20),
            None,
            "a factor of 0 disables merging"
        );
        assert_eq!(pick(&rows, 4, 200_000), None, "never past segment_rows");
    }

    /// Simulates flushes of `flush` rows with the policy applied after each: the number of
    /// segments stays within (F − 1) per tier, which is logarithmic in the rows.
    #[test]
    fn segments_stay_logarithmic_in_the_rows() {
        for (flush, factor) in [(65_536, 4), (3_000, 4), (10_000, 8), (1_000, 2)] {
            let mut live: Vec<usize> = Vec::new();
            let mut rewritten = 0usize;
            for flushes in 1..=400usize {
                live.push(flush);
                while let Some(picked) = pick(&live, factor, 1 << 26) {
                    let merged: usize = picked.iter().map(|&i| live[i]).sum();
                    rewritten += merged;
                    live = live
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !picked.contains(i))
                        .map(|(_, &r)| r)
                        .collect();
                    live.push(merged);
                }
                let rows = flushes * flush;
                let tiers = tier(rows, factor) as usize + 1;
                assert!(
                    live.len() <= (factor - 1) * tiers,
                    "{} segments for {rows} rows (flush {flush}, F {factor})",
                    live.len()
                );
            }
            let rows = 400 * flush;
            let levels = (rows as f64 / flush as f64).log(factor as f64).ceil() as usize;
            assert!(rewritten <= rows * levels, "write amplification too high");
        }
    }
}
