//! AdamW exactly as `torch.optim.AdamW` (amsgrad off), decay applied to every parameter.

use ndarray::Zip;

use super::linalg::Real;
use super::net::Params;
use super::spec::Layout;

/// Optimiser hyper-parameters (PyTorch defaults apart from the method's weight decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdamWConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

pub(crate) struct AdamW<F> {
    cfg: AdamWConfig,
    step: i32,
    m: Params<F>,
    v: Params<F>,
}

/// Tensors longer than this are updated in parallel (elementwise, so still deterministic).
const PAR_MIN_LEN: usize = 1 << 16;

impl<F: Real> AdamW<F> {
    pub fn new(cfg: AdamWConfig, layout: &Layout) -> Self {
        Self {
            cfg,
            step: 0,
            m: Params::zeros(layout),
            v: Params::zeros(layout),
        }
    }

    /// One update, in PyTorch's order: decoupled decay `p ← p·(1 − lr·wd)`, moment
    /// updates, then `p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)`.
    pub fn step(&mut self, params: &mut Params<F>, grads: &Params<F>) {
        self.step = self.step.saturating_add(1);
        let c = &self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step);
        let bc2_sqrt = (1.0 - c.beta2.powi(self.step)).sqrt();
        let decay = F::cast_f64(1.0 - c.lr * c.weight_decay);
        let step_size = F::cast_f64(c.lr / bc1);
        let (b1, b2) = (F::cast_f64(c.beta1), F::cast_f64(c.beta2));
        let bc2_sqrt = F::cast_f64(bc2_sqrt);
        let eps = F::cast_f64(c.eps);
        let update = move |p: &mut F, &g: &F, m: &mut F, v: &mut F| {
            *p *= decay;
            *m = *m + (F::one() - b1) * (g - *m);
            *v = *v * b2 + (F::one() - b2) * g * g;
            *p -= step_size * *m / ((*v).sqrt() / bc2_sqrt + eps);
        };
        let tensors = params
            .tensors_mut()
            .into_iter()
            .zip(grads.tensors())
            .zip(self.m.tensors_mut().into_iter().zip(self.v.tensors_mut()));
        for ((p, g), (m, v)) in tensors {
            let zip = Zip::from(p).and(&g).and(m).and(v);
            if g.len() >= PAR_MIN_LEN {
                zip.par_for_each(update);
            } else {
                zip.for_each(update);
            }
        }
    }
}
