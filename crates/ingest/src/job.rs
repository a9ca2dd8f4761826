//! A whole `medvec ingest`, as the command line and the Python bindings both run it: the models
//! opened from a few settings, the collection created with the default schema when it is
//! missing, the store's pseudonym key fetched for DICOM archives, then [`ingest_archive`].

use crate::archive::{ArchiveSource, ManifestColumns};
use crate::dicom::{DicomIngest, WindowChoice};
use crate::encode::{EncoderOptions, ImageEncoder, Pooling, Runtime, RuntimeOptions, TextEncoder};
use crate::pipeline::{
    archive_has_dicom, check_archive, default_schema, ingest_archive, Encoders, IngestOptions,
    IngestProgress, IngestSummary, PipelineError,
};
use crate::template::Template;
use medvec_store::Store;
use serde_json::json;
use std::path::PathBuf;

/// The models of an ingest and how they are read (`medvec ingest`'s model flags).
#[derive(Debug, Clone, Default)]
pub struct ModelSettings {
    pub image_model: PathBuf,
    /// The `.onnx` file inside the image model's folder (default: found by name).
    pub image_model_file: Option<PathBuf>,
    pub image_output: Option<String>,
    pub image_pooling: Option<Pooling>,
    pub jpeg_draft: bool,
    pub dicom_window: WindowChoice,
    /// A text model and the template (a preset name or template text) that makes each row's text.
    pub text: Option<TextSettings>,
    /// Threads of the models (default: every core).
    pub threads: Option<usize>,
    /// Rows per model batch (clamped to 1..=256).
    pub batch: usize,
}

/// The text half of [`ModelSettings`].
#[derive(Debug, Clone, Default)]
pub struct TextSettings {
    pub model: PathBuf,
    pub model_file: Option<PathBuf>,
    pub template: String,
    pub output: Option<String>,
    pub pooling: Option<Pooling>,
}

/// Opened models.
pub struct Models {
    pub image: ImageEncoder,
    pub text: Option<(TextEncoder, Template)>,
}

impl Models {
    /// The encoders as the pipeline takes them.
    pub fn encoders(&self) -> Encoders<'_> {
        Encoders {
            image: &self.image,
            text: self.text.as_ref().map(|(e, t)| (e, t)),
        }
    }
}

impl ModelSettings {
    /// Loads ONNX Runtime (`ORT_DYLIB_PATH`) and opens the models.
    pub fn open(&self) -> Result<Models, PipelineError> {
        let runtime = Runtime::load(&RuntimeOptions::default())?;
        let options = EncoderOptions {
            intra_threads: self.threads,
            batch_size: self.batch.clamp(1, 256),
            ..EncoderOptions::default()
        };
        let image_options = EncoderOptions {
            output_name: self.image_output.clone(),
            pooling: self.image_pooling,
            jpeg_draft: self.jpeg_draft,
            dicom_window: self.dicom_window,
            model_file: self.image_model_file.clone(),
            ..options.clone()
        };
        let image = ImageEncoder::open(&runtime, &self.image_model, &image_options)?;
        let text = match &self.text {
            Some(text) => {
                let text_options = EncoderOptions {
                    output_name: text.output.clone(),
                    pooling: text.pooling,
                    model_file: text.model_file.clone(),
                    ..options
                };
                let template = Template::from_name_or_text(&text.template)
                    .map_err(|e| PipelineError::Options(format!("template: {e}")))?;
                Some((
                    TextEncoder::open(&runtime, &text.model, &text_options)?,
                    template,
                ))
            }
            None => None,
        };
        Ok(Models { image, text })
    }
}

/// Where an archive is and how its rows are read (`medvec ingest`'s archive flags).
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    pub manifest: Option<PathBuf>,
    pub dicomdir: Option<PathBuf>,
    /// The folder paths are relative to (default: the DICOMDIR's folder).
    pub root: Option<PathBuf>,
    pub columns: ManifestColumns,
    pub image_field: String,
    pub text_field: String,
    pub batch: usize,
    pub threads: Option<usize>,
    pub dry_run: bool,
    /// The rejects file (default `rejects-COLLECTION.csv`).
    pub rejects: Option<PathBuf>,
    pub dicom: DicomIngest,
}

impl ArchiveSettings {
    /// The archive root: `root`, else the DICOMDIR's folder, else the current folder.
    pub fn root(&self) -> PathBuf {
        match (&self.root, &self.dicomdir) {
            (Some(root), _) => root.clone(),
            (None, Some(dicomdir)) => dicomdir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf()),
            (None, None) => PathBuf::from("."),
        }
    }

    /// The pipeline's options for an ingest into `collection`. The root must be a folder, and
    /// a manifest or DICOMDIR a file.
    pub fn options(&self, collection: &str) -> Result<IngestOptions, PipelineError> {
        let root = self.root();
        if !root.is_dir() {
            return Err(PipelineError::Options(format!(
                "{}: root is not a folder",
                root.display()
            )));
        }
        let source = match (&self.manifest, &self.dicomdir) {
            (Some(_), Some(_)) => {
                return Err(PipelineError::Options(
                    "manifest, dicomdir: give one of them".into(),
                ))
            }
            (Some(path), None) => ArchiveSource::Manifest(path.clone()),
            (None, Some(path)) => ArchiveSource::Dicomdir(path.clone()),
            (None, None) => ArchiveSource::Folder(root.clone()),
        };
        for (what, file) in [("manifest", &self.manifest), ("dicomdir", &self.dicomdir)] {
            if let Some(file) = file.as_ref().filter(|m| !m.is_file()) {
                return Err(PipelineError::Options(format!(
                    "{}: {what}: no such file",
                    file.display()
                )));
            }
        }
        let mut options = IngestOptions::new(source, &root);
        options.dicom = self.dicom.clone();
        options.columns = self.columns.clone();
        options.image_field = self.image_field.clone();
        options.text_field = self.text_field.clone();
        options.batch = self.batch.max(1);
        options.threads = self.threads;
        options.dry_run = self.dry_run;
        options.rejects = Some(
            self.rejects
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("rejects-{collection}.csv"))),
        );
        Ok(options)
    }
}

/// Ingests the archive of `options` into collection `name` of `store`, creating the collection
/// with [`default_schema`] when it does not exist. A dry run against a collection that does not
/// exist only checks the archive ([`check_archive`]).
pub fn ingest_into_store(
    store: &Store,
    name: &str,
    models: &Models,
    mut options: IngestOptions,
    progress: impl FnMut(&IngestProgress) + Send,
) -> Result<IngestSummary, PipelineError> {
    let exists = store.list_collections()?.iter().any(|c| c == name);
    if options.dry_run && !exists {
        return check_archive(models.encoders(), &options, progress);
    }
    if archive_has_dicom(&options)? {
        // Created at the first DICOM ingest; a store of photos never gets one.
        options.dicom.pseudonym_key = store.pseudonym_key()?;
    }
    let collection = if exists {
        store.collection(name)?
    } else {
        store.create_collection(name, default_schema(models.encoders(), &options)?)?
    };
    ingest_archive(&collection, models.encoders(), &options, progress)
}

/// A summary as `medvec ingest --json` prints it.
pub fn summary_json(summary: &IngestSummary, dry_run: bool) -> serde_json::Value {
    let status = if summary.complete() {
        "complete"
    } else {
        "partial"
    };
    json!({
        "ingested": summary.ingested, "skipped": summary.skipped, "rejected": summary.rejected,
        "seconds": summary.seconds, "status": status, "dry_run": dry_run,
        "rejects_file": summary.rejects_file.as_ref().map(|p| p.display().to_string()),
    })
}
