//! # medvec-store
//!
//! The storage engine of medvec: a crash-safe, memory-mapped, columnar store of embedding
//! vectors with payload, searched through per-segment HNSW graphs or exact scans.
//!
//! - A [`Store`] is a directory of named [`Collection`]s; each collection is self-contained
//!   (its own manifest, log and segments), which makes it the unit of sharding.
//! - Writes go to a checksummed write-ahead log, fsynced before the call returns, and into an
//!   in-memory tail; the tail is flushed into an immutable segment at a size threshold.
//! - A segment holds one little-endian `f32` column file per vector field, read zero-copy through
//!   `memmap2`, a sorted id index, plain payload columns and an HNSW graph per vector field,
//!   each checksummed per 4 KiB page and checked when a read first touches the page.
//! - The manifest names the live segments and log and is replaced atomically.
//!
//! The on-disk format is specified in `FORMAT.md` beside this crate.

mod bitset;
mod blocks;
mod collection;
pub mod distance;
mod error;
pub mod faults;
pub mod fileio;
pub mod filter;
#[doc(hidden)]
pub mod fuzz_entry;
mod graph;
mod lock;
mod manifest;
mod memtable;
pub mod privacy;
mod record;
mod repair;
mod schema;
mod search;
mod segment;
mod sq8;
mod store;
mod sums;
mod validate;
mod value;
mod wal;

pub use collection::columnar;
pub use collection::{Collection, CollectionOptions, CollectionStats, VerifyReport};
pub use error::{Result, StoreError};
pub use fileio::FORMAT_VERSION;
pub use filter::Filter;
pub use graph::{breadth_first_rows, RowOrder};
pub use record::{validate_id, Record, MAX_ID_BYTES};
pub use repair::RepairReport;
pub use schema::{
    GraphBuilder, HnswParams, Metric, PayloadField, Quantization, Schema, VectorField, MAX_DIM,
};
pub use search::{default_ef, shifted_ef, Hit, SearchParams, EF_SEARCH_ROWS, RESCORE};
pub use store::{Store, PSEUDONYM_KEY_LEN};
pub use sums::FieldSum;
pub use value::{FieldType, Value};
