//! Running sums of L2-normalised vectors per field, so that centroids (and the alignment shift's
//! gap vector Δ = mean(image) − mean(text)) are available without scanning the collection.

use serde::{Deserialize, Serialize};

/// Σ v/‖v‖ over the rows that have the field, and how many rows that is. Zero vectors are
/// skipped, because they have no direction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FieldSum {
    pub count: u64,
    pub sum: Vec<f64>,
}

impl FieldSum {
    pub fn zero(dim: usize) -> FieldSum {
        FieldSum {
            count: 0,
            sum: vec![0.0; dim],
        }
    }

    /// Adds (`sign` = 1) or removes (`sign` = −1) one vector.
    pub fn add(&mut self, vector: &[f32], sign: f64) {
        let norm = vector
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 || vector.len() != self.sum.len() {
            return;
        }
        for (s, x) in self.sum.iter_mut().zip(vector) {
            *s += sign * f64::from(*x) / norm;
        }
        self.count = if sign > 0.0 {
            self.count + 1
        } else {
            self.count.saturating_sub(1)
        };
    }

    pub fn merge(&mut self, other: &FieldSum) {
        for (s, o) in self.sum.iter_mut().zip(&other.sum) {
            *s += o;
        }
        self.count += other.count;
    }

    /// The mean of the unit vectors (not itself normalised), or `None` for an empty field.
    pub fn centroid(&self) -> Option<Vec<f64>> {
        (self.count > 0).then(|| self.sum.iter().map(|s| s / self.count as f64).collect())
    }
}
