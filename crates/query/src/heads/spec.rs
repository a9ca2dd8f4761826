//! Architecture description of a fusion head (method.md §4).

use super::error::{HeadError, Result};
use super::inputs::Modality;

/// How the two modalities are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    /// `concat(text, image) → Linear(d_t+d_i, h) → ReLU → Dropout → BatchNorm(h) → Linear(h, out)`.
    Early,
    /// Per modality `Linear(d, h) → ReLU → Dropout → BatchNorm(h)`; `concat(2h) → Linear(2h, out)`.
    Late,
}

/// Architecture hyper-parameters of a fusion head.
///
/// `hidden` is the width of the single hidden layer (early fusion) or of each modality's
/// hidden layer (late fusion). The output layer has one logit for two classes (sigmoid,
/// BCE-with-logits, as in the paper's code) and `C` logits otherwise (softmax, cross-entropy).
///
/// ```
/// use medvec_query::heads::HeadSpec;
/// // The paper's parameter counts (method.md §4), binary task:
/// assert_eq!(HeadSpec::early().param_count(512, 512, 2), 131_585);
/// assert_eq!(HeadSpec::late().param_count(512, 512, 2), 66_049);
/// assert_eq!(HeadSpec::early().param_count(4096, 768, 2), 623_105);
/// assert_eq!(HeadSpec::late().param_count(4096, 768, 2), 311_809);
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
    /// statistics not) for the given input dimensions and class count.
    pub fn param_count(&self, text_dim: usize, image_dim: usize, num_classes: usize) -> usize {
        Layout {
            spec: *self,
            text_dim,
            image_dim,
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

/// A spec bound to concrete input dimensions and a class count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Layout {
    pub spec: HeadSpec,
    pub text_dim: usize,
    pub image_dim: usize,
    pub num_classes: usize,
}

const EARLY_BRANCHES: &[&[Modality]] = &[&[Modality::Text, Modality::Image]];
const LATE_BRANCHES: &[&[Modality]] = &[&[Modality::Text], &[Modality::Image]];

impl Layout {
    /// The modalities feeding each hidden branch, in concatenation order.
    pub fn branches(&self) -> &'static [&'static [Modality]] {
        match self.spec.fusion {
            Fusion::Early => EARLY_BRANCHES,
            Fusion::Late => LATE_BRANCHES,
        }
    }

    pub fn dim(&self, modality: Modality) -> usize {
        match modality {
            Modality::Text => self.text_dim,
            Modality::Image => self.image_dim,
        }
    }

    /// Input width of branch `k` (the concatenated width of its modalities).
    pub fn branch_in_dim(&self, k: usize) -> usize {
        self.branches()[k].iter().map(|&m| self.dim(m)).sum()
    }

    /// Width of the concatenated hidden representation fed to the output layer.
    pub fn concat_width(&self) -> usize {
        self.spec.hidden * self.branches().len()
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
        let hidden: usize = (0..self.branches().len())
            .map(|k| self.branch_in_dim(k) * h + h + 2 * h)
            .sum();
        hidden + self.concat_width() * self.out_dim() + self.out_dim()
    }
}
