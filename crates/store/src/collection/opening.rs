//! Opening a collection's directory: its segments and tombstones loaded, and what a crash
//! left behind (files the manifest does not reference) removed.

use super::{artifacts, live_sums::live_sums, State};
use crate::bitset::BitSet;
use crate::error::{IoContext, Result};
use crate::manifest::Manifest;
use crate::memtable::MemTable;
use crate::segment::{self, Segment};
use std::path::Path;
use std::sync::Arc;

pub(super) fn load_state(dir: &Path, manifest: Manifest) -> Result<State> {
    let mut segments = Vec::with_capacity(manifest.segments.len());
    let mut tombstones = Vec::with_capacity(manifest.segments.len());
    for entry in &manifest.segments {
        let seg_dir = dir.join(segment::dir_name(entry.id));
        segments.push(Arc::new(Segment::open(
            &seg_dir,
            manifest.uid,
            &manifest.schema,
            entry.rows,
        )?));
        let mut deleted = BitSet::new(entry.rows);
        for &row in &entry.deleted {
            if row as usize >= entry.rows {
                return Err(crate::error::corrupt(
                    dir.join(crate::manifest::FILE_NAME),
                    "tombstone beyond segment end",
                ));
            }
            deleted.set(row as usize);
        }
        tombstones.push(deleted);
    }
    let sums = live_sums(&manifest, &segments, &tombstones)?;
    Ok(State {
        manifest,
        segments,
        tombstones,
        tail: MemTable::default(),
        sums,
    })
}

/// Deletes segment directories, logs and temp files that the manifest does not reference.
pub(super) fn remove_orphans(dir: &Path, manifest: &Manifest) -> Result<()> {
    let live: std::collections::HashSet<String> = manifest
        .segments
        .iter()
        .map(|s| segment::dir_name(s.id))
        .chain([manifest.wal.clone(), crate::manifest::FILE_NAME.to_string()])
        .collect();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().to_string();
        let ours = name.starts_with("seg-") || name.starts_with("wal-") || name.ends_with(".tmp");
        if ours && !live.contains(&name) {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.at(&path)?;
        }
    }
    // A crash while a graph was being repaired or an artifact (head, model record) saved leaves
    // a temporary file inside.
    for sub in manifest.segments.iter().map(|s| segment::dir_name(s.id)) {
        remove_temp_files(&dir.join(sub))?;
    }
    for artifact in artifacts::Artifact::ALL {
        remove_temp_files(&dir.join(artifact.dir()))?;
    }
    Ok(())
}

fn remove_temp_files(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // no such directory
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            std::fs::remove_file(entry.path()).at(entry.path())?;
        }
    }
    Ok(())
}
