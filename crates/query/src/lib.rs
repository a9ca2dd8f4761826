//! # medvec-query
//!
//! The paper's method as queries against a `medvec-store` collection:
//! - [`alignment`]: the gap vector Δ = mean(image) − mean(text) and the alignment shift
//!   t' = normalize(t + λ/2·Δ), v' = normalize(v − λ/2·Δ), applied at read time;
//! - [`gap`]: the modality-gap report (‖Δ‖, paired cosine, concentration, PCA-2 variances);
//! - [`pca`], [`plot`]: PCA-2 projection and the SVG charts of a λ sweep;
//! - [`retrieval`]: same- and cross-modal search under a shift;
//! - [`shards`]: one collection split over several stores, searched and merged;
//! - [`heads`]: early, late and kNN fusion heads, their training, metrics and splits;
//! - [`fields`]: the vector fields a head reads, the shift pair, and the rows' normalisation and
//!   shift into the head's inputs;
//! - [`training`]: heads trained on and saved in a collection, with λ chosen on validation
//!   (the labelled rows and their splits are read by a private `dataset` module);
//! - [`saved`]: the saved-head file (MLP weights, or a kNN's training ids);
//! - [`classify`]: saved heads applied to stored records or to new in-memory vectors;
//! - [`repeat`]: training repeated over seeds, with bootstrap intervals and a paired test of the
//!   shift against no shift;
//! - [`threshold`]: binary heads' decision thresholds and their ROC/PR/calibration metrics;
//! - [`onnx`]: saved early/late heads written as ONNX graphs (`export-head`);
//! - [`jobs`]: the jobs the CLI and the Python bindings share (search with a shift, train and
//!   sweep settings, evaluation) and the JSON shapes of their reports.

pub mod alignment;
pub mod classify;
mod dataset;
pub mod error;
pub mod fields;
pub mod gap;
pub mod heads;
pub mod jobs;
pub mod onnx;
pub mod pca;
pub mod plot;
pub mod repeat;
pub mod retrieval;
pub mod saved;
pub mod shards;
pub mod threshold;
pub mod training;

pub use alignment::Alignment;
pub use error::QueryError;
