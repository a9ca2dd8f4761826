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

/// About how many bytes `record` takes in the tail: its vectors, id (twice, with the index) and
/// payload, plus allocation overheads.
fn footprint(record: &LoggedRecord) -> usize {
    let vectors: usize = record
        .vectors
        .iter()
        .flatten()
        .map(|v| 4 * v.len() + 24)
        .sum();
    let payload: usize = record
        .payload
        .iter()
        .map(|value| match value {
            crate::value::Value::String(s) => 32 + s.len(),
            _ => 32,
        })
        .sum();
    2 * (record.id.len() + 24) + vectors + payload + 64
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
