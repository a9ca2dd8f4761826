//! The ONNX encoders' errors on hostile input: damaged and oversized images, malformed model
//! folders and configs, and a missing or garbage ONNX Runtime library. Each is a typed error
//! naming the file, never a panic. (Parity with Python is `encode_parity.rs`.)
//!
//! Needs the ONNX Runtime library that `bash tools/setup.sh` installs; the runtime tests load it
//! in child processes, since it is loaded once per process.

use medvec_ingest::encode::{
    load_image, EncodeError, EncoderOptions, ImageEncoder, ImageLimits, Runtime, RuntimeOptions,
    TextEncoder,
};
use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{config_variant, fixtures, good_images};

fn runtime() -> Runtime {
    Runtime::load(&RuntimeOptions::default()).unwrap_or_else(|e| panic!("{e}"))
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
