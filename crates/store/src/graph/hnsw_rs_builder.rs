//! The `hnsw_rs` graph builder, kept selectable (`GraphBuilder::HnswRs`) so the two builders can be
//! compared on the same data (`benches/README.md`).

use super::{BuildRows, GraphLists, MAX_LAYERS};
use crate::distance::{dot, l2_squared};
use crate::schema::HnswParams;
use hnsw_rs::anndists::dist::distances::Distance;
use hnsw_rs::hnsw::Hnsw;

/// The distance `hnsw_rs` builds with; `hnsw_rs` requires it to be non-negative, so cosine and
/// dot graphs are built on unit vectors as 1 − ⟨a,b⟩ clamped at 0.
struct BuildDistance {
    squared_l2: bool,
}

impl Distance<f32> for BuildDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        if self.squared_l2 {
            l2_squared(a, b)
        } else {
            (1.0 - dot(a, b)).max(0.0)
        }
    }
}

/// Builds with `hnsw_rs`'s parallel insertion and copies its edges out.
pub(super) fn build(rows: &BuildRows, params: HnswParams) -> GraphLists {
    let items: Vec<(&[f32], usize)> = (0..rows.present.len())
        .filter(|&row| rows.present[row])
        .map(|row| (rows.vector(row), row))
        .collect();
    let hnsw = Hnsw::<f32, BuildDistance>::new(
        params.m,
        items.len().max(1),
        MAX_LAYERS,
        params.ef_construction,
        BuildDistance {
            squared_l2: rows.squared_l2,
        },
    );
    hnsw.parallel_insert_slice(&items);
    lists_of(&hnsw, rows.present.len(), params.m)
}

fn lists_of(hnsw: &Hnsw<f32, BuildDistance>, rows: usize, m: usize) -> GraphLists {
    let indexation = hnsw.get_point_indexation();
    let max_level = indexation.get_max_level_observed() as usize;
    let entry = indexation
        .get_layer_iterator(max_level)
        .next()
        .map(|p| p.get_origin_id() as u32);
    let mut lists = GraphLists::new(rows, m, entry, max_level);
    for point in indexation {
        let node = point.get_origin_id() as u32;
        let level = point.get_point_id().0 as usize;
        let neighbourhood = point.get_neighborhood_id();
        for (layer, neighbours) in neighbourhood.iter().enumerate().take(level + 1) {
            let ids: Vec<u32> = neighbours.iter().map(|n| n.d_id as u32).collect();
            lists.set(layer, node, ids);
        }
    }
    lists
}
