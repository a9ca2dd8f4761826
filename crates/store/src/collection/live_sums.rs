//! The live sum of every vector field (for the alignment shift's Δ), kept from each
//! segment's sums as written less its tombstoned rows.

use crate::bitset::BitSet;
use crate::error::Result;
use crate::manifest::{Manifest, SegmentEntry};
use crate::schema::Schema;
use crate::segment::{self, Segment};
use crate::sums::FieldSum;
use std::sync::Arc;

/// Per vector field, the sum of the unit vectors of every row of `rows`.
pub(super) fn segment_sums(
    schema: &Schema,
    rows: &(impl segment::RowSource + ?Sized),
) -> Vec<FieldSum> {
    let mut sums = zero_sums(schema);
    for (field, sum) in sums.iter_mut().enumerate() {
        for row in 0..rows.rows() {
            if let Some(vector) = rows.vector(field, row) {
                sum.add(vector, 1.0);
            }
        }
    }
    sums
}

pub(super) fn zero_sums(schema: &Schema) -> Vec<FieldSum> {
    schema
        .vectors
        .iter()
        .map(|f| FieldSum::zero(f.dim))
        .collect()
}

pub(super) fn add_to_sums(sums: &mut [FieldSum], vectors: &[Option<Vec<f32>>], sign: f64) {
    for (sum, vector) in sums.iter_mut().zip(vectors) {
        if let Some(v) = vector {
            sum.add(v, sign);
        }
    }
}

pub(super) fn subtract_segment_row(
    sums: &mut [FieldSum],
    segment: &Segment,
    row: usize,
) -> Result<()> {
    for (field, sum) in sums.iter_mut().enumerate() {
        if segment.has_vector(field, row) {
            sum.add(segment.columns[field].vector(row)?, -1.0);
        }
    }
    Ok(())
}

/// Live sums: each segment's sums as written, less its tombstoned rows.
pub(super) fn live_sums(
    manifest: &Manifest,
    segments: &[Arc<Segment>],
    tombstones: &[BitSet],
) -> Result<Vec<FieldSum>> {
    let mut total = zero_sums(&manifest.schema);
    for ((entry, segment), dead) in manifest.segments.iter().zip(segments).zip(tombstones) {
        add_live_sums(&mut total, entry, segment, dead)?;
    }
    Ok(total)
}

/// Adds one segment's live rows to `total`: its sums as written less its tombstoned rows, so the
/// cost is in the deletes, not the rows. A segment written before sums were recorded is summed
/// from its column.
pub(super) fn add_live_sums(
    total: &mut [FieldSum],
    entry: &SegmentEntry,
    segment: &Segment,
    dead: &BitSet,
) -> Result<()> {
    if entry.sums.len() == total.len() {
        total
            .iter_mut()
            .zip(&entry.sums)
            .for_each(|(t, s)| t.merge(s));
        dead.ones()
            .try_for_each(|row| subtract_segment_row(total, segment, row))
    } else {
        for row in (0..segment.rows).filter(|&r| !dead.get(r)) {
            add_to_sums(total, &segment.record(row)?.vectors, 1.0);
        }
        Ok(())
    }
}
