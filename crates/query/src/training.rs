//! Fusion heads trained on, saved in, and applied to a collection.
//!
//! [`train_head`] reads the labelled records, splits them (an existing split column or a seeded
//! stratified split), fits Δ on the **training** rows only, trains one head per candidate λ,
//! picks λ and the epoch on **validation** macro-F1, reports on test, and returns a
//! [`SavedHead`] that [`SavedHead::save`] stores inside the collection. [`classify`] streams
//! predictions for stored records with bounded memory.

use crate::error::{QueryError, Result};
use crate::heads::metrics::ClassificationReport;
use crate::heads::{
    stratified_split, train, HeadSpec, Inputs, Labelled, SplitFractions, TrainConfig, TrainedHead,
};
use medvec_store::{Collection, Filter, Record};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Where the train / validation / test split comes from.
#[derive(Debug, Clone)]
pub enum SplitSource {
    /// A payload column holding `train`, `val` (or `validation`) and `test`.
    Column(String),
    /// A seeded stratified split with these fractions.
    Fractions(SplitFractions, u64),
}

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub spec: HeadSpec,
    pub label_field: String,
    pub image_field: String,
    pub text_field: String,
    pub split: SplitSource,
    /// Candidate shifts; the one with the best validation macro-F1 wins. `[0.0]` means no shift.
    pub lambdas: Vec<f32>,
    pub config: TrainConfig,
}

/// Everything recorded about a trained head besides its weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeadMeta {
    pub format: u32,
    pub fusion: String,
    pub image_field: String,
    pub text_field: String,
    pub label_field: String,
    pub classes: Vec<String>,
    pub lambda: f32,
    pub delta: Vec<f32>,
    pub seed: u64,
    pub best_epoch: usize,
    pub params: usize,
    pub seconds_per_epoch: f64,
    pub val_macro_f1: f64,
    pub test: Option<TestSummary>,
    /// FNV-1a over the training ids and labels, to tell which data a head saw.
    pub fingerprint: String,
    pub rows: [usize; 3],
}

/// Test metrics kept with a head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestSummary {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub balanced_accuracy: f64,
}

/// One λ tried during training or a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaResult {
    pub lambda: f32,
    pub val_macro_f1: f64,
    pub test_macro_f1: Option<f64>,
    pub test_accuracy: Option<f64>,
}

/// A trained head with its metadata, ready to save or apply.
pub struct SavedHead {
    pub meta: HeadMeta,
    pub head: TrainedHead,
    /// Every λ tried, in order (the sweep curve).
    pub curve: Vec<LambdaResult>,
    /// The full test report for the chosen λ (when there is a test split).
    pub test_report: Option<ClassificationReport>,
}

const HEAD_FORMAT: u32 = 1;

/// Labelled records with both modalities, in scan order.
struct Dataset {
    ids: Vec<String>,
    image: Vec<Vec<f32>>,
    text: Vec<Vec<f32>>,
    labels: Vec<usize>,
    classes: Vec<String>,
    split_values: Vec<String>,
}

fn load_dataset(collection: &Collection, request: &TrainRequest) -> Result<Dataset> {
    let schema = collection.schema();
    schema.vector_field(&request.image_field)?;
    schema.vector_field(&request.text_field)?;
    if schema.payload_index(&request.label_field).is_none() {
        return Err(QueryError::Invalid(format!(
            "unknown label field `{}`",
            request.label_field
        )));
    }
    let split_column = match &request.split {
        SplitSource::Column(c) => Some(c.clone()),
        SplitSource::Fractions(..) => None,
    };
    let mut raw: Vec<(Record, String)> = Vec::new();
    collection.scan(|record| {
        let label = record
            .payload
            .get(&request.label_field)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let usable = !label.is_empty()
            && record.vectors.contains_key(&request.image_field)
            && record.vectors.contains_key(&request.text_field);
        if usable {
            raw.push((record, label));
        }
        Ok(())
    })?;
    let mut classes: Vec<String> = raw.iter().map(|(_, l)| l.clone()).collect();
    classes.sort();
    classes.dedup();
    let mut data = Dataset {
        ids: Vec::new(),
        image: Vec::new(),
        text: Vec::new(),
        labels: Vec::new(),
        classes,
        split_values: Vec::new(),
    };
    for (mut record, label) in raw {
        data.labels
            .push(data.classes.binary_search(&label).expect("collected above"));
        data.split_values.push(
            split_column
                .as_ref()
                .and_then(|c| record.payload.get(c))
                .map(|v| v.to_string())
                .unwrap_or_default(),
        );
        data.image.push(
            record
                .vectors
                .remove(&request.image_field)
                .expect("checked above"),
        );
        data.text.push(
            record
                .vectors
                .remove(&request.text_field)
                .expect("checked above"),
        );
        data.ids.push(record.id);
    }
    if data.classes.len() < 2 {
        return Err(QueryError::Invalid(format!(
            "label `{}` needs at least two classes among records with both vectors",
            request.label_field
        )));
    }
    Ok(data)
}

fn split_rows(data: &Dataset, split: &SplitSource) -> Result<[Vec<usize>; 3]> {
    match split {
        SplitSource::Fractions(fractions, seed) => {
            let s = stratified_split(&data.labels, *fractions, *seed)
                .map_err(|e| QueryError::Invalid(e.to_string()))?;
            Ok([s.train, s.val, s.test])
        }
        SplitSource::Column(column) => {
            let mut parts: [Vec<usize>; 3] = Default::default();
            for (row, value) in data.split_values.iter().enumerate() {
                match value.to_ascii_lowercase().as_str() {
                    "train" | "training" => parts[0].push(row),
                    "val" | "valid" | "validation" | "dev" => parts[1].push(row),
                    "test" => parts[2].push(row),
                    other => return Err(QueryError::Invalid(format!("record `{}`: split column `{column}` is `{other}`; expected train, val or test", data.ids[row]))),
                }
            }
            if parts[0].is_empty() || parts[1].is_empty() {
                return Err(QueryError::Invalid(format!("split column `{column}` needs train and val rows (λ and epochs are chosen on val, never on test)")));
            }
            Ok(parts)
        }
    }
}

/// Δ = mean(image) − mean(text) over the unit vectors of `rows`.
fn delta_of(data: &Dataset, rows: &[usize]) -> Vec<f32> {
    let dim = data.image[0].len();
    let mut delta = vec![0f64; dim];
    for &row in rows {
        let (i, t) = (unit(&data.image[row]), unit(&data.text[row]));
        for j in 0..dim {
            delta[j] += (i[j] - t[j]) / rows.len() as f64;
        }
    }
    delta.into_iter().map(|x| x as f32).collect()
}

fn unit(v: &[f32]) -> Vec<f64> {
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|x| if n > 0.0 { f64::from(*x) / n } else { 0.0 })
        .collect()
}

/// Shifted (text, image) matrices of `rows`: t' = normalize(t̂ + λ/2·Δ), v' = normalize(v̂ − λ/2·Δ).
/// With λ = 0 this is just L2 normalisation, as the paper's code does first.
fn shifted_matrices(
    image: &[&[f32]],
    text: &[&[f32]],
    delta: &[f32],
    lambda: f32,
) -> (Array2<f32>, Array2<f32>) {
    let alignment = crate::Alignment {
        a_field: String::new(),
        b_field: String::new(),
        delta: delta.to_vec(),
    };
    let build = |rows: &[&[f32]], shift: &dyn Fn(&[f32]) -> Vec<f32>| {
        let dim = rows.first().map_or(0, |r| r.len());
        let flat: Vec<f32> = rows.iter().flat_map(|r| shift(r)).collect();
        Array2::from_shape_vec((rows.len(), dim), flat).expect("rows share a dimension")
    };
    let text_m = build(text, &|t| alignment.shift_b(t, lambda));
    let image_m = build(image, &|v| alignment.shift_a(v, lambda));
    (text_m, image_m)
}

fn subset<'a>(data: &'a Dataset, rows: &[usize]) -> (Vec<&'a [f32]>, Vec<&'a [f32]>, Vec<usize>) {
    (
        rows.iter().map(|&r| data.image[r].as_slice()).collect(),
        rows.iter().map(|&r| data.text[r].as_slice()).collect(),
        rows.iter().map(|&r| data.labels[r]).collect(),
    )
}

fn report_on(
    head: &TrainedHead,
    data: &Dataset,
    rows: &[usize],
    delta: &[f32],
    lambda: f32,
) -> Result<Option<ClassificationReport>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let (image, text, labels) = subset(data, rows);
    let (t, i) = shifted_matrices(&image, &text, delta, lambda);
    let set = Labelled::new(Inputs::new(t.view(), i.view()).map_err(head_err)?, &labels)
        .map_err(head_err)?;
    Ok(Some(head.evaluate(&set).map_err(head_err)?))
}

fn head_err(e: crate::heads::HeadError) -> QueryError {
    QueryError::Invalid(e.to_string())
}

/// Trains a head on `collection` as described by `request` (see the module docs).
pub fn train_head(collection: &Collection, request: &TrainRequest) -> Result<SavedHead> {
    let data = load_dataset(collection, request)?;
    let parts = split_rows(&data, &request.split)?;
    let delta = delta_of(&data, &parts[0]);
    let mut best: Option<(f64, f32, TrainedHead)> = None;
    let mut curve = Vec::new();
    for &lambda in &request.lambdas {
        let head = train_one(&data, &parts, &delta, lambda, request)?;
        let val = report_on(&head, &data, &parts[1], &delta, lambda)?.map_or(0.0, |r| r.macro_f1);
        let test = report_on(&head, &data, &parts[2], &delta, lambda)?;
        curve.push(LambdaResult {
            lambda,
            val_macro_f1: val,
            test_macro_f1: test.as_ref().map(|r| r.macro_f1),
            test_accuracy: test.as_ref().map(|r| r.accuracy),
        });
        if best.as_ref().is_none_or(|(score, _, _)| val > *score) {
            best = Some((val, lambda, head));
        }
    }
    let (val_macro_f1, lambda, head) =
        best.ok_or_else(|| QueryError::Invalid("no λ to try".into()))?;
    let test_report = report_on(&head, &data, &parts[2], &delta, lambda)?;
    let meta = describe(
        &data,
        &parts,
        request,
        &head,
        delta,
        lambda,
        val_macro_f1,
        test_report.as_ref(),
    );
    Ok(SavedHead {
        meta,
        head,
        curve,
        test_report,
    })
}

fn train_one(
    data: &Dataset,
    parts: &[Vec<usize>; 3],
    delta: &[f32],
    lambda: f32,
    request: &TrainRequest,
) -> Result<TrainedHead> {
    let (tr_image, tr_text, tr_labels) = subset(data, &parts[0]);
    let (va_image, va_text, va_labels) = subset(data, &parts[1]);
    let (tt, ti) = shifted_matrices(&tr_image, &tr_text, delta, lambda);
    let (vt, vi) = shifted_matrices(&va_image, &va_text, delta, lambda);
    let train_set = Labelled::new(
        Inputs::new(tt.view(), ti.view()).map_err(head_err)?,
        &tr_labels,
    )
    .map_err(head_err)?;
    let val_set = Labelled::new(
        Inputs::new(vt.view(), vi.view()).map_err(head_err)?,
        &va_labels,
    )
    .map_err(head_err)?;
    train(&request.spec, &train_set, &val_set, &request.config).map_err(head_err)
}

#[allow(clippy::too_many_arguments)]
fn describe(
    data: &Dataset,
    parts: &[Vec<usize>; 3],
    request: &TrainRequest,
    head: &TrainedHead,
    delta: Vec<f32>,
    lambda: f32,
    val_macro_f1: f64,
    test: Option<&ClassificationReport>,
) -> HeadMeta {
    let history = head.history();
    let seconds =
        history.iter().map(|e| e.train_seconds).sum::<f64>() / history.len().max(1) as f64;
    HeadMeta {
        format: HEAD_FORMAT,
        fusion: format!("{:?}", request.spec.fusion).to_lowercase(),
        image_field: request.image_field.clone(),
        text_field: request.text_field.clone(),
        label_field: request.label_field.clone(),
        classes: data.classes.clone(),
        lambda,
        delta,
        seed: request.config.seed,
        best_epoch: head.best_epoch(),
        params: head.param_count(),
        seconds_per_epoch: seconds,
        val_macro_f1,
        test: test.map(|r| TestSummary {
            accuracy: r.accuracy,
            macro_f1: r.macro_f1,
            balanced_accuracy: r.balanced_accuracy,
        }),
        fingerprint: fingerprint(&data.ids, &data.labels, &parts[0]),
        rows: [parts[0].len(), parts[1].len(), parts[2].len()],
    }
}

fn fingerprint(ids: &[String], labels: &[usize], rows: &[usize]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &row in rows {
        for byte in ids[row].bytes().chain(labels[row].to_le_bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

impl SavedHead {
    /// Stores the head inside the collection under `name` (a versioned, checksummed file).
    pub fn save(&self, collection: &Collection, name: &str) -> Result<()> {
        let meta = serde_json::to_vec(&self.meta).expect("metadata serialises");
        let mut body = (meta.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&meta);
        body.extend_from_slice(&self.head.to_bytes());
        Ok(collection.save_head(name, &body)?)
    }

    /// Loads a head saved with [`save`](Self::save).
    pub fn load(collection: &Collection, name: &str) -> Result<SavedHead> {
        let body = collection.load_head(name)?;
        let bad = |why: &str| QueryError::Invalid(format!("head `{name}`: {why}"));
        let len = body
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| bad("too short"))?;
        let meta_bytes = body
            .get(4..4 + len)
            .ok_or_else(|| bad("metadata truncated"))?;
        let meta: HeadMeta = serde_json::from_slice(meta_bytes).map_err(|e| bad(&e.to_string()))?;
        if meta.format > HEAD_FORMAT {
            return Err(bad(&format!(
                "written by head format {}, this medvec reads up to {HEAD_FORMAT}",
                meta.format
            )));
        }
        let head = TrainedHead::from_bytes(&body[4 + len..]).map_err(|e| bad(&e.to_string()))?;
        Ok(SavedHead {
            meta,
            head,
            curve: Vec::new(),
            test_report: None,
        })
    }
}

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: String,
    pub class: String,
    /// Probability of each class, in `meta.classes` order.
    pub probabilities: Vec<f32>,
    /// The record's stored label, when the head's label field is set.
    pub truth: Option<String>,
}

/// Classifies every stored record matching `filter` that has both vectors, `chunk` records at a
/// time, calling `emit` for each prediction in scan order. Memory is bounded by `chunk`.
pub fn classify(
    collection: &Collection,
    saved: &SavedHead,
    filter: Option<&Filter>,
    chunk: usize,
    mut emit: impl FnMut(Prediction) -> Result<()>,
) -> Result<usize> {
    let meta = &saved.meta;
    let mut pending: Vec<Record> = Vec::with_capacity(chunk);
    let mut count = 0;
    let mut failure: Option<QueryError> = None;
    collection
        .scan_where(filter, |record| {
            if record.vectors.contains_key(&meta.image_field)
                && record.vectors.contains_key(&meta.text_field)
            {
                pending.push(record);
            }
            if pending.len() >= chunk.max(1) {
                if let Err(e) = predict_chunk(saved, &mut pending, &mut emit) {
                    failure = Some(e);
                    return Err(medvec_store::StoreError::InvalidQuery(
                        "classification stopped".into(),
                    ));
                }
                count += chunk.max(1);
            }
            Ok(())
        })
        .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
    count += pending.len();
    predict_chunk(saved, &mut pending, &mut emit)?;
    Ok(count)
}

fn predict_chunk(
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
    let (t, i) = shifted_matrices(&image, &text, &meta.delta, meta.lambda);
    let probabilities = saved
        .head
        .predict_proba(&Inputs::new(t.view(), i.view()).map_err(head_err)?)
        .map_err(head_err)?;
    for (record, row) in pending.drain(..).zip(probabilities.rows()) {
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (k, p)| if *p > row[b] { k } else { b });
        emit(Prediction {
            class: meta.classes.get(best).cloned().unwrap_or_default(),
            probabilities: row.to_vec(),
            truth: record
                .payload
                .get(&meta.label_field)
                .map(|v| v.to_string())
                .filter(|s| !s.is_empty()),
            id: record.id,
        })?;
    }
    Ok(())
}
