//! Classification metrics with scikit-learn's exact semantics.
//!
//! Every function mirrors the scikit-learn function of the same name with default
//! arguments, including which labels are averaged (the sorted union of the labels seen
//! in `y_true` and `y_pred`) and the zero-division convention (an undefined precision,
//! recall or F1 is 0.0; scikit-learn also warns). Results are bit-for-bit or within
//! 1e-12 of scikit-learn's (the reference test checks this).

use std::collections::HashMap;

use ndarray::Array2;

use super::error::{HeadError, Result};

/// Rows are true labels, columns predicted labels, both in the order of `labels`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    /// The labels indexing rows and columns.
    pub labels: Vec<usize>,
    /// `counts[[i, j]]`: rows whose true label is `labels[i]` and prediction `labels[j]`.
    pub counts: Array2<u64>,
}

/// Per-label precision, recall, F1 and support (`precision_recall_fscore_support(average=None)`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassMetrics {
    /// The labels, in the order of the other vectors.
    pub labels: Vec<usize>,
    /// tp / (tp + fp), or 0.0 when nothing was predicted as the label.
    pub precision: Vec<f64>,
    /// tp / (tp + fn), or 0.0 when the label never occurs.
    pub recall: Vec<f64>,
    /// 2·tp / (2·tp + fp + fn), or 0.0 when the denominator is zero.
    pub f1: Vec<f64>,
    /// Number of rows whose true label is the label.
    pub support: Vec<u64>,
}

/// All metrics of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassificationReport {
    /// Fraction of exact matches.
    pub accuracy: f64,
    /// Unweighted mean of per-label F1.
    pub macro_f1: f64,
    /// Mean per-label recall over labels present in `y_true`.
    pub balanced_accuracy: f64,
    /// Per-label scores.
    pub per_class: ClassMetrics,
    /// Confusion matrix.
    pub confusion: ConfusionMatrix,
}

impl ClassificationReport {
    /// Computes every metric with scikit-learn's default label handling.
    ///
    /// ```
    /// use medvec_query::heads::metrics::ClassificationReport;
    /// let r = ClassificationReport::new(&[0, 1, 1, 2], &[0, 1, 2, 2]).unwrap();
    /// assert_eq!(r.accuracy, 0.75);
    /// assert_eq!(r.per_class.support, vec![1, 2, 1]);
    /// ```
    pub fn new(y_true: &[usize], y_pred: &[usize]) -> Result<Self> {
        Ok(Self {
            accuracy: accuracy(y_true, y_pred)?,
            macro_f1: macro_f1(y_true, y_pred)?,
            balanced_accuracy: balanced_accuracy(y_true, y_pred)?,
            per_class: precision_recall_fscore_support(y_true, y_pred, None)?,
            confusion: confusion_matrix(y_true, y_pred, None)?,
        })
    }
}

fn check_pair(y_true: &[usize], y_pred: &[usize]) -> Result<()> {
    if y_true.len() != y_pred.len() {
        return Err(HeadError::ShapeMismatch {
            what: "y_pred vs y_true length",
            expected: y_true.len(),
            got: y_pred.len(),
        });
    }
    if y_true.is_empty() {
        return Err(HeadError::Empty("labels"));
    }
    Ok(())
}

/// Sorted union of the labels in both vectors (`sklearn.utils.multiclass.unique_labels`).
pub fn unique_labels(y_true: &[usize], y_pred: &[usize]) -> Vec<usize> {
    let mut labels: Vec<usize> = y_true.iter().chain(y_pred).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    labels
}

/// Resolves the label list: the given one (checked for duplicates) or the sorted union.
fn resolve_labels(
    y_true: &[usize],
    y_pred: &[usize],
    labels: Option<&[usize]>,
) -> Result<Vec<usize>> {
    let Some(given) = labels else {
        return Ok(unique_labels(y_true, y_pred));
    };
    if given.is_empty() {
        return Err(HeadError::Empty("label list"));
    }
    let mut sorted = given.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != given.len() {
        return Err(HeadError::InvalidConfig(
            "duplicate labels in label list".into(),
        ));
    }
    Ok(given.to_vec())
}

fn positions(labels: &[usize]) -> HashMap<usize, usize> {
    labels.iter().enumerate().map(|(i, &l)| (l, i)).collect()
}

/// `accuracy_score(y_true, y_pred)`.
///
/// ```
/// assert_eq!(medvec_query::heads::metrics::accuracy(&[0, 1], &[0, 0]).unwrap(), 0.5);
/// ```
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    check_pair(y_true, y_pred)?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// `confusion_matrix(y_true, y_pred, labels=labels)`.
///
/// With `labels = None` the labels are the sorted union; with explicit labels, rows whose
/// true or predicted label is not listed are left out, and at least one listed label must
/// occur in `y_true` (as scikit-learn requires).
///
/// ```
/// use medvec_query::heads::metrics::confusion_matrix;
/// let cm = confusion_matrix(&[0, 1, 1], &[0, 0, 1], None).unwrap();
/// assert_eq!(cm.counts.into_raw_vec_and_offset().0, vec![1, 0, 1, 1]);
/// ```
pub fn confusion_matrix(
    y_true: &[usize],
    y_pred: &[usize],
    labels: Option<&[usize]>,
) -> Result<ConfusionMatrix> {
    check_pair(y_true, y_pred)?;
    let labels = resolve_labels(y_true, y_pred, labels)?;
    let pos = positions(&labels);
    if !y_true.iter().any(|t| pos.contains_key(t)) {
        return Err(HeadError::InvalidConfig(
            "at least one listed label must be in y_true".into(),
        ));
    }
    let mut counts = Array2::<u64>::zeros((labels.len(), labels.len()));
    for (t, p) in y_true.iter().zip(y_pred) {
        if let (Some(&i), Some(&j)) = (pos.get(t), pos.get(p)) {
            counts[[i, j]] += 1;
        }
    }
    Ok(ConfusionMatrix { labels, counts })
}

/// `precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None)`.
///
/// Counts are taken over all rows, so a row whose label is not listed still counts as a
/// false positive / negative of a listed label it was confused with (as in scikit-learn).
///
/// ```
/// use medvec_query::heads::metrics::precision_recall_fscore_support;
/// let m = precision_recall_fscore_support(&[0, 0, 1], &[0, 1, 1], None).unwrap();
/// assert_eq!(m.precision, vec![1.0, 0.5]);
/// assert_eq!(m.recall, vec![0.5, 1.0]);
/// ```
pub fn precision_recall_fscore_support(
    y_true: &[usize],
    y_pred: &[usize],
    labels: Option<&[usize]>,
) -> Result<ClassMetrics> {
    check_pair(y_true, y_pred)?;
    let labels = resolve_labels(y_true, y_pred, labels)?;
    let pos = positions(&labels);
    let n = labels.len();
    let (mut tp, mut pred_sum, mut true_sum) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    for (t, p) in y_true.iter().zip(y_pred) {
        if let Some(&i) = pos.get(t) {
            true_sum[i] += 1;
            if t == p {
                tp[i] += 1;
            }
        }
        if let Some(&j) = pos.get(p) {
            pred_sum[j] += 1;
        }
    }
    let precision = divide(&tp, &pred_sum, 1.0);
    let recall = divide(&tp, &true_sum, 1.0);
    // scikit-learn >= 1.3 computes F1 from counts, 2tp / (true + pred), not from P and R.
    let denom: Vec<u64> = true_sum.iter().zip(&pred_sum).map(|(t, p)| t + p).collect();
    let f1 = divide(&tp, &denom, 2.0);
    Ok(ClassMetrics {
        labels,
        precision,
        recall,
        f1,
        support: true_sum,
    })
}

/// `scale · num / den` elementwise, 0.0 where `den == 0` (scikit-learn's `zero_division="warn"`).
fn divide(num: &[u64], den: &[u64], scale: f64) -> Vec<f64> {
    num.iter()
        .zip(den)
        .map(|(&n, &d)| {
            if d == 0 {
                0.0
            } else {
                scale * n as f64 / d as f64
            }
        })
        .collect()
}

/// `f1_score(y_true, y_pred, average='macro')`: mean F1 over the union of labels.
///
/// ```
/// let f = medvec_query::heads::metrics::macro_f1(&[0, 0, 1, 1], &[0, 0, 1, 0]).unwrap();
/// assert!((f - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
/// ```
pub fn macro_f1(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    let per = precision_recall_fscore_support(y_true, y_pred, None)?;
    Ok(mean(&per.f1))
}

/// `balanced_accuracy_score(y_true, y_pred)`: mean recall over labels present in `y_true`
/// (labels only ever predicted are dropped, as scikit-learn does with a warning).
///
/// ```
/// let b = medvec_query::heads::metrics::balanced_accuracy(&[0, 0, 0, 1], &[0, 0, 1, 1]).unwrap();
/// assert!((b - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-15);
/// ```
pub fn balanced_accuracy(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    let cm = confusion_matrix(y_true, y_pred, None)?;
    let recalls: Vec<f64> = cm
        .counts
        .outer_iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let total: u64 = row.sum();
            (total > 0).then(|| row[i] as f64 / total as f64)
        })
        .collect();
    Ok(mean(&recalls))
}

/// Arithmetic mean; callers guarantee a non-empty slice (labels come from non-empty data).
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}
