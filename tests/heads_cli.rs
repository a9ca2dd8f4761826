//! train, heads, classify, eval and sweep on the demo fixtures, through the real binary.

mod util;

use util::*;

fn demo_store(dir: &std::path::Path) -> std::path::PathBuf {
    let store = dir.join("demo");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    medvec_ok(&["demo", "--store", s(&store), "--fixtures", s(&fixtures)]);
    store
}

#[test]
fn a_trained_head_reports_the_same_test_metrics_as_eval_and_classify() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path());
    let trained = medvec_json(&[
        "train",
        s(&store),
        "ham10000",
        "--head",
        "early",
        "--label",
        "dx",
        "--split-column",
        "split",
        "--shift",
        "0.5",
        "--name",
        "dx-early",
        "--json",
    ]);
    let meta = &trained["meta"];
    assert_eq!(
        meta["params"],
        64 * 2 * 128 + 128 + 2 * 128 + 128 * 7 + 7,
        "early fusion, 64+64 → 128 → 7"
    );
    assert_eq!(meta["lambda"], 0.5);
    assert_eq!(meta["classes"].as_array().unwrap().len(), 7);
    let eval = medvec_json(&[
        "eval",
        s(&store),
        "ham10000",
        "--head",
        "dx-early",
        "--filter",
        "split = \"test\"",
        "--json",
    ]);
    assert_eq!(
        eval["accuracy"], meta["test"]["accuracy"],
        "eval on the test split reproduces training's test report"
    );
    assert_eq!(eval["macro_f1"], meta["test"]["macro_f1"]);
    let preds = dir.path().join("preds.jsonl");
    medvec_ok(&[
        "classify",
        s(&store),
        "ham10000",
        "--head",
        "dx-early",
        "--filter",
        "split = \"test\"",
        "--out",
        s(&preds),
        "--batch",
        "7",
    ]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&preds)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, eval["rows"].as_u64().unwrap());
    for line in &lines {
        let total: f64 = line["probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "{line}");
    }
    let listed: Vec<serde_json::Value> = medvec_ok(&["heads", s(&store), "ham10000", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = listed.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec!["dx-early", "dx-late"],
        "the demo saved dx-late, this test dx-early"
    );
    medvec_ok(&["verify", s(&store)]);
}

#[test]
fn sweep_chooses_lambda_on_validation() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path());
    let out = medvec_json(&[
        "sweep",
        s(&store),
        "ham10000",
        "--head",
        "late",
        "--label",
        "dx",
        "--split-column",
        "split",
        "--from",
        "-1",
        "--to",
        "1",
        "--step",
        "1",
        "--epochs",
        "10",
        "--json",
    ]);
    let curve = out["curve"].as_array().unwrap();
    assert_eq!(
        curve
            .iter()
            .map(|c| c["lambda"].as_f64().unwrap())
            .collect::<Vec<_>>(),
        vec![-1.0, 0.0, 1.0]
    );
    let best_val = curve
        .iter()
        .map(|c| c["val_macro_f1"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let chosen = curve
        .iter()
        .find(|c| c["lambda"] == out["chosen_lambda"])
        .unwrap();
    assert_eq!(
        chosen["val_macro_f1"].as_f64().unwrap(),
        best_val,
        "λ is chosen by validation F1"
    );
    let bad = medvec_err(&[
        "train",
        s(&store),
        "ham10000",
        "--head",
        "late",
        "--label",
        "nope",
        "--name",
        "x",
    ]);
    assert!(bad.contains("nope"), "{bad}");
}
