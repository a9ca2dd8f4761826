//! Training behaviour: learning, determinism, epoch selection, prediction and bad input.

mod heads_common;

use heads_common::{clusters, Synthetic};
use medvec_query::heads::{
    train, ClassWeighting, HeadError, HeadSpec, Inputs, Labelled, TrainConfig, TrainedHead,
};
use ndarray::{s, Array2};

fn set(d: &Synthetic) -> Labelled<'_> {
    Labelled::new(
        Inputs::new(d.text.view(), d.image.view()).unwrap(),
        &d.labels,
    )
    .unwrap()
}

fn quick(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        max_epochs: epochs,
        seed,
        ..TrainConfig::default()
    }
}

#[test]
fn every_head_kind_learns_separable_data() {
    let specs = [
        HeadSpec::early(),
        HeadSpec::late(),
        HeadSpec::early().with_dropout(0.2),
        HeadSpec::late().with_dropout(0.3).with_hidden(16),
    ];
    for classes in [&[300, 180][..], &[160, 140, 120, 60][..]] {
        let d = clusters(classes, (20, 12), 1.0, 5);
        let all = set(&d);
        let (even, odd): (Vec<usize>, Vec<usize>) = (0..d.labels.len()).partition(|i| i % 2 == 0);
        let (tr, va) = (all.select(&even).unwrap(), all.select(&odd).unwrap());
        for spec in specs {
            let head = train(&spec, &tr.view(), &va.view(), &quick(30, 0)).unwrap();
            let r = head.evaluate(&va.view()).unwrap();
            assert!(
                r.macro_f1 > 0.95,
                "{spec:?} {} classes: macro-F1 {}",
                classes.len(),
                r.macro_f1
            );
            assert_eq!(head.num_classes(), classes.len());
        }
    }
}

#[test]
fn same_seed_gives_identical_weights_and_other_seeds_differ() {
    let d = clusters(&[120, 80, 50], (24, 16), 0.5, 8);
    let config = TrainConfig {
        max_epochs: 4,
        patience: None,
        ..TrainConfig::default()
    };
    let spec = HeadSpec::early().with_dropout(0.1);
    let a = train(&spec, &set(&d), &set(&d), &config).unwrap();
    let b = train(&spec, &set(&d), &set(&d), &config).unwrap();
    let c = train(
        &spec,
        &set(&d),
        &set(&d),
        &TrainConfig { seed: 1, ..config },
    )
    .unwrap();
    assert_eq!(a.weights(), b.weights());
    assert_eq!(losses(&a), losses(&b));
    assert_ne!(a.weights(), c.weights());
}

fn losses(h: &TrainedHead) -> Vec<f64> {
    h.history().iter().map(|r| r.train_loss).collect()
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // Wide enough (256+256, hidden 128) for the parallel matrix products to kick in.
    let d = clusters(&[200, 150], (256, 256), 0.3, 2);
    let config = TrainConfig {
        max_epochs: 2,
        patience: None,
        ..TrainConfig::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train(&HeadSpec::early(), &set(&d), &set(&d), &config).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.weights(), two.weights());
    assert_eq!(losses(&one), losses(&two));
}

#[test]
fn keeps_the_best_validation_epoch_and_stops_after_patience() {
    let d = clusters(&[100, 100], (8, 8), 2.0, 4); // separable: validation F1 hits 1.0 early
    let config = TrainConfig {
        max_epochs: 30,
        patience: Some(3),
        ..TrainConfig::default()
    };
    let head = train(&HeadSpec::early(), &set(&d), &set(&d), &config).unwrap();
    let h = head.history();
    let best = head.best_epoch();
    assert_eq!(
        h.len(),
        best + 3,
        "stopped {} epochs after best epoch {best}",
        h.len()
    );
    let best_f1 = h.iter().map(|r| r.val_macro_f1).fold(f64::MIN, f64::max);
    assert_eq!(h[best - 1].val_macro_f1, best_f1);
    assert!(
        h[..best - 1].iter().all(|r| r.val_macro_f1 < best_f1),
        "earliest best epoch kept"
    );
    // The returned weights are the best epoch's: re-scoring validation reproduces its F1.
    assert_eq!(head.evaluate(&set(&d)).unwrap().macro_f1, best_f1);
    assert!(h
        .iter()
        .all(|r| r.train_seconds >= 0.0 && r.val_seconds >= 0.0 && r.train_loss.is_finite()));
    assert!(h.iter().enumerate().all(|(i, r)| r.epoch == i + 1));
}

#[test]
fn without_patience_all_epochs_run() {
    let d = clusters(&[30, 30], (4, 4), 2.0, 4);
    let config = TrainConfig {
        max_epochs: 7,
        patience: None,
        ..TrainConfig::default()
    };
    assert_eq!(
        train(&HeadSpec::late(), &set(&d), &set(&d), &config)
            .unwrap()
            .history()
            .len(),
        7
    );
}

#[test]
fn training_loss_decreases() {
    let d = clusters(&[300, 100], (16, 16), 0.4, 12);
    let config = TrainConfig {
        max_epochs: 10,
        patience: None,
        ..TrainConfig::default()
    };
    for weighting in [ClassWeighting::Balanced, ClassWeighting::Uniform] {
        let head = train(
            &HeadSpec::early(),
            &set(&d),
            &set(&d),
            &TrainConfig {
                class_weighting: weighting,
                ..config
            },
        )
        .unwrap();
        let l = losses(&head);
        assert!(l[9] < 0.5 * l[0], "{weighting:?}: {l:?}");
    }
}

#[test]
fn probabilities_are_consistent_with_logits_and_predictions() {
    for classes in [&[60, 40][..], &[40, 30, 30][..]] {
        let d = clusters(classes, (6, 5), 0.5, 3);
        let head = train(&HeadSpec::early(), &set(&d), &set(&d), &quick(3, 0)).unwrap();
        let inputs = set(&d).inputs().to_owned();
        let (logits, proba, pred) = (
            head.logits(&inputs).unwrap(),
            head.predict_proba(&inputs).unwrap(),
            head.predict(&inputs).unwrap(),
        );
        assert_eq!(proba.ncols(), classes.len());
        assert_eq!(
            logits.ncols(),
            if classes.len() == 2 { 1 } else { classes.len() }
        );
        for ((p, &y), s) in proba.rows().into_iter().zip(&pred).zip(logits.rows()) {
            assert!((p.sum() - 1.0).abs() < 1e-6);
            if classes.len() == 2 {
                assert!((p[1] - 1.0 / (1.0 + (-s[0]).exp())).abs() < 1e-6);
                assert_eq!(y, usize::from(p[1] > 0.5));
            } else {
                let best = (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b });
                assert_eq!(y, best);
            }
        }
    }
}

#[test]
fn chunked_inference_equals_row_by_row_inference() {
    let d = clusters(&[2600, 2500], (40, 24), 0.5, 6); // more rows than one inference chunk
    let head = train(&HeadSpec::late(), &set(&d), &set(&d), &quick(1, 0)).unwrap();
    let all = head.logits(set(&d).inputs()).unwrap();
    for start in [0usize, 2047, 2048, 4500, 5099] {
        let t = d.text.slice(s![start..start + 1, ..]);
        let i = d.image.slice(s![start..start + 1, ..]);
        let one = head.logits(&Inputs::new(t, i).unwrap()).unwrap();
        assert!((one[[0, 0]] - all[[start, 0]]).abs() < 1e-5, "row {start}");
    }
    let empty = Array2::<f32>::zeros((0, 40));
    let empty_i = Array2::<f32>::zeros((0, 24));
    assert!(head
        .predict(&Inputs::new(empty.view(), empty_i.view()).unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let d = clusters(&[20, 20], (4, 3), 1.0, 1);
    let ok = set(&d);
    let cfg = quick(1, 0);
    let spec = HeadSpec::early();
    let mut nan = d.text.clone();
    nan[[3, 1]] = f32::NAN;
    assert_eq!(
        Inputs::new(nan.view(), d.image.view()).unwrap_err(),
        HeadError::NonFinite("field embeddings")
    );
    assert!(Labelled::new(ok.inputs().clone(), &d.labels[1..]).is_err());
    // Validation dimensions differ from training.
    let other = clusters(&[5, 5], (5, 3), 1.0, 1);
    assert!(matches!(
        train(&spec, &ok, &set(&other), &cfg),
        Err(HeadError::FieldDimension { field: 0, .. })
    ));
    // One class only / a missing class / a validation label the head cannot output.
    let ones = vec![1usize; 40];
    let single = Labelled::new(ok.inputs().clone(), &ones[..]).unwrap();
    assert_eq!(
        train(&spec, &single, &single, &cfg).unwrap_err(),
        HeadError::EmptyClass(0)
    );
    let zeros = vec![0usize; 40];
    let zero = Labelled::new(ok.inputs().clone(), &zeros[..]).unwrap();
    assert_eq!(
        train(&spec, &zero, &zero, &cfg).unwrap_err(),
        HeadError::TooFewClasses(1)
    );
    let gap: Vec<usize> = d.labels.iter().map(|&y| y * 2).collect();
    let gapped = Labelled::new(ok.inputs().clone(), &gap[..]).unwrap();
    assert_eq!(
        train(&spec, &gapped, &gapped, &cfg).unwrap_err(),
        HeadError::EmptyClass(1)
    );
    let high: Vec<usize> = d.labels.iter().map(|&y| y + 5).collect();
    let val_high = Labelled::new(ok.inputs().clone(), &high[..]).unwrap();
    assert!(matches!(
        train(&spec, &ok, &val_high, &cfg),
        Err(HeadError::LabelOutOfRange { .. })
    ));
    // Configuration out of range.
    for bad in [
        TrainConfig {
            batch_size: 1,
            ..cfg
        },
        TrainConfig {
            max_epochs: 0,
            ..cfg
        },
        TrainConfig {
            learning_rate: f64::NAN,
            ..cfg
        },
        TrainConfig { beta2: 1.0, ..cfg },
        TrainConfig {
            patience: Some(0),
            ..cfg
        },
    ] {
        assert!(matches!(
            train(&spec, &ok, &ok, &bad),
            Err(HeadError::InvalidConfig(_))
        ));
    }
    for bad in [
        spec.with_dropout(1.0),
        spec.with_hidden(0),
        spec.with_dropout(-0.1),
    ] {
        assert!(matches!(
            train(&bad, &ok, &ok, &cfg),
            Err(HeadError::InvalidConfig(_))
        ));
    }
    // Prediction with the wrong dimensions.
    let head = train(&spec, &ok, &ok, &cfg).unwrap();
    assert!(matches!(
        head.predict(set(&other).inputs()),
        Err(HeadError::FieldDimension { .. })
    ));
    // Training needs two rows; validation needs one.
    let tiny = ok.select(&[0]).unwrap();
    assert!(train(&spec, &tiny.view(), &ok, &cfg).is_err());
    let none = ok.select(&[]).unwrap();
    assert!(train(&spec, &ok, &none.view(), &cfg).is_err());
    assert!(ok.select(&[40]).is_err());
}

#[test]
fn overflowing_inputs_give_an_error_or_finite_weights() {
    let d = clusters(&[20, 20], (4, 3), 1.0, 1);
    let huge = d.text.mapv(|v| v.signum() * f32::MAX / 2.0);
    let set = Labelled::new(Inputs::new(huge.view(), d.image.view()).unwrap(), &d.labels).unwrap();
    match train(&HeadSpec::early(), &set, &set, &quick(2, 0)) {
        Ok(head) => assert!(head.weights().iter().all(|w| w.is_finite())),
        Err(e) => assert_eq!(e, HeadError::NonFinite("training loss")),
    }
}

#[test]
fn a_trailing_single_row_batch_is_handled() {
    // 65 rows with batch 64 would leave a one-row batch, which BatchNorm cannot train on.
    let d = clusters(&[33, 32], (5, 5), 1.0, 2);
    let head = train(&HeadSpec::early(), &set(&d), &set(&d), &quick(2, 0)).unwrap();
    assert!(head.weights().iter().all(|w| w.is_finite()));
}
