//! The alignment shift, cross-modal retrieval and the gap report, checked against an independent
//! numpy / scikit-learn implementation (`tools/reference_alignment.py`).

use medvec_query::gap::gap_report;
use medvec_query::retrieval::search_shifted;
use medvec_query::Alignment;
use medvec_store::{Collection, Record, Schema, SearchParams, Store, VectorField};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

fn python() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidate = std::env::var_os("MEDVEC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join(".venv/bin/python"));
    assert!(
        candidate.exists(),
        "{} not found: run `bash tools/setup.sh` to install the Python references",
        candidate.display()
    );
    candidate
}

/// Two modalities in separate narrow cones with a shared per-record signal, like CLIP's.
fn gapped_pairs(n: usize, dim: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let axis = |rng: &mut StdRng| -> Vec<f32> {
        (0..dim).map(|_| rng.random_range(-1.0..1.0f32)).collect()
    };
    let (cone_a, cone_b) = (axis(&mut rng), axis(&mut rng));
    let clusters: Vec<Vec<f32>> = (0..12).map(|_| axis(&mut rng)).collect();
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..n {
        let shared = &clusters[i % clusters.len()];
        let noise = axis(&mut rng);
        a.push(
            (0..dim)
                .map(|j| 2.0 * cone_a[j] + shared[j] + 0.3 * noise[j])
                .collect(),
        );
        let noise = axis(&mut rng);
        b.push(
            (0..dim)
                .map(|j| 2.0 * cone_b[j] + shared[j] + 0.3 * noise[j])
                .collect(),
        );
    }
    (a, b)
}

fn store_of(a: &[Vec<f32>], b: &[Vec<f32>]) -> (tempfile::TempDir, Store, Arc<Collection>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("s")).unwrap();
    let dim = a[0].len();
    let schema = Schema {
        vectors: vec![
            VectorField::parse(&format!("image:{dim}:cosine")).unwrap(),
            VectorField::parse(&format!("text:{dim}:cosine")).unwrap(),
        ],
        payload: vec![],
    };
    let cases = store.create_collection("cases", schema).unwrap();
    let records: Vec<Record> = a
        .iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| {
            Record::new(format!("{i}"))
                .with_vector("image", x.clone())
                .with_vector("text", y.clone())
        })
        .collect();
    cases.upsert(&records).unwrap();
    cases.flush().unwrap();
    (dir, store, cases)
}

fn reference(
    a: &[Vec<f32>],
    b: &[Vec<f32>],
    lambda: f32,
    queries: &[Vec<f32>],
    k: usize,
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    let output = dir.path().join("out.json");
    let body = serde_json::json!({"a": a, "b": b, "lambda": lambda, "queries": queries, "k": k});
    std::fs::write(&input, body.to_string()).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/reference_alignment.py");
    let status = Command::new(python())
        .arg(script)
        .arg(&input)
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success(), "reference script failed");
    serde_json::from_str(&std::fs::read_to_string(output).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn assert_close(got: f64, want: f64, tolerance: f64, what: &str) {
    assert!(
        (got - want).abs() <= tolerance * (1.0 + want.abs()),
        "{what}: {got} vs reference {want}"
    );
}

#[test]
fn shift_retrieval_and_gap_match_numpy() {
    let (a, b) = gapped_pairs(400, 16, 1);
    let (queries, _) = gapped_pairs(12, 16, 2);
    let queries: Vec<Vec<f32>> = queries
        .iter()
        .map(|q| q.iter().rev().copied().collect())
        .collect();
    let lambda = 0.6;
    let want = reference(&a, &b, lambda, &queries, 5);
    let (_dir, _store, cases) = store_of(&a, &b);
    let alignment = Alignment::fit(&cases, "image", "text").unwrap();
    for (got, want) in alignment.delta.iter().zip(floats(&want["delta"])) {
        assert_close(f64::from(*got), want, 1e-6, "Δ");
    }
    for i in [0, 17, 399] {
        let shifted_a = alignment.shift_a(&a[i], lambda);
        let shifted_b = alignment.shift_b(&b[i], lambda);
        for (got, want) in shifted_a.iter().zip(floats(&want["a_shifted"][i])) {
            assert_close(f64::from(*got), want, 1e-5, "shifted image");
        }
        for (got, want) in shifted_b.iter().zip(floats(&want["b_shifted"][i])) {
            assert_close(f64::from(*got), want, 1e-5, "shifted text");
        }
    }
    let mut exact = SearchParams::top(5);
    exact.exact = true;
    let hits =
        search_shifted(&cases, "image", "text", &queries, &alignment, lambda, exact).unwrap();
    for (q, hits) in hits.iter().enumerate() {
        let ids: Vec<u64> = hits.iter().map(|h| h.id.parse().unwrap()).collect();
        let want_ids: Vec<u64> = want["topk"][q]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(ids, want_ids, "query {q}");
        for (hit, score) in hits.iter().zip(floats(&want["topk_scores"][q])) {
            assert_close(f64::from(hit.score), score, 1e-5, "shifted score");
        }
    }
    for (key, shift) in [("gap", None), ("gap_shifted", Some((&alignment, lambda)))] {
        let report = gap_report(&cases, "image", "text", None, shift).unwrap();
        let w = &want[key];
        assert_close(
            report.delta_norm,
            w["delta_norm"].as_f64().unwrap(),
            1e-6,
            "‖Δ‖",
        );
        assert_close(
            report.mean_paired_cosine,
            w["mean_paired_cosine"].as_f64().unwrap(),
            1e-6,
            "paired cosine",
        );
        assert_close(
            report.resultant_length_a,
            w["resultant_length_a"].as_f64().unwrap(),
            1e-6,
            "resultant a",
        );
        assert_close(
            report.resultant_length_b,
            w["resultant_length_b"].as_f64().unwrap(),
            1e-6,
            "resultant b",
        );
        assert_close(
            report.pca_variance_a,
            w["pca_variance_a"].as_f64().unwrap(),
            1e-5,
            "PCA variance a",
        );
        assert_close(
            report.pca_variance_b,
            w["pca_variance_b"].as_f64().unwrap(),
            1e-5,
            "PCA variance b",
        );
    }
    // λ = 1 moves both centroids to the midpoint before re-normalising, so the gap nearly closes.
    let open = gap_report(&cases, "image", "text", None, None).unwrap();
    let closed = gap_report(&cases, "image", "text", None, Some((&alignment, 1.0))).unwrap();
    assert!(
        closed.delta_norm < open.delta_norm / 4.0,
        "‖Δ‖ {} → {}",
        open.delta_norm,
        closed.delta_norm
    );
    assert!(closed.mean_paired_cosine > open.mean_paired_cosine + 0.2);
}

#[test]
fn shifted_graph_search_keeps_recall_against_exact_shifted_search() {
    let (a, b) = gapped_pairs(6000, 32, 3);
    let (mut queries, _) = gapped_pairs(200, 32, 3);
    queries.truncate(200);
    let text_queries: Vec<Vec<f32>> = b.iter().take(200).cloned().collect();
    let (_dir, _store, cases) = store_of(&a, &b);
    let alignment = Alignment::fit(&cases, "image", "text").unwrap();
    for (lambda, field, qs) in [
        (1.0f32, "text", &text_queries),
        (-0.5, "text", &text_queries),
        (0.7, "image", &queries),
    ] {
        let approx = search_shifted(
            &cases,
            "image",
            field,
            qs,
            &alignment,
            lambda,
            SearchParams::top(10),
        )
        .unwrap();
        let mut exact_params = SearchParams::top(10);
        exact_params.exact = true;
        let exact =
            search_shifted(&cases, "image", field, qs, &alignment, lambda, exact_params).unwrap();
        let found: usize = approx
            .iter()
            .zip(&exact)
            .map(|(g, t)| t.iter().filter(|h| g.iter().any(|x| x.id == h.id)).count())
            .sum();
        let recall = found as f64 / (exact.len() * 10) as f64;
        eprintln!("λ {lambda}, {field} queries: recall@10 {recall}");
        assert!(
            recall >= 0.95,
            "λ {lambda}, {field} queries: recall@10 {recall}"
        );
    }
}

#[test]
fn fitting_on_a_subset_and_unequal_dimensions() {
    let (a, b) = gapped_pairs(50, 8, 4);
    let (_dir, store, cases) = store_of(&a, &b);
    let whole = Alignment::fit(&cases, "image", "text").unwrap();
    let everything = medvec_store::Filter::parse("id != \"none\"").unwrap();
    let scanned = Alignment::fit_where(&cases, "image", "text", &everything).unwrap();
    for (x, y) in whole.delta.iter().zip(&scanned.delta) {
        assert!(
            (x - y).abs() < 1e-6,
            "running sums and a scan disagree: {x} vs {y}"
        );
    }
    let some = medvec_store::Filter::parse("id in (\"1\", \"2\", \"3\")").unwrap();
    assert_ne!(
        Alignment::fit_where(&cases, "image", "text", &some)
            .unwrap()
            .delta,
        whole.delta
    );
    let schema = Schema {
        vectors: vec![
            VectorField::parse("image:8:cosine").unwrap(),
            VectorField::parse("text:4:cosine").unwrap(),
        ],
        payload: vec![],
    };
    let odd = store.create_collection("odd", schema).unwrap();
    let err = Alignment::fit(&odd, "image", "text")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("equal dimension") && err.contains("`image` has 8"),
        "{err}"
    );
}
