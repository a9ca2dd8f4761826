//! The `medvec` binary under damaged files, a full disk and read-only media: one-line errors
//! naming the file, nothing acknowledged lost, and repair of what can be rebuilt.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

/// A store with collection `cases` holding `count` records (segments of at most 1100 rows).
fn store_with(dir: &Path, count: usize) -> PathBuf {
    let store = dir.join("store");
    create_cases(&store);
    let jsonl = dir.join("cases.jsonl");
    write_jsonl(&jsonl, 0, count, 8);
    import_jsonl(&store, &jsonl, 1100);
    store
}

/// The one file of the collection whose name is `name` (its only segment's, or its log).
fn only_file(store: &Path, name: impl Fn(&str) -> bool) -> PathBuf {
    let collection = store.join("collections/cases");
    let segments = std::fs::read_dir(&collection)
        .unwrap()
        .flatten()
        .map(|e| e.path());
    let found: Vec<PathBuf> = std::iter::once(collection.clone())
        .chain(segments.filter(|p| p.is_dir()))
        .flat_map(|dir| std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()))
        .filter(|p| name(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

fn graph_file(store: &Path) -> PathBuf {
    only_file(store, |name| name == "image.hnsw")
}

/// Exact top-5 of a few stored records, as printed.
fn exact_results(store: &Path) -> Vec<String> {
    ["case-000007", "case-000500", "case-001042"]
        .iter()
        .map(|id| {
            medvec_ok(&[
                "search",
                s(store),
                "cases",
                "--field",
                "image",
                "--like",
                id,
                "-k",
                "5",
                "--exact",
                "--json",
            ])
        })
        .collect()
}

fn count(store: &Path) -> u64 {
    let stats = medvec_json(&["stats", s(store), "cases", "--json"]);
    stats["collections"][0]["count"].as_u64().unwrap()
}

#[test]
fn verify_repair_rebuilds_a_damaged_graph_and_refuses_other_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 1300);
    let before = exact_results(&store);
    let graph = graph_file(&store);
    let mut bytes = std::fs::read(&graph).unwrap();
    bytes[8192..12288].fill(0);
    std::fs::write(&graph, &bytes).unwrap();
    let err = medvec_err(&["verify", s(&store)]);
    assert!(
        err.contains("image.hnsw") && err.contains("--repair"),
        "{err}"
    );
    let out = medvec_json(&["verify", s(&store), "cases", "--repair", "--json"]);
    let rebuilt = &out["collections"][0]["rebuilt"];
    assert_eq!(rebuilt.as_array().unwrap().len(), 1, "{out}");
    assert!(rebuilt[0]["file"].as_str().unwrap().ends_with("image.hnsw"));
    assert!(medvec_ok(&["verify", s(&store)]).contains("cases: ok"));
    assert_eq!(exact_results(&store), before);
    let text = medvec_ok(&["verify", s(&store), "--repair"]);
    assert!(text.contains("no damaged HNSW graph"), "{text}");
    // Damage to a file that holds data cannot be repaired: named, and nothing changes.
    let ids = only_file(&store, |name| name == "ids.idx");
    let mut bytes = std::fs::read(&ids).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&ids, &bytes).unwrap();
    let graph_before = std::fs::read(&graph).unwrap();
    let err = medvec_err(&["verify", s(&store), "--repair"]);
    assert!(
        err.contains("ids.idx") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(std::fs::read(&ids).unwrap(), bytes);
    assert_eq!(std::fs::read(&graph).unwrap(), graph_before);
}

/// Imports with a full disk injected at `point`; returns (acknowledged records, stderr).
fn import_with_full_disk(store: &Path, jsonl: &Path, point: &str) -> (u64, String) {
    let out = Command::new(medvec_bin())
        .args(["import", s(store), "cases", "--jsonl", s(jsonl)])
        .args(["--batch", "100", "--flush-rows", "1100", "--progress-lines"])
        .env("MEDVEC_FAIL_AT", point)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{point}: the import should fail");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let acked = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("acknowledged "))
        .filter_map(|n| n.parse().ok())
        .max()
        .unwrap_or(0);
    (acked, stderr)
}

#[test]
fn an_injected_full_disk_fails_the_import_cleanly_and_loses_nothing() {
    for point in [
        "wal-append:6",
        "wal-create",
        "segment-write",
        "graph-write",
        "manifest-write",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 300);
        let jsonl = dir.path().join("more.jsonl");
        write_jsonl(&jsonl, 300, 1500, 8);
        let (acked, stderr) = import_with_full_disk(&store, &jsonl, point);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("medvec: error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{point}: {stderr}");
        assert!(
            errors[0].contains("No space left on device"),
            "{point}: {stderr}"
        );
        assert!(
            errors[0].contains(s(&store)),
            "{point}: names no file: {stderr}"
        );
        medvec_ok(&["verify", s(&store)]);
        let stored = count(&store);
        assert!(
            stored >= 300 + acked,
            "{point}: {stored} < 300 + {acked} acknowledged"
        );
        assert_eq!(
            (stored - 300) % 100,
            0,
            "{point}: a partial batch is visible"
        );
        eprintln!(
            "{point}: {acked} acknowledged, {} stored, 0 lost",
            stored - 300
        );
        // Space returns: the same import succeeds (upserts are idempotent) and verify passes.
        medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&jsonl)]);
        assert_eq!(count(&store), 1800, "{point}");
        medvec_ok(&["verify", s(&store)]);
    }
}

#[test]
fn a_cut_log_tail_is_a_warning_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let jsonl = dir.path().join("cases.jsonl");
    write_jsonl(&jsonl, 0, 200, 8);
    medvec_ok(&[
        "import",
        s(&store),
        "cases",
        "--jsonl",
        s(&jsonl),
        "--batch",
        "50",
    ]);
    // Drop `close` (which flushes) out of the picture: a kill mid-append leaves a torn frame.
    let log = only_file(&store, |name| name.starts_with("wal-"));
    let log_name = log.file_name().unwrap().to_string_lossy().into_owned();
    let jsonl = dir.path().join("more.jsonl");
    write_jsonl(&jsonl, 200, 10, 8);
    let out = Command::new(medvec_bin())
        .args(["import", s(&store), "cases", "--jsonl", s(&jsonl)])
        .env("MEDVEC_CRASH_AT", "wal-after-fsync")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let mut bytes = std::fs::read(&log).unwrap();
    let torn = bytes.len() - 40;
    bytes.truncate(torn);
    std::fs::write(&log, &bytes).unwrap();
    let report = medvec_ok(&["verify", s(&store)]);
    assert!(
        report.contains("bytes of torn or damaged log tail"),
        "{report}"
    );
    let out = Command::new(medvec_bin())
        .args(["delete", s(&store), "cases", "case-000001"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {stderr:?}"));
    assert!(
        warning.contains(&log_name) && warning.contains("cut"),
        "{warning}"
    );
    assert_eq!(count(&store), 199, "the torn batch was never acknowledged");
}

#[test]
fn a_read_only_store_serves_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 1300);
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mounted = Command::new("mount")
        .args(["--bind", s(&store), s(&ro)])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot bind-mount (needs root)");
        return;
    }
    let _unmount = Unmount(ro.clone());
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro,bind", s(&ro)])
        .status()
        .is_ok_and(|s| s.success());
    assert!(remounted, "cannot remount read-only");
    assert_eq!(count(&ro), 1300);
    assert!(medvec_ok(&["verify", s(&ro)]).contains("cases: ok"));
    assert_eq!(exact_results(&ro), exact_results(&store));
    medvec_ok(&["get", s(&ro), "cases", "case-000003"]);
    let jsonl = dir.path().join("more.jsonl");
    write_jsonl(&jsonl, 5000, 10, 8);
    for args in [
        vec!["import", s(&ro), "cases", "--jsonl", s(&jsonl)],
        vec!["delete", s(&ro), "cases", "case-000001"],
        vec!["compact", s(&ro)],
        vec!["verify", s(&ro), "--repair"],
    ] {
        let err = medvec_err(&args);
        assert!(
            err.contains(s(&ro)) && err.contains("not writable"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(count(&ro), 1300);
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_crash_during_repair_leaves_the_old_graph_and_a_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 1300);
    let before = exact_results(&store);
    let graph = graph_file(&store);
    let mut bytes = std::fs::read(&graph).unwrap();
    bytes[100] ^= 0xFF;
    std::fs::write(&graph, &bytes).unwrap();
    for point in ["before-rename", "after-rename"] {
        let out = Command::new(medvec_bin())
            .args(["verify", s(&store), "--repair"])
            .env("MEDVEC_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: no crash");
        let now = std::fs::read(&graph).unwrap();
        // Before the rename the damaged file is still in place; after it, the rebuilt one.
        assert_eq!(now == bytes, point == "before-rename", "{point}");
        medvec_ok(&["verify", s(&store), "--repair"]);
        assert_eq!(exact_results(&store), before, "{point}");
        let leftovers: Vec<_> = std::fs::read_dir(graph.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
        std::fs::write(&graph, &bytes).unwrap();
    }
}
