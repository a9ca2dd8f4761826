//! The fusion network: parameters, forward pass (training and inference) and the
//! hand-written backward pass.
//!
//! Weights are stored input-major, `W: (in, out)`, so a layer is `y = x·W + b`
//! (PyTorch stores the transpose, `(out, in)`; the maths is the same).

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis, Zip};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::inputs::Inputs;
use super::linalg::{matmul_acc_into, matmul_into, Real};
use super::spec::Layout;

/// BatchNorm1d epsilon (PyTorch default).
pub(crate) const BN_EPS: f64 = 1e-5;
/// BatchNorm1d running-statistics momentum (PyTorch default).
pub(crate) const BN_MOMENTUM: f64 = 0.1;

/// Trainable tensors of one hidden branch: Linear then BatchNorm affine.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BranchParams<F> {
    pub w: Array2<F>,
    pub b: Array1<F>,
    pub gamma: Array1<F>,
    pub beta: Array1<F>,
}

/// All trainable tensors. Also used, with the same shapes, for gradients and Adam moments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Params<F> {
    pub branches: Vec<BranchParams<F>>,
    pub out_w: Array2<F>,
    pub out_b: Array1<F>,
}

/// BatchNorm running statistics of one branch (not trained, not counted as parameters).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BnStats<F> {
    pub mean: Array1<F>,
    pub var: Array1<F>,
}

impl<F: Real> Params<F> {
    pub fn zeros(layout: &Layout) -> Self {
        let h = layout.spec.hidden;
        let branches = (0..layout.branch_count())
            .map(|k| BranchParams {
                w: Array2::zeros((layout.branch_in_dim(k), h)),
                b: Array1::zeros(h),
                gamma: Array1::zeros(h),
                beta: Array1::zeros(h),
            })
            .collect();
        Self {
            branches,
            out_w: Array2::zeros((layout.concat_width(), layout.out_dim())),
            out_b: Array1::zeros(layout.out_dim()),
        }
    }

    /// PyTorch's default initialisation: Linear weights are Kaiming-uniform with
    /// a = √5, which is U(−1/√fan_in, 1/√fan_in), and biases use the same bound;
    /// BatchNorm starts at γ = 1, β = 0.
    pub fn init(layout: &Layout, rng: &mut ChaCha8Rng) -> Self {
        let mut p = Self::zeros(layout);
        for br in &mut p.branches {
            uniform_fill(&mut br.w, &mut br.b, rng);
            br.gamma.fill(F::one());
        }
        uniform_fill(&mut p.out_w, &mut p.out_b, rng);
        p
    }

    /// Tensors in canonical order: per branch w, b, γ, β; then output w, b.
    pub fn tensors(&self) -> Vec<ArrayViewD<'_, F>> {
        let mut out = Vec::with_capacity(4 * self.branches.len() + 2);
        for br in &self.branches {
            out.push(br.w.view().into_dyn());
            out.push(br.b.view().into_dyn());
            out.push(br.gamma.view().into_dyn());
            out.push(br.beta.view().into_dyn());
        }
        out.push(self.out_w.view().into_dyn());
        out.push(self.out_b.view().into_dyn());
        out
    }

    /// Mutable tensors in the order of [`Params::tensors`].
    pub fn tensors_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        let mut out = Vec::with_capacity(4 * self.branches.len() + 2);
        for br in &mut self.branches {
            out.push(br.w.view_mut().into_dyn());
            out.push(br.b.view_mut().into_dyn());
            out.push(br.gamma.view_mut().into_dyn());
            out.push(br.beta.view_mut().into_dyn());
        }
        out.push(self.out_w.view_mut().into_dyn());
        out.push(self.out_b.view_mut().into_dyn());
        out
    }

    pub fn count(&self) -> usize {
        self.tensors().iter().map(|t| t.len()).sum()
    }
}

fn uniform_fill<F: Real>(w: &mut Array2<F>, b: &mut Array1<F>, rng: &mut ChaCha8Rng) {
    let bound = 1.0 / (w.nrows() as f64).sqrt();
    let mut draw = || F::cast_f64((2.0 * rng.random::<f64>() - 1.0) * bound);
    w.iter_mut().for_each(|v| *v = draw());
    b.iter_mut().for_each(|v| *v = draw());
}

/// What the backward pass needs from a training forward pass.
pub(crate) struct Cache<F> {
    /// ∂(dropout(relu(z)))/∂z per element: the dropout scale where z > 0 and kept, else 0.
    pub gates: Vec<Array2<F>>,
    pub xhat: Vec<Array2<F>>,
    pub inv_std: Vec<Array1<F>>,
    pub hcat: Array2<F>,
}

/// The network with its BatchNorm running statistics.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Net<F> {
    pub layout: Layout,
    pub params: Params<F>,
    pub stats: Vec<BnStats<F>>,
}

impl<F: Real> Net<F> {
    pub fn init(layout: Layout, rng: &mut ChaCha8Rng) -> Self {
        let h = layout.spec.hidden;
        let stats = (0..layout.branch_count())
            .map(|_| BnStats {
                mean: Array1::zeros(h),
                var: Array1::ones(h),
            })
            .collect();
        Self {
            params: Params::init(&layout, rng),
            layout,
            stats,
        }
    }

    /// Training-mode forward pass: BatchNorm normalises with the batch's biased variance
    /// and updates the running statistics (unbiased variance, momentum 0.1).
    /// `xs[k]` is branch k's input batch; `masks[k]` its inverted-dropout mask, if any.
    pub fn forward_train(
        &mut self,
        xs: &[ArrayView2<'_, F>],
        masks: &[Option<Array2<F>>],
    ) -> (Array2<F>, Cache<F>) {
        let rows = xs[0].nrows();
        let h = self.layout.spec.hidden;
        let mut hcat = Array2::zeros((rows, self.layout.concat_width()));
        let mut cache = Cache {
            gates: Vec::new(),
            xhat: Vec::new(),
            inv_std: Vec::new(),
            hcat: Array2::zeros((0, 0)),
        };
        for (k, x) in xs.iter().enumerate() {
            let br = &self.params.branches[k];
            let mut z = linear(x.view(), &br.w, &br.b);
            let gate = relu_dropout(&mut z, masks[k].as_ref());
            let out = hcat.slice_mut(s![.., k * h..(k + 1) * h]);
            let (xhat, inv_std) = bn_train(&z, br, &mut self.stats[k], out);
            cache.gates.push(gate);
            cache.xhat.push(xhat);
            cache.inv_std.push(inv_std);
        }
        let logits = linear(hcat.view(), &self.params.out_w, &self.params.out_b);
        cache.hcat = hcat;
        (logits, cache)
    }

    /// Backward pass from `∂L/∂logits`, overwriting `grads`.
    pub fn backward(
        &self,
        xs: &[ArrayView2<'_, F>],
        cache: &Cache<F>,
        g_logits: ArrayView2<'_, F>,
        grads: &mut Params<F>,
    ) {
        let h = self.layout.spec.hidden;
        matmul_into(cache.hcat.t(), g_logits, grads.out_w.view_mut());
        grads.out_b.assign(&g_logits.sum_axis(Axis(0)));
        let g_hcat = g_logits.dot(&self.params.out_w.t());
        for (k, x) in xs.iter().enumerate() {
            let g_y = g_hcat.slice(s![.., k * h..(k + 1) * h]);
            let br = &self.params.branches[k];
            let gb = &mut grads.branches[k];
            let mut g_z = bn_backward(g_y, &cache.xhat[k], &cache.inv_std[k], br, gb);
            g_z *= &cache.gates[k];
            matmul_into(x.t(), g_z.view(), gb.w.view_mut());
            gb.b.assign(&g_z.sum_axis(Axis(0)));
        }
    }

    /// Inference-mode forward pass: dropout is the identity and BatchNorm uses the
    /// running statistics.
    #[cfg(test)]
    pub fn forward_eval(&self, xs: &[ArrayView2<'_, F>]) -> Array2<F> {
        let blocks: Vec<Vec<ArrayView2<'_, F>>> = xs.iter().map(|x| vec![x.view()]).collect();
        self.forward_eval_blocks(&blocks)
    }

    /// [`forward_eval`](Self::forward_eval) with each branch's input given as column blocks
    /// (e.g. the field matrices of early fusion) instead of one concatenated
    /// matrix: inference then reads the caller's matrices in place, with no copy.
    pub fn forward_eval_blocks(&self, blocks: &[Vec<ArrayView2<'_, F>>]) -> Array2<F> {
        let rows = blocks[0][0].nrows();
        let h = self.layout.spec.hidden;
        let mut hcat = Array2::zeros((rows, self.layout.concat_width()));
        for (k, x) in blocks.iter().enumerate() {
            let br = &self.params.branches[k];
            let z = linear_blocks(x, &br.w, &br.b);
            let st = &self.stats[k];
            let eps = F::cast_f64(BN_EPS);
            // Fold BatchNorm into one scale and shift per feature.
            let scale = Zip::from(&br.gamma)
                .and(&st.var)
                .map_collect(|&g, &v| g / (v + eps).sqrt());
            let shift = &br.beta - &(&st.mean * &scale);
            let mut out = hcat.slice_mut(s![.., k * h..(k + 1) * h]);
            Zip::from(out.rows_mut())
                .and(z.rows())
                .for_each(|mut o, zr| {
                    Zip::from(&mut o)
                        .and(&zr)
                        .and(&scale)
                        .and(&shift)
                        .for_each(|o, &z, &a, &c| *o = z.max(F::zero()) * a + c);
                });
        }
        linear(hcat.view(), &self.params.out_w, &self.params.out_b)
    }
}

/// `x·W + b`.
fn linear<F: Real>(x: ArrayView2<'_, F>, w: &Array2<F>, b: &Array1<F>) -> Array2<F> {
    let mut z = Array2::zeros((x.nrows(), w.ncols()));
    matmul_into(x, w.view(), z.view_mut());
    z += b;
    z
}

/// `[x₁ x₂ …]·W + b` without building the concatenation: each block multiplies its own rows
/// of `W` and the products accumulate.
fn linear_blocks<F: Real>(blocks: &[ArrayView2<'_, F>], w: &Array2<F>, b: &Array1<F>) -> Array2<F> {
    let mut z = Array2::zeros((blocks[0].nrows(), w.ncols()));
    let mut offset = 0;
    for (i, x) in blocks.iter().enumerate() {
        let rows = w.slice(s![offset..offset + x.ncols(), ..]);
        let beta = if i == 0 { F::zero() } else { F::one() };
        matmul_acc_into(x.view(), rows, z.view_mut(), beta);
        offset += x.ncols();
    }
    z += b;
    z
}

/// In place `z ← dropout(relu(z))`; returns the elementwise derivative (the gate).
fn relu_dropout<F: Real>(z: &mut Array2<F>, mask: Option<&Array2<F>>) -> Array2<F> {
    let mut gate = Array2::zeros(z.raw_dim());
    match mask {
        Some(m) => Zip::from(z).and(&mut gate).and(m).for_each(|z, g, &m| {
            *g = if *z > F::zero() { m } else { F::zero() };
            *z *= *g;
        }),
        None => Zip::from(z).and(&mut gate).for_each(|z, g| {
            *g = if *z > F::zero() { F::one() } else { F::zero() };
            *z *= *g;
        }),
    }
    gate
}

/// Training-mode BatchNorm of `d` into `out`; returns (x̂, 1/σ) for the backward pass.
fn bn_train<F: Real>(
    d: &Array2<F>,
    br: &BranchParams<F>,
    stats: &mut BnStats<F>,
    mut out: ArrayViewMut2<'_, F>,
) -> (Array2<F>, Array1<F>) {
    let n = F::cast_f64(d.nrows() as f64);
    let mean = d.sum_axis(Axis(0)) / n;
    let centered = d - &mean;
    let var = centered.mapv(|v| v * v).sum_axis(Axis(0)) / n;
    let eps = F::cast_f64(BN_EPS);
    let inv_std = var.mapv(|v| F::one() / (v + eps).sqrt());
    let xhat = centered * &inv_std;
    Zip::from(out.rows_mut())
        .and(xhat.rows())
        .for_each(|mut o, x| {
            Zip::from(&mut o)
                .and(&x)
                .and(&br.gamma)
                .and(&br.beta)
                .for_each(|o, &x, &g, &b| *o = x * g + b);
        });
    let m = F::cast_f64(BN_MOMENTUM);
    let unbias = n / (n - F::one());
    Zip::from(&mut stats.mean)
        .and(&mut stats.var)
        .and(&mean)
        .and(&var)
        .for_each(|rm, rv, &mu, &v| {
            *rm = (F::one() - m) * *rm + m * mu;
            *rv = (F::one() - m) * *rv + m * v * unbias;
        });
    (xhat, inv_std)
}

/// BatchNorm backward: fills ∂γ, ∂β and returns ∂L/∂input.
fn bn_backward<F: Real>(
    g_y: ArrayView2<'_, F>,
    xhat: &Array2<F>,
    inv_std: &Array1<F>,
    br: &BranchParams<F>,
    gb: &mut BranchParams<F>,
) -> Array2<F> {
    let n = F::cast_f64(g_y.nrows() as f64);
    gb.gamma.assign(&(&g_y * xhat).sum_axis(Axis(0)));
    gb.beta.assign(&g_y.sum_axis(Axis(0)));
    let dxhat = &g_y * &br.gamma;
    let sum_dxhat = dxhat.sum_axis(Axis(0));
    let sum_dxhat_xhat = (&dxhat * xhat).sum_axis(Axis(0));
    // dx = (1/n)·(1/σ)·(n·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))
    let mut g = dxhat * n - &sum_dxhat - &(xhat * &sum_dxhat_xhat);
    g *= &(inv_std / n);
    g
}

/// Copies the given rows of a branch's `fields` (concatenated) into `out`, converting type.
pub(crate) fn gather<F: Real>(
    inputs: &Inputs<'_>,
    fields: &[usize],
    rows: impl Iterator<Item = usize>,
    mut out: ArrayViewMut2<'_, F>,
) {
    for (r, i) in rows.enumerate() {
        let mut col = 0;
        for &f in fields {
            let src = inputs.row(f, i);
            let mut dst = out.slice_mut(s![r, col..col + src.len()]);
            Zip::from(&mut dst)
                .and(&src)
                .for_each(|d, &v| *d = F::cast_f32(v));
            col += src.len();
        }
    }
}

/// Draws an inverted-dropout mask: each unit kept with probability 1−p and scaled by 1/(1−p).
pub(crate) fn dropout_mask<F: Real>(
    rows: usize,
    cols: usize,
    p: f32,
    rng: &mut ChaCha8Rng,
) -> Array2<F> {
    let keep = F::cast_f64(1.0 / (1.0 - f64::from(p)));
    Array2::from_shape_simple_fn((rows, cols), || {
        if rng.random::<f32>() < p {
            F::zero()
        } else {
            keep
        }
    })
}
