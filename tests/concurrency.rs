//! Readers in other processes keep working, and see whole committed versions, while a writer
//! imports, flushes, deletes and compacts.

mod util;

use std::process::{Command, Stdio};
use util::*;

const BATCH: usize = 50;

#[test]
fn readers_see_only_whole_batches_while_a_writer_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let jsonl = dir.path().join("cases.jsonl");
    write_jsonl(&jsonl, 0, 4000, 8);
    let mut writer = Command::new(medvec_bin())
        .args([
            "import",
            s(&store),
            "cases",
            "--jsonl",
            s(&jsonl),
            "--batch",
            &BATCH.to_string(),
            "--flush-rows",
            "300",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last = 0;
    let mut observations = 0;
    while writer.try_wait().unwrap().is_none() {
        let count = count_records(&store);
        assert_eq!(count % BATCH, 0, "a reader saw a partial batch: {count}");
        assert!(
            count >= last,
            "a reader went back in time: {last} → {count}"
        );
        last = count;
        if count > 0 {
            medvec_ok(&[
                "search",
                s(&store),
                "cases",
                "--field",
                "image",
                "--vector",
                "1,0,0,0,0,0,0,1",
                "-k",
                "3",
                "--json",
            ]);
        }
        observations += 1;
    }
    assert!(writer.wait().unwrap().success());
    assert!(observations > 2, "the reader never overlapped the writer");
    let doomed: Vec<String> = (0..4000)
        .step_by(2)
        .map(|n| format!("case-{n:06}"))
        .collect();
    let mut args = vec!["delete", s(&store), "cases"];
    args.extend(doomed.iter().map(String::as_str));
    medvec_ok(&args);
    let mut compactor = Command::new(medvec_bin())
        .args(["compact", s(&store)])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while compactor.try_wait().unwrap().is_none() {
        assert_eq!(
            count_records(&store),
            2000,
            "compaction changed what readers see"
        );
        let out = medvec_ok(&[
            "search",
            s(&store),
            "cases",
            "--field",
            "image",
            "--vector",
            "1,0,0,0,0,0,0,1",
            "-k",
            "5",
            "--json",
        ]);
        let hits: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        for hit in hits["hits"].as_array().unwrap() {
            let n: u64 = hit["id"].as_str().unwrap()[5..].parse().unwrap();
            assert_eq!(n % 2, 1, "a deleted record came back during compaction");
        }
    }
    assert!(compactor.wait().unwrap().success());
}

/// Counts what a reader process sees (`stats`), and checks a search from another process works.
fn observe(store: &std::path::Path) -> usize {
    let count = count_records(store);
    if count > 0 {
        medvec_ok(&[
            "search",
            s(store),
            "cases",
            "--field",
            "image",
            "--vector",
            "1,0,0,0,0,0,0,1",
            "-k",
            "3",
            "--json",
        ]);
    }
    count
}

#[test]
fn readers_see_whole_delete_batches_while_a_writer_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let jsonl = dir.path().join("cases.jsonl");
    write_jsonl(&jsonl, 0, 2000, 8);
    import_jsonl(&store, &jsonl, 500);
    let deleter = {
        let store = store.clone();
        std::thread::spawn(move || {
            for first in (0..1000).step_by(BATCH) {
                let ids: Vec<String> = (first..first + BATCH)
                    .map(|n| format!("case-{n:06}"))
                    .collect();
                let mut args = vec!["delete", s(&store), "cases"];
                args.extend(ids.iter().map(String::as_str));
                medvec_ok(&args);
            }
        })
    };
    let mut last = 2000;
    let mut observations = 0;
    while !deleter.is_finished() {
        let count = observe(&store);
        assert_eq!(
            count % BATCH,
            0,
            "a reader saw part of a delete batch: {count}"
        );
        assert!(
            count <= last,
            "a reader went back in time: {last} → {count}"
        );
        last = count;
        observations += 1;
    }
    deleter.join().unwrap();
    assert!(observations > 2, "the reader never overlapped the deletes");
    assert_eq!(observe(&store), 1000);
    medvec_ok(&["verify", s(&store)]);
}

#[test]
fn readers_see_whole_chunks_while_an_archive_is_ingested() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let images = [
        "rgb_100x75.png",
        "rgb_80x60.jpg",
        "gray_64x48.jpg",
        "tall_30x90.jpg",
    ];
    let mut manifest = String::from("id,path\n");
    for i in 0..1200 {
        manifest.push_str(&format!("case-{i:06},{}\n", images[i % images.len()]));
    }
    let manifest_path = dir.path().join("manifest.csv");
    std::fs::write(&manifest_path, manifest).unwrap();
    let mut writer = Command::new(medvec_bin())
        .args([
            "ingest",
            s(&store),
            "cases",
            "--manifest",
            s(&manifest_path),
            "--root",
        ])
        .arg(root.join("fixtures/images"))
        .arg("--image-model")
        .arg(root.join("fixtures/models/tiny-image"))
        .args(["--batch", "40", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut last = 0;
    let mut observations = 0;
    while writer.try_wait().unwrap().is_none() {
        if !store.join("collections/cases/MANIFEST").exists() {
            continue;
        }
        let count = count_records(&store);
        assert_eq!(
            count % 40,
            0,
            "a reader saw part of an ingest chunk: {count}"
        );
        assert!(
            count >= last,
            "a reader went back in time: {last} → {count}"
        );
        last = count;
        observations += 1;
    }
    assert!(writer.wait().unwrap().success());
    assert!(observations > 2, "the reader never overlapped the ingest");
    assert_eq!(count_records(&store), 1200);
}

#[test]
fn a_lock_left_by_a_killed_writer_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    create_cases(&store);
    let jsonl = dir.path().join("cases.jsonl");
    write_jsonl(&jsonl, 0, 20_000, 8);
    let mut writer = Command::new(medvec_bin())
        .args([
            "import",
            s(&store),
            "cases",
            "--jsonl",
            s(&jsonl),
            "--batch",
            "20",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the writer holds the lock (it writes its pid into LOCK once it has the flock;
    // polling with another writer could take the lock first and make the import fail).
    let pid = writer.id().to_string();
    let holds = |store: &std::path::Path| {
        std::fs::read_to_string(store.join("LOCK")).is_ok_and(|text| text.trim() == pid)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !holds(&store) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        holds(&store),
        "the running import never took the write lock"
    );
    let second = util::medvec(&["delete", s(&store), "cases", "nobody"]);
    assert!(!second.status.success(), "a second writer must be refused");
    assert!(String::from_utf8_lossy(&second.stderr).contains("lock"));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(writer.id() as i32, libc::SIGKILL) };
    writer.wait().unwrap();
    let lock = std::fs::read_to_string(store.join("LOCK")).unwrap();
    assert_eq!(
        lock.trim(),
        writer.id().to_string(),
        "the dead writer's lock file is left"
    );
    // The kernel released the dead writer's flock: a new writer proceeds, and nothing is lost.
    medvec_ok(&["delete", s(&store), "cases", "case-000000"]);
    medvec_ok(&["verify", s(&store)]);
    let lock = std::fs::read_to_string(store.join("LOCK")).unwrap();
    assert_ne!(lock.trim(), writer.id().to_string());
}
