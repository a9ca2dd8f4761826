//! White-box tests of the network internals: finite-difference gradient check and
//! BatchNorm training / inference behaviour.

use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::loss::loss_and_grad;
use super::net::{dropout_mask, Net, Params, BN_EPS};
use super::spec::{Fusion, HeadSpec, Layout};

fn layout(fusion: Fusion, num_classes: usize, dropout: f32) -> Layout {
    layout_of(&[3, 4], fusion, num_classes, dropout)
}

fn layout_of(dims: &[usize], fusion: Fusion, num_classes: usize, dropout: f32) -> Layout {
    Layout {
        spec: HeadSpec {
            fusion,
            hidden: 5,
            dropout,
        },
        dims: dims.to_vec(),
        num_classes,
    }
}

fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    Array2::from_shape_simple_fn((rows, cols), || rng.random::<f64>() * 2.0 - 1.0)
}

/// Branch inputs of a random batch: the concatenation for early fusion, one per modality for late.
fn batch(layout: &Layout, rows: usize, rng: &mut ChaCha8Rng) -> Vec<Array2<f64>> {
    (0..layout.branch_count())
        .map(|k| random(rows, layout.branch_in_dim(k), rng))
        .collect()
}

struct Problem {
    net: Net<f64>,
    xs: Vec<Array2<f64>>,
    masks: Vec<Option<Array2<f64>>>,
    labels: Vec<usize>,
    weights: Vec<f64>,
}

impl Problem {
    fn new(layout: Layout, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = Net::init(layout.clone(), &mut rng);
        let rows = 7;
        let xs = batch(&layout, rows, &mut rng);
        let p = layout.spec.dropout;
        let masks = xs
            .iter()
            .map(|_| (p > 0.0).then(|| dropout_mask(rows, layout.spec.hidden, p, &mut rng)))
            .collect();
        let labels = (0..rows).map(|i| i % layout.num_classes).collect();
        let weights = (0..layout.num_classes)
            .map(|c| 0.5 + c as f64 * 0.75)
            .collect();
        Self {
            net,
            xs,
            masks,
            labels,
            weights,
        }
    }

    fn views(&self) -> Vec<ArrayView2<'_, f64>> {
        self.xs.iter().map(|x| x.view()).collect()
    }

    fn loss(&mut self) -> f64 {
        let xs: Vec<Array2<f64>> = self.xs.clone();
        let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
        let (logits, _) = self.net.forward_train(&views, &self.masks);
        loss_and_grad(logits.view(), &self.labels, &self.weights).0
    }

    fn analytic(&mut self) -> Params<f64> {
        let xs: Vec<Array2<f64>> = self.xs.clone();
        let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
        let (logits, cache) = self.net.forward_train(&views, &self.masks);
        let (_, g) = loss_and_grad(logits.view(), &self.labels, &self.weights);
        let mut grads = Params::zeros(&self.net.layout);
        self.net
            .backward(&self.views(), &cache, g.view(), &mut grads);
        grads
    }

    fn perturb(&mut self, tensor: usize, index: usize, delta: f64) {
        let mut ts = self.net.params.tensors_mut();
        if let Some(v) = ts[tensor].iter_mut().nth(index) {
            *v += delta;
        }
    }
}

/// Largest |analytic − numeric| / max(1, |numeric|) over every parameter.
fn max_gradient_error(layout: Layout) -> f64 {
    let mut prob = Problem::new(layout, 11);
    let grads = prob.analytic();
    let analytic: Vec<Vec<f64>> = grads
        .tensors()
        .iter()
        .map(|t| t.iter().copied().collect())
        .collect();
    let h = 1e-6;
    let norm: f64 = analytic.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
    assert!(norm > 1e-3, "gradient unexpectedly tiny: {norm}");
    let mut worst = 0.0f64;
    for (t, values) in analytic.iter().enumerate() {
        for (i, &a) in values.iter().enumerate() {
            prob.perturb(t, i, h);
            let up = prob.loss();
            prob.perturb(t, i, -2.0 * h);
            let down = prob.loss();
            prob.perturb(t, i, h);
            let numeric = (up - down) / (2.0 * h);
            worst = worst.max((a - numeric).abs() / numeric.abs().max(1.0));
        }
    }
    worst
}

#[test]
fn gradients_match_finite_differences() {
    // One field (a single-modality baseline), the paper's two, and three fields.
    for dims in [&[3][..], &[3, 4], &[3, 4, 2]] {
        for fusion in [Fusion::Early, Fusion::Late] {
            for classes in [2, 3] {
                for dropout in [0.0, 0.4] {
                    let err = max_gradient_error(layout_of(dims, fusion, classes, dropout));
                    assert!(
                        err < 1e-7,
                        "{dims:?} {fusion:?} C={classes} p={dropout}: max error {err:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn gradient_check_detects_a_wrong_gradient() {
    // Sanity of the check itself: a deliberately corrupted analytic gradient must fail it.
    let mut prob = Problem::new(layout(Fusion::Early, 3, 0.0), 5);
    let mut grads = prob.analytic();
    grads.branches[0].gamma[0] *= 1.1;
    let a = grads.branches[0].gamma[0];
    let tensor = 2; // branch 0 γ
    prob.perturb(tensor, 0, 1e-6);
    let up = prob.loss();
    prob.perturb(tensor, 0, -2e-6);
    let down = prob.loss();
    let numeric = (up - down) / 2e-6;
    assert!((a - numeric).abs() > 1e-4 * numeric.abs().max(1e-3));
}

#[test]
fn batchnorm_train_mode_uses_batch_statistics_and_updates_running_stats() {
    let layout = layout(Fusion::Late, 3, 0.0);
    let mut prob = Problem::new(layout, 3);
    let xs = prob.xs.clone();
    let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
    let (_, cache) = prob.net.forward_train(&views, &prob.masks);
    let n = views[0].nrows() as f64;
    for (k, x) in views.iter().enumerate() {
        let br = &prob.net.params.branches[k];
        let z = (x.dot(&br.w) + &br.b).mapv(|v| v.max(0.0));
        let mean = z.sum_axis(ndarray::Axis(0)) / n;
        let var = (&z - &mean).mapv(|v| v * v).sum_axis(ndarray::Axis(0)) / n;
        // Normalised with the biased batch variance …
        let xhat = (&z - &mean) / &var.mapv(|v| (v + BN_EPS).sqrt());
        assert!((&xhat - &cache.xhat[k]).iter().all(|d| d.abs() < 1e-12));
        // … and running statistics moved by momentum 0.1 with the unbiased variance.
        let st = &prob.net.stats[k];
        let want_mean = &mean * 0.1;
        let want_var = &var * (0.1 * n / (n - 1.0)) + 0.9;
        assert!((&st.mean - &want_mean).iter().all(|d| d.abs() < 1e-12));
        assert!((&st.var - &want_var).iter().all(|d| d.abs() < 1e-12));
    }
}

#[test]
fn batchnorm_inference_uses_running_stats_and_rows_are_independent() {
    let layout = layout(Fusion::Early, 3, 0.0);
    let mut prob = Problem::new(layout, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    prob.net.stats[0].mean = Array1::from_shape_simple_fn(5, || rng.random::<f64>());
    prob.net.stats[0].var = Array1::from_shape_simple_fn(5, || 0.5 + rng.random::<f64>());
    let x = prob.xs[0].clone();
    let full = prob.net.forward_eval(&[x.view()]);
    let first = prob.net.forward_eval(&[x.slice(ndarray::s![..1, ..])]);
    // Inference: a row's output does not depend on the other rows of the batch.
    assert!((full.row(0).to_owned() - first.row(0))
        .iter()
        .all(|d| d.abs() < 1e-12));
    let br = &prob.net.params.branches[0];
    let st = &prob.net.stats[0];
    let z = (x.dot(&br.w) + &br.b).mapv(|v| v.max(0.0));
    let y = (&z - &st.mean) / &st.var.mapv(|v| (v + BN_EPS).sqrt()) * &br.gamma + &br.beta;
    let want = y.dot(&prob.net.params.out_w) + &prob.net.params.out_b;
    assert!((&want - &full).iter().all(|d| d.abs() < 1e-12));
    // Training mode: the same first row changes when the rest of the batch changes.
    let masks = vec![None];
    let (train_full, _) = prob.net.forward_train(&[x.view()], &masks);
    let (train_part, _) = prob
        .net
        .forward_train(&[x.slice(ndarray::s![..3, ..])], &masks);
    assert!((train_full.row(0).to_owned() - train_part.row(0))
        .iter()
        .any(|d| d.abs() > 1e-6));
}

#[test]
fn dropout_mask_is_inverted_and_has_the_right_rate() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let m: Array2<f32> = dropout_mask(200, 100, 0.25, &mut rng);
    let kept = m.iter().filter(|&&v| v > 0.0).count() as f64 / m.len() as f64;
    assert!((kept - 0.75).abs() < 0.02, "{kept}");
    assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
}
