//! PCA-2 against scikit-learn, and the sweep charts parsed by an independent XML parser
//! (tools/reference_heads.py `pca` and `svg`).

mod heads_common;

use heads_common::{normal, reference, write_npy_f32};
use medvec_query::pca::Pca2;
use medvec_query::plot::{
    scatter_svg, sweep_chart_svg, CHOSEN_COLOR, IMAGE_COLOR, TEST_COLOR, TEXT_COLOR,
    VALIDATION_COLOR,
};
use medvec_query::training::{LambdaResult, ShiftScatter};
use ndarray::Array2;
use plotters::style::RGBColor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Two "modalities" as unit vectors in two cones (a gap along one axis), with decreasing
/// spread per dimension so the top two eigenvalues are well separated.
fn two_cones(rows: usize, dim: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::from_shape_fn((2 * rows, dim), |(r, j)| {
        let centre = if j == 0 {
            3.0
        } else if j == 1 && r >= rows {
            2.0
        } else {
            0.0
        };
        centre + normal(&mut rng) / (1.0 + j as f32)
    });
    for mut row in x.rows_mut() {
        let n = row.dot(&row).sqrt();
        row /= n;
    }
    x
}

fn check_pca(rows: usize, dim: usize, seed: u64) {
    let x = two_cones(rows, dim, seed);
    let refs: Vec<&[f32]> = x
        .rows()
        .into_iter()
        .map(|r| r.to_slice().unwrap())
        .collect();
    let pca = Pca2::fit(&refs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_npy_f32(&dir.path().join("x.npy"), &x);
    let theirs: Vec<Vec<f64>> =
        serde_json::from_value(reference("pca", dir.path())["projected"].clone()).unwrap();
    let ours: Vec<[f64; 2]> = refs.iter().map(|r| pca.project(r)).collect();
    for component in 0..2 {
        // Components are defined up to sign: fix it on the largest coordinate.
        let pivot = (0..ours.len())
            .max_by(|&a, &b| {
                theirs[a][component]
                    .abs()
                    .total_cmp(&theirs[b][component].abs())
            })
            .unwrap();
        let sign = (ours[pivot][component] * theirs[pivot][component]).signum();
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(o, t)| (sign * o[component] - t[component]).abs())
            .fold(0.0, f64::max);
        println!(
            "{rows}x2 rows, dim {dim}: PC{} max |Δ| {worst:.2e}",
            component + 1
        );
        assert!(worst < 1e-6, "PC{}: max difference {worst}", component + 1);
    }
}

#[test]
fn pca_projection_matches_scikit_learn_up_to_sign() {
    check_pca(300, 48, 5);
    check_pca(150, 512, 6);
}

#[test]
fn pca_refuses_too_little_data() {
    assert!(Pca2::fit(&[&[1.0, 2.0][..]]).is_err());
    assert!(Pca2::fit(&[&[1.0, 2.0][..], &[1.0][..]]).is_err());
}

fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// Parses `svg` with Python's XML parser (so it must be well-formed) and returns the summary.
fn parse_svg(svg: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chart.svg"), svg).unwrap();
    let parsed = reference("svg", dir.path());
    assert_eq!(parsed["root"], "svg");
    parsed
}

/// Polylines of `colour` that have `points` points.
fn polylines(parsed: &serde_json::Value, colour: RGBColor, points: u64) -> usize {
    parsed["polylines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["stroke"] == hex(colour) && p["points"] == points)
        .count()
}

fn circles(parsed: &serde_json::Value, colour: RGBColor) -> u64 {
    parsed["circles"][hex(colour)].as_u64().unwrap_or(0)
}

fn curve(lambdas: &[f32], with_test: bool) -> Vec<LambdaResult> {
    lambdas
        .iter()
        .map(|&lambda| LambdaResult {
            lambda,
            val_macro_f1: 0.7 + 0.1 * f64::from(lambda).sin(),
            test_macro_f1: with_test.then_some(0.65 + 0.05 * f64::from(lambda).cos()),
            test_accuracy: None,
        })
        .collect()
}

#[test]
fn sweep_chart_draws_each_curve_with_one_point_per_lambda_and_marks_the_choice() {
    let lambdas: Vec<f32> = (0..9).map(|i| -1.0 + 0.25 * i as f32).collect();
    let parsed = parse_svg(&sweep_chart_svg(&curve(&lambdas, true), 0.5).unwrap());
    let n = lambdas.len() as u64;
    assert_eq!(polylines(&parsed, VALIDATION_COLOR, n), 1, "{parsed}");
    assert_eq!(polylines(&parsed, TEST_COLOR, n), 1, "{parsed}");
    assert_eq!(circles(&parsed, VALIDATION_COLOR), n);
    assert_eq!(circles(&parsed, TEST_COLOR), n);
    assert_eq!(
        circles(&parsed, CHOSEN_COLOR),
        1,
        "one ring at the chosen λ"
    );
    assert_eq!(
        polylines(&parsed, CHOSEN_COLOR, 2),
        2,
        "vertical line + legend"
    );

    // Without test scores there is no test curve.
    let parsed = parse_svg(&sweep_chart_svg(&curve(&lambdas, false), 0.5).unwrap());
    assert_eq!(circles(&parsed, TEST_COLOR), 0);
    assert_eq!(polylines(&parsed, VALIDATION_COLOR, n), 1);
    assert!(sweep_chart_svg(&[], 0.0).is_err());
}

#[test]
fn scatter_draws_every_point_of_both_modalities_in_both_panels() {
    let points = |n: usize, offset: f64| -> Vec<[f64; 2]> {
        (0..n)
            .map(|i| [offset + (i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()])
            .collect()
    };
    let scatter = ShiftScatter {
        lambda: 0.7,
        before: [points(40, 1.0), points(40, -1.0)],
        after: [points(40, 0.3), points(40, -0.3)],
    };
    let parsed = parse_svg(&scatter_svg(&scatter, "image", "text").unwrap());
    assert_eq!(circles(&parsed, IMAGE_COLOR), 80, "{parsed}");
    assert_eq!(circles(&parsed, TEXT_COLOR), 80, "{parsed}");
}
