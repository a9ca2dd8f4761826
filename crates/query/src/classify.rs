//! Applying a saved head: to stored records ([`classify`]) or to vectors that are not in the
//! store ([`classify_vectors`]). Both go through one function that L2-normalises and shifts
//! the rows with the head's Δ and λ, so a vector gives the same prediction either way.

use crate::error::{QueryError, Result};
use crate::saved::SavedHead;
use crate::training::{head_err, Shift};
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
    /// The head's fields this record lacked and that were classified as zero vectors
    /// ([`MissingField::Zero`]); empty otherwise.
    pub zero_filled: Vec<String>,
}

/// What [`classify`] does with a stored record that lacks some of the head's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingField {
    /// An error row that names the missing field, and no prediction.
    #[default]
    Error,
    /// A zero vector in each missing field's place: it stays zero when normalised, so that
    /// field carries only the shift's λ/2·Δ if it is in the shift pair (exactly what the exported
    /// ONNX graph does with a zero input). A record lacking every field still gets an error row.
    Zero,
}

impl MissingField {
    /// `error` or `zero`, as [`parse`](Self::parse) reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingField::Error => "error",
            MissingField::Zero => "zero",
        }
    }

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
    let mut pending: Vec<(Record, Vec<String>)> = Vec::with_capacity(chunk);
    let mut count = 0;
    let mut failure: Option<QueryError> = None;
    collection
        .scan_where(filter, |record| {
            count += 1;
            let step = match complete(saved, record, missing) {
                Ok(completed) => {
                    pending.push(completed);
                    if pending.len() < chunk {
                        return Ok(());
                    }
                    predict_records(saved, &mut pending, &mut emit)
                }
                // Rows stay in scan order: the batch before the error row goes out first.
                Err(row) => {
                    predict_records(saved, &mut pending, &mut emit).and_then(|()| emit(*row))
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

/// The record with every field of the head (zero-filled if `missing` allows, with the names of
/// the fields filled), or its error row.
fn complete(
    saved: &SavedHead,
    mut record: Record,
    missing: MissingField,
) -> Result<(Record, Vec<String>), Box<Prediction>> {
    let meta = &saved.meta;
    let dims = saved.model.dims();
    let lacking: Vec<(&String, usize)> = meta
        .fields
        .fields
        .iter()
        .zip(dims.iter().copied())
        .filter(|(field, _)| !record.vectors.contains_key(*field))
        .collect();
    let some_present = lacking.len() < dims.len();
    if lacking.is_empty() || (missing == MissingField::Zero && some_present) {
        let filled = lacking.iter().map(|(f, _)| f.to_string()).collect();
        for (field, dim) in lacking {
            record.vectors.insert(field.clone(), vec![0.0; dim]);
        }
        return Ok((record, filled));
    }
    let mut names: Vec<String> = lacking.iter().map(|(f, _)| format!("`{f}`")).collect();
    let last = names.pop().expect("a field is lacking");
    let listed = match names.is_empty() {
        true => last,
        false => format!("{} and {last}", names.join(", ")),
    };
    Err(Box::new(Prediction {
        truth: stored_label(&record, meta),
        id: record.id,
        class: String::new(),
        probabilities: Vec::new(),
        error: Some(format!(
            "lacks the {listed} vector{}",
            if lacking.len() > 1 { "s" } else { "" }
        )),
        zero_filled: Vec::new(),
    }))
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
    pending: &mut Vec<(Record, Vec<String>)>,
    emit: &mut impl FnMut(Prediction) -> Result<()>,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let meta = &saved.meta;
    let columns: Vec<Vec<&[f32]>> = meta
        .fields
        .fields
        .iter()
        .map(|field| {
            pending
                .iter()
                .map(|(r, _)| r.vectors[field].as_slice())
                .collect()
        })
        .collect();
    let probabilities = probabilities(saved, &columns)?;
    for ((record, zero_filled), row) in pending.drain(..).zip(probabilities) {
        let truth = stored_label(&record, meta);
        emit(Prediction {
            zero_filled,
            ..prediction(saved, record.id, row, truth)
        })?;
    }
    Ok(())
}

/// Classifies stored records by id, in the order given, with their stored labels as `truth`.
/// An unknown id ([`QueryError::UnknownId`]) or a record lacking a field of the head is an error
/// that names it.
pub fn classify_ids(
    collection: &Collection,
    saved: &SavedHead,
    ids: &[String],
) -> Result<Vec<Prediction>> {
    let meta = &saved.meta;
    let mut columns: Vec<Vec<Vec<f32>>> =
        vec![Vec::with_capacity(ids.len()); meta.fields.fields.len()];
    let mut truth = Vec::with_capacity(ids.len());
    for id in ids {
        let mut record = collection
            .get(id)?
            .ok_or_else(|| QueryError::UnknownId(id.clone()))?;
        for (column, name) in columns.iter_mut().zip(&meta.fields.fields) {
            column.push(record.vectors.remove(name).ok_or_else(|| {
                QueryError::Invalid(format!("record `{id}` has no `{name}` vector"))
            })?);
        }
        truth.push(stored_label(&record, meta));
    }
    let mut predictions = classify_vectors(saved, ids, &columns)?;
    for (p, t) in predictions.iter_mut().zip(truth) {
        p.truth = t;
    }
    Ok(predictions)
}

/// Classifies in-memory rows that need not be in any store: `columns[f][r]` is row `r`'s raw
/// vector of the head's field `f` (in `meta.fields` order; normalisation and the λ shift are
/// applied here, exactly as for stored records), and `ids[r]` names the row in the result.
///
/// ```
/// use medvec_query::heads::{HeadSpec, TrainConfig};
/// use medvec_query::training::{classify_vectors, train_head, FieldSet, SplitSource, TrainRequest};
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
///     spec: HeadSpec::early(), label_field: "y".into(), fields: FieldSet::pair("image", "text"),
///     split: SplitSource::Fractions(Default::default(), 0),
///     lambdas: vec![0.0], config: TrainConfig { max_epochs: 20, ..TrainConfig::default() },
/// };
/// let head = train_head(&cases, &request).unwrap();
/// let ids = vec!["new-1".to_string()];
/// let p = classify_vectors(&head, &ids, &[vec![vec![0.2, 2.0]], vec![vec![0.2, 2.0]]]).unwrap();
/// assert_eq!(p[0].class, "b");
/// ```
pub fn classify_vectors(
    saved: &SavedHead,
    ids: &[String],
    columns: &[Vec<Vec<f32>>],
) -> Result<Vec<Prediction>> {
    let fields = &saved.meta.fields.fields;
    if columns.len() != fields.len() {
        return Err(QueryError::Invalid(format!(
            "classify: {} vector columns given; the head reads {} fields ({})",
            columns.len(),
            fields.len(),
            saved.meta.fields.names()
        )));
    }
    if let Some((field, rows)) = fields
        .iter()
        .zip(columns)
        .find(|(_, c)| c.len() != ids.len())
    {
        return Err(QueryError::Invalid(format!(
            "classify: {} ids but {} rows of `{field}`; one of each per row",
            ids.len(),
            rows.len()
        )));
    }
    let columns: Vec<Vec<&[f32]>> = columns
        .iter()
        .map(|c| c.iter().map(Vec::as_slice).collect())
        .collect();
    let probabilities = probabilities(saved, &columns)?;
    Ok(ids
        .iter()
        .zip(probabilities)
        .map(|(id, row)| prediction(saved, id.clone(), row, None))
        .collect())
}

/// Normalises, shifts and runs the model; one probability row per input row.
fn probabilities(saved: &SavedHead, columns: &[Vec<&[f32]>]) -> Result<Vec<Vec<f32>>> {
    if columns.first().is_none_or(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let meta = &saved.meta;
    let dims = saved.model.dims();
    for ((rows, field), &dim) in columns.iter().zip(&meta.fields.fields).zip(dims) {
        if let Some((r, row)) = rows.iter().enumerate().find(|(_, v)| v.len() != dim) {
            return Err(QueryError::Invalid(format!(
                "row {r}: `{field}` has {} dimensions, the head expects {dim}",
                row.len()
            )));
        }
    }
    let matrices = Shift::of(meta).inputs(columns);
    let views = matrices.iter().map(|m| m.view()).collect();
    let inputs = crate::heads::Inputs::from_fields(views).map_err(head_err)?;
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
        zero_filled: Vec::new(),
    }
}
