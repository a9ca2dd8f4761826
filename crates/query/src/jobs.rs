//! The jobs that the `medvec` command line and the Python bindings both run, so that neither
//! writes them a second time: searching with or without the alignment shift, choosing the pair of
//! fields, training and sweeping heads from a few settings, evaluating a saved head, and the JSON
//! shapes of their reports (`medvec ... --json` prints them; Python returns them as dicts).

use crate::alignment::Alignment;
use crate::classify::{classify, MissingField};
use crate::error::{QueryError, Result};
use crate::gap::{gap_report, GapReport};
use crate::heads::metrics::ClassificationReport;
use crate::heads::{HeadSpec, KnnConfig, TrainConfig};
use crate::retrieval::search_shifted;
use crate::threshold::{binary_report, BinaryReport};
use crate::training::{
    train_head_on, train_knn_head_on, FieldSet, LambdaProgress, SavedHead, SplitSource,
    TrainRequest, TrainingData,
};
use medvec_store::{Collection, CollectionStats, Filter, Hit, SearchParams};
use serde_json::json;

/// The alignment options of a search: λ, the kind of vector the queries are, the other field of
/// the pair (default: the query field, or the collection's other field) and the records Δ is
/// fitted on (default: all, from the running sums).
#[derive(Debug, Clone, Copy)]
pub struct ShiftOptions<'a> {
    pub lambda: f32,
    pub query_field: &'a str,
    pub pair: Option<&'a str>,
    pub fit_filter: Option<&'a Filter>,
}

/// `medvec search`: a plain batch search when there is no shift and the queries are of the
/// searched field; otherwise Δ fitted on the pair and [`search_shifted`] with λ.
pub fn search(
    collection: &Collection,
    field: &str,
    queries: &[Vec<f32>],
    params: SearchParams,
    shift: &ShiftOptions<'_>,
) -> Result<Vec<Vec<Hit>>> {
    if shift.lambda == 0.0 && shift.query_field == field {
        return Ok(collection.search_batch(field, queries, &params)?);
    }
    let other = match (shift.pair, shift.query_field != field) {
        (Some(pair), _) => pair.to_string(),
        (None, true) => shift.query_field.to_string(),
        (None, false) => other_field(collection, field)?,
    };
    let alignment = fit_alignment(collection, field, &other, shift.fit_filter)?;
    search_shifted(
        collection,
        field,
        shift.query_field,
        queries,
        &alignment,
        shift.lambda,
        params,
    )
}

/// Δ on the whole collection (running sums, no scan), or on the records matching `filter`.
pub fn fit_alignment(
    collection: &Collection,
    a_field: &str,
    b_field: &str,
    filter: Option<&Filter>,
) -> Result<Alignment> {
    match filter {
        Some(filter) => Alignment::fit_where(collection, a_field, b_field, filter),
        None => Alignment::fit(collection, a_field, b_field),
    }
}

/// The one other vector field of a two-field collection.
fn other_field(collection: &Collection, field: &str) -> Result<String> {
    let schema = collection.schema();
    let others: Vec<&str> = schema
        .vectors
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| *n != field)
        .collect();
    match others.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(QueryError::Invalid(
            "the shift needs the other field of the pair: name it (--pair FIELD, pair=FIELD)"
                .into(),
        )),
    }
}

/// The pair of fields (image, text): given, or the collection's two vector fields.
pub fn field_pair(
    collection: &Collection,
    fields: Option<(&str, &str)>,
) -> Result<(String, String)> {
    if let Some((a, b)) = fields {
        return Ok((a.trim().to_string(), b.trim().to_string()));
    }
    let schema = collection.schema();
    match schema.vectors.as_slice() {
        [a, b] => Ok((a.name.clone(), b.name.clone())),
        _ => Err(QueryError::Invalid(format!(
            "the collection has {} vector fields; name the pair (--fields IMAGE,TEXT, fields=(IMAGE, TEXT))",
            schema.vectors.len()
        ))),
    }
}

/// The fields of a head: `fields` as given, or every vector field of the collection in schema
/// order; the shift pair as given, or the two fields when there are exactly two.
pub fn head_fields(
    collection: &Collection,
    fields: Option<&[String]>,
    shift_pair: Option<&[String; 2]>,
) -> Result<FieldSet> {
    let fields: Vec<String> = match fields {
        Some(names) => names.iter().map(|n| n.trim().to_string()).collect(),
        None => collection
            .schema()
            .vectors
            .iter()
            .map(|f| f.name.clone())
            .collect(),
    };
    let shift_pair = match (shift_pair, fields.as_slice()) {
        (Some([a, b]), _) => Some([a.trim().to_string(), b.trim().to_string()]),
        (None, [a, b]) => Some([a.clone(), b.clone()]),
        (None, _) => None,
    };
    FieldSet::new(fields, shift_pair)
}

/// Which head to train.
#[derive(Debug, Clone, Copy)]
pub enum HeadChoice {
    /// Early fusion (concat → Linear(128) → ReLU → Dropout → BatchNorm → Linear(C)).
    Early,
    /// Late fusion (one Linear(64) branch per field, then Linear(C)).
    Late,
    /// k nearest training cases; nothing to train but λ.
    Knn(KnnConfig),
}

/// Everything `medvec train` and `medvec sweep` take besides λ.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub head: HeadChoice,
    pub label: String,
    /// The head's vector fields, in order; `None` takes every vector field of the collection.
    pub fields: Option<Vec<String>>,
    /// The pair the shift moves, `[A, B]` with Δ = mean(A) − mean(B) (A the image's part);
    /// `None` takes the two fields of a two-field head.
    pub shift_pair: Option<[String; 2]>,
    pub split: SplitSource,
    pub max_epochs: usize,
    pub dropout: f32,
    pub seed: u64,
}

impl TrainSettings {
    /// The same settings with another seed, for the training and for a seeded split.
    pub fn reseeded(&self, seed: u64) -> TrainSettings {
        let split = match &self.split {
            SplitSource::Fractions(fractions, _) => SplitSource::Fractions(*fractions, seed),
            SplitSource::Grouped {
                column, fractions, ..
            } => SplitSource::Grouped {
                column: column.clone(),
                fractions: *fractions,
                seed,
            },
            SplitSource::Fold {
                fold,
                folds,
                val,
                group_column,
                ..
            } => SplitSource::Fold {
                fold: *fold,
                folds: *folds,
                val: *val,
                seed,
                group_column: group_column.clone(),
            },
            SplitSource::Column(column) => SplitSource::Column(column.clone()),
        };
        TrainSettings {
            split,
            seed,
            ..self.clone()
        }
    }

    /// The library's request for these settings and candidate λs.
    pub fn request(&self, collection: &Collection, lambdas: Vec<f32>) -> Result<TrainRequest> {
        let fields = head_fields(collection, self.fields.as_deref(), self.shift_pair.as_ref())?;
        let spec = match self.head {
            // A kNN has no network; its request carries the early spec unused.
            HeadChoice::Early | HeadChoice::Knn(_) => HeadSpec::early(),
            HeadChoice::Late => HeadSpec::late(),
        }
        .with_dropout(self.dropout);
        Ok(TrainRequest {
            spec,
            label_field: self.label.clone(),
            fields,
            split: self.split.clone(),
            lambdas,
            config: TrainConfig {
                max_epochs: self.max_epochs,
                seed: self.seed,
                ..TrainConfig::default()
            },
        })
    }

    /// Trains one head per λ and keeps the best on validation; `progress` hears of each λ.
    pub fn train(
        &self,
        collection: &Collection,
        lambdas: Vec<f32>,
        progress: &mut dyn FnMut(LambdaProgress),
    ) -> Result<SavedHead> {
        let request = self.request(collection, lambdas)?;
        let data = TrainingData::load(collection, &request)?;
        self.train_on(&data, &request, progress)
    }

    /// [`train`](Self::train) on rows already loaded (repeated trainings share them);
    /// `request` is [`request`](Self::request)'s for these settings.
    pub fn train_on(
        &self,
        data: &TrainingData,
        request: &TrainRequest,
        progress: &mut dyn FnMut(LambdaProgress),
    ) -> Result<SavedHead> {
        match self.head {
            HeadChoice::Knn(knn) => train_knn_head_on(data, request, knn, progress),
            HeadChoice::Early | HeadChoice::Late => train_head_on(data, request, progress),
        }
    }
}

/// The λ grid `from..=to` by `step`, rounded to 3 decimals (no 0.30000000000000004).
pub fn lambda_grid(from: f32, to: f32, step: f32) -> Result<Vec<f32>> {
    let valid = step > 0.0 && to >= from && from.is_finite() && to.is_finite();
    if !valid {
        return Err(QueryError::Invalid(
            "λ grid: need from <= to and a positive step".into(),
        ));
    }
    let n = ((to - from) / step + 1e-4).floor() as usize;
    Ok((0..=n)
        .map(|i| ((from + i as f32 * step) * 1000.0).round() / 1000.0)
        .collect())
}

/// The grid of `--shift auto`: −1 to 1 by 0.1, chosen on validation.
pub fn auto_lambdas() -> Vec<f32> {
    lambda_grid(-1.0, 1.0, 0.1).expect("a valid grid")
}

/// A saved head's metrics on the stored labels of the records matching `filter`
/// (`medvec eval`): the number of labelled rows and the report.
pub fn evaluate(
    collection: &Collection,
    saved: &SavedHead,
    filter: Option<&Filter>,
) -> Result<(usize, ClassificationReport)> {
    let evaluation = evaluate_all(collection, saved, filter, None, MissingField::Error)?;
    Ok((evaluation.rows, evaluation.report))
}

/// What `medvec eval` reports.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Labelled records evaluated.
    pub rows: usize,
    pub report: ClassificationReport,
    /// For a two-class head: ROC-AUC, PR-AUC, calibration, and sensitivity and specificity at
    /// `threshold` (else the head's own threshold, else 0.5).
    pub binary: Option<BinaryReport>,
    /// Labelled records left out because they lack one of the head's fields
    /// ([`MissingField::Error`]).
    pub missing_field_rows: usize,
    /// What was done with records lacking some of the head's fields.
    pub missing: MissingField,
    /// Labelled records evaluated with zero vectors for the fields they lack
    /// ([`MissingField::Zero`]).
    pub zero_filled_rows: usize,
}

impl Evaluation {
    /// What `medvec eval --json` prints (without intervals).
    pub fn to_json(&self, classes: &[String]) -> serde_json::Value {
        let mut out = classification_json(self.rows, &self.report, classes);
        out["missing_field_rows"] = json!(self.missing_field_rows);
        out["missing"] = json!(self.missing.as_str());
        out["zero_filled_rows"] = json!(self.zero_filled_rows);
        if let Some(binary) = &self.binary {
            out["binary"] = json!(binary);
        }
        out
    }
}

/// [`evaluate`], plus the binary metrics of a two-class head; records lacking some of the
/// head's fields are left out (and counted) or, with [`MissingField::Zero`], evaluated with zero
/// vectors in their place (and counted).
pub fn evaluate_all(
    collection: &Collection,
    saved: &SavedHead,
    filter: Option<&Filter>,
    threshold: Option<f64>,
    missing: MissingField,
) -> Result<Evaluation> {
    let labelled = labelled_predictions(collection, saved, filter, missing)?;
    let report = report_of(&labelled.truth, &labelled.predicted)?;
    let binary = match saved.meta.classes.len() {
        2 => {
            let positive = crate::threshold::positive_index(&saved.meta, None)?;
            let truth: Vec<bool> = labelled.truth.iter().map(|&t| t == positive).collect();
            let score: Vec<f64> = labelled
                .probabilities
                .iter()
                .map(|p| f64::from(p[positive]))
                .collect();
            Some(binary_report(&saved.meta, &truth, &score, threshold)?)
        }
        _ => None,
    };
    Ok(Evaluation {
        rows: labelled.truth.len(),
        report,
        binary,
        missing_field_rows: labelled.missing_field_rows,
        missing,
        zero_filled_rows: labelled.zero_filled_rows,
    })
}

/// Stored labels and predicted classes (as class indices) of the evaluated records.
struct LabelledPredictions {
    ids: Vec<String>,
    truth: Vec<usize>,
    predicted: Vec<usize>,
    probabilities: Vec<Vec<f32>>,
    /// Labelled records left out because they lack a field of the head.
    missing_field_rows: usize,
    /// Labelled records evaluated with zero vectors for fields they lack.
    zero_filled_rows: usize,
}

fn labelled_predictions(
    collection: &Collection,
    saved: &SavedHead,
    filter: Option<&Filter>,
    missing: MissingField,
) -> Result<LabelledPredictions> {
    let classes = &saved.meta.classes;
    let mut out = LabelledPredictions {
        ids: Vec::new(),
        truth: Vec::new(),
        predicted: Vec::new(),
        probabilities: Vec::new(),
        missing_field_rows: 0,
        zero_filled_rows: 0,
    };
    classify(collection, saved, filter, (4096, missing), |p| {
        if p.error.is_some() {
            out.missing_field_rows += usize::from(p.truth.is_some());
            return Ok(());
        }
        out.zero_filled_rows += usize::from(p.truth.is_some() && !p.zero_filled.is_empty());
        if let Some(label) = p
            .truth
            .as_ref()
            .and_then(|t| classes.iter().position(|c| c == t))
        {
            out.truth.push(label);
            out.predicted
                .push(classes.iter().position(|c| *c == p.class).unwrap_or(0));
            out.ids.push(p.id);
            out.probabilities.push(p.probabilities);
        }
        Ok(())
    })?;
    if out.truth.is_empty() {
        return Err(QueryError::Invalid(format!(
            "no records with a known `{}` label matched",
            saved.meta.label_field
        )));
    }
    Ok(out)
}

fn report_of(truth: &[usize], predicted: &[usize]) -> Result<ClassificationReport> {
    ClassificationReport::new(truth, predicted).map_err(|e| QueryError::Invalid(e.to_string()))
}

/// 95% bootstrap intervals of a saved head's metrics (`medvec eval --seeds N`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalIntervals {
    /// Evaluated records, and the units resampled (groups with a group column, else records).
    pub rows: usize,
    pub units: usize,
    pub resamples: usize,
    /// The payload column whose groups were resampled whole (a cluster bootstrap).
    pub group_column: Option<String>,
    pub accuracy: [f64; 2],
    pub macro_f1: [f64; 2],
    pub balanced_accuracy: [f64; 2],
}

/// The percentile bootstrap of the head's test metrics: `resamples` resamples (seeded) of the
/// evaluated records with replacement, or of whole groups of `group_column` (images of one
/// lesion are not independent, so they are resampled together); 2.5th and 97.5th percentiles.
pub fn evaluate_intervals(
    collection: &Collection,
    saved: &SavedHead,
    (filter, missing): (Option<&Filter>, MissingField),
    group_column: Option<&str>,
    resamples: usize,
    seed: u64,
) -> Result<EvalIntervals> {
    use rand::{Rng, SeedableRng};
    if resamples < 2 {
        return Err(QueryError::Invalid(
            "seeds: the bootstrap needs at least 2 resamples".into(),
        ));
    }
    let labelled = labelled_predictions(collection, saved, filter, missing)?;
    let units = resampling_units(collection, &labelled.ids, group_column)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut metrics: [Vec<f64>; 3] = Default::default();
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    for _ in 0..resamples {
        truth.clear();
        predicted.clear();
        for _ in 0..units.len() {
            for &row in &units[rng.random_range(0..units.len())] {
                truth.push(labelled.truth[row]);
                predicted.push(labelled.predicted[row]);
            }
        }
        let report = report_of(&truth, &predicted)?;
        metrics[0].push(report.accuracy);
        metrics[1].push(report.macro_f1);
        metrics[2].push(report.balanced_accuracy);
    }
    let [accuracy, macro_f1, balanced_accuracy] = metrics.map(|mut values| {
        values.sort_by(f64::total_cmp);
        [
            crate::repeat::percentile(&values, 2.5),
            crate::repeat::percentile(&values, 97.5),
        ]
    });
    Ok(EvalIntervals {
        rows: labelled.ids.len(),
        units: units.len(),
        resamples,
        group_column: group_column.map(str::to_string),
        accuracy,
        macro_f1,
        balanced_accuracy,
    })
}

/// The rows of each resampled unit: one per record, or one per group value (a record without
/// one is its own group), groups in order of first appearance.
fn resampling_units(
    collection: &Collection,
    ids: &[String],
    group_column: Option<&str>,
) -> Result<Vec<Vec<usize>>> {
    let Some(column) = group_column else {
        return Ok((0..ids.len()).map(|r| vec![r]).collect());
    };
    if collection.schema().payload_index(column).is_none() {
        return Err(QueryError::Invalid(format!(
            "unknown group field `{column}`"
        )));
    }
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (row, id) in ids.iter().enumerate() {
        let group = collection
            .get(id)?
            .and_then(|r| r.payload.get(column).map(|v| v.to_string()))
            .filter(|g| !g.is_empty());
        let unit = match group {
            Some(g) => *index.entry(g).or_insert_with(|| {
                units.push(Vec::new());
                units.len() - 1
            }),
            None => {
                units.push(Vec::new());
                units.len() - 1
            }
        };
        units[unit].push(row);
    }
    Ok(units)
}

/// Every metric of a classification report (the shape `medvec eval --json` prints).
pub fn classification_json(
    rows: usize,
    report: &ClassificationReport,
    classes: &[String],
) -> serde_json::Value {
    json!({
        "rows": rows, "accuracy": report.accuracy, "macro_f1": report.macro_f1,
        "balanced_accuracy": report.balanced_accuracy, "classes": classes,
        "precision": report.per_class.precision, "recall": report.per_class.recall, "f1": report.per_class.f1,
        "support": report.per_class.support,
        "confusion": report.confusion.counts.outer_iter().map(|row| row.to_vec()).collect::<Vec<_>>(),
    })
}

/// A trained head as `medvec train --json` prints it: name, metadata, λ curve, test report.
pub fn trained_json(name: &str, saved: &SavedHead) -> serde_json::Value {
    let test = saved
        .test_report
        .as_ref()
        .map(|r| classification_json(saved.meta.rows[2], r, &saved.meta.classes));
    json!({"name": name, "meta": saved.meta, "curve": saved.curve, "test_report": test})
}

/// `medvec gap`: the gap between the pair over the records matching `filter`, and with `shift`
/// also after the alignment shift with that λ (Δ fitted on the same records).
pub fn gap(
    collection: &Collection,
    (a, b): (&str, &str),
    filter: Option<&Filter>,
    shift: Option<f32>,
) -> Result<Vec<GapReport>> {
    let mut reports = vec![gap_report(collection, a, b, filter, None)?];
    if let Some(lambda) = shift {
        let alignment = fit_alignment(collection, a, b, filter)?;
        reports.push(gap_report(
            collection,
            a,
            b,
            filter,
            Some((&alignment, lambda)),
        )?);
    }
    Ok(reports)
}

/// A gap report (the shape `medvec gap --json` prints).
pub fn gap_json(r: &GapReport) -> serde_json::Value {
    json!({
        "fields": [r.a_field, r.b_field], "lambda": r.lambda,
        "count": [r.count_a, r.count_b], "pairs": r.pairs,
        "delta_norm": r.delta_norm, "mean_paired_cosine": r.mean_paired_cosine,
        "resultant_length": [r.resultant_length_a, r.resultant_length_b],
        "pca2_variance": [r.pca_variance_a, r.pca_variance_b],
    })
}

/// A record as `medvec get` prints it: `{"id", "payload": {...}}`, and with `with_vectors`
/// `"vectors": {field: [...]}`.
pub fn record_json(record: &medvec_store::Record, with_vectors: bool) -> serde_json::Value {
    let payload: serde_json::Map<String, serde_json::Value> = record
        .payload
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    let mut out = json!({"id": record.id, "payload": payload});
    if with_vectors {
        out["vectors"] = json!(record.vectors);
    }
    out
}

/// A prediction as `medvec classify --out x.jsonl` writes it: `{"id", "predicted",
/// "probabilities": {class: p}}`, or `{"id", "predicted": null, "error"}` for an error row.
pub fn prediction_json(p: &crate::classify::Prediction, classes: &[String]) -> serde_json::Value {
    if let Some(error) = &p.error {
        return json!({"id": p.id, "predicted": null, "error": error});
    }
    let probabilities: serde_json::Map<String, serde_json::Value> = classes
        .iter()
        .cloned()
        .zip(p.probabilities.iter().map(|x| json!(x)))
        .collect();
    let mut out = json!({"id": p.id, "predicted": p.class, "probabilities": probabilities});
    if !p.zero_filled.is_empty() {
        out["zero_filled"] = json!(p.zero_filled);
    }
    out
}

/// One collection's counts (the shape `medvec stats --json` lists).
pub fn stats_json(s: &CollectionStats) -> serde_json::Value {
    json!({
        "name": s.name,
        "count": s.count,
        "segments": s.segments,
        "segments_awaiting_graphs": s.segments_awaiting_graphs,
        "unflushed": s.unflushed,
        "deleted_rows": s.deleted_rows,
        "disk_bytes": s.disk_bytes,
        "generation": s.generation,
        "schema": s.schema,
        "default_ef": s.schema.vectors.iter().map(|f| f.name.as_str()).zip(&s.default_ef).collect::<std::collections::BTreeMap<_, _>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_inclusive_and_rounded() {
        assert_eq!(
            lambda_grid(-0.2, 0.2, 0.1).unwrap(),
            [-0.2, -0.1, 0.0, 0.1, 0.2]
        );
        assert_eq!(auto_lambdas().len(), 21);
        assert!(lambda_grid(1.0, 0.0, 0.1).is_err());
        assert!(lambda_grid(0.0, 1.0, 0.0).is_err());
        assert!(lambda_grid(0.0, f32::NAN, 0.1).is_err());
    }
}
