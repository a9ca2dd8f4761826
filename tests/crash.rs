//! Crash tests: the real binary is killed (SIGKILL, or an abort at a fault-injection point before
//! and after every fsync and rename) in the middle of imports, flushes and compactions. After each
//! kill the store must hold every acknowledged batch, no partial batch, pass `verify`, and accept
//! new writes.
//!
//! `MEDVEC_CRASH_TRIALS=N` sets the number of random-kill trials (default 12; the long mode in
//! `tests/README.md` runs 1,000).

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::*;

const BATCH: usize = 50;
const RECORDS: usize = 3000;

fn prepare(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let store = dir.join("store");
    create_quantised_cases(&store);
    let jsonl = dir.join("cases.jsonl");
    write_jsonl(&jsonl, 0, RECORDS, 8);
    (store, jsonl)
}

/// Runs an import that may die; returns how many records it acknowledged before dying.
fn import_until_killed(
    store: &std::path::Path,
    jsonl: &std::path::Path,
    kill_after: Option<Duration>,
    crash_at: Option<&str>,
) -> usize {
    import_flushing_until_killed(store, jsonl, 700, (kill_after, crash_at))
}

/// [`import_until_killed`] with a flush every `flush_rows` records.
fn import_flushing_until_killed(
    store: &std::path::Path,
    jsonl: &std::path::Path,
    flush_rows: usize,
    (kill_after, crash_at): (Option<Duration>, Option<&str>),
) -> usize {
    let batch = BATCH.to_string();
    let flush_rows = flush_rows.to_string();
    let args = [
        "import",
        s(store),
        "cases",
        "--jsonl",
        s(jsonl),
        "--batch",
        &batch,
        "--flush-rows",
        &flush_rows,
    ];
    run_until_killed(&args, kill_after, crash_at)
}

/// Imports the whole file again into a store that survived a crash: every record must end up
/// stored once, which also shows the store accepts new writes.
fn finish_import(store: &std::path::Path, jsonl: &std::path::Path, context: &str) {
    medvec_ok(&[
        "import",
        s(store),
        "cases",
        "--jsonl",
        s(jsonl),
        "--batch",
        "500",
    ]);
    assert_eq!(check_after_crash(store, RECORDS, 0, context), RECORDS);
}

/// Prints one line of the crash matrix (`tests/README.md`); reached only when every trial of
/// the test passed, so "0 lost" is what the assertions proved.
fn report(name: &str, trials: usize) {
    eprintln!("crash-matrix: {name}: {trials} trials, 0 lost");
}

/// Checks the store after a crash and returns its record count. The import writes ids in order,
/// so the store holds a prefix: at least what was stored before (`previous`) and what this run
/// acknowledged, at most one batch beyond either.
fn check_after_crash(
    store: &std::path::Path,
    acknowledged: usize,
    previous: usize,
    context: &str,
) -> usize {
    medvec_ok(&["verify", s(store)]);
    let count = count_records(store);
    assert!(
        count >= acknowledged.max(previous),
        "{context}: {count} records stored, {acknowledged} acknowledged, {previous} before"
    );
    assert_eq!(
        count % BATCH,
        0,
        "{context}: a partial batch is visible ({count} records)"
    );
    assert!(
        count <= (acknowledged + BATCH).max(previous),
        "{context}: more than one unacknowledged batch ({count} vs {acknowledged}, {previous} before)"
    );
    if count > 0 {
        let last = format!("case-{:06}", count - 1);
        let got = medvec_json(&["get", s(store), "cases", &last, "--json"]);
        assert_eq!(got["payload"]["n"], count - 1, "{context}");
    }
    count
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (store, jsonl) = prepare(dir.path());
    let mut previous = 0;
    let trials = delays(random_trials(), 400);
    for (trial, delay) in trials.iter().enumerate() {
        let acknowledged = import_until_killed(&store, &jsonl, Some(*delay), None);
        let count = check_after_crash(
            &store,
            acknowledged,
            previous,
            &format!("trial {trial}, kill after {delay:?}"),
        );
        previous = count;
        if count == RECORDS {
            previous = 0;
            // Start over so later trials kill mid-import too.
            medvec_ok(&["drop", s(&store), "cases"]);
            create_quantised_cases(&store);
        }
    }
    report("import, SIGKILL at random times", trials.len());
}

#[test]
fn aborts_before_and_after_every_fsync_and_rename_lose_nothing() {
    let points = [
        "wal-before-fsync",
        "wal-after-fsync",
        "segment-after-write",
        "before-rename",
        "after-rename",
        "flush-after-manifest",
    ];
    for point in points {
        for nth in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let (store, jsonl) = prepare(dir.path());
            let spec = format!("{point}:{nth}");
            let acknowledged = import_until_killed(&store, &jsonl, None, Some(&spec));
            assert!(
                acknowledged < RECORDS,
                "{spec}: the fault point was never reached"
            );
            check_after_crash(&store, acknowledged, 0, &spec);
            // The store accepts new writes: finish the import.
            finish_import(&store, &jsonl, &spec);
        }
    }
    report(
        "import + flush, abort at each fsync/rename point",
        points.len() * 2,
    );
}

/// With `--flush-rows 700` an import of 3,000 records flushes four segments, and its closing
/// flush a fifth, all without graphs (an import defers them); the writer then writes the five
/// again as one segment with its graph and codes: the sixth segment written, whose manifest
/// commit is `merge-after-manifest`'s first hit.
#[test]
fn a_crash_while_an_import_builds_its_graphs_loses_nothing_and_leaves_no_orphans() {
    for spec in ["segment-after-write:6", "merge-after-manifest:1"] {
        let segments_after_crash = if spec.starts_with("merge") { 1 } else { 5 };
        crash_during_a_merge(700, spec, (RECORDS, segments_after_crash));
    }
    report(
        "graphs built at the end of an import, abort after the segment and after its commit",
        2,
    );
}

/// With `--flush-rows 300` the fifth flush (1,500 records) leaves five segments of one tier, so
/// the writer merges them, still without graphs, into the sixth segment written: a crash there
/// leaves the five, or the merged one, and the next import builds the graphs.
#[test]
fn a_crash_during_a_merge_without_graphs_loses_nothing_and_leaves_no_orphans() {
    for spec in ["segment-after-write:6", "merge-after-manifest:1"] {
        let segments_after_crash = if spec.starts_with("merge") { 1 } else { 5 };
        crash_during_a_merge(300, spec, (1_450, segments_after_crash));
    }
    report(
        "automatic merge during an import, abort after its segment and after its commit",
        2,
    );
}

/// Aborts an import flushing every `flush_rows` records at `spec`, which must come after
/// `acknowledged` records, and checks the store then holds `segments` segments and every
/// acknowledged record; then finishes the import, which must leave at most two segments, all
/// with graphs (and codes), and no directory the manifest does not name.
fn crash_during_a_merge(flush_rows: usize, spec: &str, (acknowledged, segments): (usize, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let (store, jsonl) = prepare(dir.path());
    let got = import_flushing_until_killed(&store, &jsonl, flush_rows, (None, Some(spec)));
    assert_eq!(got, acknowledged, "{spec}: where the merge comes");
    let stats = medvec_json(&["stats", s(&store), "cases", "--json"]);
    let after_crash = stats["collections"][0]["segments"].as_u64().unwrap();
    assert_eq!(
        after_crash, segments,
        "{spec}: killed before or after the commit"
    );
    check_after_crash(&store, acknowledged, 0, spec);
    finish_import(&store, &jsonl, spec);
    let stats = medvec_json(&["stats", s(&store), "cases", "--json"]);
    let segments = stats["collections"][0]["segments"].as_u64().unwrap() as usize;
    assert!(
        segments <= 2,
        "{spec}: {segments} segments, the merge did not happen"
    );
    assert_eq!(
        stats["collections"][0]["segments_awaiting_graphs"], 0,
        "{spec}"
    );
    assert_eq!(
        segment_dirs(&store),
        segments,
        "{spec}: a segment directory no manifest names was left behind"
    );
    assert_codes_beside_graphs(&store, spec);
}

/// Every segment with a graph has the SQ8 codes the quantised field asks for, and no other does.
fn assert_codes_beside_graphs(store: &std::path::Path, context: &str) {
    let mut graphs = 0;
    for entry in std::fs::read_dir(store.join("collections/cases")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir()
            || !dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seg-")
        {
            continue;
        }
        let graph = dir.join("image.hnsw").exists();
        graphs += usize::from(graph);
        assert_eq!(
            graph,
            dir.join("image.sq8").exists(),
            "{context}: {}",
            dir.display()
        );
    }
    assert!(graphs > 0, "{context}: no segment has a graph");
}

/// How many segment directories the store holds on disk.
fn segment_dirs(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            match entry.path().is_dir() {
                true if name.starts_with("seg-") => 1,
                true => segment_dirs(&entry.path()),
                false => 0,
            }
        })
        .sum()
}

#[test]
fn a_crash_during_compaction_keeps_every_live_record() {
    for point in [
        "segment-after-write",
        "before-rename",
        "after-rename",
        "compact-after-manifest",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (store, jsonl) = prepare(dir.path());
        medvec_ok(&[
            "import",
            s(&store),
            "cases",
            "--jsonl",
            s(&jsonl),
            "--batch",
            "500",
            "--flush-rows",
            "1000",
        ]);
        let doomed: Vec<String> = (0..RECORDS)
            .step_by(3)
            .map(|n| format!("case-{n:06}"))
            .collect();
        let mut args = vec!["delete", s(&store), "cases"];
        args.extend(doomed.iter().map(String::as_str));
        medvec_ok(&args);
        abort_at(point, &["compact", s(&store)], "compaction");
        medvec_ok(&["verify", s(&store)]);
        assert_eq!(count_records(&store), RECORDS - doomed.len(), "{point}");
        medvec_ok(&["compact", s(&store)]);
        let stats = medvec_json(&["stats", s(&store), "cases", "--json"]);
        assert_eq!(
            stats["collections"][0]["count"],
            RECORDS - doomed.len(),
            "{point}"
        );
        assert_eq!(stats["collections"][0]["deleted_rows"], 0, "{point}");
    }
    report("compaction, abort at each fsync/rename point", 4);
}

/// Seconds-scale pseudo-random delays (xorshift), the same on every run.
/// Runs `medvec args` with an abort injected at fault point `point` (`MEDVEC_CRASH_AT`), and
/// checks that `what` died there rather than finishing.
fn abort_at(point: &str, args: &[&str], what: &str) {
    let status = Command::new(medvec_bin())
        .args(args)
        .env("MEDVEC_CRASH_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        !status.success(),
        "{point}: {what} should have been aborted"
    );
}

fn delays(trials: usize, max_ms: u64) -> Vec<Duration> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    (0..trials)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            Duration::from_millis(5 + seed % max_ms)
        })
        .collect()
}

fn random_trials() -> usize {
    std::env::var("MEDVEC_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// Runs `medvec ARGS --progress-lines` that may die (SIGKILL after `kill_after`, or an abort at
/// `crash_at`); returns the last `acknowledged N` it printed.
fn run_until_killed(args: &[&str], kill_after: Option<Duration>, crash_at: Option<&str>) -> usize {
    let mut command = Command::new(medvec_bin());
    command
        .args(args)
        .arg("--progress-lines")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(point) = crash_at {
        command.env("MEDVEC_CRASH_AT", point);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acknowledged = 0;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(n) = line
                .strip_prefix("acknowledged ")
                .and_then(|n| n.parse().ok())
            {
                acknowledged = n;
            }
        }
        acknowledged
    });
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    }
    child.wait().unwrap();
    reader.join().unwrap()
}

#[path = "crash/ingest.rs"]
mod ingest;

#[path = "crash/updates.rs"]
mod updates;

#[path = "crash/heads.rs"]
mod heads;
