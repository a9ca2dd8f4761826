//! The modality-gap report: how far apart, and how concentrated, two modalities are.
//!
//! Definitions (the paper's, see `shared/method.md` §3):
//! - ‖Δ‖ with Δ = mean(â) − mean(b̂) over the records that have each field;
//! - the mean paired cosine ⟨â, b̂⟩ over records that have both;
//! - the mean resultant length ‖Σê‖/n per modality (1 − spherical variance);
//! - PCA to 2 components fitted on the stacked unit vectors of both modalities, then per modality
//!   the variance of its projected block, flattened — `np.var(pca.fit_transform(X)[rows])`.

use crate::alignment::Alignment;
use crate::error::{QueryError, Result};
use medvec_store::{Collection, Filter};
use ndarray::{Array1, Array2, Axis};

/// The report for one pair of fields, optionally after a shift.
#[derive(Debug, Clone, PartialEq)]
pub struct GapReport {
    pub a_field: String,
    pub b_field: String,
    /// λ of the shift applied before measuring (0 = none).
    pub lambda: f32,
    pub count_a: usize,
    pub count_b: usize,
    pub pairs: usize,
    pub delta_norm: f64,
    pub mean_paired_cosine: f64,
    pub resultant_length_a: f64,
    pub resultant_length_b: f64,
    pub pca_variance_a: f64,
    pub pca_variance_b: f64,
}

/// Unit vectors of the two fields, as loaded from the collection.
struct Loaded {
    a: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    pairs: Vec<(usize, usize)>,
}

/// Measures the gap between fields `a` and `b` over the records matching `filter`, after shifting
/// by `shift` = (alignment, λ) when given.
///
/// ```
/// use medvec_store::*;
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::create(dir.path().join("s")).unwrap();
/// let schema = Schema { vectors: vec![VectorField::parse("image:2:cosine").unwrap(), VectorField::parse("text:2:cosine").unwrap()], payload: vec![] };
/// let cases = store.create_collection("cases", schema).unwrap();
/// cases.upsert(&[Record::new("x").with_vector("image", vec![1.0, 0.0]).with_vector("text", vec![0.0, 1.0])]).unwrap();
/// let report = medvec_query::gap::gap_report(&cases, "image", "text", None, None).unwrap();
/// assert!((report.delta_norm - 2f64.sqrt()).abs() < 1e-9);
/// assert_eq!(report.mean_paired_cosine, 0.0);
/// ```
pub fn gap_report(
    collection: &Collection,
    a_field: &str,
    b_field: &str,
    filter: Option<&Filter>,
    shift: Option<(&Alignment, f32)>,
) -> Result<GapReport> {
    let loaded = load(collection, a_field, b_field, filter, shift)?;
    if loaded.a.is_empty() || loaded.b.is_empty() {
        return Err(QueryError::EmptyField(
            if loaded.a.is_empty() {
                a_field
            } else {
                b_field
            }
            .to_string(),
            filter
                .map(|f| format!(" matching `{f}`"))
                .unwrap_or_default(),
        ));
    }
    let (mean_a, mean_b) = (mean(&loaded.a), mean(&loaded.b));
    let delta_norm = norm(
        &mean_a
            .iter()
            .zip(&mean_b)
            .map(|(x, y)| x - y)
            .collect::<Vec<_>>(),
    );
    let paired: f64 = loaded
        .pairs
        .iter()
        .map(|&(i, j)| dot(&loaded.a[i], &loaded.b[j]))
        .sum();
    let (var_a, var_b) = pca_variances(&loaded.a, &loaded.b);
    Ok(GapReport {
        a_field: a_field.to_string(),
        b_field: b_field.to_string(),
        lambda: shift.map_or(0.0, |(_, l)| l),
        count_a: loaded.a.len(),
        count_b: loaded.b.len(),
        pairs: loaded.pairs.len(),
        delta_norm,
        mean_paired_cosine: if loaded.pairs.is_empty() {
            f64::NAN
        } else {
            paired / loaded.pairs.len() as f64
        },
        resultant_length_a: norm(&mean_a),
        resultant_length_b: norm(&mean_b),
        pca_variance_a: var_a,
        pca_variance_b: var_b,
    })
}

fn load(
    collection: &Collection,
    a_field: &str,
    b_field: &str,
    filter: Option<&Filter>,
    shift: Option<(&Alignment, f32)>,
) -> Result<Loaded> {
    let schema = collection.schema();
    schema.vector_field(a_field)?;
    schema.vector_field(b_field)?;
    let mut loaded = Loaded {
        a: Vec::new(),
        b: Vec::new(),
        pairs: Vec::new(),
    };
    let prepare = |field: &str, v: &[f32]| -> Result<Vec<f64>, medvec_store::StoreError> {
        let shifted = match shift {
            Some((alignment, lambda)) => alignment
                .shift_field(field, v, lambda)
                .map_err(|e| medvec_store::StoreError::InvalidQuery(e.to_string()))?,
            None => v.to_vec(),
        };
        Ok(unit(&shifted))
    };
    collection.scan_where(filter, |record| {
        let a = record
            .vectors
            .get(a_field)
            .map(|v| prepare(a_field, v))
            .transpose()?;
        let b = record
            .vectors
            .get(b_field)
            .map(|v| prepare(b_field, v))
            .transpose()?;
        if a.is_some() && b.is_some() {
            loaded.pairs.push((loaded.a.len(), loaded.b.len()));
        }
        loaded.a.extend(a);
        loaded.b.extend(b);
        Ok(())
    })?;
    Ok(loaded)
}

fn unit(v: &[f32]) -> Vec<f64> {
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|x| if n > 0.0 { f64::from(*x) / n } else { 0.0 })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn mean(rows: &[Vec<f64>]) -> Vec<f64> {
    let mut out = vec![0.0; rows[0].len()];
    for row in rows {
        out.iter_mut().zip(row).for_each(|(o, x)| *o += x);
    }
    out.iter_mut().for_each(|o| *o /= rows.len() as f64);
    out
}

/// PCA-2 on the stacked rows of both modalities; returns `np.var` of each modality's projection.
fn pca_variances(a: &[Vec<f64>], b: &[Vec<f64>]) -> (f64, f64) {
    let dim = a[0].len();
    let rows: Vec<f64> = a.iter().chain(b).flatten().copied().collect();
    let mut x = Array2::from_shape_vec((a.len() + b.len(), dim), rows)
        .expect("rows have the field's dimension");
    let centre: Array1<f64> = x.mean_axis(Axis(0)).expect("at least one row");
    x -= &centre;
    let directions = top_two_directions(&x);
    let projected = x.dot(&directions);
    let var = |block: ndarray::ArrayView2<f64>| {
        let m = block.mean().unwrap_or(0.0);
        block.iter().map(|v| (v - m).powi(2)).sum::<f64>() / block.len() as f64
    };
    (
        var(projected.slice(ndarray::s![..a.len(), ..])),
        var(projected.slice(ndarray::s![a.len().., ..])),
    )
}

/// The top two principal directions of centred `x` (d × 2), by subspace iteration on the
/// covariance (or on `x` itself when d is too large for a d × d matrix).
pub(crate) fn top_two_directions(x: &Array2<f64>) -> Array2<f64> {
    let dim = x.ncols();
    let covariance = (dim <= 1024).then(|| x.t().dot(x));
    let apply = |v: &Array2<f64>| match &covariance {
        Some(c) => c.dot(v),
        None => x.t().dot(&x.dot(v)),
    };
    // A deterministic start that is not orthogonal to the data: the first two rows' directions.
    let mut v = Array2::from_shape_fn((dim, 2), |(i, j)| {
        x[[j.min(x.nrows() - 1), i]] + 1e-3 * ((i * 7 + j * 3) % 11) as f64
    });
    orthonormalise(&mut v);
    let max_iterations = if covariance.is_some() { 5000 } else { 500 };
    for _ in 0..max_iterations {
        let mut next = apply(&v);
        orthonormalise(&mut next);
        let change = (&next - &v).mapv(f64::abs).sum();
        v = next;
        if change < 1e-13 * dim as f64 {
            break;
        }
    }
    v
}

/// Gram–Schmidt on the columns, with a sign convention so iterations can converge.
fn orthonormalise(v: &mut Array2<f64>) {
    for j in 0..v.ncols() {
        for k in 0..j {
            let projection = v.column(j).dot(&v.column(k));
            let basis = v.column(k).to_owned();
            v.column_mut(j).scaled_add(-projection, &basis);
        }
        let n = v.column(j).dot(&v.column(j)).sqrt();
        if n > 0.0 {
            v.column_mut(j).mapv_inplace(|x| x / n);
        }
        let largest =
            v.column(j)
                .iter()
                .copied()
                .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if largest < 0.0 {
            v.column_mut(j).mapv_inplace(|x| -x);
        }
    }
}
