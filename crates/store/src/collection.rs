//! A collection: its manifest, open segments, tombstones, the unflushed tail and its log.

pub(crate) mod artifacts;
pub mod columnar;
mod live_sums;
mod merge;
mod opening;

use live_sums::{add_live_sums, add_to_sums, segment_sums, subtract_segment_row, zero_sums};
use opening::{load_state, remove_orphans};

use crate::bitset::BitSet;
use crate::error::{IoContext, Result, StoreError};
use crate::faults;
use crate::fileio;
use crate::filter::Filter;
use crate::manifest::{Manifest, SegmentEntry};
use crate::memtable::{LoggedRow, MemTable};
use crate::schema::Schema;
use crate::segment::{self, Graphs, Segment};
use crate::sums::FieldSum;
use crate::validate::validate_batch;
use crate::wal::{LoggedOp, LoggedRecord, Wal};
use crate::Record;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Tuning that is not part of the on-disk format.
#[derive(Debug, Clone, Copy)]
pub struct CollectionOptions {
    /// The tail is flushed into a new segment when it holds this many records...
    pub flush_rows: usize,
    /// ...or when its records take about this many bytes in memory (vectors, ids and payload),
    /// so that a writer's memory stays bounded whatever the size of a record. Default 2 MiB, or
    /// `MEDVEC_FLUSH_MIB` MiB when that variable holds a whole number of at least 1 (a larger
    /// tail means fewer, larger flushes: fewer segments to merge, more memory).
    pub flush_bytes: usize,
    /// Automatic merges write segments of at most this many rows (and segments this large are
    /// never merged again), so that no merge, which holds up the writer, rebuilds more than one
    /// such segment's graph.
    pub segment_rows: usize,
    /// The one-off rewrites, [`Collection::compact`] and the graph build at the end of a bulk
    /// load, write segments of up to this many bytes of vectors (all fields' columns, 4 bytes a
    /// dimension plus 4 a row), and never fewer rows than `segment_rows`. A query visits every
    /// segment's graph, so fewer, larger graphs take fewer walks; but a larger graph needs a
    /// larger ef for the same recall, and costs memory while it is built: its lists (about
    /// 130 MB per million rows at M 16) and the column's pages, which the build reads at random.
    /// Default 0, so `segment_rows`: one graph of 10M × 128 took 2.2× the import CPU and 11× the
    /// peak RSS of twelve 2^20-row ones, and searched no faster at recall 0.95 (benches/README,
    /// "Long mode").
    pub rewrite_bytes: usize,
    /// After a flush, when more than this many segments of similar size (one tier, a size ratio
    /// of this factor) exist, they are merged into one (see `collection/merge.rs`); 0 turns
    /// automatic merging off.
    pub merge_factor: usize,
    /// A bulk load: flushes and merges write segments without graphs, and the graphs are built
    /// once over all the new rows by the next explicit [`Collection::flush`] (or `Store::close`),
    /// instead of once per flush and again per merge. Until then readers scan those rows exactly.
    pub defer_graphs: bool,
}

impl Default for CollectionOptions {
    fn default() -> Self {
        CollectionOptions {
            flush_rows: 65_536,
            flush_bytes: flush_bytes_from_env(DEFAULT_FLUSH_BYTES),
            segment_rows: 1 << 20,
            rewrite_bytes: 0,
            merge_factor: 4,
            defer_graphs: false,
        }
    }
}

/// The most rows of any segment: rows are numbered in `u32`s, with `u32::MAX` reserved.
const MAX_SEGMENT_ROWS: usize = 1 << 31;

/// The default bound of the unflushed tail. 2 MiB: the tail is the part of a writer's memory that
/// grows with what it has written since its last flush, so it sets how far the peak RSS of an
/// ingest of 10,000 files exceeds one of 1,000 (`benches/README.md`, DICOM ingest); a smaller
/// tail costs more flushes, which the tiered merges absorb (each row is rewritten once per tier).
const DEFAULT_FLUSH_BYTES: usize = 2 << 20;

/// The tail bound of a bulk load of precomputed vectors ([`CollectionOptions::bulk`]): fewer,
/// larger flushes. At 200,000 × 512-d, 2 MiB flushed every 1,024 rows, put one more tier
/// between a flush and the largest segment, and cost 40% more CPU than 8 MiB.
const BULK_FLUSH_BYTES: usize = 8 << 20;

/// `MEDVEC_FLUSH_MIB` MiB when set to a whole number ≥ 1, else `default`; an invalid value is
/// reported on stderr and ignored.
fn flush_bytes_from_env(default: usize) -> usize {
    let Some(text) = std::env::var_os("MEDVEC_FLUSH_MIB") else {
        return default;
    };
    match text.to_str().and_then(|t| t.trim().parse::<usize>().ok()) {
        Some(mib) if mib >= 1 => mib.saturating_mul(1 << 20),
        _ => {
            eprintln!(
                "warning: MEDVEC_FLUSH_MIB={text:?} is not a whole number of MiB >= 1; using {} MiB",
                default >> 20
            );
            default
        }
    }
}

impl CollectionOptions {
    /// The options of a bulk load of precomputed vectors (`medvec import`): as the default, but
    /// with an 8 MiB tail unless `MEDVEC_FLUSH_MIB` sets it, since there the speed of the load
    /// matters more than a few MiB of memory, and with graphs deferred to the end of the load.
    pub fn bulk() -> CollectionOptions {
        CollectionOptions {
            flush_bytes: flush_bytes_from_env(BULK_FLUSH_BYTES),
            defer_graphs: true,
            ..CollectionOptions::default()
        }
    }

    /// The most rows a one-off rewrite writes in one segment for `schema` (see `rewrite_bytes`);
    /// below 2^31, as rows are numbered in `u32`s.
    fn rewrite_rows(&self, schema: &Schema) -> usize {
        let row_bytes: usize = schema.vectors.iter().map(|f| 4 * (f.dim + 1)).sum();
        let by_bytes = self
            .rewrite_bytes
            .checked_div(row_bytes)
            .unwrap_or(usize::MAX);
        by_bytes.clamp(self.segment_rows, MAX_SEGMENT_ROWS)
    }

    /// How a flush writes its segment's graphs: deferred during a bulk load, else built.
    fn flush_graphs(&self) -> Graphs<'static> {
        match self.defer_graphs {
            true => Graphs::Defer,
            false => Graphs::Build(None),
        }
    }
}

/// Where a live row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    Segment(usize, u32),
    Tail,
}

/// The committed state a reader sees; writers replace parts of it under the lock.
pub(crate) struct State {
    pub manifest: Manifest,
    pub segments: Vec<Arc<Segment>>,
    pub tombstones: Vec<BitSet>,
    pub tail: MemTable,
    /// Per vector field, the running sum of the live rows' unit vectors.
    pub sums: Vec<FieldSum>,
}

impl State {
    /// Where `id` lives: the tail, or the one segment row holding it that is not deleted. Each
    /// segment's id table answers by binary search, so nothing is held in memory per row.
    pub(crate) fn locate(&self, id: &str) -> Result<Option<Location>> {
        if self.tail.contains(id) {
            return Ok(Some(Location::Tail));
        }
        for (s, segment) in self.segments.iter().enumerate().rev() {
            if let Some(row) = segment.find(id)? {
                if !self.tombstones[s].get(row) {
                    return Ok(Some(Location::Segment(s, row as u32)));
                }
            }
        }
        Ok(None)
    }

    /// Applies one logged operation (during a write or a replay).
    fn apply(&mut self, op: LoggedOp) -> Result<()> {
        let id = match &op {
            LoggedOp::Upsert(record) => record.id.as_str(),
            LoggedOp::Delete(id) => id.as_str(),
        };
        self.remove_live(id)?;
        if let LoggedOp::Upsert(record) = op {
            add_to_sums(&mut self.sums, &record.vectors, 1.0);
            self.tail.upsert(record);
        }
        Ok(())
    }

    /// Reads everything applying `ops` will read (each id's location, and the vectors of the
    /// segment rows it replaces or deletes, whose blocks are then known intact), so that a
    /// batch is refused before it is logged rather than half applied after.
    fn prepare(&self, ops: &[LoggedOp]) -> Result<()> {
        for op in ops {
            let id = match op {
                LoggedOp::Upsert(record) => record.id.as_str(),
                LoggedOp::Delete(id) => id.as_str(),
            };
            if let Some(Location::Segment(s, row)) = self.locate(id)? {
                let segment = &self.segments[s];
                for (field, column) in segment.columns.iter().enumerate() {
                    if segment.has_vector(field, row as usize) {
                        column.check_row(row as usize)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_all(&mut self, ops: impl IntoIterator<Item = LoggedOp>) -> Result<()> {
        ops.into_iter().try_for_each(|op| self.apply(op))
    }

    /// Removes the live version of `id`, wherever it is, from the tail or by tombstone.
    fn remove_live(&mut self, id: &str) -> Result<()> {
        if let Some(old) = self.tail.get(id) {
            add_to_sums(&mut self.sums, &old.vectors.clone(), -1.0);
            self.tail.remove(id);
        } else if let Some(Location::Segment(s, row)) = self.locate(id)? {
            subtract_segment_row(&mut self.sums, &self.segments[s], row as usize)?;
            self.tombstones[s].set(row as usize);
        }
        Ok(())
    }

    pub(crate) fn live_count(&self) -> usize {
        self.live_rows_per_segment().iter().sum::<usize>() + self.tail.len()
    }

    /// Each segment's rows that are not deleted (what merges and compaction size by).
    pub(crate) fn live_rows_per_segment(&self) -> Vec<usize> {
        self.segments
            .iter()
            .zip(&self.tombstones)
            .map(|(s, t)| s.rows - t.count())
            .collect()
    }

    pub(crate) fn get(&self, id: &str) -> Result<Option<LoggedRecord>> {
        Ok(match self.locate(id)? {
            None => None,
            Some(Location::Tail) => self.tail.get(id).cloned(),
            Some(Location::Segment(s, row)) => Some(self.segments[s].record(row as usize)?),
        })
    }
}

/// An open collection. Cheap to share between threads: searches take a read lock, writes a write lock.
///
/// ```
/// use medvec_store::{Store, Schema, VectorField, Record, SearchParams};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::create(dir.path().join("clinic")).unwrap();
/// let schema = Schema { vectors: vec![VectorField::parse("image:2:l2").unwrap()], payload: vec![] };
/// let cases = store.create_collection("cases", schema).unwrap();
/// cases.upsert(&[Record::new("a").with_vector("image", vec![0.0, 1.0])]).unwrap();
/// assert_eq!(cases.stats().unflushed, 1);
/// cases.flush().unwrap(); // the tail becomes an immutable segment
/// let stats = cases.stats();
/// assert_eq!((stats.count, stats.segments, stats.unflushed), (1, 1, 0));
/// assert_eq!(cases.verify().unwrap().wal_batches, 0);
/// let mut exact = SearchParams::top(1);
/// exact.exact = true;
/// assert_eq!(cases.search("image", &[0.0, 4.0], &exact).unwrap()[0].score, 3.0); // l2 distance
/// store.drop_collection("cases").unwrap();
/// assert!(store.list_collections().unwrap().is_empty());
/// ```
pub struct Collection {
    pub(crate) dir: PathBuf,
    pub(crate) state: RwLock<State>,
    wal: Option<Mutex<Wal>>,
    options: CollectionOptions,
    /// Problems recovered from while opening (a cut log tail), for callers to show.
    warnings: Vec<String>,
    /// Rows written by automatic merges since this collection was opened (write amplification).
    merged_rows: AtomicU64,
}

impl Collection {
    /// Creates the collection's files in `dir` (which must not exist) and commits its manifest.
    pub(crate) fn create(dir: &Path, name: &str, schema: Schema) -> Result<()> {
        schema.validate()?;
        let staging = fileio::temp_sibling(dir);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).at(&staging)?;
        }
        fileio::create_private_dir(&staging)?;
        let uid = fileio::new_uid();
        let manifest = Manifest {
            name: name.to_string(),
            uid,
            generation: 1,
            schema,
            next_segment: 1,
            wal: Manifest::wal_name(1),
            segments: Vec::new(),
        };
        Wal::create(&staging.join(&manifest.wal), uid)?;
        manifest.commit(&staging)?;
        // The collection appears all at once: rename the finished directory into place.
        std::fs::rename(&staging, dir).at(dir)?;
        fileio::sync_dir(dir.parent().unwrap_or(Path::new(".")))
    }

    /// Opens for writing (the caller holds the store's write lock): replays the log, cuts a torn
    /// tail, and removes files no manifest references (left by a crash mid-flush).
    pub(crate) fn open_writer(dir: &Path, options: CollectionOptions) -> Result<Collection> {
        let manifest = Manifest::load(dir)?;
        remove_orphans(dir, &manifest)?;
        let mut state = load_state(dir, manifest)?;
        let wal_path = dir.join(&state.manifest.wal);
        let replay = Wal::replay(&wal_path, state.manifest.uid)?
            .fitting(&wal_path, &state.manifest.schema)?;
        let mut warnings = Vec::new();
        if replay.discarded > 0 {
            let warning = format!(
                "{}: cut {} bytes of torn or damaged log tail after {} intact batches (a torn tail holds writes that were never acknowledged)",
                wal_path.display(),
                replay.discarded,
                replay.batches.len()
            );
            // Also printed here so that every command that opens a writer shows it.
            eprintln!("warning: {warning}");
            warnings.push(warning);
        }
        let wal = Wal::open_for_append(&wal_path, &replay)?;
        for batch in replay.batches {
            state.apply_all(batch.ops)?;
        }
        Ok(Collection {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            wal: Some(Mutex::new(wal)),
            options,
            warnings,
            merged_rows: AtomicU64::new(0),
        })
    }

    /// Opens a consistent snapshot for reading, without the write lock. A writer may flush or
    /// compact meanwhile, deleting files this snapshot was about to open: then it starts over.
    pub(crate) fn open_reader(dir: &Path) -> Result<Collection> {
        let mut attempt = 0;
        loop {
            match Self::try_open_reader(dir) {
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempt < 20 =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
                }
                other => return other,
            }
        }
    }

    fn try_open_reader(dir: &Path) -> Result<Collection> {
        let manifest = Manifest::load(dir)?;
        let mut state = load_state(dir, manifest)?;
        let wal_path = dir.join(&state.manifest.wal);
        let replay = Wal::replay(&wal_path, state.manifest.uid)?
            .fitting(&wal_path, &state.manifest.schema)?;
        for batch in replay.batches {
            state.apply_all(batch.ops)?;
        }
        Ok(Collection {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            wal: None,
            options: CollectionOptions::default(),
            warnings: Vec::new(),
            merged_rows: AtomicU64::new(0),
        })
    }

    /// Problems found and recovered from when the collection was opened, such as a damaged log
    /// tail that was cut (each names the file); empty for a clean open.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn name(&self) -> String {
        self.read().manifest.name.clone()
    }

    pub fn schema(&self) -> Schema {
        self.read().manifest.schema.clone()
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wal(&self) -> Result<std::sync::MutexGuard<'_, Wal>> {
        let wal = self.wal.as_ref().ok_or_else(|| StoreError::ReadOnly {
            path: self.dir.clone(),
        })?;
        Ok(wal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Validates, logs (fsynced) and applies a batch of upserts. Either the whole batch is
    /// accepted or, on any invalid record, nothing is written.
    pub fn upsert(&self, records: &[Record]) -> Result<()> {
        let schema = self.schema();
        let logged = validate_batch(&schema, records)?;
        let ops = logged.into_iter().map(LoggedOp::Upsert).collect();
        self.log_and_apply(ops)
    }

    /// Deletes records by id (ids that do not exist are ignored). Returns how many existed.
    pub fn delete(&self, ids: &[String]) -> Result<usize> {
        let mut wal = self.wal()?;
        let mut state = self.write();
        let mut existing = Vec::new();
        for id in ids {
            if state.locate(id)?.is_some() {
                existing.push(id.clone());
            }
        }
        if existing.is_empty() {
            return Ok(0);
        }
        let count = existing.len();
        let ops: Vec<LoggedOp> = existing.into_iter().map(LoggedOp::Delete).collect();
        state.prepare(&ops)?;
        wal.append(ops.clone())?;
        state.apply_all(ops)?;
        drop(state);
        drop(wal);
        Ok(count)
    }

    fn log_and_apply(&self, ops: Vec<LoggedOp>) -> Result<()> {
        let mut wal = self.wal()?;
        // Writers hold the log's lock, so the state cannot change between this and the apply.
        self.read().prepare(&ops)?;
        wal.append(ops.clone())?;
        let mut state = self.write();
        state.apply_all(ops)?;
        let should_flush = state.tail.len() >= self.options.flush_rows
            || state.tail.bytes() >= self.options.flush_bytes;
        drop(state);
        if should_flush {
            let graphs = self.options.flush_graphs();
            self.flush_locked(&mut wal, graphs)?;
            self.merge_as_needed(&mut wal, graphs)?;
        }
        Ok(())
    }

    /// The live record with this id, if any; an error only when a file it is read from is
    /// damaged.
    pub fn get(&self, id: &str) -> Result<Option<Record>> {
        let state = self.read();
        let logged = state.get(id)?;
        Ok(logged.map(|logged| to_record(&state.manifest.schema, logged)))
    }

    /// Whether a live record has this id (reads no vector or payload).
    pub fn contains(&self, id: &str) -> Result<bool> {
        Ok(self.read().locate(id)?.is_some())
    }

    pub fn len(&self) -> usize {
        self.read().live_count()
    }

    /// The running sum of the unit vectors of field `field` over all live records, kept up to
    /// date by every write, so a centroid costs no scan.
    ///
    /// ```
    /// # use medvec_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::create(dir.path().join("s")).unwrap();
    /// # let schema = Schema { vectors: vec![VectorField::parse("image:2:cosine").unwrap()], payload: vec![] };
    /// let cases = store.create_collection("cases", schema).unwrap();
    /// cases.upsert(&[Record::new("a").with_vector("image", vec![3.0, 0.0]),
    ///                Record::new("b").with_vector("image", vec![0.0, 5.0])]).unwrap();
    /// let sum = cases.field_sum("image").unwrap();
    /// assert_eq!(sum.centroid().unwrap(), vec![0.5, 0.5]);
    /// ```
    pub fn field_sum(&self, field: &str) -> Result<FieldSum> {
        let state = self.read();
        let index = state.manifest.schema.vector_index(field)?;
        Ok(state.sums[index].clone())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the tail (and pending deletes) into a new segment and starts a fresh log, builds
    /// the graphs a bulk load deferred, then merges segments if the merge policy asks for it.
    pub fn flush(&self) -> Result<()> {
        let mut wal = self.wal()?;
        // A bulk load's last rows join the run its graphs are built over.
        self.flush_locked(&mut wal, self.options.flush_graphs())?;
        self.merge_as_needed(&mut wal, Graphs::Build(None))
    }

    fn flush_locked(&self, wal: &mut Wal, graphs: Graphs) -> Result<()> {
        let mut state = self.write();
        if wal.is_empty() {
            return Ok(());
        }
        let mut manifest = next_manifest(&state);
        let records = std::mem::take(&mut state.tail.records);
        if !records.is_empty() {
            if let Err(e) = write_segment(&self.dir, &mut manifest, &records, graphs) {
                state.tail.records = records;
                return Err(e);
            }
        }
        let result = self.commit_with_new_wal(&mut manifest, wal, &mut state);
        if result.is_err() {
            state.tail.records = records;
            return result;
        }
        faults::point("flush-after-manifest");
        state.tail.take();
        *state = load_state(&self.dir, manifest)?;
        Ok(())
    }

    /// Creates the next log, commits `manifest` pointing at it, and removes the old log.
    fn commit_with_new_wal(
        &self,
        manifest: &mut Manifest,
        wal: &mut Wal,
        state: &mut State,
    ) -> Result<()> {
        let old_wal = self.dir.join(&state.manifest.wal);
        manifest.wal = Manifest::wal_name(manifest.generation);
        let new_wal = self.dir.join(&manifest.wal);
        // Everything that can fail is done before the commit, so that after an error the
        // in-memory state still matches the manifest on disk and the log it names.
        let opened = Wal::create(&new_wal, manifest.uid)
            .and_then(|()| Wal::replay(&new_wal, manifest.uid))
            .and_then(|replay| Wal::open_for_append(&new_wal, &replay));
        let next = match opened {
            Ok(next) => next,
            Err(e) => {
                let _ = std::fs::remove_file(&new_wal);
                return Err(e);
            }
        };
        if let Err(e) = manifest.commit(&self.dir) {
            // The rename may have happened before the error (a failed directory fsync): then
            // the new manifest is the one on disk and writes must go to its log.
            if !Manifest::load(&self.dir).is_ok_and(|m| m.generation == manifest.generation) {
                let _ = std::fs::remove_file(&new_wal);
                return Err(e);
            }
        }
        *wal = next;
        // The manifest no longer names the old log; a crash before this line leaves an orphan
        // that the next open removes.
        let _ = std::fs::remove_file(&old_wal);
        Ok(())
    }

    /// Rewrites all live rows into fresh segments, dropping deleted rows and reclaiming their
    /// space. Readers holding the old segments keep working on their mappings.
    ///
    /// Each new segment is written like a merge (`merge::write_merged`): rows are read in place
    /// from the mapped segments, so memory holds the graph being built, not the rows (copying
    /// every record first took a peak RSS of 6.3 GiB at 1M × 512-d), and the largest input's
    /// graph is extended when none of its rows was deleted, else rebuilt.
    pub fn compact(&self) -> Result<()> {
        let mut wal = self.wal()?;
        // Compaction rewrites every segment with its graphs, so the tail needs none yet.
        self.flush_locked(&mut wal, self.options.flush_graphs())?;
        let state = self.read();
        let mut manifest = next_manifest(&state);
        manifest.segments.clear();
        let live = state.live_rows_per_segment();
        let max_rows = self.options.rewrite_rows(&state.manifest.schema);
        for group in merge::compaction_groups(&live, max_rows) {
            let graphs = Graphs::Build(None);
            let entry = merge::write_merged(&self.dir, &mut manifest, &state, &group, graphs)?;
            manifest.segments.push(entry);
        }
        let old_dirs: Vec<PathBuf> = state.segments.iter().map(|s| s.dir.clone()).collect();
        drop(state);
        let mut state = self.write();
        self.commit_with_new_wal(&mut manifest, &mut wal, &mut state)?;
        faults::point("compact-after-manifest");
        for dir in old_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        *state = load_state(&self.dir, manifest)?;
        Ok(())
    }

    /// Checks every checksum of every file of the collection and replays the log.
    pub fn verify(&self) -> Result<VerifyReport> {
        let state = self.read();
        let mut files = 1;
        for segment in &state.segments {
            segment.verify()?;
            files += segment.file_paths().len();
        }
        let wal_path = self.dir.join(&state.manifest.wal);
        let replay = Wal::replay(&wal_path, state.manifest.uid)?
            .fitting(&wal_path, &state.manifest.schema)?;
        drop(state);
        Manifest::load(&self.dir)?;
        let artifacts = self.verify_artifacts()?;
        Ok(VerifyReport {
            files_checked: files + 1 + artifacts,
            wal_batches: replay.batches.len(),
            wal_tail_discarded: replay.discarded,
        })
    }

    /// Live records in stored order (segments in order, then the tail), for export.
    pub fn scan(&self, visit: impl FnMut(Record) -> Result<()>) -> Result<()> {
        self.scan_where(None, visit)
    }

    /// Like [`scan`](Self::scan), but only records whose payload matches `filter`.
    ///
    /// ```
    /// # use medvec_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::create(dir.path().join("s")).unwrap();
    /// # let schema = Schema { vectors: vec![VectorField::parse("image:2:cosine").unwrap()], payload: vec![PayloadField::parse("split:string").unwrap()] };
    /// let cases = store.create_collection("cases", schema).unwrap();
    /// cases.upsert(&[Record::new("a").with_value("split", Value::String("train".into())),
    ///                Record::new("b").with_value("split", Value::String("test".into()))]).unwrap();
    /// let mut ids = Vec::new();
    /// cases.scan_where(Some(&Filter::parse("split = \"train\"").unwrap()), |r| { ids.push(r.id); Ok(()) }).unwrap();
    /// assert_eq!(ids, vec!["a"]);
    /// ```
    pub fn scan_where(
        &self,
        filter: Option<&Filter>,
        mut visit: impl FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        let state = self.read();
        let schema = &state.manifest.schema;
        let filter = filter.map(|f| f.compile(schema)).transpose()?;
        for (segment, tombstones) in state.segments.iter().zip(&state.tombstones) {
            if filter.is_some() {
                segment.check_scan()?;
            }
            for row in (0..segment.rows).filter(|&r| !tombstones.get(r)) {
                if filter.as_ref().is_none_or(|f| f.matches(&segment.row(row))) {
                    visit(to_record(schema, segment.record(row)?))?;
                }
            }
        }
        for record in &state.tail.records {
            if filter
                .as_ref()
                .is_none_or(|f| f.matches(&LoggedRow(record)))
            {
                visit(to_record(schema, record.clone()))?;
            }
        }
        Ok(())
    }

    pub fn stats(&self) -> CollectionStats {
        let state = self.read();
        let disk_bytes = dir_size(&self.dir);
        CollectionStats {
            name: state.manifest.name.clone(),
            count: state.live_count(),
            segments: state.segments.len(),
            segments_awaiting_graphs: (state.manifest.segments.iter())
                .filter(|entry| entry.graphs_deferred)
                .count(),
            unflushed: state.tail.len(),
            deleted_rows: state.tombstones.iter().map(BitSet::count).sum(),
            disk_bytes,
            generation: state.manifest.generation,
            schema: state.manifest.schema.clone(),
            merged_rows: self.merged_rows.load(Ordering::Relaxed),
            default_ef: (0..state.manifest.schema.vectors.len())
                .map(|field| state.default_ef(field))
                .collect(),
        }
    }
}

/// Writes `records` as the manifest's next segment and adds its entry (not yet committed).
fn write_segment(
    dir: &Path,
    manifest: &mut Manifest,
    records: &[LoggedRecord],
    graphs: Graphs,
) -> Result<()> {
    let id = manifest.next_segment;
    let path = dir.join(segment::dir_name(id));
    segment::write(&path, manifest.uid, &manifest.schema, records, graphs)?;
    manifest.segments.push(SegmentEntry {
        id,
        rows: records.len(),
        deleted: Vec::new(),
        sums: segment_sums(&manifest.schema, records),
        graphs_deferred: matches!(graphs, Graphs::Defer),
    });
    manifest.next_segment += 1;
    Ok(())
}

/// The manifest to commit next: the current one with tombstones written out and a new generation.
fn next_manifest(state: &State) -> Manifest {
    let mut manifest = state.manifest.clone();
    manifest.generation += 1;
    for (entry, tombstones) in manifest.segments.iter_mut().zip(&state.tombstones) {
        entry.deleted = tombstones.ones().map(|r| r as u32).collect();
    }
    manifest
}

pub(crate) fn to_record(schema: &Schema, logged: LoggedRecord) -> Record {
    let mut record = Record::new(logged.id);
    for (field, vector) in schema.vectors.iter().zip(logged.vectors) {
        if let Some(vector) = vector {
            record.vectors.insert(field.name.clone(), vector);
        }
    }
    for (field, value) in schema.payload.iter().zip(logged.payload) {
        record.payload.insert(field.name.clone(), value);
    }
    record
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What `verify` checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub files_checked: usize,
    pub wal_batches: usize,
    /// Bytes of torn log tail that a writer would cut (not an error: never acknowledged).
    pub wal_tail_discarded: u64,
}

/// Counts and sizes of one collection.
#[derive(Debug, Clone)]
pub struct CollectionStats {
    pub name: String,
    /// Live records.
    pub count: usize,
    pub segments: usize,
    /// Segments a bulk load wrote without graphs (`graphs_deferred`), scanned exactly until a
    /// writer's explicit flush, close or compaction builds them.
    pub segments_awaiting_graphs: usize,
    /// Records in the log, not yet in a segment.
    pub unflushed: usize,
    /// Tombstoned segment rows awaiting compaction.
    pub deleted_rows: usize,
    pub disk_bytes: u64,
    pub generation: u64,
    pub schema: Schema,
    /// Rows written by automatic merges since this process opened the collection: with the
    /// rows flushed, how much the writer rewrote (see `collection/merge.rs`).
    pub merged_rows: u64,
    /// Per vector field, in schema order: the beam of a search that names no `ef`
    /// ([`crate::default_ef`] of the field's `ef_search` and its largest graph).
    pub default_ef: Vec<usize>,
}
