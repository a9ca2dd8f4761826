//! Search across shards: one collection split over several stores (a collection folder is the
//! unit of sharding, for example one per executor of a distributed ingest), searched in each and
//! merged into one exact top-k.
//!
//! Each shard returns its own top-k (graph or exact search, with the filter applied inside the
//! shard), and the merge keeps the k best of their union in the order one collection would give:
//! best score first, ties by id. With `exact`, the merged hits equal those of an exact search of
//! all the rows in one collection. An id stored in two shards is reported once, with its best
//! score.

use crate::error::{QueryError, Result};
use medvec_store::{Collection, Hit, Metric, SearchParams};

/// Searches `field` of every shard with `params` and merges each query's hits.
///
/// ```
/// use medvec_store::{Record, Schema, SearchParams, Store, VectorField};
/// let dir = tempfile::tempdir().unwrap();
/// let schema = Schema { vectors: vec![VectorField::parse("v:2:l2").unwrap()], payload: vec![] };
/// let (a, b) = (Store::create(dir.path().join("a")).unwrap(), Store::create(dir.path().join("b")).unwrap());
/// let (ca, cb) = (a.create_collection("c", schema.clone()).unwrap(), b.create_collection("c", schema).unwrap());
/// ca.upsert(&[Record::new("x").with_vector("v", vec![0.0, 0.0])]).unwrap();
/// cb.upsert(&[Record::new("y").with_vector("v", vec![1.0, 0.0])]).unwrap();
/// let hits = medvec_query::shards::search_shards(&[&*ca, &*cb], "v", &[vec![0.9, 0.0]], &SearchParams::top(2)).unwrap();
/// let ids: Vec<&str> = hits[0].iter().map(|h| h.id.as_str()).collect();
/// assert_eq!(ids, ["y", "x"]);
/// ```
pub fn search_shards(
    shards: &[&Collection],
    field: &str,
    queries: &[Vec<f32>],
    params: &SearchParams,
) -> Result<Vec<Vec<Hit>>> {
    let metric = common_metric(shards, field)?;
    let per_shard = shards
        .iter()
        .map(|shard| shard.search_batch(field, queries, params))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..queries.len())
        .map(|q| merge(per_shard.iter().map(|hits| &hits[q]), metric, params.k))
        .collect())
}

/// The field's metric, which every shard must share with the same dimension.
fn common_metric(shards: &[&Collection], field: &str) -> Result<Metric> {
    let (first, rest) = shards
        .split_first()
        .ok_or_else(|| QueryError::Invalid("no shard to search".into()))?;
    let want = first.schema().vector_field(field)?.clone();
    for shard in rest {
        let spec = shard.schema().vector_field(field)?.clone();
        if (spec.dim, spec.metric) != (want.dim, want.metric) {
            return Err(QueryError::Invalid(format!(
                "field `{field}` is {}-d {:?} in one shard but {}-d {:?} in another; shards of one collection must share its schema",
                spec.dim, spec.metric, want.dim, want.metric
            )));
        }
    }
    Ok(want.metric)
}

/// The k best of the shards' hits, best first, ties by id, each id once.
fn merge<'a>(shards: impl Iterator<Item = &'a Vec<Hit>>, metric: Metric, k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = shards.flatten().cloned().collect();
    let lower_is_better = metric == Metric::L2;
    all.sort_by(|a, b| {
        let by_score = if lower_is_better {
            a.score.total_cmp(&b.score)
        } else {
            b.score.total_cmp(&a.score)
        };
        by_score.then_with(|| a.id.cmp(&b.id))
    });
    let mut seen = std::collections::HashSet::new();
    all.retain(|hit| seen.insert(hit.id.clone()));
    all.truncate(k);
    all
}
