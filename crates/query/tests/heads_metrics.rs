//! Metrics on hand-worked cases (the scikit-learn comparison is in heads_reference.rs).

use medvec_query::heads::metrics::{
    accuracy, balanced_accuracy, confusion_matrix, macro_f1, precision_recall_fscore_support,
    ClassificationReport,
};
use medvec_query::heads::HeadError;

#[test]
fn hand_worked_three_class_example() {
    let t = [0, 0, 1, 1, 1, 2];
    let p = [0, 1, 1, 1, 2, 2];
    let m = precision_recall_fscore_support(&t, &p, None).unwrap();
    assert_eq!(m.labels, vec![0, 1, 2]);
    assert_eq!(m.precision, vec![1.0, 2.0 / 3.0, 0.5]);
    assert_eq!(m.recall, vec![0.5, 2.0 / 3.0, 1.0]);
    assert_eq!(m.support, vec![2, 3, 1]);
    let f1 = [2.0 / 3.0, 2.0 * 2.0 / 6.0, 2.0 / 3.0];
    assert!(m.f1.iter().zip(f1).all(|(a, b)| (a - b).abs() < 1e-15));
    assert!((macro_f1(&t, &p).unwrap() - f1.iter().sum::<f64>() / 3.0).abs() < 1e-15);
    assert!((balanced_accuracy(&t, &p).unwrap() - (0.5 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-15);
    assert!((accuracy(&t, &p).unwrap() - 4.0 / 6.0).abs() < 1e-15);
}

#[test]
fn zero_division_gives_zero_like_sklearn_default() {
    // Label 1 is never predicted: precision 0/0 → 0, F1 → 0.
    let m = precision_recall_fscore_support(&[0, 1], &[0, 0], None).unwrap();
    assert_eq!(m.precision, vec![0.5, 0.0]);
    assert_eq!(m.f1[1], 0.0);
    // Label 2 only predicted: recall 0/0 → 0, and it is left out of balanced accuracy.
    assert_eq!(balanced_accuracy(&[0, 0], &[0, 2]).unwrap(), 0.5);
}

#[test]
fn labels_absent_from_both_vectors_are_not_averaged() {
    // Labels 0 and 3 only: class 1 and 2 do not count towards macro-F1 (sklearn default).
    assert_eq!(macro_f1(&[0, 3], &[0, 3]).unwrap(), 1.0);
}

#[test]
fn explicit_labels_restrict_the_confusion_matrix() {
    let cm = confusion_matrix(&[0, 1, 2, 2], &[0, 2, 2, 1], Some(&[2, 0])).unwrap();
    assert_eq!(cm.labels, vec![2, 0]);
    assert_eq!(cm.counts, ndarray::arr2(&[[1, 0], [0, 1]]));
    assert!(confusion_matrix(&[0], &[0], Some(&[5])).is_err());
    assert!(confusion_matrix(&[0], &[0], Some(&[0, 0])).is_err());
}

#[test]
fn bad_inputs_are_errors() {
    assert_eq!(accuracy(&[], &[]), Err(HeadError::Empty("labels")));
    assert!(matches!(
        macro_f1(&[0, 1], &[0]),
        Err(HeadError::ShapeMismatch { .. })
    ));
    assert!(ClassificationReport::new(&[1], &[]).is_err());
}
