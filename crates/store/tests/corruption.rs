//! Damaged files are reported by name, never a panic or a silently wrong answer.

mod common;

use common::*;
use medvec_store::{SearchParams, Store};
use std::path::{Path, PathBuf};

/// A store with one segment (with graphs), a tail in the log, and a manifest.
fn build_store() -> (tempfile::TempDir, PathBuf, Vec<Vec<f32>>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create(&root).unwrap();
    let cases = store.create_collection("cases", schema(16)).unwrap();
    let vectors = clustered(1500, 16, 6, 21);
    cases.upsert(&records(&vectors[..1400], 0)).unwrap();
    cases.flush().unwrap();
    cases.upsert(&records(&vectors[1400..], 1400)).unwrap();
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
        "ids.rkyv",
        "payload.rkyv",
        "image.f32",
        "text.f32",
        "image.hnsw",
        ".log",
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
