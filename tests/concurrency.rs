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
        let stats = medvec_json(&["stats", s(&store), "cases", "--json"]);
        let count = stats["collections"][0]["count"].as_u64().unwrap() as usize;
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
        let stats = medvec_json(&["stats", s(&store), "cases", "--json"]);
        assert_eq!(
            stats["collections"][0]["count"], 2000,
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
