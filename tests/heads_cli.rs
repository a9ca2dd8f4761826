//! train, heads, classify, eval and sweep on the demo fixtures, through the real binary.

mod util;

use util::*;

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
    assert!(meta["test"]["rows_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(
        meta["model_bytes"].as_u64().unwrap() as usize % 4,
        0,
        "f32 weights and u64 headers"
    );
    assert!(
        meta["model_bytes"].as_u64().unwrap() as usize
            > 4 * meta["params"].as_u64().unwrap() as usize
    );
    let confusion = trained["test_report"]["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        total,
        meta["rows"][2].as_u64().unwrap(),
        "every test row is in the confusion matrix"
    );
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
    let said = medvec_ok(&[
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
    assert_eq!(
        said.trim(),
        format!("{} predictions written to {}", lines.len(), s(&preds))
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&preds).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "predictions name patients' records: owner-only"
    );
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

fn jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_saved_knn_head_is_listed_evaluated_and_refuses_deleted_training_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path());
    let trained = medvec_json(&[
        "train",
        s(&store),
        "ham10000",
        "--head",
        "knn",
        "--k",
        "3",
        "--knn-weighting",
        "distance",
        "--label",
        "dx",
        "--split-column",
        "split",
        "--shift",
        "auto",
        "--name",
        "dx-knn",
        "--json",
    ]);
    let meta = &trained["meta"];
    assert_eq!(meta["fusion"], "knn");
    assert_eq!(meta["knn"]["k"], 3);
    assert_eq!(meta["knn"]["weighting"], "distance");
    assert_eq!(
        trained["curve"].as_array().unwrap().len(),
        21,
        "λ = −1..1 step 0.1"
    );
    let listed = medvec_ok(&["heads", s(&store), "ham10000", "--json"]);
    let knn_line: serde_json::Value = listed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|h| h["name"] == "dx-knn")
        .expect("heads lists the kNN head");
    assert_eq!(knn_line["meta"]["lambda"], meta["lambda"]);
    let eval = medvec_json(&[
        "eval",
        s(&store),
        "ham10000",
        "--head",
        "dx-knn",
        "--filter",
        "split = \"test\"",
        "--json",
    ]);
    assert_eq!(
        eval["macro_f1"], meta["test"]["macro_f1"],
        "the loaded kNN votes exactly as the trained one"
    );
    assert_eq!(eval["accuracy"], meta["test"]["accuracy"]);
    // Delete one training record: loading the head must fail and say why.
    let preds = dir.path().join("train.jsonl");
    medvec_ok(&[
        "classify",
        s(&store),
        "ham10000",
        "--head",
        "dx-knn",
        "--filter",
        "split = \"train\"",
        "--out",
        s(&preds),
    ]);
    let victim = jsonl(&preds)[0]["id"].as_str().unwrap().to_string();
    medvec_ok(&["delete", s(&store), "ham10000", &victim]);
    let err = medvec_err(&["classify", s(&store), "ham10000", "--head", "dx-knn"]);
    assert!(
        err.contains("1 of its") && err.contains(&victim) && err.contains("retrain"),
        "{err}"
    );
    // Listing still works: it reads metadata only.
    assert!(medvec_ok(&["heads", s(&store), "ham10000"]).contains("dx-knn"));
}

/// Exports the stored vectors, classifies them as new inputs, and compares with classifying
/// the stored records: same classes, same probabilities.
#[test]
fn classifying_exported_vectors_equals_classifying_the_stored_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path());
    let table = dir.path().join("meta.csv");
    for field in ["image", "text"] {
        let npy = dir.path().join(format!("{field}.npy"));
        medvec_ok(&[
            "export",
            s(&store),
            "ham10000",
            "--field",
            field,
            "--npy",
            s(&npy),
            "--table",
            s(&table),
        ]);
    }
    let csv = std::fs::read_to_string(&table).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let id_col = header.iter().position(|h| *h == "id").expect("id column");
    let ids: Vec<String> = lines
        .map(|l| l.split(',').nth(id_col).unwrap().to_string())
        .collect();
    let ids_file = dir.path().join("ids.txt");
    std::fs::write(&ids_file, ids.join("\n") + "\n").unwrap();
    let stored = dir.path().join("stored.jsonl");
    let fresh = dir.path().join("fresh.jsonl");
    medvec_ok(&[
        "classify",
        s(&store),
        "ham10000",
        "--head",
        "dx-late",
        "--out",
        s(&stored),
    ]);
    let image_spec = format!("image={}", s(&dir.path().join("image.npy")));
    let text_spec = format!("text={}", s(&dir.path().join("text.npy")));
    medvec_ok(&[
        "classify",
        s(&store),
        "ham10000",
        "--head",
        "dx-late",
        "--input-npy",
        &format!("{text_spec},{image_spec}"),
        "--ids",
        s(&ids_file),
        "--batch",
        "13",
        "--out",
        s(&fresh),
    ]);
    let stored = jsonl(&stored);
    let fresh: std::collections::HashMap<String, serde_json::Value> = jsonl(&fresh)
        .into_iter()
        .map(|p| (p["id"].as_str().unwrap().to_string(), p))
        .collect();
    assert_eq!(fresh.len(), ids.len());
    assert!(stored.len() > 50, "the demo has records with both vectors");
    for p in &stored {
        let q = &fresh[p["id"].as_str().unwrap()];
        assert_eq!(p["predicted"], q["predicted"], "{p} vs {q}");
        assert_eq!(p["probabilities"], q["probabilities"], "{p} vs {q}");
    }
    // Without --ids the rows are numbered; a missing field is named.
    let numbered = medvec_ok(&[
        "classify",
        s(&store),
        "ham10000",
        "--head",
        "dx-late",
        "--input-npy",
        &image_spec,
        "--input-npy",
        &text_spec,
    ]);
    assert!(
        numbered.lines().nth(1).unwrap().starts_with("0,"),
        "{numbered}"
    );
    let err = medvec_err(&[
        "classify",
        s(&store),
        "ham10000",
        "--head",
        "dx-late",
        "--input-npy",
        &image_spec,
    ]);
    assert!(err.contains("text=FILE.npy"), "{err}");
}

/// `<polyline` elements of `stroke` with exactly `points` points, and `<circle` elements filled
/// with `fill`, counted in an SVG document.
fn svg_counts(svg: &str, stroke: &str, points: usize, fill: &str) -> (usize, usize) {
    let tags: Vec<&str> = svg.split('<').skip(1).collect();
    let lines = tags
        .iter()
        .filter(|t| t.starts_with("polyline") && t.contains(&format!("stroke=\"{stroke}\"")))
        .filter(|t| {
            let pts = t
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            pts.split_whitespace().count() == points
        })
        .count();
    let dots = tags
        .iter()
        .filter(|t| t.starts_with("circle") && t.contains(&format!("fill=\"{fill}\"")))
        .count();
    (lines, dots)
}

#[test]
fn sweep_plot_writes_the_lambda_chart_and_the_pca_scatter() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path());
    let chart = dir.path().join("sweep.svg");
    let out = medvec_json(&[
        "sweep",
        s(&store),
        "ham10000",
        "--head",
        "early",
        "--label",
        "dx",
        "--split-column",
        "split",
        "--from",
        "-1",
        "--to",
        "1",
        "--step",
        "0.5",
        "--epochs",
        "3",
        "--plot",
        s(&chart),
        "--json",
    ]);
    assert_eq!(out["curve"].as_array().unwrap().len(), 5);
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // Validation (blue) and test (orange) curves, five λ each, one dot per λ.
    assert_eq!(svg_counts(&svg, "#1F77B4", 5, "#1F77B4"), (1, 5));
    assert_eq!(svg_counts(&svg, "#FF7F0E", 5, "#FF7F0E"), (1, 5));
    let pca = std::fs::read_to_string(dir.path().join("sweep.pca.svg")).unwrap();
    assert!(pca.starts_with("<svg") && pca.trim_end().ends_with("</svg>"));
    let image_dots = svg_counts(&pca, "-", 0, "#2CA02C").1;
    let text_dots = svg_counts(&pca, "-", 0, "#9467BD").1;
    assert!(image_dots > 20, "{image_dots} image points");
    assert_eq!(image_dots, text_dots, "one point per row and modality");
    assert_eq!(
        image_dots % 2,
        0,
        "before and after panels show the same rows"
    );
}

#[test]
fn sweep_over_seeds_plots_mean_curves_with_bands() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path());
    let chart = dir.path().join("bands.svg");
    let out = medvec_json(&[
        "sweep",
        s(&store),
        "ham10000",
        "--head",
        "early",
        "--label",
        "dx",
        "--from",
        "0",
        "--to",
        "1",
        "--step",
        "0.5",
        "--epochs",
        "3",
        "--seeds",
        "3",
        "--plot",
        s(&chart),
        "--json",
    ]);
    let bands = out["repeated"]["curve"].as_array().unwrap();
    assert_eq!(bands.len(), 3);
    let svg = std::fs::read_to_string(&chart).unwrap();
    // One shaded band (a polygon) per curve, 2 × 3 vertices (upper edge, then lower edge back).
    for fill in ["#1F77B4", "#FF7F0E"] {
        let polygons: Vec<&str> = svg
            .split('<')
            .filter(|t| t.starts_with("polygon") && t.contains(&format!("fill=\"{fill}\"")))
            .collect();
        assert_eq!(polygons.len(), 1, "{fill}: {svg}");
        let points = polygons[0].split("points=\"").nth(1).unwrap();
        assert_eq!(
            points.split('"').next().unwrap().split_whitespace().count(),
            6
        );
    }
    assert_eq!(svg_counts(&svg, "#1F77B4", 3, "#1F77B4"), (1, 3));
}
