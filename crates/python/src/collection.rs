//! The collection handle: records in and out, search (plain and under the alignment shift),
//! compaction and verification, each one call of the library function the CLI calls. The GIL is
//! released while the library works.

use crate::convert::{json_to_py, rows, value, value_to_py};
use crate::errors::{Context, Failure, Result};
use crate::store::{stats_json, Shared};
use medvec_query::retrieval::search_shifted;
use medvec_query::Alignment;
use medvec_store::{Collection, Filter, Hit, Record, SearchParams, VerifyReport};
use numpy::ndarray::Array2;
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

    /// Runs `f` on the open collection (the store's cached handle).
    fn with<T>(&self, f: impl FnOnce(&Collection) -> Result<T>) -> Result<T> {
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
        json_to_py(py, &stats_json(&stats))
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
            if matrix.len() != records.len() {
                return Err(Failure::invalid(format!(
                    "{arg}: {} rows for {} ids",
                    matrix.len(),
                    records.len()
                ))
                .into());
            }
            for (record, vector) in records.iter_mut().zip(matrix) {
                record.vectors.insert(field.clone(), vector);
            }
        }
        for (field, column) in payload.iter() {
            let field: String = field.extract()?;
            let column = column.cast_into::<PyList>()?;
            let arg = format!("payload[{field:?}]");
            if column.len() != records.len() {
                return Err(Failure::invalid(format!(
                    "{arg}: {} values for {} ids",
                    column.len(),
                    records.len()
                ))
                .into());
            }
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
        let records: Vec<Option<Record>> =
            py.detach(|| self.with(|c| Ok(ids.iter().map(|id| c.get(id)).collect())))?;
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
    #[pyo3(signature = (field, queries, k = 10, filter = None, ef = None, exact = false, shift = 0.0, query_modality = None, pair = None, fit_filter = None))]
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
            offset: None,
        };
        let request = Shifted {
            lambda: shift,
            query_field: &query_field,
            pair: pair.as_deref(),
            fit_filter: fit_filter.as_ref(),
        };
        let results =
            py.detach(|| self.with(|c| run_search(c, &field, &queries, params, &request)))?;
        let (ids, scores) = pad(results, k);
        let scores = Array2::from_shape_vec((queries.len(), k), scores)
            .expect("padded to queries × k")
            .into_pyarray(py);
        Ok((ids, scores))
    }
}

/// The shift options of a search (`--shift`, `--query-modality`, `--pair`, `--fit-filter`).
struct Shifted<'a> {
    lambda: f32,
    query_field: &'a str,
    pair: Option<&'a str>,
    fit_filter: Option<&'a Filter>,
}

/// What `medvec search` runs: a plain batch search, or with a shift or a query of another
/// modality, Δ fitted on the pair (`Alignment::fit`, or `fit_where` on `fit_filter`) and
/// `search_shifted` with λ.
fn run_search(
    collection: &Collection,
    field: &str,
    queries: &[Vec<f32>],
    params: SearchParams,
    shifted: &Shifted<'_>,
) -> Result<Vec<Vec<Hit>>> {
    if shifted.lambda == 0.0 && shifted.query_field == field {
        return Ok(collection.search_batch(field, queries, &params)?);
    }
    let other = match (shifted.pair, shifted.query_field != field) {
        (Some(pair), _) => pair.to_string(),
        (None, true) => shifted.query_field.to_string(),
        (None, false) => other_field(collection, field)?,
    };
    let alignment = match shifted.fit_filter {
        Some(filter) => Alignment::fit_where(collection, field, &other, filter),
        None => Alignment::fit(collection, field, &other),
    }?;
    Ok(search_shifted(
        collection,
        field,
        shifted.query_field,
        queries,
        &alignment,
        shifted.lambda,
        params,
    )?)
}

/// The one other vector field of a two-field collection.
fn other_field(collection: &Collection, field: &str) -> Result<String> {
    let schema = collection.schema();
    let others: Vec<&str> = schema
        .vectors
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| *n != field)
        .collect();
    match others.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(Failure::invalid(
            "shift needs the other field of the pair: add pair=FIELD",
        )),
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
