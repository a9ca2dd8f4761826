//! `medvec ingest` from Python: an image archive (manifest, folder or DICOMDIR) through the ONNX
//! encoders into a collection, with the library's `ingest_into_store` (the CLI's job) and the
//! progress reported to a Python callable.

use crate::errors::{Failure, Result};
use crate::store::NativeStore;
use medvec_ingest::archive::ManifestColumns;
use medvec_ingest::dicom::{DicomIngest, FrameChoice, TagSelection, WindowChoice};
use medvec_ingest::encode::Pooling;
use medvec_ingest::job::{
    ingest_into_store, summary_json, ArchiveSettings, ModelSettings, TextSettings,
};
use medvec_ingest::pipeline::{IngestOptions, IngestProgress};
use pyo3::prelude::*;
use std::path::PathBuf;

/// The keyword arguments of `Store.ingest`, as the Python half passes them (a dict).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct IngestArgs {
    manifest: Option<PathBuf>,
    dicomdir: Option<PathBuf>,
    root: Option<PathBuf>,
    image_model: PathBuf,
    image_model_file: Option<PathBuf>,
    image_output: Option<String>,
    image_pooling: Option<String>,
    text_model: Option<PathBuf>,
    text_model_file: Option<PathBuf>,
    text_output: Option<String>,
    text_pooling: Option<String>,
    template: Option<String>,
    id_column: String,
    image_column: String,
    image_field: String,
    text_field: String,
    batch: usize,
    threads: Option<usize>,
    rejects: Option<PathBuf>,
    jpeg_draft: bool,
    window: Option<String>,
    frames: Option<String>,
    dicom_tags: Vec<String>,
    allow_identifying_tags: bool,
    dry_run: bool,
}

fn pooling(arg: &str, text: Option<&str>) -> Result<Option<Pooling>> {
    text.map(|t| {
        Pooling::parse(t)
            .ok_or_else(|| Failure::invalid(format!("{arg}: `{t}` is not cls, mean or pooled")))
    })
    .transpose()
}

fn parsed<T: std::str::FromStr<Err = String>>(arg: &str, text: Option<&str>) -> Result<Option<T>> {
    text.map(|t| {
        t.parse::<T>()
            .map_err(|e| Failure::invalid(format!("{arg}: {e}")))
    })
    .transpose()
}

impl IngestArgs {
    fn models(&self) -> Result<ModelSettings> {
        let text = match (&self.text_model, &self.template) {
            (Some(model), Some(template)) => Some(TextSettings {
                model: model.clone(),
                model_file: self.text_model_file.clone(),
                template: template.clone(),
                output: self.text_output.clone(),
                pooling: pooling("text_pooling", self.text_pooling.as_deref())?,
            }),
            (Some(_), None) => {
                return Err(Failure::invalid(
                    "template: a text model needs a template (a preset such as ham10000, or text like \"Age: {age}\")",
                ))
            }
            (None, _) => None,
        };
        Ok(ModelSettings {
            image_model: self.image_model.clone(),
            image_model_file: self.image_model_file.clone(),
            image_output: self.image_output.clone(),
            image_pooling: pooling("image_pooling", self.image_pooling.as_deref())?,
            jpeg_draft: self.jpeg_draft,
            dicom_window: parsed::<WindowChoice>("window", self.window.as_deref())?
                .unwrap_or_default(),
            text,
            threads: self.threads,
            batch: self.batch,
        })
    }

    fn options(&self, collection: &str) -> Result<IngestOptions> {
        if self.root.is_none() && self.dicomdir.is_none() {
            return Err(Failure::invalid("root: the archive folder is needed"));
        }
        let tags = TagSelection::new(&self.dicom_tags, self.allow_identifying_tags)
            .map_err(|e| Failure::invalid(format!("dicom_tags: {e}")))?;
        let settings = ArchiveSettings {
            manifest: self.manifest.clone(),
            dicomdir: self.dicomdir.clone(),
            root: self.root.clone(),
            columns: ManifestColumns {
                id: self.id_column.clone(),
                image: self.image_column.clone(),
            },
            image_field: self.image_field.clone(),
            text_field: self.text_field.clone(),
            batch: self.batch,
            threads: self.threads,
            dry_run: self.dry_run,
            rejects: self.rejects.clone(),
            dicom: DicomIngest {
                frames: parsed::<FrameChoice>("frames", self.frames.as_deref())?
                    .unwrap_or_default(),
                tags,
                pseudonym_key: None,
            },
        };
        Ok(settings.options(collection)?)
    }
}

/// Ingests an archive into collection `name` (created when missing); `progress` is called with
/// `(rows, total, ingested, skipped, rejected)` after each chunk. Returns what
/// `medvec ingest --json` prints.
#[pyfunction]
#[pyo3(signature = (store, name, args, progress = None))]
pub fn ingest<'py>(
    py: Python<'py>,
    store: &NativeStore,
    name: String,
    args: IngestArgs,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let models_settings = args.models()?;
    let options = args.options(&name)?;
    let dry_run = options.dry_run;
    let summary = py.detach(|| {
        let models = models_settings.open().map_err(Failure::from)?;
        let report = |p: &IngestProgress| {
            if let Some(callback) = &progress {
                Python::attach(|py| {
                    let counts = (p.rows, p.total, p.ingested, p.skipped, p.rejected);
                    // A failing progress callback must not stop an ingest that is storing data.
                    if let Err(error) = callback.call1(py, counts) {
                        error.print(py);
                    }
                });
            }
        };
        store
            .shared()
            .with(|s| ingest_into_store(s, &name, &models, options, report).map_err(Failure::from))
    })?;
    crate::convert::json_to_py(py, &summary_json(&summary, dry_run))
}
