//! Entry points for the fuzz targets in `tests/fuzz` and for their replay on the stable toolchain
//! (`tests/fuzz_corpus.rs`). Not part of the API: each function feeds arbitrary bytes to a real
//! reader and panics only when an invariant breaks, so a panic here is a bug in the reader.

use crate::encode::{load_image_draft, ImageLimits, ImagePreprocessor};
use crate::import::{ImportSource, Importer};
use crate::npy::NpyReader;
use crate::template::Template;
use medvec_store::fuzz_entry::{schema, Scratch};
use medvec_store::{validate_id, Record};

/// Rows read per call, small so that row-by-row logic is exercised on small inputs.
const CHUNK_ROWS: usize = 3;

/// `.npy` target: opens the bytes as a `.npy` file and reads every row in small chunks. A file
/// that opens must yield exactly the rows its header promises, each `dim` wide.
pub fn npy(data: &[u8]) {
    let scratch = Scratch::new();
    let path = scratch.path().join("v.npy");
    std::fs::write(&path, data).expect("scratch write");
    let Ok(mut reader) = NpyReader::open(&path) else {
        return;
    };
    let (rows, dim) = (reader.rows(), reader.dim());
    let mut out = Vec::new();
    let mut total = 0;
    loop {
        let before = out.len();
        match reader.read_rows(CHUNK_ROWS, &mut out) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= CHUNK_ROWS);
                assert_eq!(out.len() - before, n * dim, "rows are dim wide");
                total += n;
                out.clear();
            }
            Err(_) => {
                assert_eq!(
                    out.len(),
                    before,
                    "a failed read leaves the output as it was"
                );
                return;
            }
        }
    }
    assert_eq!(
        total, rows,
        "an opened file yields the rows its header promises"
    );
}

/// CSV target: the bytes are a wide CSV with an id column, the template schema's payload
/// columns and vector columns `v0`, `v1`.
pub fn csv_import(data: &[u8]) {
    let scratch = Scratch::new();
    let path = scratch.path().join("t.csv");
    std::fs::write(&path, data).expect("scratch write");
    let source = ImportSource::Csv {
        path,
        id_column: "id".into(),
        prefixes: vec![("v".into(), "v".into())],
    };
    drain(&source);
}

/// JSONL target: one object per line, keyed by the template schema's fields.
pub fn jsonl_import(data: &[u8]) {
    let scratch = Scratch::new();
    let path = scratch.path().join("t.jsonl");
    std::fs::write(&path, data).expect("scratch write");
    let source = ImportSource::Jsonl {
        path,
        id_field: "id".into(),
    };
    drain(&source);
}

/// `.npy` + CSV target: the first byte is how many of the remaining bytes are the `.npy` file;
/// the rest is the table. Row i of the array pairs with data row i of the table.
pub fn npy_table(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = (usize::from(split) * 4).min(rest.len());
    let scratch = Scratch::new();
    let npy = scratch.path().join("v.npy");
    let table = scratch.path().join("t.csv");
    std::fs::write(&npy, &rest[..split]).expect("scratch write");
    std::fs::write(&table, &rest[split..]).expect("scratch write");
    let source = ImportSource::Npy {
        vectors: vec![("v".into(), npy)],
        table,
        id_column: "id".into(),
    };
    drain(&source);
}

/// Reads every batch; each record must carry a valid id and fit the schema's fields.
fn drain(source: &ImportSource) {
    let schema = schema();
    let Ok(mut importer) = Importer::open(source, &schema, CHUNK_ROWS) else {
        return;
    };
    while let Ok(Some(batch)) = importer.next_batch() {
        assert!(!batch.is_empty() && batch.len() <= CHUNK_ROWS);
        batch.iter().for_each(|r| check_record(&schema, r));
    }
    // An importer that failed (or ended) stays finished.
    assert!(matches!(importer.next_batch(), Ok(None)));
}

fn check_record(schema: &medvec_store::Schema, record: &Record) {
    assert_eq!(
        validate_id(&record.id),
        Ok(()),
        "importer let a bad id through"
    );
    for name in record.vectors.keys() {
        assert!(schema.vector_field(name).is_ok(), "unknown vector `{name}`");
    }
    for name in record.payload.keys() {
        assert!(
            schema.payload_index(name).is_some(),
            "unknown field `{name}`"
        );
    }
}

/// Template target: the bytes are a template; it is parsed and rendered against rows that
/// have every column, none, and empty cells.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::from_name_or_text(text) else {
        return;
    };
    let columns: Vec<String> = template.columns().iter().map(|c| c.to_string()).collect();
    let full = |c: &str| columns.iter().any(|k| k == c).then(|| format!("{c}.0"));
    let rendered = template
        .render(&full)
        .expect("a row with every column renders");
    assert!(!rendered.contains('\0') || text.contains('\0'));
    let _ = template.render(&|_| None);
    let _ = template.render(&|_| Some(String::new()));
    let _ = template.render(&|_| Some("1".into()));
}

/// `preprocessor_config.json` target: read the config, then preprocess a tiny image with it.
pub fn preprocessor_config(data: &[u8]) {
    let scratch = Scratch::new();
    let path = scratch.path().join("preprocessor_config.json");
    std::fs::write(&path, data).expect("scratch write");
    let Ok(pre) = ImagePreprocessor::from_file(&path) else {
        return;
    };
    // Outputs larger than this are legal configs but would only measure the allocator.
    if let Some((w, h)) = pre.fixed_size() {
        if u64::from(w) * u64::from(h) > 1 << 20 {
            return;
        }
    }
    let image = image::DynamicImage::new_rgb8(5, 3);
    if let Ok(pixels) = pre.preprocess(&image) {
        if let Some((w, h)) = pre.fixed_size() {
            assert_eq!(pixels.len(), 3 * w as usize * h as usize);
        }
    }
}

/// Image file target: the bytes are an image file, decoded at full size and with
/// `--jpeg-draft`'s reduced decode, which runs libjpeg's C code (a fatal libjpeg error unwinds
/// out of C: built without `-fexceptions` it would abort the process). Either an image or an
/// error comes back; an image is non-empty 8-bit RGB.
pub fn image_file(data: &[u8]) {
    let scratch = Scratch::new();
    let path = scratch.path().join("image");
    std::fs::write(&path, data).expect("scratch write");
    // Small, so that a mutated header cannot make one input take seconds.
    let limits = ImageLimits {
        max_pixels: 1 << 22,
        ..ImageLimits::default()
    };
    for draft in [None, Some((16, 16))] {
        if let Ok(image) = load_image_draft(&path, &limits, draft) {
            assert!(image.width() > 0 && image.height() > 0, "an empty image");
            assert!(image.as_rgb8().is_some(), "not 8-bit RGB");
        }
    }
}
