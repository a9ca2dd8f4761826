//! Errors of the query layer.

use medvec_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the shift needs fields of equal dimension: `{a}` has {a_dim}, `{b}` has {b_dim} (the paper's code resamples the shorter vector, which has no meaning; medvec refuses)")]
    DimensionMismatch {
        a: String,
        a_dim: usize,
        b: String,
        b_dim: usize,
    },
    #[error("field `{0}` has no vectors{1}; cannot fit the gap")]
    EmptyField(String, String),
    #[error("no record with id `{0}`")]
    UnknownId(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
