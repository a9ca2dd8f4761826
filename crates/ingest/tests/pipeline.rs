//! The archive-ingest pipeline over `fixtures/archive/manifest.csv` with the tiny models: good
//! rows stored with the encoders' vectors, bad rows in the rejects file with their reasons,
//! resume, dry run.

use medvec_ingest::archive::ArchiveSource;
use medvec_ingest::encode::{EncoderOptions, ImageEncoder, Runtime, RuntimeOptions, TextEncoder};
use medvec_ingest::pipeline::{check_archive, ingest_archive, Encoders, IngestOptions};
use medvec_ingest::template::Template;
use medvec_store::{Collection, PayloadField, Schema, Store, Value, VectorField};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

struct Models {
    image: ImageEncoder,
    text: TextEncoder,
    template: Template,
}

fn models() -> Models {
    let runtime =
        Runtime::load(&RuntimeOptions::default()).expect("ONNX Runtime (bash tools/setup.sh)");
    let options = EncoderOptions::default();
    Models {
        image: ImageEncoder::open(&runtime, &fixtures().join("models/tiny-image"), &options)
            .unwrap(),
        text: TextEncoder::open(&runtime, &fixtures().join("models/tiny-text"), &options).unwrap(),
        template: Template::preset("ham10000").unwrap(),
    }
}

fn collection(store: &Store) -> Arc<Collection> {
    let schema = Schema {
        vectors: vec![
            VectorField::parse("image:32:cosine").unwrap(),
            VectorField::parse("text:32:cosine").unwrap(),
        ],
        payload: ["dx:string", "age:int", "sex:string", "split:string"]
            .iter()
            .map(|s| PayloadField::parse(s).unwrap())
            .collect(),
    };
    store.create_collection("ham10000", schema).unwrap()
}

fn options(rejects: &Path) -> IngestOptions {
    let source = ArchiveSource::Manifest(fixtures().join("archive/manifest.csv"));
    let mut options = IngestOptions::new(source, fixtures().join("images"));
    options.batch = 3; // several chunks, rejects spread across them
    options.rejects = Some(rejects.to_path_buf());
    options
}

fn manifest() -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(fixtures().join("archive/manifest.csv")).unwrap();
    reader.deserialize().map(Result::unwrap).collect()
}

fn read_rejects(path: &Path) -> BTreeMap<String, (String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["id", "path", "reason", "detail"]
    );
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), (r[1].to_string(), r[2].to_string()))
        })
        .collect()
}

#[test]
fn ingests_rejects_resumes_and_dry_runs() {
    let models = models();
    let encoders = Encoders {
        image: &models.image,
        text: Some((&models.text, &models.template)),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store")).unwrap();
    let cases = collection(&store);
    let rejects = dir.path().join("rejects.csv");

    // Dry run: everything checked, nothing written.
    let mut dry = options(&rejects);
    dry.dry_run = true;
    let summary = ingest_archive(&cases, encoders, &dry, |_| {}).unwrap();
    assert_eq!(
        (summary.ingested, summary.skipped, summary.rejected),
        (8, 0, 8)
    );
    assert_eq!(cases.len(), 0);
    assert!(!rejects.exists());
    let checked = check_archive(encoders, &dry, |_| {}).unwrap();
    assert_eq!((checked.ingested, checked.rejected), (8, 8));

    // Real run.
    let mut seen = Vec::new();
    let summary = ingest_archive(&cases, encoders, &options(&rejects), |p| seen.push(*p)).unwrap();
    assert_eq!(
        (summary.ingested, summary.skipped, summary.rejected),
        (8, 0, 8)
    );
    assert!(!summary.complete());
    assert_eq!(seen.len(), 6, "16 rows in chunks of 3");
    assert!(
        seen.iter().all(|p| p.total == 16),
        "the total is known up front (ETA)"
    );
    assert_eq!(seen.last().unwrap().rows, 16);
    assert_eq!(cases.len(), 8);
    check_records(&cases, &models);
    check_rejects(&rejects);

    // Resume: the stored rows are skipped, the bad ones rejected again.
    let summary = ingest_archive(&cases, encoders, &options(&rejects), |_| {}).unwrap();
    assert_eq!(
        (summary.ingested, summary.skipped, summary.rejected),
        (0, 8, 8)
    );
    assert_eq!(cases.len(), 8);
    check_rejects(&rejects);
}

fn check_records(cases: &Collection, models: &Models) {
    let images = fixtures().join("images");
    for row in manifest().iter().filter(|r| r["id"].starts_with("ISIC_")) {
        let record = cases.get(&row["id"]).unwrap().unwrap();
        let want = models
            .image
            .encode_files(&[images.join(&row["path"])])
            .unwrap();
        assert_eq!(record.vectors["image"], want[0], "{}", row["id"]);
        let cell = |c: &str| row.get(c).cloned();
        let text = models.template.render(&cell).unwrap();
        let want = models.text.encode(&[text]).unwrap();
        assert_eq!(record.vectors["text"], want[0], "{}", row["id"]);
        assert_eq!(record.payload["dx"], Value::String(row["dx"].clone()));
        assert_eq!(record.payload["split"], Value::String(row["split"].clone()));
    }
    // "80.0" parses as an int; the missing age is null.
    assert_eq!(
        cases.get("ISIC_0025030").unwrap().unwrap().payload["age"],
        Value::Int(80)
    );
    assert_eq!(
        cases.get("ISIC_0033391").unwrap().unwrap().payload["age"],
        Value::Null
    );
}

fn check_rejects(path: &Path) {
    let rejects = read_rejects(path);
    let reasons: BTreeMap<&str, &str> = rejects
        .iter()
        .map(|(id, (_, reason))| (id.as_str(), reason.as_str()))
        .collect();
    let want = BTreeMap::from([
        ("BAD_truncated_jpg", "truncated"),
        ("BAD_truncated_png", "truncated"),
        ("BAD_empty", "zero-byte"),
        ("BAD_not_an_image", "not-an-image"),
        ("BAD_bomb", "too-many-pixels"),
        ("BAD_missing", "missing"),
        ("BAD_escape", "escapes-root"),
        ("BAD_absolute", "escapes-root"),
    ]);
    assert_eq!(reasons, want);
    assert_eq!(rejects["BAD_escape"].0, "../README.md");
}

#[test]
fn wrong_dimension_is_an_error_before_any_work() {
    let models = models();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store")).unwrap();
    let schema = Schema {
        vectors: vec![VectorField::parse("image:8:cosine").unwrap()],
        payload: vec![],
    };
    let cases = store.create_collection("c", schema).unwrap();
    let encoders = Encoders {
        image: &models.image,
        text: None,
    };
    let err = ingest_archive(
        &cases,
        encoders,
        &options(&dir.path().join("r.csv")),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("dimension 8"), "{err}");
}
