//! `medvec ingest` of DICOM archives through the real binary: discovery by content, DICOMDIR,
//! rejects with their reasons, typed safe tags, keyed pseudonyms (checked against Python's
//! `hmac`), no identifier in the store, frames, windows recorded with the model, `dicom-tags`.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn fixtures() -> PathBuf {
    Path::new(REPO).join("fixtures")
}

fn dicom_dir() -> PathBuf {
    fixtures().join("dicom")
}

fn model(name: &str) -> String {
    s(&fixtures().join("models").join(name)).to_string()
}

/// Runs `medvec ingest STORE COLLECTION --image-model tiny-image ... extra`; returns the output.
fn ingest(store: &Path, collection: &str, extra: &[&str]) -> std::process::Output {
    let image_model = model("tiny-image");
    let mut args = vec![
        "ingest",
        s(store),
        collection,
        "--image-model",
        &image_model,
    ];
    args.extend_from_slice(extra);
    medvec(&args)
}

/// The fake identifiers `tools/make_dicom_fixtures.py` writes into every file.
const IDENTIFIERS: &[&str] = &[
    "DOE^JANE",
    "PID-0001",
    "NOWHERE GENERAL HOSPITAL",
    "ACC-1001",
];

fn rejects(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

fn get_payload(store: &Path, collection: &str, id: &str) -> serde_json::Value {
    medvec_json(&["get", s(store), collection, id, "--no-vectors"])["payload"].clone()
}

#[test]
fn a_dicom_folder_is_ingested_by_content_with_every_bad_file_rejected_for_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let rejects_file = dir.path().join("rejects.csv");
    let text_model = model("tiny-text");
    let out = ingest(
        &store,
        "scans",
        &[
            "--root",
            s(&dicom_dir()),
            "--text-model",
            &text_model,
            "--template",
            "dicom",
            "--rejects",
            s(&rejects_file),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "partial: {out:?}");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("ingested 30,"), "{said}");
    let reasons: std::collections::BTreeMap<String, (String, String)> = rejects(&rejects_file)
        .iter()
        .map(|r| (r[0].to_string(), (r[2].to_string(), r[3].to_string())))
        .collect();
    let expected = [
        ("bad/not_dicom", "not-dicom"),
        ("bad/truncated_pixels", "truncated-pixel-data"),
        ("bad/no_pixels_sr", "no-pixel-data"),
        ("bad/jpeg_ls", "unsupported-transfer-syntax"),
        ("bad/bomb_rle", "too-many-pixels"),
        ("bad/bomb_native", "too-many-pixels"),
        ("bad/encaps_outside", "bad-fragment-table"),
        ("bad/deep_sequence", "nesting-too-deep"),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
    for (id, reason) in expected {
        assert_eq!(reasons[id].0, reason, "{id}: {reasons:?}");
    }
    assert!(
        reasons["bad/jpeg_ls"].1.contains("1.2.840.10008.1.2.4.80"),
        "the transfer syntax UID is named: {reasons:?}"
    );
    // Found by content: the files without an extension, and those a DICOMDIR names.
    for id in [
        "detect/IM000001",
        "detect/IM000002",
        "dicomdir/PT000001/ST000000/SE000000/IM000000",
    ] {
        get_payload(&store, "scans", id);
    }
    let ct = get_payload(&store, "scans", "ct_s16_rescale");
    assert_eq!(ct["Modality"], "CT");
    assert_eq!(ct["BodyPartExamined"], "HEAD");
    assert_eq!(ct["PatientAge"], 2, "030M is 2 whole years: {ct}");
    assert_eq!(ct["Rows"], 64);
    assert_eq!(ct["PhotometricInterpretation"], "MONOCHROME2");
    assert!(ct.get("PatientName").is_none() && ct.get("PatientID").is_none());
    assert_eq!(ct["patient_key"].as_str().unwrap().len(), 64);
    let record = medvec_json(&["get", s(&store), "scans", "ct_s16_rescale"]);
    assert!(
        record["vectors"]["text"].is_array(),
        "the dicom template was encoded"
    );
    for bytes in store_bytes(&store) {
        for identifier in IDENTIFIERS {
            assert!(
                !contains(&bytes.1, identifier.as_bytes()),
                "{} holds `{identifier}`",
                bytes.0.display()
            );
        }
    }
    for identifier in IDENTIFIERS {
        assert!(
            !said.contains(identifier),
            "output shows `{identifier}`: {said}"
        );
        let rejects_text = std::fs::read_to_string(&rejects_file).unwrap();
        assert!(!rejects_text.contains(identifier), "{rejects_text}");
    }
}

/// Every file under the store, with its bytes.
fn store_bytes(store: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![store.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Ingests the whole fixture folder (its broken files make the run partial).
fn ingest_folder(store: &Path, collection: &str, rejects: &Path) {
    let root = dicom_dir();
    let out = ingest(
        store,
        collection,
        &["--root", s(&root), "--rejects", s(rejects)],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

/// The pseudonyms are HMAC-SHA-256 under the store's key, as Python's `hmac` computes them; the
/// key file is owner-only; one patient gets one key across files and collections.
#[test]
fn pseudonyms_are_keyed_hashes_that_group_a_patients_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ingest_folder(&store, "scans", &dir.path().join("r.csv"));
    let key_file = store.join("pseudonym.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let key = &std::fs::read(&key_file).unwrap()[64..];
    let python = std::env::var("MEDVEC_PYTHON").expect("MEDVEC_PYTHON (run tools/setup.sh)");
    let mut files: Vec<String> = std::fs::read_dir(dicom_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .map(|p| s(&p).to_string())
        .collect();
    files.sort();
    let ids: Vec<String> = files
        .iter()
        .map(|f| {
            Path::new(f)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(ids.len() >= 20, "{ids:?}");
    let script = "import hmac, hashlib, sys, pydicom\n\
                  key = bytes.fromhex(sys.argv[1])\n\
                  for f in sys.argv[2:]:\n\
                  \x20   ds = pydicom.dcmread(f)\n\
                  \x20   for v in (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID):\n\
                  \x20       print(hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest())";
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new(&python)
        .args(["-c", script, &hex])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut patients = std::collections::BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let payload = get_payload(&store, "scans", id.as_str());
        for (j, field) in ["patient_key", "study_key", "series_key"]
            .iter()
            .enumerate()
        {
            assert_eq!(payload[field], expected[3 * i + j], "{id} {field}");
        }
        patients.insert(expected[3 * i].clone());
    }
    assert!(
        patients.len() > 1 && patients.len() < ids.len(),
        "the fixtures share patients: {} distinct of {}",
        patients.len(),
        ids.len()
    );
    let first_key = get_payload(&store, "scans", "ct_s16_rescale")["patient_key"].clone();
    // A second collection in the same store gets the same patient's key.
    ingest_folder(&store, "again", &dir.path().join("r2.csv"));
    assert_eq!(
        get_payload(&store, "again", "ct_s16_rescale")["patient_key"],
        first_key
    );
}

#[test]
fn every_frame_can_be_a_record_and_a_dicomdir_is_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "id,path\ncine,multiframe_5f.dcm\n").unwrap();
    let out = ingest(
        &store,
        "frames",
        &[
            "--root",
            s(&dicom_dir()),
            "--manifest",
            s(&manifest),
            "--frames",
            "all",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    for frame in 0..5 {
        let payload = get_payload(&store, "frames", &format!("cine#{frame}"));
        assert_eq!(payload["frame"], frame);
        assert_eq!(payload["NumberOfFrames"], 5);
    }
    assert!(medvec(&["get", s(&store), "frames", "cine"]).status.code() != Some(0));
    // Re-running skips the file: its frames are already stored.
    let again = ingest(
        &store,
        "frames",
        &[
            "--root",
            s(&dicom_dir()),
            "--manifest",
            s(&manifest),
            "--frames",
            "all",
        ],
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("ingested 0, skipped 1"),
        "{again:?}"
    );

    let dicomdir = dicom_dir().join("dicomdir/DICOMDIR");
    let out = ingest(&store, "disc", &["--dicomdir", s(&dicomdir)]);
    assert!(out.status.success(), "{out:?}");
    let ids = medvec_ok(&[
        "export",
        s(&store),
        "disc",
        "--table",
        s(&dir.path().join("disc.csv")),
    ]);
    assert!(!ids.is_empty());
    let table = std::fs::read_to_string(dir.path().join("disc.csv")).unwrap();
    assert_eq!(table.lines().count(), 1 + 3, "{table}");
    assert!(
        table.contains("PT000002/ST000000/SE000000/IM000000"),
        "{table}"
    );
}

#[test]
fn identifying_tags_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "id,path\nct,ct_s16_rescale.dcm\n").unwrap();
    let root = dicom_dir();
    let base = ["--root", s(&root), "--manifest", s(&manifest)];
    let mut refused = base.to_vec();
    refused.extend(["--dicom-tags", "KVP,PatientName"]);
    let out = ingest(&store, "scans", &refused);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("PatientName") && err.contains("--allow-identifying-tags"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!store.join("collections/scans").exists(), "nothing written");

    let mut allowed = refused.clone();
    allowed.push("--allow-identifying-tags");
    let out = ingest(&store, "scans", &allowed);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        get_payload(&store, "scans", "ct")["PatientName"],
        "DOE^JANE"
    );

    let shown = medvec_ok(&["dicom-tags", s(&dicom_dir().join("ct_s16_rescale.dcm"))]);
    assert!(
        shown.contains("PatientName") && !shown.contains("DOE^JANE"),
        "{shown}"
    );
    assert!(
        shown.contains("Modality") && shown.contains(" CT"),
        "{shown}"
    );
    let verbose = medvec_ok(&[
        "--verbose",
        "dicom-tags",
        s(&dicom_dir().join("ct_s16_rescale.dcm")),
    ]);
    assert!(verbose.contains("DOE^JANE"), "{verbose}");
}

/// `--window` is recorded with the field's model: a DICOM query is windowed the same way (its
/// vector equals the stored one), and an ingest with another window into the field is refused.
#[test]
fn the_window_is_recorded_and_queries_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let manifest = dir.path().join("m.csv");
    std::fs::write(
        &manifest,
        "id,path\nct,ct_s16_rescale.dcm\nmr,mono2_u12_window.dcm\n",
    )
    .unwrap();
    let root = dicom_dir();
    let base = ["--root", s(&root), "--manifest", s(&manifest)];
    let with_window = |window: &str| {
        let mut args = base.to_vec();
        args.extend(["--window", window]);
        ingest(&store, "scans", &args)
    };
    assert!(with_window("-600,1500").status.success());
    let hits = medvec_json(&[
        "search",
        s(&store),
        "scans",
        "--field",
        "image",
        "--image",
        s(&dicom_dir().join("ct_s16_rescale.dcm")),
        "-k",
        "1",
        "--json",
    ]);
    assert_eq!(hits["hits"][0]["id"], "ct");
    let score = hits["hits"][0]["score"].as_f64().unwrap();
    assert!(score > 0.99999, "the query is windowed as stored: {score}");
    let default_window = medvec_json(&[
        "search",
        s(&store),
        "scans",
        "--field",
        "image",
        "--model",
        &model("tiny-image"),
        "--image",
        s(&dicom_dir().join("ct_s16_rescale.dcm")),
        "-k",
        "1",
        "--json",
    ]);
    let other = default_window["hits"][0]["score"].as_f64().unwrap();
    assert!(
        other < score - 1e-4,
        "another window gives another vector: {other} vs {score}"
    );
    // `embed --window` prints the vector the ingest stored.
    let embedded = medvec_json(&[
        "embed",
        "--image-model",
        &model("tiny-image"),
        "--window",
        "-600,1500",
        s(&dicom_dir().join("ct_s16_rescale.dcm")),
    ]);
    let vector: Vec<String> = embedded["vector"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.to_string())
        .collect();
    let by_vector = medvec_json(&[
        "search",
        s(&store),
        "scans",
        "--field",
        "image",
        "--vector",
        &vector.join(","),
        "-k",
        "1",
        "--json",
    ]);
    assert_eq!(by_vector["hits"][0]["id"], "ct");
    assert!(by_vector["hits"][0]["score"].as_f64().unwrap() > 0.99999);
    let out = with_window("none");
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("DICOM window"), "{err}");
}
