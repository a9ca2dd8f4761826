//! Entry points for the fuzz targets in `tests/fuzz` and for their replay on the stable toolchain
//! (`tests/fuzz_corpus.rs`). Not part of the API: each function feeds arbitrary bytes to a real
//! reader and panics only when an invariant breaks, so a panic here is a bug in the reader.
//!
//! The file readers need files, so the store targets copy a small template store (built once
//! per process, with fixed uids so that seed files stay valid across runs) into a scratch
//! directory, put the fuzzed bytes into one of its files and open, search and verify it.

use crate::fileio::{FileKind, Header, HEADER_LEN};
use crate::filter::{Filter, PayloadRow, ValueRef};
use crate::manifest::Manifest;
use crate::schema::{HnswParams, PayloadField, Schema, VectorField};
use crate::search::SearchParams;
use crate::value::Value;
use crate::wal::Wal;
use crate::{Record, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The owner uid every template file carries; seed manifests name it.
pub const TEMPLATE_UID: u64 = 0x5EED;
/// The template collection's name.
pub const COLLECTION: &str = "c";
/// The two template stores. `Large` has a segment above `search::EXACT_ROWS` rows, so searches
/// walk its graph; `Small` has a segment without a graph, and is quick to copy, open, flush
/// and compact, for the targets that fuzz the log and the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Small,
    Large,
}

impl Template {
    fn segment_rows(self) -> usize {
        match self {
            Template::Small => 40,
            Template::Large => 4100,
        }
    }
}

/// A directory removed when dropped. Under `/dev/shm` when there is one, since the store fsyncs.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "medvec-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = scratch_root().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("cannot create a scratch directory");
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && tempfile_writable(shm) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn tempfile_writable(dir: &Path) -> bool {
    let probe = dir.join(format!("medvec-fuzz-probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// The schema of the template collection (and the one the filter target compiles against).
pub fn schema() -> Schema {
    // Quantised, so that the large template's segment has SQ8 codes for the segment target.
    let mut vector = VectorField::parse("v:2:l2:sq8").expect("valid field");
    // Small M and beam keep the template's graph (and so the segment seeds) small and quick to build.
    vector.hnsw = HnswParams {
        m: 2,
        ef_construction: 16,
        ef_search: 16,
        ..HnswParams::default()
    };
    Schema {
        vectors: vec![vector],
        payload: ["n:int", "s:string", "f:float", "b:bool"]
            .iter()
            .map(|spec| PayloadField::parse(spec).expect("valid field"))
            .collect(),
    }
}

fn template_record(i: usize) -> Record {
    let x = (i % 64) as f32;
    let y = (i / 64) as f32;
    let mut record = Record::new(format!("r{i}"))
        .with_vector("v", vec![x, y])
        .with_value("n", Value::Int(i as i64))
        .with_value("s", Value::String(format!("s{}", i % 7)));
    if !i.is_multiple_of(3) {
        record = record.with_value("f", Value::Float(i as f64 / 8.0));
    }
    if !i.is_multiple_of(5) {
        record = record.with_value("b", Value::Bool(i.is_multiple_of(2)));
    }
    record
}

/// A template store: one segment, a few tombstones, and a log with unflushed upserts and
/// deletes. Built once per process and never changed.
fn template(kind: Template) -> &'static Path {
    static SMALL: OnceLock<PathBuf> = OnceLock::new();
    static LARGE: OnceLock<PathBuf> = OnceLock::new();
    let cell = if kind == Template::Small {
        &SMALL
    } else {
        &LARGE
    };
    cell.get_or_init(|| {
        remove_stale_scratch();
        let name = format!("medvec-fuzz-template-{}-{kind:?}", std::process::id());
        let root = scratch_root().join(name);
        let _ = std::fs::remove_dir_all(&root);
        build_template(&root, kind.segment_rows()).expect("cannot build the fuzz template store");
        root
    })
}

/// The template lives as long as the process and a fuzzer never returns to drop it, so each
/// process removes what processes that have exited left behind.
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(scratch_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("medvec-fuzz-") else {
            continue;
        };
        let pid = rest.trim_start_matches("template-").split('-').next();
        let alive = pid.is_some_and(|p| Path::new("/proc").join(p).exists());
        if pid.is_some_and(|p| p.parse::<u32>().is_ok()) && !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn build_template(root: &Path, rows: usize) -> crate::Result<()> {
    let store = Store::create(root)?;
    let collection = store.create_collection(COLLECTION, schema())?;
    let records: Vec<Record> = (0..rows).map(template_record).collect();
    collection.upsert(&records)?;
    collection.flush()?;
    collection.delete(&["r1".to_string(), "r2".to_string()])?;
    collection.upsert(&[template_record(1), template_record(rows)])?;
    collection.delete(&["r3".to_string()])?;
    // Dropped, not closed: closing would flush the log, and the template keeps a live log.
    drop(collection);
    drop(store);
    set_uids(&root.join("collections").join(COLLECTION))
}

/// Rewrites the owner uid of every file of a collection (and the manifest's body) to
/// [`TEMPLATE_UID`], so that seed files made in one run fit the template of the next.
fn set_uids(dir: &Path) -> crate::Result<()> {
    let mut manifest = Manifest::load(dir)?;
    for entry in walk(dir) {
        let mut bytes = std::fs::read(&entry).expect("template file is readable");
        if bytes.len() < HEADER_LEN || &bytes[0..6] != b"MEDVEC" {
            continue;
        }
        bytes[16..24].copy_from_slice(&TEMPLATE_UID.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&entry, &bytes).expect("template file is writable");
    }
    manifest.uid = TEMPLATE_UID;
    manifest.commit(dir)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("scratch copy");
    for entry in std::fs::read_dir(from).expect("template dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("scratch copy");
        }
    }
}

/// A fresh copy of the template store; returns it and the collection's directory.
fn fresh_store(kind: Template) -> (Scratch, PathBuf) {
    let scratch = Scratch::new();
    let root = scratch.path().join("store");
    copy_tree(template(kind), &root);
    let dir = root.join("collections").join(COLLECTION);
    (scratch, dir)
}

/// The bytes of one template file, e.g. `MANIFEST` or `seg-00000001/ids.idx`, relative to the
/// collection's directory (for writing seed files).
pub fn template_file(relative: &str) -> Vec<u8> {
    std::fs::read(
        template(Template::Small)
            .join("collections")
            .join(COLLECTION)
            .join(relative),
    )
    .expect("template file")
}

/// File names of the template collection, relative to its directory.
pub fn template_files() -> Vec<String> {
    let dir = template(Template::Small)
        .join("collections")
        .join(COLLECTION);
    walk(&dir)
        .iter()
        .map(|p| p.strip_prefix(&dir).expect("inside").display().to_string())
        .collect()
}

/// Writes `body` behind a freshly sealed header of `kind` (right length and CRCs, `extra` kept
/// from the file it replaces), so that fuzzed bytes get past the checksums to the decoders.
fn seal(path: &Path, kind: FileKind, owner_uid: u64, extra: [u64; 3], body: &[u8]) {
    let header = Header::new(kind, owner_uid, body, extra);
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(body);
    std::fs::write(path, bytes).expect("scratch write");
}

/// Like [`seal`], for a file with a blocked body: `data` gets a fresh block table.
fn seal_blocked(path: &Path, (kind, extra): (FileKind, [u64; 3]), shift: u32, data: &[u8]) {
    let (header, body) = Header::blocked(kind, TEMPLATE_UID, data, extra, shift);
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(&body);
    std::fs::write(path, bytes).expect("scratch write");
}

/// The template file's data (without its block table) and its block size, if blocked.
fn template_data(path: &Path, kind: FileKind) -> (Vec<u8>, Option<u32>) {
    let bytes = std::fs::read(path).expect("template file");
    let header = Header::decode(path, &bytes, kind, None).expect("template header");
    let data = header
        .check_body(path, &bytes)
        .expect("template body")
        .to_vec();
    let shift = crate::blocks::shift_of(path, header.flags).expect("template flags");
    (data, shift)
}

fn extra_of(path: &Path, kind: FileKind) -> [u64; 3] {
    let bytes = std::fs::read(path).expect("template file");
    Header::decode(path, &bytes, kind, None)
        .map(|h| h.extra)
        .unwrap_or([0; 3])
}

/// Opens the collection (as a writer when `write`), then searches, reads, verifies and, for a
/// writer, flushes and (for a small store) compacts it. Errors are fine; panics and hangs are not.
fn exercise(root: &Path, write: bool, kind: Template) {
    let store = if write {
        Store::open(root)
    } else {
        Store::open_read_only(root)
    };
    let Ok(store) = store else { return };
    let Ok(collection) = store.collection(COLLECTION) else {
        return;
    };
    let mut graph = SearchParams::top(5);
    graph.filter = Filter::parse("n >= 0 or s = \"s1\" or f > 1.5 or b").ok();
    let mut exact = SearchParams::top(5);
    exact.exact = true;
    for query in [[0.0, 0.0], [31.5, 40.25], [1e30, -1e30]] {
        let _ = collection.search("v", &query, &SearchParams::top(5));
        let _ = collection.search("v", &query, &graph);
        let _ = collection.search("v", &query, &exact);
    }
    for id in ["r0", "r1", "r3", "r39", "r40", "r4099", "r4100", "missing"] {
        let _ = collection.get(id);
    }
    let mut rows = 0usize;
    let _ = collection.scan(|_| {
        rows += 1;
        Ok(())
    });
    let _ = collection.verify();
    let _ = collection.field_sum("v");
    let _ = collection.stats();
    // Compacting the large store rebuilds its graph, which would cost the fuzzer most of its time.
    if write && collection.flush().is_ok() && kind == Template::Small {
        let _ = collection.compact();
        let _ = collection.verify();
    }
}

/// WAL target. The first byte picks the mode: even, the rest is the log's body (frames as they
/// would be on disk); odd, the rest is one frame body, framed with the right length and CRC so
/// that it reaches the rkyv decoder. Replays, then opens the collection as a writer and uses it.
pub fn wal_frames(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (scratch, dir) = fresh_store(Template::Small);
    let wal_name = Manifest::load(&dir).expect("template manifest").wal;
    let path = dir.join(wal_name);
    let body = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut frame = (rest.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32fast::hash(rest).to_le_bytes());
        frame.extend_from_slice(rest);
        frame
    };
    let mut bytes = Header::new(FileKind::Wal, TEMPLATE_UID, &[], [0; 3])
        .encode()
        .to_vec();
    bytes.extend_from_slice(&body);
    std::fs::write(&path, &bytes).expect("scratch write");
    if let Ok(replay) = Wal::replay(&path, TEMPLATE_UID) {
        assert_eq!(replay.valid_len + replay.discarded, bytes.len() as u64);
        for (i, batch) in replay.batches.iter().enumerate() {
            assert_eq!(batch.seq, i as u64, "replay kept a batch out of sequence");
        }
    }
    exercise(&scratch.path().join("store"), true, Template::Small);
}

/// Segment target. The first byte picks the file (ids, payload, column, graph; SQ8 codes when
/// bit 4 is set), whether the store is then used as a writer (bit 3) and the mode (bit 2):
/// replace its body with the rest, or apply the rest as `[offset u32 LE][byte]` XOR patches to
/// the template body. The header is resealed either way, then the store is opened and used.
pub fn segment_files(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (name, kind) = match selector & 16 {
        0 => [
            ("ids.idx", FileKind::IdIndex),
            ("payload.cols", FileKind::PayloadColumns),
            ("v.f32", FileKind::VectorColumn),
            ("v.hnsw", FileKind::Graph),
        ][usize::from(selector % 4)],
        _ => ("v.sq8", FileKind::Sq8Codes),
    };
    let (scratch, dir) = fresh_store(Template::Large);
    let path = dir.join(crate::segment::dir_name(1)).join(name);
    let extra = extra_of(&path, kind);
    let (mut data, shift) = template_data(&path, kind);
    if selector & 4 == 0 {
        data = rest.to_vec();
    } else {
        for patch in rest.chunks_exact(5) {
            let offset = u32::from_le_bytes([patch[0], patch[1], patch[2], patch[3]]) as usize;
            if !data.is_empty() {
                let at = offset % data.len();
                data[at] ^= patch[4];
            }
        }
    }
    match shift {
        Some(shift) => seal_blocked(&path, (kind, extra), shift, &data),
        None => seal(&path, kind, TEMPLATE_UID, extra, &data),
    }
    exercise(
        &scratch.path().join("store"),
        selector & 8 != 0,
        Template::Large,
    );
}

/// Manifest target: the bytes are the manifest's JSON body, sealed with the template's uid (a
/// manifest whose body names another uid is rejected before anything else is read).
pub fn manifest(data: &[u8]) {
    let (scratch, dir) = fresh_store(Template::Small);
    let path = dir.join(crate::manifest::FILE_NAME);
    let extra = extra_of(&path, FileKind::Manifest);
    seal(&path, FileKind::Manifest, TEMPLATE_UID, extra, data);
    let root = scratch.path().join("store");
    if let Ok(manifest) = Manifest::load(&dir) {
        assert_eq!(manifest.uid, TEMPLATE_UID);
        // A reader retries missing files for about a second (a writer may be mid-compaction),
        // which would stall the fuzzer; the writer below reports them at once.
        let wal_exists = dir.join(&manifest.wal).is_file();
        let segments_exist = manifest
            .segments
            .iter()
            .all(|s| dir.join(crate::segment::dir_name(s.id)).is_dir());
        if wal_exists && segments_exist {
            exercise(&root, false, Template::Small);
        }
    }
    exercise(&root, true, Template::Small);
    // Whatever the manifest said, nothing may be created or deleted outside the store.
    let outside: Vec<PathBuf> = walk(scratch.path())
        .into_iter()
        .filter(|p| !p.starts_with(&root))
        .collect();
    assert!(
        outside.is_empty(),
        "files appeared outside the store: {outside:?}"
    );
}

/// One in-memory row for the filter target.
struct Row {
    id: &'static str,
    values: [Value; 4],
}

impl PayloadRow for Row {
    fn id(&self) -> &str {
        self.id
    }

    fn value(&self, index: usize) -> ValueRef<'_> {
        self.values
            .get(index)
            .map_or(ValueRef::Null, ValueRef::from)
    }
}

/// Filter target: parse, compile against the template schema and evaluate on a few rows,
/// including a reparse of the kept source, which must give the same verdicts.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(text) else {
        return;
    };
    assert_eq!(filter.source(), text);
    let Ok(compiled) = filter.compile(&schema()) else {
        return;
    };
    let again = Filter::parse(filter.source())
        .and_then(|f| f.compile(&schema()))
        .expect("a filter's own source parses and compiles again");
    let rows = [
        Row {
            id: "a",
            values: [
                Value::Int(i64::MIN),
                Value::String("mel".into()),
                Value::Float(f64::NAN),
                Value::Bool(true),
            ],
        },
        Row {
            id: "",
            values: [Value::Null, Value::Null, Value::Null, Value::Null],
        },
        Row {
            id: "r1",
            values: [
                Value::Int(50),
                Value::String(String::new()),
                Value::Float(-0.0),
                Value::Bool(false),
            ],
        },
    ];
    for row in &rows {
        assert_eq!(compiled.matches(row), again.matches(row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{LoggedBatch, LoggedOp, LoggedRecord};

    /// One frame body (mode byte 1) holding `ops` as the log's first batch.
    fn frame_input(ops: Vec<LoggedOp>) -> Vec<u8> {
        let batch = LoggedBatch { seq: 0, ops };
        let body = rkyv::to_bytes::<rkyv::rancor::Error>(&batch).unwrap();
        [[1u8].as_slice(), &body].concat()
    }

    fn upsert(vectors: Vec<Option<Vec<f32>>>, payload: Vec<Value>) -> LoggedOp {
        LoggedOp::Upsert(LoggedRecord {
            id: "x".into(),
            vectors,
            payload,
        })
    }

    #[test]
    fn logged_records_that_do_not_fit_the_schema_are_errors_not_panics() {
        let full = || vec![Value::Int(1), Value::Null, Value::Null, Value::Null];
        for op in [
            upsert(vec![Some(vec![1.0, 2.0, 3.0])], full()),
            upsert(vec![Some(vec![1.0])], full()),
            upsert(vec![], full()),
            upsert(vec![Some(vec![1.0, 2.0]), Some(vec![1.0])], full()),
            upsert(vec![Some(vec![1.0, 2.0])], vec![]),
            upsert(
                vec![Some(vec![1.0, 2.0])],
                vec![Value::String("n".into()); 4],
            ),
            upsert(vec![Some(vec![f32::NAN, 2.0])], full()),
        ] {
            let input = frame_input(vec![op]);
            wal_frames(&input);
            let (scratch, dir) = fresh_store(Template::Small);
            let wal = dir.join(Manifest::load(&dir).unwrap().wal);
            let mut bytes = std::fs::read(&wal).unwrap()[..HEADER_LEN].to_vec();
            bytes.extend_from_slice(&input[1..]);
            let framed = [
                (input.len() as u32 - 1).to_le_bytes(),
                crc32fast::hash(&input[1..]).to_le_bytes(),
            ]
            .concat();
            bytes.splice(HEADER_LEN..HEADER_LEN, framed);
            std::fs::write(&wal, &bytes).unwrap();
            let root = scratch.path().join("store");
            for store in [Store::open_read_only(&root), Store::open(&root)] {
                let error = store
                    .unwrap()
                    .collection(COLLECTION)
                    .err()
                    .unwrap()
                    .to_string();
                assert!(
                    error.contains("wal-") && error.contains("batch 0: record \"x\""),
                    "{error}"
                );
            }
            let kept = std::fs::read(&wal).unwrap();
            assert_eq!(kept, bytes, "a log that does not fit is reported, not cut");
            write_regression("wal_frames", &input);
        }
    }

    #[test]
    fn manifests_naming_paths_outside_or_colliding_segments_are_refused() {
        let text = String::from_utf8(template_file("MANIFEST")[HEADER_LEN..].to_vec()).unwrap();
        let wal = Manifest::load(
            &template(Template::Small)
                .join("collections")
                .join(COLLECTION),
        )
        .unwrap()
        .wal;
        let edits = [
            (
                format!("\"wal\": \"{wal}\""),
                "\"wal\": \"../../wal-1.log\"".to_string(),
                "not a wal-* file name",
            ),
            (
                format!("\"wal\": \"{wal}\""),
                "\"wal\": \"/tmp/wal-1.log\"".to_string(),
                "not a wal-* file name",
            ),
            (
                format!("\"wal\": \"{wal}\""),
                "\"wal\": \"MANIFEST\"".to_string(),
                "not a wal-* file name",
            ),
            (
                "\"next_segment\": 2".to_string(),
                "\"next_segment\": 1".to_string(),
                "not below next_segment",
            ),
            (
                "\"next_segment\": 2".to_string(),
                "\"next_segment\": 18446744073709551615".to_string(),
                "out of range",
            ),
        ];
        for (from, to, why) in edits {
            assert!(text.contains(&from), "{from}");
            let (scratch, dir) = fresh_store(Template::Small);
            let path = dir.join(crate::manifest::FILE_NAME);
            let body = text.replacen(&from, &to, 1);
            seal(
                &path,
                FileKind::Manifest,
                TEMPLATE_UID,
                [0; 3],
                body.as_bytes(),
            );
            let error = Manifest::load(&dir).unwrap_err().to_string();
            assert!(error.contains("MANIFEST") && error.contains(why), "{error}");
            let store = Store::open(scratch.path().join("store")).unwrap();
            assert!(store.collection(COLLECTION).is_err());
            assert!(
                dir.join(&wal).is_file(),
                "the real log is not deleted as an orphan"
            );
            manifest(body.as_bytes());
            write_regression("manifest", body.as_bytes());
        }
    }

    /// With MEDVEC_WRITE_SEEDS set, records `input` in `tests/fuzz/regressions/<target>/`.
    fn write_regression(target: &str, input: &[u8]) {
        if std::env::var_os("MEDVEC_WRITE_SEEDS").is_none() {
            return;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fuzz/regressions")
            .join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!("{:08x}", crc32fast::hash(input));
        std::fs::write(dir.join(name), input).unwrap();
    }
}
