//! The collection handle: records in and out, search (plain and under the alignment shift),
//! compaction and verification, each one call of the library function the CLI calls. The GIL is
//! released while the library works.

use crate::convert::{json_to_py, rows, value, value_to_py};
use crate::errors::{Context, Failure, Result};
use crate::store::Shared;
use medvec_query::jobs::{self, ShiftOptions};
use medvec_store::columnar::{Columns, MappedVectors, VectorData};
use medvec_store::{Collection, Filter, Hit, Record, SearchParams, VerifyReport};
use numpy::ndarray::{Array2, ArrayView2};
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The native collection handle; `medvec.Collection` wraps it.
#[pyclass(frozen, module = "medvec._medvec")]
pub struct NativeCollection {
    shared: Arc<Shared>,
    name: String,
}

impl NativeCollection {
    pub fn new(shared: Arc<Shared>, name: String) -> NativeCollection {
        NativeCollection { shared, name }
    }

    /// The open collection (the store's cached handle), for a call that spans several stores.
    fn handle(&self) -> Result<Arc<Collection>> {
        self.shared.with(|store| Ok(store.collection(&self.name)?))
    }

    /// Runs `f` on the open collection (the store's cached handle).
    pub fn with<T>(&self, f: impl FnOnce(&Collection) -> Result<T>) -> Result<T> {
        self.shared
            .with(|store| f(store.collection(&self.name)?.as_ref()))
    }
}

#[pymethods]
impl NativeCollection {
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The schema as `medvec stats --json` shows it.
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let schema = py.detach(|| self.with(|c| Ok(c.schema())))?;
        json_to_py(py, &json!(schema))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(py.detach(|| self.with(|c| Ok(c.len())))?)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stats = py.detach(|| self.with(|c| Ok(c.stats())))?;
        json_to_py(py, &jobs::stats_json(&stats))
    }

    /// Upserts one all-or-nothing batch: `vectors` maps fields to arrays with one row per id,
    /// `payload` maps fields to lists of values aligned with `ids` (the Python half has turned
    /// DataFrames and arrays into lists).
    fn upsert(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        vectors: &Bound<'_, PyDict>,
        payload: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let schema = py.detach(|| self.with(|c| Ok(c.schema())))?;
        let mut records: Vec<Record> = ids.into_iter().map(Record::new).collect();
        for (field, array) in vectors.iter() {
            let field: String = field.extract()?;
            let arg = format!("vectors[{field:?}]");
            let dim = schema.vector_field(&field).context(&arg)?.dim;
            let matrix = rows(&arg, &array, &field, dim)?;
            one_per_id(&arg, matrix.len(), "rows", records.len())?;
            for (record, vector) in records.iter_mut().zip(matrix) {
                record.vectors.insert(field.clone(), vector);
            }
        }
        for (field, column) in payload.iter() {
            let field: String = field.extract()?;
            let column = column.cast_into::<PyList>()?;
            let arg = format!("payload[{field:?}]");
            one_per_id(&arg, column.len(), "values", records.len())?;
            for (record, cell) in records.iter_mut().zip(column.iter()) {
                let cell = value(&cell).map_err(|why| {
                    Failure::invalid(format!("{arg}: record `{}`: {why}", record.id))
                })?;
                record.payload.insert(field.clone(), cell);
            }
        }
        Ok(py.detach(|| self.with(|c| Ok(c.upsert(&records)?)))?)
    }

    /// Deletes records by id; returns how many existed.
    fn delete(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<usize> {
        Ok(py.detach(|| self.with(|c| Ok(c.delete(&ids)?)))?)
    }

    /// The records with these ids, in order: a dict each (`id`, `payload`, and `vectors` as
    /// float32 arrays unless `with_vectors` is false), or `None` for an id with no record.
    #[pyo3(signature = (ids, with_vectors = true))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        with_vectors: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let records: Vec<Option<Record>> = py.detach(|| {
            self.with(|c| Ok(ids.iter().map(|id| c.get(id)).collect::<Result<_, _>>()?))
        })?;
        let items = records
            .into_iter()
            .map(|record: Option<Record>| match record {
                Some(record) => record_to_py(py, record, with_vectors),
                None => Ok(py.None().into_bound(py)),
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.with(|c| Ok(c.flush()?)))?)
    }

    /// `medvec compact` on this collection: `{"bytes_before": ..., "bytes_after": ...}`.
    fn compact<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (before, after) = py.detach(|| {
            self.with(|c| {
                let before = c.stats().disk_bytes;
                c.compact()?;
                Ok((before, c.stats().disk_bytes))
            })
        })?;
        json_to_py(py, &json!({"bytes_before": before, "bytes_after": after}))
    }

    /// `medvec verify` on this collection.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let report = py.detach(|| self.with(|c| Ok(c.verify()?)))?;
        json_to_py(py, &verify_json(&report))
    }

    /// `medvec search`: the hits of each query padded to `k` (ids `""`, scores NaN), as a flat
    /// list of ids and a float32 score matrix of shape (queries, k).
    #[pyo3(signature = (field, queries, k = 10, filter = None, ef = None, exact = false, shift = 0.0, query_modality = None, pair = None, fit_filter = None, rescore = None))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        field: String,
        queries: &Bound<'py, PyAny>,
        k: usize,
        filter: Option<String>,
        ef: Option<usize>,
        exact: bool,
        shift: f32,
        query_modality: Option<String>,
        pair: Option<String>,
        fit_filter: Option<String>,
        rescore: Option<usize>,
    ) -> PyResult<(Vec<String>, Bound<'py, PyArray2<f32>>)> {
        if !shift.is_finite() {
            return Err(Failure::invalid("shift: λ must be a finite number").into());
        }
        let query_field = query_modality.unwrap_or_else(|| field.clone());
        let schema = py.detach(|| self.with(|c| Ok(c.schema())))?;
        let dim = schema
            .vector_field(&query_field)
            .map_err(Failure::from)?
            .dim;
        let queries = rows("queries", queries, &query_field, dim)?;
        let filter = filter
            .as_deref()
            .map(Filter::parse)
            .transpose()
            .context("filter")?;
        let fit_filter = fit_filter
            .as_deref()
            .map(Filter::parse)
            .transpose()
            .context("fit_filter")?;
        let params = SearchParams {
            k,
            ef,
            exact,
            filter,
            rescore,
            ..SearchParams::default()
        };
        let shift = ShiftOptions {
            lambda: shift,
            query_field: &query_field,
            pair: pair.as_deref(),
            fit_filter: fit_filter.as_ref(),
        };
        let results =
            py.detach(|| self.with(|c| Ok(jobs::search(c, &field, &queries, params, &shift)?)))?;
        Ok(padded(py, results, k))
    }

    /// Every live record as columns, for `to_arrow`: ids, payload values per field (lists, `None`
    /// when missing) and one float32 matrix per vector field (rows × dim, NaN rows where a record
    /// lacks the field).
    #[pyo3(signature = (vector_fields = None, payload_fields = None))]
    fn columns<'py>(
        &self,
        py: Python<'py>,
        vector_fields: Option<Vec<String>>,
        payload_fields: Option<Vec<String>>,
    ) -> PyResult<ColumnsOut<'py>> {
        let table = py.detach(|| self.with(|c| table(c, vector_fields, payload_fields)))?;
        columns_to_py(py, table)
    }
}

/// Hits padded to `k` per query: ids (row-major, `""` for a missing hit) and scores (NaN).
fn pad(results: Vec<Vec<Hit>>, k: usize) -> (Vec<String>, Vec<f32>) {
    let mut ids = Vec::with_capacity(results.len() * k);
    let mut scores = Vec::with_capacity(results.len() * k);
    for hits in results {
        let found = hits.len().min(k);
        for hit in hits.into_iter().take(k) {
            ids.push(hit.id);
            scores.push(hit.score);
        }
        ids.extend(std::iter::repeat_n(String::new(), k - found));
        scores.extend(std::iter::repeat_n(f32::NAN, k - found));
    }
    (ids, scores)
}

fn record_to_py(py: Python<'_>, record: Record, with_vectors: bool) -> PyResult<Bound<'_, PyAny>> {
    let out = PyDict::new(py);
    out.set_item("id", &record.id)?;
    let payload = PyDict::new(py);
    for (field, v) in &record.payload {
        payload.set_item(field, value_to_py(py, v)?)?;
    }
    out.set_item("payload", payload)?;
    if with_vectors {
        let vectors = PyDict::new(py);
        let fields: BTreeMap<String, Vec<f32>> = record.vectors;
        for (field, vector) in fields {
            vectors.set_item(field, vector.into_pyarray(py))?;
        }
        out.set_item("vectors", vectors)?;
    }
    Ok(out.into_any())
}

/// A verify report with the keys of `medvec verify --json`.
pub fn verify_json(r: &VerifyReport) -> serde_json::Value {
    json!({"files_checked": r.files_checked, "wal_batches": r.wal_batches, "wal_tail_discarded": r.wal_tail_discarded})
}

/// Refuses an argument that does not give one row or value per id.
fn one_per_id(arg: &str, got: usize, what: &str, ids: usize) -> Result<()> {
    if got == ids {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "{arg}: {got} {what} for {ids} ids"
        )))
    }
}

/// Padded hits as Python sees them: row-major ids and a float32 (queries × k) score matrix.
pub fn padded(
    py: Python<'_>,
    results: Vec<Vec<Hit>>,
    k: usize,
) -> (Vec<String>, Bound<'_, PyArray2<f32>>) {
    let queries = results.len();
    let (ids, scores) = pad(results, k);
    let scores = Array2::from_shape_vec((queries, k), scores)
        .expect("padded to queries × k")
        .into_pyarray(py);
    (ids, scores)
}

type ColumnsOut<'py> = (Vec<String>, Bound<'py, PyDict>, Bound<'py, PyDict>);

/// The collection's columns (all fields when `None`), as the library reads them.
fn table(
    collection: &Collection,
    vector_fields: Option<Vec<String>>,
    payload_fields: Option<Vec<String>>,
) -> Result<Columns> {
    let schema = collection.schema();
    let vector_fields =
        vector_fields.unwrap_or_else(|| schema.vectors.iter().map(|f| f.name.clone()).collect());
    let payload_fields =
        payload_fields.unwrap_or_else(|| schema.payload.iter().map(|f| f.name.clone()).collect());
    let vector_fields: Vec<&str> = vector_fields.iter().map(String::as_str).collect();
    let payload_fields: Vec<&str> = payload_fields.iter().map(String::as_str).collect();
    collection
        .columns(&vector_fields, &payload_fields)
        .context("fields")
}

/// Keeps a segment's mapped vector column alive for as long as numpy arrays view it.
#[pyclass(frozen, module = "medvec._medvec")]
struct MappedColumn {
    vectors: MappedVectors,
}

fn columns_to_py(py: Python<'_>, table: Columns) -> PyResult<ColumnsOut<'_>> {
    let rows = table.ids.len();
    let payload = PyDict::new(py);
    for (name, column) in &table.payload {
        let values = column
            .iter()
            .map(|v| value_to_py(py, v))
            .collect::<PyResult<Vec<_>>>()?;
        payload.set_item(name, PyList::new(py, values)?)?;
    }
    let vectors = PyDict::new(py);
    for column in table.vectors {
        let array = match column.data {
            VectorData::Mapped(mapped) => mapped_array(py, mapped, rows, column.dim)?,
            VectorData::Copied {
                mut values,
                present,
            } => {
                // Rows without the field are NaN, so the Python half can tell them apart.
                for (row, _) in present.iter().enumerate().filter(|(_, p)| !**p) {
                    values[row * column.dim..(row + 1) * column.dim].fill(f32::NAN);
                }
                Array2::from_shape_vec((rows, column.dim), values)
                    .map_err(|e| Failure::invalid(format!("fields: {e}")))?
                    .into_pyarray(py)
                    .into_any()
            }
        };
        vectors.set_item(column.name, array)?;
    }
    Ok((table.ids, payload, vectors))
}

/// A read-only numpy array over the mapped column, with the column's owner as its base.
fn mapped_array(
    py: Python<'_>,
    mapped: MappedVectors,
    rows: usize,
    dim: usize,
) -> PyResult<Bound<'_, PyAny>> {
    let owner = Bound::new(py, MappedColumn { vectors: mapped })?;
    let slice = owner.get().vectors.as_slice();
    let view = ArrayView2::from_shape((rows, dim), slice)
        .map_err(|e| Failure::invalid(format!("fields: {e}")))?;
    // SAFETY: `view` borrows memory owned by `owner` (an mmap kept alive by the segment's Arc),
    // which becomes the array's base object, so the memory outlives the array. The mapping is
    // read-only (PROT_READ), so the array is marked not writeable before Python sees it.
    let array = unsafe { PyArray2::borrow_from_array(&view, owner.clone().into_any()) };
    array.call_method1("setflags", (false,))?;
    Ok(array.into_any())
}

/// `medvec search STORE COLL --store B ...`: the same field searched in every shard and each
/// query's hits merged into one top-k (exact with `exact`; equal to one collection's).
#[pyfunction]
#[pyo3(signature = (shards, field, queries, k = 10, filter = None, ef = None, exact = false))]
#[allow(clippy::too_many_arguments)]
pub fn search_shards<'py>(
    py: Python<'py>,
    shards: Vec<PyRef<'py, NativeCollection>>,
    field: String,
    queries: &Bound<'py, PyAny>,
    k: usize,
    filter: Option<String>,
    ef: Option<usize>,
    exact: bool,
) -> PyResult<(Vec<String>, Bound<'py, PyArray2<f32>>)> {
    let handles = shards
        .iter()
        .map(|s| s.handle())
        .collect::<Result<Vec<_>>>()?;
    let first = handles
        .first()
        .ok_or_else(|| Failure::invalid("shards: no collection to search"))?;
    let dim = first
        .schema()
        .vector_field(&field)
        .map_err(Failure::from)?
        .dim;
    let queries = rows("queries", queries, &field, dim)?;
    let params = SearchParams {
        k,
        ef,
        exact,
        filter: filter
            .as_deref()
            .map(Filter::parse)
            .transpose()
            .context("filter")?,
        ..SearchParams::default()
    };
    let results = py.detach(|| {
        let all: Vec<&Collection> = handles.iter().map(|c| &**c).collect();
        medvec_query::shards::search_shards(&all, &field, &queries, &params).map_err(Failure::from)
    })?;
    Ok(padded(py, results, k))
}
