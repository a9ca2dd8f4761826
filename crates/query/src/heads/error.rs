//! The one error type of the heads module.

/// Everything that can go wrong when building, training, running or decoding a head.
///
/// Bad input never panics: it comes back as one of these.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum HeadError {
    /// Two things that must agree in size do not (rows, dimensions, label counts).
    #[error("{what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was being compared.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// A field's vectors do not have the dimension the head was built for.
    #[error("field {field} (0-based, in the head's field order): expected {expected} dimensions, got {got}")]
    FieldDimension {
        /// Index of the field in the head's field order.
        field: usize,
        /// The dimension required.
        expected: usize,
        /// The dimension found.
        got: usize,
    },
    /// An input that must hold at least one row (or label) is empty.
    #[error("empty input: {0}")]
    Empty(&'static str),
    /// A NaN or infinity in an input matrix or a decoded weight.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// A label is not below the number of classes of the head.
    #[error("label {label} out of range for {num_classes} classes")]
    LabelOutOfRange {
        /// The offending label.
        label: usize,
        /// The number of classes the head was built for.
        num_classes: usize,
    },
    /// A class in `0..num_classes` has no training row, so balanced weights are undefined.
    #[error("class {0} has no training rows; balanced class weights need every class")]
    EmptyClass(usize),
    /// Fewer than two classes.
    #[error("need at least 2 classes, got {0}")]
    TooFewClasses(usize),
    /// A configuration value outside its domain.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A row index outside the data.
    #[error("row {row} out of range for {rows} rows")]
    RowOutOfRange {
        /// The offending index.
        row: usize,
        /// The number of rows available.
        rows: usize,
    },
    /// A serialised head that cannot be decoded.
    #[error("malformed head encoding: {0}")]
    Decode(String),
}

/// Result alias of the heads module.
pub type Result<T> = std::result::Result<T, HeadError>;
