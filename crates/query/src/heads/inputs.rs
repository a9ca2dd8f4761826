//! Paired per-modality inputs and labelled sets.
//!
//! Every head needs both modalities of a row. A row that lacks one must be handled
//! by the caller (dropped, or imputed) before it reaches a head.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use super::error::{HeadError, Result};

/// The two modalities of a head input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modality {
    /// Clinical text embedding (e.g. LLaMA-2 4096-d or CLIP text 512-d).
    Text,
    /// Image embedding (e.g. DINOv2 768-d or CLIP image 512-d).
    Image,
}

/// Text and image embeddings of the same rows, checked to be finite and of equal row count.
///
/// ```
/// use medvec_query::heads::Inputs;
/// use ndarray::Array2;
/// let text = Array2::<f32>::zeros((3, 4));
/// let image = Array2::<f32>::ones((3, 2));
/// let inputs = Inputs::new(text.view(), image.view()).unwrap();
/// assert_eq!(inputs.rows(), 3);
/// assert!(Inputs::new(text.view(), Array2::<f32>::ones((2, 2)).view()).is_err());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    text: ArrayView2<'a, f32>,
    image: ArrayView2<'a, f32>,
}

impl<'a> Inputs<'a> {
    /// Pairs the two matrices (rows are cases, columns are embedding dimensions).
    ///
    /// Errors if the row counts differ, a dimension is zero, or a value is not finite.
    pub fn new(text: ArrayView2<'a, f32>, image: ArrayView2<'a, f32>) -> Result<Self> {
        if text.nrows() != image.nrows() {
            return Err(HeadError::ShapeMismatch {
                what: "image rows vs text rows",
                expected: text.nrows(),
                got: image.nrows(),
            });
        }
        if text.ncols() == 0 || image.ncols() == 0 {
            return Err(HeadError::Empty("embedding dimension"));
        }
        check_finite(text, "text embeddings")?;
        check_finite(image, "image embeddings")?;
        Ok(Self { text, image })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.text.nrows()
    }

    /// The text matrix.
    pub fn text(&self) -> ArrayView2<'a, f32> {
        self.text
    }

    /// The image matrix.
    pub fn image(&self) -> ArrayView2<'a, f32> {
        self.image
    }

    /// Embedding dimension of one modality.
    pub fn dim(&self, modality: Modality) -> usize {
        self.matrix(modality).ncols()
    }

    pub(crate) fn row(&self, modality: Modality, row: usize) -> ArrayView1<'a, f32> {
        self.matrix(modality).index_axis_move(Axis(0), row)
    }

    pub(crate) fn matrix(&self, modality: Modality) -> ArrayView2<'a, f32> {
        match modality {
            Modality::Text => self.text,
            Modality::Image => self.image,
        }
    }
}

fn check_finite(m: ArrayView2<'_, f32>, what: &'static str) -> Result<()> {
    if m.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(HeadError::NonFinite(what))
    }
}

/// Inputs with one class label per row (labels are `0..num_classes`).
///
/// ```
/// use medvec_query::heads::{Inputs, Labelled};
/// use ndarray::Array2;
/// let (t, i) = (Array2::<f32>::zeros((2, 3)), Array2::<f32>::zeros((2, 3)));
/// let labels = [0, 1];
/// let set = Labelled::new(Inputs::new(t.view(), i.view()).unwrap(), &labels).unwrap();
/// assert_eq!(set.len(), 2);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Labelled<'a> {
    inputs: Inputs<'a>,
    labels: &'a [usize],
}

impl<'a> Labelled<'a> {
    /// Attaches labels; errors if there is not exactly one label per row.
    pub fn new(inputs: Inputs<'a>, labels: &'a [usize]) -> Result<Self> {
        if labels.len() != inputs.rows() {
            return Err(HeadError::ShapeMismatch {
                what: "labels vs rows",
                expected: inputs.rows(),
                got: labels.len(),
            });
        }
        Ok(Self { inputs, labels })
    }

    /// The inputs.
    pub fn inputs(&self) -> &Inputs<'a> {
        &self.inputs
    }

    /// The labels.
    pub fn labels(&self) -> &'a [usize] {
        self.labels
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Copies the given rows (in the given order) into an owned set, e.g. one part of a
    /// [`stratified_split`](super::stratified_split).
    pub fn select(&self, rows: &[usize]) -> Result<LabelledSet> {
        if let Some(&row) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(HeadError::RowOutOfRange {
                row,
                rows: self.len(),
            });
        }
        Ok(LabelledSet {
            text: self.inputs.text.select(Axis(0), rows),
            image: self.inputs.image.select(Axis(0), rows),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
        })
    }
}

/// An owned labelled set, made by [`Labelled::select`]; already validated.
#[derive(Clone, Debug)]
pub struct LabelledSet {
    text: Array2<f32>,
    image: Array2<f32>,
    labels: Vec<usize>,
}

impl LabelledSet {
    /// Borrows the set (no re-validation: the rows came from a validated set).
    pub fn view(&self) -> Labelled<'_> {
        Labelled {
            inputs: Inputs {
                text: self.text.view(),
                image: self.image.view(),
            },
            labels: &self.labels,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Takes the set apart into (text, image, labels).
    pub fn into_parts(self) -> (Array2<f32>, Array2<f32>, Vec<usize>) {
        (self.text, self.image, self.labels)
    }
}
