//! Errors as Python sees them: the library's typed errors, sorted into the exception classes of
//! `medvec/_errors.py`, with the message the CLI prints after `medvec: error: `.

use medvec_query::QueryError;
use medvec_store::{privacy, StoreError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The exception class an error is raised as (all subclasses of `medvec.Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `medvec.StoreError`: the store cannot do it (no such store or collection, read-only
    /// handle, I/O failure, newer format).
    Store,
    /// `medvec.CorruptFile`: a checksum or structure check failed; names the file.
    Corrupt,
    /// `medvec.LockedError`: another writer holds the store's lock.
    Locked,
    /// `medvec.InvalidInput` (also a `ValueError`): bad arguments, records, queries or filters.
    Invalid,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Store => "StoreError",
            Kind::Corrupt => "CorruptFile",
            Kind::Locked => "LockedError",
            Kind::Invalid => "InvalidInput",
        }
    }
}

/// An error on its way to Python. It holds no Python object, so it can be made while the GIL is
/// released and raised once it is held again.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    /// Bad input, with a message that names the argument.
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Invalid,
            message: message.into(),
        }
    }

    pub fn store(message: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Store,
            message: message.into(),
        }
    }
}

/// The CLI's one-line message: the chain of causes joined by `: ` (anyhow's `{:#}`).
fn one_line(error: impl Into<anyhow::Error>) -> String {
    format!("{:#}", error.into()).replace('\n', " ")
}

fn store_kind(error: &StoreError) -> Kind {
    match error {
        StoreError::Corrupt { .. } | StoreError::NotRepairable(_) => Kind::Corrupt,
        StoreError::Locked { .. } => Kind::Locked,
        StoreError::InvalidSchema(_)
        | StoreError::UnknownField(_)
        | StoreError::InvalidRecord { .. }
        | StoreError::DuplicateId(_)
        | StoreError::InvalidQuery(_)
        | StoreError::Filter(_) => Kind::Invalid,
        StoreError::Io { .. }
        | StoreError::NewerFormat { .. }
        | StoreError::ReadOnly { .. }
        | StoreError::NotWritable { .. }
        | StoreError::NotAStore { .. }
        | StoreError::NoSuchCollection(_)
        | StoreError::CollectionExists(_) => Kind::Store,
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure {
            kind: store_kind(&error),
            message: one_line(error),
        }
    }
}

impl From<QueryError> for Failure {
    fn from(error: QueryError) -> Failure {
        let kind = match &error {
            QueryError::Store(inner) => store_kind(inner),
            _ => Kind::Invalid,
        };
        Failure {
            kind,
            message: one_line(error),
        }
    }
}

impl From<medvec_ingest::pipeline::PipelineError> for Failure {
    fn from(error: medvec_ingest::pipeline::PipelineError) -> Failure {
        use medvec_ingest::pipeline::PipelineError;
        let kind = match &error {
            PipelineError::Store(inner) => store_kind(inner),
            _ => Kind::Invalid,
        };
        Failure {
            kind,
            message: one_line(error),
        }
    }
}

impl From<medvec_store::filter::FilterError> for Failure {
    fn from(error: medvec_store::filter::FilterError) -> Failure {
        Failure::invalid(one_line(error))
    }
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> PyErr {
        let mut message = failure.message;
        if message.contains(privacy::PLACEHOLDER) {
            message.push_str(" (payload values are hidden; medvec.set_verbose(True) shows them)");
        }
        Python::attach(|py| match error_class(py, failure.kind) {
            Ok(class) => PyErr::from_type(class, message),
            Err(_) => PyRuntimeError::new_err(message),
        })
    }
}

/// The exception classes live in Python (`medvec/_errors.py`), so that `InvalidInput` can also
/// be a `ValueError`.
fn error_class(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    let class = py.import("medvec._errors")?.getattr(kind.class_name())?;
    Ok(class.cast_into::<PyType>()?)
}

/// Prefixes a failure with the argument it is about (`filter: ...`), as the CLI names its flag.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
}

impl<T, E: Into<Failure>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| {
            let mut failure = e.into();
            failure.message = format!("{what}: {}", failure.message);
            failure
        })
    }
}
