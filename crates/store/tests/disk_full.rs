//! A full disk (ENOSPC) in the middle of a write: the write fails with a clear error naming the
//! file, nothing acknowledged is lost, a failed batch is all there or not at all, and the store
//! works again once space returns. Injected at every write point, and for real on a small tmpfs.

mod common;
mod mounts;

use common::*;
use medvec_store::faults::failure;
use medvec_store::{CollectionOptions, Record, SearchParams, Store};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

/// The injected failure is process-wide: tests that arm it must not overlap, nor overlap a test
/// that writes without it (under `cargo test`, which runs a file's tests as threads of one
/// process, the tmpfs test's writes failed with the other tests' injected ENOSPC in 5 to 8 runs of
/// 10; nextest runs each test in its own process).
static FAULTS: Mutex<()> = Mutex::new(());

const BATCH: usize = 100;

fn options() -> CollectionOptions {
    CollectionOptions {
        flush_rows: 1100,
        ..CollectionOptions::default()
    }
}

/// What the writes so far promise: ids acknowledged, and batches whose write failed.
#[derive(Default)]
struct Ledger {
    acked: BTreeSet<String>,
    failed: Vec<Vec<String>>,
    errors: Vec<String>,
}

impl Ledger {
    fn upsert(&mut self, store: &Store, batch: &[Record]) {
        let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
        match store.collection("cases").and_then(|c| c.upsert(batch)) {
            Ok(()) => self.acked.extend(ids),
            Err(e) => {
                self.errors.push(e.to_string());
                self.failed.push(ids);
            }
        }
    }

    fn record(&mut self, outcome: medvec_store::Result<()>) {
        if let Err(e) = outcome {
            self.errors.push(e.to_string());
        }
    }

    /// Every acknowledged id is present; every failed batch is wholly present or wholly absent.
    fn check(&self, root: &Path, what: &str) {
        let store = Store::open_read_only(root).unwrap();
        store
            .verify()
            .unwrap_or_else(|e| panic!("{what}: verify: {e}"));
        let cases = store.collection("cases").unwrap();
        let mut present = BTreeSet::new();
        cases
            .scan(|r| {
                present.insert(r.id);
                Ok(())
            })
            .unwrap();
        let lost: Vec<_> = self.acked.difference(&present).collect();
        assert!(lost.is_empty(), "{what}: lost acknowledged {lost:?}");
        for batch in &self.failed {
            let visible = batch.iter().filter(|id| present.contains(*id)).count();
            assert!(
                visible == 0 || visible == batch.len(),
                "{what}: {visible} of {} records of a failed batch are visible",
                batch.len()
            );
        }
        let hits = cases
            .search("image", &[0.25; 16], &SearchParams::top(3))
            .unwrap();
        assert_eq!(hits.len(), 3, "{what}");
    }
}

/// Writes batches, flushes, saves a head and compacts with `point` failing from its first hit
/// on; then frees the "disk" and writes again.
fn run_with_full_disk(point: &str) -> (Ledger, usize) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let vectors = clustered(3000, 16, 6, 9);
    let mut ledger = Ledger::default();
    let store = Store::create(&root).unwrap();
    store.create_collection("cases", schema(16)).unwrap();
    drop(store);
    let store = Store::open_with(&root, options()).unwrap();
    for first in (0..300).step_by(BATCH) {
        ledger.upsert(&store, &records(&vectors[first..first + BATCH], first));
    }
    assert!(ledger.errors.is_empty());
    failure::fail_at(point, 1);
    for first in (300..1500).step_by(BATCH) {
        ledger.upsert(&store, &records(&vectors[first..first + BATCH], first));
    }
    let cases = store.collection("cases").unwrap();
    ledger.record(cases.flush());
    ledger.record(cases.save_head("early", b"weights"));
    ledger.record(cases.save_model_record("image", b"model"));
    ledger.record(cases.compact());
    // Still readable while the disk is full.
    assert!(cases.get("case-000000").unwrap().is_some(), "{point}");
    let failures = ledger.errors.len();
    for e in &ledger.errors {
        assert!(e.contains("No space left on device"), "{point}: {e}");
        assert!(
            e.contains(root.to_str().unwrap()),
            "{point}: names no file: {e}"
        );
    }
    ledger.check(&root, &format!("{point}, disk full"));
    failure::clear_failures();
    for first in (1500..2600).step_by(BATCH) {
        ledger.upsert(&store, &records(&vectors[first..first + BATCH], first));
    }
    ledger.record(cases.flush());
    ledger.record(cases.save_head("early", b"weights"));
    ledger.record(cases.save_model_record("image", b"model"));
    assert_eq!(
        ledger.errors.len(),
        failures,
        "{point}: {:?}",
        ledger.errors
    );
    assert_eq!(cases.load_head("early").unwrap(), b"weights");
    assert_eq!(cases.load_model_record("image").unwrap().unwrap(), b"model");
    drop((cases, store));
    ledger.check(&root, &format!("{point}, after space returned"));
    // A writer open cleans up the failed attempts' leftovers and finds nothing to cut.
    let store = Store::open(&root).unwrap();
    assert!(store.collection("cases").unwrap().warnings().is_empty());
    drop(store);
    let leftovers: Vec<_> = files_under(&root)
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
    (ledger, failures)
}

#[test]
fn enospc_at_every_write_point_fails_cleanly_and_loses_nothing() {
    let _serial = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
    for &point in failure::POINTS.iter().filter(|&&p| p != "wal-truncate") {
        let (ledger, failures) = run_with_full_disk(point);
        assert!(failures > 0, "{point} was never hit");
        eprintln!(
            "{point}: {failures} writes failed, {} ids acknowledged, 0 lost",
            ledger.acked.len()
        );
    }
    failure::clear_failures();
}

/// A failed append whose partial frame cannot be cut either (the truncate fails too): the
/// next append cuts it first, and if the process dies instead the next open cuts it.
#[test]
fn a_half_written_frame_never_breaks_later_appends() {
    let _serial = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
    let vectors = clustered(400, 16, 4, 3);
    for die_before_retry in [false, true] {
        let (_dir, store) = new_store();
        let root = store.path().to_path_buf();
        let cases = store.create_collection("cases", schema(16)).unwrap();
        cases.upsert(&records(&vectors[..100], 0)).unwrap();
        failure::fail_at("wal-append", 1);
        failure::fail_at("wal-truncate", 1);
        assert!(cases.upsert(&records(&vectors[100..200], 100)).is_err());
        failure::clear_failures();
        failure::fail_at("wal-truncate", 1);
        // The partial frame is still there and cannot be cut: refuse rather than append after it.
        let err = cases.upsert(&records(&vectors[200..300], 200)).unwrap_err();
        assert!(err.to_string().contains("wal-"), "{err}");
        failure::clear_failures();
        if die_before_retry {
            drop((cases, store));
            let store = Store::open(&root).unwrap();
            let cases = store.collection("cases").unwrap();
            assert_eq!(cases.warnings().len(), 1, "the open cuts the partial frame");
            cases.upsert(&records(&vectors[300..400], 300)).unwrap();
        } else {
            cases.upsert(&records(&vectors[300..400], 300)).unwrap();
            drop((cases, store));
        }
        let store = Store::open(&root).unwrap();
        let cases = store.collection("cases").unwrap();
        assert!(cases.warnings().is_empty(), "{:?}", cases.warnings());
        assert_eq!(
            cases.len(),
            200,
            "batches 0 and 3 acknowledged, 1 and 2 failed"
        );
        assert!(
            cases.get("case-000350").unwrap().is_some()
                && cases.get("case-000150").unwrap().is_none()
        );
    }
}

/// A real full filesystem: a 2 MiB tmpfs, filled until a write fails, then grown.
#[test]
fn a_full_tmpfs_fails_cleanly_and_recovers_when_grown() {
    let _serial = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mount = match mounts::tmpfs(&dir.path().join("small"), "2m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: cannot mount a small tmpfs ({why})");
            return;
        }
    };
    let root = mount.path.join("store");
    let vectors = clustered(6000, 16, 6, 13);
    let mut ledger = Ledger::default();
    {
        let store = Store::create(&root).unwrap();
        store.create_collection("cases", schema(16)).unwrap();
    }
    let store = Store::open_with(&root, options()).unwrap();
    let mut next = 0;
    while ledger.errors.is_empty() && next + BATCH <= 5000 {
        ledger.upsert(&store, &records(&vectors[next..next + BATCH], next));
        next += BATCH;
    }
    assert!(!ledger.errors.is_empty(), "2 MiB never filled up");
    let error = ledger.errors[0].clone();
    assert!(error.contains("No space left on device"), "{error}");
    assert!(error.contains(root.to_str().unwrap()), "{error}");
    // More writes while full fail the same way, and reads keep working.
    ledger.upsert(&store, &records(&vectors[next..next + BATCH], next));
    next += BATCH;
    drop(store);
    ledger.check(&root, "tmpfs full");
    mounts::resize(&mount, "64m").unwrap();
    let failures = ledger.errors.len();
    let store = Store::open_with(&root, options()).unwrap();
    for first in (next..next + 1200).step_by(BATCH) {
        ledger.upsert(&store, &records(&vectors[first..first + BATCH], first));
    }
    ledger.record(store.collection("cases").unwrap().flush());
    assert_eq!(ledger.errors.len(), failures, "{:?}", ledger.errors);
    drop(store);
    ledger.check(&root, "tmpfs grown");
    eprintln!(
        "tmpfs: filled after {} acknowledged records ({error}); 0 lost",
        ledger.acked.len()
    );
}
