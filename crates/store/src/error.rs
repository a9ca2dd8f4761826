//! The store's typed errors. Each names the file, record or field it is about.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: written by format version {found}, this medvec reads up to {supported}; upgrade medvec")]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "{path}: another process holds the write lock (pid {holder}); close it or open read-only"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("{path}: store opened read-only; writes need a writer handle")]
    ReadOnly { path: PathBuf },
    #[error("{path}: the store directory is not writable ({source}); searches and other reads work, writes need write access")]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a medvec store (no `medvec.store` file); create one with `medvec create`"
    )]
    NotAStore { path: PathBuf },
    #[error("collection `{0}` does not exist")]
    NoSuchCollection(String),
    #[error("collection `{0}` already exists")]
    CollectionExists(String),
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("record `{id}`: {detail}")]
    InvalidRecord { id: String, detail: String },
    #[error("record `{0}` appears twice in one batch")]
    DuplicateId(String),
    #[error("query: {0}")]
    InvalidQuery(String),
    #[error("{0}; not repairable (only HNSW graphs can be rebuilt, from their columns): nothing was changed, restore the collection from a backup")]
    NotRepairable(Box<StoreError>),
    // Not `#[from]`: that would also make the filter error the source, and a chain printer
    // (anyhow's `{:#}`, the CLI's one line) would then print its message twice.
    #[error("filter: {0}")]
    Filter(crate::filter::FilterError),
}

impl From<crate::filter::FilterError> for StoreError {
    fn from(error: crate::filter::FilterError) -> StoreError {
        StoreError::Filter(error)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`, because a bare "No such file or directory" helps nobody.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })
    }
}

pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.into(),
        detail: detail.into(),
    }
}
