//! Crashes during updates and deletes: upserts killed at random points, and a delete aborted
//! before and after its log fsync, leave each batch wholly applied or not at all.

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
            updated >= acknowledged.max(previous) && updated <= acknowledged.max(previous) + BATCH,
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
        abort_at(point, &args, "the delete");
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
