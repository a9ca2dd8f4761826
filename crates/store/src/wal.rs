//! The write-ahead log: one file per collection generation, a sequence of checksummed frames.
//!
//! Each write batch becomes one frame, `[len u32 LE][crc32 u32 LE][rkyv body]`, appended and
//! fsynced before the write call returns. Replay reads frames until the first one that is short,
//! oversized, fails its CRC or does not decode; everything from there on is a torn tail that was
//! never acknowledged, and the writer cuts it off.

use crate::error::{corrupt, IoContext, Result};
use crate::faults;
use crate::fileio::{self, FileKind, Header, HEADER_LEN};
use crate::record::validate_id;
use crate::schema::Schema;
use crate::value::{FieldType, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The largest frame accepted; a length word above it is treated as a torn tail.
pub const MAX_FRAME: u32 = 1 << 30;

/// One record as logged: vectors and payload by schema position.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct LoggedRecord {
    pub id: String,
    /// One entry per schema vector field; `None` where the record lacks that modality.
    pub vectors: Vec<Option<Vec<f32>>>,
    /// One entry per schema payload field.
    pub payload: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum LoggedOp {
    Upsert(LoggedRecord),
    Delete(String),
}

/// One atomic write batch.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct LoggedBatch {
    /// Increases by one per batch within a log; replay stops at a gap.
    pub seq: u64,
    pub ops: Vec<LoggedOp>,
}

/// What replay found.
#[derive(Debug)]
pub struct Replay {
    pub batches: Vec<LoggedBatch>,
    /// Length of the valid prefix, in bytes.
    pub valid_len: u64,
    /// Bytes after the valid prefix (a torn or damaged tail), zero for a clean log.
    pub discarded: u64,
}

impl Replay {
    /// Checks every replayed record against `schema`, as `validate_batch` checked it before it
    /// was logged. A frame with a valid CRC that does not fit was not written by this
    /// collection's writer (a bug, or an edited file); applying it would panic later (a flush
    /// copies vectors by the schema's dimension), so it is reported as corruption instead.
    pub fn fitting(self, path: &Path, schema: &Schema) -> Result<Replay> {
        for batch in &self.batches {
            for op in &batch.ops {
                if let LoggedOp::Upsert(record) = op {
                    if let Err(why) = record_fits(record, schema) {
                        let what = format!("batch {}: record {:?}: {why}", batch.seq, record.id);
                        return Err(corrupt(path, what));
                    }
                }
            }
        }
        Ok(self)
    }
}

fn record_fits(record: &LoggedRecord, schema: &Schema) -> std::result::Result<(), String> {
    validate_id(&record.id)?;
    if record.vectors.len() != schema.vectors.len() || record.payload.len() != schema.payload.len()
    {
        return Err("field count differs from the schema".into());
    }
    for (vector, field) in record.vectors.iter().zip(&schema.vectors) {
        match vector {
            Some(v) if v.len() != field.dim => {
                return Err(format!("`{}` has dimension {}", field.name, v.len()))
            }
            Some(v) if v.iter().any(|x| !x.is_finite()) => {
                return Err(format!("`{}` has a non-finite value", field.name))
            }
            _ => {}
        }
    }
    for (value, field) in record.payload.iter().zip(&schema.payload) {
        let fits = match value {
            Value::Null => true,
            Value::Float(f) => field.field_type == FieldType::Float && f.is_finite(),
            other => other.field_type() == Some(field.field_type),
        };
        if !fits {
            return Err(format!("`{}` holds a value of the wrong type", field.name));
        }
    }
    Ok(())
}

/// An open log, positioned for appends.
pub struct Wal {
    path: PathBuf,
    file: File,
    next_seq: u64,
    len: u64,
    /// A failed append left bytes after `len` that could not be cut yet.
    torn: bool,
}

impl Wal {
    /// Creates an empty log (header only) and fsyncs it.
    pub fn create(path: &Path, owner_uid: u64) -> Result<()> {
        let header = Header::new(FileKind::Wal, owner_uid, &[], [0; 3]);
        fileio::write_new_file(path, &header, &[])
    }

    /// Replays the log without changing it (readers use this).
    pub fn replay(path: &Path, owner_uid: u64) -> Result<Replay> {
        let file = File::open(path).at(path)?;
        let file_len = file.metadata().at(path)?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_LEN];
        reader
            .read_exact(&mut header)
            .map_err(|_| corrupt(path, "shorter than its header"))?;
        Header::decode(path, &header, FileKind::Wal, Some(owner_uid))?;
        let mut batches = Vec::new();
        let mut valid_len = HEADER_LEN as u64;
        while let Some((batch, frame_len)) = read_frame(&mut reader, file_len - valid_len) {
            if batch.seq != batches.len() as u64 {
                break;
            }
            batches.push(batch);
            valid_len += frame_len;
        }
        Ok(Replay {
            batches,
            valid_len,
            discarded: file_len - valid_len,
        })
    }

    /// Opens the log for appending after cutting off any torn tail found by `replay`.
    pub fn open_for_append(path: &Path, replay: &Replay) -> Result<Wal> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .at(path)?;
        if replay.discarded > 0 {
            file.set_len(replay.valid_len).at(path)?;
            file.sync_all().at(path)?;
        }
        file.seek(SeekFrom::Start(replay.valid_len)).at(path)?;
        Ok(Wal {
            path: path.to_path_buf(),
            file,
            next_seq: replay.batches.len() as u64,
            len: replay.valid_len,
            torn: false,
        })
    }

    /// Appends one batch and fsyncs. On any error the log is cut back to its previous length, so
    /// a failed write (a full disk, say) leaves no half frame behind.
    pub fn append(&mut self, ops: Vec<LoggedOp>) -> Result<()> {
        let batch = LoggedBatch {
            seq: self.next_seq,
            ops,
        };
        let body = rkyv::to_bytes::<rkyv::rancor::Error>(&batch)
            .map_err(|e| corrupt(&self.path, format!("cannot encode batch: {e}")))?;
        let frame = encode_frame(&body);
        if self.torn {
            // An earlier failed append could not cut its partial frame; do it before appending
            // after it, or replay would stop at that frame and drop this batch.
            self.cut_back()?;
        }
        let result = self.write_and_sync(&frame);
        if result.is_err() {
            // If even this fails, the next append retries, and replay cuts the partial frame
            // at the next open.
            self.torn = self.cut_back().is_err();
            return result;
        }
        self.len += frame.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// Truncates the file to the end of the last good frame.
    fn cut_back(&mut self) -> Result<()> {
        faults::failure::check("wal-truncate").at(&self.path)?;
        self.file.set_len(self.len).at(&self.path)?;
        self.file.seek(SeekFrom::Start(self.len)).at(&self.path)?;
        self.torn = false;
        Ok(())
    }

    fn write_and_sync(&mut self, frame: &[u8]) -> Result<()> {
        if let Err(e) = faults::failure::check("wal-append") {
            // A full disk typically takes part of a write first: leave half a frame behind.
            self.file
                .write_all(&frame[..frame.len() / 2])
                .at(&self.path)?;
            return Err(e).at(&self.path);
        }
        self.file.write_all(frame).at(&self.path)?;
        faults::point("wal-before-fsync");
        self.file.sync_data().at(&self.path)?;
        faults::point("wal-after-fsync");
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN as u64
    }
}

fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    frame.extend_from_slice(body);
    frame
}

/// Reads one frame; `None` for a clean end or any kind of damage (the caller stops there).
fn read_frame(reader: &mut impl Read, remaining: u64) -> Option<(LoggedBatch, u64)> {
    let mut prefix = [0u8; 8];
    reader.read_exact(&mut prefix).ok()?;
    let len = u32::from_le_bytes(prefix[0..4].try_into().ok()?);
    let crc = u32::from_le_bytes(prefix[4..8].try_into().ok()?);
    if len > MAX_FRAME || u64::from(len) + 8 > remaining {
        return None;
    }
    let mut body = rkyv::util::AlignedVec::<16>::with_capacity(len as usize);
    body.resize(len as usize, 0);
    reader.read_exact(&mut body).ok()?;
    if crc32fast::hash(&body) != crc {
        return None;
    }
    let batch = rkyv::from_bytes::<LoggedBatch, rkyv::rancor::Error>(&body).ok()?;
    Some((batch, 8 + u64::from(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(id: &str) -> LoggedOp {
        LoggedOp::Upsert(LoggedRecord {
            id: id.into(),
            vectors: vec![Some(vec![1.0, 2.0])],
            payload: vec![Value::Int(3)],
        })
    }

    #[test]
    fn replays_appended_batches_and_cuts_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        Wal::create(&path, 9).unwrap();
        let replay = Wal::replay(&path, 9).unwrap();
        let mut wal = Wal::open_for_append(&path, &replay).unwrap();
        wal.append(vec![upsert("a")]).unwrap();
        wal.append(vec![upsert("b"), LoggedOp::Delete("a".into())])
            .unwrap();
        let full = std::fs::read(&path).unwrap();
        assert_eq!(Wal::replay(&path, 9).unwrap().batches.len(), 2);
        // Every truncation point yields a prefix of whole batches, never an error or a panic.
        for cut in HEADER_LEN..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let replay = Wal::replay(&path, 9).unwrap();
            assert!(replay.batches.len() < 2);
            assert_eq!(replay.valid_len + replay.discarded, cut as u64);
        }
        // A flipped bit in the second frame drops the second batch only.
        let mut damaged = full.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        let replay = Wal::replay(&path, 9).unwrap();
        assert_eq!(replay.batches.len(), 1);
        let mut wal = Wal::open_for_append(&path, &replay).unwrap();
        wal.append(vec![upsert("c")]).unwrap();
        let replay = Wal::replay(&path, 9).unwrap();
        assert_eq!(replay.batches.len(), 2);
        assert_eq!(replay.discarded, 0);
    }

    #[test]
    fn a_log_from_another_collection_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        Wal::create(&path, 1).unwrap();
        assert!(Wal::replay(&path, 2).is_err());
    }
}
