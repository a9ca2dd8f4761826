//! Replays the fuzz seed corpus (`tests/fuzz/corpus/<target>/`) and every recorded crash
//! (`tests/fuzz/regressions/<target>/`) through the same entry points the libFuzzer targets
//! call, so the stable toolchain and CI exercise them without cargo-fuzz. `tools/fuzz.sh` runs
//! the real fuzzers (nightly).
//!
//! The seed corpus is made by the real writers: `MEDVEC_WRITE_SEEDS=1 cargo test --release
//! --test fuzz_corpus -- --ignored write_seed_corpus` rewrites it.

use medvec_ingest::fuzz_entry as ingest;
use medvec_store::fuzz_entry as store;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

type Entry = fn(&[u8]);

const TARGETS: &[(&str, Entry)] = &[
    ("wal_frames", store::wal_frames),
    ("segment_files", store::segment_files),
    ("manifest", store::manifest),
    ("filter", store::filter),
    ("npy", ingest::npy),
    ("npy_table", ingest::npy_table),
    ("csv_import", ingest::csv_import),
    ("jsonl_import", ingest::jsonl_import),
    ("template", ingest::template),
    ("preprocessor_config", ingest::preprocessor_config),
    ("image_file", ingest::image_file),
    ("dicom", medvec_ingest::dicom::fuzz::dicom),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file through `entry`; returns the files that panicked, with the message.
fn replay(entry: Entry, files: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for file in files {
        let data = std::fs::read(file).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    failures
}

#[test]
fn every_target_has_seeds_and_every_seed_and_regression_replays_cleanly() {
    let mut failures = Vec::new();
    for (name, entry) in TARGETS {
        let seeds = files_in(&fuzz_dir().join("corpus").join(name));
        assert!(
            seeds.len() >= 3,
            "target {name} has {} seed files; the corpus is missing",
            seeds.len()
        );
        let regressions = files_in(&fuzz_dir().join("regressions").join(name));
        failures.extend(replay(*entry, &seeds));
        failures.extend(replay(*entry, &regressions));
    }
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}

#[test]
fn every_fuzz_target_is_replayed_here() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut on_disk: Vec<String> = files_in(&dir)
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut replayed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    replayed.sort();
    assert_eq!(on_disk, replayed);
}

/// The replay notices a panicking entry point (so the test above can fail).
#[test]
fn a_panicking_entry_is_reported_with_its_file() {
    fn boom(data: &[u8]) {
        assert!(data.is_empty(), "boom");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash-1");
    std::fs::write(&file, b"x").unwrap();
    let failures = replay(boom, std::slice::from_ref(&file));
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("crash-1") && failures[0].contains("boom"));
}

/// Writes one seed file, named after its content's role.
fn seed(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn npy_bytes(dim: usize, rows: &[Vec<f32>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.npy");
    medvec_ingest::npy::write_npy_f32(&path, dim, rows.iter().map(Vec::as_slice)).unwrap();
    std::fs::read(path).unwrap()
}

/// A hand-made `.npy` with any header text (for shapes and dtypes the writer never makes).
fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut text = header.to_string();
    while !(10 + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    out
}

/// `[offset u32][xor byte]` patches for the segment target.
fn patches(list: &[(u32, u8)]) -> Vec<u8> {
    list.iter()
        .flat_map(|(at, x)| at.to_le_bytes().into_iter().chain([*x]))
        .collect()
}

fn write_store_seeds() {
    // WAL: the template's real frames, a torn copy, and one bare frame body.
    let wal_name = store::template_files()
        .into_iter()
        .find(|f| f.starts_with("wal-"))
        .unwrap();
    let wal = store::template_file(&wal_name);
    let frames = &wal[64..];
    seed("wal_frames", "frames", &[[0].as_slice(), frames].concat());
    seed(
        "wal_frames",
        "torn",
        &[[0].as_slice(), &frames[..frames.len() - 5]].concat(),
    );
    seed("wal_frames", "empty", &[0]);
    let first_len = u32::from_le_bytes(frames[0..4].try_into().unwrap()) as usize;
    seed(
        "wal_frames",
        "one-body",
        &[[1].as_slice(), &frames[8..8 + first_len]].concat(),
    );
    seed(
        "wal_frames",
        "huge-length",
        &[0, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4],
    );

    // Segments: XOR patches in each file, read-only (0-3, codes 16) and as a writer (8-11, codes
    // 24); tiny bodies.
    let files = ["ids", "payload", "column", "graph", "codes"];
    for (i, file) in files.iter().enumerate() {
        let i = if *file == "codes" { 16 } else { i as u8 };
        let p = patches(&[(0, 0x01), (17, 0x80), (4000, 0xff), (65_537, 0x10)]);
        seed(
            "segment_files",
            &format!("{file}-patch"),
            &[[i | 4].as_slice(), &p].concat(),
        );
        seed(
            "segment_files",
            &format!("{file}-patch-write"),
            &[[i | 12].as_slice(), &p].concat(),
        );
        seed("segment_files", &format!("{file}-empty"), &[i]);
    }
    seed(
        "segment_files",
        "graph-header-words",
        &[[3 | 4].as_slice(), &patches(&[(4, 0x0f), (8, 0x40)])].concat(),
    );
    seed(
        "segment_files",
        "codes-ranges",
        &[[16 | 4].as_slice(), &patches(&[(2, 0x7f), (3, 0xff)])].concat(),
    );
    seed("segment_files", "untouched", &[4]);

    // Manifests: the template's, and edits of it that point outside or out of range.
    let manifest = String::from_utf8(store::template_file("MANIFEST")[64..].to_vec()).unwrap();
    seed("manifest", "template", manifest.as_bytes());
    let edits: &[(&str, &str, &str)] = &[
        (
            "wal-parent",
            "\"wal\": \"wal-",
            "\"wal\": \"../../escaped-wal-",
        ),
        (
            "wal-absolute",
            "\"wal\": \"wal-",
            "\"wal\": \"/tmp/medvec-fuzz-absolute-wal-",
        ),
        (
            "segment-id-huge",
            "\"id\": 1,",
            "\"id\": 18446744073709551615,",
        ),
        ("rows-more", "\"rows\": 40,", "\"rows\": 41,"),
        ("dim-zero", "\"dim\": 2,", "\"dim\": 0,"),
        ("dim-three", "\"dim\": 2,", "\"dim\": 3,"),
        ("m-huge", "\"m\": 2,", "\"m\": 100000,"),
        (
            "deleted-beyond",
            "\"deleted\": [",
            "\"deleted\": [4294967295, ",
        ),
    ];
    for (name, from, to) in edits {
        assert!(manifest.contains(from), "{from} not in the manifest");
        seed("manifest", name, manifest.replacen(from, to, 1).as_bytes());
    }
    seed(
        "manifest",
        "truncated",
        &manifest.as_bytes()[..manifest.len() / 2],
    );
    seed("manifest", "not-json", b"\x00\xffMEDVEC");

    let filters = [
        r#"n >= 50 and (s = "mel" or s in ("a", "b")) and not b"#,
        r#"id = "r1" or f < -1.5e3 or n != 9223372036854775807"#,
        r#"s is null or f is not null and b = true"#,
        r#"n not in (1, 2, 3) and s > "x\"y\\z""#,
        "((((((((((n = 1))))))))))",
        "n >= ",
        "unknown = 1",
    ];
    for (i, text) in filters.iter().enumerate() {
        seed("filter", &format!("expr-{i}"), text.as_bytes());
    }
    seed(
        "filter",
        "deep",
        format!("{}n = 1{}", "(".repeat(200), ")".repeat(200)).as_bytes(),
    );
}

fn write_ingest_seeds() {
    let rows = vec![vec![0.5, -1.0], vec![3.0, 4.0], vec![1e30, 0.0]];
    let good = npy_bytes(2, &rows);
    seed("npy", "f32", &good);
    seed("npy", "truncated", &good[..good.len() - 3]);
    let f64_data: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|x| x.to_be_bytes()).collect();
    seed(
        "npy",
        "f64-be",
        &npy_with_header(
            "{'descr': '>f8', 'fortran_order': False, 'shape': (1, 2), }",
            &f64_data,
        ),
    );
    seed(
        "npy",
        "one-dim",
        &npy_with_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            &[0; 8],
        ),
    );
    seed(
        "npy",
        "negative",
        &npy_with_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }",
            &[0; 8],
        ),
    );
    seed("npy", "huge", &npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 4611686018427387904), }", &[0; 8]));
    seed(
        "npy",
        "fortran",
        &npy_with_header(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }",
            &[0; 8],
        ),
    );

    let table = "id,n,s,f,b\na,1,x,0.5,true\nb,,y,,false\nc,3,,1e3,\n";
    let mut npy_table = vec![(good.len() / 4) as u8];
    npy_table.extend_from_slice(&good[..(good.len() / 4) * 4]);
    npy_table.extend_from_slice(table.as_bytes());
    assert_eq!(good.len() % 4, 0);
    seed("npy_table", "three-rows", &npy_table);
    let mut short = npy_table.clone();
    short.truncate(short.len() - 14);
    seed("npy_table", "table-short", &short);
    seed("npy_table", "empty", &[0]);

    let csvs: &[(&str, &[u8])] = &[
        ("good", b"id,n,s,f,b,v0,v1\na,1,mel,0.5,true,1,2\nb,,nv,,,,\n\"c,d\",3,\"q\"\"x\",1e3,false,-1,0.25\n"),
        ("nul", b"id,n,s,v0,v1\na,1,m\x00l,1,2\n"),
        ("invalid-utf8", b"id,n,s,v0,v1\na,1,\xff\xfe,1,2\n"),
        ("ragged", b"id,v0,v1\na,1\nb,1,2,3\n"),
        ("bad-ids", b"id,v0,v1\n,1,2\n\"a\x01b\",1,2\n  ,1,2\n"),
        ("unclosed-quote", b"id,v0,v1\n\"a,1,2\nb,1,2\n"),
        ("bom-crlf", b"\xef\xbb\xbfid,v0,v1\r\na,1,2\r\n"),
    ];
    for (name, data) in csvs {
        seed("csv_import", name, data);
    }

    let jsonl: &[(&str, &[u8])] = &[
        ("good", b"{\"id\": \"a\", \"v\": [1, 2], \"n\": 1, \"s\": \"x\", \"f\": 0.5, \"b\": true}\n\n{\"id\": 7, \"v\": null}\n"),
        ("wrong-types", b"{\"id\": \"a\", \"v\": \"no\", \"n\": \"1\"}\n"),
        ("bad-id", b"{\"id\": \"\"}\n{\"id\": \"a\\u0000\"}\n"),
        ("not-object", b"[1, 2]\n"),
        ("invalid-utf8", b"{\"id\": \"\xff\"}\n"),
        ("deep", &[b"{\"id\": \"a\", \"x\": ".as_slice(), &[b'['; 200], &[b']'; 200], b"}\n"].concat()),
    ];
    for (name, data) in jsonl {
        seed("jsonl_import", name, data);
    }

    let templates = [
        medvec_ingest::template::HAM10000,
        medvec_ingest::template::BRSET,
        "ham10000",
        "Age: {age|none} {eye:1=right,2=left,*=eye $|?} {{literal}}",
        "{unclosed",
        "}",
        "{a:=|}",
    ];
    for (i, text) in templates.iter().enumerate() {
        seed("template", &format!("template-{i}"), text.as_bytes());
    }

    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models");
    for model in ["tiny-clip", "tiny-image", "tiny-clip-combined"] {
        let config = std::fs::read(models.join(model).join("preprocessor_config.json")).unwrap();
        seed("preprocessor_config", model, &config);
    }
    let configs: &[(&str, &[u8])] = &[
        (
            "truncated",
            b"{\"do_resize\": true, \"size\": {\"shortest_edge\": ",
        ),
        (
            "wrong-types",
            b"{\"size\": \"big\", \"image_mean\": [1, \"x\"], \"resample\": 9}",
        ),
        ("array", b"[]"),
        (
            "crop-huge",
            b"{\"do_center_crop\": true, \"crop_size\": 4294967295}",
        ),
        (
            "zero-std",
            b"{\"image_std\": [0, 0, 0], \"size\": {\"height\": 2, \"width\": 0}}",
        ),
    ];
    for (name, data) in configs {
        seed("preprocessor_config", name, data);
    }
    for path in fixture_images() {
        let name = path.file_name().unwrap().to_string_lossy();
        seed("image_file", &name, &std::fs::read(&path).unwrap());
    }
    for path in dicom_seeds() {
        let name = path.file_name().unwrap().to_string_lossy();
        seed("dicom", &name, &std::fs::read(&path).unwrap());
    }
}

/// Small DICOM fixtures of every transfer syntax family and every broken kind.
fn dicom_seeds() -> Vec<PathBuf> {
    let dicom = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom");
    let mut files: Vec<PathBuf> = [
        "mono2_u8.dcm",
        "ct_s16_rescale.dcm",
        "voi_lut_seq.dcm",
        "modality_lut_seq.dcm",
        "palette_u8_lut16.dcm",
        "multiframe_5f.dcm",
        "explicit_big_endian.dcm",
        "implicit_s12.dcm",
        "deflated.dcm",
        "rle_rgb_u8.dcm",
        "jpeg_baseline_ybr422.dcm",
        "jpeg_lossless_u16.dcm",
        "j2k_lossless_u12.dcm",
        "ybr_full.dcm",
    ]
    .iter()
    .map(|name| dicom.join(name))
    .collect();
    files.extend(files_in(&dicom.join("bad")));
    files
}

/// The JPEG, PNG and corrupt fixtures (the draft set covers 4:2:0, 4:2:2, 4:4:4, greyscale,
/// progressive and EXIF-rotated JPEGs).
fn fixture_images() -> Vec<PathBuf> {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/images");
    let mut files = files_in(&images.join("draft"));
    files.extend(
        files_in(&images.join("bad"))
            .into_iter()
            .filter(|p| !p.to_string_lossy().contains("bomb")),
    );
    files
}

/// Damages each fixture JPEG 150 ways (a byte set to a random value in the headers or the
/// entropy-coded data, a cut, a run of bytes zeroed), deterministically, and decodes each at
/// full size and reduced: every one must come back as an image or an error. A libjpeg fatal
/// error that could not unwind would abort this test process.
#[test]
fn damaged_jpegs_are_errors_or_images_never_crashes() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let jpegs: Vec<PathBuf> =
        files_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/images/draft"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
    assert!(jpegs.len() >= 6);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for path in &jpegs {
        let good = std::fs::read(path).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy();
        for i in 0..150 {
            let file = dir.path().join(format!("{stem}-{i}.jpg"));
            std::fs::write(&file, damage(&good, &mut rng)).unwrap();
            files.push(file);
        }
    }
    let failures = replay(ingest::image_file, &files);
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
    // The damage reached libjpeg's reduced decode, not only the header checks before it.
    let limits = medvec_ingest::encode::ImageLimits::default();
    let libjpeg_errors = files
        .iter()
        .filter_map(|f| medvec_ingest::encode::load_image_draft(f, &limits, Some((16, 16))).err())
        .filter(|e| e.to_string().contains("corrupt JPEG: "))
        .count();
    assert!(libjpeg_errors >= 10, "{libjpeg_errors} libjpeg errors");
}

fn damage(good: &[u8], rng: &mut impl rand::Rng) -> Vec<u8> {
    let mut bytes = good.to_vec();
    // Headers (quantisation and Huffman tables, frame and scan headers) are in the first few
    // hundred bytes: aim half the damage there.
    let limit = if rng.random_bool(0.5) {
        bytes.len().min(700)
    } else {
        bytes.len()
    };
    let i = rng.random_range(2..limit);
    match rng.random_range(0..3) {
        0 => bytes[i] = rng.random(),
        1 => bytes.truncate(i),
        _ => {
            let end = (i + rng.random_range(1..64)).min(bytes.len());
            bytes[i..end].fill(0);
        }
    }
    bytes
}

/// Rewrites the seed corpus from the real writers (run by hand after a format change).
#[test]
#[ignore = "writes into the source tree; run with MEDVEC_WRITE_SEEDS=1"]
fn write_seed_corpus() {
    assert!(
        std::env::var_os("MEDVEC_WRITE_SEEDS").is_some(),
        "set MEDVEC_WRITE_SEEDS=1 to rewrite tests/fuzz/corpus"
    );
    write_store_seeds();
    write_ingest_seeds();
}
