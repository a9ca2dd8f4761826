//! Classifier heads over the embeddings of one or more vector fields, such as a text and an
//! image embedding of each case (method.md §4).
//!
//! * [`train`] fits an early- or late-fusion MLP head ([`HeadSpec`]) with AdamW,
//!   class-balanced loss and epoch selection by validation macro-F1, and returns a
//!   [`TrainedHead`] that predicts, evaluates and serialises itself.
//! * [`KnnHead`] votes among the nearest training cases (cosine, brute force).
//! * [`metrics`] reproduces scikit-learn's accuracy, macro-F1, balanced accuracy,
//!   per-class scores and confusion matrix.
//! * [`stratified_split`] makes a seeded, stratified train / validation / test split.
//!
//! Pure Rust on `ndarray`, CPU only. The forward and backward passes are written by
//! hand; matrix products use `matrixmultiply` through `ndarray::linalg`, parallelised
//! over output blocks whose boundaries do not depend on the thread count, so training is
//! bit-for-bit reproducible for a given seed on a given machine.
//!
//! Heads need every field of every row: a row lacking one must be dropped or
//! imputed by the caller before it reaches [`Inputs`].
//!
//! ```
//! use medvec_query::heads::{stratified_split, train, HeadSpec, Inputs, Labelled, SplitFractions, TrainConfig};
//! use ndarray::Array2;
//! let n = 60;
//! let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
//! let text = Array2::from_shape_fn((n, 4), |(i, j)| if j == labels[i] { 1.0 } else { 0.0 });
//! let image = Array2::from_shape_fn((n, 2), |(i, j)| ((i + j) % 3) as f32);
//! let all = Labelled::new(Inputs::new(text.view(), image.view())?, &labels)?;
//! let split = stratified_split(&labels, SplitFractions::default(), 0)?;
//! let (tr, va, te) = (all.select(&split.train)?, all.select(&split.val)?, all.select(&split.test)?);
//! let head = train(&HeadSpec::late(), &tr.view(), &va.view(), &TrainConfig::default())?;
//! let report = head.evaluate(&te.view())?;
//! assert!(report.accuracy > 0.5);
//! # Ok::<(), medvec_query::heads::HeadError>(())
//! ```

pub mod binary;
mod error;
mod head;
mod inputs;
mod knn;
mod linalg;
mod loss;
pub mod metrics;
mod net;
mod optim;
mod serial;
mod spec;
mod split;
mod train;

#[cfg(test)]
mod tests;

pub use error::{HeadError, Result};
pub use head::{FoldedBranch, FoldedNet, TrainedHead};
pub use inputs::{Inputs, Labelled, LabelledSet};
pub use knn::{KnnConfig, KnnHead, KnnView, KnnWeighting, KNN_EXACT_MATCH};
pub use spec::{Fusion, HeadSpec};
pub use split::{assign_parts, stratified_group_split, stratified_split, Split, SplitFractions};
pub use train::{train, ClassWeighting, EpochRecord, TrainConfig};
