//! The unflushed tail: records logged in the WAL but not yet in a segment.

use crate::filter::{PayloadRow, ValueRef};
use crate::wal::LoggedRecord;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct MemTable {
    pub records: Vec<LoggedRecord>,
    index: HashMap<String, usize>,
    /// About how much memory `records` and `index` take.
    bytes: usize,
}

/// About how many bytes `record` takes in the tail: the record itself, each of its heap blocks
/// (id, vector list, vectors, payload list, strings) as the allocator rounds them, and its entry
/// in the id index. Measured on DICOM records (18 payload fields), a cruder count of only the
/// data bytes came to a third of the real growth in RSS.
fn footprint(record: &LoggedRecord) -> usize {
    use std::mem::size_of;
    let vectors: usize = record
        .vectors
        .iter()
        .flatten()
        .map(|v| heap_block(4 * v.len()))
        .sum();
    let strings: usize = record
        .payload
        .iter()
        .map(|value| match value {
            crate::value::Value::String(s) => heap_block(s.len()),
            _ => 0,
        })
        .sum();
    let index_entry = (size_of::<String>() + size_of::<usize>() + 1) * 8 / 7;
    size_of::<LoggedRecord>()
        + 2 * heap_block(record.id.len())
        + heap_block(record.vectors.capacity() * size_of::<Option<Vec<f32>>>())
        + vectors
        + heap_block(record.payload.capacity() * size_of::<crate::value::Value>())
        + strings
        + index_entry
}

/// The memory a heap block of `bytes` occupies: glibc adds an 8-byte header, rounds to 16 bytes
/// and allocates at least 32.
fn heap_block(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        ((bytes + 8).div_ceil(16) * 16).max(32)
    }
}

impl MemTable {
    pub fn get(&self, id: &str) -> Option<&LoggedRecord> {
        self.index.get(id).map(|&i| &self.records[i])
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Inserts or replaces by id.
    pub fn upsert(&mut self, record: LoggedRecord) {
        self.bytes += footprint(&record);
        match self.index.get(&record.id) {
            Some(&i) => {
                self.bytes -= footprint(&self.records[i]);
                self.records[i] = record;
            }
            None => {
                self.index.insert(record.id.clone(), self.records.len());
                self.records.push(record);
            }
        }
    }

    /// Removes by id; returns whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(i) = self.index.remove(id) else {
            return false;
        };
        self.bytes -= footprint(&self.records[i]);
        self.records.swap_remove(i);
        if let Some(moved) = self.records.get(i) {
            self.index.insert(moved.id.clone(), i);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// About how many bytes the tail's records take in memory.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn take(&mut self) -> Vec<LoggedRecord> {
        self.index.clear();
        self.bytes = 0;
        std::mem::take(&mut self.records)
    }
}

/// A logged record as the filter sees it.
pub struct LoggedRow<'a>(pub &'a LoggedRecord);

impl PayloadRow for LoggedRow<'_> {
    fn id(&self) -> &str {
        &self.0.id
    }

    fn value(&self, index: usize) -> ValueRef<'_> {
        self.0
            .payload
            .get(index)
            .map_or(ValueRef::Null, ValueRef::from)
    }
}
