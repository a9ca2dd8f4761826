//! DICOM reader errors. Each names the file and never carries a tag value: DICOM headers are
//! patient data, and an error message ends up in logs and reject files. The only value ever
//! quoted is a transfer syntax UID, which identifies an encoding, not a patient.

use crate::error::one_line;
use std::path::{Path, PathBuf};

/// Everything that can go wrong reading a DICOM file or a DICOMDIR.
///
/// [`reason`](DicomError::reason) gives each a stable short code for reject files.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// No 128-byte preamble followed by `DICM`, or a file meta group that does not parse.
    #[error("{}: not a DICOM file: {detail}", .path.display())]
    NotDicom { path: PathBuf, detail: String },
    /// A DICOM object without Pixel Data (a structured report, an RT plan, a presentation state).
    #[error("{}: DICOM file has no pixel data (not an image)", .path.display())]
    NoPixelData { path: PathBuf },
    /// Pixel Data shorter than Rows x Columns x Samples x Frames promise, or cut inside.
    #[error("{}: pixel data is truncated: {detail}", .path.display())]
    TruncatedPixelData { path: PathBuf, detail: String },
    /// A transfer syntax medvec does not decode (JPEG-LS, HTJ2K, MPEG, ...).
    #[error("{}: unsupported transfer syntax {uid}", .path.display())]
    UnsupportedTransferSyntax { path: PathBuf, uid: String },
    /// Rows x Columns x NumberOfFrames above the pixel limit, refused before decoding.
    #[error(
        "{}: {rows}x{columns} pixels x {frames} frames is more than the limit of {limit} pixels (decompression bomb?)",
        .path.display()
    )]
    TooManyPixels {
        path: PathBuf,
        rows: u32,
        columns: u32,
        frames: u32,
        limit: u64,
    },
    /// An encapsulated fragment, or an offset table entry, pointing outside the file.
    #[error("{}: bad encapsulated pixel data: {detail}", .path.display())]
    FragmentOutOfBounds { path: PathBuf, detail: String },
    /// Sequences nested deeper than [`MAX_NESTING`](super::MAX_NESTING).
    #[error("{}: sequences nested more than {limit} deep", .path.display())]
    NestingTooDeep { path: PathBuf, limit: usize },
    /// A file larger than `ImageLimits::max_file_bytes` (or a deflated data set inflating past it).
    #[error("{}: file is {bytes} bytes, more than the limit of {limit}", .path.display())]
    FileTooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    /// A DICOM file that does not decode: corrupt header or pixel data, attributes missing or
    /// inconsistent, a photometric interpretation or bit depth medvec does not read.
    #[error("{}: cannot decode DICOM image: {detail}", .path.display())]
    Decode { path: PathBuf, detail: String },
    /// A DICOMDIR entry that points outside the DICOMDIR's folder.
    #[error("{}: DICOMDIR refers to a file outside its folder", .path.display())]
    EscapesRoot { path: PathBuf },
    /// The file cannot be read (missing, no permission).
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DicomError {
    /// A stable short code for reject files and statistics.
    ///
    /// ```
    /// use medvec_ingest::dicom::DicomError;
    /// let e = DicomError::NoPixelData { path: "sr.dcm".into() };
    /// assert_eq!(e.reason(), "no-pixel-data");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            DicomError::NotDicom { .. } => "not-dicom",
            DicomError::NoPixelData { .. } => "no-pixel-data",
            DicomError::TruncatedPixelData { .. } => "truncated-pixel-data",
            DicomError::UnsupportedTransferSyntax { .. } => "unsupported-transfer-syntax",
            DicomError::TooManyPixels { .. } | DicomError::FileTooLarge { .. } => "too-many-pixels",
            DicomError::FragmentOutOfBounds { .. } => "bad-fragment-table",
            DicomError::NestingTooDeep { .. } => "nesting-too-deep",
            DicomError::Decode { .. } => "corrupt",
            DicomError::EscapesRoot { .. } => "escapes-root",
            DicomError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                "missing"
            }
            DicomError::Io { .. } => "unreadable",
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            DicomError::NotDicom { path, .. }
            | DicomError::NoPixelData { path }
            | DicomError::TruncatedPixelData { path, .. }
            | DicomError::UnsupportedTransferSyntax { path, .. }
            | DicomError::TooManyPixels { path, .. }
            | DicomError::FragmentOutOfBounds { path, .. }
            | DicomError::NestingTooDeep { path, .. }
            | DicomError::FileTooLarge { path, .. }
            | DicomError::Decode { path, .. }
            | DicomError::EscapesRoot { path }
            | DicomError::Io { path, .. } => path,
        }
    }

    pub(crate) fn decode(path: &Path, detail: impl AsRef<str>) -> Self {
        DicomError::Decode {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn truncated(path: &Path, detail: impl AsRef<str>) -> Self {
        DicomError::TruncatedPixelData {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn fragment(path: &Path, detail: impl AsRef<str>) -> Self {
        DicomError::FragmentOutOfBounds {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn not_dicom(path: &Path, detail: impl AsRef<str>) -> Self {
        DicomError::NotDicom {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DicomError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
