//! # medvec-ingest
//!
//! Everything that turns outside data into records for `medvec-store`, and back:
//! readers of precomputed embeddings (`.npy` + CSV, the paper's CSV layout, JSONL), export to
//! `.npy` + CSV, and (issue 3) ONNX image and text encoders over hospital archives.

pub mod archive;
pub mod columnar;
pub mod dicom;
pub mod encode;
pub mod error;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod import;
pub mod job;
pub mod load;
pub mod models;
pub mod npy;
pub mod output;
pub mod pipeline;
pub mod template;
