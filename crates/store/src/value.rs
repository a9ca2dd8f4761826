//! Typed payload values and their field types.

use crate::privacy::Redacted;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The type of a payload field, fixed when the collection is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Int,
    Float,
    Bool,
}

impl FieldType {
    /// Parses `string`, `int`, `float` or `bool` (and the common aliases `str`, `i64`, `f64`).
    pub fn parse(text: &str) -> Option<FieldType> {
        match text.to_ascii_lowercase().as_str() {
            "string" | "str" | "text" => Some(FieldType::String),
            "int" | "integer" | "i64" => Some(FieldType::Int),
            "float" | "f64" | "double" | "number" => Some(FieldType::Float),
            "bool" | "boolean" => Some(FieldType::Bool),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
        }
    }
}

/// One payload value. `Null` stands for a missing value of any type.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
}

impl Value {
    /// The field type this value belongs to, or `None` for `Null`.
    pub fn field_type(&self) -> Option<FieldType> {
        match self {
            Value::Null => None,
            Value::Bool(_) => Some(FieldType::Bool),
            Value::Int(_) => Some(FieldType::Int),
            Value::Float(_) => Some(FieldType::Float),
            Value::String(_) => Some(FieldType::String),
        }
    }

    /// Parses text (from a CSV cell, say) as a value of `field_type`. An empty cell is `Null`.
    pub fn parse_as(text: &str, field_type: FieldType) -> Result<Value, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(Value::Null);
        }
        match field_type {
            FieldType::String => Ok(Value::String(text.to_string())),
            FieldType::Int => trimmed
                .parse::<i64>()
                .or_else(|_| parse_integral_float(trimmed))
                .map(Value::Int)
                .map_err(|_| format!("`{}` is not an integer", Redacted(trimmed))),
            FieldType::Float => trimmed
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| format!("`{}` is not a number", Redacted(trimmed))),
            FieldType::Bool => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "t" | "y" => Ok(Value::Bool(true)),
                "false" | "0" | "no" | "f" | "n" => Ok(Value::Bool(false)),
                _ => Err(format!("`{}` is not a boolean", Redacted(trimmed))),
            },
        }
    }

    /// Converts a value to `field_type` where that loses nothing (an int into a float field).
    pub fn coerce(self, field_type: FieldType) -> Result<Value, Value> {
        match (self, field_type) {
            (Value::Null, _) => Ok(Value::Null),
            (Value::Int(i), FieldType::Float) => Ok(Value::Float(i as f64)),
            (Value::Float(f), FieldType::Int) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Ok(Value::Int(f as i64))
            }
            (v, t) if v.field_type() == Some(t) => Ok(v),
            (v, _) => Err(v),
        }
    }

    /// Converts a JSON value (from JSONL input or `--json` output) into a payload value.
    pub fn from_json(json: &serde_json::Value) -> Option<Value> {
        match json {
            serde_json::Value::Null => Some(Value::Null),
            serde_json::Value::Bool(b) => Some(Value::Bool(*b)),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Value::Int)
                .or_else(|| n.as_f64().map(Value::Float)),
            serde_json::Value::String(s) => Some(Value::String(s.clone())),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
        }
    }
}

/// Accepts `50.0` as the integer 50, because pandas writes integer columns with missing values as floats.
fn parse_integral_float(text: &str) -> Result<i64, ()> {
    let f: f64 = text.parse().map_err(|_| ())?;
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Ok(f as i64)
    } else {
        Err(())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cells_by_type() {
        assert_eq!(Value::parse_as("80", FieldType::Int), Ok(Value::Int(80)));
        assert_eq!(Value::parse_as("80.0", FieldType::Int), Ok(Value::Int(80)));
        assert!(Value::parse_as("80.5", FieldType::Int).is_err());
        assert_eq!(Value::parse_as("", FieldType::Int), Ok(Value::Null));
        assert_eq!(
            Value::parse_as("yes", FieldType::Bool),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            Value::parse_as(" mel", FieldType::String),
            Ok(Value::String(" mel".into()))
        );
    }

    #[test]
    fn coerces_only_losslessly() {
        assert_eq!(
            Value::Int(3).coerce(FieldType::Float),
            Ok(Value::Float(3.0))
        );
        assert_eq!(Value::Float(3.0).coerce(FieldType::Int), Ok(Value::Int(3)));
        assert!(Value::Float(3.5).coerce(FieldType::Int).is_err());
        assert!(Value::String("3".into()).coerce(FieldType::Int).is_err());
    }
}
