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
//! A head reads any number of vector fields ([`FieldSet`]): one gives the single-modality
//! baselines, two the paper's fusion, more add modalities (each late-fusion branch is one field).
//! Fields of different dimensions (e.g. DINOv2 768 + LLaMA-2 4096) can be fused, but only the
//! shift pair is shifted, and only when its two fields share a dimension: Δ needs one space
//! (method.md §3.6).

pub use crate::classify::{classify, classify_ids, classify_vectors, MissingField, Prediction};
use crate::dataset::{load_dataset, split_column_of, split_rows, Dataset};
use crate::error::{QueryError, Result};
pub use crate::fields::FieldSet;
use crate::fields::{
    check_lambdas, check_pair_width, fit_delta, prepared_inputs, vectors_fingerprint,
};
use crate::heads::metrics::ClassificationReport;
use crate::heads::{
    train, HeadSpec, Inputs, KnnConfig, KnnHead, Labelled, SplitFractions, TrainConfig, TrainedHead,
};
use crate::pca::Pca2;
pub use crate::saved::{HeadModel, KnnMeta, SavedHead, TrainingCases};
use medvec_store::Collection;
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
    /// The vector fields the head reads, and the pair the shift moves.
    pub fields: FieldSet,
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
    /// The vector fields, in the head's input order, and the shift pair.
    #[serde(flatten)]
    pub fields: FieldSet,
    /// Formats 1 and 2 (two fields) named the pair here; [`HeadMeta::upgrade`] turns them into
    /// `fields` = [text, image] (the order of those heads' inputs) and the pair [image, text].
    /// Format 3 still writes them (the pair, or empty), because readers of formats 1 and 2
    /// need them to parse the metadata before they refuse its format by number.
    #[serde(default)]
    pub(crate) image_field: String,
    #[serde(default)]
    pub(crate) text_field: String,
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
    /// Labelled records left out because they lack one of the head's fields.
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

/// Head file formats: 1 = two-field MLP heads, 2 = two-field kNN heads (a reader of 1 refuses
/// them cleanly), 3 = heads of any number of fields (`fields` and `shift_pair` in the metadata;
/// MLP bodies in [`TrainedHead`] encoding version 2). Readers of 1 or 2 refuse 3 by its number.
pub(crate) const LEGACY_KNN_FORMAT: u32 = 2;
pub(crate) const HEAD_FORMAT: u32 = 3;

impl HeadMeta {
    /// Fills `fields` from a two-field head's `image_field` and `text_field` (formats 1 and 2).
    pub(crate) fn upgrade(&mut self) {
        if self.format <= LEGACY_KNN_FORMAT && self.fields.fields.is_empty() {
            let (image, text) = (self.image_field.clone(), self.text_field.clone());
            self.fields = FieldSet {
                fields: vec![text.clone(), image.clone()],
                shift_pair: Some([image, text]),
            };
        }
    }
}

/// How rows become a head's inputs: its fields with their pair, Δ and λ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shift<'a> {
    pub fields: &'a FieldSet,
    pub delta: &'a [f32],
    pub lambda: f32,
}

impl<'a> Shift<'a> {
    /// The shift a saved head applies.
    pub fn of(meta: &'a HeadMeta) -> Shift<'a> {
        Shift {
            fields: &meta.fields,
            delta: &meta.delta,
            lambda: meta.lambda,
        }
    }

    /// The head's input matrices for `columns` (one list of rows per field).
    pub fn inputs(&self, columns: &[Vec<&[f32]>]) -> Vec<Array2<f32>> {
        prepared_inputs(
            columns,
            self.fields.shift_indices(),
            self.delta,
            self.lambda,
        )
    }
}

fn inputs_of(matrices: &[Array2<f32>]) -> Result<Inputs<'_>> {
    Inputs::from_fields(matrices.iter().map(|m| m.view()).collect()).map_err(head_err)
}

/// Evaluates `model` on `rows` under the shift; `None` when there are no rows.
fn report_on(
    model: &HeadModel,
    data: &Dataset,
    rows: &[usize],
    shift: Shift<'_>,
) -> Result<Option<ClassificationReport>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let (columns, labels) = data.subset(rows);
    let matrices = shift.inputs(&columns);
    let predicted = model.predict(&inputs_of(&matrices)?).map_err(head_err)?;
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
/// labelled records with every field, split as `request.split` says), each in scan order.
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
/// folds) of one label, set of fields and split or group column share them.
pub struct TrainingData {
    data: Dataset,
    /// (label, fields, split or group column) it was loaded for.
    key: [Option<String>; 3],
}

impl TrainingData {
    /// Reads the labelled records with every field of `request` from `collection`.
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

fn data_key(request: &TrainRequest) -> [Option<String>; 3] {
    [
        Some(request.label_field.clone()),
        Some(request.fields.fields.join("\u{0}")),
        split_column_of(&request.split).map(str::to_string),
    ]
}

/// [`train_head_with`] on rows already loaded for the same label, fields and split column.
pub fn train_head_on(
    data: &TrainingData,
    request: &TrainRequest,
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<SavedHead> {
    let fit = |data: &Dataset, parts: &[Vec<usize>; 3], shift: Shift<'_>| {
        train_one(data, parts, shift, request).map(HeadModel::Net)
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
/// use medvec_query::training::{train_knn_head, FieldSet, SavedHead, SplitSource, TrainRequest};
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
///     spec: HeadSpec::early(), label_field: "y".into(), fields: FieldSet::pair("image", "text"),
///     split: SplitSource::Fractions(Default::default(), 0),
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
    let fit = |data: &Dataset, parts: &[Vec<usize>; 3], shift: Shift<'_>| {
        fit_knn(data, &parts[0], shift, knn).map(HeadModel::Knn)
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
    fit: impl Fn(&Dataset, &[Vec<usize>; 3], Shift<'_>) -> Result<HeadModel>,
) -> Result<SavedHead> {
    if !loaded.serves(request) {
        return Err(QueryError::Invalid(
            "training rows were loaded for another label, set of fields or split column".into(),
        ));
    }
    let data = &loaded.data;
    check_lambdas(&request.fields, &data.dims(), &request.lambdas)?;
    let parts = split_rows(data, &request.split)?;
    let delta = fit_delta(&data.columns, request.fields.shift_indices(), &parts[0]);
    let mut best: Option<(f64, f32, HeadModel)> = None;
    let mut curve = Vec::new();
    for (index, &lambda) in request.lambdas.iter().enumerate() {
        progress(LambdaProgress {
            index,
            total: request.lambdas.len(),
            lambda,
        });
        let shift = Shift {
            fields: &request.fields,
            delta: &delta,
            lambda,
        };
        let model = fit(data, &parts, shift)?;
        let val = report_on(&model, data, &parts[1], shift)?.map_or(0.0, |r| r.macro_f1);
        let test = report_on(&model, data, &parts[2], shift)?;
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
    let shift = Shift {
        fields: &request.fields,
        delta: &delta,
        lambda,
    };
    let test_report = report_on(&model, data, &parts[2], shift)?;
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
    shift: Shift<'_>,
    request: &TrainRequest,
) -> Result<TrainedHead> {
    let (train_columns, train_labels) = data.subset(&parts[0]);
    let (val_columns, val_labels) = data.subset(&parts[1]);
    let (train_inputs, val_inputs) = (shift.inputs(&train_columns), shift.inputs(&val_columns));
    let train_set = Labelled::new(inputs_of(&train_inputs)?, &train_labels).map_err(head_err)?;
    let val_set = Labelled::new(inputs_of(&val_inputs)?, &val_labels).map_err(head_err)?;
    train(&request.spec, &train_set, &val_set, &request.config).map_err(head_err)
}

/// A kNN over the shifted training rows; every class must occur there so that the head's
/// probability columns line up with the collection's classes.
fn fit_knn(data: &Dataset, rows: &[usize], shift: Shift<'_>, knn: KnnConfig) -> Result<KnnHead> {
    let (columns, labels) = data.subset(rows);
    if let Some(missing) = (0..data.classes.len()).find(|c| !labels.contains(c)) {
        return Err(QueryError::Invalid(format!(
            "class `{}` has no training rows; the kNN head needs every class",
            data.classes[missing]
        )));
    }
    build_knn(&columns, &labels, shift, knn)
}

/// Shifts the training rows and fits the kNN on them (also used when a saved head is loaded).
pub(crate) fn build_knn(
    columns: &[Vec<&[f32]>],
    labels: &[usize],
    shift: Shift<'_>,
    knn: KnnConfig,
) -> Result<KnnHead> {
    let matrices = shift.inputs(columns);
    let set = Labelled::new(inputs_of(&matrices)?, labels).map_err(head_err)?;
    KnnHead::fit(&set, knn).map_err(head_err)
}

/// The training ids, labels and a fingerprint of their raw vectors, kept by a saved kNN head.
fn training_cases(data: &Dataset, rows: &[usize]) -> TrainingCases {
    let (columns, labels) = data.subset(rows);
    TrainingCases {
        ids: rows.iter().map(|&r| data.ids[r].clone()).collect(),
        labels,
        vectors: vectors_fingerprint(&columns),
    }
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
        format: HEAD_FORMAT,
        fusion: chosen.fusion.to_string(),
        fields: request.fields.clone(),
        image_field: request.fields.shift_pair.clone().unwrap_or_default()[0].clone(),
        text_field: request.fields.shift_pair.clone().unwrap_or_default()[1].clone(),
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

/// The shift pair's two fields in the PCA-2 plane, before and after a shift (the paper's Figures 2–3).
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
/// use medvec_query::training::{shift_scatter, FieldSet, SplitSource, TrainRequest};
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
///     spec: HeadSpec::early(), label_field: "y".into(), fields: FieldSet::pair("image", "text"),
///     split: SplitSource::Fractions(Default::default(), 0),
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
    let dims = data.dims();
    let (a, b) = request.fields.shift_indices().ok_or_else(|| {
        QueryError::Invalid(
            "the scatter plot shows a shift: name the pair (--shift-pair A,B)".into(),
        )
    })?;
    check_pair_width(&request.fields, &dims, (a, b))?;
    let parts = split_rows(&data, &request.split)?;
    let delta = fit_delta(&data.columns, Some((a, b)), &parts[0]);
    let (columns, _) = data.subset(&parts[0]);
    let shift = |lambda| {
        let pair = vec![columns[a].clone(), columns[b].clone()];
        let mut m = prepared_inputs(&pair, Some((0, 1)), &delta, lambda).into_iter();
        (m.next().expect("two fields"), m.next().expect("two fields"))
    };
    let (i0, t0) = shift(0.0);
    let stacked: Vec<&[f32]> = i0
        .rows()
        .into_iter()
        .chain(t0.rows())
        .map(|r| r.to_slice().expect("standard layout"))
        .collect();
    let pca = Pca2::fit(&stacked)?;
    let stride = parts[0].len().div_ceil(max_points.max(1)).max(1);
    let sample: Vec<usize> = (0..parts[0].len()).step_by(stride).collect();
    let (i1, t1) = shift(lambda);
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
