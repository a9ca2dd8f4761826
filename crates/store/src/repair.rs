//! `verify --repair`: rebuilds damaged HNSW graphs from their intact columns.
//!
//! A graph is derived data: every edge can be recomputed from the vector column beside it, so a
//! graph that fails its checksum or structure checks is rebuilt and replaced atomically. Every
//! other file holds data that exists nowhere else; if any of those is damaged, repair changes
//! nothing and names the file, because guessing would risk a wrong answer.

use crate::error::{Result, StoreError};
use crate::manifest::Manifest;
use crate::segment::{self, GraphDamage, Segment};
use crate::wal::Wal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What repair found and did in one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Graph files rebuilt, each with the reason it was rejected.
    pub rebuilt: Vec<(PathBuf, String)>,
}

/// Checks every file of the collection in `dir`; if only graphs are damaged, rebuilds them.
/// The caller holds the store's write lock, so no writer changes the collection meanwhile.
pub fn repair(dir: &Path) -> Result<RepairReport> {
    let manifest = Manifest::load(dir).map_err(not_repairable)?;
    let uid = manifest.uid;
    let mut work: Vec<(Arc<Segment>, GraphDamage)> = Vec::new();
    for entry in &manifest.segments {
        let seg_dir = dir.join(segment::dir_name(entry.id));
        let (segment, damage) =
            Segment::open_for_repair(&seg_dir, uid, &manifest.schema, entry.rows)
                .map_err(not_repairable)?;
        let segment = Arc::new(segment);
        // A deferred segment lacks its graphs on purpose; only damaged ones are rebuilt.
        let damaged = damage
            .into_iter()
            .filter(|d| !(entry.graphs_deferred && d.error.is_none()));
        work.extend(damaged.map(|d| (segment.clone(), d)));
    }
    let wal = dir.join(&manifest.wal);
    Wal::replay(&wal, uid)
        .and_then(|replay| replay.fitting(&wal, &manifest.schema))
        .map_err(not_repairable)?;
    crate::collection::artifacts::verify_all(dir, uid).map_err(not_repairable)?;
    // Everything but the graphs is intact: only now is anything written.
    let mut report = RepairReport::default();
    for (segment, damage) in work {
        let spec = &manifest.schema.vectors[damage.field];
        segment.rebuild_graph(damage.field, spec, uid)?;
        let reason = damage
            .error
            .map_or_else(|| "missing".to_string(), |e| e.to_string());
        report.rebuilt.push((damage.path, reason));
    }
    Ok(report)
}

fn not_repairable(error: StoreError) -> StoreError {
    StoreError::NotRepairable(Box::new(error))
}
