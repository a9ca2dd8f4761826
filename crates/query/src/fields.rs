//! The vector fields a head reads, and how their rows become the head's inputs.
//!
//! A head reads one or more vector fields of a collection ([`FieldSet`]), in a fixed order:
//! early fusion concatenates them in that order, late fusion has one branch per field, a kNN
//! head sums their cosines. Every row is L2-normalised first (the paper's code does so before
//! anything else). The alignment shift moves one **pair** of fields of equal width towards each
//! other (method.md §3.6): with the pair `[A, B]`, Δ = mean(Â) − mean(B̂) over the training rows,
//! A' = normalize(Â − λ/2·Δ) and B' = normalize(B̂ + λ/2·Δ), so A plays the image's part and B
//! the text's. Other fields are only normalised.

use crate::error::{QueryError, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// The fields of a head, in its input order, and the pair the alignment shift moves.
///
/// ```
/// use medvec_query::fields::FieldSet;
/// let pair = FieldSet::pair("image", "text");
/// assert_eq!(pair.fields, ["image", "text"]);
/// assert_eq!(pair.shift_indices(), Some((0, 1)));
/// let three = FieldSet::new(vec!["derm".into(), "clinical".into(), "text".into()],
///     Some(["clinical".into(), "text".into()])).unwrap();
/// assert_eq!(three.shift_indices(), Some((1, 2)));
/// assert!(FieldSet::new(vec!["a".into(), "a".into()], None).is_err());
/// assert!(FieldSet::new(vec!["a".into()], Some(["a".into(), "b".into()])).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FieldSet {
    /// The vector fields, in the head's input order.
    #[serde(default)]
    pub fields: Vec<String>,
    /// `[A, B]`: the pair the shift moves (A by −λ/2·Δ, B by +λ/2·Δ, Δ = mean(Â) − mean(B̂));
    /// `None` when the head has no pair (one field, or several without `--shift-pair`): then λ
    /// must be 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_pair: Option<[String; 2]>,
}

impl FieldSet {
    /// Two fields, image then text, shifted as a pair (the paper's setting).
    pub fn pair(image: &str, text: &str) -> FieldSet {
        FieldSet {
            fields: vec![image.to_string(), text.to_string()],
            shift_pair: Some([image.to_string(), text.to_string()]),
        }
    }

    /// Checks the fields (at least one, no repeats) and that the pair's two fields are
    /// distinct members of them.
    pub fn new(fields: Vec<String>, shift_pair: Option<[String; 2]>) -> Result<FieldSet> {
        let set = FieldSet { fields, shift_pair };
        set.validate()?;
        Ok(set)
    }

    /// See [`FieldSet::new`].
    pub fn validate(&self) -> Result<()> {
        if self.fields.is_empty() {
            return Err(QueryError::Invalid(
                "a head needs at least one vector field".into(),
            ));
        }
        if let Some(repeated) = self
            .fields
            .iter()
            .enumerate()
            .find(|(i, f)| self.fields[..*i].contains(f))
        {
            return Err(QueryError::Invalid(format!(
                "field `{}` is named twice",
                repeated.1
            )));
        }
        if let Some([a, b]) = &self.shift_pair {
            if a == b {
                return Err(QueryError::Invalid(format!(
                    "shift pair: `{a}` twice; the shift moves two different fields"
                )));
            }
            if let Some(stray) = [a, b].into_iter().find(|f| !self.fields.contains(f)) {
                return Err(QueryError::Invalid(format!(
                    "shift pair: `{stray}` is not one of the head's fields ({})",
                    self.fields.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The pair as indices into [`fields`](Self::fields): `(A, B)`.
    pub fn shift_indices(&self) -> Option<(usize, usize)> {
        let index = |name: &String| self.fields.iter().position(|f| f == name);
        let [a, b] = self.shift_pair.as_ref()?;
        Some((index(a)?, index(b)?))
    }

    /// The fields, comma-separated (for messages).
    pub fn names(&self) -> String {
        self.fields.join(",")
    }
}

/// Δ = mean(Â) − mean(B̂) over `rows` of the pair's columns (unit vectors, summed in f64);
/// empty when there is no pair or its fields differ in width (then only λ = 0 is allowed).
pub(crate) fn fit_delta(
    columns: &[Vec<Vec<f32>>],
    pair: Option<(usize, usize)>,
    rows: &[usize],
) -> Vec<f32> {
    let Some((a, b)) = pair else {
        return Vec::new();
    };
    let dim = columns[a].first().map_or(0, Vec::len);
    if columns[b].first().map_or(0, Vec::len) != dim {
        return Vec::new();
    }
    let mut delta = vec![0f64; dim];
    for &row in rows {
        let (x, y) = (unit(&columns[a][row]), unit(&columns[b][row]));
        for j in 0..dim {
            delta[j] += (x[j] - y[j]) / rows.len() as f64;
        }
    }
    delta.into_iter().map(|x| x as f32).collect()
}

fn unit(v: &[f32]) -> Vec<f64> {
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|x| if n > 0.0 { f64::from(*x) / n } else { 0.0 })
        .collect()
}

/// The head's input matrices, one per field: `columns[f][r]` is row `r`'s raw vector of field
/// `f`. Each row is L2-normalised; the pair `(A, B)` is shifted, A by −λ/2·Δ and B by +λ/2·Δ.
/// With λ = 0 this is just the normalisation. An empty Δ (no pair, or a pair of different
/// widths) stands for a zero vector, so every bit of the result is the same as for λ = 0.
pub(crate) fn prepared_inputs(
    columns: &[Vec<&[f32]>],
    pair: Option<(usize, usize)>,
    delta: &[f32],
    lambda: f32,
) -> Vec<Array2<f32>> {
    columns
        .iter()
        .enumerate()
        .map(|(f, rows)| {
            let coefficient = match pair {
                Some((a, _)) if a == f => -lambda,
                Some((_, b)) if b == f => lambda,
                _ => 0.0,
            };
            shifted_matrix(rows, delta, coefficient)
        })
        .collect()
}

/// Rows normalised and moved by `coefficient`/2·Δ (then normalised again), as
/// [`Alignment::shift_b`](crate::Alignment::shift_b) does for one vector.
fn shifted_matrix(rows: &[&[f32]], delta: &[f32], coefficient: f32) -> Array2<f32> {
    let dim = rows.first().map_or(0, |r| r.len());
    let delta = if delta.len() == dim {
        delta.to_vec()
    } else {
        vec![0.0; dim]
    };
    let alignment = crate::Alignment {
        a_field: String::new(),
        b_field: String::new(),
        delta,
    };
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|r| alignment.shift_b(r, coefficient))
        .collect();
    Array2::from_shape_vec((rows.len(), dim), flat).expect("rows share a dimension")
}

/// A non-zero λ needs a pair of fields in one space; refuse rather than silently truncate.
pub(crate) fn check_lambdas(fields: &FieldSet, dims: &[usize], lambdas: &[f32]) -> Result<()> {
    if lambdas.iter().any(|l| !l.is_finite()) {
        return Err(QueryError::Invalid("λ must be finite".into()));
    }
    if lambdas.iter().all(|l| *l == 0.0) {
        return Ok(());
    }
    let Some(pair) = fields.shift_indices() else {
        return Err(QueryError::Invalid(format!(
            "a shift (λ ≠ 0) needs a pair of fields; the head reads {} field(s) ({}) and no pair: \
             name one with --shift-pair A,B (shift_pair=(A, B))",
            fields.fields.len(),
            fields.names()
        )));
    };
    check_pair_width(fields, dims, pair)
}

/// The shift pair `(a, b)` must share a width: Δ lives in one space.
pub(crate) fn check_pair_width(
    fields: &FieldSet,
    dims: &[usize],
    (a, b): (usize, usize),
) -> Result<()> {
    if dims[a] != dims[b] {
        return Err(QueryError::DimensionMismatch {
            a: fields.fields[a].clone(),
            a_dim: dims[a],
            b: fields.fields[b].clone(),
            b_dim: dims[b],
        });
    }
    Ok(())
}

/// FNV-1a over the raw f32 bits of each row's vectors, field after field in the given order.
pub(crate) fn vectors_fingerprint(columns: &[Vec<&[f32]>]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let rows = columns.first().map_or(0, Vec::len);
    for r in 0..rows {
        for byte in columns
            .iter()
            .flat_map(|c| c[r].iter())
            .flat_map(|x| x.to_le_bytes())
        {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
