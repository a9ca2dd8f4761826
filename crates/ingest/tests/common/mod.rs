//! Helpers shared by the ingest crate's parity and error tests: the workspace and its fixtures,
//! the reference Python (`MEDVEC_PYTHON`, set by `tools/.cache/env.sh`), and the pydicom wheel's
//! example files.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const SETUP: &str = "run `bash tools/setup.sh` from the repository root";

pub fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

pub fn python() -> PathBuf {
    [
        std::env::var_os("MEDVEC_PYTHON").map(PathBuf::from),
        Some(workspace().join(".venv/bin/python")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
    .unwrap_or_else(|| {
        panic!("no Python for the reference (MEDVEC_PYTHON unset, no .venv/bin/python): {SETUP}")
    })
}

/// Runs a Python tool of `tools/` and parses its JSON output.
pub fn python_json(script: &str, args: &[String], stdin: Option<&str>) -> Value {
    let mut child = Command::new(python())
        .arg(workspace().join("tools").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start Python: {e}; {SETUP}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script}: bad JSON ({e})"))
}

/// Absolute paths of files shipped in the pydicom wheel (`reference_dicom.py locate`).
pub fn locate(names: &[&str]) -> Vec<PathBuf> {
    let args: Vec<String> = std::iter::once("locate")
        .chain(names.iter().copied())
        .map(str::to_string)
        .collect();
    python_json("reference_dicom.py", &args, None)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let path = r["path"]
                .as_str()
                .unwrap_or_else(|| panic!("pydicom file missing: {r}; {SETUP}"));
            PathBuf::from(path)
        })
        .collect()
}

/// The pydicom wheel's files that `fixtures/dicom/README.md` lists as good inputs.
pub const PYDICOM_GOOD: &[&str] = &[
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_small_odd.dcm",
    "ExplVR_BigEnd.dcm",
    "image_dfl.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "examples_jpeg2k.dcm",
    "dicomdirtests/77654033/CR1/6154",
    // Beyond the README's list: more syntaxes and encoders from the same wheel.
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "693_J2KI.dcm",
    "liver_1frame.dcm",
    "dicomdirtests/77654033/CT2/17106",
    "dicomdirtests/98892003/MR1/15820",
    "liver_expb_1frame.dcm",
    "rtdose.dcm",
    "rtdose_expb.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "examples_overlay.dcm",
];

/// The repository's `fixtures/`.
pub fn fixtures() -> PathBuf {
    workspace().join("fixtures")
}

/// Every good fixture image (the files directly in fixtures/images; bad ones are in bad/).
pub fn good_images() -> Vec<PathBuf> {
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

/// A folder with the tiny-image files and a changed preprocessor_config.json.
pub fn config_variant(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> tempfile::TempDir {
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
