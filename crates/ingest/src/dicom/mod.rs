//! Reading DICOM images as 8-bit RGB, with pixels equal to the reference pipeline of
//! `tools/reference_dicom.py` (pydicom 3.0.2 + numpy; its docstring is the specification).
//!
//! - [`looks_like_dicom`]: the `DICM` check a folder walk uses (file names do not matter).
//! - [`DicomImage::open`]: reads and checks a file and parses its header; no pixel is decoded.
//!   Hostile files are refused first: too large, sequences nested too deep (dicom-object would
//!   recurse once per level), fragments or offset tables pointing outside the file, Pixel Data
//!   cut short, Rows x Columns x NumberOfFrames over the pixel limit.
//! - [`DicomImage::frame_rgb8`]: one frame as [`image::RgbImage`]: modality LUT, VOI LUT or
//!   window ([`WindowChoice`]), MONOCHROME1 inverted, scaled to 8 bits; RGB, YBR and PALETTE
//!   COLOR converted as pydicom does. Grey images come out with R = G = B.
//! - [`read_dicomdir`]: the files a DICOMDIR refers to.
//!
//! Transfer syntaxes: implicit VR little endian, explicit VR little and big endian, deflated,
//! JPEG baseline / extended (8-bit) / lossless, JPEG 2000, RLE; anything else is
//! [`DicomError::UnsupportedTransferSyntax`]. Errors never quote a tag value (headers are
//! patient data); each has a short [`reason`](DicomError::reason).
//!
//! ```
//! use medvec_ingest::dicom::{DicomImage, FrameChoice, WindowChoice};
//! use medvec_ingest::encode::ImageLimits;
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dicom");
//! let image = DicomImage::open(&dir.join("multiframe_5f.dcm"), &ImageLimits::default())?;
//! assert_eq!(image.frame_count(), 5);
//! assert_eq!(image.frames(FrameChoice::Middle), vec![2]);
//! let rgb = image.frame_rgb8(2, &WindowChoice::FromFile)?;
//! assert_eq!((rgb.width(), rgb.height()), (image.columns(), image.rows()));
//! # Ok::<(), medvec_ingest::dicom::DicomError>(())
//! ```

mod dicomdir;
mod error;
mod frame;
#[doc(hidden)]
pub mod fuzz;
mod header;
mod lut;
mod rows;
mod scan;
#[cfg(test)]
mod tests;

pub use dicomdir::read_dicomdir;
pub use error::DicomError;
pub use frame::SUPPORTED_TRANSFER_SYNTAXES;
pub use header::{
    age_in_years, header_lines, is_identifying, pseudonym, HeaderLine, TagError, TagSelection,
    FRAME_FIELD, PSEUDONYMS, SAFE_TAGS,
};
pub use rows::DicomIngest;
pub use scan::MAX_NESTING;

use crate::encode::ImageLimits;
use dicom_dictionary_std::tags;
use dicom_encoding::adapters::PixelDataObject;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use frame::PixelHeader;
use lut::Attrs;
use std::fmt;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Which VOI (window) turns a greyscale frame into 8 bits. Colour and palette images ignore it.
///
/// Parsed from the `--window` flag's text, and printed back the same way (to record it with a
/// field's model):
///
/// ```
/// use medvec_ingest::dicom::WindowChoice;
/// assert_eq!("40,400".parse::<WindowChoice>()?, WindowChoice::Fixed { center: 40.0, width: 400.0 });
/// assert_eq!("none".parse::<WindowChoice>()?, WindowChoice::MinMax);
/// assert_eq!("file".parse::<WindowChoice>()?, WindowChoice::FromFile);
/// assert_eq!(WindowChoice::Fixed { center: -600.0, width: 1500.0 }.to_string(), "-600,1500");
/// assert!("400".parse::<WindowChoice>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum WindowChoice {
    /// The file's own: the VOI LUT Sequence, else the first WindowCenter / WindowWidth pair
    /// with its VOILUTFunction, else the frame's min-max.
    #[default]
    FromFile,
    /// A LINEAR window replacing the file's VOI (`--window C,W`).
    Fixed { center: f64, width: f64 },
    /// No VOI: the frame's own min-max after the modality LUT (`--window none`).
    MinMax,
}

impl FromStr for WindowChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "none" => return Ok(WindowChoice::MinMax),
            "file" => return Ok(WindowChoice::FromFile),
            _ => {}
        }
        let parse = |v: &str| v.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        match s.split_once(',') {
            Some((c, w)) => match (parse(c), parse(w)) {
                (Some(center), Some(width)) if width >= 1.0 => {
                    Ok(WindowChoice::Fixed { center, width })
                }
                (Some(_), Some(_)) => Err(format!("window `{s}`: the width must be at least 1")),
                _ => Err(format!("window `{s}`: expected CENTER,WIDTH (numbers)")),
            },
            None => Err(format!(
                "window `{s}`: expected CENTER,WIDTH (e.g. 40,400), `none` or `file`"
            )),
        }
    }
}

impl fmt::Display for WindowChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowChoice::FromFile => f.write_str("file"),
            WindowChoice::MinMax => f.write_str("none"),
            WindowChoice::Fixed { center, width } => write!(f, "{center},{width}"),
        }
    }
}

/// Which frames of a multi-frame file to read (`--frames`).
///
/// ```
/// use medvec_ingest::dicom::FrameChoice;
/// assert_eq!("middle".parse::<FrameChoice>()?, FrameChoice::Middle);
/// assert_eq!(FrameChoice::All.to_string(), "all");
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameChoice {
    /// Frame `n / 2` (rounded down), the default.
    #[default]
    Middle,
    /// Frame 0.
    First,
    /// Every frame, in order.
    All,
}

impl FromStr for FrameChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "middle" => Ok(FrameChoice::Middle),
            "first" => Ok(FrameChoice::First),
            "all" => Ok(FrameChoice::All),
            other => Err(format!("frames `{other}`: expected middle, first or all")),
        }
    }
}

impl fmt::Display for FrameChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameChoice::Middle => "middle",
            FrameChoice::First => "first",
            FrameChoice::All => "all",
        })
    }
}

/// Whether the file starts with a 128-byte preamble and `DICM`. Reads 132 bytes; any I/O
/// error (a missing file, a folder) is `false`.
///
/// ```
/// use medvec_ingest::dicom::looks_like_dicom;
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dicom");
/// assert!(looks_like_dicom(&dir.join("detect/IM000001")));
/// assert!(!looks_like_dicom(&dir.join("bad/not_dicom.dcm")));
/// ```
pub fn looks_like_dicom(path: &Path) -> bool {
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..] == b"DICM"
}

/// Whether `path` is to be read as DICOM: it has the `DICM` preamble ([`looks_like_dicom`]),
/// or its extension is `.dcm` / `.dicom` (any case), so that a file named as DICOM but without
/// the preamble is refused as [`DicomError::NotDicom`] rather than tried as another format.
///
/// ```
/// use medvec_ingest::dicom::is_dicom_path;
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dicom");
/// assert!(is_dicom_path(&dir.join("detect/IM000001"))); // no extension, DICM preamble
/// assert!(is_dicom_path(&dir.join("bad/not_dicom.dcm"))); // by name; opening it fails
/// assert!(!is_dicom_path(&dir.join("manifest.csv")));
/// ```
pub fn is_dicom_path(path: &Path) -> bool {
    let by_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("dcm") || e.eq_ignore_ascii_case("dicom"));
    by_name || looks_like_dicom(path)
}

/// A DICOM file read and checked, its header parsed; frames are decoded on request.
pub struct DicomImage {
    path: PathBuf,
    object: DefaultDicomObject,
    header: PixelHeader,
}

impl fmt::Debug for DicomImage {
    // The object holds patient data: show only the image geometry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DicomImage")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl DicomImage {
    /// Reads `path` (at most `limits.max_file_bytes`), checks its structure and header, and
    /// refuses Rows x Columns x NumberOfFrames above `limits.max_pixels` before decoding.
    pub fn open(path: &Path, limits: &ImageLimits) -> Result<DicomImage, DicomError> {
        let size = std::fs::metadata(path)
            .map_err(|e| DicomError::io(path, e))?
            .len();
        if size > limits.max_file_bytes {
            return Err(DicomError::FileTooLarge {
                path: path.to_path_buf(),
                bytes: size,
                limit: limits.max_file_bytes,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::fs::File::open(path)
            .and_then(|f| f.take(limits.max_file_bytes + 1).read_to_end(&mut bytes))
            .map_err(|e| DicomError::io(path, e))?;
        Self::from_bytes(path, &bytes, limits)
    }

    /// [`open`](Self::open) on bytes already in memory; `path` names them in errors.
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        limits: &ImageLimits,
    ) -> Result<DicomImage, DicomError> {
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(DicomError::FileTooLarge {
                path: path.to_path_buf(),
                bytes: bytes.len() as u64,
                limit: limits.max_file_bytes,
            });
        }
        let meta = scan::read_meta(path, bytes)?;
        scan::check_dataset(path, bytes, &meta, limits.max_file_bytes)?;
        let object = catch_unwind(AssertUnwindSafe(|| {
            OpenFileOptions::new()
                .read_preamble(ReadPreamble::Never)
                .from_reader(&bytes[128..])
        }));
        // dicom-rs's messages can quote element values: keep them out of the error.
        let object = match object {
            Ok(Ok(object)) => object,
            Ok(Err(_)) | Err(_) => {
                return Err(DicomError::decode(path, "the data set does not parse"));
            }
        };
        if object.get(tags::PIXEL_DATA).is_none() {
            return Err(DicomError::NoPixelData {
                path: path.to_path_buf(),
            });
        }
        if !SUPPORTED_TRANSFER_SYNTAXES.contains(&meta.transfer_syntax.as_str()) {
            return Err(DicomError::UnsupportedTransferSyntax {
                path: path.to_path_buf(),
                uid: meta.transfer_syntax,
            });
        }
        let header = read_header(path, &object, meta.transfer_syntax)?;
        let pixels = u64::from(header.rows) * u64::from(header.columns) * u64::from(header.frames);
        if pixels > limits.max_pixels {
            return Err(DicomError::TooManyPixels {
                path: path.to_path_buf(),
                rows: header.rows,
                columns: header.columns,
                frames: header.frames,
                limit: limits.max_pixels,
            });
        }
        check_photometric(path, &header)?;
        // Every frame needs a fragment of its own: more frames than fragments is a cut or
        // forged file (and would make `frames(All)` as long as NumberOfFrames says).
        if let Some(fragments) = object.number_of_fragments() {
            if fragments < header.frames {
                return Err(DicomError::truncated(
                    path,
                    format!("{} frames but {fragments} fragments", header.frames),
                ));
            }
        }
        if let Some(value) = frame::native_pixel_data(&object) {
            let need = (u64::from(header.frames) * header.native_frame_bits()).div_ceil(8);
            let have = value.calculate_byte_len() as u64;
            if have < need {
                return Err(DicomError::truncated(
                    path,
                    format!("Pixel Data holds {have} of the {need} bytes its header promises"),
                ));
            }
        }
        Ok(DicomImage {
            path: path.to_path_buf(),
            object,
            header,
        })
    }

    /// The file this image was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// NumberOfFrames (1 when absent).
    pub fn frame_count(&self) -> u32 {
        self.header.frames
    }

    pub fn rows(&self) -> u32 {
        self.header.rows
    }

    pub fn columns(&self) -> u32 {
        self.header.columns
    }

    /// The Transfer Syntax UID of the file.
    pub fn transfer_syntax(&self) -> &str {
        &self.header.transfer_syntax
    }

    /// The frame numbers `choice` selects, in order.
    pub fn frames(&self, choice: FrameChoice) -> Vec<u32> {
        let n = self.header.frames;
        match choice {
            FrameChoice::Middle => vec![n / 2],
            FrameChoice::First => vec![0],
            FrameChoice::All => (0..n).collect(),
        }
    }

    /// The parsed DICOM object, for reading header tags. Its values are patient data: keep
    /// them out of errors and logs.
    pub fn object(&self) -> &DefaultDicomObject {
        &self.object
    }

    /// Decodes frame `frame` (0-based) to 8-bit RGB with `window`, as the reference does.
    pub fn frame_rgb8(
        &self,
        frame: u32,
        window: &WindowChoice,
    ) -> Result<image::RgbImage, DicomError> {
        let path = self.path.as_path();
        if frame >= self.header.frames {
            return Err(DicomError::decode(
                path,
                format!("no frame {frame} in {} frames", self.header.frames),
            ));
        }
        let run = || {
            let samples = frame::decode_frame(path, &self.object, &self.header, frame)?;
            let attrs = Attrs {
                path,
                obj: &self.object,
            };
            match self.header.photometric.as_str() {
                "MONOCHROME1" | "MONOCHROME2" => {
                    lut::grey_to_rgb(&attrs, &self.header, &samples, window)
                }
                "PALETTE COLOR" => lut::palette_to_rgb(&attrs, &self.header, &samples),
                _ => lut::colour_to_rgb(path, &self.header, &samples),
            }
        };
        catch_unwind(AssertUnwindSafe(run))
            .unwrap_or_else(|_| Err(DicomError::decode(path, "the decoder failed on this data")))
    }
}

/// The Image Pixel attributes, required ones checked.
fn read_header(
    path: &Path,
    obj: &DefaultDicomObject,
    transfer_syntax: String,
) -> Result<PixelHeader, DicomError> {
    let attrs = Attrs { path, obj };
    let int = |tag, name: &str| -> Result<Option<i64>, DicomError> {
        Ok(attrs.ints(tag, name)?.and_then(|v| v.first().copied()))
    };
    let required = |tag, name: &str| -> Result<i64, DicomError> {
        int(tag, name)?.ok_or_else(|| DicomError::decode(path, format!("no {name}")))
    };
    let small = |v: i64, name: &str, max: i64| -> Result<u32, DicomError> {
        if (0..=max).contains(&v) {
            Ok(v as u32)
        } else {
            Err(DicomError::decode(path, format!("{name} out of range")))
        }
    };
    let rows = small(required(tags::ROWS, "Rows")?, "Rows", 65535)?;
    let columns = small(required(tags::COLUMNS, "Columns")?, "Columns", 65535)?;
    if rows == 0 || columns == 0 {
        return Err(DicomError::decode(path, "Rows or Columns is 0"));
    }
    let samples = small(
        int(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")?.unwrap_or(1),
        "SamplesPerPixel",
        4,
    )?;
    let bits_allocated = small(
        required(tags::BITS_ALLOCATED, "BitsAllocated")?,
        "BitsAllocated",
        64,
    )?;
    let bits_stored = small(
        int(tags::BITS_STORED, "BitsStored")?.unwrap_or(i64::from(bits_allocated)),
        "BitsStored",
        i64::from(bits_allocated),
    )?;
    let signed = int(tags::PIXEL_REPRESENTATION, "PixelRepresentation")?.unwrap_or(0) == 1;
    let planar = small(
        int(tags::PLANAR_CONFIGURATION, "PlanarConfiguration")?.unwrap_or(0),
        "PlanarConfiguration",
        1,
    )?;
    let frames = match int(tags::NUMBER_OF_FRAMES, "NumberOfFrames")? {
        None | Some(0) => 1,
        Some(n) => small(n, "NumberOfFrames", i64::from(u32::MAX))?,
    };
    let photometric = attrs
        .string(tags::PHOTOMETRIC_INTERPRETATION)
        .ok_or_else(|| DicomError::decode(path, "no PhotometricInterpretation"))?;
    if !matches!(bits_allocated, 1 | 8 | 16 | 32) || bits_stored == 0 {
        return Err(DicomError::decode(
            path,
            format!("BitsAllocated {bits_allocated} / BitsStored {bits_stored} not read"),
        ));
    }
    Ok(PixelHeader {
        transfer_syntax,
        rows,
        columns,
        samples: samples as u16,
        bits_allocated: bits_allocated as u16,
        bits_stored: bits_stored as u16,
        signed,
        photometric,
        planar: planar as u16,
        frames,
    })
}

/// Defined terms of Photometric Interpretation (PS3.3 C.7.6.3.1.2): safe to quote in errors.
const PHOTOMETRIC_TERMS: [&str; 14] = [
    "MONOCHROME1",
    "MONOCHROME2",
    "PALETTE COLOR",
    "RGB",
    "HSV",
    "ARGB",
    "CMYK",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_PARTIAL_422",
    "YBR_PARTIAL_420",
    "YBR_ICT",
    "YBR_RCT",
    "XYB",
];

fn check_photometric(path: &Path, header: &PixelHeader) -> Result<(), DicomError> {
    let pi = header.photometric.as_str();
    let ok = match header.samples {
        1 => matches!(pi, "MONOCHROME1" | "MONOCHROME2" | "PALETTE COLOR"),
        3 => matches!(
            pi,
            "RGB" | "YBR_FULL" | "YBR_FULL_422" | "YBR_RCT" | "YBR_ICT"
        ),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let name = match PHOTOMETRIC_TERMS.contains(&pi) {
        true => format!("photometric interpretation {pi}"),
        false => "an unknown photometric interpretation".to_string(),
    };
    Err(DicomError::decode(
        path,
        format!(
            "{name} with {} samples per pixel is not read",
            header.samples
        ),
    ))
}
