//! The envelope every medvec file starts with, and the durable-write primitives.
//!
//! Every file begins with a 64-byte header (see `FORMAT.md`): magic, kind, format version, the
//! owning collection's uid, the body length and CRC-32, kind-specific words and the header's own
//! CRC-32. The body starts at byte 64, so a memory-mapped body is aligned for `f32` and `u32`.

use crate::error::{corrupt, IoContext, Result, StoreError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The format version this build writes and the newest it reads. Version 2 added blocked bodies
/// (vector columns and the sorted id index, see `blocks.rs`); version 1 files still read.
pub const FORMAT_VERSION: u32 = 2;
/// Size of the header in front of every file body.
pub const HEADER_LEN: usize = 64;
const MAGIC: &[u8; 6] = b"MEDVEC";

/// What a file holds; the two bytes after the magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    StoreMarker,
    Manifest,
    Wal,
    VectorColumn,
    Ids,
    IdIndex,
    Payload,
    PayloadColumns,
    Graph,
    Sq8Codes,
    Head,
    ModelRecord,
    PseudonymKey,
}

impl FileKind {
    fn code(self) -> [u8; 2] {
        *match self {
            FileKind::StoreMarker => b"ST",
            FileKind::Manifest => b"MF",
            FileKind::Wal => b"WL",
            FileKind::VectorColumn => b"VC",
            FileKind::Ids => b"ID",
            FileKind::IdIndex => b"IX",
            FileKind::Payload => b"PL",
            FileKind::PayloadColumns => b"PC",
            FileKind::Graph => b"HG",
            FileKind::Sq8Codes => b"Q8",
            FileKind::Head => b"HD",
            FileKind::ModelRecord => b"MD",
            FileKind::PseudonymKey => b"PK",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            FileKind::StoreMarker => "store marker",
            FileKind::Manifest => "manifest",
            FileKind::Wal => "write-ahead log",
            FileKind::VectorColumn => "vector column",
            FileKind::Ids => "id table",
            FileKind::IdIndex => "id index",
            FileKind::Payload => "payload table",
            FileKind::PayloadColumns => "payload columns",
            FileKind::Graph => "HNSW graph",
            FileKind::Sq8Codes => "SQ8 codes",
            FileKind::Head => "classifier head",
            FileKind::ModelRecord => "model record",
            FileKind::PseudonymKey => "pseudonym key",
        }
    }
}

/// The decoded 64-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: FileKind,
    pub version: u32,
    /// Bit 0: the body is blocked (bits 8..16: log2 of the block size), see `blocks.rs`.
    pub flags: u32,
    /// Uid of the collection (or store) the file belongs to; catches files copied between stores.
    pub owner_uid: u64,
    pub body_len: u64,
    pub body_crc: u32,
    /// Kind-specific words (rows and dimension for a column, for example).
    pub extra: [u64; 3],
}

impl Header {
    pub fn new(kind: FileKind, owner_uid: u64, body: &[u8], extra: [u64; 3]) -> Header {
        Header {
            kind,
            version: FORMAT_VERSION,
            flags: 0,
            owner_uid,
            body_len: body.len() as u64,
            body_crc: crc32fast::hash(body),
            extra,
        }
    }

    /// The header and body of a file whose `data` is checked in blocks of `2^shift` bytes
    /// (`blocks.rs`): the body is the data and its block table.
    pub fn blocked(
        kind: FileKind,
        owner_uid: u64,
        data: &[u8],
        extra: [u64; 3],
        shift: u32,
    ) -> (Header, Vec<u8>) {
        let (body, table_crc) = crate::blocks::blocked_body(data, shift);
        let mut header = Header::new(kind, owner_uid, &body, extra);
        header.body_crc = table_crc;
        header.flags = crate::blocks::flags(shift);
        (header, body)
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..6].copy_from_slice(MAGIC);
        out[6..8].copy_from_slice(&self.kind.code());
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.owner_uid.to_le_bytes());
        out[24..32].copy_from_slice(&self.body_len.to_le_bytes());
        out[32..36].copy_from_slice(&self.body_crc.to_le_bytes());
        for (i, word) in self.extra.iter().enumerate() {
            let at = 36 + 8 * i;
            out[at..at + 8].copy_from_slice(&word.to_le_bytes());
        }
        let crc = crc32fast::hash(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header: magic, kind, header CRC, version and owner.
    /// `owner_uid == None` accepts any owner (used when the owner is not yet known).
    pub fn decode(
        path: &Path,
        bytes: &[u8],
        kind: FileKind,
        owner_uid: Option<u64>,
    ) -> Result<Header> {
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(
                path,
                format!(
                    "{} bytes long, shorter than the 64-byte header",
                    bytes.len()
                ),
            ));
        }
        let word32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let word64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        if &bytes[0..6] != MAGIC {
            return Err(corrupt(path, "not a medvec file (bad magic)"));
        }
        if bytes[6..8] != kind.code() {
            return Err(corrupt(
                path,
                format!("expected a {} file", kind.describe()),
            ));
        }
        if crc32fast::hash(&bytes[..60]) != word32(60) {
            return Err(corrupt(path, "header checksum mismatch"));
        }
        let version = word32(8);
        if version > FORMAT_VERSION {
            return Err(StoreError::NewerFormat {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let header = Header {
            kind,
            version,
            flags: word32(12),
            owner_uid: word64(16),
            body_len: word64(24),
            body_crc: word32(32),
            extra: [word64(36), word64(44), word64(52)],
        };
        if version < 2 && header.flags != 0 {
            return Err(corrupt(path, "flags set in a version 1 header"));
        }
        crate::blocks::shift_of(path, header.flags)?;
        if let Some(expected) = owner_uid {
            if header.owner_uid != expected {
                return Err(corrupt(path, "belongs to another collection or store (its owner uid differs from the MANIFEST and log)"));
            }
        }
        Ok(header)
    }

    /// Checks that `file_bytes` holds exactly the body the header describes and that its CRC matches.
    pub fn check_body<'a>(&self, path: &Path, file_bytes: &'a [u8]) -> Result<&'a [u8]> {
        let body = self.body_slice(path, file_bytes)?;
        if let Some(shift) = crate::blocks::shift_of(path, self.flags)? {
            let checks = crate::blocks::BlockChecks::open(path, body, shift, self.body_crc)?;
            checks.check_all(path, body)?;
            return Ok(&body[..checks.data_len()]);
        }
        if crc32fast::hash(body) != self.body_crc {
            return Err(corrupt(path, "body checksum mismatch"));
        }
        Ok(body)
    }

    /// The body, after checking only its length (for lazily verified large columns).
    pub fn body_slice<'a>(&self, path: &Path, file_bytes: &'a [u8]) -> Result<&'a [u8]> {
        let expected = (HEADER_LEN as u64).checked_add(self.body_len);
        if expected != Some(file_bytes.len() as u64) {
            return Err(corrupt(
                path,
                format!(
                    "length {} does not match the header's {}-byte body (truncated or extended)",
                    file_bytes.len(),
                    self.body_len
                ),
            ));
        }
        Ok(&file_bytes[HEADER_LEN..])
    }
}

/// Creates a file readable and writable by its owner only: stores hold patient data.
pub fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .at(path)
}

/// Creates a directory (and parents) accessible by its owner only.
pub fn create_private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .at(path)
}

/// Writes header + body to a new file and fsyncs it. The caller makes it visible (rename or
/// manifest) only after this returns, so a crash leaves at worst an unreferenced file.
pub fn write_new_file(path: &Path, header: &Header, body: &[u8]) -> Result<()> {
    let mut file = create_private(path)?;
    file.write_all(&header.encode()).at(path)?;
    if let Err(e) = crate::faults::failure::check(failure_point(header.kind)) {
        // A full disk typically accepts part of a write first: leave half the body behind.
        file.write_all(&body[..body.len() / 2]).at(path)?;
        return Err(e).at(path);
    }
    file.write_all(body).at(path)?;
    file.sync_all().at(path)
}

/// Writes a new file whose body `fill` streams out, then goes back to put the header (with the
/// body's length and CRC, known only at the end) in front, and fsyncs. Large columns are written
/// this way so that a flush or a merge never holds a second copy of them in memory. With
/// `block_shift`, the body is blocked (`blocks.rs`): the block CRC table follows the data.
pub fn write_streamed(
    path: &Path,
    (kind, owner_uid, extra): (FileKind, u64, [u64; 3]),
    block_shift: Option<u32>,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    write_streamed_then(path, (kind, owner_uid), block_shift, |out| {
        fill(out).map(|()| extra)
    })
}

/// Like [`write_streamed`], for a file whose kind words depend on its body: `fill` returns them.
pub fn write_streamed_then(
    path: &Path,
    (kind, owner_uid): (FileKind, u64),
    block_shift: Option<u32>,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<[u64; 3]>,
) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let file = create_private(path)?;
    let mut out = HashingWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, &file),
        hasher: crc32fast::Hasher::new(),
        blocks: block_shift.map(crate::blocks::BlockHasher::new),
        len: 0,
    };
    // A placeholder header: a crash before the real one is written leaves a file that fails
    // its header check, and no manifest names it yet anyway.
    out.inner.write_all(&[0u8; HEADER_LEN]).at(path)?;
    if let Err(e) = crate::faults::failure::check(failure_point(kind)) {
        return Err(e).at(path);
    }
    let extra = fill(&mut out).at(path)?;
    let (body_crc, flags) = match (out.blocks.take(), block_shift) {
        (Some(blocks), Some(shift)) => {
            let table = blocks.table();
            out.inner.write_all(&table).at(path)?;
            out.len += table.len() as u64;
            (crc32fast::hash(&table), crate::blocks::flags(shift))
        }
        _ => (out.hasher.clone().finalize(), 0),
    };
    let header = Header {
        kind,
        version: FORMAT_VERSION,
        flags,
        owner_uid,
        body_len: out.len,
        body_crc,
        extra,
    };
    let mut inner = out
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .at(path)?;
    inner.seek(SeekFrom::Start(0)).at(path)?;
    inner.write_all(&header.encode()).at(path)?;
    file.sync_all().at(path)
}

/// A writer that also checksums (whole, or per block) and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    blocks: Option<crate::blocks::BlockHasher>,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        match &mut self.blocks {
            Some(blocks) => blocks.update(&buf[..written]),
            None => self.hasher.update(&buf[..written]),
        }
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes little-endian words (u64, u32 or f32), a buffer at a time rather than a call each.
pub fn write_words<W: LeBytes>(
    out: &mut dyn Write,
    words: impl Iterator<Item = W>,
) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(1 << 16);
    for word in words {
        word.append_to(&mut buffer);
        if buffer.len() >= 1 << 16 {
            out.write_all(&buffer)?;
            buffer.clear();
        }
    }
    out.write_all(&buffer)
}

/// A number written little-endian.
pub trait LeBytes {
    fn append_to(self, buffer: &mut Vec<u8>);
}

macro_rules! le_bytes {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            fn append_to(self, buffer: &mut Vec<u8>) {
                buffer.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

le_bytes!(u64, u32, f32);

/// The injected-failure point (see [`crate::faults::failure`]) for writing a file of `kind`.
fn failure_point(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Wal => "wal-create",
        FileKind::VectorColumn
        | FileKind::Ids
        | FileKind::IdIndex
        | FileKind::Payload
        | FileKind::PayloadColumns => "segment-write",
        FileKind::Graph | FileKind::Sq8Codes => "graph-write",
        FileKind::Manifest => "manifest-write",
        FileKind::Head => "head-write",
        FileKind::ModelRecord => "model-record-write",
        FileKind::PseudonymKey => "pseudonym-key-write",
        FileKind::StoreMarker => "marker-write",
    }
}

/// Replaces `path` atomically: write a temporary sibling, fsync it, rename over `path`, fsync the
/// directory. A reader sees either the old or the new file, never a mixture.
pub fn replace_atomically(path: &Path, header: &Header, body: &[u8]) -> Result<()> {
    let temp = temp_sibling(path);
    write_new_file(&temp, header, body)?;
    rename_durably(&temp, path)
}

/// Renames a complete, fsynced `temp` over `path` and fsyncs the directory.
pub fn rename_durably(temp: &Path, path: &Path) -> Result<()> {
    crate::faults::point("before-rename");
    fs::rename(temp, path).at(path)?;
    crate::faults::point("after-rename");
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The temporary name used while a file is being replaced; `open` deletes leftovers.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Fsyncs a directory so that renames and new entries in it survive power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Reads a whole small file and checks its header and body.
pub fn read_checked(
    path: &Path,
    kind: FileKind,
    owner_uid: Option<u64>,
) -> Result<(Header, Vec<u8>)> {
    let bytes = fs::read(path).at(path)?;
    let header = Header::decode(path, &bytes, kind, owner_uid)?;
    let body = header.check_body(path, &bytes)?.to_vec();
    Ok((header, body))
}

/// A fresh random 64-bit uid, from the OS's entropy, with the clock as a fallback.
pub fn new_uid() -> u64 {
    let mut buf = [0u8; 8];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_ok()
    {
        return u64::from_le_bytes(buf) | 1;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ ((std::process::id() as u64) << 32)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let path = Path::new("x");
        let header = Header::new(FileKind::Manifest, 42, b"body", [1, 2, 3]);
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(b"body");
        let decoded = Header::decode(path, &bytes, FileKind::Manifest, Some(42)).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(decoded.check_body(path, &bytes).unwrap(), b"body");
        assert!(Header::decode(path, &bytes, FileKind::Wal, None).is_err());
        assert!(Header::decode(path, &bytes, FileKind::Manifest, Some(7)).is_err());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let ok = Header::decode(path, &damaged, FileKind::Manifest, Some(42))
                .and_then(|h| h.check_body(path, &damaged).map(|_| ()));
            assert!(ok.is_err(), "flip at byte {at} went unnoticed");
        }
        assert!(decoded.check_body(path, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn newer_version_is_reported() {
        let mut header = Header::new(FileKind::Manifest, 1, b"", [0; 3]);
        header.version = FORMAT_VERSION + 1;
        let bytes = header.encode();
        let err = Header::decode(Path::new("m"), &bytes, FileKind::Manifest, None).unwrap_err();
        assert!(matches!(err, StoreError::NewerFormat { .. }), "{err}");
    }
}
