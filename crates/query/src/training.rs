//! Fusion heads trained on, saved in, and applied to a collection.
//!
//! [`train_head`] reads the labelled records, splits them (an existing split column or a seeded
//! stratified split), fits Δ on the **training** rows only, trains one head per candidate λ,
//! picks λ and the epoch on **validation** macro-F1, reports on test, and returns a
//! [`SavedHead`] that [`SavedHead::save`] stores inside the collection. [`train_knn_head`] does
//! the same for a kNN head (nothing to fit but λ, chosen on validation).
//! [`classify`] streams predictions for stored records with bounded
//! memory; [`classify_vectors`] classifies vectors that are
//! not in the store with the same normalisation and shift.
//!
//! Fields of different dimensions (e.g. DINOv2 768 + LLaMA-2 4096) can be fused, but only
//! unshifted (λ = 0): the shift needs Δ in one space (method.md §3.6).

pub use crate::classify::{classify, classify_vectors, MissingField, Prediction};
use crate::error::{QueryError, Result};
use crate::heads::metrics::ClassificationReport;
use crate::heads::{
    assign_parts, stratified_group_split, stratified_split, train, HeadSpec, Inputs, KnnConfig,
    KnnHead, Labelled, SplitFractions, TrainConfig, TrainedHead,
};
use crate::pca::Pca2;
pub use crate::saved::{HeadModel, KnnMeta, SavedHead, TrainingCases};
use medvec_store::{Collection, Record};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Where the train / validation / test split comes from.
#[derive(Debug, Clone)]
pub enum SplitSource {
    /// A payload column holding `train`, `val` (or `validation`) and `test`.
    Column(String),
    /// A seeded stratified split with these fractions.
    Fractions(SplitFractions, u64),
    /// A seeded stratified split with these fractions that keeps every group (the rows sharing
    /// a value of payload column `column`: a lesion, a patient) in one part. A row without a
    /// value is a group of its own.
    Grouped {
        column: String,
        fractions: SplitFractions,
        seed: u64,
    },
    /// Fold `fold` of a seeded `folds`-fold cross-validation: that fold is the test part, and
    /// the other folds are split into train and a `val` share for choosing λ and the epoch.
    /// Folds keep groups (rows sharing a value of `group_column`) whole when it is set.
    Fold {
        fold: usize,
        folds: usize,
        val: f64,
        seed: u64,
        group_column: Option<String>,
    },
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
    /// Size of the weights as saved (0 for kNN heads, which keep only their cases' ids).
    #[serde(default)]
    pub model_bytes: usize,
    pub val_macro_f1: f64,
    pub test: Option<TestSummary>,
    /// FNV-1a over the training ids and labels, to tell which data a head saw.
    pub fingerprint: String,
    pub rows: [usize; 3],
    /// Labelled records left out because they lack one of the two fields.
    #[serde(default)]
    pub missing_field_rows: usize,
    /// Set for kNN heads (`fusion` = `knn`): the settings; the training cases are kept as ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn: Option<KnnMeta>,
    /// A two-class head's decision threshold, chosen on validation (`train --threshold`);
    /// without one, the most probable class wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<crate::threshold::DecisionThreshold>,
}

/// Test metrics kept with a head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestSummary {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub balanced_accuracy: f64,
    /// Inference speed on the test split (shift, forward pass, argmax), rows per second.
    #[serde(default)]
    pub rows_per_second: f64,
}

/// One λ tried during training or a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaResult {
    pub lambda: f32,
    pub val_macro_f1: f64,
    pub test_macro_f1: Option<f64>,
    pub test_accuracy: Option<f64>,
}

/// Head file format: 1 = MLP heads, 2 = kNN heads (a reader of 1 refuses them cleanly).
pub(crate) const HEAD_FORMAT: u32 = 1;
pub(crate) const KNN_HEAD_FORMAT: u32 = 2;

/// Labelled records with both modalities, in scan order.
struct Dataset {
    ids: Vec<String>,
    image: Vec<Vec<f32>>,
    text: Vec<Vec<f32>>,
    labels: Vec<usize>,
    classes: Vec<String>,
    split_values: Vec<String>,
    /// Labelled records without one of the fields (left out).
    missing_field_rows: usize,
}

/// The column read per row: the split itself, or the group of a grouped split.
fn split_column_of(split: &SplitSource) -> Option<&str> {
    match split {
        SplitSource::Column(c)
        | SplitSource::Grouped { column: c, .. }
        | SplitSource::Fold {
            group_column: Some(c),
            ..
        } => Some(c),
        SplitSource::Fractions(..) | SplitSource::Fold { .. } => None,
    }
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
    let split_column = split_column_of(&request.split);
    if let Some(c) = split_column.filter(|c| schema.payload_index(c).is_none()) {
        return Err(QueryError::Invalid(format!(
            "unknown split or group field `{c}`"
        )));
    }
    let split_column = split_column.map(str::to_string);
    let mut raw: Vec<(Record, String)> = Vec::new();
    let mut missing_field_rows = 0;
    collection.scan(|record| {
        let label = record
            .payload
            .get(&request.label_field)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let both = record.vectors.contains_key(&request.image_field)
            && record.vectors.contains_key(&request.text_field);
        match (label.is_empty(), both) {
            (false, true) => raw.push((record, label)),
            (false, false) => missing_field_rows += 1,
            (true, _) => {}
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
        missing_field_rows,
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
        SplitSource::Grouped {
            fractions, seed, ..
        } => {
            let groups = group_numbers(data);
            let s = stratified_group_split(&data.labels, &groups, *fractions, *seed)
                .map_err(|e| QueryError::Invalid(e.to_string()))?;
            Ok([s.train, s.val, s.test])
        }
        SplitSource::Fold {
            fold,
            folds,
            val,
            seed,
            group_column,
        } => fold_rows(data, *fold, *folds, *val, *seed, group_column.is_some()),
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

/// Fold `fold` of `folds` as the test part; the rest split into train and `val` (a share of
/// the rest), both stratified, groups whole when `grouped`.
fn fold_rows(
    data: &Dataset,
    fold: usize,
    folds: usize,
    val: f64,
    seed: u64,
    grouped: bool,
) -> Result<[Vec<usize>; 3]> {
    if folds < 2 || fold >= folds || !(0.0..1.0).contains(&val) {
        return Err(QueryError::Invalid(format!(
            "cv: fold {fold} of {folds} with a validation share {val}; need 2+ folds and a share in [0, 1)"
        )));
    }
    let groups = if grouped {
        group_numbers(data)
    } else {
        (0..data.labels.len()).collect()
    };
    let shares = vec![1.0 / folds as f64; folds];
    let parts = assign_parts(&data.labels, &groups, &shares, seed);
    let test = parts[fold].clone();
    let rest: Vec<usize> = (0..folds)
        .filter(|&f| f != fold)
        .flat_map(|f| parts[f].iter().copied())
        .collect();
    let rest_labels: Vec<usize> = rest.iter().map(|&r| data.labels[r]).collect();
    let rest_groups: Vec<usize> = rest.iter().map(|&r| groups[r]).collect();
    // A different stream from the folds', so the validation rows are not the folds' order.
    let inner = assign_parts(&rest_labels, &rest_groups, &[1.0 - val, val], seed ^ 0x5eed);
    let pick = |rows: &[usize]| -> Vec<usize> {
        let mut out: Vec<usize> = rows.iter().map(|&i| rest[i]).collect();
        out.sort_unstable();
        out
    };
    Ok([pick(&inner[0]), pick(&inner[1]), test])
}

/// Each row's group number: rows with the same group value share one; a row without a value
/// is alone in its group.
fn group_numbers(data: &Dataset) -> Vec<usize> {
    let mut numbers: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut next = 0;
    data.split_values
        .iter()
        .map(|value| {
            let key = if value.is_empty() {
                None
            } else {
                Some(value.as_str())
            };
            let number = match key {
                Some(key) => *numbers.entry(key).or_insert(next),
                None => next,
            };
            if number == next {
                next += 1;
            }
            number
        })
        .collect()
}

/// Δ = mean(image) − mean(text) over the unit vectors of `rows`; empty when the two fields
/// differ in dimension (then only λ = 0 is allowed, see [`check_lambdas`]).
fn delta_of(data: &Dataset, rows: &[usize]) -> Vec<f32> {
    let dim = data.image[0].len();
    if data.text[0].len() != dim {
        return Vec::new();
    }
    let mut delta = vec![0f64; dim];
    for &row in rows {
        let (i, t) = (unit(&data.image[row]), unit(&data.text[row]));
        for j in 0..dim {
            delta[j] += (i[j] - t[j]) / rows.len() as f64;
        }
    }
    delta.into_iter().map(|x| x as f32).collect()
}

/// A non-zero λ needs both fields in one space; refuse rather than silently truncate.
fn check_lambdas(data: &Dataset, request: &TrainRequest) -> Result<()> {
    let (image_dim, text_dim) = (data.image[0].len(), data.text[0].len());
    if image_dim != text_dim && request.lambdas.iter().any(|l| *l != 0.0) {
        return Err(QueryError::DimensionMismatch {
            a: request.image_field.clone(),
            a_dim: image_dim,
            b: request.text_field.clone(),
            b_dim: text_dim,
        });
    }
    if request.lambdas.iter().any(|l| !l.is_finite()) {
        return Err(QueryError::Invalid("λ must be finite".into()));
    }
    Ok(())
}

fn unit(v: &[f32]) -> Vec<f64> {
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|x| if n > 0.0 { f64::from(*x) / n } else { 0.0 })
        .collect()
}

/// Shifted (text, image) matrices of `rows`: t' = normalize(t̂ + λ/2·Δ), v' = normalize(v̂ − λ/2·Δ).
/// With λ = 0 this is just L2 normalisation, as the paper's code does first. An empty Δ (fields
/// of different dimensions) stands for a zero vector, so the arithmetic — and therefore every
/// bit of the result — is the same as for λ = 0 with a real Δ.
pub(crate) fn shifted_matrices(
    image: &[&[f32]],
    text: &[&[f32]],
    delta: &[f32],
    lambda: f32,
) -> (Array2<f32>, Array2<f32>) {
    let build = |rows: &[&[f32]], coefficient: f32| {
        let dim = rows.first().map_or(0, |r| r.len());
        let zeros;
        let delta = if delta.len() == dim {
            delta
        } else {
            zeros = vec![0.0; dim];
            &zeros
        };
        let alignment = crate::Alignment {
            a_field: String::new(),
            b_field: String::new(),
            delta: delta.to_vec(),
        };
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|r| alignment.shift_b(r, coefficient))
            .collect();
        Array2::from_shape_vec((rows.len(), dim), flat).expect("rows share a dimension")
    };
    // shift_b moves by +λ/2·Δ, so the image side passes −λ.
    (build(text, lambda), build(image, -lambda))
}

fn subset<'a>(data: &'a Dataset, rows: &[usize]) -> (Vec<&'a [f32]>, Vec<&'a [f32]>, Vec<usize>) {
    (
        rows.iter().map(|&r| data.image[r].as_slice()).collect(),
        rows.iter().map(|&r| data.text[r].as_slice()).collect(),
        rows.iter().map(|&r| data.labels[r]).collect(),
    )
}

/// Evaluates `model` on `rows` under the shift; `None` when there are no rows.
fn report_on(
    model: &HeadModel,
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
    let inputs = Inputs::new(t.view(), i.view()).map_err(head_err)?;
    let predicted = model.predict(&inputs).map_err(head_err)?;
    Ok(Some(
        ClassificationReport::new(&labels, &predicted).map_err(head_err)?,
    ))
}

pub(crate) fn head_err(e: crate::heads::HeadError) -> QueryError {
    QueryError::Invalid(e.to_string())
}

/// Progress of a λ loop: called before λ number `index` (0-based) of `total` is trained.
#[derive(Debug, Clone, Copy)]
pub struct LambdaProgress {
    pub index: usize,
    pub total: usize,
    pub lambda: f32,
}

/// The ids of the train, validation and test parts that training with `request` uses (the
/// labelled records with both fields, split as `request.split` says), each in scan order.
pub fn split_ids(collection: &Collection, request: &TrainRequest) -> Result<[Vec<String>; 3]> {
    let data = load_dataset(collection, request)?;
    let parts = split_rows(&data, &request.split)?;
    Ok(parts.map(|rows| rows.into_iter().map(|r| data.ids[r].clone()).collect()))
}

/// Trains a head on `collection` as described by `request` (see the module docs).
pub fn train_head(collection: &Collection, request: &TrainRequest) -> Result<SavedHead> {
    train_head_with(collection, request, &mut |_| {})
}

/// [`train_head`], calling `progress` before each λ is trained (for a progress bar); see
/// [`train_knn_head`] for an example of the callback.
pub fn train_head_with(
    collection: &Collection,
    request: &TrainRequest,
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<SavedHead> {
    train_head_on(&TrainingData::load(collection, request)?, request, progress)
}

/// The labelled rows a training reads, loaded once so that repeated trainings (over seeds or
/// folds) of one label, pair of fields and split or group column share them.
pub struct TrainingData {
    data: Dataset,
    /// (label, image field, text field, split or group column) it was loaded for.
    key: [Option<String>; 4],
}

impl TrainingData {
    /// Reads the labelled records with both fields of `request` from `collection`.
    pub fn load(collection: &Collection, request: &TrainRequest) -> Result<TrainingData> {
        Ok(TrainingData {
            data: load_dataset(collection, request)?,
            key: data_key(request),
        })
    }

    /// Whether these rows are the ones `request` would load.
    pub fn serves(&self, request: &TrainRequest) -> bool {
        self.key == data_key(request)
    }
}

fn data_key(request: &TrainRequest) -> [Option<String>; 4] {
    [
        Some(request.label_field.clone()),
        Some(request.image_field.clone()),
        Some(request.text_field.clone()),
        split_column_of(&request.split).map(str::to_string),
    ]
}

/// [`train_head_with`] on rows already loaded for the same label, fields and split column.
pub fn train_head_on(
    data: &TrainingData,
    request: &TrainRequest,
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<SavedHead> {
    let fit = |data: &Dataset, parts: &[Vec<usize>; 3], delta: &[f32], lambda: f32| {
        train_one(data, parts, delta, lambda, request).map(HeadModel::Net)
    };
    let fusion = format!("{:?}", request.spec.fusion).to_lowercase();
    choose_lambda(data, request, &fusion, None, progress, fit)
}

/// Builds a kNN head (`knn`) over the training split, choosing λ among `request.lambdas` on
/// validation macro-F1 exactly as [`train_head`] does. `request.spec` and the optimiser
/// settings of `request.config` do not apply (a kNN has no weights).
///
/// The saved head keeps the training ids and labels, not the vectors: they are read back
/// from the collection when the head is loaded (see [`SavedHead::load`]).
///
/// ```
/// use medvec_query::heads::{HeadSpec, KnnConfig, TrainConfig};
/// use medvec_query::training::{train_knn_head, SavedHead, SplitSource, TrainRequest};
/// use medvec_store::*;
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::create(dir.path().join("s")).unwrap();
/// let schema = Schema {
///     vectors: vec![VectorField::parse("image:2:cosine").unwrap(), VectorField::parse("text:2:cosine").unwrap()],
///     payload: vec![PayloadField::parse("y:string").unwrap()],
/// };
/// let cases = store.create_collection("cases", schema).unwrap();
/// let records: Vec<Record> = (0..40)
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
///     lambdas: vec![0.0, 0.5], config: TrainConfig::default(),
/// };
/// let knn = KnnConfig { k: 3, ..KnnConfig::default() };
/// let head = train_knn_head(&cases, &request, knn, &mut |p| eprintln!("λ {}", p.lambda)).unwrap();
/// assert_eq!(head.meta.test.as_ref().unwrap().accuracy, 1.0);
/// head.save(&cases, "y-knn").unwrap();
/// assert_eq!(SavedHead::load_meta(&cases, "y-knn").unwrap().knn.unwrap().k, 3);
/// cases.delete(&[head.training.as_ref().unwrap().ids[0].clone()]).unwrap();
/// assert!(SavedHead::load(&cases, "y-knn").is_err()); // a training case is gone: retrain
/// ```
pub fn train_knn_head(
    collection: &Collection,
    request: &TrainRequest,
    knn: KnnConfig,
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<SavedHead> {
    let data = TrainingData::load(collection, request)?;
    train_knn_head_on(&data, request, knn, progress)
}

/// [`train_knn_head`] on rows already loaded for the same label, fields and split column.
pub fn train_knn_head_on(
    data: &TrainingData,
    request: &TrainRequest,
    knn: KnnConfig,
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<SavedHead> {
    let fit = |data: &Dataset, parts: &[Vec<usize>; 3], delta: &[f32], lambda: f32| {
        fit_knn(data, &parts[0], delta, lambda, knn).map(HeadModel::Knn)
    };
    choose_lambda(data, request, "knn", Some(knn), progress, fit)
}

/// The shared λ loop: fit per λ, score on validation and test, keep the best on validation.
fn choose_lambda(
    loaded: &TrainingData,
    request: &TrainRequest,
    fusion: &str,
    knn: Option<KnnConfig>,
    progress: &mut dyn FnMut(LambdaProgress),
    fit: impl Fn(&Dataset, &[Vec<usize>; 3], &[f32], f32) -> Result<HeadModel>,
) -> Result<SavedHead> {
    if !loaded.serves(request) {
        return Err(QueryError::Invalid(
            "training rows were loaded for another label, field pair or split column".into(),
        ));
    }
    let data = &loaded.data;
    check_lambdas(data, request)?;
    let parts = split_rows(data, &request.split)?;
    let delta = delta_of(data, &parts[0]);
    let mut best: Option<(f64, f32, HeadModel)> = None;
    let mut curve = Vec::new();
    for (index, &lambda) in request.lambdas.iter().enumerate() {
        progress(LambdaProgress {
            index,
            total: request.lambdas.len(),
            lambda,
        });
        let model = fit(data, &parts, &delta, lambda)?;
        let val = report_on(&model, data, &parts[1], &delta, lambda)?.map_or(0.0, |r| r.macro_f1);
        let test = report_on(&model, data, &parts[2], &delta, lambda)?;
        curve.push(LambdaResult {
            lambda,
            val_macro_f1: val,
            test_macro_f1: test.as_ref().map(|r| r.macro_f1),
            test_accuracy: test.as_ref().map(|r| r.accuracy),
        });
        if best.as_ref().is_none_or(|(score, _, _)| val > *score) {
            best = Some((val, lambda, model));
        }
    }
    let (val_macro_f1, lambda, model) =
        best.ok_or_else(|| QueryError::Invalid("no λ to try".into()))?;
    let started = std::time::Instant::now();
    let test_report = report_on(&model, data, &parts[2], &delta, lambda)?;
    let test_rows_per_second = parts[2].len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let chosen = Chosen {
        fusion,
        delta,
        lambda,
        val_macro_f1,
        knn,
    };
    let mut meta = describe(data, &parts, request, &model, chosen, test_report.as_ref());
    if let Some(test) = meta.test.as_mut() {
        test.rows_per_second = test_rows_per_second;
    }
    let training = knn.map(|_| training_cases(data, &parts[0]));
    Ok(SavedHead {
        meta,
        model,
        curve,
        test_report,
        training,
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

/// A kNN over the shifted training rows; every class must occur there so that the head's
/// probability columns line up with the collection's classes.
fn fit_knn(
    data: &Dataset,
    rows: &[usize],
    delta: &[f32],
    lambda: f32,
    knn: KnnConfig,
) -> Result<KnnHead> {
    let (image, text, labels) = subset(data, rows);
    if let Some(missing) = (0..data.classes.len()).find(|c| !labels.contains(c)) {
        return Err(QueryError::Invalid(format!(
            "class `{}` has no training rows; the kNN head needs every class",
            data.classes[missing]
        )));
    }
    build_knn(&image, &text, &labels, delta, lambda, knn)
}

/// Shifts the training rows and fits the kNN on them (also used when a saved head is loaded).
pub(crate) fn build_knn(
    image: &[&[f32]],
    text: &[&[f32]],
    labels: &[usize],
    delta: &[f32],
    lambda: f32,
    knn: KnnConfig,
) -> Result<KnnHead> {
    let (t, i) = shifted_matrices(image, text, delta, lambda);
    let set = Labelled::new(Inputs::new(t.view(), i.view()).map_err(head_err)?, labels)
        .map_err(head_err)?;
    KnnHead::fit(&set, knn).map_err(head_err)
}

/// The training ids, labels and a fingerprint of their raw vectors, kept by a saved kNN head.
fn training_cases(data: &Dataset, rows: &[usize]) -> TrainingCases {
    let (image, text, labels) = subset(data, rows);
    TrainingCases {
        ids: rows.iter().map(|&r| data.ids[r].clone()).collect(),
        labels,
        vectors: vectors_fingerprint(&image, &text),
    }
}

/// FNV-1a over the raw f32 bits of every (image, text) pair, in order.
pub(crate) fn vectors_fingerprint(image: &[&[f32]], text: &[&[f32]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, t) in image.iter().zip(text) {
        for byte in i.iter().chain(t.iter()).flat_map(|x| x.to_le_bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// What the λ loop chose, for [`describe`].
struct Chosen<'a> {
    fusion: &'a str,
    delta: Vec<f32>,
    lambda: f32,
    val_macro_f1: f64,
    knn: Option<KnnConfig>,
}

fn describe(
    data: &Dataset,
    parts: &[Vec<usize>; 3],
    request: &TrainRequest,
    model: &HeadModel,
    chosen: Chosen<'_>,
    test: Option<&ClassificationReport>,
) -> HeadMeta {
    let (best_epoch, params, seconds) = match model {
        HeadModel::Net(head) => {
            let history = head.history();
            let seconds =
                history.iter().map(|e| e.train_seconds).sum::<f64>() / history.len().max(1) as f64;
            (head.best_epoch(), head.param_count(), seconds)
        }
        HeadModel::Knn(_) => (0, 0, 0.0),
    };
    HeadMeta {
        format: if chosen.knn.is_some() {
            KNN_HEAD_FORMAT
        } else {
            HEAD_FORMAT
        },
        fusion: chosen.fusion.to_string(),
        image_field: request.image_field.clone(),
        text_field: request.text_field.clone(),
        label_field: request.label_field.clone(),
        classes: data.classes.clone(),
        lambda: chosen.lambda,
        delta: chosen.delta,
        seed: request.config.seed,
        best_epoch,
        params,
        seconds_per_epoch: seconds,
        val_macro_f1: chosen.val_macro_f1,
        test: test.map(|r| TestSummary {
            accuracy: r.accuracy,
            macro_f1: r.macro_f1,
            balanced_accuracy: r.balanced_accuracy,
            rows_per_second: 0.0,
        }),
        model_bytes: match model {
            HeadModel::Net(head) => head.to_bytes().len(),
            HeadModel::Knn(_) => 0,
        },
        fingerprint: fingerprint(&data.ids, &data.labels, &parts[0]),
        rows: [parts[0].len(), parts[1].len(), parts[2].len()],
        missing_field_rows: data.missing_field_rows,
        knn: chosen.knn.map(|config| KnnMeta {
            k: config.k,
            weighting: config.weighting,
            view: config.view,
        }),
        threshold: None,
    }
}

/// FNV-1a over the training ids and labels.
pub(crate) fn fingerprint(ids: &[String], labels: &[usize], rows: &[usize]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &row in rows {
        for byte in ids[row].bytes().chain(labels[row].to_le_bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Both modalities in the PCA-2 plane, before and after a shift (the paper's Figures 2–3).
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftScatter {
    /// λ of the "after" panel.
    pub lambda: f32,
    /// Image and text points without the shift (unit vectors).
    pub before: [Vec<[f64; 2]>; 2],
    /// The same rows' image and text points after the shift.
    pub after: [Vec<[f64; 2]>; 2],
}

/// Projects the training rows (evenly strided to at most `max_points` per modality) before and
/// after the shift by `lambda`, with Δ fitted on the training split as in [`train_head`].
///
/// The PCA is fitted once, on the **unshifted** unit vectors of both modalities of all training
/// rows, stacked; both panels use that same projection, so the panels are comparable and the
/// shift's movement is what differs. Needs fields of one dimension (the shift does too).
///
/// ```
/// use medvec_query::heads::{HeadSpec, TrainConfig};
/// use medvec_query::training::{shift_scatter, SplitSource, TrainRequest};
/// use medvec_store::*;
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::create(dir.path().join("s")).unwrap();
/// let schema = Schema {
///     vectors: vec![VectorField::parse("image:3:cosine").unwrap(), VectorField::parse("text:3:cosine").unwrap()],
///     payload: vec![PayloadField::parse("y:string").unwrap()],
/// };
/// let cases = store.create_collection("cases", schema).unwrap();
/// let records: Vec<Record> = (0..40)
///     .map(|i| {
///         let w = (i % 5) as f32 * 0.1;
///         Record::new(format!("r{i}")).with_vector("image", vec![1.0, w, 0.2])
///             .with_vector("text", vec![0.1, w, 1.0])
///             .with_value("y", Value::String(if i % 2 == 0 { "a" } else { "b" }.into()))
///     })
///     .collect();
/// cases.upsert(&records).unwrap();
/// let request = TrainRequest {
///     spec: HeadSpec::early(), label_field: "y".into(), image_field: "image".into(),
///     text_field: "text".into(), split: SplitSource::Fractions(Default::default(), 0),
///     lambdas: vec![], config: TrainConfig::default(),
/// };
/// let scatter = shift_scatter(&cases, &request, 1.0, 10).unwrap();
/// assert_eq!(scatter.before[0].len(), scatter.after[1].len());
/// // λ = 1 moves both centroids to the midpoint: the modalities' mean PC-1 gap shrinks.
/// let gap = |s: &[Vec<[f64; 2]>; 2]| {
///     let mean = |v: &Vec<[f64; 2]>| v.iter().map(|p| p[0]).sum::<f64>() / v.len() as f64;
///     (mean(&s[0]) - mean(&s[1])).abs()
/// };
/// assert!(gap(&scatter.after) < 0.25 * gap(&scatter.before));
/// let svg = medvec_query::plot::scatter_svg(&scatter, "image", "text").unwrap();
/// assert!(svg.contains("<circle"));
/// ```
pub fn shift_scatter(
    collection: &Collection,
    request: &TrainRequest,
    lambda: f32,
    max_points: usize,
) -> Result<ShiftScatter> {
    let data = load_dataset(collection, request)?;
    let (image_dim, text_dim) = (data.image[0].len(), data.text[0].len());
    if image_dim != text_dim {
        return Err(QueryError::DimensionMismatch {
            a: request.image_field.clone(),
            a_dim: image_dim,
            b: request.text_field.clone(),
            b_dim: text_dim,
        });
    }
    let parts = split_rows(&data, &request.split)?;
    let delta = delta_of(&data, &parts[0]);
    let (image, text, _) = subset(&data, &parts[0]);
    let (t0, i0) = shifted_matrices(&image, &text, &delta, 0.0);
    let stacked: Vec<&[f32]> = i0
        .rows()
        .into_iter()
        .chain(t0.rows())
        .map(|r| r.to_slice().expect("standard layout"))
        .collect();
    let pca = Pca2::fit(&stacked)?;
    let stride = parts[0].len().div_ceil(max_points.max(1)).max(1);
    let sample: Vec<usize> = (0..parts[0].len()).step_by(stride).collect();
    let (t1, i1) = shifted_matrices(&image, &text, &delta, lambda);
    let project = |m: &Array2<f32>| -> Vec<[f64; 2]> {
        sample
            .iter()
            .map(|&r| pca.project(m.row(r).to_slice().expect("standard layout")))
            .collect()
    };
    Ok(ShiftScatter {
        lambda,
        before: [project(&i0), project(&t0)],
        after: [project(&i1), project(&t1)],
    })
}
