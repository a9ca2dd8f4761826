//! The alignment shift of Restrepo et al. (2024), exactly as their code has it:
//! every vector is L2-normalised, Δ = mean(image) − mean(text) (not normalised), and
//! t' = normalize(t + λ/2·Δ), v' = normalize(v − λ/2·Δ). λ = 1 moves both centroids to their
//! midpoint; λ = −1 doubles the gap.
//!
//! medvec names the two fields `a` and `b` with Δ = mean(a) − mean(b): with `a` = image and
//! `b` = text this is the paper's formula, and swapping the names gives the same shifted vectors.

use crate::error::{QueryError, Result};
use medvec_store::{Collection, FieldSum, Filter};

/// A fitted gap vector between two vector fields of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// The field whose vectors move by −λ/2·Δ (the image field in the paper).
    pub a_field: String,
    /// The field whose vectors move by +λ/2·Δ (the text field in the paper).
    pub b_field: String,
    /// Δ = mean(â) − mean(b̂).
    pub delta: Vec<f32>,
}

impl Alignment {
    /// Fits Δ on the whole collection from the store's running sums, without a scan.
    ///
    /// ```
    /// use medvec_store::*;
    /// use medvec_query::Alignment;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::create(dir.path().join("s")).unwrap();
    /// let schema = Schema { vectors: vec![VectorField::parse("image:2:cosine").unwrap(), VectorField::parse("text:2:cosine").unwrap()], payload: vec![] };
    /// let cases = store.create_collection("cases", schema).unwrap();
    /// cases.upsert(&[Record::new("a").with_vector("image", vec![1.0, 0.0]).with_vector("text", vec![0.0, 2.0])]).unwrap();
    /// let alignment = Alignment::fit(&cases, "image", "text").unwrap();
    /// assert_eq!(alignment.delta, vec![1.0, -1.0]);
    /// // λ = 1 moves both to the midpoint: the shifted pair coincides.
    /// let v = alignment.shift_a(&[1.0, 0.0], 1.0);
    /// let t = alignment.shift_b(&[0.0, 2.0], 1.0);
    /// assert!((v[0] - t[0]).abs() < 1e-6 && (v[1] - t[1]).abs() < 1e-6);
    /// ```
    pub fn fit(collection: &Collection, a_field: &str, b_field: &str) -> Result<Alignment> {
        check_pair(collection, a_field, b_field)?;
        let a = collection.field_sum(a_field)?;
        let b = collection.field_sum(b_field)?;
        Self::from_sums(a_field, b_field, &a, &b, "")
    }

    /// Fits Δ on the records matching `filter` (for example `split = "train"`), by a scan.
    pub fn fit_where(
        collection: &Collection,
        a_field: &str,
        b_field: &str,
        filter: &Filter,
    ) -> Result<Alignment> {
        check_pair(collection, a_field, b_field)?;
        let dim = collection.schema().vector_field(a_field)?.dim;
        let (mut a, mut b) = (FieldSum::zero(dim), FieldSum::zero(dim));
        collection.scan_where(Some(filter), |record| {
            if let Some(v) = record.vectors.get(a_field) {
                a.add(v, 1.0);
            }
            if let Some(v) = record.vectors.get(b_field) {
                b.add(v, 1.0);
            }
            Ok(())
        })?;
        Self::from_sums(a_field, b_field, &a, &b, &format!(" matching `{filter}`"))
    }

    fn from_sums(
        a_field: &str,
        b_field: &str,
        a: &FieldSum,
        b: &FieldSum,
        subset: &str,
    ) -> Result<Alignment> {
        let empty = |field: &str| QueryError::EmptyField(field.to_string(), subset.to_string());
        let a_mean = a.centroid().ok_or_else(|| empty(a_field))?;
        let b_mean = b.centroid().ok_or_else(|| empty(b_field))?;
        Ok(Alignment {
            a_field: a_field.to_string(),
            b_field: b_field.to_string(),
            delta: a_mean
                .iter()
                .zip(&b_mean)
                .map(|(x, y)| (x - y) as f32)
                .collect(),
        })
    }

    /// ‖Δ‖.
    pub fn gap_norm(&self) -> f64 {
        self.delta
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// v' = normalize(v̂ − λ/2·Δ): the shift of a vector of field `a` (image).
    pub fn shift_a(&self, v: &[f32], lambda: f32) -> Vec<f32> {
        shift(v, &self.delta, -lambda / 2.0)
    }

    /// t' = normalize(t̂ + λ/2·Δ): the shift of a vector of field `b` (text).
    pub fn shift_b(&self, t: &[f32], lambda: f32) -> Vec<f32> {
        shift(t, &self.delta, lambda / 2.0)
    }

    /// Shifts a vector of `field`, which must be one of the pair.
    pub fn shift_field(&self, field: &str, x: &[f32], lambda: f32) -> Result<Vec<f32>> {
        Ok(shift(x, &self.delta, self.coefficient(field, lambda)?))
    }

    /// The read-time offset the store adds to stored unit vectors of `field`: ∓λ/2·Δ.
    pub fn offset(&self, field: &str, lambda: f32) -> Result<Vec<f32>> {
        let c = self.coefficient(field, lambda)?;
        Ok(self.delta.iter().map(|d| c * d).collect())
    }

    fn coefficient(&self, field: &str, lambda: f32) -> Result<f32> {
        if field == self.a_field {
            Ok(-lambda / 2.0)
        } else if field == self.b_field {
            Ok(lambda / 2.0)
        } else {
            Err(QueryError::Invalid(format!(
                "field `{field}` is not one of the aligned pair `{}`/`{}`",
                self.a_field, self.b_field
            )))
        }
    }
}

/// normalize(x/‖x‖ + c·Δ), computed in f64 so that f32 rounding does not depend on order.
fn shift(x: &[f32], delta: &[f32], c: f32) -> Vec<f32> {
    let norm = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let unit = |v: f32| if norm > 0.0 { f64::from(v) / norm } else { 0.0 };
    let moved: Vec<f64> = x
        .iter()
        .zip(delta)
        .map(|(v, d)| unit(*v) + f64::from(c) * f64::from(*d))
        .collect();
    let moved_norm = moved.iter().map(|v| v * v).sum::<f64>().sqrt();
    moved
        .iter()
        .map(|v| {
            if moved_norm > 0.0 {
                (v / moved_norm) as f32
            } else {
                0.0
            }
        })
        .collect()
}

fn check_pair(collection: &Collection, a: &str, b: &str) -> Result<()> {
    let schema = collection.schema();
    let (fa, fb) = (schema.vector_field(a)?, schema.vector_field(b)?);
    if fa.dim != fb.dim {
        return Err(QueryError::DimensionMismatch {
            a: a.to_string(),
            a_dim: fa.dim,
            b: b.to_string(),
            b_dim: fb.dim,
        });
    }
    if a == b {
        return Err(QueryError::Invalid(format!(
            "the shift needs two different fields, got `{a}` twice"
        )));
    }
    Ok(())
}
