//! Checks a batch of user records against the schema before anything is written.

use crate::error::{Result, StoreError};
use crate::record::validate_id;
use crate::schema::Schema;
use crate::value::Value;
use crate::wal::LoggedRecord;
use crate::Record;
use std::collections::HashSet;

/// Validates every record and converts it to schema order. Fails on the first bad record,
/// naming it and the field, so that a batch is all-or-nothing.
pub fn validate_batch(schema: &Schema, records: &[Record]) -> Result<Vec<LoggedRecord>> {
    let mut seen = HashSet::with_capacity(records.len());
    records
        .iter()
        .map(|record| {
            if !seen.insert(record.id.as_str()) {
                return Err(StoreError::DuplicateId(record.id.clone()));
            }
            validate_record(schema, record)
        })
        .collect()
}

fn validate_record(schema: &Schema, record: &Record) -> Result<LoggedRecord> {
    let invalid = |detail: String| StoreError::InvalidRecord {
        id: record.id.clone(),
        detail,
    };
    validate_id(&record.id).map_err(&invalid)?;
    for name in record.vectors.keys() {
        schema
            .vector_field(name)
            .map_err(|_| invalid(format!("unknown vector field `{name}`")))?;
    }
    for name in record.payload.keys() {
        if schema.payload_index(name).is_none() {
            return Err(invalid(format!("unknown payload field `{name}`")));
        }
    }
    let vectors = schema
        .vectors
        .iter()
        .map(|field| match record.vectors.get(&field.name) {
            None => Ok(None),
            Some(v) if v.len() != field.dim => Err(invalid(format!(
                "field `{}` has dimension {}, expected {}",
                field.name,
                v.len(),
                field.dim
            ))),
            Some(v) => match v.iter().position(|x| !x.is_finite()) {
                Some(i) => Err(invalid(format!(
                    "field `{}` has a non-finite value ({}) at index {i}",
                    field.name, v[i]
                ))),
                None => Ok(Some(v.clone())),
            },
        })
        .collect::<Result<Vec<_>>>()?;
    let payload = schema
        .payload
        .iter()
        .map(|field| {
            let value = record
                .payload
                .get(&field.name)
                .cloned()
                .unwrap_or(Value::Null);
            value.coerce(field.field_type).map_err(|v| {
                invalid(format!(
                    "field `{}` is {}, got {}",
                    field.name,
                    field.field_type.name(),
                    v.field_type().map_or("null", |t| t.name())
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if let Value::Float(f) = payload
        .iter()
        .find(|v| matches!(v, Value::Float(f) if !f.is_finite()))
        .unwrap_or(&Value::Null)
    {
        return Err(invalid(format!("payload float {f} is not finite")));
    }
    Ok(LoggedRecord {
        id: record.id.clone(),
        vectors,
        payload,
    })
}
