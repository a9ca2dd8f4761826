//! Encoder errors. Each is one line naming the file, model or config key at fault, because the
//! person fixing it opens that file; none of them carries pixel data or text being encoded.

use crate::error::one_line;
use std::path::{Path, PathBuf};

/// The hint every "no runtime" message ends with.
pub(crate) const SETUP_HINT: &str = "run `bash tools/setup.sh` (fetches it from the onnxruntime wheel on PyPI) or set ORT_DYLIB_PATH";

/// Everything that can go wrong loading the runtime, a model, a config or an input file.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// No ONNX Runtime library at any of the places looked at.
    #[error("ONNX Runtime not found: {SETUP_HINT} (looked for {looked})")]
    RuntimeNotFound { looked: String },
    /// The library exists but does not load (wrong file, wrong version, wrong architecture).
    #[error("{}: cannot load ONNX Runtime: {detail}; {SETUP_HINT}", .path.display())]
    RuntimeLoad { path: PathBuf, detail: String },
    /// ONNX Runtime is loaded once per process; a second, different library cannot be.
    #[error(
        "{}: ONNX Runtime is already loaded in this process from {}; one process can use only one",
        .requested.display(),
        .loaded.display()
    )]
    RuntimeConflict { loaded: PathBuf, requested: PathBuf },
    /// A file that cannot be read (missing, no permission).
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A zero-byte image file.
    #[error("{}: empty file (0 bytes), not an image", .path.display())]
    EmptyFile { path: PathBuf },
    /// A file larger than [`ImageLimits::max_file_bytes`](super::ImageLimits::max_file_bytes).
    #[error("{}: file is {bytes} bytes, more than the limit of {limit}", .path.display())]
    FileTooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    /// The content is not an image format medvec reads (whatever the file name says).
    #[error("{}: not an image: {detail}", .path.display())]
    NotAnImage { path: PathBuf, detail: String },
    /// The header promises more pixels than allowed: refused before decoding (decompression bomb).
    #[error(
        "{}: {width}x{height} pixels is more than the limit of {limit} (decompression bomb?); raise ImageLimits::max_pixels to allow it",
        .path.display()
    )]
    TooManyPixels {
        path: PathBuf,
        width: u32,
        height: u32,
        limit: u64,
    },
    /// A recognised image that does not decode: truncated, corrupt, unsupported variant.
    #[error("{}: cannot decode image: {detail}", .path.display())]
    Decode { path: PathBuf, detail: String },
    /// A JSON file that does not parse.
    #[error("{}: not valid JSON: {detail}", .path.display())]
    Json { path: PathBuf, detail: String },
    /// A config key with a wrong type or value.
    #[error("{}: key `{key}`: {detail}", .path.display())]
    Config {
        path: PathBuf,
        key: String,
        detail: String,
    },
    /// A model folder or file that is missing or unusable (no .onnx file, unexpected inputs).
    #[error("{}: {detail}", .path.display())]
    Model { path: PathBuf, detail: String },
    /// A `tokenizer.json` that does not load, or a text it cannot tokenize.
    #[error("{}: tokenizer: {detail}", .path.display())]
    Tokenizer { path: PathBuf, detail: String },
    /// ONNX Runtime failed while running the model.
    #[error("{}: inference failed: {detail}", .path.display())]
    Inference { path: PathBuf, detail: String },
    /// Input that does not fit the model (a tensor of the wrong length, an image of 0 pixels).
    #[error("{}: {detail}", .path.display())]
    Input { path: PathBuf, detail: String },
    /// A DICOM file that cannot be used; its [`reason`](crate::dicom::DicomError::reason) says
    /// why. No header value is quoted.
    #[error(transparent)]
    Dicom(#[from] crate::dicom::DicomError),
}

/// Results of this module.
pub type Result<T, E = EncodeError> = std::result::Result<T, E>;

impl EncodeError {
    /// The file (image, config, model or library) the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            EncodeError::RuntimeNotFound { .. } => None,
            EncodeError::RuntimeConflict {
                requested: path, ..
            }
            | EncodeError::RuntimeLoad { path, .. }
            | EncodeError::Io { path, .. }
            | EncodeError::EmptyFile { path }
            | EncodeError::FileTooLarge { path, .. }
            | EncodeError::NotAnImage { path, .. }
            | EncodeError::TooManyPixels { path, .. }
            | EncodeError::Decode { path, .. }
            | EncodeError::Json { path, .. }
            | EncodeError::Config { path, .. }
            | EncodeError::Model { path, .. }
            | EncodeError::Tokenizer { path, .. }
            | EncodeError::Inference { path, .. }
            | EncodeError::Input { path, .. } => Some(path),
            EncodeError::Dicom(error) => Some(error.path()),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        EncodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn config(path: &Path, key: &str, detail: impl AsRef<str>) -> Self {
        EncodeError::Config {
            path: path.to_path_buf(),
            key: one_line(key),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn model(path: &Path, detail: impl AsRef<str>) -> Self {
        EncodeError::Model {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn decode(path: &Path, detail: impl AsRef<str>) -> Self {
        EncodeError::Decode {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn not_image(path: &Path, detail: impl AsRef<str>) -> Self {
        EncodeError::NotAnImage {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn input(path: &Path, detail: impl AsRef<str>) -> Self {
        EncodeError::Input {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn inference(path: &Path, detail: impl AsRef<str>) -> Self {
        EncodeError::Inference {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn tokenizer(path: &Path, detail: impl AsRef<str>) -> Self {
        EncodeError::Tokenizer {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }
}
