//! Damaged files are reported by name, never a panic or a silently wrong answer.

mod common;

use common::*;
use medvec_store::{Quantization, SearchParams, Store};
use std::path::{Path, PathBuf};

/// A store with one segment (with graphs), a tail in the log, and a manifest.
fn build_store() -> (tempfile::TempDir, PathBuf, Vec<Vec<f32>>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create(&root).unwrap();
    // `text` is quantised, so the segment holds every file kind, SQ8 codes included.
    let mut schema = schema(16);
    schema.vectors[1].quantization = Quantization::Sq8;
    let cases = store.create_collection("cases", schema).unwrap();
    let vectors = clustered(1500, 16, 6, 21);
    cases.upsert(&records(&vectors[..1400], 0)).unwrap();
    cases.flush().unwrap();
    // The tail in ten logged batches, so that damage inside the log cuts some of them.
    for first in (1400..1500).step_by(10) {
        let batch = records(&vectors[first..first + 10], first);
        cases.upsert(&batch).unwrap();
    }
    cases.save_head("early", &[7u8; 5000]).unwrap();
    cases.save_model_record("image", &[9u8; 3000]).unwrap();
    (dir, root, vectors)
}

/// Opens, verifies and searches; returns the first error, or None if everything worked.
fn exercise(root: &Path, query: &[f32]) -> Option<String> {
    let store = match Store::open_read_only(root) {
        Ok(s) => s,
        Err(e) => return Some(e.to_string()),
    };
    if let Err(e) = store.verify() {
        return Some(e.to_string());
    }
    let cases = match store.collection("cases") {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    match cases.search("image", query, &SearchParams::top(5)) {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().to_string()
}

#[test]
fn a_flipped_byte_in_any_file_is_reported_by_name() {
    let (_dir, root, vectors) = build_store();
    let files = files_under(&root);
    let kinds = [
        "medvec.store",
        "MANIFEST",
        "ids.idx",
        "payload.cols",
        "image.f32",
        "text.f32",
        "image.hnsw",
        "text.sq8",
        ".log",
        "early.head",
        "image.model",
    ];
    for kind in kinds {
        assert!(
            files.iter().any(|f| file_name(f).ends_with(kind)),
            "no {kind} file in {files:?}"
        );
    }
    for file in files.iter().filter(|f| file_name(f) != "LOCK") {
        let original = std::fs::read(file).unwrap();
        let positions = [
            3usize,
            20,
            40,
            61,
            64,
            original.len() / 2,
            original.len() - 1,
        ];
        for &at in positions.iter().filter(|&&at| at < original.len()) {
            let mut damaged = original.clone();
            damaged[at] ^= 0x5A;
            std::fs::write(file, &damaged).unwrap();
            let outcome = exercise(&root, &vectors[0]);
            let is_wal_body = file_name(file).ends_with(".log") && at >= 64;
            if is_wal_body {
                // Log damage past the header is a torn tail: cut, not an error (never acknowledged
                // writes are lost; verify reports how much).
                assert!(
                    outcome.is_none(),
                    "{}: byte {at}: {outcome:?}",
                    file.display()
                );
            } else {
                let message = outcome.unwrap_or_else(|| {
                    panic!("{}: flipped byte {at} went unnoticed", file.display())
                });
                assert!(
                    message.contains(&file_name(file)),
                    "error `{message}` does not name {}",
                    file.display()
                );
            }
        }
        std::fs::write(file, &original).unwrap();
        assert_eq!(
            exercise(&root, &vectors[0]),
            None,
            "store is healthy again after restoring {}",
            file.display()
        );
    }
}

#[test]
fn truncated_and_swapped_files_are_reported() {
    let (_dir, root, vectors) = build_store();
    let (_other_dir, other_root, _) = build_store();
    for file in files_under(&root)
        .iter()
        .filter(|f| !file_name(f).ends_with(".log") && file_name(f) != "LOCK")
    {
        let original = std::fs::read(file).unwrap();
        for cut in [0, 10, 63, 64, original.len() / 2, original.len() - 1] {
            std::fs::write(file, &original[..cut.min(original.len())]).unwrap();
            let message = exercise(&root, &vectors[0])
                .unwrap_or_else(|| panic!("{} cut at {cut} went unnoticed", file.display()));
            assert!(message.contains(&file_name(file)), "`{message}`");
        }
        // The same file from another store: valid on its own, wrong here.
        let twin = other_root.join(file.strip_prefix(&root).unwrap());
        if file_name(file) != "medvec.store" {
            std::fs::copy(&twin, file).unwrap();
            let message = exercise(&root, &vectors[0])
                .unwrap_or_else(|| panic!("{} swapped went unnoticed", file.display()));
            assert!(message.contains(&file_name(file)), "`{message}`");
        }
        std::fs::write(file, &original).unwrap();
    }
    assert_eq!(exercise(&root, &vectors[0]), None);
}

#[test]
fn saved_heads_are_checksummed_and_owned() {
    let (_dir, root, _) = build_store();
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    cases.save_head("early", b"weights").unwrap();
    assert_eq!(cases.load_head("early").unwrap(), b"weights");
    assert_eq!(cases.list_heads().unwrap(), vec!["early"]);
    let path = root.join("collections/cases/heads/early.head");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = cases.load_head("early").unwrap_err().to_string();
    assert!(err.contains("early.head"), "{err}");
    assert!(store
        .verify()
        .unwrap_err()
        .to_string()
        .contains("early.head"));
    assert!(cases.load_head("../x").is_err());
}

/// The 4 KiB pages to zero in a file of `len` bytes: the first, a middle and the last.
fn pages(len: usize) -> Vec<std::ops::Range<usize>> {
    const PAGE: usize = 4096;
    let count = len.div_ceil(PAGE);
    let mut starts = vec![0, count / 2 * PAGE, (count - 1) * PAGE];
    starts.dedup();
    starts
        .into_iter()
        .map(|start| start..(start + PAGE).min(len))
        .collect()
}

fn checked_where_used(file: &Path) -> bool {
    let name = file_name(file);
    name == "ids.idx" || name == "payload.cols" || name.ends_with(".hnsw") || name.ends_with(".sq8")
}

/// Opens the store as the writer, searches both fields and loads the head (files that are
/// checked lazily, on first use); the first error, or the collection's warnings.
fn open_writer(root: &Path) -> Result<Vec<String>, String> {
    let text = |e: medvec_store::StoreError| e.to_string();
    let store = Store::open(root).map_err(text)?;
    let cases = store.collection("cases").map_err(text)?;
    let query = vec![0.25f32; 16];
    for field in ["image", "text"] {
        cases
            .search(field, &query, &SearchParams::top(5))
            .map_err(text)?;
    }
    cases.load_head("early").map_err(text)?;
    cases.load_model_record("image").map_err(text)?;
    Ok(cases.warnings().to_vec())
}

#[test]
fn zeroed_pages_in_any_file_are_reported_by_name() {
    let (_dir, root, vectors) = build_store();
    let mut trials = 0;
    for file in files_under(&root).iter().filter(|f| file_name(f) != "LOCK") {
        let original = std::fs::read(file).unwrap();
        for page in pages(original.len()) {
            let mut damaged = original.clone();
            damaged[page.clone()].fill(0);
            if damaged == original {
                continue; // an all-zero page: nothing to damage
            }
            trials += 1;
            std::fs::write(file, &damaged).unwrap();
            let what = format!("{} zeroed at {page:?}", file.display());
            if file_name(file).ends_with(".log") && page.start > 0 {
                check_cut_log(&root, file, &vectors[0], &what);
            } else {
                let message =
                    exercise(&root, &vectors[0]).unwrap_or_else(|| panic!("{what} went unnoticed"));
                assert!(message.contains(&file_name(file)), "{what}: `{message}`");
                // The id index, graphs and codes are checked where a lookup or a graph walk first uses
                // them (these small segments are scanned exactly, never walked), so a writer may
                // open and search without touching the damaged page; `exercise` ran verify.
                if !checked_where_used(file) {
                    let message = open_writer(&root).expect_err(&what);
                    assert!(message.contains(&file_name(file)), "{what}: `{message}`");
                }
            }
            std::fs::write(file, &original).unwrap();
        }
    }
    eprintln!("{trials} pages zeroed");
    assert!(trials >= 20, "only {trials} pages zeroed");
    assert_eq!(exercise(&root, &vectors[0]), None);
    assert_eq!(open_writer(&root), Ok(Vec::new()));
}

/// Log damage past the header is a torn tail: readers and verify report how much they skip,
/// the writer cuts it with a warning naming the log, and everything before it is still there.
fn check_cut_log(root: &Path, log: &Path, query: &[f32], what: &str) {
    assert_eq!(exercise(root, query), None, "{what}");
    let store = Store::open_read_only(root).unwrap();
    let report = store.verify().unwrap();
    assert!(report[0].1.wal_tail_discarded > 0, "{what}: {report:?}");
    let segment_rows = 1400;
    let intact = store.collection("cases").unwrap().len();
    assert!((segment_rows..1500).contains(&intact), "{what}: {intact}");
    drop(store);
    let warnings = open_writer(root).unwrap();
    assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
    assert!(warnings[0].contains(&file_name(log)), "{}", warnings[0]);
    assert!(warnings[0].contains("cut"), "{}", warnings[0]);
    // The writer cut the tail: the log is clean now and holds the same intact batches.
    let store = Store::open_read_only(root).unwrap();
    assert_eq!(store.verify().unwrap()[0].1.wal_tail_discarded, 0, "{what}");
    assert_eq!(store.collection("cases").unwrap().len(), intact, "{what}");
}

#[test]
fn a_torn_log_tail_is_cut_with_a_warning_and_appends_continue() {
    let (_dir, root, vectors) = build_store();
    let log = files_under(&root)
        .into_iter()
        .find(|f| file_name(f).ends_with(".log"))
        .unwrap();
    let full = std::fs::read(&log).unwrap();
    // Half of the last frame, as a crash mid-append leaves it.
    std::fs::write(&log, &full[..full.len() - 100]).unwrap();
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    let warning = cases.warnings().join("\n");
    assert!(warning.contains(&file_name(&log)), "{warning}");
    assert_eq!(cases.len(), 1490, "the last batch of ten was torn");
    cases.upsert(&records(&vectors[1490..], 1490)).unwrap();
    drop((cases, store));
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    assert!(cases.warnings().is_empty(), "{:?}", cases.warnings());
    assert_eq!(cases.len(), 1500);
}

#[test]
fn a_truncated_log_is_cut_and_a_swapped_log_is_reported() {
    let (_dir, root, vectors) = build_store();
    let (_other_dir, other_root, _) = build_store();
    let log = files_under(&root)
        .into_iter()
        .find(|f| file_name(f).ends_with(".log"))
        .unwrap();
    let original = std::fs::read(&log).unwrap();
    for cut in [0, 10, 63] {
        std::fs::write(&log, &original[..cut]).unwrap();
        let message = exercise(&root, &vectors[0])
            .unwrap_or_else(|| panic!("log cut at {cut} went unnoticed"));
        assert!(message.contains(&file_name(&log)), "`{message}`");
    }
    // Cut inside a frame: the torn frame is cut with a warning. (A cut exactly at a frame
    // boundary, like 64, leaves a shorter valid log, which no check can tell apart.)
    for cut in [100, original.len() / 2, original.len() - 1] {
        std::fs::write(&log, &original[..cut]).unwrap();
        assert_eq!(exercise(&root, &vectors[0]), None, "log cut at {cut}");
        let warnings = open_writer(&root).unwrap();
        assert_eq!(warnings.len(), 1, "log cut at {cut}");
        assert!(warnings[0].contains(&file_name(&log)), "{warnings:?}");
        std::fs::write(&log, &original).unwrap();
    }
    let twin = other_root.join(log.strip_prefix(&root).unwrap());
    std::fs::copy(&twin, &log).unwrap();
    let message = exercise(&root, &vectors[0]).expect("a log from another store went unnoticed");
    assert!(message.contains(&file_name(&log)), "`{message}`");
    std::fs::write(&log, &original).unwrap();
    assert_eq!(exercise(&root, &vectors[0]), None);
}

#[test]
fn temporary_files_left_by_a_crash_are_removed_by_the_writer() {
    let (_dir, root, _) = build_store();
    let collection = root.join("collections/cases");
    let leftovers = [
        collection.join("MANIFEST.tmp"),
        collection.join("seg-00000001/image.hnsw.tmp"),
        collection.join("heads/early.head.tmp"),
    ];
    for path in &leftovers {
        std::fs::write(path, b"half written").unwrap();
    }
    Store::open_read_only(&root).unwrap().verify().unwrap();
    assert!(
        leftovers.iter().all(|p| p.exists()),
        "readers change nothing"
    );
    open_writer(&root).unwrap();
    for path in &leftovers {
        assert!(!path.exists(), "{} is still there", path.display());
    }
}
