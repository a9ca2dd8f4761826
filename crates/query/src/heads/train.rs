//! Training loop with validation-based epoch selection, and the trained head.

use std::time::Instant;

use ndarray::{s, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::{HeadError, Result};
use super::head::{predict_net, TrainedHead};
use super::inputs::{Inputs, Labelled};
use super::loss::loss_and_grad;
use super::metrics::macro_f1;
use super::net::{dropout_mask, gather, Net, Params};
use super::optim::{AdamW, AdamWConfig};
use super::spec::{HeadSpec, Layout};
use super::split::shuffle;

/// How the loss weights the classes.
///
/// For a binary head the weights are per-sample weights `w_{y_i}` in
/// `BCEWithLogitsLoss(weight=…)` with mean reduction (divided by the batch size); for a
/// multi-class head they are `CrossEntropyLoss(weight=w)` (divided by the sum of the
/// batch's weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassWeighting {
    /// `w_c = N / (C · n_c)` over the training rows (the method's choice).
    Balanced,
    /// All classes weigh 1.
    Uniform,
}

/// Training hyper-parameters. `Default` is the method's configuration (method.md §4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Upper bound on epochs (30; the λ sweeps used 50).
    pub max_epochs: usize,
    /// Stop after this many epochs without a strictly better validation macro-F1;
    /// `None` always runs `max_epochs`. Default 10.
    pub patience: Option<usize>,
    /// Mini-batch size (64). A trailing batch of one row is merged into the previous
    /// batch, because BatchNorm cannot normalise a single row (PyTorch raises there).
    pub batch_size: usize,
    /// AdamW learning rate (1e-3).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay (0.01), applied to every parameter as PyTorch does.
    pub weight_decay: f64,
    /// AdamW β1 (0.9).
    pub beta1: f64,
    /// AdamW β2 (0.999).
    pub beta2: f64,
    /// AdamW ε (1e-8).
    pub eps: f64,
    /// Loss class weights (balanced).
    pub class_weighting: ClassWeighting,
    /// Seed of initialisation (ChaCha8 stream 0), shuffling (stream 1) and dropout (stream 2).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            max_epochs: 30,
            patience: Some(10),
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            class_weighting: ClassWeighting::Balanced,
            seed: 0,
        }
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(HeadError::InvalidConfig(what.to_string()));
        if self.max_epochs == 0 {
            return bad("max_epochs must be positive");
        }
        if self.patience == Some(0) {
            return bad("patience must be positive (None disables early stopping)");
        }
        if self.batch_size < 2 {
            return bad("batch_size must be at least 2 (BatchNorm needs two rows)");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate must be positive and finite");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay must be non-negative and finite");
        }
        if !((0.0..1.0).contains(&self.beta1) && (0.0..1.0).contains(&self.beta2)) {
            return bad("betas must be in [0, 1)");
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps must be positive and finite");
        }
        Ok(())
    }

    fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            lr: self.learning_rate,
            weight_decay: self.weight_decay,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
        }
    }
}

/// What happened in one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Row-weighted mean of the batch losses (class-weighted, as optimised).
    pub train_loss: f64,
    /// Macro-F1 on the validation set after the epoch.
    pub val_macro_f1: f64,
    /// Wall-clock seconds spent on the training pass.
    pub train_seconds: f64,
    /// Wall-clock seconds spent on validation inference and scoring.
    pub val_seconds: f64,
}

/// Trains a fusion head on `train_set`, choosing the epoch by validation macro-F1.
///
/// The class count is `1 + max label` of the training set; every class must occur in
/// training (balanced weights need it) and validation labels must be below it.
/// The returned head holds the weights of the first epoch with the best validation
/// macro-F1. Test data never enters training.
///
/// ```
/// use medvec_query::heads::{train, HeadSpec, Inputs, Labelled, TrainConfig};
/// use ndarray::Array2;
/// // Two separable classes: the sign of the first text coordinate.
/// let text = Array2::from_shape_fn((40, 3), |(i, j)| if j == 0 { (i % 2) as f32 * 2.0 - 1.0 } else { 0.1 * j as f32 });
/// let image = Array2::from_shape_fn((40, 2), |(i, j)| ((i * 7 + j) % 5) as f32 / 5.0);
/// let labels: Vec<usize> = (0..40).map(|i| i % 2).collect();
/// let set = Labelled::new(Inputs::new(text.view(), image.view()).unwrap(), &labels).unwrap();
/// let config = TrainConfig { max_epochs: 20, ..TrainConfig::default() };
/// let head = train(&HeadSpec::early(), &set, &set, &config).unwrap();
/// assert_eq!(head.predict(set.inputs()).unwrap(), labels);
/// ```
pub fn train(
    spec: &HeadSpec,
    train_set: &Labelled<'_>,
    val_set: &Labelled<'_>,
    config: &TrainConfig,
) -> Result<TrainedHead> {
    config.validate()?;
    spec.validate()?;
    let layout = layout_for(spec, train_set, val_set)?;
    let weights = class_weights(
        train_set.labels(),
        layout.num_classes,
        config.class_weighting,
    )?;
    let mut run = Run::new(layout, config, train_set.len());
    let mut best = BestEpoch::default();
    let mut history = Vec::new();
    for epoch in 1..=config.max_epochs {
        let t0 = Instant::now();
        let train_loss = run.epoch(train_set, &weights)?;
        let t1 = Instant::now();
        let val_f1 = macro_f1(val_set.labels(), &predict_net(&run.net, val_set.inputs()))?;
        history.push(EpochRecord {
            epoch,
            train_loss,
            val_macro_f1: val_f1,
            train_seconds: (t1 - t0).as_secs_f64(),
            val_seconds: t1.elapsed().as_secs_f64(),
        });
        if best.observe(epoch, val_f1, &run.net) >= config.patience.unwrap_or(usize::MAX) {
            break;
        }
    }
    let (best_epoch, net) = best.weights.unwrap_or((0, run.net));
    Ok(TrainedHead {
        net,
        history,
        best_epoch,
    })
}

/// Epoch selection: the first epoch with the highest validation macro-F1.
#[derive(Default)]
struct BestEpoch {
    f1: f64,
    weights: Option<(usize, Net<f32>)>,
    since: usize,
}

impl BestEpoch {
    /// Records an epoch; returns how many epochs have passed without a strict improvement.
    fn observe(&mut self, epoch: usize, f1: f64, net: &Net<f32>) -> usize {
        if self.weights.is_none() || f1 > self.f1 {
            self.f1 = f1;
            self.weights = Some((epoch, net.clone()));
            self.since = 0;
        } else {
            self.since += 1;
        }
        self.since
    }
}

/// Checks the data against each other and derives the layout (dims and class count).
fn layout_for(spec: &HeadSpec, train_set: &Labelled<'_>, val_set: &Labelled<'_>) -> Result<Layout> {
    if train_set.len() < 2 {
        return Err(HeadError::Empty("training set (needs at least 2 rows)"));
    }
    if val_set.is_empty() {
        return Err(HeadError::Empty("validation set"));
    }
    let dims = train_set.inputs().dims();
    val_set.inputs().check_dims(&dims)?;
    let num_classes = train_set.labels().iter().max().map_or(0, |m| m + 1);
    if num_classes < 2 {
        return Err(HeadError::TooFewClasses(num_classes));
    }
    if let Some(&label) = val_set.labels().iter().find(|&&l| l >= num_classes) {
        return Err(HeadError::LabelOutOfRange { label, num_classes });
    }
    Ok(Layout {
        spec: *spec,
        dims,
        num_classes,
    })
}

/// Per-class loss weights; balanced is `N / (C · n_c)` (scikit-learn's `compute_class_weight`).
fn class_weights(labels: &[usize], num_classes: usize, mode: ClassWeighting) -> Result<Vec<f32>> {
    let mut counts = vec![0usize; num_classes];
    for &l in labels {
        counts[l] += 1;
    }
    if let Some(empty) = counts.iter().position(|&c| c == 0) {
        return Err(HeadError::EmptyClass(empty));
    }
    let n = labels.len() as f64;
    Ok(counts
        .iter()
        .map(|&c| match mode {
            ClassWeighting::Balanced => (n / (num_classes as f64 * c as f64)) as f32,
            ClassWeighting::Uniform => 1.0,
        })
        .collect())
}

/// Batch boundaries over `n` shuffled rows; a final batch of one row joins its predecessor.
fn batch_bounds(n: usize, batch: usize) -> Vec<(usize, usize)> {
    let mut bounds: Vec<(usize, usize)> = (0..n)
        .step_by(batch)
        .map(|s| (s, (s + batch).min(n)))
        .collect();
    if bounds.len() > 1 && bounds.last().is_some_and(|(s, e)| e - s == 1) {
        let (_, end) = bounds.pop().unwrap_or_default();
        if let Some(last) = bounds.last_mut() {
            last.1 = end;
        }
    }
    bounds
}

/// Mutable training state: network, optimiser, RNG streams and reusable buffers.
struct Run {
    net: Net<f32>,
    opt: AdamW<f32>,
    grads: Params<f32>,
    shuffle_rng: ChaCha8Rng,
    dropout_rng: ChaCha8Rng,
    order: Vec<usize>,
    /// One gather buffer per branch, `(batch + 1) × branch input width`.
    buffers: Vec<Array2<f32>>,
    /// The fields of each branch ([`Layout::branches`]), computed once.
    branches: Vec<Vec<usize>>,
    batch_size: usize,
}

fn stream(seed: u64, id: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(id);
    rng
}

impl Run {
    fn new(layout: Layout, config: &TrainConfig, rows: usize) -> Self {
        let cap = config.batch_size + 1;
        let buffers = (0..layout.branch_count())
            .map(|k| Array2::zeros((cap, layout.branch_in_dim(k))))
            .collect();
        Self {
            opt: AdamW::new(config.adamw(), &layout),
            grads: Params::zeros(&layout),
            branches: layout.branches(),
            net: Net::init(layout, &mut stream(config.seed, 0)),
            shuffle_rng: stream(config.seed, 1),
            dropout_rng: stream(config.seed, 2),
            order: (0..rows).collect(),
            buffers,
            batch_size: config.batch_size,
        }
    }

    /// One pass over the shuffled training rows; returns the row-weighted mean loss, or
    /// an error if it diverged (e.g. inputs so large that the products overflow f32).
    fn epoch(&mut self, set: &Labelled<'_>, weights: &[f32]) -> Result<f64> {
        // Moved out for the loop so `step` can borrow `self` mutably.
        let mut order = std::mem::take(&mut self.order);
        shuffle(&mut order, &mut self.shuffle_rng);
        let mut total = 0.0;
        let mut labels = Vec::with_capacity(self.batch_size + 1);
        for (start, end) in batch_bounds(order.len(), self.batch_size) {
            let rows = &order[start..end];
            labels.clear();
            labels.extend(rows.iter().map(|&r| set.labels()[r]));
            total += self.step(set.inputs(), rows, &labels, weights) * rows.len() as f64;
        }
        let mean = total / order.len() as f64;
        self.order = order;
        if mean.is_finite() {
            Ok(mean)
        } else {
            Err(HeadError::NonFinite("training loss"))
        }
    }

    /// Forward, backward and one AdamW update on the given rows; returns the batch loss.
    fn step(
        &mut self,
        inputs: &Inputs<'_>,
        rows: &[usize],
        labels: &[usize],
        weights: &[f32],
    ) -> f64 {
        for (buf, fields) in self.buffers.iter_mut().zip(&self.branches) {
            let dst = buf.slice_mut(s![..rows.len(), ..]);
            gather(inputs, fields, rows.iter().copied(), dst);
        }
        let spec = self.net.layout.spec;
        let xs: Vec<ArrayView2<'_, f32>> = self
            .buffers
            .iter()
            .map(|b| b.slice(s![..rows.len(), ..]))
            .collect();
        let p = spec.dropout;
        let masks: Vec<_> = (0..xs.len())
            .map(|_| {
                (p > 0.0).then(|| dropout_mask(rows.len(), spec.hidden, p, &mut self.dropout_rng))
            })
            .collect();
        let (logits, cache) = self.net.forward_train(&xs, &masks);
        let (loss, g_logits) = loss_and_grad(logits.view(), labels, weights);
        self.net
            .backward(&xs, &cache, g_logits.view(), &mut self.grads);
        self.opt.step(&mut self.net.params, &self.grads);
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_never_leave_a_single_row() {
        assert_eq!(batch_bounds(129, 64), vec![(0, 64), (64, 129)]);
        assert_eq!(batch_bounds(130, 64), vec![(0, 64), (64, 128), (128, 130)]);
        assert_eq!(batch_bounds(64, 64), vec![(0, 64)]);
        assert_eq!(batch_bounds(3, 64), vec![(0, 3)]);
    }

    #[test]
    fn balanced_weights_match_sklearn_formula() {
        let w = class_weights(&[0, 0, 0, 1], 2, ClassWeighting::Balanced).unwrap();
        assert_eq!(w, vec![4.0 / 6.0, 2.0]);
        assert_eq!(
            class_weights(&[0, 0], 2, ClassWeighting::Balanced),
            Err(HeadError::EmptyClass(1))
        );
    }
}
