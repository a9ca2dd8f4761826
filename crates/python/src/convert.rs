//! Python values to and from the store's: numpy matrices to query and record vectors, Python
//! scalars to payload values, and back.

use crate::errors::{Failure, Result};
use medvec_store::Value;
use numpy::ndarray::{ArrayViewD, Axis, Ix2};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

/// The rows of `array` (argument `arg`), a 1-d vector or a 2-d matrix of float32 or float64 in
/// any memory order, as vectors of field `field` (dimension `dim`). Elements are read in place
/// from the array's buffer: the only copy is the one into the library's `Vec<f32>` rows. A
/// wrong dimension or a NaN or infinite value is refused, naming the argument and the row.
pub fn rows(arg: &str, array: &Bound<'_, PyAny>, field: &str, dim: usize) -> Result<Vec<Vec<f32>>> {
    if let Ok(a) = array.cast::<PyArrayDyn<f32>>() {
        let view = a
            .try_readonly()
            .map_err(|e| Failure::invalid(format!("{arg}: {e}")))?;
        return read_view(arg, view.as_array(), field, dim, |x| x);
    }
    if let Ok(a) = array.cast::<PyArrayDyn<f64>>() {
        let view = a
            .try_readonly()
            .map_err(|e| Failure::invalid(format!("{arg}: {e}")))?;
        return read_view(arg, view.as_array(), field, dim, |x| x as f32);
    }
    let dtype = array
        .cast::<numpy::PyUntypedArray>()
        .map(|a| a.dtype().to_string())
        .unwrap_or_else(|_| type_name(array));
    Err(Failure::invalid(format!(
        "{arg}: expected a numpy array of float32 or float64, got {dtype}"
    )))
}

fn read_view<T: Copy>(
    arg: &str,
    view: ArrayViewD<'_, T>,
    field: &str,
    dim: usize,
    to_f32: impl Fn(T) -> f32,
) -> Result<Vec<Vec<f32>>> {
    let matrix = match view.ndim() {
        1 => view.insert_axis(Axis(0)).into_dimensionality::<Ix2>(),
        2 => view.into_dimensionality::<Ix2>(),
        n => {
            return Err(Failure::invalid(format!(
            "{arg}: expected a 1-d vector or a 2-d array (one row per vector), got {n} dimensions"
        )))
        }
    }
    .map_err(|e| Failure::invalid(format!("{arg}: {e}")))?;
    if matrix.ncols() != dim {
        return Err(Failure::invalid(format!(
            "{arg}: vectors have dimension {}, field `{field}` has {dim}",
            matrix.ncols()
        )));
    }
    matrix
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let vector: Vec<f32> = row.iter().map(|&x| to_f32(x)).collect();
            match vector.iter().position(|x| !x.is_finite()) {
                Some(j) => Err(Failure::invalid(format!(
                    "{arg}: row {i} has a NaN or infinite value (column {j})"
                ))),
                None => Ok(vector),
            }
        })
        .collect()
}

fn type_name(object: &Bound<'_, PyAny>) -> String {
    object
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".into())
}

/// A Python scalar as a payload value: `None`, NaN, `pandas.NA` and `NaT` are missing; bool, int,
/// float and str (and their numpy scalar types) are typed values. The schema's type is checked
/// by the store, which also converts an int into a float field and an integral float into an
/// int field, as it does for CSV input.
pub fn value(object: &Bound<'_, PyAny>) -> std::result::Result<Value, String> {
    if object.is_none() {
        return Ok(Value::Null);
    }
    if object.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(
            object.extract::<bool>().map_err(|e| e.to_string())?,
        ));
    }
    if object.is_instance_of::<PyInt>() {
        return object
            .extract::<i64>()
            .map(Value::Int)
            .map_err(|_| "an int outside the 64-bit range".to_string());
    }
    if object.is_instance_of::<PyFloat>() {
        return Ok(float(object.extract::<f64>().map_err(|e| e.to_string())?));
    }
    if let Ok(text) = object.cast::<PyString>() {
        return Ok(Value::String(
            text.to_cow().map_err(|e| e.to_string())?.into_owned(),
        ));
    }
    // numpy scalars and pandas' missing markers.
    let name = type_name(object);
    match name.as_str() {
        "NAType" | "NaTType" => Ok(Value::Null),
        "bool" | "bool_" => object
            .extract::<bool>()
            .map(Value::Bool)
            .map_err(|e| e.to_string()),
        _ if object.hasattr("__index__").unwrap_or(false) => object
            .extract::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("a {name} outside the 64-bit range")),
        _ if object.hasattr("__float__").unwrap_or(false) => {
            Ok(float(object.extract::<f64>().map_err(|e| e.to_string())?))
        }
        _ => Err(format!(
            "a {name}; payload values are str, int, float, bool or None"
        )),
    }
}

fn float(x: f64) -> Value {
    if x.is_nan() {
        Value::Null
    } else {
        Value::Float(x)
    }
}

/// A payload value as a Python scalar (`None` when missing).
pub fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::String(s) => s.into_pyobject(py)?.into_any(),
    })
}

/// A JSON value as plain Python objects (dicts, lists, str, int, float, bool, None).
pub fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (value.to_string(),))
}
