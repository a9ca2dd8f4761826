//! Retrieval under the alignment shift: queries of one modality search stored vectors of another
//! (or the same) modality, with both shifted at read time. Stored data is never rewritten.

use crate::alignment::Alignment;
use crate::error::Result;
use medvec_store::{Collection, Hit, SearchParams};

/// Searches `target_field` with `queries` of modality `query_field`, both shifted by λ.
///
/// `query_field` names the field whose kind of vector the queries are (for a clinical
/// description searching images: the text field). Exact search is exactly the shifted ranking;
/// graph search widens its beam and scores every visited row under the shift.
///
/// ```
/// use medvec_store::*;
/// use medvec_query::{Alignment, retrieval::search_shifted};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::create(dir.path().join("s")).unwrap();
/// let schema = Schema { vectors: vec![VectorField::parse("image:3:cosine").unwrap(), VectorField::parse("text:3:cosine").unwrap()], payload: vec![] };
/// let cases = store.create_collection("cases", schema).unwrap();
/// // Images sit around (1,0,0), texts around (0,1,0): a modality gap; each case's own signal
/// // is its third coordinate.
/// cases.upsert(&[
///     Record::new("a").with_vector("image", vec![1.0, 0.0, 0.3]).with_vector("text", vec![0.0, 1.0, 0.3]),
///     Record::new("b").with_vector("image", vec![1.0, 0.0, -0.3]).with_vector("text", vec![0.0, 1.0, -0.3]),
/// ]).unwrap();
/// let alignment = Alignment::fit(&cases, "image", "text").unwrap();
/// let text_of_a = vec![vec![0.0, 1.0, 0.3]];
/// let hits = search_shifted(&cases, "image", "text", &text_of_a, &alignment, 1.0, SearchParams::top(2)).unwrap();
/// assert_eq!(hits[0][0].id, "a");
/// assert!((hits[0][0].score - 1.0).abs() < 1e-5); // with the gap closed, a's text meets a's image
/// ```
pub fn search_shifted(
    collection: &Collection,
    target_field: &str,
    query_field: &str,
    queries: &[Vec<f32>],
    alignment: &Alignment,
    lambda: f32,
    mut params: SearchParams,
) -> Result<Vec<Vec<Hit>>> {
    let shifted = queries
        .iter()
        .map(|q| alignment.shift_field(query_field, q, lambda))
        .collect::<Result<Vec<_>>>()?;
    params.offset = Some(alignment.offset(target_field, lambda)?);
    Ok(collection.search_batch(target_field, &shifted, &params)?)
}
