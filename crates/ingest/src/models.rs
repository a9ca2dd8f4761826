//! Which model produced each vector field, recorded with the collection.
//!
//! Vectors are only comparable with vectors of the same model, preprocessing and pooling. So
//! [`ingest_archive`](crate::pipeline::ingest_archive) records, per vector field, the model
//! folder, the resolved `.onnx` file with its size and CRC-32, the input/output/pooling choices
//! and (for text) the template; a later ingest with a different model into the same field is
//! refused, and a query given as an image or a text (`medvec search --image/--text`) is encoded
//! with exactly the recorded model ([`QueryEncoder`]). A model file changed on disk since the
//! ingest is refused too, rather than silently giving incomparable vectors.
//!
//! The record is a JSON body in the collection's `models/FIELD.model` file (see
//! `crates/store/FORMAT.md` §4.8), checksummed by the store.

use crate::dicom::WindowChoice;
use crate::encode::{EncodeError, EncoderOptions, ImageEncoder, Pooling, Runtime, TextEncoder};
use crate::template::Template;
use medvec_store::{Collection, StoreError};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Newest version of the record body this medvec reads. Version 2 added `jpeg_draft`, version 3
/// `dicom_window`; a record that uses neither is still written as version 1 (and one with only
/// the draft as version 2), so only records an older medvec would misread (it would encode
/// queries differently) are refused by it.
const RECORD_VERSION: u32 = 3;

/// Errors about recorded models.
#[derive(Debug, thiserror::Error)]
pub enum ModelRecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A model file could not be read to fingerprint it.
    #[error("{}: cannot read the model file: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The record in the collection cannot be decoded.
    #[error("model record of field `{field}`: {detail}")]
    Corrupt { field: String, detail: String },
    /// The field was filled by another model; its vectors would not be comparable.
    #[error("field `{field}` holds vectors of {recorded}; refusing to add vectors of {offered} (use a new collection or field)")]
    DifferentModel {
        field: String,
        recorded: String,
        offered: String,
    },
    /// The recorded model's file is no longer the file the vectors were made with.
    #[error("{}: the model of field `{field}` changed since its vectors were ingested ({detail}); pass the model folder with --model to use it anyway", .path.display())]
    Changed {
        field: String,
        path: PathBuf,
        detail: String,
    },
    /// No field of the collection has a model of the wanted modality recorded.
    #[error("{0}")]
    NotRecorded(String),
}

type Result<T, E = ModelRecordError> = std::result::Result<T, E>;

/// What kind of input a model encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Image,
    Text,
}

impl Modality {
    fn with_article(self) -> &'static str {
        match self {
            Modality::Image => "an image",
            Modality::Text => "a text",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Image => "image",
            Modality::Text => "text",
        }
    }
}

/// The record of one field's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub version: u32,
    pub modality: Modality,
    /// The model folder (absolute) at ingest time.
    pub model_dir: PathBuf,
    /// The `.onnx` file (absolute) at ingest time.
    pub model_file: PathBuf,
    pub model_bytes: u64,
    pub model_crc32: u32,
    pub input_name: Option<String>,
    pub output_name: Option<String>,
    /// `cls`, `mean` or `pooled`.
    pub pooling: Option<String>,
    pub max_length: Option<usize>,
    pub normalize: bool,
    /// Text fields: the template that turned metadata into the text.
    pub template: Option<String>,
    /// Image fields: JPEGs were decoded at Pillow's draft scale
    /// ([`EncoderOptions::jpeg_draft`]). Absent (false) in version 1 records.
    #[serde(default)]
    pub jpeg_draft: bool,
    /// Image fields: how DICOM greyscale frames were windowed to 8 bits
    /// ([`EncoderOptions::dicom_window`]): `C,W` or `none`. Absent: the file's own VOI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dicom_window: Option<String>,
    /// Image fields: the archive root (absolute, canonical) of the first ingest that recorded
    /// it; each record's reserved `_path` payload field is relative to it. Absent in records
    /// written before medvec kept paths; it does not change how queries are encoded, so the
    /// record version does not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_root: Option<PathBuf>,
}

impl ModelRecord {
    /// The record of an open image encoder (reads the `.onnx` file once for its fingerprint).
    pub fn of_image(encoder: &ImageEncoder) -> Result<ModelRecord> {
        let options = encoder.effective_options();
        Self::describe(Modality::Image, encoder.model_dir(), &options, None)
    }

    /// The record of an open text encoder and the template feeding it.
    pub fn of_text(encoder: &TextEncoder, template: &Template) -> Result<ModelRecord> {
        let options = encoder.effective_options();
        let template = Some(template.source());
        Self::describe(Modality::Text, encoder.model_dir(), &options, template)
    }

    fn describe(
        modality: Modality,
        dir: &Path,
        options: &EncoderOptions,
        template: Option<&str>,
    ) -> Result<ModelRecord> {
        let model_dir = absolute(dir)?;
        // The encoders resolve their file against the working directory (`dir/model.onnx`).
        let model_file = absolute(options.model_file.as_deref().unwrap_or(dir))?;
        let (model_bytes, model_crc32) = fingerprint(&model_file)?;
        Ok(ModelRecord {
            version: match (options.dicom_window, options.jpeg_draft) {
                (WindowChoice::FromFile, false) => 1,
                (WindowChoice::FromFile, true) => 2,
                _ => 3,
            },
            modality,
            model_dir,
            model_file,
            model_bytes,
            model_crc32,
            input_name: options.input_name.clone(),
            output_name: options.output_name.clone(),
            pooling: options.pooling.map(|p| p.name().to_string()),
            max_length: options.max_length,
            normalize: options.normalize,
            template: template.map(str::to_string),
            jpeg_draft: options.jpeg_draft,
            dicom_window: (options.dicom_window != WindowChoice::FromFile)
                .then(|| options.dicom_window.to_string()),
            archive_root: None,
        })
    }

    /// Short description for messages: `image model /m/vision_model.onnx (87 MB, crc 1a2b3c4d)`,
    /// with `, JPEG draft decoding` and `, DICOM window 40,400` when those were used.
    pub fn describe_short(&self) -> String {
        let mut text = format!(
            "{} model {} ({} bytes, crc {:08x})",
            self.modality.as_str(),
            self.model_file.display(),
            self.model_bytes,
            self.model_crc32,
        );
        if self.jpeg_draft {
            text.push_str(", JPEG draft decoding");
        }
        if let Some(window) = &self.dicom_window {
            text.push_str(&format!(", DICOM window {window}"));
        }
        text
    }

    /// Whether vectors of `other` are comparable with this record's: the same model bytes and
    /// the same choices (the folder may have moved).
    pub fn same_model(&self, other: &ModelRecord) -> bool {
        let choices = |r: &ModelRecord| {
            (
                r.modality,
                r.model_bytes,
                r.model_crc32,
                r.input_name.clone(),
                r.output_name.clone(),
                r.pooling.clone(),
                r.max_length,
                r.normalize,
                r.template.clone(),
                r.jpeg_draft,
                r.dicom_window.clone(),
            )
        };
        choices(self) == choices(other)
    }

    /// Encoder options reproducing the recorded encoder, with `threads` for ONNX Runtime.
    pub fn encoder_options(&self, threads: Option<usize>) -> EncoderOptions {
        EncoderOptions {
            intra_threads: threads,
            model_file: Some(self.model_file.clone()),
            input_name: self.input_name.clone(),
            output_name: self.output_name.clone(),
            pooling: self.pooling.as_deref().and_then(Pooling::parse),
            max_length: self.max_length,
            normalize: self.normalize,
            jpeg_draft: self.jpeg_draft,
            // Written by this medvec from a WindowChoice, so it parses; a hand-edited record
            // falls back to the file's own window rather than failing every query.
            dicom_window: self
                .dicom_window
                .as_deref()
                .and_then(|w| w.parse().ok())
                .unwrap_or_default(),
            ..EncoderOptions::default()
        }
    }

    /// Fails unless the recorded `.onnx` file still has the recorded size and CRC.
    pub fn check_unchanged(&self, field: &str) -> Result<()> {
        let changed = |detail: String| ModelRecordError::Changed {
            field: field.to_string(),
            path: self.model_file.clone(),
            detail,
        };
        let (bytes, crc) = fingerprint(&self.model_file).map_err(|e| changed(e.to_string()))?;
        if (bytes, crc) != (self.model_bytes, self.model_crc32) {
            return Err(changed(format!(
                "now {bytes} bytes, crc {crc:08x}; recorded {} bytes, crc {:08x}",
                self.model_bytes, self.model_crc32
            )));
        }
        Ok(())
    }

    /// The record of `field`, if one was saved.
    pub fn load(collection: &Collection, field: &str) -> Result<Option<ModelRecord>> {
        let Some(body) = collection.load_model_record(field)? else {
            return Ok(None);
        };
        let corrupt = |detail: String| ModelRecordError::Corrupt {
            field: field.to_string(),
            detail,
        };
        let record: ModelRecord =
            serde_json::from_slice(&body).map_err(|e| corrupt(e.to_string()))?;
        if record.version > RECORD_VERSION {
            return Err(corrupt(format!(
                "written by record version {}, this medvec reads up to {RECORD_VERSION}",
                record.version
            )));
        }
        if let Some(name) = record
            .pooling
            .as_deref()
            .filter(|n| Pooling::parse(n).is_none())
        {
            return Err(corrupt(format!("unknown pooling `{name}`")));
        }
        Ok(Some(record))
    }

    /// Records this model for `field`; if one is recorded already it must be the same model.
    /// A recorded archive root is kept; a record without one gets this one's.
    pub fn save(&self, collection: &Collection, field: &str) -> Result<()> {
        match Self::load(collection, field)? {
            Some(recorded) if recorded.same_model(self) => {
                match (&recorded.archive_root, &self.archive_root) {
                    (None, Some(root)) => ModelRecord {
                        archive_root: Some(root.clone()),
                        ..recorded
                    }
                    .write(collection, field),
                    _ => Ok(()),
                }
            }
            Some(recorded) => Err(ModelRecordError::DifferentModel {
                field: field.to_string(),
                recorded: recorded.describe_short(),
                offered: self.describe_short(),
            }),
            None => self.write(collection, field),
        }
    }

    fn write(&self, collection: &Collection, field: &str) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).expect("record serialises");
        Ok(collection.save_model_record(field, &body)?)
    }

    /// The archive root recorded by the first image field that has one: where the records'
    /// `_path` values are relative to.
    pub fn archive_root_of(collection: &Collection) -> Result<Option<PathBuf>> {
        for field in collection.schema().vectors {
            if let Some(root) = Self::load(collection, &field.name)?.and_then(|r| r.archive_root) {
                return Ok(Some(root));
            }
        }
        Ok(None)
    }
}

/// The vector field whose recorded model encodes `modality`: `preferred` if its model is of that
/// modality, else the only such field.
pub fn field_for(collection: &Collection, modality: Modality, preferred: &str) -> Result<String> {
    let mut matching = Vec::new();
    for field in collection.schema().vectors {
        if let Some(record) = ModelRecord::load(collection, &field.name)? {
            if record.modality == modality {
                if field.name == preferred {
                    return Ok(field.name);
                }
                matching.push(field.name);
            }
        }
    }
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(ModelRecordError::NotRecorded(format!(
            "no vector field of collection `{}` records {} model (made by `medvec ingest`); pass the model folder with --model",
            collection.name(),
            modality.with_article()
        ))),
        _ => Err(ModelRecordError::NotRecorded(format!(
            "fields {} all record {} models: say which with --query-modality",
            matching.join(", "),
            modality.as_str()
        ))),
    }
}

/// Encodes query images or texts exactly as a field's vectors were made.
///
/// ```no_run
/// use medvec_ingest::encode::{Runtime, RuntimeOptions};
/// use medvec_ingest::models::QueryEncoder;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = medvec_store::Store::open_read_only("clinic")?;
/// let cases = store.collection("ham10000")?;
/// let runtime = Runtime::load(&RuntimeOptions::default())?;
/// let text = QueryEncoder::recorded(&runtime, &cases, "text", None)?;
/// let query = text.encode_texts(&["Age: 70 years. Localization: back.".to_string()])?;
/// let hits = cases.search("image", &query[0], &Default::default())?;
/// # Ok(()) }
/// ```
pub enum QueryEncoder {
    Image(Box<ImageEncoder>),
    Text(Box<TextEncoder>),
}

impl QueryEncoder {
    /// Opens the model recorded for `field`, after checking the model file is unchanged.
    pub fn recorded(
        runtime: &Runtime,
        collection: &Collection,
        field: &str,
        threads: Option<usize>,
    ) -> Result<QueryEncoder> {
        let record = ModelRecord::load(collection, field)?.ok_or_else(|| {
            ModelRecordError::NotRecorded(format!(
                "field `{field}` has no recorded model (its vectors were imported, not ingested); pass the model folder with --model"
            ))
        })?;
        record.check_unchanged(field)?;
        let options = record.encoder_options(threads);
        Self::open(runtime, record.modality, &record.model_dir, &options)
    }

    /// Opens a model folder given explicitly.
    pub fn open(
        runtime: &Runtime,
        modality: Modality,
        dir: &Path,
        options: &EncoderOptions,
    ) -> Result<QueryEncoder> {
        Ok(match modality {
            Modality::Image => {
                QueryEncoder::Image(Box::new(ImageEncoder::open(runtime, dir, options)?))
            }
            Modality::Text => {
                QueryEncoder::Text(Box::new(TextEncoder::open(runtime, dir, options)?))
            }
        })
    }

    /// Vectors of image files (an error for a text model).
    pub fn encode_images(&self, files: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        match self {
            QueryEncoder::Image(encoder) => Ok(encoder.encode_files(files)?),
            QueryEncoder::Text(_) => Err(ModelRecordError::NotRecorded(
                "this field's model encodes text, not images".into(),
            )),
        }
    }

    /// The vector of an image held in memory (an upload): decoded as ingest decodes files, with
    /// the same limits; `name` labels the bytes in errors. An error for a text model.
    pub fn encode_image_bytes(&self, name: &Path, bytes: &[u8]) -> Result<Vec<f32>> {
        match self {
            QueryEncoder::Image(encoder) => Ok(encoder.encode_bytes(name, bytes)?),
            QueryEncoder::Text(_) => Err(ModelRecordError::NotRecorded(
                "this field's model encodes text, not images".into(),
            )),
        }
    }

    /// Vectors of texts (an error for an image model).
    pub fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        match self {
            QueryEncoder::Text(encoder) => Ok(encoder.encode(texts)?),
            QueryEncoder::Image(_) => Err(ModelRecordError::NotRecorded(
                "this field's model encodes images, not text".into(),
            )),
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|error| ModelRecordError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Size and CRC-32 of a file, streamed (models can be gigabytes).
fn fingerprint(path: &Path) -> Result<(u64, u32)> {
    let io = |error| ModelRecordError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            return Ok((bytes, hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
}
