//! `medvec ingest` records the models with the collection; `medvec search --image/--text` encodes
//! queries with exactly those models, and refuses a model that changed or differs.

mod util;

use std::path::{Path, PathBuf};
use util::{count_records, json_hits, medvec_err, medvec_ok, s};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the tiny image and text model folders in `dir`, so a test may damage them.
fn copy_models(dir: &Path) -> (PathBuf, PathBuf) {
    let copy = |name: &str| {
        let to = dir.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(repo().join("fixtures/models").join(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        to
    };
    (copy("tiny-image"), copy("tiny-text"))
}

fn ingest_args(store: &Path, image_model: &Path, text_model: &Path, rejects: &Path) -> Vec<String> {
    util::fixture_ingest_args(store, image_model, text_model, rejects)
}

/// Ingests the fixture archive (8 good rows) with copies of the tiny models.
fn ingested_store(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (image_model, text_model) = copy_models(dir);
    let store = dir.join("store");
    let args = ingest_args(&store, &image_model, &text_model, &dir.join("rejects.csv"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = util::medvec(&args);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (store, image_model, text_model)
}

fn hits(output: &str) -> Vec<(String, f64)> {
    json_hits(output)
}

/// The vector `medvec embed` prints, as `--vector` text.
fn embedded(args: &[&str]) -> String {
    let vector: Vec<String> = embedded_vector(args).iter().map(f32::to_string).collect();
    vector.join(",")
}

/// The vector `medvec embed` prints.
fn embedded_vector(args: &[&str]) -> Vec<f32> {
    let value: serde_json::Value = serde_json::from_str(medvec_ok(args).trim()).unwrap();
    value["vector"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn image_and_text_queries_use_the_recorded_models() {
    let dir = tempfile::tempdir().unwrap();
    let (store, image_model, text_model) = ingested_store(dir.path());
    let photo = repo().join("fixtures/images/rgb_100x75.png");
    let by_image = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--image",
        s(&photo),
        "-k",
        "3",
        "--json",
    ]);
    let top = hits(&by_image);
    assert_eq!(
        top[0].0, "ISIC_0027419",
        "the stored copy of the photo is nearest"
    );
    assert!(top[0].1 > 0.9999, "same model, same preprocessing: {top:?}");
    let vector = embedded(&["embed", "--image-model", s(&image_model), s(&photo)]);
    let by_vector = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--vector",
        &vector,
        "-k",
        "3",
        "--json",
    ]);
    assert_eq!(hits(&by_image).len(), 3);
    assert_eq!(
        top.iter().map(|h| &h.0).collect::<Vec<_>>(),
        hits(&by_vector).iter().map(|h| &h.0).collect::<Vec<_>>()
    );

    // A clinical description searching the images: cross-modal, with the gap closed.
    let text = "Patient diagnosed via histo. Age: 70 years. Sex: female. Localization: back.";
    let by_text = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--text",
        text,
        "--shift",
        "1.0",
        "-k",
        "8",
        "--exact",
        "--json",
    ]);
    let vector = embedded(&["embed", "--text-model", s(&text_model), "--text", text]);
    let by_text_vector = medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--query-modality",
        "text",
        "--vector",
        &vector,
        "--shift",
        "1.0",
        "-k",
        "8",
        "--exact",
        "--json",
    ]);
    let (a, b) = (hits(&by_text), hits(&by_text_vector));
    assert_eq!(a.len(), 8);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!((x.1 - y.1).abs() < 1e-5, "{a:?} vs {b:?}");
    }
    medvec_ok(&["verify", s(&store)]);
}

#[test]
fn a_different_model_for_a_filled_field_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, text_model) = ingested_store(dir.path());
    let other = repo().join("fixtures/models/tiny-clip");
    let args = ingest_args(&store, &other, &text_model, &dir.path().join("r.csv"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = medvec_err(&args);
    assert!(
        err.contains("field `image` holds vectors of image model"),
        "{err}"
    );
    assert!(err.contains("vision_model.onnx"), "{err}");
    assert_eq!(count_records(&store), 8);
}

#[test]
fn a_model_changed_on_disk_is_refused_unless_given_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let (store, image_model, _) = ingested_store(dir.path());
    let onnx = image_model.join("model.onnx");
    let mut bytes = std::fs::read(&onnx).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&onnx, &bytes).unwrap();
    let photo = repo().join("fixtures/images/rgb_100x75.png");
    let query = [
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--image",
        s(&photo),
    ];
    let err = medvec_err(&query);
    assert!(
        err.contains("changed since its vectors were ingested"),
        "{err}"
    );
    assert!(err.contains("model.onnx"), "{err}");

    let fixture = repo().join("fixtures/models/tiny-image");
    let mut explicit = query.to_vec();
    explicit.extend(["--model", s(&fixture), "--json"]);
    assert_eq!(hits(&medvec_ok(&explicit))[0].0, "ISIC_0027419");
}

#[test]
fn imported_vectors_have_no_model_to_encode_queries_with() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    util::create_cases(&store);
    let photo = repo().join("fixtures/images/rgb_100x75.png");
    let err = medvec_err(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--image",
        s(&photo),
    ]);
    assert!(
        err.contains("records an image model") && err.contains("--model"),
        "{err}"
    );
}

#[test]
fn a_damaged_model_record_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = ingested_store(dir.path());
    let record = store.join("collections/cases/models/image.model");
    let mut bytes = std::fs::read(&record).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&record, &bytes).unwrap();
    let err = medvec_err(&["verify", s(&store)]);
    assert!(err.contains("image.model"), "{err}");
    let photo = repo().join("fixtures/images/rgb_100x75.png");
    let err = medvec_err(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "image",
        "--image",
        s(&photo),
    ]);
    assert!(err.contains("image.model"), "{err}");
}

#[test]
fn model_overrides_are_recorded_and_used_for_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (image_model, text_model) = copy_models(dir.path());
    let store = dir.path().join("store");
    let mut args = ingest_args(&store, &image_model, &text_model, &dir.path().join("r.csv"));
    args.extend(["--text-pooling", "cls"].map(str::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(util::medvec(&args).status.code(), Some(3));
    let record = std::fs::read(store.join("collections/cases/models/text.model")).unwrap();
    let body = String::from_utf8_lossy(&record[64..]).to_string();
    assert!(body.contains("\"pooling\": \"cls\""), "{body}");

    // The stored text of a case, queried as text: identical only if the query is CLS-pooled too.
    let text = "Patient diagnosed via histo. Age: 80 years. Sex: male. Localization: scalp.";
    let top = hits(&medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "text",
        "--text",
        text,
        "-k",
        "1",
        "--exact",
        "--json",
    ]));
    assert!(top[0].1 > 0.99999, "{top:?}");
    let mean = embedded(&["embed", "--text-model", s(&text_model), "--text", text]);
    let top_mean = hits(&medvec_ok(&[
        "search",
        s(&store),
        "cases",
        "--field",
        "text",
        "--vector",
        &mean,
        "-k",
        "1",
        "--exact",
        "--json",
    ]));
    assert!(top_mean[0].1 < 0.9999, "mean pooling differs: {top_mean:?}");

    let bad = medvec_err(&[
        "ingest",
        s(&store),
        "other",
        "--root",
        s(dir.path()),
        "--image-model",
        s(&image_model),
        "--image-output",
        "nope",
    ]);
    assert!(bad.contains("nope"), "{bad}");
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// `ingest --jpeg-draft` is recorded with the image field's model: `search --image` decodes the
/// query the same way (the stored vector of a reduced JPEG comes back at score 1, which a
/// full-size decode does not give), `embed --jpeg-draft` prints the stored vector, and an ingest
/// without the flag into the same field is refused.
#[test]
fn jpeg_draft_is_recorded_and_used_for_image_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (image_model, _) = copy_models(dir.path());
    let store = dir.path().join("store");
    let root = repo().join("fixtures/images/draft");
    let ingest = |extra: &[&str]| {
        let mut args = vec!["ingest", s(&store), "photos", "--root", s(&root)];
        args.extend(["--image-model", s(&image_model)]);
        args.extend(extra);
        util::medvec(&args)
    };
    let out = ingest(&["--jpeg-draft"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = std::fs::read(store.join("collections/photos/models/image.model")).unwrap();
    let body = String::from_utf8_lossy(&record[64..]).to_string();
    assert!(
        body.contains("\"jpeg_draft\": true") && body.contains("\"version\": 2"),
        "{body}"
    );

    let photo = root.join("photo_520x390.jpg");
    let query = [
        "search",
        s(&store),
        "photos",
        "--field",
        "image",
        "--exact",
        "--json",
    ];
    let top = hits(&medvec_ok(
        &[&query[..], &["--image", s(&photo), "-k", "1"]].concat(),
    ));
    assert_eq!(top[0].0, "photo_520x390");
    assert!(
        top[0].1 > 0.99999,
        "the query is decoded with the draft too: {top:?}"
    );
    let embed = |extra: &[&str]| {
        let mut args = vec!["embed", "--image-model", s(&image_model)];
        args.extend(extra);
        args.push(s(&photo));
        embedded_vector(&args)
    };
    let (drafted, full) = (embed(&["--jpeg-draft"]), embed(&[]));
    assert!(
        cosine(&drafted, &full) < 0.99999,
        "the draft changes the vector"
    );
    let vector: Vec<String> = drafted.iter().map(f32::to_string).collect();
    let top = hits(&medvec_ok(
        &[&query[..], &["--vector", &vector.join(","), "-k", "1"]].concat(),
    ));
    assert!(top[0].1 > 0.99999, "{top:?}");

    let refused = ingest(&[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("JPEG draft decoding"),
        "{err}"
    );
}

/// An int8 export made by `tools/quantize_model.py` is chosen with `--image-model-file` and
/// recorded like any model: image queries are encoded with it (the stored vector comes back at
/// score 1), its vectors stay close to the fp32 model's, and an fp32 ingest into the field is
/// refused.
#[test]
fn a_quantised_model_file_is_recorded_and_used_for_image_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (image_model, _) = copy_models(dir.path());
    let python = std::env::var("MEDVEC_PYTHON").expect("MEDVEC_PYTHON (run tools/setup.sh)");
    let status = std::process::Command::new(python)
        .arg(repo().join("tools/quantize_model.py"))
        .arg(&image_model)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let quantised = "onnx/model_quantized.onnx";
    assert!(image_model.join(quantised).is_file());
    let store = dir.path().join("store");
    let root = repo().join("fixtures/images/draft");
    let ingest = |extra: &[&str]| {
        let mut args = vec!["ingest", s(&store), "photos", "--root", s(&root)];
        args.extend(["--image-model", s(&image_model)]);
        args.extend(extra);
        util::medvec(&args)
    };
    let out = ingest(&["--image-model-file", quantised]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let photo = root.join("photo_520x390.jpg");
    let top = hits(&medvec_ok(&[
        "search",
        s(&store),
        "photos",
        "--field",
        "image",
        "--exact",
        "--json",
        "--image",
        s(&photo),
        "-k",
        "1",
    ]));
    assert_eq!(top[0].0, "photo_520x390");
    // Dynamic int8 quantises activations with one scale per batch tensor, so a vector depends
    // a little on the images it was batched with: nearly 1, not exactly.
    assert!(
        top[0].1 > 0.9999,
        "the query uses the int8 model too: {top:?}"
    );
    let embed = |extra: &[&str]| {
        let mut args = vec!["embed", "--image-model", s(&image_model)];
        args.extend(extra);
        args.push(s(&photo));
        embedded_vector(&args)
    };
    let (int8, fp32) = (embed(&["--model-file", quantised]), embed(&[]));
    let c = cosine(&int8, &fp32);
    assert!(c < 0.99999 && c > 0.9, "int8 vs fp32 cosine {c}");
    let refused = ingest(&[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("model_quantized.onnx"),
        "{err}"
    );
}

/// A manifest of `rows` cases over the fixture images, with a label that follows the image, so
/// a head can learn it.
fn labelled_manifest(dir: &Path, rows: usize) -> PathBuf {
    let images = [
        ("rgb_100x75.png", "nv"),
        ("rgb_80x60.jpg", "mel"),
        ("gray_64x48.jpg", "nv"),
        ("tall_30x90.jpg", "mel"),
    ];
    let mut text = String::from("id,path,dx,dx_type,age,sex,localization\n");
    for i in 0..rows {
        let (image, dx) = images[i % images.len()];
        text.push_str(&format!(
            "case-{i:04},{image},{dx},histo,{},female,back\n",
            30 + i % 50
        ));
    }
    let path = dir.join("labelled.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn new_images_and_texts_are_classified_like_their_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let (image_model, text_model) = copy_models(dir.path());
    let store = dir.path().join("store");
    let manifest = labelled_manifest(dir.path(), 48);
    let images = repo().join("fixtures/images");
    medvec_ok(&[
        "ingest",
        s(&store),
        "cases",
        "--manifest",
        s(&manifest),
        "--root",
        s(&images),
        "--image-model",
        s(&image_model),
        "--text-model",
        s(&text_model),
        "--template",
        "ham10000",
    ]);
    medvec_ok(&[
        "train",
        s(&store),
        "cases",
        "--head",
        "late",
        "--label",
        "dx",
        "--split",
        "0.6,0.2,0.2",
        "--shift",
        "0.5",
        "--epochs",
        "5",
        "--name",
        "dx",
    ]);
    let photos = [images.join("rgb_80x60.jpg"), images.join("gray_64x48.jpg")];
    let texts = [
        "Patient diagnosed via histo. Age: 70 years. Sex: female. Localization: back.",
        "Age: 35 years.",
    ];
    let encoded = medvec_ok(&[
        "classify",
        s(&store),
        "cases",
        "--head",
        "dx",
        "--image",
        s(&photos[0]),
        s(&photos[1]),
        "--text",
        texts[0],
        texts[1],
    ]);

    // The same cases as vectors from `medvec embed`, through --input-npy.
    let image_rows: Vec<Vec<f32>> = photos
        .iter()
        .map(|p| embedded_vector(&["embed", "--image-model", s(&image_model), s(p)]))
        .collect();
    let text_rows: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| embedded_vector(&["embed", "--text-model", s(&text_model), "--text", t]))
        .collect();
    let (image_npy, text_npy) = (dir.path().join("i.npy"), dir.path().join("t.npy"));
    let write = |path: &Path, rows: &[Vec<f32>]| {
        medvec_ingest::npy::write_npy_f32(path, rows[0].len(), rows.iter().map(Vec::as_slice))
            .unwrap()
    };
    write(&image_npy, &image_rows);
    write(&text_npy, &text_rows);
    let ids = dir.path().join("ids.txt");
    std::fs::write(
        &ids,
        format!("{}\n{}\n", photos[0].display(), photos[1].display()),
    )
    .unwrap();
    let from_vectors = medvec_ok(&[
        "classify",
        s(&store),
        "cases",
        "--head",
        "dx",
        "--input-npy",
        &format!("image={},text={}", image_npy.display(), text_npy.display()),
        "--ids",
        s(&ids),
    ]);
    let rows = |csv: &str| -> Vec<Vec<String>> {
        csv.lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (a, b) = (rows(&encoded), rows(&from_vectors));
    assert_eq!(a.len(), 3, "header + 2 predictions: {encoded}");
    assert_eq!(a[0], b[0]);
    for (x, y) in a[1..].iter().zip(&b[1..]) {
        assert_eq!(x[..2], y[..2], "same id and class");
        // The last column is `error`, empty for a prediction.
        let (x, y) = (x.split_last().unwrap(), y.split_last().unwrap());
        assert_eq!((x.0.as_str(), y.0.as_str()), ("", ""));
        for (p, q) in x.1[2..].iter().zip(&y.1[2..]) {
            let (p, q): (f64, f64) = (p.parse().unwrap(), q.parse().unwrap());
            assert!((p - q).abs() < 1e-5, "{encoded} vs {from_vectors}");
        }
    }
    let err = medvec_err(&[
        "classify",
        s(&store),
        "cases",
        "--head",
        "dx",
        "--image",
        s(&photos[0]),
        "--text",
        "a",
        "b",
    ]);
    assert!(err.contains("pair up"), "{err}");
}
