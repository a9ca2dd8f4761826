//! `medvec._medvec`, the native half of the `medvec` Python package (the Python half is in
//! `python/medvec`). Every call is a call of the library function that the `medvec` command
//! line calls for the same job; the GIL is released while the library works, so Python threads
//! search and write in parallel.

mod collection;
mod convert;
mod errors;
mod heads;
mod ingest;
mod store;

use pyo3::prelude::*;

/// Lets error messages show payload values (off by default: they may identify patients). The
/// CLI's `--verbose`.
#[pyfunction]
fn set_verbose(on: bool) {
    medvec_store::privacy::set_verbose(on);
}

/// Whether error messages show payload values.
#[pyfunction]
fn is_verbose() -> bool {
    medvec_store::privacy::is_verbose()
}

/// Native half of the `medvec` package; use `import medvec`.
#[pymodule]
mod _medvec {
    #[pymodule_export]
    use super::collection::{search_shards, NativeCollection};
    #[pymodule_export]
    use super::heads::{
        classify_stored, evaluate, gap, heads, load_head, split, sweep, train, NativeHead,
    };
    #[pymodule_export]
    use super::ingest::ingest;
    #[pymodule_export]
    use super::store::{open_store, NativeStore};
    #[pymodule_export]
    use super::{is_verbose, set_verbose};
}
