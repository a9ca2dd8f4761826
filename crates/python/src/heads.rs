//! Heads and the gap: `medvec gap`, `train`, `sweep`, `heads`, `classify` and `eval`, each the
//! library job the CLI runs (`medvec_query::jobs`), with the CLI's JSON shapes returned as
//! Python objects. Free functions over a collection handle (a class has one `#[pymethods]`
//! block); `medvec.Collection` gives them their Pythonic names.

use crate::collection::NativeCollection;
use crate::convert::{json_to_py, rows};
use crate::errors::{Context, Failure, Result};
use medvec_query::heads::binary::ThresholdRule;
use medvec_query::heads::{KnnConfig, KnnView, KnnWeighting, SplitFractions};
use medvec_query::jobs::{self, HeadChoice, TrainSettings};
use medvec_query::repeat::{cross_validate, repeat_training, Repeated};
use medvec_query::threshold::choose_threshold;
use medvec_query::training::{
    classify, classify_vectors, MissingField, Prediction, SavedHead, SplitSource,
};
use medvec_store::Filter;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;
use serde_json::json;

fn parse_filter(text: Option<&str>, arg: &str) -> Result<Option<Filter>> {
    text.map(Filter::parse).transpose().context(arg)
}

/// `medvec gap`: one report, and a second after the shift when `shift` is given.
#[pyfunction]
#[pyo3(signature = (collection, fields = None, filter = None, shift = None))]
pub fn gap<'py>(
    py: Python<'py>,
    collection: &NativeCollection,
    fields: Option<(String, String)>,
    filter: Option<String>,
    shift: Option<f32>,
) -> PyResult<Bound<'py, PyAny>> {
    let filter = parse_filter(filter.as_deref(), "filter")?;
    let reports = py.detach(|| {
        collection.with(|c| {
            let pair = fields.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
            let (a, b) = jobs::field_pair(c, pair)?;
            Ok(jobs::gap(c, (&a, &b), filter.as_ref(), shift)?)
        })
    })?;
    let reports: Vec<serde_json::Value> = reports.iter().map(jobs::gap_json).collect();
    json_to_py(py, &json!(reports))
}

/// The settings of `medvec train` / `sweep`, from the keyword arguments of the Python calls.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct TrainArgs {
    head: String,
    label: String,
    fields: Option<Vec<String>>,
    shift_pair: Option<(String, String)>,
    split_column: Option<String>,
    group_column: Option<String>,
    split: (f64, f64, f64),
    epochs: usize,
    dropout: f32,
    seed: u64,
    k: usize,
    knn_weighting: String,
    cv: Option<usize>,
}

impl TrainArgs {
    fn settings(&self) -> Result<TrainSettings> {
        let weighting = match self.knn_weighting.as_str() {
            "uniform" => KnnWeighting::Uniform,
            "distance" => KnnWeighting::Distance,
            other => {
                return Err(Failure::invalid(format!(
                    "knn_weighting: `{other}` is not uniform or distance"
                )))
            }
        };
        let head = match self.head.as_str() {
            "early" => HeadChoice::Early,
            "late" => HeadChoice::Late,
            "knn" => HeadChoice::Knn(KnnConfig {
                k: self.k,
                weighting,
                view: KnnView::Both,
            }),
            other => {
                return Err(Failure::invalid(format!(
                    "head: `{other}` is not early, late or knn"
                )))
            }
        };
        let (train, val, test) = self.split;
        let fractions = SplitFractions { train, val, test };
        let split = match (&self.split_column, &self.group_column) {
            (Some(_), Some(_)) => return Err(Failure::invalid(
                "split_column, group_column: a grouped split is made by medvec; give one of them",
            )),
            (Some(column), None) => SplitSource::Column(column.clone()),
            (None, Some(group)) => SplitSource::Grouped {
                column: group.clone(),
                fractions,
                seed: self.seed,
            },
            (None, None) => SplitSource::Fractions(fractions, self.seed),
        };
        Ok(TrainSettings {
            head,
            label: self.label.clone(),
            fields: self.fields.clone(),
            shift_pair: self.shift_pair.clone().map(|(a, b)| [a, b]),
            split,
            max_epochs: self.epochs,
            dropout: self.dropout,
            seed: self.seed,
        })
    }

    /// One training, or with `seeds` > 1 training repeated over the seeds (the first seed's
    /// head and the report).
    fn train(
        &self,
        collection: &NativeCollection,
        lambdas: Vec<f32>,
        seeds: usize,
    ) -> Result<(SavedHead, Option<Repeated>)> {
        let settings = self.settings()?;
        collection.with(|c| {
            let (report, head) = match (self.cv, seeds) {
                (Some(folds), _) => {
                    let (train, val, _) = self.split;
                    let share = (folds, val / (train + val));
                    let group = self.group_column.as_deref();
                    cross_validate(c, &settings, &lambdas, share, group, &mut |_| {})?
                }
                (None, 0 | 1) => return Ok((settings.train(c, lambdas, &mut |_| {})?, None)),
                (None, seeds) => repeat_training(c, &settings, &lambdas, seeds, &mut |_| {})?,
            };
            Ok((head, Some(report)))
        })
    }
}

/// `medvec train`: trains over `lambdas` (one value, or the grid `shift="auto"` stands for),
/// saves the head as `name` and returns what `medvec train --json` prints.
/// With `threshold` (`youden`, `sensitivity=X`), a two-class head's decision threshold is
/// chosen on validation as `train --threshold` does.
#[pyfunction]
#[pyo3(signature = (collection, args, lambdas, name, seeds = 1, threshold = None, positive = None))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of Collection.train
pub fn train<'py>(
    py: Python<'py>,
    collection: &NativeCollection,
    args: TrainArgs,
    lambdas: Option<Vec<f32>>,
    name: String,
    seeds: usize,
    threshold: Option<String>,
    positive: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let lambdas = lambdas.unwrap_or_else(jobs::auto_lambdas);
    let rule = threshold
        .as_deref()
        .map(ThresholdRule::parse)
        .transpose()
        .map_err(|e| Failure::invalid(format!("threshold: {e}")))?;
    if rule.is_some() && args.cv.is_some() {
        return Err(
            Failure::invalid("threshold: choose it on a validation split, not with cv").into(),
        );
    }
    let trained = py.detach(|| {
        let (mut saved, repeated) = args.train(collection, lambdas, seeds)?;
        if let Some(rule) = rule {
            let settings = args.settings()?;
            collection.with(|c| {
                Ok(choose_threshold(
                    c,
                    &mut saved,
                    &settings,
                    rule,
                    positive.as_deref(),
                )?)
            })?;
        }
        collection.with(|c| Ok(saved.save(c, &name)?))?;
        let mut out = jobs::trained_json(&name, &saved);
        out["repeated"] = json!(repeated);
        Ok::<_, Failure>(out)
    })?;
    json_to_py(py, &trained)
}

/// `medvec sweep`: one head per λ of the grid; `{"chosen_lambda", "curve"}` as `--json` prints.
#[pyfunction]
#[pyo3(signature = (collection, args, grid, seeds = 1))]
pub fn sweep<'py>(
    py: Python<'py>,
    collection: &NativeCollection,
    args: TrainArgs,
    grid: (f32, f32, f32),
    seeds: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let lambdas = jobs::lambda_grid(grid.0, grid.1, grid.2).map_err(Failure::from)?;
    let (saved, repeated) = py.detach(|| args.train(collection, lambdas, seeds))?;
    json_to_py(
        py,
        &json!({"chosen_lambda": saved.meta.lambda, "curve": saved.curve, "repeated": repeated}),
    )
}

/// The train / val / test ids training with these settings would use; with `cv`, those of
/// fold `fold`.
#[pyfunction]
#[pyo3(signature = (collection, args, fold = None))]
pub fn split(
    py: Python<'_>,
    collection: &NativeCollection,
    args: TrainArgs,
    fold: Option<usize>,
) -> PyResult<[Vec<String>; 3]> {
    let mut settings = args.settings()?;
    if let Some(folds) = args.cv {
        let (train, val, _) = args.split;
        settings.split = SplitSource::Fold {
            fold: fold.ok_or_else(|| Failure::invalid("fold: cv needs the fold to show"))?,
            folds,
            val: val / (train + val),
            seed: args.seed,
            group_column: args.group_column.clone(),
        };
    }
    Ok(py.detach(|| {
        collection.with(|c| {
            let request = settings.request(c, vec![0.0])?;
            Ok(medvec_query::training::split_ids(c, &request)?)
        })
    })?)
}

/// `medvec heads --json`: `[{"name", "meta"}]`.
#[pyfunction]
pub fn heads<'py>(py: Python<'py>, collection: &NativeCollection) -> PyResult<Bound<'py, PyAny>> {
    let listed = py.detach(|| {
        collection.with(|c| {
            c.list_heads()?
                .into_iter()
                .map(|name| {
                    let meta = SavedHead::load_meta(c, &name)?;
                    Ok(json!({"name": name, "meta": meta}))
                })
                .collect::<Result<Vec<_>>>()
        })
    })?;
    json_to_py(py, &json!(listed))
}

/// `medvec eval --json` of head `head` on the records matching `filter`.
#[pyfunction]
#[pyo3(signature = (collection, head, filter = None, seeds = None, group_column = None, seed = 0, threshold = None, missing = "error".to_string()))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of Collection.evaluate
pub fn evaluate<'py>(
    py: Python<'py>,
    collection: &NativeCollection,
    head: String,
    filter: Option<String>,
    seeds: Option<usize>,
    group_column: Option<String>,
    seed: u64,
    threshold: Option<f64>,
    missing: String,
) -> PyResult<Bound<'py, PyAny>> {
    let filter = parse_filter(filter.as_deref(), "filter")?;
    let missing = MissingField::parse(&missing).map_err(Failure::from)?;
    if let Some(t) = threshold.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(Failure::invalid(format!("threshold {t}: a probability, from 0 to 1")).into());
    }
    let report = py.detach(|| {
        collection.with(|c| {
            let saved = SavedHead::load(c, &head)?;
            let evaluation = jobs::evaluate_all(c, &saved, filter.as_ref(), threshold, missing)?;
            let mut out = evaluation.to_json(&saved.meta.classes);
            if let Some(n) = seeds {
                let group = group_column.as_deref();
                let intervals = jobs::evaluate_intervals(
                    c,
                    &saved,
                    (filter.as_ref(), missing),
                    group,
                    n,
                    seed,
                )?;
                out["intervals"] = json!(intervals);
            }
            Ok(out)
        })
    })?;
    json_to_py(py, &report)
}

/// Predictions as columns: ids, predicted classes (`None` for an error row), stored labels
/// (`None` when unknown), the probability matrix (rows × classes, float32; NaN for an error
/// row), the class names and the error of each row (`None` for a prediction).
type Columns<'py> = (
    Vec<String>,
    Vec<Option<String>>,
    Vec<Option<String>>,
    Bound<'py, PyArray2<f32>>,
    Vec<String>,
    Vec<Option<String>>,
);

fn into_columns<'py>(
    py: Python<'py>,
    predictions: Vec<Prediction>,
    classes: Vec<String>,
) -> PyResult<Columns<'py>> {
    let n = predictions.len();
    let mut probabilities = Vec::with_capacity(n * classes.len());
    let (mut ids, mut predicted, mut truth, mut errors) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for p in predictions {
        match p.error {
            Some(_) => probabilities.extend(classes.iter().map(|_| f32::NAN)),
            None => probabilities.extend_from_slice(&p.probabilities),
        }
        ids.push(p.id);
        predicted.push(p.error.is_none().then_some(p.class));
        truth.push(p.truth);
        errors.push(p.error);
    }
    let matrix = Array2::from_shape_vec((n, classes.len()), probabilities)
        .map_err(|e| Failure::invalid(format!("probabilities: {e}")))?
        .into_pyarray(py);
    Ok((ids, predicted, truth, matrix, classes, errors))
}

/// `medvec classify` of the stored records matching `filter`; `missing` (`error` or `zero`)
/// says what a record lacking one of the head's fields gets, as `--missing` does.
#[pyfunction]
#[pyo3(signature = (collection, head, filter = None, batch = 4096, missing = "error"))]
pub fn classify_stored<'py>(
    py: Python<'py>,
    collection: &NativeCollection,
    head: String,
    filter: Option<String>,
    batch: usize,
    missing: &str,
) -> PyResult<Columns<'py>> {
    let filter = parse_filter(filter.as_deref(), "filter")?;
    let missing = MissingField::parse(missing).map_err(Failure::from)?;
    let (predictions, classes) = py.detach(|| {
        collection.with(|c| {
            let saved = SavedHead::load(c, &head)?;
            let mut out = Vec::new();
            classify(c, &saved, filter.as_ref(), (batch.max(1), missing), |p| {
                out.push(p);
                Ok(())
            })?;
            Ok((out, saved.meta.classes))
        })
    })?;
    into_columns(py, predictions, classes)
}

/// A saved head loaded once (`Collection.head`), to classify many batches of new vectors
/// without reading the head again (a Spark executor keeps one per process).
#[pyclass(frozen, module = "medvec._medvec")]
pub struct NativeHead {
    saved: SavedHead,
}

/// Loads saved head `name`.
#[pyfunction]
pub fn load_head(
    py: Python<'_>,
    collection: &NativeCollection,
    name: String,
) -> PyResult<NativeHead> {
    Ok(py.detach(|| {
        collection.with(|c| {
            let saved = SavedHead::load(c, &name)?;
            Ok(NativeHead { saved })
        })
    })?)
}

#[pymethods]
impl NativeHead {
    /// The head's metadata, as `medvec heads --json` shows it.
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &json!(self.saved.meta))
    }

    /// `medvec classify --input-npy`: new vectors of each of the head's fields (in its field
    /// order), one row per id.
    fn classify<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        columns: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Columns<'py>> {
        let meta = &self.saved.meta;
        let fields = &meta.fields.fields;
        if columns.len() != fields.len() {
            return Err(Failure::invalid(format!(
                "data: {} vector columns for the head's {} fields",
                columns.len(),
                fields.len()
            ))
            .into());
        }
        let columns = fields
            .iter()
            .zip(self.saved.model.dims())
            .zip(&columns)
            .map(|((field, &dim), array)| rows(&format!("vectors[{field:?}]"), array, field, dim))
            .collect::<Result<Vec<_>>>()?;
        let predictions =
            py.detach(|| classify_vectors(&self.saved, &ids, &columns).map_err(Failure::from))?;
        into_columns(py, predictions, meta.classes.clone())
    }
}
