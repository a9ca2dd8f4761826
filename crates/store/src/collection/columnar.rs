//! Live records read as columns (ids, payload fields, vector fields), for Arrow and dataframe
//! readers. When a collection is one segment with no deletes and nothing unflushed, as
//! `compact` leaves it, a vector field every row has is handed out as the mapped column itself:
//! no copy, however large.

use super::Collection;
use crate::error::{Result, StoreError};
use crate::segment::Segment;
use crate::value::Value;
use std::sync::Arc;

/// The columns of [`Collection::columns`], all in scan order (segments in order, then the
/// unflushed tail).
#[derive(Debug)]
pub struct Columns {
    pub ids: Vec<String>,
    /// Per requested payload field: its name and one value per row (`Null` where missing).
    pub payload: Vec<(String, Vec<Value>)>,
    pub vectors: Vec<VectorColumn>,
}

/// One vector field's rows.
#[derive(Debug)]
pub struct VectorColumn {
    pub name: String,
    pub dim: usize,
    pub data: VectorData,
}

/// A vector column, mapped or copied.
#[derive(Debug)]
pub enum VectorData {
    /// The segment's column as stored: every row has a vector.
    Mapped(MappedVectors),
    /// Gathered rows (row-major, zeros where `present` is false).
    Copied {
        values: Vec<f32>,
        present: Vec<bool>,
    },
}

/// A segment's vector column, kept mapped for as long as this value lives (the segment's files
/// may be replaced by a compaction meanwhile: the mapping stays valid, see `FORMAT.md`).
#[derive(Debug, Clone)]
pub struct MappedVectors {
    segment: Arc<Segment>,
    field: usize,
}

impl MappedVectors {
    /// Every row's vector, row-major (`rows × dim` floats).
    pub fn as_slice(&self) -> &[f32] {
        self.segment.columns[self.field].vectors()
    }
}

impl Collection {
    /// The live records as columns: ids, the named payload fields and the named vector fields.
    ///
    /// ```
    /// use medvec_store::*;
    /// use medvec_store::columnar::VectorData;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::create(dir.path().join("s")).unwrap();
    /// let schema = Schema { vectors: vec![VectorField::parse("v:2:l2").unwrap()], payload: vec![] };
    /// let c = store.create_collection("c", schema).unwrap();
    /// c.upsert(&[Record::new("a").with_vector("v", vec![1.0, 2.0])]).unwrap();
    /// c.compact().unwrap();
    /// let columns = c.columns(&["v"], &[]).unwrap();
    /// assert_eq!(columns.ids, ["a"]);
    /// let VectorData::Mapped(mapped) = &columns.vectors[0].data else { panic!("a copy") };
    /// assert_eq!(mapped.as_slice(), [1.0, 2.0]);
    /// ```
    pub fn columns(&self, vector_fields: &[&str], payload_fields: &[&str]) -> Result<Columns> {
        let state = self.read();
        let schema = &state.manifest.schema;
        let payload_index = payload_fields
            .iter()
            .map(|name| {
                schema
                    .payload_index(name)
                    .ok_or_else(|| StoreError::UnknownField(name.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let vector_index = vector_fields
            .iter()
            .map(|name| schema.vector_index(name))
            .collect::<Result<Vec<_>>>()?;
        let clean = state.segments.len() == 1
            && state.tombstones[0].count() == 0
            && state.tail.records.is_empty();
        let mut ids = Vec::new();
        let mut payload: Vec<Vec<Value>> = vec![Vec::new(); payload_index.len()];
        let mut copied: Vec<Option<(Vec<f32>, Vec<bool>)>> = vector_index
            .iter()
            .map(|&f| {
                let mapped = clean && state.segments[0].is_complete(f);
                (!mapped).then(|| (Vec::new(), Vec::new()))
            })
            .collect();
        for (segment, tombstones) in state.segments.iter().zip(&state.tombstones) {
            segment.check_scan()?;
            for &f in &vector_index {
                segment.columns[f].ensure_verified()?;
            }
            for row in (0..segment.rows).filter(|&r| !tombstones.get(r)) {
                ids.push(segment.id_of(row)?.to_string());
                for (column, &p) in payload.iter_mut().zip(&payload_index) {
                    column.push(crate::segment::owned_value(segment.value(p, row)));
                }
                for (sink, &f) in copied.iter_mut().zip(&vector_index) {
                    if let Some((values, present)) = sink {
                        let has = segment.has_vector(f, row);
                        push_vector(
                            values,
                            present,
                            has.then(|| segment.columns[f].vector_unchecked(row)),
                            schema.vectors[f].dim,
                        );
                    }
                }
            }
        }
        for record in &state.tail.records {
            ids.push(record.id.clone());
            for (column, &p) in payload.iter_mut().zip(&payload_index) {
                column.push(record.payload[p].clone());
            }
            for (sink, &f) in copied.iter_mut().zip(&vector_index) {
                if let Some((values, present)) = sink {
                    push_vector(
                        values,
                        present,
                        record.vectors[f].as_deref(),
                        schema.vectors[f].dim,
                    );
                }
            }
        }
        let vectors = vector_index
            .iter()
            .zip(copied)
            .map(|(&f, copy)| VectorColumn {
                name: schema.vectors[f].name.clone(),
                dim: schema.vectors[f].dim,
                data: match copy {
                    Some((values, present)) => VectorData::Copied { values, present },
                    None => VectorData::Mapped(MappedVectors {
                        segment: state.segments[0].clone(),
                        field: f,
                    }),
                },
            })
            .collect();
        let payload = payload_fields
            .iter()
            .map(|n| n.to_string())
            .zip(payload)
            .collect();
        Ok(Columns {
            ids,
            payload,
            vectors,
        })
    }
}

fn push_vector(values: &mut Vec<f32>, present: &mut Vec<bool>, vector: Option<&[f32]>, dim: usize) {
    match vector {
        Some(v) => values.extend_from_slice(v),
        None => values.extend(std::iter::repeat_n(0.0, dim)),
    }
    present.push(vector.is_some());
}
