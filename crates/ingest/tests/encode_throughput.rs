//! Throughput of the image encoder on a ViT-B/32-shaped model (CLIP's image tower, random
//! weights). Not part of the normal run: generate the model, then run the ignored test.
//!
//! ```sh
//! .venv/bin/python tools/make_onnx_fixtures.py --bench-only   # target/bench-models/vit-b32 (~350 MB)
//! cargo test -p medvec-ingest --release --test encode_throughput -- --ignored --nocapture
//! ```

use image::{ImageFormat, RgbImage};
use medvec_ingest::encode::{EncoderOptions, ImageEncoder, Runtime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn bench_model() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models/vit-b32");
    assert!(
        dir.join("vision_model.onnx").is_file(),
        "{} is missing: run `.venv/bin/python tools/make_onnx_fixtures.py --bench-only`",
        dir.display()
    );
    dir
}

/// `n` camera-sized JPEGs (640x480, textured so decoding does real work).
fn photos(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let img = RgbImage::from_fn(640, 480, |x, y| {
                let v = (x * 7 + y * 13 + i as u32 * 31) ^ (x * y);
                image::Rgb([v as u8, (v >> 3) as u8, (x + y) as u8])
            });
            let path = dir.join(format!("photo_{i:03}.jpg"));
            img.save_with_format(&path, ImageFormat::Jpeg).unwrap();
            path
        })
        .collect()
}

#[test]
#[ignore = "needs target/bench-models/vit-b32 (tools/make_onnx_fixtures.py --bench-only); slow"]
fn vit_b32_throughput() {
    let model = bench_model();
    let runtime = Runtime::load(&RuntimeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let files = photos(dir.path(), 64);
    for batch_size in [1, 8, 32] {
        let options = EncoderOptions {
            batch_size,
            ..EncoderOptions::default()
        };
        let encoder = ImageEncoder::open(&runtime, &model, &options).unwrap();
        encoder.encode_files(&files[..batch_size.min(4)]).unwrap(); // warm-up
        let started = Instant::now();
        let vectors = encoder.encode_files(&files).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(vectors.len(), files.len());
        assert_eq!(vectors[0].len(), 512);
        println!(
            "vit-b32, batch {batch_size:>2}: {} JPEG files 640x480 in {seconds:.2} s = {:.2} images/s (decode + preprocess + model)",
            files.len(),
            files.len() as f64 / seconds
        );
    }
    // The share of the time that is not the model: decoding and preprocessing alone.
    let encoder = ImageEncoder::open(&runtime, &model, &EncoderOptions::default()).unwrap();
    let started = Instant::now();
    for f in &files {
        let img = medvec_ingest::encode::load_image(f, &Default::default()).unwrap();
        encoder.preprocess(&img).unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "decode + preprocess only, one thread: {:.1} images/s",
        files.len() as f64 / seconds
    );
}
