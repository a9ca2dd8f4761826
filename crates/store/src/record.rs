//! Records as the library's users see them.

use crate::value::Value;
use std::collections::BTreeMap;

/// One case: a unique id, zero or more vectors by field name, and payload values by field name.
///
/// ```
/// use medvec_store::{Record, Value};
/// let record = Record::new("ISIC_0027419")
///     .with_vector("image", vec![0.6, 0.8])
///     .with_value("dx", Value::String("bkl".into()));
/// assert_eq!(record.vectors["image"].len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub id: String,
    pub vectors: BTreeMap<String, Vec<f32>>,
    pub payload: BTreeMap<String, Value>,
}

impl Record {
    pub fn new(id: impl Into<String>) -> Record {
        Record {
            id: id.into(),
            ..Record::default()
        }
    }

    pub fn with_vector(mut self, field: impl Into<String>, vector: Vec<f32>) -> Record {
        self.vectors.insert(field.into(), vector);
        self
    }

    pub fn with_value(mut self, field: impl Into<String>, value: Value) -> Record {
        self.payload.insert(field.into(), value);
        self
    }
}

/// The longest id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// Ids are non-empty, at most [`MAX_ID_BYTES`] long, free of control characters (they are printed
/// in CSV, JSON and error messages) and of leading or trailing whitespace.
///
/// ```
/// use medvec_store::validate_id;
/// assert!(validate_id("ISIC_0027419").is_ok());
/// assert!(validate_id("   ").is_err());
/// assert!(validate_id("ISIC_0027419 ").is_err());
/// ```
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "id is {} bytes long; the limit is {MAX_ID_BYTES}",
            id.len()
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("id contains a control character".into());
    }
    // Spreadsheets and CSV readers trim cells, so " ISIC_1" would be stored but never found again.
    if id.trim() != id {
        return Err("id starts or ends with whitespace".into());
    }
    Ok(())
}
