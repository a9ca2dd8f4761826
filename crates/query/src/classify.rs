//! Applying a saved head: to stored records ([`classify`]) or to vectors that are not in the
//! store ([`classify_vectors`]). Both go through one function that L2-normalises and shifts
//! the rows with the head's Δ and λ, so a vector gives the same prediction either way.

use crate::error::{QueryError, Result};
use crate::saved::SavedHead;
use crate::training::{head_err, shifted_matrices};
use medvec_store::{Collection, Filter, Record};

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: String,
    /// The decided class; empty for an error row.
    pub class: String,
    /// Probability of each class, in `meta.classes` order; empty for an error row.
    pub probabilities: Vec<f32>,
    /// The record's stored label, when the head's label field is set.
    pub truth: Option<String>,
    /// Why the record got no prediction (it lacks a field of the head), for an error row.
    pub error: Option<String>,
}

/// What [`classify`] does with a stored record that lacks one of the head's two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingField {
    /// An error row that names the missing field, and no prediction.
    #[default]
    Error,
    /// A zero vector in its place: it stays zero when normalised, so that branch carries only
    /// the shift's λ/2·Δ (exactly what the exported ONNX graph does with a zero input). A record
    /// lacking both fields still gets an error row.
    Zero,
}

impl MissingField {
    /// Parses `error` or `zero`.
    pub fn parse(text: &str) -> Result<MissingField> {
        match text {
            "error" => Ok(MissingField::Error),
            "zero" => Ok(MissingField::Zero),
            other => Err(QueryError::Invalid(format!(
                "missing: `{other}` is not `error` or `zero`"
            ))),
        }
    }
}

/// Classifies every stored record matching `filter`, `chunk` records at a time, calling `emit`
/// for each prediction in scan order; a record lacking a field of the head is handled as
/// `missing` says. Memory is bounded by `chunk`.
pub fn classify(
    collection: &Collection,
    saved: &SavedHead,
    filter: Option<&Filter>,
    (chunk, missing): (usize, MissingField),
    mut emit: impl FnMut(Prediction) -> Result<()>,
) -> Result<usize> {
    let chunk = chunk.max(1);
    let mut pending: Vec<Record> = Vec::with_capacity(chunk);
    let mut count = 0;
    let mut failure: Option<QueryError> = None;
    collection
        .scan_where(filter, |record| {
            count += 1;
            let step = match complete(saved, record, missing) {
                Ok(record) => {
                    pending.push(record);
                    if pending.len() < chunk {
                        return Ok(());
                    }
                    predict_records(saved, &mut pending, &mut emit)
                }
                // Rows stay in scan order: the batch before the error row goes out first.
                Err(row) => {
                    predict_records(saved, &mut pending, &mut emit).and_then(|()| emit(row))
                }
            };
            step.map_err(|e| {
                failure = Some(e);
                medvec_store::StoreError::InvalidQuery("classification stopped".into())
            })
        })
        .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
    predict_records(saved, &mut pending, &mut emit)?;
    Ok(count)
}

/// The record with both of the head's fields (zero-filled if `missing` allows), or its error row.
fn complete(
    saved: &SavedHead,
    mut record: Record,
    missing: MissingField,
) -> Result<Record, Prediction> {
    let meta = &saved.meta;
    let (text_dim, image_dim) = saved.model.dims();
    let lacking: Vec<(&String, usize)> =
        [(&meta.image_field, image_dim), (&meta.text_field, text_dim)]
            .into_iter()
            .filter(|(field, _)| !record.vectors.contains_key(*field))
            .collect();
    if lacking.is_empty() || (missing == MissingField::Zero && lacking.len() == 1) {
        for (field, dim) in lacking {
            record.vectors.insert(field.clone(), vec![0.0; dim]);
        }
        return Ok(record);
    }
    let names: Vec<String> = lacking.iter().map(|(f, _)| format!("`{f}`")).collect();
    Err(Prediction {
        truth: stored_label(&record, meta),
        id: record.id,
        class: String::new(),
        probabilities: Vec::new(),
        error: Some(format!(
            "lacks the {} vector{}",
            names.join(" and "),
            if names.len() > 1 { "s" } else { "" }
        )),
    })
}

fn stored_label(record: &Record, meta: &crate::training::HeadMeta) -> Option<String> {
    record
        .payload
        .get(&meta.label_field)
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
}

fn predict_records(
    saved: &SavedHead,
    pending: &mut Vec<Record>,
    emit: &mut impl FnMut(Prediction) -> Result<()>,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let meta = &saved.meta;
    let image: Vec<&[f32]> = pending
        .iter()
        .map(|r| r.vectors[&meta.image_field].as_slice())
        .collect();
    let text: Vec<&[f32]> = pending
        .iter()
        .map(|r| r.vectors[&meta.text_field].as_slice())
        .collect();
    let probabilities = probabilities(saved, &image, &text)?;
    for (record, row) in pending.drain(..).zip(probabilities) {
        let truth = stored_label(&record, meta);
        emit(prediction(saved, record.id, row, truth))?;
    }
    Ok(())
}

/// Classifies in-memory rows that need not be in any store: `image[r]` and `text[r]` are row
/// `r`'s raw vectors of the head's image and text fields (normalisation and the λ shift are
/// applied here, exactly as for stored records), and `ids[r]` names the row in the result.
///
/// ```
/// use medvec_query::heads::{HeadSpec, TrainConfig};
/// use medvec_query::training::{classify_vectors, train_head, SplitSource, TrainRequest};
/// use medvec_store::*;
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::create(dir.path().join("s")).unwrap();
/// let schema = Schema {
///     vectors: vec![VectorField::parse("image:2:cosine").unwrap(), VectorField::parse("text:2:cosine").unwrap()],
///     payload: vec![PayloadField::parse("y:string").unwrap()],
/// };
/// let cases = store.create_collection("cases", schema).unwrap();
/// let records: Vec<Record> = (0..60)
///     .map(|i| {
///         let (y, v) = if i % 2 == 0 { ("a", vec![1.0, 0.1]) } else { ("b", vec![0.1, 1.0]) };
///         Record::new(format!("r{i}")).with_vector("image", v.clone()).with_vector("text", v)
///             .with_value("y", Value::String(y.into()))
///     })
///     .collect();
/// cases.upsert(&records).unwrap();
/// let request = TrainRequest {
///     spec: HeadSpec::early(), label_field: "y".into(), image_field: "image".into(),
///     text_field: "text".into(), split: SplitSource::Fractions(Default::default(), 0),
///     lambdas: vec![0.0], config: TrainConfig { max_epochs: 20, ..TrainConfig::default() },
/// };
/// let head = train_head(&cases, &request).unwrap();
/// let ids = vec!["new-1".to_string()];
/// let p = classify_vectors(&head, &ids, &[vec![0.2, 2.0]], &[vec![0.2, 2.0]]).unwrap();
/// assert_eq!(p[0].class, "b");
/// ```
pub fn classify_vectors(
    saved: &SavedHead,
    ids: &[String],
    image: &[Vec<f32>],
    text: &[Vec<f32>],
) -> Result<Vec<Prediction>> {
    if ids.len() != image.len() || ids.len() != text.len() {
        return Err(QueryError::Invalid(format!(
            "classify: {} ids, {} image rows and {} text rows; one of each per row",
            ids.len(),
            image.len(),
            text.len()
        )));
    }
    let image: Vec<&[f32]> = image.iter().map(Vec::as_slice).collect();
    let text: Vec<&[f32]> = text.iter().map(Vec::as_slice).collect();
    let probabilities = probabilities(saved, &image, &text)?;
    Ok(ids
        .iter()
        .zip(probabilities)
        .map(|(id, row)| prediction(saved, id.clone(), row, None))
        .collect())
}

/// Normalises, shifts and runs the model; one probability row per input row.
fn probabilities(saved: &SavedHead, image: &[&[f32]], text: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
    if image.is_empty() {
        return Ok(Vec::new());
    }
    let (text_dim, image_dim) = saved.model.dims();
    let meta = &saved.meta;
    for (rows, field, dim) in [
        (image, &meta.image_field, image_dim),
        (text, &meta.text_field, text_dim),
    ] {
        if let Some((r, row)) = rows.iter().enumerate().find(|(_, v)| v.len() != dim) {
            return Err(QueryError::Invalid(format!(
                "row {r}: `{field}` has {} dimensions, the head expects {dim}",
                row.len()
            )));
        }
    }
    let (t, i) = shifted_matrices(image, text, &meta.delta, meta.lambda);
    let inputs = crate::heads::Inputs::new(t.view(), i.view()).map_err(head_err)?;
    let p = saved.model.predict_proba(&inputs).map_err(head_err)?;
    Ok(p.rows().into_iter().map(|r| r.to_vec()).collect())
}

fn prediction(
    saved: &SavedHead,
    id: String,
    probabilities: Vec<f32>,
    truth: Option<String>,
) -> Prediction {
    let best = crate::threshold::decide(&saved.meta, &probabilities);
    Prediction {
        id,
        class: saved.meta.classes.get(best).cloned().unwrap_or_default(),
        probabilities,
        truth,
        error: None,
    }
}
