//! A segment file mapped into memory: its header checked at open, its body checked in blocks
//! on first use (or whole), and the typed views of its bytes.

use crate::blocks::{self, BlockChecks};
use crate::error::{corrupt, IoContext, Result};
use crate::fileio::{FileKind, Header, HEADER_LEN};
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A file mapped into memory with its header checked. A blocked body (format version 2) has its
/// block table checked here and its blocks on first use; any other body is checked whole by
/// [`verify`](Self::verify), which small files call at open.
#[derive(Debug)]
pub(super) struct MappedFile {
    pub(super) path: PathBuf,
    map: Mmap,
    pub(super) header: Header,
    blocks: Option<BlockChecks>,
}

impl MappedFile {
    pub(super) fn open(path: &Path, kind: FileKind, owner_uid: u64) -> Result<MappedFile> {
        let file = File::open(path).at(path)?;
        // SAFETY: segment files are written once, fsynced and published by the manifest; medvec
        // never writes to or truncates a published file (compaction writes new files and deletes
        // old ones, which leaves existing mappings intact). Changing them behind medvec's back is
        // outside the format's contract (FORMAT.md, "Assumptions").
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        let header = Header::decode(path, &map, kind, Some(owner_uid))?;
        let body = header.body_slice(path, &map)?;
        let blocks = match blocks::shift_of(path, header.flags)? {
            Some(shift) => Some(BlockChecks::open(path, body, shift, header.body_crc)?),
            None => None,
        };
        if blocks.is_some() {
            // Columns, graphs and the id index are read at scattered rows, so readahead around
            // them is wasted. Only a hint, so a refusal changes nothing; it was meant to stop
            // each fault mapping the 15 pages around it too, but on the 6.18 kernel of machine
            // 5 faults still map them (`filemap_map_pages` in a profile), and on machine 3
            // dropping the hint changed no fault count at 10M (benches/README, "Long mode").
            let _ = map.advise(memmap2::Advice::Random);
        }
        Ok(MappedFile {
            path: path.to_path_buf(),
            map,
            header,
            blocks,
        })
    }

    /// The body without its block table, if any.
    pub(super) fn data(&self) -> &[u8] {
        let body = &self.map[HEADER_LEN..];
        match &self.blocks {
            Some(blocks) => &body[..blocks.data_len()],
            None => body,
        }
    }

    pub(super) fn is_blocked(&self) -> bool {
        self.blocks.is_some()
    }

    /// Checks the blocks of `range` of the data not checked yet (nothing for an unblocked body,
    /// which is checked whole by `verify`).
    #[inline]
    pub(super) fn check(&self, range: std::ops::Range<usize>) -> Result<()> {
        match &self.blocks {
            Some(blocks) => blocks.check(&self.path, &self.map[HEADER_LEN..], range),
            None => Ok(()),
        }
    }

    /// Drops this process's mapping of the file's pages; the page cache keeps them, and a later
    /// read faults them back in. A merge calls it on the inputs it has streamed, so that their
    /// pages stop counting in its RSS while it builds the merged graph.
    pub(super) fn release_pages(&self) {
        // SAFETY: `Mmap::map` makes a read-only shared file mapping, for which MADV_DONTNEED only
        // removes page table entries: nothing is freed or zeroed under any reference into the
        // map, and the next read of a page returns the same bytes of the same file, which is
        // never modified once published (FORMAT.md §1). Only a hint: a refusal changes nothing.
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// Checks every byte, blocked or not.
    pub(super) fn verify(&self) -> Result<()> {
        self.header.check_body(&self.path, &self.map).map(|_| ())
    }
}

/// Reinterprets an aligned little-endian byte slice as `T` words.
pub(super) fn cast_words<'a, T: Copy>(path: &Path, bytes: &'a [u8]) -> Result<&'a [T]> {
    let size = std::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size)
        || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>())
    {
        return Err(corrupt(path, "body is not a whole number of aligned words"));
    }
    // SAFETY: the pointer is aligned for T and the length is a multiple of its size (both checked
    // above); T is f32 or u32, for which every bit pattern is valid; the CPU is little-endian
    // (compile-time check), matching the file; the bytes live as long as the returned slice.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

/// Strips the "path: corrupt: " prefix a cached error message already carries.
pub(super) fn detail_only(message: &str) -> String {
    message
        .rsplit_once("corrupt: ")
        .map_or(message, |(_, d)| d)
        .to_string()
}
