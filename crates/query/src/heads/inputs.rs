//! Per-field inputs (one matrix per vector field, rows aligned) and labelled sets.
//!
//! Every head needs every one of its fields for each row. A row that lacks one must be
//! handled by the caller (dropped, or imputed) before it reaches a head.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use super::error::{HeadError, Result};

/// The embeddings of the same rows in one or more vector fields (for example a text and an
/// image embedding), checked to be finite and of equal row count. Field `k` is column block
/// `k` of early fusion and branch `k` of late fusion.
///
/// ```
/// use medvec_query::heads::Inputs;
/// use ndarray::Array2;
/// let text = Array2::<f32>::zeros((3, 4));
/// let image = Array2::<f32>::ones((3, 2));
/// let inputs = Inputs::new(text.view(), image.view()).unwrap();
/// assert_eq!((inputs.rows(), inputs.dims()), (3, vec![4, 2]));
/// assert!(Inputs::new(text.view(), Array2::<f32>::ones((2, 2)).view()).is_err());
/// let three = Inputs::from_fields(vec![text.view(), image.view(), text.view()]).unwrap();
/// assert_eq!(three.dims(), vec![4, 2, 4]);
/// ```
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    fields: Vec<ArrayView2<'a, f32>>,
}

impl<'a> Inputs<'a> {
    /// Two fields, text then image (the paper's order: field 0 is text, field 1 is image).
    ///
    /// Errors if the row counts differ, a dimension is zero, or a value is not finite.
    pub fn new(text: ArrayView2<'a, f32>, image: ArrayView2<'a, f32>) -> Result<Self> {
        Self::from_fields(vec![text, image])
    }

    /// One matrix per field (rows are cases, columns are embedding dimensions), in the head's
    /// field order. Errors if there is no field, the row counts differ, a dimension is zero, or
    /// a value is not finite.
    pub fn from_fields(fields: Vec<ArrayView2<'a, f32>>) -> Result<Self> {
        let Some(first) = fields.first() else {
            return Err(HeadError::Empty("fields (a head needs at least one)"));
        };
        let rows = first.nrows();
        if let Some(other) = fields.iter().find(|m| m.nrows() != rows) {
            return Err(HeadError::ShapeMismatch {
                what: "rows of one field vs another",
                expected: rows,
                got: other.nrows(),
            });
        }
        if fields.iter().any(|m| m.ncols() == 0) {
            return Err(HeadError::Empty("embedding dimension"));
        }
        for m in &fields {
            check_finite(*m, "field embeddings")?;
        }
        Ok(Self { fields })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.fields[0].nrows()
    }

    /// Number of fields.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The matrix of field `k`.
    pub fn field(&self, k: usize) -> ArrayView2<'a, f32> {
        self.fields[k]
    }

    /// Embedding dimension of each field, in order.
    pub fn dims(&self) -> Vec<usize> {
        self.fields.iter().map(|m| m.ncols()).collect()
    }

    pub(crate) fn row(&self, field: usize, row: usize) -> ArrayView1<'a, f32> {
        self.fields[field].index_axis_move(Axis(0), row)
    }

    /// Errors unless the fields have exactly the dimensions `expected` (what a head was
    /// trained on).
    pub(crate) fn check_dims(&self, expected: &[usize]) -> Result<()> {
        if self.fields.len() != expected.len() {
            return Err(HeadError::ShapeMismatch {
                what: "number of fields",
                expected: expected.len(),
                got: self.fields.len(),
            });
        }
        match self.dims().iter().zip(expected).position(|(g, e)| g != e) {
            None => Ok(()),
            Some(field) => Err(HeadError::FieldDimension {
                field,
                expected: expected[field],
                got: self.fields[field].ncols(),
            }),
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
#[derive(Clone, Debug)]
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
            fields: self
                .inputs
                .fields
                .iter()
                .map(|m| m.select(Axis(0), rows))
                .collect(),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
        })
    }
}

/// An owned labelled set, made by [`Labelled::select`]; already validated.
#[derive(Clone, Debug)]
pub struct LabelledSet {
    fields: Vec<Array2<f32>>,
    labels: Vec<usize>,
}

impl LabelledSet {
    /// Borrows the set (no re-validation: the rows came from a validated set).
    pub fn view(&self) -> Labelled<'_> {
        Labelled {
            inputs: Inputs {
                fields: self.fields.iter().map(|m| m.view()).collect(),
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

    /// Takes the set apart into (one matrix per field, labels).
    pub fn into_parts(self) -> (Vec<Array2<f32>>, Vec<usize>) {
        (self.fields, self.labels)
    }
}
