//! `medvec.open` and the store handle: the same `medvec_store::Store` calls as `medvec create`,
//! `stats`, `verify` and `drop`.

use crate::collection::NativeCollection;
use crate::convert::json_to_py;
use crate::errors::{Failure, Result};
use medvec_store::{CollectionOptions, GraphBuilder, PayloadField, Schema, Store, VectorField};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The open store, shared by its handle and every collection handle taken from it. `close`
/// takes it out; a call that finds it gone raises `StoreError`. Calls hold the read lock for
/// their whole duration, so `close` waits for running searches and writes.
pub struct Shared {
    store: RwLock<Option<Store>>,
    path: PathBuf,
}

impl Shared {
    pub fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let guard = self.store.read().unwrap_or_else(|p| p.into_inner());
        let store = guard.as_ref().ok_or_else(|| {
            Failure::store(format!("{}: the store is closed", self.path.display()))
        })?;
        f(store)
    }

    fn close(&self) -> Result<()> {
        let store = self.store.write().unwrap_or_else(|p| p.into_inner()).take();
        match store {
            Some(store) => Ok(store.close()?),
            None => Ok(()),
        }
    }
}

/// Opens the store at `path` (native half of `medvec.open`).
#[pyfunction]
#[pyo3(signature = (path, read_only = false, bulk = false))]
pub fn open_store(
    py: Python<'_>,
    path: PathBuf,
    read_only: bool,
    bulk: bool,
) -> PyResult<NativeStore> {
    let opened = py.detach(|| match (read_only, bulk) {
        (true, _) => Store::open_read_only(&path),
        (false, true) => Store::open_or_create_with(&path, CollectionOptions::bulk()),
        (false, false) => Store::open_or_create(&path),
    });
    Ok(NativeStore {
        shared: Arc::new(Shared {
            store: RwLock::new(Some(opened.map_err(Failure::from)?)),
            path,
        }),
        read_only,
    })
}

/// The native store handle; `medvec.Store` wraps it.
#[pyclass(frozen, module = "medvec._medvec")]
pub struct NativeStore {
    shared: Arc<Shared>,
    read_only: bool,
}

impl NativeStore {
    /// The open store, for the calls that live outside this class (ingest).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }
}

#[pymethods]
impl NativeStore {
    #[getter]
    fn path(&self) -> PathBuf {
        self.shared.path.clone()
    }

    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// Like `medvec create`: `vectors` are `NAME:DIM:METRIC[:sq8]` specs, `payload` `NAME:TYPE` specs,
    /// and the HNSW options apply to every vector field.
    #[pyo3(signature = (name, vectors, payload, m = None, ef_construction = None, ef_search = None, graph_builder = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_collection(
        &self,
        py: Python<'_>,
        name: String,
        vectors: Vec<String>,
        payload: Vec<String>,
        m: Option<usize>,
        ef_construction: Option<usize>,
        ef_search: Option<usize>,
        graph_builder: Option<String>,
    ) -> PyResult<NativeCollection> {
        let builder = graph_builder
            .map(|b| {
                GraphBuilder::parse(&b).ok_or_else(|| {
                    Failure::invalid(format!(
                        "graph_builder: `{b}` is not a graph builder (medvec or hnsw_rs)"
                    ))
                })
            })
            .transpose()?;
        let mut vectors = vectors
            .iter()
            .map(|s| VectorField::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::from)?;
        for field in &mut vectors {
            field.hnsw.m = m.unwrap_or(field.hnsw.m);
            field.hnsw.ef_construction = ef_construction.unwrap_or(field.hnsw.ef_construction);
            field.hnsw.ef_search = ef_search.unwrap_or(field.hnsw.ef_search);
            field.hnsw.builder = builder.unwrap_or(field.hnsw.builder);
        }
        let payload = payload
            .iter()
            .map(|s| PayloadField::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::from)?;
        let schema = Schema { vectors, payload };
        py.detach(|| {
            self.shared
                .with(|store| Ok(store.create_collection(&name, schema).map(|_| ())?))
        })?;
        Ok(NativeCollection::new(self.shared.clone(), name))
    }

    fn collection(&self, py: Python<'_>, name: String) -> PyResult<NativeCollection> {
        py.detach(|| {
            self.shared
                .with(|store| Ok(store.collection(&name).map(|_| ())?))
        })?;
        Ok(NativeCollection::new(self.shared.clone(), name))
    }

    fn list_collections(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.shared.with(|store| Ok(store.list_collections()?)))?)
    }

    /// Each collection's counts, as `medvec stats --json` lists them.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let stats = py.detach(|| self.shared.with(|store| Ok(store.stats()?)))?;
        let items = stats
            .iter()
            .map(|s| json_to_py(py, &medvec_query::jobs::stats_json(s)))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Every collection's checksums, as `medvec verify` checks them.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reports = py.detach(|| self.shared.with(|store| Ok(store.verify()?)))?;
        let rows: serde_json::Map<String, serde_json::Value> = reports
            .iter()
            .map(|(name, r)| (name.clone(), crate::collection::verify_json(r)))
            .collect();
        json_to_py(py, &serde_json::Value::Object(rows))
    }

    fn drop_collection(&self, py: Python<'_>, name: String) -> PyResult<()> {
        Ok(py.detach(|| self.shared.with(|store| Ok(store.drop_collection(&name)?)))?)
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.shared.with(|store| Ok(store.flush()?)))?)
    }

    /// Flushes (a writer) and releases the lock; later calls raise `StoreError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.shared.close())?)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.shared
            .store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}
