//! ingest (image archives through ONNX encoders into a collection) and embed (print vectors).

use super::print_json;
use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medvec_ingest::archive::ManifestColumns;
use medvec_ingest::dicom::{DicomIngest, FrameChoice, TagSelection, WindowChoice};
use medvec_ingest::encode::{
    EncoderOptions, ImageEncoder, Pooling, Runtime, RuntimeOptions, TextEncoder,
};
use medvec_ingest::job::{
    ingest_into_store, summary_json, ArchiveSettings, ModelSettings, TextSettings,
};
use medvec_ingest::pipeline::{check_archive, IngestSummary};
use medvec_store::Store;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The exit status when some rows were rejected (everything else is stored).
const PARTIAL: u8 = 3;

/// Encode an image archive (manifest or folder) with ONNX models and store the vectors.
///
/// Rows already in the collection are skipped, so re-running resumes. Rows that cannot be used
/// (missing file, path outside --root, zero-byte, not an image, truncated, too many pixels, bad
/// metadata) go to the rejects file (CSV id,path,reason,detail; default ./rejects-COLLECTION.csv) and the
/// command exits with status 3 ("partial"); everything else is stored.
///
/// A collection that does not exist is created with the vector fields image:DIM:cosine (and
/// text:DIM:cosine with --text-model) and a string payload field for every manifest column other
/// than the id and path columns. Create it yourself (medvec create) for other payload types.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec ingest ./clinic ham10000 --manifest fixtures/archive/manifest.csv --root fixtures/images \\\n      --image-model fixtures/models/tiny-image --text-model fixtures/models/tiny-text --template ham10000\n  medvec ingest ./clinic scans --root /archive/scans --image-model models/dinov2 --dry-run\n\nExit status: 0 when every row is stored, 3 when some rows were rejected (see the rejects file), 1 on error."
)]
pub struct IngestArgs {
    store: PathBuf,
    collection: String,
    /// CSV or JSONL manifest: an id column, an image path column and metadata columns. Without
    /// it, every image file under --root is ingested (DICOM files found by content, whatever
    /// their names), its id the relative path without extension.
    #[arg(long, conflicts_with = "dicomdir")]
    manifest: Option<PathBuf>,
    /// Ingest the image files a DICOMDIR names (paths relative to its folder, the default --root).
    #[arg(long, value_name = "FILE")]
    dicomdir: Option<PathBuf>,
    /// Folder the image paths are relative to; paths may not leave it.
    #[arg(long, required_unless_present = "dicomdir")]
    root: Option<PathBuf>,
    /// Image model folder (Hugging Face / Optimum ONNX layout).
    #[arg(long)]
    image_model: PathBuf,
    /// The image model's `.onnx` file, relative to its folder, e.g. `onnx/model_quantized.onnx`
    /// for an int8 export (default: vision_model.onnx or model.onnx, in the folder or onnx/).
    /// Recorded with the collection like the rest of the model.
    #[arg(long, value_name = "FILE")]
    image_model_file: Option<PathBuf>,
    /// Manifest column holding the image path.
    #[arg(long, default_value = "path")]
    image_column: String,
    /// Manifest column holding the record id.
    #[arg(long, default_value = "id")]
    id_column: String,
    /// Text model folder; the text of each row comes from --template.
    #[arg(long, requires = "template")]
    text_model: Option<PathBuf>,
    /// The text model's `.onnx` file, relative to its folder (see --image-model-file).
    #[arg(long, value_name = "FILE", requires = "text_model")]
    text_model_file: Option<PathBuf>,
    /// A preset (ham10000, brset, dicom) or template text such as "Age: {age|No data reported}".
    #[arg(long, requires = "text_model")]
    template: Option<String>,
    /// Vector field for the image vectors.
    #[arg(long, default_value = "image")]
    image_field: String,
    /// Vector field for the text vectors.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// The image model output to read (default: image_embeds, pooler_output, last_hidden_state...).
    #[arg(long)]
    image_output: Option<String>,
    /// Pooling of a per-patch image output: cls, mean or pooled (default: cls).
    #[arg(long, value_parser = parse_pooling)]
    image_pooling: Option<Pooling>,
    /// The text model output to read (default: text_embeds, sentence_embedding, pooler_output,
    /// last_hidden_state...).
    #[arg(long)]
    text_output: Option<String>,
    /// Pooling of a per-token text output: cls, mean or pooled (default: the folder's
    /// 1_Pooling/config.json, else mean).
    #[arg(long, value_parser = parse_pooling)]
    text_pooling: Option<Pooling>,
    /// Rows per chunk: read, decoded, encoded and stored together (one atomic write).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Threads for decoding and for the models (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Rejects file (CSV id,path,reason,detail), written only when a row is rejected.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// After each chunk is durable, print `acknowledged N` (rows stored or already present) on
    /// stderr, for scripts and the crash tests.
    #[arg(long)]
    progress_lines: bool,
    /// Decode JPEG files at a reduced DCT scale (1/2, 1/4 or 1/8), as Pillow's
    /// `Image.draft("RGB", (n, n))` does, n the model's resize (shortest edge, or the larger side
    /// of an exact size). Much faster on camera-sized photos; vectors differ slightly from
    /// full-size decoding. Recorded with the collection, so image queries use it too.
    #[arg(long)]
    jpeg_draft: bool,
    #[command(flatten)]
    dicom: DicomArgs,
    /// Check the manifest and decode every image; encode and write nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

/// How DICOM files are read (ignored for other images).
#[derive(Debug, Args)]
struct DicomArgs {
    /// DICOM greyscale windowing: `C,W` (a fixed window, e.g. 40,400), `none` (each frame's own
    /// min-max) or `file` (default: the file's VOI LUT or first window, else min-max). Recorded
    /// with the collection, so DICOM queries are windowed the same way.
    #[arg(long, value_name = "C,W|none|file", allow_hyphen_values = true)]
    window: Option<WindowChoice>,
    /// Frames of a multi-frame DICOM file to ingest: middle (default), first, or all (one record
    /// per frame, id ID#FRAME counting from 0, with a `frame` payload field).
    #[arg(long, value_name = "middle|first|all")]
    frames: Option<FrameChoice>,
    /// More DICOM attributes to store as payload, by keyword (e.g. KVP,SliceThickness).
    #[arg(long, value_name = "KEYWORD,...", value_delimiter = ',')]
    dicom_tags: Vec<String>,
    /// Allow --dicom-tags that can identify a patient (names, ids, dates, UIDs...).
    #[arg(long)]
    allow_identifying_tags: bool,
}

impl DicomArgs {
    fn ingest(&self) -> Result<DicomIngest> {
        Ok(DicomIngest {
            frames: self.frames.unwrap_or_default(),
            tags: TagSelection::new(&self.dicom_tags, self.allow_identifying_tags)?,
            pseudonym_key: None,
        })
    }
}

/// The library's model settings for these flags.
fn model_settings(args: &IngestArgs) -> ModelSettings {
    let text = match (&args.text_model, &args.template) {
        (Some(dir), Some(template)) => Some(TextSettings {
            model: dir.clone(),
            model_file: args.text_model_file.clone(),
            template: template.clone(),
            output: args.text_output.clone(),
            pooling: args.text_pooling,
        }),
        _ => None,
    };
    ModelSettings {
        image_model: args.image_model.clone(),
        image_model_file: args.image_model_file.clone(),
        image_output: args.image_output.clone(),
        image_pooling: args.image_pooling,
        jpeg_draft: args.jpeg_draft,
        dicom_window: args.dicom.window.unwrap_or_default(),
        text,
        threads: args.threads,
        batch: args.batch,
    }
}

fn parse_pooling(text: &str) -> Result<Pooling, String> {
    Pooling::parse(text).ok_or_else(|| format!("`{text}`: pooling is cls, mean or pooled"))
}

/// The library's archive settings for these flags.
fn archive_settings(args: &IngestArgs) -> Result<ArchiveSettings> {
    Ok(ArchiveSettings {
        manifest: args.manifest.clone(),
        dicomdir: args.dicomdir.clone(),
        root: args.root.clone(),
        columns: ManifestColumns {
            id: args.id_column.clone(),
            image: args.image_column.clone(),
        },
        image_field: args.image_field.clone(),
        text_field: args.text_field.clone(),
        batch: args.batch,
        threads: args.threads,
        dry_run: args.dry_run,
        rejects: args.rejects.clone(),
        dicom: args.dicom.ingest()?,
    })
}

pub fn ingest(args: IngestArgs) -> Result<ExitCode> {
    let options = archive_settings(&args)?.options(&args.collection)?;
    let models = model_settings(&args).open()?;
    let bar = progress_bar();
    let progress = |p: &medvec_ingest::pipeline::IngestProgress| {
        bar.set_length(p.total);
        bar.set_position(p.rows);
        if args.progress_lines && !args.dry_run {
            super::acknowledge(p.ingested + p.skipped);
        }
        bar.set_message(format!(
            "{} stored, {} skipped, {} rejected",
            p.ingested, p.skipped, p.rejected
        ));
    };
    let summary = if args.dry_run && !collection_exists(&args.store, &args.collection)? {
        check_archive(models.encoders(), &options, progress)?
    } else {
        let store = Store::open_or_create(&args.store)?;
        let summary = ingest_into_store(&store, &args.collection, &models, options, progress)?;
        store.close()?;
        summary
    };
    bar.finish_and_clear();
    report(&args, &summary);
    Ok(if summary.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(PARTIAL)
    })
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} rows, {per_sec}, ETA {eta} ({msg})")
            .expect("valid template"),
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    bar
}

fn collection_exists(store: &Path, name: &str) -> Result<bool> {
    if !store.exists() {
        return Ok(false);
    }
    let store = Store::open_read_only(store)?;
    Ok(store.list_collections()?.iter().any(|c| c == name))
}

fn report(args: &IngestArgs, summary: &IngestSummary) {
    if args.json {
        print_json(&summary_json(summary, args.dry_run));
        return;
    }
    let rejects = summary
        .rejects_file
        .as_ref()
        .map(|p| p.display().to_string());
    let verb = if args.dry_run {
        "would ingest"
    } else {
        "ingested"
    };
    let mut line = format!(
        "{verb} {}, skipped {} already stored, rejected {} in {:.2}s",
        summary.ingested, summary.skipped, summary.rejected, summary.seconds
    );
    if !summary.complete() {
        match &rejects {
            Some(path) => line.push_str(&format!(" (partial: rejected rows are listed in {path})")),
            None => line.push_str(" (partial)"),
        }
        if args.dry_run {
            for r in &summary.rejections {
                eprintln!(
                    "rejected {} ({}): {}: {}",
                    r.id,
                    r.path,
                    r.reason.as_str(),
                    r.detail
                );
            }
        }
    }
    println!("{line}");
}

/// Print the vectors an image or text model gives, one JSON line per input.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec embed --image-model fixtures/models/tiny-image fixtures/images/rgb_80x60.jpg\n  medvec embed --image-model fixtures/models/tiny-image --jpeg-draft fixtures/images/draft/photo_520x390.jpg\n  medvec embed --text-model fixtures/models/tiny-text --text \"Patient diagnosed via histo. Age: 45 years.\"\n\nOutput: {\"input\": \"...\", \"vector\": [...]} per line, in input order."
)]
pub struct EmbedArgs {
    /// Image model folder; encodes FILE arguments.
    #[arg(long, requires = "files", conflicts_with = "text_model")]
    image_model: Option<PathBuf>,
    /// Text model folder; encodes --text arguments.
    #[arg(long, requires = "text")]
    text_model: Option<PathBuf>,
    /// The model's `.onnx` file, relative to its folder (e.g. `onnx/model_quantized.onnx`).
    #[arg(long, value_name = "FILE")]
    model_file: Option<PathBuf>,
    /// Text to encode (repeatable).
    #[arg(long, requires = "text_model")]
    text: Vec<String>,
    /// Image files to encode.
    #[arg(requires = "image_model")]
    files: Vec<PathBuf>,
    /// Threads for the model (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Decode JPEG files at a reduced DCT scale (1/2, 1/4 or 1/8), as Pillow's
    /// `Image.draft("RGB", (n, n))` does, n the model's resize (shortest edge, or the larger side
    /// of an exact size). Much faster on camera-sized photos; vectors differ slightly from
    /// full-size decoding. Pass it when the collection was ingested with it.
    #[arg(long, requires = "image_model")]
    jpeg_draft: bool,
    /// DICOM files: greyscale windowing `C,W`, `none` (min-max) or `file` (default), as
    /// `medvec ingest --window`; the middle frame is encoded.
    #[arg(
        long,
        value_name = "C,W|none|file",
        requires = "image_model",
        allow_hyphen_values = true
    )]
    window: Option<WindowChoice>,
}

pub fn embed(args: EmbedArgs) -> Result<ExitCode> {
    let runtime = Runtime::load(&RuntimeOptions::default())?;
    let options = EncoderOptions {
        intra_threads: args.threads,
        jpeg_draft: args.jpeg_draft,
        dicom_window: args.window.unwrap_or_default(),
        model_file: args.model_file.clone(),
        ..EncoderOptions::default()
    };
    let (inputs, vectors): (Vec<String>, Vec<Vec<f32>>) =
        match (&args.image_model, &args.text_model) {
            (Some(dir), None) => {
                let encoder = ImageEncoder::open(&runtime, dir, &options)?;
                let names = args.files.iter().map(|p| p.display().to_string()).collect();
                (names, encoder.encode_files(&args.files)?)
            }
            (None, Some(dir)) => {
                let encoder = TextEncoder::open(&runtime, dir, &options)?;
                (args.text.clone(), encoder.encode(&args.text)?)
            }
            _ => bail!("give --image-model DIR FILE... or --text-model DIR --text TEXT"),
        };
    for (input, vector) in inputs.iter().zip(&vectors) {
        print_json(&json!({"input": input, "vector": vector}));
    }
    Ok(ExitCode::SUCCESS)
}
