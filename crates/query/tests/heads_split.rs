//! Stratified split: coverage, per-class shares within one row, determinism.

use std::collections::BTreeMap;

use medvec_query::heads::{stratified_split, HeadError, SplitFractions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn labels(n: usize, classes: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Skewed class frequencies, including rare classes.
    (0..n)
        .map(|_| (rng.random::<f64>().powi(3) * classes as f64) as usize)
        .collect()
}

fn count(rows: &[usize], labels: &[usize]) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for &r in rows {
        *m.entry(labels[r]).or_insert(0) += 1;
    }
    m
}

#[test]
fn every_class_share_is_within_one_row_of_target() {
    for (n, classes, seed) in [(1000, 7, 1), (16_266, 2, 2), (37, 5, 3), (10_015, 7, 4)] {
        let y = labels(n, classes, seed);
        for fractions in [
            SplitFractions::default(),
            SplitFractions {
                train: 0.8,
                val: 0.0,
                test: 0.2,
            },
            SplitFractions {
                train: 0.6,
                val: 0.25,
                test: 0.15,
            },
        ] {
            let s = stratified_split(&y, fractions, seed).unwrap();
            let total = count(&(0..n).collect::<Vec<_>>(), &y);
            for (part, frac) in [
                (&s.train, fractions.train),
                (&s.val, fractions.val),
                (&s.test, fractions.test),
            ] {
                let got = count(part, &y);
                for (&c, &nc) in &total {
                    let have = *got.get(&c).unwrap_or(&0) as f64;
                    assert!(
                        (have - frac * nc as f64).abs() < 1.0,
                        "class {c}: {have} vs {}",
                        frac * nc as f64
                    );
                }
            }
        }
    }
}

#[test]
fn parts_are_disjoint_sorted_and_cover_all_rows() {
    let y = labels(5000, 4, 9);
    let s = stratified_split(&y, SplitFractions::default(), 42).unwrap();
    let mut all: Vec<usize> = s
        .train
        .iter()
        .chain(&s.val)
        .chain(&s.test)
        .copied()
        .collect();
    for part in [&s.train, &s.val, &s.test] {
        assert!(part.windows(2).all(|w| w[0] < w[1]));
    }
    all.sort_unstable();
    assert_eq!(all, (0..5000).collect::<Vec<_>>());
}

#[test]
fn same_seed_same_split_other_seed_other_split() {
    let y = labels(2000, 3, 5);
    let a = stratified_split(&y, SplitFractions::default(), 7).unwrap();
    assert_eq!(
        a,
        stratified_split(&y, SplitFractions::default(), 7).unwrap()
    );
    assert_ne!(
        a,
        stratified_split(&y, SplitFractions::default(), 8).unwrap()
    );
}

#[test]
fn bad_fractions_and_empty_labels_are_errors() {
    let bad = SplitFractions {
        train: 0.7,
        val: 0.2,
        test: 0.2,
    };
    assert!(matches!(
        stratified_split(&[0, 1], bad, 0),
        Err(HeadError::InvalidConfig(_))
    ));
    let nan = SplitFractions {
        train: f64::NAN,
        val: 0.5,
        test: 0.5,
    };
    assert!(stratified_split(&[0, 1], nan, 0).is_err());
    assert_eq!(
        stratified_split(&[], SplitFractions::default(), 0),
        Err(HeadError::Empty("labels"))
    );
}
