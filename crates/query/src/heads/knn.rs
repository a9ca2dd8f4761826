//! k-nearest-neighbour head: cosine similarity, exact brute force, no training.

use ndarray::{s, Array2, ArrayView1, ArrayViewMut1, Zip};

use super::error::{HeadError, Result};
use super::head::argmax;
use super::inputs::{Inputs, Labelled};
use super::linalg::matmul_into;

/// Which embedding the neighbours are found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnnView {
    /// Every field, each L2-normalised: the similarity of two cases is the sum of their
    /// fields' cosines, divided by the number of fields so that it stays a cosine in [−1, 1]
    /// (the cosine of the concatenated unit vectors scaled by 1/√n).
    Both,
    /// Field 0 only: positional, the text field of [`Inputs::new`] (a head trained through
    /// `medvec_query::training` orders its fields as its `FieldSet` lists them).
    Text,
    /// Field 1 only: positional, the image field of [`Inputs::new`].
    Image,
}

impl KnnView {
    /// The fields this view reads, given the number of fields; `None` if it names a field
    /// that does not exist.
    fn fields(self, count: usize) -> Option<Vec<usize>> {
        let single = |k: usize| (k < count).then(|| vec![k]);
        match self {
            KnnView::Both => Some((0..count).collect()),
            KnnView::Text => single(0),
            KnnView::Image => single(1),
        }
    }
}

/// How neighbours vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnnWeighting {
    /// One vote each.
    Uniform,
    /// Vote `1 / (1 − cos)`. Neighbours at distance 0 (up to f32 rounding of the
    /// normalisation, [`KNN_EXACT_MATCH`]) take all the weight, as in scikit-learn.
    Distance,
}

/// kNN settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KnnConfig {
    /// Number of neighbours (default 5, as scikit-learn).
    pub k: usize,
    /// Vote weighting (default uniform).
    pub weighting: KnnWeighting,
    /// Embedding used (default every field).
    pub view: KnnView,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self {
            k: 5,
            weighting: KnnWeighting::Uniform,
            view: KnnView::Both,
        }
    }
}

/// A kNN classifier holding the normalised training embeddings.
///
/// Ties between equally similar training rows go to the lower row index; ties in the
/// vote go to the lower class. Zero vectors stay zero (cosine 0 to everything).
///
/// ```
/// use medvec_query::heads::{Inputs, KnnConfig, KnnHead, Labelled};
/// use ndarray::array;
/// let text = array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]];
/// let image = text.clone();
/// let labels = [0, 0, 1, 1];
/// let set = Labelled::new(Inputs::new(text.view(), image.view()).unwrap(), &labels).unwrap();
/// let knn = KnnHead::fit(&set, KnnConfig { k: 1, ..KnnConfig::default() }).unwrap();
/// assert_eq!(knn.predict(set.inputs()).unwrap(), vec![0, 0, 1, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct KnnHead {
    config: KnnConfig,
    dims: Vec<usize>,
    train: Array2<f32>,
    labels: Vec<usize>,
    num_classes: usize,
}

/// Cosine distances at or below this count as exact matches: normalising in f32 leaves
/// identical directions up to a few 1e-8 apart.
pub const KNN_EXACT_MATCH: f32 = 1e-6;

/// Queries per similarity block: bounds memory to `QUERY_CHUNK × n_train` floats.
const QUERY_CHUNK: usize = 256;

impl KnnHead {
    /// Stores the training set; the class count is `1 + max label`.
    pub fn fit(train: &Labelled<'_>, config: KnnConfig) -> Result<Self> {
        if train.is_empty() {
            return Err(HeadError::Empty("kNN training set"));
        }
        if config.k == 0 || config.k > train.len() {
            return Err(HeadError::InvalidConfig(format!(
                "k must be in 1..={}, got {}",
                train.len(),
                config.k
            )));
        }
        let inputs = train.inputs();
        Ok(Self {
            config,
            dims: inputs.dims(),
            train: embed(inputs, config.view)?,
            labels: train.labels().to_vec(),
            num_classes: train.labels().iter().max().map_or(0, |m| m + 1),
        })
    }

    /// The dimension of each field the head expects, in its field order.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The settings the head was fitted with.
    pub fn config(&self) -> KnnConfig {
        self.config
    }

    /// Number of classes (`1 + max training label`).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Vote shares per class, `n × C`, rows summing to 1.
    pub fn predict_proba(&self, inputs: &Inputs<'_>) -> Result<Array2<f32>> {
        inputs.check_dims(&self.dims)?;
        let queries = embed(inputs, self.config.view)?;
        let mut probs = Array2::zeros((queries.nrows(), self.num_classes));
        for start in (0..queries.nrows()).step_by(QUERY_CHUNK) {
            let end = (start + QUERY_CHUNK).min(queries.nrows());
            let q = queries.slice(s![start..end, ..]);
            let mut sims = Array2::zeros((end - start, self.train.nrows()));
            matmul_into(q, self.train.t(), sims.view_mut());
            Zip::from(probs.slice_mut(s![start..end, ..]).rows_mut())
                .and(sims.rows())
                .par_for_each(|p, s| self.vote(s, p));
        }
        Ok(probs)
    }

    /// Predicted classes (first class with the largest vote share).
    pub fn predict(&self, inputs: &Inputs<'_>) -> Result<Vec<usize>> {
        let probs = self.predict_proba(inputs)?;
        Ok(probs
            .rows()
            .into_iter()
            .map(|r| argmax(r.iter().copied()))
            .collect())
    }

    /// Writes the normalised votes of the k most similar training rows into `out`.
    fn vote(&self, sims: ArrayView1<'_, f32>, mut out: ArrayViewMut1<'_, f32>) {
        let k = self.config.k;
        let mut idx: Vec<usize> = (0..sims.len()).collect();
        let by_similarity = |a: &usize, b: &usize| sims[*b].total_cmp(&sims[*a]).then(a.cmp(b));
        if k < idx.len() {
            idx.select_nth_unstable_by(k - 1, by_similarity);
        }
        let neighbours = &mut idx[..k];
        neighbours.sort_unstable_by(by_similarity);
        let dist: Vec<f32> = neighbours
            .iter()
            .map(|&i| (1.0 - sims[i]).max(0.0))
            .collect();
        let exact = dist.iter().any(|&d| d <= KNN_EXACT_MATCH);
        for (&i, &d) in neighbours.iter().zip(&dist) {
            out[self.labels[i]] += match self.config.weighting {
                KnnWeighting::Uniform => 1.0,
                KnnWeighting::Distance if exact => f32::from(u8::from(d <= KNN_EXACT_MATCH)),
                KnnWeighting::Distance => 1.0 / d,
            };
        }
        let total = out.sum();
        out /= total;
    }
}

/// Row-normalised embedding of the chosen view: its fields' unit vectors, each scaled by
/// 1/√n and concatenated, so that a dot product of two rows is the mean of the fields' cosines.
fn embed(inputs: &Inputs<'_>, view: KnnView) -> Result<Array2<f32>> {
    let fields = view.fields(inputs.field_count()).ok_or_else(|| {
        HeadError::InvalidConfig(format!(
            "kNN view {view:?} reads field {}, the inputs have {} field(s)",
            usize::from(view == KnnView::Image),
            inputs.field_count()
        ))
    })?;
    let scale = 1.0 / (fields.len() as f32).sqrt();
    let parts: Vec<Array2<f32>> = fields
        .iter()
        .map(|&f| normalised(inputs, f, scale))
        .collect();
    let views: Vec<_> = parts.iter().map(|m| m.view()).collect();
    Ok(ndarray::concatenate(ndarray::Axis(1), &views).expect("fields share the row count"))
}

fn normalised(inputs: &Inputs<'_>, field: usize, scale: f32) -> Array2<f32> {
    let mut m = inputs.field(field).to_owned();
    for mut row in m.rows_mut() {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        let factor = if norm > 0.0 { scale / norm } else { 0.0 };
        row *= factor;
    }
    m
}
