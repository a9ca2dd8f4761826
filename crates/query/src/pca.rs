//! Two-component PCA for the modality-gap scatter plots (the paper's Figures 2–3).
//!
//! [`Pca2::fit`] centres the rows and finds the top two principal directions (the same
//! subspace iteration as the gap report's PCA-2 variances); [`Pca2::project`] maps any row into
//! that plane. Fitted once on unshifted vectors, the same projection shows where the shift
//! moves them. Components have a sign convention (largest-magnitude loading positive), so
//! they may differ from scikit-learn's by a sign per component, never otherwise.

use crate::error::{QueryError, Result};
use ndarray::{Array1, Array2, ArrayView1, Axis};

/// A fitted PCA to two components.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca2 {
    /// Mean of the fitted rows.
    pub mean: Array1<f64>,
    /// Principal directions as columns (`dim × 2`), unit length, by decreasing variance.
    pub components: Array2<f64>,
}

impl Pca2 {
    /// Fits on `rows` (at least two, all of one dimension ≥ 2), in f64.
    ///
    /// ```
    /// use medvec_query::pca::Pca2;
    /// // Points on a line along (1, 1, 0): the first component is that line.
    /// let rows: Vec<Vec<f32>> = (0..5).map(|i| vec![i as f32, i as f32, (i % 2) as f32 * 0.1]).collect();
    /// let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    /// let pca = Pca2::fit(&refs).unwrap();
    /// let [x, _] = pca.project(&[4.0, 4.0, 0.05]);
    /// assert!((x - 2.0 * 2f64.sqrt()).abs() < 1e-3); // 2 steps of √2 from the mean (2, 2)
    /// ```
    pub fn fit(rows: &[&[f32]]) -> Result<Pca2> {
        let dim = rows.first().map_or(0, |r| r.len());
        if rows.len() < 2 || dim < 2 {
            return Err(QueryError::Invalid(format!(
                "PCA to 2 components needs at least 2 rows of dimension ≥ 2, got {} rows of {dim}",
                rows.len()
            )));
        }
        if let Some(bad) = rows.iter().position(|r| r.len() != dim) {
            return Err(QueryError::Invalid(format!(
                "PCA: row {bad} has {} dimensions, row 0 has {dim}",
                rows[bad].len()
            )));
        }
        let mut x = Array2::from_shape_fn((rows.len(), dim), |(r, j)| f64::from(rows[r][j]));
        let mean = x.mean_axis(Axis(0)).expect("at least two rows");
        x -= &mean;
        let components = crate::gap::top_two_directions(&x);
        Ok(Pca2 { mean, components })
    }

    /// Coordinates of `row` on the two components (`(row − mean) · components`).
    pub fn project(&self, row: &[f32]) -> [f64; 2] {
        let centred: Array1<f64> = ArrayView1::from(row).mapv(f64::from) - &self.mean;
        let p = centred.dot(&self.components);
        [p[0], p[1]]
    }
}
