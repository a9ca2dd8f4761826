//! Class-weighted losses and their gradients with respect to the logits.
//!
//! * Binary (one logit): `BCEWithLogitsLoss(weight=w[y_i])` with PyTorch's mean reduction,
//!   i.e. `Σ_i w_{y_i}·ℓ_i / B`: per-sample weights, divided by the batch size (not by
//!   the weight sum — that is what PyTorch does for BCE).
//! * Multi-class: `CrossEntropyLoss(weight=w)`, i.e. `Σ_i w_{y_i}·ℓ_i / Σ_i w_{y_i}`.

use ndarray::{Array2, ArrayView2, Zip};

use super::linalg::Real;

/// Mean loss of the batch (as f64) and ∂loss/∂logits.
pub(crate) fn loss_and_grad<F: Real>(
    logits: ArrayView2<'_, F>,
    labels: &[usize],
    class_weights: &[F],
) -> (f64, Array2<F>) {
    if logits.ncols() == 1 {
        bce(logits, labels, class_weights)
    } else {
        cross_entropy(logits, labels, class_weights)
    }
}

fn bce<F: Real>(logits: ArrayView2<'_, F>, labels: &[usize], w: &[F]) -> (f64, Array2<F>) {
    let n = F::cast_f64(labels.len() as f64);
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut total = 0.0f64;
    for ((g, &s), &y) in grad.iter_mut().zip(logits.iter()).zip(labels) {
        let yf = if y == 1 { F::one() } else { F::zero() };
        let wi = w[y];
        // ℓ = max(s, 0) − s·y + log(1 + e^{−|s|}), stable for any s.
        let l = s.max(F::zero()) - s * yf + (-s.abs()).exp().ln_1p();
        total += (wi * l).widen();
        *g = wi * (sigmoid(s) - yf) / n;
    }
    (total / labels.len() as f64, grad)
}

pub(crate) fn sigmoid<F: Real>(s: F) -> F {
    if s >= F::zero() {
        F::one() / (F::one() + (-s).exp())
    } else {
        let e = s.exp();
        e / (F::one() + e)
    }
}

fn cross_entropy<F: Real>(
    logits: ArrayView2<'_, F>,
    labels: &[usize],
    w: &[F],
) -> (f64, Array2<F>) {
    let mut grad = softmax_rows(logits);
    let weight_sum: F = labels.iter().fold(F::zero(), |acc, &y| acc + w[y]);
    let mut total = 0.0f64;
    Zip::from(grad.rows_mut())
        .and(logits.rows())
        .and(labels)
        .for_each(|mut g, s, &y| {
            let max = s.fold(F::neg_infinity(), |m, &v| m.max(v));
            let lse = max + s.fold(F::zero(), |acc, &v| acc + (v - max).exp()).ln();
            total += (w[y] * (lse - s[y])).widen();
            g[y] -= F::one();
            g *= w[y] / weight_sum;
        });
    (total / weight_sum.widen(), grad)
}

/// Row-wise softmax (max-subtracted).
pub(crate) fn softmax_rows<F: Real>(logits: ArrayView2<'_, F>) -> Array2<F> {
    let mut p = logits.to_owned();
    for mut row in p.rows_mut() {
        let max = row.fold(F::neg_infinity(), |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
    p
}
