//! One way in for every picture medvec shows or encodes outside an archive ingest: a query image
//! (`medvec search --image`, an upload to `medvec serve`) and a case viewer's thumbnail. Photos
//! go through [`load_image_draft`]; DICOM files (by preamble or `.dcm`/`.dicom` name) through
//! [`DicomImage`] with the window ingest used, so what is shown and searched is what was stored.

use super::error::Result;
use super::image_io::{decode_image_bytes, load_image_draft, ImageLimits};
use crate::dicom::{is_dicom_path, DicomImage, FrameChoice, WindowChoice};
use image::DynamicImage;
use std::path::Path;

/// How to decode: the limits, the JPEG draft size (if any) and the DICOM window.
#[derive(Debug, Clone, Copy)]
pub struct Decoding<'a> {
    pub limits: &'a ImageLimits,
    pub draft: Option<(u32, u32)>,
    pub window: &'a WindowChoice,
}

/// Reads `path` as ingest does. `frame` picks a DICOM frame (out of range or `None`: the middle
/// frame, ingest's default); it is ignored for photos.
pub fn load_any_image(path: &Path, how: Decoding<'_>, frame: Option<u32>) -> Result<DynamicImage> {
    if is_dicom_path(path) {
        let dicom = DicomImage::open(path, how.limits)?;
        return dicom_frame(&dicom, how.window, frame);
    }
    load_image_draft(path, how.limits, how.draft)
}

/// [`load_any_image`] on bytes in memory (an upload, never written to disk): DICOM when the
/// bytes carry the `DICM` preamble, else a photo. `name` only labels the bytes in errors.
pub fn decode_any_image(name: &Path, bytes: &[u8], how: Decoding<'_>) -> Result<DynamicImage> {
    if is_dicom_bytes(bytes) {
        let dicom = DicomImage::from_bytes(name, bytes, how.limits)?;
        return dicom_frame(&dicom, how.window, None);
    }
    decode_image_bytes(name, bytes, how.limits, how.draft)
}

/// A 128-byte preamble followed by `DICM`.
pub fn is_dicom_bytes(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM".as_slice())
}

fn dicom_frame(
    dicom: &DicomImage,
    window: &WindowChoice,
    frame: Option<u32>,
) -> Result<DynamicImage> {
    let middle = dicom.frames(FrameChoice::Middle)[0];
    let frame = frame.filter(|f| *f < dicom.frame_count()).unwrap_or(middle);
    Ok(DynamicImage::ImageRgb8(dicom.frame_rgb8(frame, window)?))
}
