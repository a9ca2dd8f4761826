//! kNN head against a naive re-implementation, plus its conventions.

mod heads_common;

use heads_common::clusters;
use medvec_query::heads::{HeadError, Inputs, KnnConfig, KnnHead, KnnView, KnnWeighting, Labelled};
use ndarray::{array, Array1, ArrayView1};

fn unit(v: ArrayView1<'_, f32>) -> Array1<f64> {
    let v = v.mapv(f64::from);
    let n = v.dot(&v).sqrt();
    if n > 0.0 {
        v / n
    } else {
        v
    }
}

/// Naive kNN in f64: full sort of all similarities.
fn naive(
    train: &Labelled<'_>,
    query: &Inputs<'_>,
    cfg: KnnConfig,
    classes: usize,
) -> Vec<Vec<f64>> {
    let emb = |inp: &Inputs<'_>, r: usize| -> Vec<Array1<f64>> {
        let t = unit(inp.field(0).row(r));
        let i = unit(inp.field(1).row(r));
        match cfg.view {
            KnnView::Text => vec![t],
            KnnView::Image => vec![i],
            KnnView::Both => vec![t, i],
        }
    };
    (0..query.rows())
        .map(|q| {
            let qe = emb(query, q);
            let mut sims: Vec<(f64, usize)> = (0..train.len())
                .map(|r| {
                    let te = emb(train.inputs(), r);
                    let s: f64 =
                        qe.iter().zip(&te).map(|(a, b)| a.dot(b)).sum::<f64>() / qe.len() as f64;
                    (s, r)
                })
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut votes = vec![0.0; classes];
            for &(s, r) in &sims[..cfg.k] {
                votes[train.labels()[r]] += match cfg.weighting {
                    KnnWeighting::Uniform => 1.0,
                    KnnWeighting::Distance => 1.0 / (1.0 - s),
                };
            }
            let total: f64 = votes.iter().sum();
            votes.iter().map(|v| v / total).collect()
        })
        .collect()
}

#[test]
fn matches_a_naive_implementation() {
    let train_d = clusters(&[150, 100, 50], (12, 9), 0.3, 1);
    let query_d = clusters(&[300, 200, 100], (12, 9), 0.3, 1);
    let train = Labelled::new(
        Inputs::new(train_d.text.view(), train_d.image.view()).unwrap(),
        &train_d.labels,
    )
    .unwrap();
    // Shift queries so no query coincides with a training row.
    let qt = query_d.text.mapv(|v| v + 0.05);
    let query = Inputs::new(qt.view(), query_d.image.view()).unwrap();
    for view in [KnnView::Both, KnnView::Text, KnnView::Image] {
        for weighting in [KnnWeighting::Uniform, KnnWeighting::Distance] {
            let cfg = KnnConfig {
                k: 7,
                weighting,
                view,
            };
            let knn = KnnHead::fit(&train, cfg).unwrap();
            let ours = knn.predict_proba(&query).unwrap();
            let want = naive(&train, &query, cfg, 3);
            // Near-ties in similarity may order differently in f32 vs f64; allow a few rows.
            let differing = ours
                .rows()
                .into_iter()
                .zip(&want)
                .filter(|(o, w)| {
                    o.iter()
                        .zip(w.iter())
                        .any(|(a, b)| (f64::from(*a) - b).abs() > 1e-4)
                })
                .count();
            assert!(
                differing <= 3,
                "{view:?} {weighting:?}: {differing} rows differ"
            );
            let preds = knn.predict(&query).unwrap();
            let acc = preds
                .iter()
                .zip(&query_d.labels)
                .filter(|(a, b)| a == b)
                .count() as f64
                / preds.len() as f64;
            assert!(acc > 0.6, "{view:?} {weighting:?}: accuracy {acc}");
        }
    }
}

#[test]
fn exact_matches_take_all_the_weight_and_ties_go_to_the_lower_class() {
    let text = array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 1.0]];
    let image = text.clone();
    let labels = [1, 0, 0];
    let train = Labelled::new(Inputs::new(text.view(), image.view()).unwrap(), &labels).unwrap();
    let cfg = KnnConfig {
        k: 3,
        weighting: KnnWeighting::Distance,
        view: KnnView::Both,
    };
    let knn = KnnHead::fit(&train, cfg).unwrap();
    let q = array![[2.0f32, 0.0]];
    let p = knn
        .predict_proba(&Inputs::new(q.view(), q.view()).unwrap())
        .unwrap();
    assert_eq!(p.row(0).to_vec(), vec![0.0, 1.0]);
    // Uniform vote over a 1–1 tie (k = 2 among rows 0 and 1): class 0 wins the tie.
    let tie = KnnHead::fit(
        &train,
        KnnConfig {
            k: 2,
            weighting: KnnWeighting::Uniform,
            view: KnnView::Text,
        },
    )
    .unwrap();
    let q = array![[1.0f32, 1.0]];
    assert_eq!(
        tie.predict(&Inputs::new(q.view(), q.view()).unwrap())
            .unwrap(),
        vec![0]
    );
}

#[test]
fn bad_configuration_and_dimensions_are_errors() {
    let d = clusters(&[5, 5], (3, 2), 1.0, 1);
    let train = Labelled::new(
        Inputs::new(d.text.view(), d.image.view()).unwrap(),
        &d.labels,
    )
    .unwrap();
    assert!(matches!(
        KnnHead::fit(
            &train,
            KnnConfig {
                k: 0,
                ..KnnConfig::default()
            }
        ),
        Err(HeadError::InvalidConfig(_))
    ));
    assert!(KnnHead::fit(
        &train,
        KnnConfig {
            k: 11,
            ..KnnConfig::default()
        }
    )
    .is_err());
    let knn = KnnHead::fit(&train, KnnConfig::default()).unwrap();
    let wrong = clusters(&[2, 2], (3, 4), 1.0, 1);
    let q = Inputs::new(wrong.text.view(), wrong.image.view()).unwrap();
    assert!(matches!(
        knn.predict(&q),
        Err(HeadError::FieldDimension { .. })
    ));
}
