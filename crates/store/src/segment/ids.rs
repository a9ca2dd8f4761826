//! A segment's ids: which row holds which id, and which rows have which vectors.
//!
//! Segments written since format version 2 keep them in `ids.idx`, a memory-mapped table with
//! blocked checksums (FORMAT.md §4.5): each row's id by offset, the rows sorted by id for a
//! binary search, and a presence bitmap per vector field. A lookup touches about log2(rows)
//! entries, so `get`, `delete` and `--like` cost the same at ten rows or ten million, and nothing
//! is loaded into memory per row. Older segments keep `ids.rkyv`, whose ids are put in a hash map
//! on the first lookup, as before.

use super::{cast_words, MappedFile};
use crate::error::{corrupt, Result};
use crate::fileio::{self, FileKind};
use crate::schema::Schema;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// File name of the id index.
pub const INDEX_FILE: &str = "ids.idx";
/// File name of the version 1 id table.
pub const LEGACY_FILE: &str = "ids.rkyv";
/// Blocks of one 4 KiB page: a lookup checks the ~20 pages its probes touch.
const BLOCK_SHIFT: u32 = 12;

/// Ids of a segment's rows and which vectors each row has (the version 1 `ids.rkyv`).
#[derive(Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SegmentIds {
    pub ids: Vec<String>,
    /// One list per schema vector field: whether row i has that vector.
    pub present: Vec<Vec<bool>>,
}

/// Where the parts of an `ids.idx` data region start, in bytes.
#[derive(Debug, Clone, Copy)]
struct IndexLayout {
    rows: usize,
    offsets: usize,
    sorted: usize,
    presence: usize,
    strings: usize,
    end: usize,
}

impl IndexLayout {
    fn new(rows: usize, fields: usize, string_bytes: usize) -> Option<IndexLayout> {
        let offsets = 0usize;
        let sorted = rows.checked_add(1)?.checked_mul(8)?;
        let presence = sorted.checked_add(rows.checked_mul(4)?.next_multiple_of(8))?;
        let words = rows.div_ceil(64).checked_mul(fields)?;
        let strings = presence.checked_add(words.checked_mul(8)?)?;
        let end = strings.checked_add(string_bytes)?;
        Some(IndexLayout {
            rows,
            offsets,
            sorted,
            presence,
            strings,
            end,
        })
    }

    fn words_per_field(&self) -> usize {
        self.rows.div_ceil(64)
    }
}

/// An open segment's ids.
#[derive(Debug)]
pub enum SegmentIdTable {
    Indexed(IdIndex),
    Legacy(LegacyIds),
}

impl SegmentIdTable {
    /// Opens `ids.idx`, or `ids.rkyv` in a segment written by format version 1.
    pub fn open(dir: &Path, owner_uid: u64, schema: &Schema, rows: usize) -> Result<Self> {
        let index = dir.join(INDEX_FILE);
        if index.exists() {
            return IdIndex::open(&index, owner_uid, schema, rows).map(SegmentIdTable::Indexed);
        }
        LegacyIds::open(&dir.join(LEGACY_FILE), owner_uid, schema, rows).map(SegmentIdTable::Legacy)
    }

    pub fn id(&self, row: usize) -> Result<&str> {
        match self {
            SegmentIdTable::Indexed(index) => index.id(row),
            SegmentIdTable::Legacy(legacy) => Ok(legacy.archive().ids[row].as_str()),
        }
    }

    /// The row holding `id`, if any (deleted rows included: the caller checks its tombstones).
    pub fn find(&self, id: &str) -> Result<Option<usize>> {
        match self {
            SegmentIdTable::Indexed(index) => index.find(id),
            SegmentIdTable::Legacy(legacy) => Ok(legacy.find(id)),
        }
    }

    pub fn has_vector(&self, field: usize, row: usize) -> bool {
        match self {
            SegmentIdTable::Indexed(index) => index.has_vector(field, row),
            SegmentIdTable::Legacy(legacy) => legacy.archive().present[field][row],
        }
    }

    /// Whether every one of the segment's `rows` has `field`.
    pub fn has_every_vector(&self, field: usize, rows: usize) -> bool {
        match self {
            SegmentIdTable::Indexed(index) => index.has_every_vector(field),
            SegmentIdTable::Legacy(_) => (0..rows).all(|row| self.has_vector(field, row)),
        }
    }

    /// Checks every id: after this, [`id`](Self::id) of any row is known not to fail.
    pub fn check_all_ids(&self) -> Result<()> {
        match self {
            SegmentIdTable::Indexed(index) => index.check_all_ids(),
            SegmentIdTable::Legacy(_) => Ok(()),
        }
    }

    /// Everything [`check_all_ids`](Self::check_all_ids) checks, and that the sorted order is
    /// a permutation of the rows in strictly ascending id order and the offsets span the id
    /// text exactly: what `verify` adds, since a lookup trusts the order.
    pub fn check_order(&self) -> Result<()> {
        let SegmentIdTable::Indexed(index) = self else {
            return Ok(());
        };
        self.check_all_ids()?;
        index.check_order()
    }

    pub fn file(&self) -> &MappedFile {
        match self {
            SegmentIdTable::Indexed(index) => &index.file,
            SegmentIdTable::Legacy(legacy) => &legacy.file,
        }
    }
}

/// A mapped `ids.idx`.
#[derive(Debug)]
pub struct IdIndex {
    file: MappedFile,
    layout: IndexLayout,
    /// Whether every id was checked: once per process, since filtered searches ask each time.
    ids_checked: OnceLock<Result<(), String>>,
}

impl IdIndex {
    fn open(path: &Path, owner_uid: u64, schema: &Schema, rows: usize) -> Result<IdIndex> {
        let file = MappedFile::open(path, FileKind::IdIndex, owner_uid)?;
        let [file_rows, string_bytes, fields] = file.header.extra;
        let layout = (file_rows == rows as u64 && fields == schema.vectors.len() as u64)
            .then(|| IndexLayout::new(rows, schema.vectors.len(), string_bytes as usize))
            .flatten()
            .filter(|layout| layout.end == file.data().len() && file.is_blocked());
        let Some(layout) = layout else {
            return Err(corrupt(
                path,
                format!(
                    "holds {file_rows} rows of {fields} vector fields, expected {rows} of {}",
                    schema.vectors.len()
                ),
            ));
        };
        // The presence bitmaps are small (a bit per row and field) and every open needs them.
        file.check(layout.presence..layout.strings)?;
        Ok(IdIndex {
            file,
            layout,
            ids_checked: OnceLock::new(),
        })
    }

    fn words<T: Copy>(&self, range: Range<usize>) -> Result<&[T]> {
        self.file.check(range.clone())?;
        cast_words::<T>(&self.file.path, &self.file.data()[range])
    }

    fn id(&self, row: usize) -> Result<&str> {
        let at = self.layout.offsets + 8 * row;
        let bounds = self.words::<u64>(at..at + 16)?;
        let strings = self.layout.end - self.layout.strings;
        let (start, end) = (bounds[0] as usize, bounds[1] as usize);
        if start > end || end > strings {
            return Err(corrupt(
                &self.file.path,
                format!("id of row {row} lies outside the table"),
            ));
        }
        let range = self.layout.strings + start..self.layout.strings + end;
        self.file.check(range.clone())?;
        std::str::from_utf8(&self.file.data()[range])
            .map_err(|_| corrupt(&self.file.path, format!("id of row {row} is not UTF-8")))
    }

    fn sorted_row(&self, position: usize) -> Result<usize> {
        let at = self.layout.sorted + 4 * position;
        let row = self.words::<u32>(at..at + 4)?[0] as usize;
        if row >= self.layout.rows {
            return Err(corrupt(
                &self.file.path,
                format!("sorted entry {position} names row {row}, beyond the segment"),
            ));
        }
        Ok(row)
    }

    fn find(&self, id: &str) -> Result<Option<usize>> {
        let (mut low, mut high) = (0usize, self.layout.rows);
        while low < high {
            let mid = low + (high - low) / 2;
            let row = self.sorted_row(mid)?;
            match self.id(row)?.as_bytes().cmp(id.as_bytes()) {
                Ordering::Less => low = mid + 1,
                Ordering::Greater => high = mid,
                Ordering::Equal => return Ok(Some(row)),
            }
        }
        Ok(None)
    }

    fn check_all_ids(&self) -> Result<()> {
        let outcome = self.ids_checked.get_or_init(|| {
            (0..self.layout.rows)
                .try_for_each(|row| self.id(row).map(|_| ()))
                .map_err(|e| e.to_string())
        });
        outcome
            .clone()
            .map_err(|detail| corrupt(&self.file.path, super::detail_only(&detail)))
    }

    fn check_order(&self) -> Result<()> {
        let rows = self.layout.rows;
        let start = self.words::<u64>(0..8)?[0];
        let end = self.words::<u64>(8 * rows..8 * rows + 8)?[0];
        if start != 0 || end as usize != self.layout.end - self.layout.strings {
            return Err(corrupt(
                &self.file.path,
                "id offsets do not span the id text",
            ));
        }
        let mut seen = crate::bitset::BitSet::new(rows);
        let mut previous: Option<&str> = None;
        for position in 0..rows {
            let row = self.sorted_row(position)?;
            let id = self.id(row)?;
            if seen.get(row) || previous.is_some_and(|p| p.as_bytes() >= id.as_bytes()) {
                return Err(corrupt(
                    &self.file.path,
                    format!("sorted entry {position} is out of order or repeats a row"),
                ));
            }
            seen.set(row);
            previous = Some(id);
        }
        Ok(())
    }

    fn has_vector(&self, field: usize, row: usize) -> bool {
        self.presence_word(field, row / 64) & (1 << (row % 64)) != 0
    }

    /// Whether every row has `field`, a word of 64 rows at a time: every segment open asks, and
    /// a bit at a time it took 11% of a fresh `search --like` at 1M rows (perf).
    fn has_every_vector(&self, field: usize) -> bool {
        let rows = self.layout.rows;
        let full = rows / 64;
        let tail = (1u64 << (rows % 64)) - 1;
        (0..full).all(|word| self.presence_word(field, word) == u64::MAX)
            && (tail == 0 || self.presence_word(field, full) & tail == tail)
    }

    fn presence_word(&self, field: usize, word: usize) -> u64 {
        // Checked at open, so the words are intact.
        let at = self.layout.presence + 8 * (field * self.layout.words_per_field() + word);
        let bytes: [u8; 8] = self.file.data()[at..at + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(bytes)
    }
}

/// A mapped, validated version 1 `ids.rkyv`, with its hash map built on the first lookup.
#[derive(Debug)]
pub struct LegacyIds {
    file: MappedFile,
    by_id: OnceLock<HashMap<String, u32>>,
}

impl LegacyIds {
    fn open(path: &Path, owner_uid: u64, schema: &Schema, rows: usize) -> Result<LegacyIds> {
        let file = MappedFile::open(path, FileKind::Ids, owner_uid)?;
        file.verify()?;
        let ids = rkyv::access::<ArchivedSegmentIds, rkyv::rancor::Error>(file.data())
            .map_err(|e| corrupt(path, format!("id table does not decode: {e}")))?;
        if ids.ids.len() != rows
            || ids.present.len() != schema.vectors.len()
            || ids.present.iter().any(|p| p.len() != rows)
        {
            return Err(corrupt(
                path,
                "row count or field count disagrees with the manifest",
            ));
        }
        Ok(LegacyIds {
            file,
            by_id: OnceLock::new(),
        })
    }

    fn archive(&self) -> &ArchivedSegmentIds {
        // SAFETY: the bytes were validated with `rkyv::access` in `open` and the mapping is
        // immutable (see MappedFile::open), so they are still a valid archive.
        unsafe { rkyv::access_unchecked::<ArchivedSegmentIds>(self.file.data()) }
    }

    fn find(&self, id: &str) -> Option<usize> {
        let by_id = self.by_id.get_or_init(|| {
            let ids = &self.archive().ids;
            (0..ids.len())
                .map(|row| (ids[row].as_str().to_string(), row as u32))
                .collect()
        });
        by_id.get(id).map(|&row| row as usize)
    }
}

/// Writes `ids.idx` for `rows` ids (given by `id_of`) with the given vector presence.
pub fn write_index<'a>(
    dir: &Path,
    owner_uid: u64,
    rows: usize,
    id_of: &(dyn Fn(usize) -> &'a str + Sync),
    present: &[Vec<bool>],
) -> Result<()> {
    let path = dir.join(INDEX_FILE);
    let string_bytes: usize = (0..rows).map(|row| id_of(row).len()).sum();
    let layout = IndexLayout::new(rows, present.len(), string_bytes)
        .ok_or_else(|| corrupt(&path, "segment too large for an id index"))?;
    // Sorting borrows the ids where they are (tail records or mapped segments): 4 bytes a row.
    let mut sorted: Vec<u32> = (0..rows as u32).collect();
    sorted.sort_unstable_by(|&a, &b| {
        id_of(a as usize)
            .as_bytes()
            .cmp(id_of(b as usize).as_bytes())
    });
    let extra = [rows as u64, string_bytes as u64, present.len() as u64];
    fileio::write_streamed(
        &path,
        (FileKind::IdIndex, owner_uid, extra),
        Some(BLOCK_SHIFT),
        |out| {
            // Row i's id starts where the ids before it end; one more entry closes the last.
            let ends = (0..rows).scan(0u64, |end, row| {
                *end += id_of(row).len() as u64;
                Some(*end)
            });
            fileio::write_words(out, std::iter::once(0).chain(ends))?;
            fileio::write_words(out, sorted.iter().copied())?;
            out.write_all(&vec![0u8; layout.presence - layout.sorted - 4 * rows])?;
            for field in present {
                fileio::write_words(
                    out,
                    field.chunks(64).map(|bits| {
                        bits.iter()
                            .enumerate()
                            .fold(0u64, |word, (i, &p)| word | (u64::from(p) << i))
                    }),
                )?;
            }
            (0..rows).try_for_each(|row| out.write_all(id_of(row).as_bytes()))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::VectorField;

    /// `has_every_vector` reads 64 rows a word; it must agree with asking row by row, for row
    /// counts around a word's edge and a missing row at either end of a word.
    #[test]
    fn every_vector_present_agrees_with_each_row() {
        let schema = Schema {
            vectors: vec![VectorField::parse("v:2:l2").unwrap()],
            payload: vec![],
        };
        let ids: Vec<String> = (0..200).map(|row| format!("r{row:03}")).collect();
        for rows in [1, 63, 64, 65, 128, 130] {
            let missing = [
                None,
                Some(0),
                Some(rows - 1),
                Some(rows / 2),
                Some(63.min(rows - 1)),
            ];
            for missing in missing {
                let dir = tempfile::tempdir().unwrap();
                let present = vec![(0..rows)
                    .map(|row| Some(row) != missing)
                    .collect::<Vec<_>>()];
                write_index(dir.path(), 7, rows, &|row| ids[row].as_str(), &present).unwrap();
                let index = IdIndex::open(&dir.path().join(INDEX_FILE), 7, &schema, rows).unwrap();
                let row_by_row = (0..rows).all(|row| index.has_vector(0, row));
                assert_eq!(
                    index.has_every_vector(0),
                    row_by_row,
                    "{rows} rows, {missing:?}"
                );
                assert_eq!(row_by_row, missing.is_none(), "{rows} rows, {missing:?}");
            }
        }
    }
}
