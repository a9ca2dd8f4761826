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
    create_cases(&store);
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
    let mut command = Command::new(medvec_bin());
    command
        .args([
            "import",
            s(store),
            "cases",
            "--jsonl",
            s(jsonl),
            "--batch",
            &BATCH.to_string(),
            "--flush-rows",
            "700",
            "--progress-lines",
        ])
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
            // A kill can cut the last line short; a partial number is not an acknowledgement.
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
    let stats = medvec_json(&["stats", s(store), "cases", "--json"]);
    let count = stats["collections"][0]["count"].as_u64().unwrap() as usize;
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
    let trials: usize = std::env::var("MEDVEC_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let (store, jsonl) = prepare(dir.path());
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut previous = 0;
    for trial in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(5 + seed % 400);
        let acknowledged = import_until_killed(&store, &jsonl, Some(delay), None);
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
            create_cases(&store);
        }
    }
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
            medvec_ok(&[
                "import",
                s(&store),
                "cases",
                "--jsonl",
                s(&jsonl),
                "--batch",
                "500",
            ]);
            assert_eq!(check_after_crash(&store, RECORDS, 0, &spec), RECORDS);
        }
    }
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
        let status = Command::new(medvec_bin())
            .args(["compact", s(&store)])
            .env("MEDVEC_CRASH_AT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            !status.success(),
            "{point}: compaction should have been aborted"
        );
        medvec_ok(&["verify", s(&store)]);
        let stats = medvec_json(&["stats", s(&store), "cases", "--json"]);
        assert_eq!(
            stats["collections"][0]["count"],
            RECORDS - doomed.len(),
            "{point}"
        );
        medvec_ok(&["compact", s(&store)]);
        let stats = medvec_json(&["stats", s(&store), "cases", "--json"]);
        assert_eq!(
            stats["collections"][0]["count"],
            RECORDS - doomed.len(),
            "{point}"
        );
        assert_eq!(stats["collections"][0]["deleted_rows"], 0, "{point}");
    }
}
