//! Architecture description of a fusion head (method.md §4).

use super::error::{HeadError, Result};

/// How the fields (modalities) are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    /// `concat(f₀, f₁, …) → Linear(Σd, h) → ReLU → Dropout → BatchNorm(h) → Linear(h, out)`.
    Early,
    /// Per field `Linear(d, h) → ReLU → Dropout → BatchNorm(h)`; `concat(n·h) → Linear(n·h, out)`.
    Late,
}

/// Architecture hyper-parameters of a fusion head.
///
/// `hidden` is the width of the single hidden layer (early fusion) or of each field's
/// hidden layer (late fusion). The output layer has one logit for two classes (sigmoid,
/// BCE-with-logits, as in the paper's code) and `C` logits otherwise (softmax, cross-entropy).
///
/// ```
/// use medvec_query::heads::HeadSpec;
/// // The paper's parameter counts (method.md §4), binary task, fields (text, image):
/// assert_eq!(HeadSpec::early().param_count(&[512, 512], 2), 131_585);
/// assert_eq!(HeadSpec::late().param_count(&[512, 512], 2), 66_049);
/// assert_eq!(HeadSpec::early().param_count(&[4096, 768], 2), 623_105);
/// assert_eq!(HeadSpec::late().param_count(&[4096, 768], 2), 311_809);
/// // Three fields: late fusion has one 64-unit branch each.
/// assert_eq!(HeadSpec::late().param_count(&[512, 512, 64], 2), 66_049 + 64 * 64 + 3 * 64 + 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadSpec {
    /// Early or late fusion.
    pub fusion: Fusion,
    /// Hidden width (per modality for late fusion).
    pub hidden: usize,
    /// Dropout probability in `[0, 1)`; the reference runs used 0.
    pub dropout: f32,
}

impl HeadSpec {
    /// Early fusion, 128 hidden units, no dropout (the reference configuration).
    pub fn early() -> Self {
        Self {
            fusion: Fusion::Early,
            hidden: 128,
            dropout: 0.0,
        }
    }

    /// Late fusion, 64 hidden units per modality, no dropout (the reference configuration).
    pub fn late() -> Self {
        Self {
            fusion: Fusion::Late,
            hidden: 64,
            dropout: 0.0,
        }
    }

    /// Same spec with another dropout probability.
    pub fn with_dropout(self, dropout: f32) -> Self {
        Self { dropout, ..self }
    }

    /// Same spec with another hidden width.
    pub fn with_hidden(self, hidden: usize) -> Self {
        Self { hidden, ..self }
    }

    /// Number of trainable parameters (BatchNorm weight and bias included, running
    /// statistics not) for the given field dimensions (in field order) and class count.
    pub fn param_count(&self, dims: &[usize], num_classes: usize) -> usize {
        Layout {
            spec: *self,
            dims: dims.to_vec(),
            num_classes,
        }
        .param_count()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.hidden == 0 {
            return Err(HeadError::InvalidConfig(
                "hidden width must be positive".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(HeadError::InvalidConfig(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// A spec bound to concrete field dimensions and a class count.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub spec: HeadSpec,
    /// Dimension of each field, in the head's field order.
    pub dims: Vec<usize>,
    pub num_classes: usize,
}

impl Layout {
    /// The fields feeding each hidden branch, in concatenation order: early fusion has one
    /// branch over every field; late fusion one branch per field.
    pub fn branches(&self) -> Vec<Vec<usize>> {
        let fields = 0..self.dims.len();
        match self.spec.fusion {
            Fusion::Early => vec![fields.collect()],
            Fusion::Late => fields.map(|k| vec![k]).collect(),
        }
    }

    /// Number of hidden branches.
    pub fn branch_count(&self) -> usize {
        match self.spec.fusion {
            Fusion::Early => 1,
            Fusion::Late => self.dims.len(),
        }
    }

    /// Input width of branch `k` (the concatenated width of its fields).
    pub fn branch_in_dim(&self, k: usize) -> usize {
        match self.spec.fusion {
            Fusion::Early => self.dims.iter().sum(),
            Fusion::Late => self.dims[k],
        }
    }

    /// Width of the concatenated hidden representation fed to the output layer.
    pub fn concat_width(&self) -> usize {
        self.spec.hidden * self.branch_count()
    }

    /// One logit for binary tasks, `C` otherwise.
    pub fn out_dim(&self) -> usize {
        if self.num_classes == 2 {
            1
        } else {
            self.num_classes
        }
    }

    pub fn param_count(&self) -> usize {
        let h = self.spec.hidden;
        let hidden: usize = (0..self.branch_count())
            .map(|k| self.branch_in_dim(k) * h + h + 2 * h)
            .sum();
        hidden + self.concat_width() * self.out_dim() + self.out_dim()
    }
}
