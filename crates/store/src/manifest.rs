//! A collection's manifest: the one file that says which segments and which log make up the
//! committed state. It is replaced atomically, so every reader sees one whole version.

use crate::error::{corrupt, Result};
use crate::fileio::{self, FileKind, Header};
use crate::schema::Schema;
use crate::sums::FieldSum;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FILE_NAME: &str = "MANIFEST";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub id: u64,
    pub rows: usize,
    /// Rows deleted (tombstoned) since the segment was written, ascending.
    pub deleted: Vec<u32>,
    /// Per vector field, the sum of the unit vectors of all rows written (tombstoned included).
    #[serde(default)]
    pub sums: Vec<FieldSum>,
    /// Written by a bulk load without its graphs (and SQ8 codes), which the writer builds at the
    /// end of the load (or, after a crash, at its next flush). Readers scan it exactly meanwhile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub graphs_deferred: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// Random per collection; every file of the collection carries it in its header.
    pub uid: u64,
    /// Increases by one per commit.
    pub generation: u64,
    pub schema: Schema,
    pub next_segment: u64,
    /// File name of the live write-ahead log.
    pub wal: String,
    pub segments: Vec<SegmentEntry>,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE_NAME);
        let (header, body) = fileio::read_checked(&path, FileKind::Manifest, None)?;
        let manifest: Manifest = serde_json::from_slice(&body)
            .map_err(|e| corrupt(&path, format!("does not decode: {e}")))?;
        if manifest.uid != header.owner_uid {
            return Err(corrupt(&path, "uid in the body disagrees with the header"));
        }
        manifest
            .schema
            .validate()
            .map_err(|e| corrupt(&path, e.to_string()))?;
        manifest
            .check_references()
            .map_err(|why| corrupt(&path, why))?;
        Ok(manifest)
    }

    /// The names a manifest leads to must stay inside the collection and must not collide: a
    /// log named `../x` would be opened (and, by a writer, cut) outside it, with the real log
    /// deleted as an orphan; a segment id at or above `next_segment` would be overwritten by
    /// the next flush while it is mapped.
    fn check_references(&self) -> std::result::Result<(), String> {
        let plain = Path::new(&self.wal).file_name() == Some(std::ffi::OsStr::new(&self.wal));
        if !plain || !self.wal.starts_with("wal-") {
            return Err(format!("log name {:?} is not a wal-* file name", self.wal));
        }
        // Far from any real count, and leaves room for the `+= 1` of flushes and commits.
        if self.next_segment >= 1 << 62 || self.generation >= 1 << 62 {
            return Err("generation or next_segment is out of range".into());
        }
        let mut ids = std::collections::HashSet::new();
        for segment in &self.segments {
            if segment.id >= self.next_segment || !ids.insert(segment.id) {
                return Err(format!(
                    "segment id {} is repeated or not below next_segment {}",
                    segment.id, self.next_segment
                ));
            }
        }
        Ok(())
    }

    /// Commits this manifest: temp file, fsync, rename, directory fsync.
    pub fn commit(&self, dir: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        let header = Header::new(FileKind::Manifest, self.uid, &body, [self.generation, 0, 0]);
        fileio::replace_atomically(&dir.join(FILE_NAME), &header, &body)
    }

    pub fn wal_name(generation: u64) -> String {
        format!("wal-{generation:08}.log")
    }
}
