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

mod ingest {
    use super::*;
    use std::path::{Path, PathBuf};

    const ROWS: usize = 320;
    const CHUNK: usize = 8;
    const GOOD_IMAGES: [&str; 8] = [
        "rgb_100x75.png",
        "rgb_80x60.jpg",
        "gray_64x48.jpg",
        "palette_64x40.bmp",
        "rgb_80x60.tif",
        "lossy_80x60.webp",
        "rgba_60x80.png",
        "tall_30x90.jpg",
    ];

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// A manifest of ROWS cases cycling through good fixture images, ids in order.
    fn manifest(dir: &Path) -> PathBuf {
        let mut text = String::from("id,path,age,sex\n");
        for i in 0..ROWS {
            let image = GOOD_IMAGES[i % GOOD_IMAGES.len()];
            text.push_str(&format!("case-{i:06},{image},{},female\n", 20 + i % 60));
        }
        let path = dir.join("manifest.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn args(store: &Path, manifest: &Path) -> Vec<String> {
        let fixture = |p: &str| repo().join(p).to_str().unwrap().to_string();
        [
            "ingest",
            s(store),
            "cases",
            "--manifest",
            s(manifest),
            "--root",
            &fixture("fixtures/images"),
            "--image-model",
            &fixture("fixtures/models/tiny-image"),
            "--batch",
            &CHUNK.to_string(),
            "--threads",
            "1",
        ]
        .map(str::to_string)
        .to_vec()
    }

    fn count(store: &Path) -> usize {
        let stats = medvec_json(&["stats", s(store), "cases", "--json"]);
        stats["collections"][0]["count"].as_u64().unwrap() as usize
    }

    /// After a crash: verify passes, whole chunks only, every acknowledged row (and every row
    /// stored before, `previous`) present, at most one unacknowledged chunk beyond them.
    fn check(store: &Path, acknowledged: usize, previous: usize, context: &str) -> usize {
        if !store.join("collections/cases").exists() {
            assert_eq!(acknowledged, 0, "{context}");
            return 0;
        }
        medvec_ok(&["verify", s(store)]);
        let n = count(store);
        assert_eq!(
            n % CHUNK,
            0,
            "{context}: a partial chunk is visible ({n} rows)"
        );
        let floor = acknowledged.max(previous);
        assert!(
            n >= floor && n <= floor + CHUNK,
            "{context}: {n} stored, {acknowledged} acknowledged, {previous} before"
        );
        n
    }

    /// Resumes to completion and checks a stored vector against `medvec embed`.
    fn finish(store: &Path, manifest: &Path, context: &str) {
        let args = args(store, manifest);
        medvec_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(count(store), ROWS, "{context}: resume completes");
        let last = format!("case-{:06}", ROWS - 1);
        let got = medvec_json(&["get", s(store), "cases", &last, "--json"]);
        let image = repo()
            .join("fixtures/images")
            .join(GOOD_IMAGES[(ROWS - 1) % 8]);
        let model = repo().join("fixtures/models/tiny-image");
        let embedded = medvec_json(&["embed", "--image-model", s(&model), s(&image)]);
        let (a, b) = (&got["vectors"]["image"], &embedded["vector"]);
        assert_eq!(a.as_array().unwrap().len(), b.as_array().unwrap().len());
        for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
            assert!(
                (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-6,
                "{context}"
            );
        }
    }

    #[test]
    fn an_ingest_killed_at_random_points_resumes_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path());
        let store = dir.path().join("store");
        let args = args(&store, &manifest);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut previous = 0;
        for (trial, delay) in delays(random_trials(), 350).into_iter().enumerate() {
            let acknowledged = run_until_killed(&args, Some(delay), None);
            let context = format!("ingest trial {trial}, kill after {delay:?}");
            previous = check(&store, acknowledged, previous, &context);
            let n = previous;
            if n == ROWS {
                medvec_ok(&["drop", s(&store), "cases"]);
                previous = 0;
            }
        }
        finish(&store, &manifest, "after the random kills");
        report("ingest, SIGKILL at random times", random_trials());
    }

    #[test]
    fn an_ingest_aborted_before_and_after_every_fsync_and_rename_loses_nothing() {
        // rename 1 is the model record; later ones are segment flushes (none at this size)
        for spec in [
            "wal-before-fsync:2",
            "wal-after-fsync:2",
            "before-rename:1",
            "after-rename:1",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let manifest = manifest(dir.path());
            let store = dir.path().join("store");
            let args = args(&store, &manifest);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let acknowledged = run_until_killed(&args, None, Some(spec));
            assert!(
                acknowledged < ROWS,
                "{spec}: the fault point was never reached"
            );
            check(&store, acknowledged, 0, spec);
            finish(&store, &manifest, spec);
            medvec_ok(&["verify", s(&store)]);
        }
        report("ingest, abort at each fsync/rename point", 4);
    }
}

mod updates {
    use super::*;
    use std::path::Path;

    /// The same ids as `write_jsonl`, with payload `n + OFFSET`: an update of every record.
    const OFFSET: usize = 1_000_000;

    fn write_updates(path: &Path) {
        let mut text = String::new();
        for n in 0..RECORDS {
            let line = serde_json::json!({"id": format!("case-{n:06}"), "image": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (n % 7) as f32], "n": n + OFFSET});
            text.push_str(&format!("{line}\n"));
        }
        std::fs::write(path, text).unwrap();
    }

    /// How many records carry the update; checks that they are a whole-batch prefix and that
    /// every other record still has its original payload.
    fn updated_prefix(store: &Path, context: &str) -> usize {
        medvec_ok(&["verify", s(store)]);
        let table = store.parent().unwrap().join("table.csv");
        let npy = store.parent().unwrap().join("image.npy");
        medvec_ok(&[
            "export",
            s(store),
            "cases",
            "--field",
            "image",
            "--npy",
            s(&npy),
            "--table",
            s(&table),
        ]);
        let mut payload: Vec<(String, usize)> = std::fs::read_to_string(&table)
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| {
                let mut cells = line.split(',');
                let id = cells.next().unwrap().to_string();
                (id, cells.next().unwrap().parse().unwrap())
            })
            .collect();
        assert_eq!(
            payload.len(),
            RECORDS,
            "{context}: upserts never add or lose records"
        );
        payload.sort();
        let updated = payload.iter().take_while(|(_, n)| *n >= OFFSET).count();
        for (i, (id, n)) in payload.iter().enumerate() {
            let original = id.strip_prefix("case-").unwrap().parse::<usize>().unwrap();
            let want = if i < updated {
                original + OFFSET
            } else {
                original
            };
            assert_eq!(
                *n, want,
                "{context}: {id} is neither old nor a prefix update"
            );
        }
        assert_eq!(
            updated % BATCH,
            0,
            "{context}: a partial batch of updates is visible"
        );
        updated
    }

    /// A store holding all RECORDS cases, imported without interruption.
    fn imported_store(dir: &Path) -> std::path::PathBuf {
        let (store, jsonl) = prepare(dir);
        let args = [
            "import",
            s(&store),
            "cases",
            "--jsonl",
            s(&jsonl),
            "--batch",
            "1000",
        ];
        medvec_ok(&args);
        store
    }

    #[test]
    fn upserts_killed_at_random_points_are_all_or_nothing_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = imported_store(dir.path());
        let updates = dir.path().join("updates.jsonl");
        write_updates(&updates);
        let args = [
            "import",
            s(&store),
            "cases",
            "--jsonl",
            s(&updates),
            "--batch",
            "50",
            "--flush-rows",
            "700",
        ];
        let mut previous = 0;
        for (trial, delay) in delays(random_trials(), 400).into_iter().enumerate() {
            let acknowledged = run_until_killed(&args, Some(delay), None);
            let context = format!("upsert trial {trial}, kill after {delay:?}");
            let updated = updated_prefix(&store, &context);
            assert!(
                updated >= acknowledged.max(previous)
                    && updated <= acknowledged.max(previous) + BATCH,
                "{context}: {updated} updated, {acknowledged} acknowledged, {previous} before"
            );
            previous = updated;
        }
        medvec_ok(&["import", s(&store), "cases", "--jsonl", s(&updates)]);
        assert_eq!(updated_prefix(&store, "completed"), RECORDS);
        report(
            "upsert of existing ids, SIGKILL at random times",
            random_trials(),
        );
    }

    #[test]
    fn a_delete_aborted_at_the_log_fsync_is_all_or_nothing() {
        for point in ["wal-before-fsync", "wal-after-fsync"] {
            let dir = tempfile::tempdir().unwrap();
            let store = imported_store(dir.path());
            let doomed: Vec<String> = (0..RECORDS)
                .step_by(5)
                .map(|n| format!("case-{n:06}"))
                .collect();
            let mut args = vec!["delete", s(&store), "cases"];
            args.extend(doomed.iter().map(String::as_str));
            let status = Command::new(medvec_bin())
                .args(&args)
                .env("MEDVEC_CRASH_AT", point)
                .stderr(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(
                !status.success(),
                "{point}: the delete should have been aborted"
            );
            medvec_ok(&["verify", s(&store)]);
            let count = count_records(&store);
            assert!(
                count == RECORDS || count == RECORDS - doomed.len(),
                "{point}: {count} records, a partial delete"
            );
            medvec_ok(&args);
            let count = count_records(&store);
            assert_eq!(
                count,
                RECORDS - doomed.len(),
                "{point}: the store accepts the delete"
            );
        }
        report("delete batch, abort before/after the log fsync", 2);
    }
}

mod heads {
    use super::*;
    use std::path::Path;

    fn demo_store(dir: &Path) -> std::path::PathBuf {
        let store = dir.join("demo");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
        let csv = fixtures.join("meta.csv");
        medvec_ok(&[
            "create",
            s(&store),
            "ham10000",
            "--vector",
            "image:64:cosine",
            "--vector",
            "text:64:cosine",
            "--field",
            "dx:string",
            "--field",
            "split:string",
        ]);
        medvec_ok(&[
            "import",
            s(&store),
            "ham10000",
            "--npy",
            &format!("image={}", fixtures.join("image.npy").display()),
            "--npy",
            &format!("text={}", fixtures.join("text.npy").display()),
            "--table",
            s(&csv),
        ]);
        store
    }

    fn train_args<'a>(store: &'a Path, seed: &'a str) -> Vec<&'a str> {
        vec![
            "train",
            s(store),
            "ham10000",
            "--head",
            "late",
            "--label",
            "dx",
            "--split-column",
            "split",
            "--shift",
            "0.5",
            "--seed",
            seed,
            "--epochs",
            "8",
            "--name",
            "dx",
        ]
    }

    /// The saved heads' metadata as `heads --json` lists it, without timings (which differ
    /// between identical trainings).
    fn listed(store: &Path) -> Vec<serde_json::Value> {
        let out = medvec_ok(&["heads", s(store), "ham10000", "--json"]);
        out.lines()
            .map(|l| {
                let mut head: serde_json::Value = serde_json::from_str(l).unwrap();
                drop_timings(&mut head);
                head
            })
            .collect()
    }

    /// Removes every measured time or speed (`seconds_per_epoch`, `rows_per_second`, ...).
    fn drop_timings(value: &mut serde_json::Value) {
        if let Some(object) = value.as_object_mut() {
            object.retain(|key, _| !key.contains("second"));
            object.values_mut().for_each(drop_timings);
        }
    }

    /// Trains seed 2 over a head trained with seed 1, crashing; the head afterwards must be the
    /// old one or the new one (as a clean run in a copy of the store makes it), and usable.
    fn check_old_or_new(crash: impl Fn(&[&str]), context: &str) {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path());
        medvec_ok(&train_args(&store, "1"));
        let old = listed(&store);
        let clean = dir.path().join("clean");
        copy_dir(&store, &clean);
        medvec_ok(&train_args(&clean, "2"));
        let new = listed(&clean);
        assert_ne!(old, new, "different seeds give different heads");
        crash(&train_args(&store, "2"));
        medvec_ok(&["verify", s(&store)]);
        let now = listed(&store);
        assert!(
            now == old || now == new,
            "{context}: the head is neither old nor new: {now:?}"
        );
        medvec_ok(&["eval", s(&store), "ham10000", "--head", "dx", "--json"]);
    }

    #[test]
    fn a_head_save_aborted_around_its_rename_leaves_the_old_or_the_new_head() {
        for point in ["before-rename", "after-rename"] {
            check_old_or_new(
                |args| {
                    let status = Command::new(medvec_bin())
                        .args(args)
                        .env("MEDVEC_CRASH_AT", point)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(
                        !status.success(),
                        "{point}: training should have been aborted"
                    );
                },
                point,
            );
        }
        report("head save, abort before/after its rename", 2);
    }

    #[test]
    fn training_killed_at_random_points_leaves_the_old_or_the_new_head() {
        for (trial, delay) in delays(random_trials().div_ceil(4), 600)
            .into_iter()
            .enumerate()
        {
            check_old_or_new(
                |args| {
                    run_until_killed_quiet(args, delay);
                },
                &format!("training trial {trial}, kill after {delay:?}"),
            );
        }
        report(
            "head training, SIGKILL at random times",
            random_trials().div_ceil(4),
        );
    }

    fn run_until_killed_quiet(args: &[&str], delay: Duration) {
        let mut child = Command::new(medvec_bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }
}
