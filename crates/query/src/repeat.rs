//! Repeated training over seeds (`--seeds N`) or folds (`--cv K`): how good a head is, with its
//! run-to-run spread, and whether the chosen alignment shift beats no shift by more than that
//! spread.
//!
//! With `--cv K`, run `k` tests on fold `k` of a seeded stratified (grouped, with a group
//! column) K-fold partition, and trains on the other folds minus a validation share.
//!
//! Each seed `s` (the settings' seed, then +1, +2, ...) re-draws the split (unless it comes from
//! a split column) and the training's randomness, trains over the candidate λs (λ chosen on
//! validation, never on test) and records the test metrics. The unshifted baseline (λ = 0) is
//! trained on the same split with the same seed, so the comparison is paired.
//!
//! Intervals are 95% percentile-bootstrap intervals of the mean over seeds: 10,000 resamples of
//! the seeds with replacement (ChaCha8, seeded), the 2.5th and 97.5th percentiles of the
//! resampled means (numpy's default linear interpolation).

use crate::error::{QueryError, Result};
use crate::jobs::TrainSettings;
use crate::training::{LambdaProgress, LambdaResult, SavedHead, SplitSource, TrainingData};
use medvec_store::Collection;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Resamples of the bootstrap.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// One seed's outcome on test.
#[derive(Debug, Clone, Serialize)]
pub struct SeedRun {
    pub seed: u64,
    /// The test fold, in cross-validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold: Option<usize>,
    /// λ chosen on validation.
    pub lambda: f32,
    pub macro_f1: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    /// Test macro-F1 of the unshifted head (λ = 0) of the same seed and split.
    pub unshifted_macro_f1: f64,
    /// Rows in the test part.
    pub test_rows: usize,
}

/// Mean, sample standard deviation and 95% bootstrap interval of the mean.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
    pub low: f64,
    pub high: f64,
}

/// The report of [`repeat_training`].
#[derive(Debug, Clone, Serialize)]
pub struct Repeated {
    pub runs: Vec<SeedRun>,
    pub macro_f1: Spread,
    pub accuracy: Spread,
    pub balanced_accuracy: Spread,
    /// Paired gain of the chosen λ over λ = 0, in test macro-F1.
    pub gain_over_unshifted: Spread,
    /// The gain's interval lies above 0: the shift helps by more than run-to-run noise.
    pub shift_beats_unshifted: bool,
    /// Per λ of the grid: validation and test macro-F1 over the seeds (the sweep's bands).
    pub curve: Vec<CurveBand>,
}

/// One λ's validation and test macro-F1 over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct CurveBand {
    pub lambda: f32,
    pub val_macro_f1: Spread,
    pub test_macro_f1: Option<Spread>,
}

/// Trains over `lambdas` once per seed (`seeds` of them, from `settings.seed` on) and reports
/// the spread of the test metrics. Returns the report and the first seed's head (the one a
/// single run with `settings` would give).
pub fn repeat_training(
    collection: &Collection,
    settings: &TrainSettings,
    lambdas: &[f32],
    seeds: usize,
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<(Repeated, SavedHead)> {
    if seeds < 2 {
        return Err(QueryError::Invalid(
            "seeds: repeating needs at least 2 seeds".into(),
        ));
    }
    let runs = (0..seeds as u64)
        .map(|i| settings.reseeded(settings.seed + i))
        .collect();
    repeat_runs(collection, runs, lambdas, progress)
}

/// K-fold cross-validation (`--cv K`): one run per fold, that fold as test, the other folds
/// split into train and a validation share `val` (groups whole when `group_column` is set).
/// Returns the report and fold 0's head.
pub fn cross_validate(
    collection: &Collection,
    settings: &TrainSettings,
    lambdas: &[f32],
    (folds, val): (usize, f64),
    group_column: Option<&str>,
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<(Repeated, SavedHead)> {
    if folds < 2 {
        return Err(QueryError::Invalid("cv: needs at least 2 folds".into()));
    }
    let runs = (0..folds)
        .map(|fold| TrainSettings {
            split: SplitSource::Fold {
                fold,
                folds,
                val,
                seed: settings.seed,
                group_column: group_column.map(str::to_string),
            },
            ..settings.clone()
        })
        .collect();
    repeat_runs(collection, runs, lambdas, progress)
}

/// Trains each of `runs` over `lambdas` and reports the spread of their test metrics.
fn repeat_runs(
    collection: &Collection,
    runs: Vec<TrainSettings>,
    lambdas: &[f32],
    progress: &mut dyn FnMut(LambdaProgress),
) -> Result<(Repeated, SavedHead)> {
    let mut done = Vec::with_capacity(runs.len());
    let mut curves: Vec<Vec<LambdaResult>> = Vec::with_capacity(runs.len());
    let mut first = None;
    // The runs differ in seed or fold only: the labelled rows are read once.
    let mut data: Option<TrainingData> = None;
    for run in &runs {
        let request = run.request(collection, lambdas.to_vec())?;
        let data = match data.take() {
            Some(loaded) if loaded.serves(&request) => data.insert(loaded),
            _ => data.insert(TrainingData::load(collection, &request)?),
        };
        let head = run.train_on(data, &request, progress)?;
        let unshifted = match head.curve.iter().find(|p| p.lambda == 0.0) {
            Some(point) => point.test_macro_f1,
            None => {
                let plain = run.request(collection, vec![0.0])?;
                run.train_on(data, &plain, &mut |_| {})?.curve[0].test_macro_f1
            }
        };
        let fold = match run.split {
            SplitSource::Fold { fold, .. } => Some(fold),
            _ => None,
        };
        done.push(seed_run(&head, run.seed, fold, unshifted)?);
        curves.push(head.curve.clone());
        first.get_or_insert(head);
    }
    let runs = done;
    let column = |f: fn(&SeedRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let gains: Vec<f64> = runs
        .iter()
        .map(|r| r.macro_f1 - r.unshifted_macro_f1)
        .collect();
    let gain = spread(&gains, 3);
    let report = Repeated {
        macro_f1: spread(&column(|r| r.macro_f1), 0),
        accuracy: spread(&column(|r| r.accuracy), 1),
        balanced_accuracy: spread(&column(|r| r.balanced_accuracy), 2),
        gain_over_unshifted: gain,
        shift_beats_unshifted: gain.low > 0.0,
        curve: bands(lambdas, &curves),
        runs,
    };
    Ok((report, first.expect("at least two runs")))
}

fn seed_run(
    head: &SavedHead,
    seed: u64,
    fold: Option<usize>,
    unshifted: Option<f64>,
) -> Result<SeedRun> {
    let test = head.meta.test.as_ref().ok_or_else(|| {
        QueryError::Invalid("seeds: the split has no test rows to report on".into())
    })?;
    Ok(SeedRun {
        seed,
        fold,
        lambda: head.meta.lambda,
        macro_f1: test.macro_f1,
        accuracy: test.accuracy,
        balanced_accuracy: test.balanced_accuracy,
        unshifted_macro_f1: unshifted.unwrap_or(f64::NAN),
        test_rows: head.meta.rows[2],
    })
}

fn bands(lambdas: &[f32], curves: &[Vec<LambdaResult>]) -> Vec<CurveBand> {
    lambdas
        .iter()
        .enumerate()
        .map(|(i, &lambda)| {
            let val: Vec<f64> = curves.iter().map(|c| c[i].val_macro_f1).collect();
            let test: Option<Vec<f64>> = curves.iter().map(|c| c[i].test_macro_f1).collect();
            CurveBand {
                lambda,
                val_macro_f1: spread(&val, 10 + i as u64),
                test_macro_f1: test.map(|t| spread(&t, 1_000_000 + i as u64)),
            }
        })
        .collect()
}

/// Mean, sample sd and the 95% percentile-bootstrap interval of the mean (`stream` seeds the
/// resampling, so every reported interval is reproducible).
pub fn spread(values: &[f64], stream: u64) -> Spread {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    let (low, high) = bootstrap_interval(values, BOOTSTRAP_RESAMPLES, stream);
    Spread {
        mean,
        sd,
        low,
        high,
    }
}

/// The 2.5th and 97.5th percentiles of the means of `resamples` resamples of `values`.
pub fn bootstrap_interval(values: &[f64], resamples: usize, stream: u64) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x6d65_6476_6563 ^ stream);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let sum: f64 = (0..values.len())
                .map(|_| values[rng.random_range(0..values.len())])
                .sum();
            sum / values.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    (percentile(&means, 2.5), percentile(&means, 97.5))
}

/// numpy's default (linear) percentile of sorted values.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_numpys_linear_one() {
        let sorted = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 100.0), 8.0);
        assert!((percentile(&sorted, 50.0) - 3.0).abs() < 1e-12);
        assert!((percentile(&sorted, 2.5) - 1.075).abs() < 1e-12);
    }

    #[test]
    fn spread_of_constant_values_is_a_point() {
        let s = spread(&[0.5; 5], 0);
        assert_eq!((s.mean, s.sd, s.low, s.high), (0.5, 0.0, 0.5, 0.5));
    }

    #[test]
    fn interval_brackets_the_mean_and_narrows_with_more_seeds() {
        let few: Vec<f64> = (0..5).map(|i| 0.6 + 0.01 * i as f64).collect();
        let many: Vec<f64> = (0..50).map(|i| 0.6 + 0.01 * (i % 5) as f64).collect();
        let (a, b) = (spread(&few, 1), spread(&many, 1));
        assert!(a.low <= a.mean && a.mean <= a.high);
        assert!(b.high - b.low < a.high - a.low);
    }
}
