//! Training and inference speed of the fusion heads at the paper's BRSET shapes
//! (method.md §5: 13,012 training rows; 0.95 s/epoch for CLIP 512+512 and 1.54 s/epoch
//! for LLaMA-2 4096 + DINOv2 768, early fusion, 2 CPU cores).
//!
//! `cargo run -p medvec-query --release --example heads_bench [epochs]`

use std::time::Instant;

use medvec_query::heads::{train, HeadSpec, Inputs, Labelled, TrainConfig};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TRAIN_ROWS: usize = 13_012;
const TEST_ROWS: usize = 3_254;

/// Binary data with ~12% positives and a weak label-dependent shift (BRSET-like balance).
fn data(rows: usize, dims: (usize, usize), seed: u64) -> (Array2<f32>, Array2<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<usize> = (0..rows)
        .map(|_| usize::from(rng.random::<f32>() < 0.12))
        .collect();
    let mut fill = |d: usize| {
        Array2::from_shape_fn((rows, d), |(r, j)| {
            let shift = if labels[r] == 1 && j % 7 == 0 {
                0.05
            } else {
                0.0
            };
            (rng.random::<f32>() - 0.5) * 0.1 + shift
        })
    };
    let text = fill(dims.0);
    let image = fill(dims.1);
    (text, image, labels)
}

/// User + system CPU seconds of this process (Linux /proc), to see compute apart from
/// contention with other processes on a shared machine.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

fn bench(spec: HeadSpec, dims: (usize, usize), epochs: usize) {
    let (tt, ti, tl) = data(TRAIN_ROWS, dims, 1);
    let (vt, vi, vl) = data(TEST_ROWS, dims, 2);
    let train_set = Labelled::new(Inputs::new(tt.view(), ti.view()).unwrap(), &tl).unwrap();
    let val_set = Labelled::new(Inputs::new(vt.view(), vi.view()).unwrap(), &vl).unwrap();
    let config = TrainConfig {
        max_epochs: epochs,
        patience: None,
        ..TrainConfig::default()
    };
    let cpu0 = cpu_seconds();
    let head = train(&spec, &train_set, &val_set, &config).unwrap();
    let cpu = cpu0.zip(cpu_seconds()).map_or(f64::NAN, |(a, b)| b - a);
    let secs: Vec<f64> = head.history().iter().map(|r| r.train_seconds).collect();
    let mean = secs.iter().sum::<f64>() / secs.len() as f64;
    let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
    let t0 = Instant::now();
    let reps = 5;
    for _ in 0..reps {
        std::hint::black_box(head.predict_proba(train_set.inputs()).unwrap());
    }
    let infer = t0.elapsed().as_secs_f64() / reps as f64;
    let val_total: f64 = head.history().iter().map(|r| r.val_seconds).sum();
    let cpu_per_epoch = cpu / secs.len() as f64;
    println!(
        "{:<5} {:>4}+{:<4} params {:>7}  train {:.3} s/epoch (min {:.3}, {} epochs; CPU {:.3} s/epoch incl. {:.3} s validation)  \
         inference {:.3} s per {} rows = {:.0} rows/s ({:.3} s per {} test rows)",
        format!("{:?}", spec.fusion),
        dims.0,
        dims.1,
        head.param_count(),
        mean,
        min,
        secs.len(),
        cpu_per_epoch,
        val_total / secs.len() as f64,
        infer,
        TRAIN_ROWS,
        TRAIN_ROWS as f64 / infer,
        infer * TEST_ROWS as f64 / TRAIN_ROWS as f64,
        TEST_ROWS
    );
}

fn main() {
    let epochs = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    for threads in [rayon::current_num_threads(), 1] {
        println!("--- {threads} thread(s), batch 64, AdamW, balanced BCE ---");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for dims in [(512, 512), (4096, 768)] {
                for spec in [HeadSpec::early(), HeadSpec::late()] {
                    bench(spec, dims, epochs);
                }
            }
        });
    }
}
