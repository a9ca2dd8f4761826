//! Typed reads of Hugging Face JSON config files. Model folders come from anywhere, so every key
//! is checked, and a wrong type is an error naming the file and the key, never a panic or a
//! silent default.

use super::error::{EncodeError, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The largest config file read; real ones are a few kilobytes.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// One JSON object read from a file.
#[derive(Debug, Clone)]
pub(crate) struct JsonFile {
    path: PathBuf,
    root: Map<String, Value>,
}

impl JsonFile {
    /// Reads `path`, which must hold a JSON object.
    pub(crate) fn read(path: &Path) -> Result<JsonFile> {
        let size = std::fs::metadata(path)
            .map_err(|e| EncodeError::io(path, e))?
            .len();
        if size > MAX_CONFIG_BYTES {
            return Err(EncodeError::Json {
                path: path.to_path_buf(),
                detail: format!("{size} bytes is too large for a config file"),
            });
        }
        let text = std::fs::read(path).map_err(|e| EncodeError::io(path, e))?;
        let value: Value = serde_json::from_slice(&text).map_err(|e| EncodeError::Json {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        match value {
            Value::Object(root) => Ok(JsonFile {
                path: path.to_path_buf(),
                root,
            }),
            other => Err(EncodeError::Json {
                path: path.to_path_buf(),
                detail: format!("expected a JSON object, found {}", kind(&other)),
            }),
        }
    }

    /// Reads `path` if it exists.
    pub(crate) fn read_optional(path: &Path) -> Result<Option<JsonFile>> {
        if path.exists() {
            JsonFile::read(path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A value, absent when the key is missing or `null`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.root.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn error(&self, key: &str, detail: impl AsRef<str>) -> EncodeError {
        EncodeError::config(&self.path, key, detail)
    }

    /// A nested object (e.g. CLIP's `text_config`), as a `JsonFile` reporting the same file.
    pub(crate) fn object(&self, key: &str) -> Result<Option<JsonFile>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(JsonFile {
                path: self.path.clone(),
                root: map.clone(),
            })),
            Some(other) => {
                Err(self.error(key, format!("expected an object, found {}", kind(other))))
            }
        }
    }

    pub(crate) fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(
                key,
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.error(key, format!("{n} is not a finite number"))),
            Some(other) => {
                Err(self.error(key, format!("expected a number, found {}", kind(other))))
            }
        }
    }

    /// A non-negative integer. Floats with no fraction (`224.0`) are accepted, as Python writes them.
    pub(crate) fn uint(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| as_uint(v).ok_or_else(|| self.error(key, expected_uint(v))))
            .transpose()
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.error(key, format!("expected a string, found {}", kind(other))))
            }
        }
    }
}

/// A value as a non-negative integer, if it is one.
pub(crate) fn as_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < 9.0e15)
                .map(|x| x as u64)
        }),
        _ => None,
    }
}

pub(crate) fn expected_uint(v: &Value) -> String {
    format!("expected a non-negative integer, found {}", kind(v))
}

/// How a JSON value is described in messages: its type, and the value itself when it is short.
pub(crate) fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> JsonFile {
        let Value::Object(root) = serde_json::from_str(text).unwrap() else {
            panic!("not an object")
        };
        JsonFile {
            path: PathBuf::from("c.json"),
            root,
        }
    }

    #[test]
    fn typed_reads_name_the_key() {
        let j = json(r#"{"a": "x", "b": 2.0, "c": -1, "d": null, "e": true}"#);
        assert_eq!(j.uint("b").unwrap(), Some(2));
        assert_eq!(j.uint("d").unwrap(), None);
        assert!(j.bool_or("e", false).unwrap());
        let err = j.uint("c").unwrap_err().to_string();
        assert_eq!(
            err,
            "c.json: key `c`: expected a non-negative integer, found -1"
        );
        let err = j.bool_or("a", true).unwrap_err().to_string();
        assert!(err.contains("key `a`") && err.contains("\"x\""), "{err}");
    }
}
