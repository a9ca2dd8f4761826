//! Metrics of a binary classifier's probability, with scikit-learn's semantics: ROC-AUC
//! (`roc_auc_score`), PR-AUC (`average_precision_score`), the expected calibration error over
//! `calibration_curve`'s uniform bins, sensitivity and specificity at a threshold, and the
//! threshold rules (`youden`, `sensitivity=X`) chosen on a validation set.
//!
//! `positive[i]` says whether row `i` belongs to the positive class and `score[i]` is its
//! predicted probability of it; a row is called positive when `score >= threshold`.

use super::error::{HeadError, Result};

/// The ROC curve at every distinct score, highest first, as `roc_curve(drop_intermediate=False)`
/// has it without its leading (∞, 0, 0) point.
struct Roc {
    /// (threshold, false positives, true positives) counted at `score >= threshold`.
    points: Vec<(f64, f64, f64)>,
    positives: f64,
    negatives: f64,
}

fn roc(positive: &[bool], score: &[f64]) -> Result<Roc> {
    check(positive, score)?;
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points: Vec<(f64, f64, f64)> = Vec::new();
    for (k, &row) in order.iter().enumerate() {
        if positive[row] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(k + 1)
            .is_none_or(|&next| score[next] != score[row]);
        if last_of_tie {
            points.push((score[row], fp, tp));
        }
    }
    Ok(Roc {
        points,
        positives: tp,
        negatives: fp,
    })
}

/// [`roc`], requiring both classes (ROC-AUC and thresholds are undefined otherwise).
fn roc_of_both(positive: &[bool], score: &[f64]) -> Result<Roc> {
    let curve = roc(positive, score)?;
    if curve.positives == 0.0 || curve.negatives == 0.0 {
        return Err(HeadError::InvalidConfig(
            "ROC-AUC and thresholds need both classes among the rows".into(),
        ));
    }
    Ok(curve)
}

fn check(positive: &[bool], score: &[f64]) -> Result<()> {
    if positive.len() != score.len() {
        return Err(HeadError::ShapeMismatch {
            what: "scores vs labels length",
            expected: positive.len(),
            got: score.len(),
        });
    }
    if positive.is_empty() {
        return Err(HeadError::Empty("labels"));
    }
    if score.iter().any(|s| !s.is_finite()) {
        return Err(HeadError::InvalidConfig("a score is not finite".into()));
    }
    Ok(())
}

/// Area under the ROC curve (`sklearn.metrics.roc_auc_score`): trapezoids between the curve's
/// points, so tied scores count half.
///
/// ```
/// use medvec_query::heads::binary::roc_auc;
/// assert_eq!(roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap(), 0.75);
/// ```
pub fn roc_auc(positive: &[bool], score: &[f64]) -> Result<f64> {
    let Roc {
        points,
        positives: pos,
        negatives: neg,
    } = roc_of_both(positive, score)?;
    let mut area = 0.0;
    let (mut fpr0, mut tpr0) = (0.0, 0.0);
    for &(_, fp, tp) in &points {
        let (fpr, tpr) = (fp / neg, tp / pos);
        area += (fpr - fpr0) * (tpr + tpr0) / 2.0;
        (fpr0, tpr0) = (fpr, tpr);
    }
    Ok(area)
}

/// Average precision (`sklearn.metrics.average_precision_score`): Σ (Rₙ − Rₙ₋₁)·Pₙ over the
/// distinct thresholds, highest first; no interpolation.
///
/// ```
/// use medvec_query::heads::binary::average_precision;
/// let ap = average_precision(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
/// assert!((ap - 0.8333333333333333).abs() < 1e-15);
/// ```
pub fn average_precision(positive: &[bool], score: &[f64]) -> Result<f64> {
    let Roc {
        points,
        positives: pos,
        ..
    } = roc(positive, score)?;
    if pos == 0.0 {
        return Err(HeadError::InvalidConfig(
            "average precision needs a positive row".into(),
        ));
    }
    let mut ap = 0.0;
    let mut recall0 = 0.0;
    for &(_, fp, tp) in &points {
        let recall = tp / pos;
        ap += (recall - recall0) * tp / (tp + fp);
        recall0 = recall;
    }
    Ok(ap)
}

/// Expected calibration error over `bins` equal-width bins of the score, binned as
/// `sklearn.calibration.calibration_curve(strategy="uniform")` bins (a score on an inner edge
/// goes to the lower bin): Σ_b (n_b / n)·|mean(positive in b) − mean(score in b)|.
pub fn calibration_error(positive: &[bool], score: &[f64], bins: usize) -> Result<f64> {
    check(positive, score)?;
    if bins == 0 {
        return Err(HeadError::InvalidConfig("calibration needs a bin".into()));
    }
    let mut count = vec![0usize; bins];
    let mut hits = vec![0.0; bins];
    let mut sum = vec![0.0; bins];
    for (&p, &s) in positive.iter().zip(score) {
        // np.searchsorted(inner_edges, s, side="left"): the number of inner edges below s, with
        // the edges as np.linspace computes them (i · 1/bins, so 0.30000000000000004).
        let width = 1.0 / bins as f64;
        let bin = (1..bins).filter(|&e| e as f64 * width < s).count();
        count[bin] += 1;
        hits[bin] += f64::from(u8::from(p));
        sum[bin] += s;
    }
    let n = score.len() as f64;
    Ok((0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let c = count[b] as f64;
            c / n * (hits[b] / c - sum[b] / c).abs()
        })
        .sum())
}

/// Sensitivity (true-positive rate) and specificity (true-negative rate) when rows with
/// `score >= threshold` are called positive; `NaN` for a class with no rows.
pub fn sensitivity_specificity(positive: &[bool], score: &[f64], threshold: f64) -> (f64, f64) {
    let (mut tp, mut pos, mut tn, mut neg) = (0.0, 0.0, 0.0, 0.0);
    for (&p, &s) in positive.iter().zip(score) {
        let called = s >= threshold;
        if p {
            pos += 1.0;
            tp += f64::from(u8::from(called));
        } else {
            neg += 1.0;
            tn += f64::from(u8::from(!called));
        }
    }
    (tp / pos, tn / neg)
}

/// How a decision threshold is chosen on validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdRule {
    /// Maximises Youden's J = sensitivity + specificity − 1.
    Youden,
    /// The highest threshold whose sensitivity reaches this value (the best specificity that
    /// keeps it), for screening where a missed case costs most.
    Sensitivity(f64),
}

impl ThresholdRule {
    /// Parses `youden` or `sensitivity=X` with 0 < X ≤ 1.
    pub fn parse(text: &str) -> Result<ThresholdRule> {
        let bad = || {
            HeadError::InvalidConfig(format!(
                "threshold `{text}`: expected `youden` or `sensitivity=X` with X in (0, 1]"
            ))
        };
        if text == "youden" {
            return Ok(ThresholdRule::Youden);
        }
        let value: f64 = text
            .strip_prefix("sensitivity=")
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        if value > 0.0 && value <= 1.0 {
            Ok(ThresholdRule::Sensitivity(value))
        } else {
            Err(bad())
        }
    }

    pub fn name(&self) -> String {
        match self {
            ThresholdRule::Youden => "youden".into(),
            ThresholdRule::Sensitivity(x) => format!("sensitivity={x}"),
        }
    }

    /// The threshold this rule picks among the distinct scores, as scikit-learn's `roc_curve`
    /// lists them (highest first); ties go to the highest threshold.
    pub fn choose(&self, positive: &[bool], score: &[f64]) -> Result<f64> {
        let curve = roc_of_both(positive, score)?;
        let (pos, neg) = (curve.positives, curve.negatives);
        let rates = curve
            .points
            .iter()
            .map(|&(t, fp, tp)| (t, fp / neg, tp / pos));
        let chosen = match *self {
            ThresholdRule::Youden => rates
                .fold(None, |best: Option<(f64, f64)>, (t, fpr, tpr)| {
                    let j = tpr - fpr;
                    match best {
                        Some((_, best_j)) if best_j >= j => best,
                        _ => Some((t, j)),
                    }
                })
                .map(|(t, _)| t),
            ThresholdRule::Sensitivity(x) => rates
                .into_iter()
                .find(|&(_, _, tpr)| tpr >= x - 1e-12)
                .map(|(t, _, _)| t),
        };
        chosen.ok_or_else(|| HeadError::InvalidConfig("no threshold fits the rule".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_count_half_and_one_class_is_an_error() {
        assert_eq!(roc_auc(&[false, true], &[0.5, 0.5]).unwrap(), 0.5);
        assert_eq!(
            roc_auc(&[false, true, true], &[0.1, 0.9, 0.1]).unwrap(),
            0.75
        );
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_err());
        assert_eq!(average_precision(&[true, true], &[0.1, 0.2]).unwrap(), 1.0);
        assert!(roc_auc(&[true], &[f64::NAN]).is_err());
    }

    #[test]
    fn rules_pick_the_scores_scikit_learn_would() {
        let y = [false, false, true, false, true, true];
        let s = [0.1, 0.3, 0.35, 0.6, 0.7, 0.9];
        // J is 2/3 at 0.7 (2/3 − 0) and at 0.35 (1 − 1/3), but in floating point 1 − 1/3 is one
        // ulp larger, and numpy's argmax of tpr − fpr sees the same.
        assert_eq!(ThresholdRule::Youden.choose(&y, &s).unwrap(), 0.35);
        assert_eq!(
            ThresholdRule::Sensitivity(1.0).choose(&y, &s).unwrap(),
            0.35
        );
        assert_eq!(ThresholdRule::Sensitivity(0.5).choose(&y, &s).unwrap(), 0.7);
        assert_eq!(sensitivity_specificity(&y, &s, 0.35), (1.0, 2.0 / 3.0));
        let (y, s) = ([false, true, false, true, true], [0.1, 0.4, 0.5, 0.6, 0.8]);
        assert_eq!(ThresholdRule::Youden.choose(&y, &s).unwrap(), 0.6);
        assert!(ThresholdRule::parse("sensitivity=1.5").is_err());
        assert_eq!(
            ThresholdRule::parse("sensitivity=0.9").unwrap(),
            ThresholdRule::Sensitivity(0.9)
        );
    }

    #[test]
    fn calibration_error_bins_like_calibration_curve() {
        // Perfectly calibrated in each bin: zero.
        let y = [true, false, true, false];
        assert_eq!(
            calibration_error(&y, &[0.5, 0.5, 0.5, 0.5], 10).unwrap(),
            0.0
        );
        // 0.1 sits on an inner edge and goes to bin 0 with 0.05; bin 9 holds 0.95.
        let e = calibration_error(&[false, true, true], &[0.05, 0.1, 0.95], 10).unwrap();
        let want = 2.0 / 3.0 * (0.5f64 - 0.075).abs() + 1.0 / 3.0 * 0.05;
        assert!((e - want).abs() < 1e-12, "{e} vs {want}");
    }
}
