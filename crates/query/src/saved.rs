//! Heads saved inside a collection: the file layout, and loading an MLP or kNN head back.
//!
//! A head file body is `u32` metadata length, the [`HeadMeta`] JSON, then the model:
//! - MLP heads (`knn` absent from the metadata): the [`TrainedHead`] encoding;
//! - kNN heads: the JSON of [`TrainingCases`] — the ids and labels of the training
//!   rows and a fingerprint of their vectors. The vectors themselves stay in the collection
//!   and are read back by id when the head is loaded, so a kNN head costs a few bytes per
//!   training case. Loading fails with a clear error when a training record was deleted or
//!   its vectors changed since training (retrain the head then); a changed *label* payload
//!   does not matter, because the head votes with the labels recorded at training.
//!
//! The metadata's `format` is 3 for heads of any number of fields (`fields`, `shift_pair`);
//! heads saved as format 1 (two-field MLP) or 2 (two-field kNN) name `image_field` and
//! `text_field` instead and still load ([`HeadMeta::upgrade`]).

use crate::error::{QueryError, Result};
use crate::fields::vectors_fingerprint;
use crate::heads::metrics::ClassificationReport;
use crate::heads::{Inputs, KnnHead, KnnView, KnnWeighting, TrainedHead};
use crate::training::{build_knn, HeadMeta, LambdaResult, Shift, HEAD_FORMAT, LEGACY_KNN_FORMAT};
use medvec_store::Collection;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// The model inside a saved head.
#[derive(Debug, Clone)]
pub enum HeadModel {
    /// An early- or late-fusion MLP.
    Net(TrainedHead),
    /// A kNN over the (shifted) training cases.
    Knn(KnnHead),
}

impl HeadModel {
    /// Class probabilities, `n × C` in `meta.classes` order.
    pub fn predict_proba(&self, inputs: &Inputs<'_>) -> crate::heads::Result<Array2<f32>> {
        match self {
            HeadModel::Net(head) => head.predict_proba(inputs),
            HeadModel::Knn(knn) => knn.predict_proba(inputs),
        }
    }

    /// Predicted class indices.
    pub fn predict(&self, inputs: &Inputs<'_>) -> crate::heads::Result<Vec<usize>> {
        match self {
            HeadModel::Net(head) => head.predict(inputs),
            HeadModel::Knn(knn) => knn.predict(inputs),
        }
    }

    /// The dimension of each field the model expects, in `meta.fields` order.
    pub fn dims(&self) -> &[usize] {
        match self {
            HeadModel::Net(head) => head.dims(),
            HeadModel::Knn(knn) => knn.dims(),
        }
    }
}

/// kNN settings recorded in [`HeadMeta::knn`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct KnnMeta {
    pub k: usize,
    pub weighting: KnnWeighting,
    pub view: KnnView,
}

/// The training cases a kNN head votes with, as stored in its head file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingCases {
    /// Record ids of the training rows, in training order.
    pub ids: Vec<String>,
    /// Their class indices (into `meta.classes`) at training time.
    pub labels: Vec<usize>,
    /// FNV-1a over the raw vectors of those records at training time (each record's fields in
    /// `meta.fields` order; image then text for format 2 heads).
    pub vectors: String,
}

/// A trained head with its metadata, ready to save or apply.
#[derive(Debug, Clone)]
pub struct SavedHead {
    pub meta: HeadMeta,
    pub model: HeadModel,
    /// Every λ tried, in order (the sweep curve); empty for a loaded head.
    pub curve: Vec<LambdaResult>,
    /// The full test report for the chosen λ (when there is a test split).
    pub test_report: Option<ClassificationReport>,
    /// The training cases of a kNN head (`None` for MLP heads).
    pub training: Option<TrainingCases>,
}

impl SavedHead {
    /// Stores the head inside the collection under `name` (a versioned, checksummed file).
    pub fn save(&self, collection: &Collection, name: &str) -> Result<()> {
        let meta = serde_json::to_vec(&self.meta).expect("metadata serialises");
        let mut body = (meta.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&meta);
        match (&self.model, &self.training) {
            (HeadModel::Net(head), _) => body.extend_from_slice(&head.to_bytes()),
            (HeadModel::Knn(_), Some(cases)) => {
                body.extend_from_slice(&serde_json::to_vec(cases).expect("cases serialise"))
            }
            (HeadModel::Knn(_), None) => {
                return Err(QueryError::Invalid(format!(
                    "head `{name}`: a kNN head needs its training cases to be saved"
                )))
            }
        }
        Ok(collection.save_head(name, &body)?)
    }

    /// Loads a head saved with [`save`](Self::save). A kNN head reads its training vectors
    /// back from `collection` (see the module docs for what happens if they changed).
    pub fn load(collection: &Collection, name: &str) -> Result<SavedHead> {
        let body = collection.load_head(name)?;
        let (meta, rest) = split_body(name, &body)?;
        let bad = |why: String| QueryError::Invalid(format!("head `{name}`: {why}"));
        let (model, training) = match &meta.knn {
            None => (
                HeadModel::Net(TrainedHead::from_bytes(rest).map_err(|e| bad(e.to_string()))?),
                None,
            ),
            Some(knn) => {
                let cases: TrainingCases =
                    serde_json::from_slice(rest).map_err(|e| bad(e.to_string()))?;
                let model = rebuild_knn(collection, name, &meta, knn, &cases)?;
                (HeadModel::Knn(model), Some(cases))
            }
        };
        check_consistent(&meta, &model).map_err(bad)?;
        Ok(SavedHead {
            meta,
            model,
            curve: Vec::new(),
            test_report: None,
            training,
        })
    }

    /// Reads only the metadata of a saved head (cheap; never touches training records).
    pub fn load_meta(collection: &Collection, name: &str) -> Result<HeadMeta> {
        let body = collection.load_head(name)?;
        Ok(split_body(name, &body)?.0)
    }
}

/// The metadata and the model must agree (a damaged or hand-made file may not): one dimension per
/// field, one probability per class, and a Δ as wide as the shift pair when there is a shift.
fn check_consistent(meta: &HeadMeta, model: &HeadModel) -> std::result::Result<(), String> {
    let dims = model.dims();
    if dims.len() != meta.fields.fields.len() {
        return Err(format!(
            "the metadata names {} fields, the model reads {}",
            meta.fields.fields.len(),
            dims.len()
        ));
    }
    let classes = match model {
        HeadModel::Net(head) => head.num_classes(),
        HeadModel::Knn(knn) => knn.num_classes(),
    };
    if classes != meta.classes.len() {
        return Err(format!(
            "the metadata names {} classes, the model has {classes}",
            meta.classes.len()
        ));
    }
    let pair_width = meta.fields.shift_indices().map(|(a, b)| (dims[a], dims[b]));
    let shifts = meta.lambda != 0.0;
    match pair_width {
        _ if !meta.lambda.is_finite() => Err("λ is not finite".into()),
        Some((a, b)) if shifts && (a != b || meta.delta.len() != a) => Err(format!(
            "a shift with λ = {} needs Δ as wide as its pair ({a} and {b}), Δ has {}",
            meta.lambda,
            meta.delta.len()
        )),
        None if shifts => Err("a shift (λ ≠ 0) without a shift pair".into()),
        _ if meta.delta.iter().any(|d| !d.is_finite()) => Err("Δ is not finite".into()),
        _ => Ok(()),
    }
}

/// Splits a head body into its metadata and the model bytes, checking the format version.
fn split_body<'a>(name: &str, body: &'a [u8]) -> Result<(HeadMeta, &'a [u8])> {
    let bad = |why: &str| QueryError::Invalid(format!("head `{name}`: {why}"));
    let len = body
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| bad("too short"))?;
    let meta_bytes = body
        .get(4..4 + len)
        .ok_or_else(|| bad("metadata truncated"))?;
    let mut meta: HeadMeta = serde_json::from_slice(meta_bytes).map_err(|e| bad(&e.to_string()))?;
    if meta.format > HEAD_FORMAT {
        return Err(bad(&format!(
            "written by head format {}, this medvec reads up to {HEAD_FORMAT}",
            meta.format
        )));
    }
    meta.upgrade();
    meta.fields.validate().map_err(|e| bad(&e.to_string()))?;
    Ok((meta, &body[4 + len..]))
}

/// Looks the training records up by id, checks they are unchanged, and refits the kNN.
fn rebuild_knn(
    collection: &Collection,
    name: &str,
    meta: &HeadMeta,
    knn: &KnnMeta,
    cases: &TrainingCases,
) -> Result<KnnHead> {
    let fields = &meta.fields.fields;
    let mut columns: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(cases.ids.len()); fields.len()];
    let mut missing = Vec::new();
    for id in &cases.ids {
        let vectors = collection.get(id)?.and_then(|mut r| {
            let row: Option<Vec<Vec<f32>>> = fields.iter().map(|f| r.vectors.remove(f)).collect();
            row
        });
        match vectors {
            Some(row) => columns.iter_mut().zip(row).for_each(|(c, v)| c.push(v)),
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(QueryError::Invalid(format!(
            "kNN head `{name}`: {} of its {} training records are gone or lack one of `{}` since \
             training (first: `{}`); retrain the head",
            missing.len(),
            cases.ids.len(),
            meta.fields.names(),
            missing[0]
        )));
    }
    let columns: Vec<Vec<&[f32]>> = columns
        .iter()
        .map(|c| c.iter().map(Vec::as_slice).collect())
        .collect();
    // Format 2 heads hashed each record's image vector, then its text vector: their fields are
    // [text, image], so the fingerprint reads them in reverse.
    let fingerprint = if meta.format <= LEGACY_KNN_FORMAT {
        vectors_fingerprint(&columns.iter().rev().cloned().collect::<Vec<_>>())
    } else {
        vectors_fingerprint(&columns)
    };
    if fingerprint != cases.vectors {
        return Err(QueryError::Invalid(format!(
            "kNN head `{name}`: the vectors of its training records changed since training; \
             retrain the head"
        )));
    }
    let config = crate::heads::KnnConfig {
        k: knn.k,
        weighting: knn.weighting,
        view: knn.view,
    };
    build_knn(&columns, &cases.labels, Shift::of(meta), config)
}
