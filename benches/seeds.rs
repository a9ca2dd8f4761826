//! Repeated grouped sweeps (issue 15): `sweep --seeds 5 --group-column G` against one sweep, on
//! the paper's BRSET shape (13,012 rows × (512 + 512), binary, ~12% positives), in one run.
//!
//! Target: five seeds take at most 5× one sweep, because the labelled rows are read once and
//! only the split and the training repeat. The run also times five separate sweeps (each reading
//! the rows again, as five `medvec sweep --seed S` commands would) to show what sharing saves.
//! Times are wall-clock and CPU (user + system); medians of `MEDVEC_BENCH_REPEATS` (3) runs.
//!
//! `cargo bench --bench seeds` (in-process, the library calls `medvec sweep` makes); environment:
//! `MEDVEC_BENCH_EPOCHS` (5), `MEDVEC_BENCH_REPEATS` (3), `MEDVEC_BENCH_SEEDS` (5).

#[path = "common/mod.rs"]
mod common;
use common::*;

use medvec_query::heads::SplitFractions;
use medvec_query::jobs::{lambda_grid, HeadChoice, TrainSettings};
use medvec_query::repeat::repeat_training;
use medvec_query::training::SplitSource;
use medvec_store::{PayloadField, Record, Schema, Store, Value, VectorField};
use std::time::Instant;

const ROWS: usize = 13_012;
const DIM: usize = 512;

/// A store of ROWS records: two 512-d fields with a label-dependent shift on every fifth
/// dimension, a binary label, and patients of 1–4 records each (the group column).
fn build_store(dir: &std::path::Path) -> std::sync::Arc<medvec_store::Collection> {
    let store = Store::create(dir).expect("create store");
    let schema = Schema {
        vectors: vec![
            VectorField::parse(&format!("image:{DIM}:cosine")).unwrap(),
            VectorField::parse(&format!("text:{DIM}:cosine")).unwrap(),
        ],
        payload: vec![
            PayloadField::parse("dr:string").unwrap(),
            PayloadField::parse("patient:string").unwrap(),
        ],
    };
    let cases = store
        .create_collection("cases", schema)
        .expect("collection");
    let mut rng = SplitMix(15);
    let (mut patient, mut left) = (0, 0);
    let records: Vec<Record> = (0..ROWS)
        .map(|i| {
            if left == 0 {
                patient += 1;
                left = 1 + (rng.unit() * 4.0) as usize;
            }
            left -= 1;
            let positive = rng.unit() < 0.12;
            let mut vector = || -> Vec<f32> {
                (0..DIM)
                    .map(|j| rng.unit() - 0.5 + if positive && j % 5 == 0 { 0.08 } else { 0.0 })
                    .collect()
            };
            let (image, text) = (vector(), vector());
            Record::new(format!("r{i:05}"))
                .with_vector("image", image)
                .with_vector("text", text)
                .with_value(
                    "dr",
                    Value::String(if positive { "yes" } else { "no" }.into()),
                )
                .with_value("patient", Value::String(format!("p{patient:05}")))
        })
        .collect();
    for chunk in records.chunks(2_000) {
        cases.upsert(chunk).expect("upsert");
    }
    cases.flush().expect("flush");
    cases
}

/// Wall and CPU seconds of `work`.
fn timed(work: impl FnOnce()) -> (f64, f64) {
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    work();
    (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

fn main() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    let epochs = env_usize("MEDVEC_BENCH_EPOCHS", 5);
    let repeats = env_usize("MEDVEC_BENCH_REPEATS", 3).max(1);
    let seeds = env_usize("MEDVEC_BENCH_SEEDS", 5).max(2);
    let dir = workspace().join("target/bench-data/seeds");
    let _ = std::fs::remove_dir_all(&dir);
    let cases = build_store(&dir);
    let settings = TrainSettings {
        head: HeadChoice::Late,
        label: "dr".into(),
        fields: Some(vec!["image".into(), "text".into()]),
        shift_pair: None,
        split: SplitSource::Grouped {
            column: "patient".into(),
            fractions: SplitFractions::default(),
            seed: 0,
        },
        max_epochs: epochs,
        dropout: 0.0,
        seed: 0,
    };
    let lambdas = lambda_grid(-1.0, 1.0, 0.5).expect("grid");
    let mut rows: [Vec<(f64, f64)>; 3] = Default::default();
    for round in 0..repeats {
        let single = timed(|| {
            settings
                .train(&cases, lambdas.clone(), &mut |_| {})
                .expect("sweep");
        });
        let shared = timed(|| {
            repeat_training(&cases, &settings, &lambdas, seeds, &mut |_| {}).expect("seeds");
        });
        let separate = timed(|| {
            for seed in 0..seeds as u64 {
                let run = settings.reseeded(seed);
                run.train(&cases, lambdas.clone(), &mut |_| {})
                    .expect("sweep");
            }
        });
        eprintln!(
            "bench: round {}: one sweep {:.1} s ({:.1} CPU-s), {seeds} seeds {:.1} s ({:.1}), {seeds} separate sweeps {:.1} s ({:.1})",
            round + 1, single.0, single.1, shared.0, shared.1, separate.0, separate.1
        );
        for (list, t) in rows.iter_mut().zip([single, shared, separate]) {
            list.push(t);
        }
    }
    let med = |list: &[(f64, f64)], cpu: bool| {
        median(list.iter().map(|t| if cpu { t.1 } else { t.0 }).collect())
    };
    println!(
        "\n{ROWS} rows × ({DIM} + {DIM}), late head, grouped split (patients of 1–4 records), {} λ ({:?}), {epochs} epochs, {} rayon threads; medians of {repeats} rounds\n",
        lambdas.len(),
        lambdas,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
    );
    println!("| run | wall s | CPU s | ÷ one sweep (wall) | ÷ one sweep (CPU) |\n|---|---:|---:|---:|---:|");
    let names = [
        "one sweep".to_string(),
        format!("`--seeds {seeds}` (rows read once)"),
        format!("{seeds} separate sweeps"),
    ];
    for (name, list) in names.iter().zip(&rows) {
        println!(
            "| {name} | {:.1} | {:.1} | {:.2}× | {:.2}× |",
            med(list, false),
            med(list, true),
            med(list, false) / med(&rows[0], false),
            med(list, true) / med(&rows[0], true)
        );
    }
    let ratio = med(&rows[1], true) / med(&rows[0], true);
    println!(
        "\ntarget: {seeds} seeds ≤ {seeds}× one sweep: {} ({ratio:.2}× per CPU-second)",
        if ratio <= seeds as f64 {
            "met"
        } else {
            "NOT met"
        }
    );
}
