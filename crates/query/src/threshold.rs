//! Binary heads: a decision threshold chosen on validation and saved with the head (which
//! `classify` then applies), and the binary metrics `eval` reports (ROC-AUC, PR-AUC, expected
//! calibration error, sensitivity and specificity at a threshold).
//!
//! The positive class is the one named at training (`--positive`), else the second of the two
//! class names in sorted order (scikit-learn's convention for labels such as `0`/`1`).

use crate::classify::{classify_ids, Prediction};
use crate::error::{QueryError, Result};
use crate::heads::binary::{
    average_precision, calibration_error, roc_auc, sensitivity_specificity, ThresholdRule,
};
use crate::heads::metrics::ClassificationReport;
use crate::jobs::TrainSettings;
use crate::saved::SavedHead;
use crate::training::{head_err, split_ids, HeadMeta};
use medvec_store::Collection;
use serde::{Deserialize, Serialize};

/// Bins of the expected calibration error.
pub const CALIBRATION_BINS: usize = 10;

/// A binary head's decision threshold, as saved in its metadata.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DecisionThreshold {
    /// The rule that chose it on validation (`youden`, `sensitivity=0.9`).
    pub rule: String,
    /// The class called when its probability reaches `value`.
    pub positive: String,
    pub value: f64,
    /// Sensitivity and specificity of the validation rows at `value`.
    pub val_sensitivity: f64,
    pub val_specificity: f64,
}

/// The index (in `meta.classes`) of the positive class of a two-class head.
pub fn positive_index(meta: &HeadMeta, named: Option<&str>) -> Result<usize> {
    if meta.classes.len() != 2 {
        return Err(QueryError::Invalid(format!(
            "a threshold needs a two-class label; `{}` has {} classes",
            meta.label_field,
            meta.classes.len()
        )));
    }
    let named = named.or(meta.threshold.as_ref().map(|t| t.positive.as_str()));
    match named {
        None => Ok(1),
        Some(name) => meta.classes.iter().position(|c| c == name).ok_or_else(|| {
            QueryError::Invalid(format!(
                "positive class `{name}` is not one of the head's classes ({})",
                meta.classes.join(", ")
            ))
        }),
    }
}

/// The class index `probabilities` decide for: the positive class if its probability reaches
/// the head's threshold, else the most probable class.
pub fn decide(meta: &HeadMeta, probabilities: &[f32]) -> usize {
    if let Some(t) = &meta.threshold {
        if let Ok(positive) = positive_index(meta, None) {
            let p = f64::from(probabilities[positive]);
            return if p >= t.value { positive } else { 1 - positive };
        }
    }
    probabilities.iter().enumerate().fold(
        0,
        |best, (k, p)| if *p > probabilities[best] { k } else { best },
    )
}

/// Chooses the threshold of a trained two-class head on its validation rows by `rule`, saves
/// it in the head's metadata, and recomputes the test report at that threshold.
pub fn choose_threshold(
    collection: &Collection,
    saved: &mut SavedHead,
    settings: &TrainSettings,
    rule: ThresholdRule,
    positive: Option<&str>,
) -> Result<()> {
    let positive = positive_index(&saved.meta, positive)?;
    let request = settings
        .reseeded(saved.meta.seed)
        .request(collection, vec![saved.meta.lambda])?;
    let [_, val, test] = split_ids(collection, &request)?;
    let (truth, score) = scores(
        &classify_ids(collection, saved, &val)?,
        &saved.meta,
        positive,
    );
    let value = rule.choose(&truth, &score).map_err(head_err)?;
    let (val_sensitivity, val_specificity) = sensitivity_specificity(&truth, &score, value);
    saved.meta.threshold = Some(DecisionThreshold {
        rule: rule.name(),
        positive: saved.meta.classes[positive].clone(),
        value,
        val_sensitivity,
        val_specificity,
    });
    if !test.is_empty() {
        let predictions = classify_ids(collection, saved, &test)?;
        let report = report_of(&predictions, &saved.meta)?;
        if let Some(summary) = saved.meta.test.as_mut() {
            summary.accuracy = report.accuracy;
            summary.macro_f1 = report.macro_f1;
            summary.balanced_accuracy = report.balanced_accuracy;
        }
        saved.test_report = Some(report);
    }
    Ok(())
}

/// Whether each prediction's stored label is the positive class, and its positive probability.
fn scores(predictions: &[Prediction], meta: &HeadMeta, positive: usize) -> (Vec<bool>, Vec<f64>) {
    predictions
        .iter()
        .map(|p| {
            let is_positive = p.truth.as_deref() == Some(meta.classes[positive].as_str());
            (is_positive, f64::from(p.probabilities[positive]))
        })
        .unzip()
}

fn report_of(predictions: &[Prediction], meta: &HeadMeta) -> Result<ClassificationReport> {
    let index = |name: &str| meta.classes.iter().position(|c| c == name);
    let (truth, predicted): (Vec<usize>, Vec<usize>) = predictions
        .iter()
        .filter_map(|p| Some((index(p.truth.as_deref()?)?, index(&p.class)?)))
        .unzip();
    ClassificationReport::new(&truth, &predicted).map_err(head_err)
}

/// The binary metrics of a two-class head on labelled rows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BinaryReport {
    pub positive: String,
    pub roc_auc: f64,
    /// Average precision (the area under the precision–recall curve, without interpolation).
    pub pr_auc: f64,
    /// Expected calibration error of the positive probability over equal-width bins.
    pub calibration_error: f64,
    pub calibration_bins: usize,
    /// The threshold of `sensitivity` and `specificity`, and where it came from (`youden`, …,
    /// `given`, or `argmax` for a head without one).
    pub threshold: f64,
    pub threshold_source: String,
    pub sensitivity: f64,
    pub specificity: f64,
}

/// The binary report from each row's positive truth and probability; the threshold is `given`,
/// else the head's, else 0.5 (the most probable class).
pub fn binary_report(
    meta: &HeadMeta,
    truth: &[bool],
    score: &[f64],
    given: Option<f64>,
) -> Result<BinaryReport> {
    let positive = positive_index(meta, None)?;
    let (threshold, source) = match (given, &meta.threshold) {
        (Some(t), _) => (t, "given".to_string()),
        (None, Some(saved)) => (saved.value, saved.rule.clone()),
        (None, None) => (0.5, "argmax".to_string()),
    };
    let (sensitivity, specificity) = sensitivity_specificity(truth, score, threshold);
    Ok(BinaryReport {
        positive: meta.classes[positive].clone(),
        roc_auc: roc_auc(truth, score).map_err(head_err)?,
        pr_auc: average_precision(truth, score).map_err(head_err)?,
        calibration_error: calibration_error(truth, score, CALIBRATION_BINS).map_err(head_err)?,
        calibration_bins: CALIBRATION_BINS,
        threshold,
        threshold_source: source,
        sensitivity,
        specificity,
    })
}
