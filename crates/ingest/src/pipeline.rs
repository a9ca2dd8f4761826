//! The archive-ingest pipeline: manifest (or folder) → decoded, preprocessed images (in
//! parallel) → image vectors, template text → text vectors → records upserted chunk by chunk.
//!
//! - Memory is bounded by [`IngestOptions::batch`]: one chunk of rows is read, decoded, encoded
//!   and upserted (one atomic, fsynced write) before the next is read.
//! - Resumable: ids already in the collection are skipped, so re-running after a crash or a
//!   fix continues where it stopped.
//! - A row that cannot be used (missing file, path escaping the root, zero-byte, not an image,
//!   truncated, too many pixels, unusable metadata) is a [`Rejection`], written to the rejects
//!   file (CSV `id,path,reason,detail`), and never stops the run.
//! - Payload: the manifest columns named like the collection's payload fields, parsed with
//!   [`Value::parse_as`]; an unparsable cell rejects the row (`bad-metadata`).
//! - DICOM files (found by content, or named `.dcm`) are read as [`DicomImage`]s: their
//!   non-identifying header attributes and pseudonyms ([`DicomIngest`]) fill payload fields the
//!   manifest does not, and are template slots (`{Modality}`); each chosen frame is a record
//!   (`ID#FRAME` with `--frames all`). A DICOM file that cannot be used is rejected with its
//!   DICOM reason (`no-pixel-data`, `unsupported-transfer-syntax`, ...).

use crate::archive::{
    resolve_in_root, ArchiveError, ArchiveReader, ArchiveRow, ArchiveSource, ManifestColumns,
    RejectReason, Rejection,
};
use crate::dicom::{is_dicom_path, DicomImage, DicomIngest};
use crate::encode::{load_image_draft, EncodeError, ImageEncoder, ImageLimits, TextEncoder};
use crate::models::{ModelRecord, ModelRecordError};
use crate::template::Template;
use image::DynamicImage;
use medvec_store::{
    Collection, FieldType, PayloadField, Record, Schema, StoreError, Value, VectorField,
};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The reserved payload field with each record's file path relative to the archive root that
/// the collection's image model record keeps ([`ModelRecord::archive_root`]); the case viewer
/// renders thumbnails from it. Filled when the schema has it as a string field (collections
/// created by `medvec ingest` do).
pub const PATH_FIELD: &str = "_path";

/// Errors that stop an ingest (a row's problems are rejections instead).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] ModelRecordError),
    /// The archive root does not exist or cannot be resolved.
    #[error("{}: archive root: {error}", .path.display())]
    Root {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Writing the rejects file failed.
    #[error("{}: rejects file: {detail}", .path.display())]
    Rejects { path: PathBuf, detail: String },
    /// The options do not fit the collection (an unknown vector field, a wrong dimension).
    #[error("{0}")]
    Options(String),
}

/// The models: an image encoder, and optionally a text encoder with the template that turns a
/// row's metadata into its text.
#[derive(Debug, Clone, Copy)]
pub struct Encoders<'a> {
    pub image: &'a ImageEncoder,
    pub text: Option<(&'a TextEncoder, &'a Template)>,
}

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The manifest or folder.
    pub source: ArchiveSource,
    /// Image paths are relative to this folder and must stay inside it.
    pub root: PathBuf,
    /// The manifest's id and image path columns.
    pub columns: ManifestColumns,
    /// Vector field of the image vectors. Default `image`.
    pub image_field: String,
    /// Vector field of the text vectors. Default `text`.
    pub text_field: String,
    /// Rows per chunk (read, decode, encode, one upsert). Default 64.
    pub batch: usize,
    /// Limits on image files (bombs, huge files).
    pub limits: ImageLimits,
    /// Where rejected rows go (CSV `id,path,reason,detail`), created only if a row is rejected.
    /// `None`: nowhere (the summary still counts them and keeps the first few).
    pub rejects: Option<PathBuf>,
    /// Read the manifest and decode every image, but encode and write nothing (no rejects file
    /// either).
    pub dry_run: bool,
    /// Threads decoding images; `None` uses rayon's global pool (every core).
    pub threads: Option<usize>,
    /// How DICOM files become records (frames, header attributes, pseudonyms).
    pub dicom: DicomIngest,
}

impl IngestOptions {
    /// Defaults for a source and root.
    pub fn new(source: ArchiveSource, root: impl Into<PathBuf>) -> IngestOptions {
        IngestOptions {
            source,
            root: root.into(),
            columns: ManifestColumns::default(),
            image_field: "image".into(),
            text_field: "text".into(),
            batch: 64,
            limits: ImageLimits::default(),
            rejects: None,
            dry_run: false,
            threads: None,
            dicom: DicomIngest::default(),
        }
    }
}

/// Counts after each chunk, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestProgress {
    /// Rows in the archive (counted in a quick first pass over the manifest or folder).
    pub total: u64,
    pub rows: u64,
    pub ingested: u64,
    pub skipped: u64,
    pub rejected: u64,
}

/// The first rejections kept in the summary (all of them are in the rejects file).
pub const KEPT_REJECTIONS: usize = 20;

/// What an ingest did. In a dry run, `ingested` counts the rows that would be ingested.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSummary {
    pub ingested: u64,
    /// Already stored (resume).
    pub skipped: u64,
    pub rejected: u64,
    pub seconds: f64,
    /// The first [`KEPT_REJECTIONS`] rejections.
    pub rejections: Vec<Rejection>,
    /// The rejects file, when one was written.
    pub rejects_file: Option<PathBuf>,
}

impl IngestSummary {
    /// True when every row was ingested or skipped.
    pub fn complete(&self) -> bool {
        self.rejected == 0
    }
}

/// Ingests an archive into `collection`; see the [module docs](self).
///
/// ```
/// use medvec_ingest::archive::ArchiveSource;
/// use medvec_ingest::encode::{EncoderOptions, ImageEncoder, Runtime, RuntimeOptions};
/// use medvec_ingest::pipeline::{ingest_archive, Encoders, IngestOptions};
/// use medvec_store::{Schema, Store, VectorField};
/// let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
/// let runtime = Runtime::load(&RuntimeOptions::default())?;
/// let image = ImageEncoder::open(&runtime, &root.join("models/tiny-image"), &EncoderOptions::default())?;
/// let dir = tempfile::tempdir()?;
/// let store = Store::create(dir.path().join("store"))?;
/// let schema = Schema { vectors: vec![VectorField::parse("image:32:cosine")?], payload: vec![] };
/// let cases = store.create_collection("cases", schema)?;
/// let source = ArchiveSource::Manifest(root.join("archive/manifest.csv"));
/// let options = IngestOptions::new(source, root.join("images"));
/// let summary = ingest_archive(&cases, Encoders { image: &image, text: None }, &options, |_| {})?;
/// assert_eq!((summary.ingested, summary.rejected), (8, 8));
/// assert!(cases.get("ISIC_0027419").unwrap().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ingest_archive(
    collection: &Collection,
    encoders: Encoders<'_>,
    options: &IngestOptions,
    progress: impl FnMut(&IngestProgress) + Send,
) -> Result<IngestSummary, PipelineError> {
    check_fields(&collection.schema(), encoders, options)?;
    if !options.dry_run {
        record_models(collection, encoders, options)?;
    }
    run(Some(collection), encoders, options, progress)
}

/// Records the models with the collection before the first vector is written, refusing a
/// model different from the one that already filled a field.
fn record_models(
    collection: &Collection,
    encoders: Encoders<'_>,
    options: &IngestOptions,
) -> Result<(), PipelineError> {
    let root = std::fs::canonicalize(&options.root).map_err(|error| PipelineError::Root {
        path: options.root.clone(),
        error,
    })?;
    let image = ModelRecord {
        archive_root: Some(root),
        ..ModelRecord::of_image(encoders.image)?
    };
    image.save(collection, &options.image_field)?;
    if let Some((text, template)) = encoders.text {
        ModelRecord::of_text(text, template)?.save(collection, &options.text_field)?;
    }
    Ok(())
}

/// The schema `medvec ingest` gives a collection it creates: `image` (and `text`) cosine fields
/// of the models' dimensions, a string payload field for every metadata column of the
/// manifest (all but the id and path columns) and, when the archive holds DICOM files, the
/// typed DICOM fields of [`DicomIngest::payload_fields`].
pub fn default_schema(
    encoders: Encoders<'_>,
    options: &IngestOptions,
) -> Result<Schema, PipelineError> {
    let field = |name: &str, dim: usize| VectorField::parse(&format!("{name}:{dim}:cosine"));
    let mut vectors = vec![field(&options.image_field, encoders.image.dim())?];
    if let Some((text, _)) = encoders.text {
        vectors.push(field(&options.text_field, text.dim())?);
    }
    let reader = ArchiveReader::open(&options.source, &options.columns)?;
    let mut payload = reader
        .metadata_columns()
        .iter()
        .map(|c| PayloadField::parse(&format!("{c}:string")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut extra = vec![PayloadField {
        name: PATH_FIELD.into(),
        field_type: FieldType::String,
    }];
    if archive_has_dicom(options)? {
        extra.extend(options.dicom.payload_fields());
    }
    for field in extra {
        if !payload.iter().any(|p| p.name == field.name) {
            payload.push(field);
        }
    }
    Ok(Schema { vectors, payload })
}

/// Rows looked at to decide whether an archive is DICOM.
const DICOM_PROBE_ROWS: usize = 64;

/// True when one of the archive's first rows is a DICOM file.
pub fn archive_has_dicom(options: &IngestOptions) -> Result<bool, PipelineError> {
    let root = std::fs::canonicalize(&options.root).map_err(|error| PipelineError::Root {
        path: options.root.clone(),
        error,
    })?;
    let mut reader = ArchiveReader::open(&options.source, &options.columns)?;
    Ok(reader
        .next_chunk(DICOM_PROBE_ROWS)?
        .iter()
        .flatten()
        .any(|row| resolve_in_root(&root, &row.path).is_ok_and(|path| is_dicom_path(&path))))
}

/// A dry run without a collection (one that does not exist yet): reads the manifest and decodes
/// and preprocesses every image, encoding and writing nothing. Nothing is skipped.
pub fn check_archive(
    encoders: Encoders<'_>,
    options: &IngestOptions,
    progress: impl FnMut(&IngestProgress) + Send,
) -> Result<IngestSummary, PipelineError> {
    let options = IngestOptions {
        dry_run: true,
        ..options.clone()
    };
    run(None, encoders, &options, progress)
}

fn check_fields(
    schema: &Schema,
    encoders: Encoders<'_>,
    options: &IngestOptions,
) -> Result<(), PipelineError> {
    let mut wanted = vec![(&options.image_field, encoders.image.dim())];
    if let Some((text, _)) = encoders.text {
        wanted.push((&options.text_field, text.dim()));
    }
    for (field, dim) in wanted {
        let have = schema.vector_field(field)?.dim;
        if have != dim {
            return Err(PipelineError::Options(format!(
                "vector field `{field}` has dimension {have}, the model gives {dim}"
            )));
        }
    }
    Ok(())
}

/// State of one run.
struct Run<'a> {
    collection: Option<&'a Collection>,
    encoders: Encoders<'a>,
    options: &'a IngestOptions,
    root: PathBuf,
    /// Where `_path` values are relative to, when the schema has the field.
    path_root: Option<PathBuf>,
    schema: Option<Schema>,
    rejects: RejectsFile,
    counts: IngestProgress,
    kept: Vec<Rejection>,
}

/// Runs in a pool of `options.threads` threads, or in rayon's global pool.
fn run(
    collection: Option<&Collection>,
    encoders: Encoders<'_>,
    options: &IngestOptions,
    progress: impl FnMut(&IngestProgress) + Send,
) -> Result<IngestSummary, PipelineError> {
    let Some(threads) = options.threads else {
        return run_here(collection, encoders, options, progress);
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| PipelineError::Options(format!("cannot start {threads} threads: {e}")))?;
    pool.install(|| run_here(collection, encoders, options, progress))
}

fn run_here(
    collection: Option<&Collection>,
    encoders: Encoders<'_>,
    options: &IngestOptions,
    progress: impl FnMut(&IngestProgress) + Send,
) -> Result<IngestSummary, PipelineError> {
    let started = Instant::now();
    let root = std::fs::canonicalize(&options.root).map_err(|error| PipelineError::Root {
        path: options.root.clone(),
        error,
    })?;
    let total = ArchiveReader::count_rows(&options.source, &options.columns)?;
    let mut reader = ArchiveReader::open(&options.source, &options.columns)?;
    let rejects_path = options.rejects.clone().filter(|_| !options.dry_run);
    let mut state = Run {
        collection,
        encoders,
        options,
        path_root: path_root(collection)?,
        root,
        schema: collection.map(Collection::schema),
        rejects: RejectsFile::new(rejects_path),
        counts: IngestProgress {
            total,
            ..IngestProgress::default()
        },
        kept: Vec::new(),
    };
    // Chunk i is written (one fsynced upsert) on its own thread while chunk i+1 is decoded and
    // encoded: the disk's fsync latency hides behind the CPU work. The rendezvous channel keeps
    // at most one finished chunk waiting, so memory stays bounded.
    let target = collection.filter(|_| !options.dry_run);
    let ingested = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Encoded>(0);
        let writer = scope.spawn(move || write_chunks(target, receiver, progress));
        let read = (|| -> Result<(), PipelineError> {
            loop {
                let chunk = reader.next_chunk(options.batch.max(1))?;
                if chunk.is_empty() || sender.send(state.chunk(chunk)?).is_err() {
                    return Ok(()); // done, or the writer stopped with an error
                }
            }
        })();
        drop(sender);
        let written = writer.join().expect("the ingest writer thread panicked");
        read.and(written)
    })?;
    let rejects_file = state.rejects.finish()?;
    Ok(IngestSummary {
        ingested,
        skipped: state.counts.skipped,
        rejected: state.counts.rejected,
        seconds: started.elapsed().as_secs_f64(),
        rejections: state.kept,
        rejects_file,
    })
}

/// One chunk, encoded: its records (none in a dry run) and the counts as of its end.
struct Encoded {
    records: Vec<Record>,
    /// Rows that count as ingested once written (in a dry run: the rows that would be).
    rows: u64,
    counts: IngestProgress,
}

/// Upserts chunks as they arrive and reports progress only once a chunk is durable, so
/// `ingested` never counts a row a crash could lose. Returns the rows ingested.
fn write_chunks(
    collection: Option<&Collection>,
    chunks: std::sync::mpsc::Receiver<Encoded>,
    mut progress: impl FnMut(&IngestProgress),
) -> Result<u64, PipelineError> {
    let mut ingested = 0;
    for chunk in chunks {
        if let (Some(collection), false) = (collection, chunk.records.is_empty()) {
            collection.upsert(&chunk.records)?;
        }
        ingested += chunk.rows;
        progress(&IngestProgress {
            ingested,
            ..chunk.counts
        });
    }
    Ok(ingested)
}

/// A row ready to encode: its image's model input, its text and its payload.
struct Prepared {
    row: ArchiveRow,
    pixels: Vec<f32>,
    text: Option<String>,
    payload: Vec<(String, Value)>,
}

impl Run<'_> {
    fn chunk(
        &mut self,
        chunk: Vec<Result<ArchiveRow, Rejection>>,
    ) -> Result<Encoded, PipelineError> {
        self.counts.rows += chunk.len() as u64;
        let mut fresh = Vec::with_capacity(chunk.len());
        for row in chunk {
            match row {
                Err(rejection) => self.reject(rejection)?,
                Ok(row) if self.is_stored(&row.id)? => self.counts.skipped += 1,
                Ok(row) => fresh.push(row),
            }
        }
        let prepared: Vec<Result<Vec<Prepared>, Rejection>> =
            fresh.into_par_iter().map(|row| self.prepare(row)).collect();
        let mut ready = Vec::with_capacity(prepared.len());
        for item in prepared {
            match item {
                Ok(items) => ready.extend(items),
                Err(rejection) => self.reject(rejection)?,
            }
        }
        let rows = ready.len() as u64;
        Ok(Encoded {
            records: self.encode(ready)?,
            rows,
            counts: self.counts,
        })
    }

    /// Whether a row is already stored. A DICOM file's frames are written in one chunk, so
    /// its first frame's record stands for all of them.
    fn is_stored(&self, id: &str) -> Result<bool, StoreError> {
        let Some(c) = self.collection else {
            return Ok(false);
        };
        Ok(c.contains(id)? || c.contains(&self.options.dicom.record_id(id, 0))?)
    }

    fn reject(&mut self, rejection: Rejection) -> Result<(), PipelineError> {
        self.counts.rejected += 1;
        self.rejects.write(&rejection)?;
        if self.kept.len() < KEPT_REJECTIONS {
            self.kept.push(rejection);
        }
        Ok(())
    }

    /// Metadata first (cheap), then the image: decode and preprocess. A DICOM file gives one
    /// item per chosen frame.
    fn prepare(&self, row: ArchiveRow) -> Result<Vec<Prepared>, Rejection> {
        let path = resolve_in_root(&self.root, &row.path)
            .map_err(|(reason, detail)| row.reject(reason, detail))?;
        if is_dicom_path(&path) {
            return self.prepare_dicom(row, &path);
        }
        let mut payload = self.payload(&row, &[])?;
        self.add_path(&mut payload, &path);
        let text = self.text(&row, &[])?;
        let draft = self.encoders.image.draft_request();
        let image = load_image_draft(&path, &self.options.limits, draft)
            .map_err(|e| reject_unreadable(&row, &e))?;
        let pixels = self.pixels(&row, &image)?;
        Ok(vec![Prepared {
            row,
            pixels,
            text,
            payload,
        }])
    }

    fn prepare_dicom(&self, row: ArchiveRow, path: &Path) -> Result<Vec<Prepared>, Rejection> {
        let dicom = &self.options.dicom;
        let file = DicomImage::open(path, &self.options.limits)
            .map_err(|e| reject_unreadable(&row, &e.into()))?;
        let cells = dicom.cells(&file);
        let window = self.encoders.image.dicom_window();
        file.frames(dicom.frames)
            .into_iter()
            .map(|frame| {
                let mut row = row.clone();
                row.id = dicom.record_id(&row.id, frame);
                let mut extra = cells.clone();
                extra.extend(dicom.frame_cell(frame));
                let mut payload = self.payload(&row, &extra)?;
                self.add_path(&mut payload, path);
                let text = self.text(&row, &extra)?;
                let rgb = file
                    .frame_rgb8(frame, &window)
                    .map_err(|e| reject_unreadable(&row, &e.into()))?;
                let pixels = self.pixels(&row, &DynamicImage::ImageRgb8(rgb))?;
                Ok(Prepared {
                    row,
                    pixels,
                    text,
                    payload,
                })
            })
            .collect()
    }

    /// `_path`: the file (already resolved inside this ingest's root) relative to the recorded
    /// root. A file outside the recorded root (a later ingest from another root) gets none, and
    /// the viewer shows a placeholder for it.
    fn add_path(&self, payload: &mut Vec<(String, Value)>, file: &Path) {
        let relative = self
            .path_root
            .as_ref()
            .and_then(|r| file.strip_prefix(r).ok());
        if let Some(text) = relative.and_then(Path::to_str) {
            payload.retain(|(name, _)| name != PATH_FIELD);
            payload.push((PATH_FIELD.into(), Value::String(text.into())));
        }
    }

    /// The row's text from the template: manifest cells first, then `extra` (DICOM header).
    fn text(
        &self,
        row: &ArchiveRow,
        extra: &[(String, String)],
    ) -> Result<Option<String>, Rejection> {
        let Some((_, template)) = self.encoders.text else {
            return Ok(None);
        };
        let cell = |c: &str| cell_of(row, extra, c).map(str::to_string);
        template
            .render(&cell)
            .map(Some)
            .map_err(|e| row.reject(RejectReason::BadMetadata, e.to_string()))
    }

    fn pixels(&self, row: &ArchiveRow, image: &DynamicImage) -> Result<Vec<f32>, Rejection> {
        self.encoders
            .image
            .preprocess(image)
            .map_err(|e| row.reject(RejectReason::Truncated, e.to_string()))
    }

    fn payload(
        &self,
        row: &ArchiveRow,
        extra: &[(String, String)],
    ) -> Result<Vec<(String, Value)>, Rejection> {
        let Some(schema) = &self.schema else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for field in &schema.payload {
            if let Some(cell) = cell_of(row, extra, &field.name) {
                let value = Value::parse_as(cell, field.field_type).map_err(|why| {
                    row.reject(
                        RejectReason::BadMetadata,
                        format!("line {}, column {}: {why}", row.line, field.name),
                    )
                })?;
                out.push((field.name.clone(), value));
            }
        }
        Ok(out)
    }

    /// Encodes the chunk's images and texts into records (none in a dry run).
    fn encode(&self, ready: Vec<Prepared>) -> Result<Vec<Record>, PipelineError> {
        if ready.is_empty() || self.collection.is_none() || self.options.dry_run {
            return Ok(Vec::new());
        }
        let pixels: Vec<Vec<f32>> = ready.iter().map(|p| p.pixels.clone()).collect();
        let images = self.encoders.image.encode(&pixels)?;
        drop(pixels);
        let texts = match self.encoders.text {
            Some((encoder, _)) => {
                let texts: Vec<String> = ready.iter().filter_map(|p| p.text.clone()).collect();
                Some(encoder.encode(&texts)?)
            }
            None => None,
        };
        Ok(self.records(ready, images, texts))
    }

    fn records(
        &self,
        ready: Vec<Prepared>,
        images: Vec<Vec<f32>>,
        texts: Option<Vec<Vec<f32>>>,
    ) -> Vec<Record> {
        let mut texts = texts.map(Vec::into_iter);
        ready
            .into_iter()
            .zip(images)
            .map(|(p, image)| {
                let mut record =
                    Record::new(p.row.id).with_vector(&self.options.image_field, image);
                if let Some(text) = texts.as_mut().and_then(Iterator::next) {
                    record = record.with_vector(&self.options.text_field, text);
                }
                for (field, value) in p.payload {
                    record = record.with_value(field, value);
                }
                record
            })
            .collect()
    }
}

/// The recorded archive root, when the collection keeps `_path` (a string payload field).
fn path_root(collection: Option<&Collection>) -> Result<Option<PathBuf>, PipelineError> {
    let Some(collection) = collection else {
        return Ok(None);
    };
    let schema = collection.schema();
    let keeps_paths = schema
        .payload
        .iter()
        .any(|f| f.name == PATH_FIELD && f.field_type == FieldType::String);
    if !keeps_paths {
        return Ok(None);
    }
    Ok(ModelRecord::archive_root_of(collection)?)
}

/// A manifest cell, else a cell the file itself gave (the DICOM header).
fn cell_of<'a>(
    row: &'a ArchiveRow,
    extra: &'a [(String, String)],
    column: &str,
) -> Option<&'a str> {
    row.get(column).or_else(|| {
        extra
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v.as_str())
    })
}

/// A file that could not be decoded, as a rejection: the message without the (absolute) path,
/// because the rejects file has the manifest's path.
fn reject_unreadable(row: &ArchiveRow, error: &EncodeError) -> Rejection {
    let text = error.to_string();
    let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
    row.reject(RejectReason::of(error), detail)
}

/// The rejects CSV, created (owner-only: it names patients' records) at the first rejection.
struct RejectsFile {
    path: Option<PathBuf>,
    writer: Option<csv::Writer<std::fs::File>>,
}

impl RejectsFile {
    fn new(path: Option<PathBuf>) -> RejectsFile {
        RejectsFile { path, writer: None }
    }

    fn write(&mut self, rejection: &Rejection) -> Result<(), PipelineError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let error = |detail: String| PipelineError::Rejects {
            path: path.clone(),
            detail,
        };
        if self.writer.is_none() {
            let file = crate::output::create_private(path).map_err(|e| error(e.to_string()))?;
            let mut writer = csv::Writer::from_writer(file);
            writer
                .write_record(["id", "path", "reason", "detail"])
                .map_err(|e| error(e.to_string()))?;
            self.writer = Some(writer);
        }
        if let Some(writer) = &mut self.writer {
            writer
                .write_record([
                    rejection.id.as_str(),
                    &rejection.path,
                    rejection.reason.as_str(),
                    &rejection.detail,
                ])
                .map_err(|e| error(e.to_string()))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<PathBuf>, PipelineError> {
        match (self.writer, self.path) {
            (Some(mut writer), Some(path)) => {
                writer.flush().map_err(|e| PipelineError::Rejects {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                Ok(Some(path))
            }
            _ => Ok(None),
        }
    }
}
