//! classify: a saved head applied to stored records, to vectors in .npy files, or to new images
//! and texts encoded with the collection's recorded models.

use anyhow::{bail, Context, Result};
use clap::Args;
use medvec_ingest::encode::{Runtime, RuntimeOptions};
use medvec_ingest::models::QueryEncoder;
use medvec_ingest::npy::NpyReader;
use medvec_query::training::{classify, classify_vectors, MissingField, Prediction, SavedHead};
use medvec_store::{Collection, Store};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Classify stored records, or vectors from .npy files, with a saved head; streams id, class
/// and probabilities.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec classify ./clinic ham10000 --head dx-late --filter 'split = \"test\"' --out preds.csv\n  medvec classify ./clinic ham10000 --head dx-late --input-npy image=new_img.npy,text=new_txt.npy --ids new_ids.txt --out preds.jsonl\n  medvec classify ./clinic ham10000 --head dx-late --image new/lesion.jpg --text \"Age: 70 years. Sex: female. Localization: back.\""
)]
pub struct ClassifyArgs {
    store: PathBuf,
    collection: String,
    /// Name of the saved head.
    #[arg(long)]
    head: String,
    /// Only records matching this filter.
    #[arg(long, conflicts_with = "input_npy")]
    filter: Option<String>,
    /// Classify vectors that are not in the store: FIELD=FILE.npy for each of the head's fields
    /// (comma-separated or repeated), rows aligned across files. The head's
    /// normalisation and λ shift are applied as for stored records.
    #[arg(long, value_name = "FIELD=FILE", value_delimiter = ',')]
    input_npy: Vec<String>,
    /// New cases as image files, encoded with the image model recorded at ingest for each of
    /// the head's image fields; each pairs with the --text at the same position. Rows are named
    /// by their file path.
    #[arg(long, num_args = 1.., conflicts_with_all = ["filter", "input_npy"])]
    image: Vec<PathBuf>,
    /// The clinical text of each case, encoded with the text model recorded at ingest for each
    /// of the head's text fields.
    #[arg(long, num_args = 1.., conflicts_with_all = ["filter", "input_npy"])]
    text: Vec<String>,
    /// With --input-npy: a text file with one id per row (default: row numbers 0, 1, ...).
    #[arg(long, requires = "input_npy")]
    ids: Option<PathBuf>,
    /// Output file, .csv or .jsonl (default: CSV on standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Records per inference batch (bounds memory).
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// A stored record lacking some of the head's fields gets an `error` row (`error`), or is
    /// classified with a zero vector for each missing field (`zero`: that field then carries
    /// only the shift, if it is in the shift pair). A record lacking every field is an error row.
    #[arg(long, value_name = "error|zero", default_value = "error")]
    missing: String,
    /// Accepted for uniformity; use --out FILE.jsonl for JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn classify_command(args: ClassifyArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let saved = SavedHead::load(&collection, &args.head)?;
    let jsonl = args.json
        || args
            .out
            .as_ref()
            .is_some_and(|p| p.extension().is_some_and(|e| e == "jsonl"));
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            medvec_ingest::output::create_private(path)
                .with_context(|| format!("{}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let classes = saved.meta.classes.clone();
    if !jsonl {
        let probs: Vec<String> = classes.iter().map(|c| format!("p_{c}")).collect();
        writeln!(out, "id,predicted,{},error", probs.join(","))?;
    }
    let missing = MissingField::parse(&args.missing).context("--missing")?;
    let (mut written, mut errors) = (0u64, 0u64);
    let mut write = |p: Prediction| {
        written += 1;
        errors += u64::from(p.error.is_some());
        write_prediction(&mut out, &p, &classes, jsonl)
            .map_err(|e| medvec_query::QueryError::Invalid(e.to_string()))
    };
    if !args.image.is_empty() || !args.text.is_empty() {
        classify_encoded(&collection, &saved, &args, &mut write)?;
    } else if args.input_npy.is_empty() {
        let filter = super::parse_filter(args.filter.as_deref(), "--filter")?;
        let batch = (args.batch.max(1), missing);
        classify(&collection, &saved, filter.as_ref(), batch, write)?;
    } else {
        classify_npy(&saved, &args, &mut write)?;
    }
    out.flush()?;
    if let Some(path) = &args.out {
        println!("{written} predictions written to {}", path.display());
    }
    if errors > 0 {
        eprintln!(
            "note: {errors} records lack a field of the head and got error rows (--missing zero classifies them with zero vectors for the missing fields)"
        );
    }
    Ok(())
}

/// --image / --text: new cases encoded with the models recorded at ingest (each of the head's
/// fields with its own model), then classified with the head's normalisation and shift, exactly
/// as stored records are.
fn classify_encoded(
    collection: &Collection,
    saved: &SavedHead,
    args: &ClassifyArgs,
    emit: &mut dyn FnMut(Prediction) -> medvec_query::error::Result<()>,
) -> Result<()> {
    if !args.image.is_empty() && !args.text.is_empty() && args.image.len() != args.text.len() {
        bail!(
            "--image and --text pair up: {} images but {} texts",
            args.image.len(),
            args.text.len()
        );
    }
    let runtime = Runtime::load(&RuntimeOptions::default())?;
    let mut columns = Vec::new();
    for field in &saved.meta.fields.fields {
        let encoder = QueryEncoder::recorded(&runtime, collection, field, None)?;
        let vectors = match &encoder {
            QueryEncoder::Image(_) if args.image.is_empty() => {
                bail!("the head's field `{field}` holds images: give --image")
            }
            QueryEncoder::Text(_) if args.text.is_empty() => {
                bail!("the head's field `{field}` holds text: give --text")
            }
            QueryEncoder::Image(_) => encoder.encode_images(&args.image)?,
            QueryEncoder::Text(_) => encoder.encode_texts(&args.text)?,
        };
        columns.push(vectors);
    }
    let ids: Vec<String> = if args.image.is_empty() {
        (0..args.text.len()).map(|r| format!("text-{r}")).collect()
    } else {
        args.image.iter().map(|p| p.display().to_string()).collect()
    };
    for prediction in classify_vectors(saved, &ids, &columns)? {
        emit(prediction)?;
    }
    Ok(())
}

/// Streams rows of the --input-npy files through the head, `--batch` rows at a time.
fn classify_npy(
    saved: &SavedHead,
    args: &ClassifyArgs,
    emit: &mut dyn FnMut(Prediction) -> medvec_query::error::Result<()>,
) -> Result<()> {
    let mut readers = npy_inputs(saved, &args.input_npy)?;
    let rows = readers[0].rows();
    let ids = match &args.ids {
        Some(path) => read_ids(path, rows)?,
        None => (0..rows).map(|r| r.to_string()).collect(),
    };
    let mut buffer = Vec::new();
    for chunk in ids.chunks(args.batch.max(1)) {
        let mut columns = Vec::with_capacity(readers.len());
        for reader in &mut readers {
            buffer.clear();
            reader.read_rows(chunk.len(), &mut buffer)?;
            columns.push(as_rows(&buffer, reader.dim()));
        }
        for p in classify_vectors(saved, chunk, &columns)? {
            emit(p)?;
        }
    }
    Ok(())
}

/// Opens the .npy file of each field the head needs, in the head's field order; rows must agree.
fn npy_inputs(saved: &SavedHead, specs: &[String]) -> Result<Vec<NpyReader>> {
    let fields = &saved.meta.fields.fields;
    let mut files = std::collections::BTreeMap::new();
    for spec in specs {
        let (field, file) = spec
            .split_once('=')
            .with_context(|| format!("--input-npy `{spec}`: expected FIELD=FILE.npy"))?;
        if !fields.iter().any(|f| f == field) {
            bail!(
                "--input-npy `{field}`: the head uses fields `{}`",
                fields.join("`, `")
            );
        }
        files.insert(field.to_string(), PathBuf::from(file));
    }
    let readers = fields
        .iter()
        .map(|field| {
            let path = files
                .remove(field)
                .with_context(|| format!("--input-npy: the head needs `{field}=FILE.npy`"))?;
            Ok(NpyReader::open(&path)?)
        })
        .collect::<Result<Vec<NpyReader>>>()?;
    if let Some(other) = readers.iter().find(|r| r.rows() != readers[0].rows()) {
        bail!(
            "--input-npy: {} has {} rows, {} has {}; rows must be aligned",
            readers[0].path().display(),
            readers[0].rows(),
            other.path().display(),
            other.rows()
        );
    }
    Ok(readers)
}

/// One id per line; the count must match the .npy rows.
fn read_ids(path: &Path, rows: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let ids: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    if ids.len() != rows {
        bail!(
            "--ids {}: {} ids for {rows} rows",
            path.display(),
            ids.len()
        );
    }
    Ok(ids)
}

fn as_rows(flat: &[f32], dim: usize) -> Vec<Vec<f32>> {
    flat.chunks(dim.max(1)).map(<[f32]>::to_vec).collect()
}

fn write_prediction(
    out: &mut dyn Write,
    p: &Prediction,
    classes: &[String],
    jsonl: bool,
) -> std::io::Result<()> {
    if jsonl {
        writeln!(out, "{}", medvec_query::jobs::prediction_json(p, classes))
    } else {
        let mut cells = vec![csv_cell(&p.id), csv_cell(&p.class)];
        match &p.error {
            Some(error) => cells.extend(
                classes
                    .iter()
                    .map(|_| String::new())
                    .chain([csv_cell(error)]),
            ),
            None => cells.extend(
                p.probabilities
                    .iter()
                    .map(|x| format!("{x:.6}"))
                    .chain([String::new()]),
            ),
        }
        writeln!(out, "{}", cells.join(","))
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
