//! The trained fusion head: chunked inference, prediction and evaluation.

use ndarray::{s, Array2};

use super::error::{HeadError, Result};
use super::inputs::{Inputs, Labelled};
use super::loss::{sigmoid, softmax_rows};
use super::metrics::ClassificationReport;
use super::net::Net;
use super::spec::HeadSpec;
use super::train::EpochRecord;

/// A trained fusion head: the weights of the best validation epoch plus the training history.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedHead {
    pub(crate) net: Net<f32>,
    pub(crate) history: Vec<EpochRecord>,
    pub(crate) best_epoch: usize,
}

/// Rows per inference chunk: bounds inference memory to `CHUNK × (hidden + classes)` floats
/// (the inputs are read in place).
pub(crate) const INFER_CHUNK: usize = 2048;

/// Inference-mode logits in chunks of [`INFER_CHUNK`] rows, read in place from `inputs`.
pub(crate) fn logits_net(net: &Net<f32>, inputs: &Inputs<'_>) -> Array2<f32> {
    let layout = &net.layout;
    let branches = layout.branches();
    let n = inputs.rows();
    let mut out = Array2::zeros((n, layout.out_dim()));
    for start in (0..n).step_by(INFER_CHUNK) {
        let end = (start + INFER_CHUNK).min(n);
        let blocks: Vec<Vec<_>> = branches
            .iter()
            .map(|fields| {
                fields
                    .iter()
                    .map(|&f| inputs.field(f).slice_move(s![start..end, ..]))
                    .collect()
            })
            .collect();
        out.slice_mut(s![start..end, ..])
            .assign(&net.forward_eval_blocks(&blocks));
    }
    out
}

/// Class predictions: sigmoid > 0.5 for one logit, first argmax otherwise.
pub(crate) fn predict_net(net: &Net<f32>, inputs: &Inputs<'_>) -> Vec<usize> {
    let logits = logits_net(net, inputs);
    logits
        .rows()
        .into_iter()
        .map(|row| {
            if row.len() == 1 {
                usize::from(sigmoid(row[0]) > 0.5)
            } else {
                argmax(row.iter().copied())
            }
        })
        .collect()
}

/// Index of the first maximum.
pub(crate) fn argmax(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

impl TrainedHead {
    /// Checks that `inputs` have the fields and dimensions the head was trained on.
    fn check_dims(&self, inputs: &Inputs<'_>) -> Result<()> {
        inputs.check_dims(&self.net.layout.dims)
    }

    /// Raw output logits, `n × 1` (binary) or `n × C`, computed in chunks (inference mode).
    pub fn logits(&self, inputs: &Inputs<'_>) -> Result<Array2<f32>> {
        self.check_dims(inputs)?;
        Ok(logits_net(&self.net, inputs))
    }

    /// Class probabilities, `n × C`; for a binary head `[1 − σ(s), σ(s)]`.
    pub fn predict_proba(&self, inputs: &Inputs<'_>) -> Result<Array2<f32>> {
        let logits = self.logits(inputs)?;
        if logits.ncols() == 1 {
            let mut p = Array2::zeros((logits.nrows(), 2));
            for (mut row, &s) in p.rows_mut().into_iter().zip(logits.iter()) {
                let q = sigmoid(s);
                row[0] = 1.0 - q;
                row[1] = q;
            }
            Ok(p)
        } else {
            Ok(softmax_rows(logits.view()))
        }
    }

    /// Predicted classes: `σ(s) > 0.5` (binary) or the first argmax of the logits.
    pub fn predict(&self, inputs: &Inputs<'_>) -> Result<Vec<usize>> {
        self.check_dims(inputs)?;
        Ok(predict_net(&self.net, inputs))
    }

    /// Accuracy, macro-F1, balanced accuracy, per-class scores and confusion matrix on a set.
    pub fn evaluate(&self, set: &Labelled<'_>) -> Result<ClassificationReport> {
        if set.is_empty() {
            return Err(HeadError::Empty("evaluation set"));
        }
        let preds = self.predict(set.inputs())?;
        ClassificationReport::new(set.labels(), &preds)
    }

    /// The architecture.
    pub fn spec(&self) -> HeadSpec {
        self.net.layout.spec
    }

    /// The dimension of each field the head expects, in its field order.
    pub fn dims(&self) -> &[usize] {
        &self.net.layout.dims
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.net.layout.num_classes
    }

    /// Number of trainable parameters.
    pub fn param_count(&self) -> usize {
        self.net.params.count()
    }

    /// Per-epoch training records.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The 1-based epoch whose weights the head holds.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

/// One branch in inference mode: `relu(x·w + b) · scale + shift`, BatchNorm folded into the
/// scale and shift exactly as [`Net::forward_eval_blocks`] does; `x` is the concatenation of
/// the branch's fields in order.
pub struct FoldedBranch {
    /// Indices of the fields feeding this branch, in concatenation order.
    pub fields: Vec<usize>,
    pub w: Array2<f32>,
    pub b: ndarray::Array1<f32>,
    pub scale: ndarray::Array1<f32>,
    pub shift: ndarray::Array1<f32>,
}

/// The head in inference mode, for export: its branches, then `concat(branches)·out_w + out_b`
/// gives the logits (one for a binary head, one per class otherwise).
pub struct FoldedNet {
    pub branches: Vec<FoldedBranch>,
    pub out_w: Array2<f32>,
    pub out_b: ndarray::Array1<f32>,
}

impl TrainedHead {
    /// The weights in inference mode (see [`FoldedNet`]).
    pub fn folded(&self) -> FoldedNet {
        let net = &self.net;
        let eps = super::net::BN_EPS as f32;
        let branches = net
            .layout
            .branches()
            .iter()
            .zip(&net.params.branches)
            .zip(&net.stats)
            .map(|((fields, p), stats)| {
                let scale = ndarray::Zip::from(&p.gamma)
                    .and(&stats.var)
                    .map_collect(|&g, &v| g / (v + eps).sqrt());
                let shift = &p.beta - &(&stats.mean * &scale);
                FoldedBranch {
                    fields: fields.clone(),
                    w: p.w.clone(),
                    b: p.b.clone(),
                    scale,
                    shift,
                }
            })
            .collect();
        FoldedNet {
            branches,
            out_w: net.params.out_w.clone(),
            out_b: net.params.out_b.clone(),
        }
    }
}
