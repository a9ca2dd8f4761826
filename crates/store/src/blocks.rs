//! Block checksums: large files whose body is checked a block at a time, the first time a
//! reader touches each block, instead of in one pass before the first answer.
//!
//! A blocked body is the file's data followed by one CRC-32 per block of `2^shift` bytes (the
//! last block may be short). The header's body CRC covers only that table, so opening checks
//! the table (4 bytes per block) and nothing else; each block is checked against its table
//! entry on first use and remembered in an atomic bit set, so concurrent readers need no lock
//! (two threads may check the same block once each, which is harmless). See FORMAT.md §3.1.

use crate::error::{corrupt, Result};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Header flag: the body is blocked; bits 8..16 of the flags hold the block size's log2.
pub const FLAG_BLOCKED: u32 = 1;
const SHIFT_AT: u32 = 8;
/// Smallest and largest block sizes a reader accepts (4 KiB .. 64 MiB).
const SHIFTS: std::ops::RangeInclusive<u32> = 12..=26;

/// The header flags of a blocked body with blocks of `2^shift` bytes.
pub fn flags(shift: u32) -> u32 {
    FLAG_BLOCKED | (shift << SHIFT_AT)
}

/// The block size's log2 in `flags`, or `None` when the body is not blocked.
pub fn shift_of(path: &Path, flags: u32) -> Result<Option<u32>> {
    if flags & FLAG_BLOCKED == 0 {
        return Ok(None);
    }
    let shift = (flags >> SHIFT_AT) & 0xff;
    if !SHIFTS.contains(&shift) || flags & !(FLAG_BLOCKED | (0xff << SHIFT_AT)) != 0 {
        return Err(corrupt(path, format!("unknown header flags {flags:#x}")));
    }
    Ok(Some(shift))
}

/// Number of blocks of a body of `body_len` bytes (data plus table) with blocks of `2^shift`:
/// every block adds 4 table bytes, so the count is the body length over `2^shift + 4`, rounded up.
fn block_count(body_len: u64, shift: u32) -> u64 {
    body_len.div_ceil((1u64 << shift) + 4)
}

/// Checksums data as it is written, a CRC per block, for the table written after it.
pub struct BlockHasher {
    shift: u32,
    filled: u64,
    current: crc32fast::Hasher,
    crcs: Vec<u32>,
}

impl BlockHasher {
    pub fn new(shift: u32) -> BlockHasher {
        BlockHasher {
            shift,
            filled: 0,
            current: crc32fast::Hasher::new(),
            crcs: Vec::new(),
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        let block = 1u64 << self.shift;
        while !bytes.is_empty() {
            let take = ((block - self.filled) as usize).min(bytes.len());
            self.current.update(&bytes[..take]);
            self.filled += take as u64;
            bytes = &bytes[take..];
            if self.filled == block {
                let done = std::mem::replace(&mut self.current, crc32fast::Hasher::new());
                self.crcs.push(done.finalize());
                self.filled = 0;
            }
        }
    }

    /// The table of block CRCs (little-endian u32s), to append after the data.
    pub fn table(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.crcs.push(self.current.finalize());
        }
        self.crcs.iter().flat_map(|c| c.to_le_bytes()).collect()
    }
}

/// `data` followed by its block table, and the CRC of that table (the header's body CRC): a
/// whole blocked body at once, for small files and for tests that forge files.
pub fn blocked_body(data: &[u8], shift: u32) -> (Vec<u8>, u32) {
    let mut hasher = BlockHasher::new(shift);
    hasher.update(data);
    let table = hasher.table();
    let crc = crc32fast::hash(&table);
    ([data, &table].concat(), crc)
}

/// The reader's side: which blocks of a mapped body have been checked.
#[derive(Debug)]
pub struct BlockChecks {
    shift: u32,
    data_len: usize,
    blocks: usize,
    checked: Vec<AtomicU64>,
}

impl BlockChecks {
    /// Splits a blocked body into data and table and checks the table against `table_crc`.
    pub fn open(path: &Path, body: &[u8], shift: u32, table_crc: u32) -> Result<BlockChecks> {
        let blocks = block_count(body.len() as u64, shift) as usize;
        let misfit = || corrupt(path, "block table does not fit the body length");
        let data_len = body.len().checked_sub(4 * blocks).ok_or_else(misfit)?;
        if (data_len as u64).div_ceil(1 << shift) != blocks as u64 {
            return Err(misfit());
        }
        if crc32fast::hash(&body[data_len..]) != table_crc {
            return Err(corrupt(path, "block checksum table mismatch"));
        }
        Ok(BlockChecks {
            shift,
            data_len,
            blocks,
            checked: (0..blocks.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        })
    }

    /// Bytes of data before the table.
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Checks every block overlapping `range` of the data that no one has checked yet.
    #[inline]
    pub fn check(&self, path: &Path, body: &[u8], range: std::ops::Range<usize>) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        if range.end > self.data_len {
            return Err(corrupt(
                path,
                format!(
                    "a read of bytes {range:?} goes past the data's {} bytes",
                    self.data_len
                ),
            ));
        }
        let first = range.start >> self.shift;
        let last = (range.end - 1) >> self.shift;
        for block in first..=last {
            if !self.is_checked(block) {
                self.check_block(path, body, block)?;
            }
        }
        Ok(())
    }

    /// Checks every block (what `verify` does), whether or not it was checked before.
    pub fn check_all(&self, path: &Path, body: &[u8]) -> Result<()> {
        (0..self.blocks).try_for_each(|block| self.check_block(path, body, block))
    }

    #[inline]
    fn is_checked(&self, block: usize) -> bool {
        self.checked[block / 64].load(Ordering::Relaxed) & (1 << (block % 64)) != 0
    }

    #[cold]
    fn check_block(&self, path: &Path, body: &[u8], block: usize) -> Result<()> {
        let start = block << self.shift;
        let end = ((block + 1) << self.shift).min(self.data_len);
        let entry = self.data_len + 4 * block;
        let expected = u32::from_le_bytes(body[entry..entry + 4].try_into().expect("4 bytes"));
        if crc32fast::hash(&body[start..end]) != expected {
            return Err(corrupt(
                path,
                format!("block {block} (bytes {start}..{end} of the body) checksum mismatch"),
            ));
        }
        // Relaxed is enough: the bit only says "these immutable bytes were found intact".
        self.checked[block / 64].fetch_or(1 << (block % 64), Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(data: &[u8], shift: u32) -> (Vec<u8>, u32) {
        // Fed in two uneven parts, as a streamed write does.
        let mut hasher = BlockHasher::new(shift);
        hasher.update(&data[..data.len() / 3]);
        hasher.update(&data[data.len() / 3..]);
        let table = hasher.table();
        let crc = crc32fast::hash(&table);
        assert_eq!(blocked_body(data, shift), ([data, &table].concat(), crc));
        ([data, &table].concat(), crc)
    }

    #[test]
    fn every_block_is_checked_once_and_damage_names_its_block() {
        let path = Path::new("c");
        for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096 + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (body, crc) = blocked(&data, 12);
            let checks = BlockChecks::open(path, &body, 12, crc).unwrap();
            assert_eq!(checks.data_len(), len, "len {len}");
            checks.check(path, &body, 0..len).unwrap();
            checks.check_all(path, &body).unwrap();
            for at in (0..len).step_by(997) {
                let mut damaged = body.clone();
                damaged[at] ^= 1;
                let checks = BlockChecks::open(path, &damaged, 12, crc).unwrap();
                let block = at / 4096;
                let err = checks.check(path, &damaged, at..at + 1).unwrap_err();
                assert!(
                    err.to_string().contains(&format!("block {block} ")),
                    "{err}"
                );
                let elsewhere = if block == 0 {
                    len.min(4096)..len
                } else {
                    0..4096
                };
                checks.check(path, &damaged, elsewhere).unwrap();
                assert!(checks.check_all(path, &damaged).is_err());
            }
        }
    }

    #[test]
    fn a_damaged_table_or_length_fails_at_open() {
        let path = Path::new("c");
        let (body, crc) = blocked(&[5u8; 10_000], 12);
        let mut damaged = body.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(BlockChecks::open(path, &damaged, 12, crc).is_err());
        assert!(BlockChecks::open(path, &body[..body.len() - 1], 12, crc).is_err());
        for short in 1..4 {
            assert!(BlockChecks::open(path, &body[..short], 12, crc).is_err());
        }
        let checks = BlockChecks::open(path, &body, 12, crc).unwrap();
        assert!(checks.check(path, &body, 9_999..10_001).is_err());
        assert!(shift_of(path, flags(20)).unwrap() == Some(20));
        assert!(shift_of(path, flags(40)).is_err());
        assert!(shift_of(path, 0).unwrap().is_none());
    }
}
