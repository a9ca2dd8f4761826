//! Scalar trait and a thread-count-independent parallel matrix product.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis, NdFloat};
use rayon::prelude::*;

/// The float types the network runs in: `f32` for real use, `f64` for gradient checks.
pub(crate) trait Real: NdFloat {
    fn cast_f64(x: f64) -> Self;
    fn cast_f32(x: f32) -> Self;
    fn widen(self) -> f64;
}

impl Real for f32 {
    fn cast_f64(x: f64) -> Self {
        x as f32
    }
    fn cast_f32(x: f32) -> Self {
        x
    }
    fn widen(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    fn cast_f64(x: f64) -> Self {
        x
    }
    fn cast_f32(x: f32) -> Self {
        f64::from(x)
    }
    fn widen(self) -> f64 {
        self
    }
}

/// Output rows per parallel task when the output is tall (e.g. a weight gradient).
const ROW_BLOCK: usize = 256;
/// Output columns per parallel task when the output is short (a training batch).
const COL_BLOCK: usize = 64;
/// Below this many multiply-adds a single call is faster than spawning tasks.
const PAR_MIN_WORK: usize = 1 << 21;

/// `c = a · b`, overwriting `c`. See [`matmul_acc_into`].
pub(crate) fn matmul_into<F: Real>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    c: ArrayViewMut2<'_, F>,
) {
    matmul_acc_into(a, b, c, F::zero());
}

/// `c = a · b + beta · c` (beta 0 overwrites, 1 accumulates).
///
/// Large products are cut into output blocks whose boundaries depend only on the shapes,
/// never on the number of threads, and every block is an independent product with no
/// cross-block reduction. The result is therefore bit-identical for any thread count.
pub(crate) fn matmul_acc_into<F: Real>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    mut c: ArrayViewMut2<'_, F>,
    beta: F,
) {
    let (m, n) = c.dim();
    if m * n * a.ncols() < PAR_MIN_WORK {
        general_mat_mul(F::one(), &a, &b, beta, &mut c);
        return;
    }
    if m >= 2 * ROW_BLOCK {
        let jobs: Vec<_> = c
            .axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .zip(a.axis_chunks_iter(Axis(0), ROW_BLOCK))
            .collect();
        jobs.into_par_iter()
            .for_each(|(mut cb, ab)| general_mat_mul(F::one(), &ab, &b, beta, &mut cb));
    } else {
        let jobs: Vec<_> = c
            .axis_chunks_iter_mut(Axis(1), COL_BLOCK)
            .zip(b.axis_chunks_iter(Axis(1), COL_BLOCK))
            .collect();
        jobs.into_par_iter()
            .for_each(|(mut cb, bb)| general_mat_mul(F::one(), &a, &bb, beta, &mut cb));
    }
}
