//! Reading image files from hospital archives: any common format, EXIF orientation applied,
//! always 8-bit RGB out, and hostile files (bombs, truncation, wrong extensions) refused with an
//! error naming the file.

use super::error::{EncodeError, Result};
use super::jpeg_draft::{decode_scaled, draft_scale, libjpeg_message};
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use std::io::Cursor;
use std::path::Path;

/// Limits applied before decoding, against decompression bombs and runaway files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest file read, in bytes. Default 512 MiB.
    pub max_file_bytes: u64,
    /// Largest width x height decoded. Default 89,478,485, Pillow's `MAX_IMAGE_PIXELS`.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_file_bytes: 512 << 20,
            max_pixels: 89_478_485,
        }
    }
}

/// Reads an image file as 8-bit RGB, the way a notebook's
/// `ImageOps.exif_transpose(Image.open(path)).convert("RGB")` sees it.
///
/// - The format comes from the content, not the file name.
/// - JPEG, PNG, TIFF, BMP, WebP, GIF (first frame) and the other formats of the `image` crate.
/// - The EXIF orientation (JPEG, PNG, TIFF, WebP) is applied, so a phone photo stored sideways
///   comes out upright.
/// - Greyscale, grey + alpha, palette and RGBA become RGB (alpha is dropped, as Pillow's
///   `convert("RGB")` does); 16-bit samples are scaled to 8 bits with rounding, `round(v / 257)`.
/// - Errors name the file: [`EncodeError::EmptyFile`], [`EncodeError::FileTooLarge`],
///   [`EncodeError::NotAnImage`], [`EncodeError::TooManyPixels`] (checked from the header,
///   before any pixel is decoded) and [`EncodeError::Decode`] (truncated or corrupt data).
///
/// ```
/// use medvec_ingest::encode::{load_image, ImageLimits};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/images");
/// let image = load_image(format!("{dir}/exif_orient6_40x30.jpg").as_ref(), &ImageLimits::default())?;
/// assert_eq!((image.width(), image.height()), (30, 40)); // stored 40x30, EXIF says rotate 90°
/// let err = load_image(format!("{dir}/bad/truncated.jpg").as_ref(), &ImageLimits::default()).unwrap_err();
/// assert!(err.to_string().contains("truncated.jpg"));
/// # Ok::<(), medvec_ingest::encode::EncodeError>(())
/// ```
pub fn load_image(path: &Path, limits: &ImageLimits) -> Result<DynamicImage> {
    load_image_draft(path, limits, None)
}

/// [`load_image`], with JPEG files decoded the way Pillow's `Image.draft("RGB", draft)` makes
/// libjpeg decode them: at the largest reduction of 1/2, 1/4 or 1/8 that keeps both stored sides
/// at least `draft` = (width, height) ([`draft_scale`](super::draft_scale)), before the EXIF
/// orientation is applied (as `draft` runs before `ImageOps.exif_transpose`). Other formats, and
/// `None`, decode at full size. CMYK JPEGs decode at full size too (Pillow would reduce them;
/// they are not camera photos). The reduced decode is libjpeg-turbo's, so the pixels equal
/// Pillow's after `draft()`.
///
/// ```
/// use medvec_ingest::encode::{load_image_draft, ImageLimits};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/images/draft");
/// let photo = format!("{dir}/photo_520x390.jpg");
/// let image = load_image_draft(photo.as_ref(), &ImageLimits::default(), Some((64, 64)))?;
/// assert_eq!((image.width(), image.height()), (130, 98)); // min(520 / 64, 390 / 64) = 6 -> 1/4
/// # Ok::<(), medvec_ingest::encode::EncodeError>(())
/// ```
pub fn load_image_draft(
    path: &Path,
    limits: &ImageLimits,
    draft: Option<(u32, u32)>,
) -> Result<DynamicImage> {
    let bytes = read_bounded(path, limits)?;
    decode_image_bytes(path, &bytes, limits, draft)
}

/// [`load_image_draft`] on bytes already in memory (an upload): the same limits, checks and
/// decoders; `path` only names the bytes in errors. Nothing is written to disk.
pub fn decode_image_bytes(
    path: &Path,
    bytes: &[u8],
    limits: &ImageLimits,
    draft: Option<(u32, u32)>,
) -> Result<DynamicImage> {
    if bytes.is_empty() {
        return Err(EncodeError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(EncodeError::FileTooLarge {
            path: path.to_path_buf(),
            bytes: bytes.len() as u64,
            limit: limits.max_file_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| EncodeError::io(path, e))?;
    let Some(format) = reader.format() else {
        return Err(EncodeError::not_image(path, unknown_format_detail(bytes)));
    };
    let mut reader = reader;
    reader.limits(decoder_limits(limits));
    let mut decoder = reader.into_decoder().map_err(|e| image_error(path, e))?;
    let stored = checked_dimensions(path, &decoder, limits)?;
    // A damaged EXIF block should not lose the picture: read it as "no rotation".
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    if format == ImageFormat::Jpeg {
        check_scan_count(path, bytes)?;
    }
    let scale = match draft {
        Some(requested) if format == ImageFormat::Jpeg => draft_scale(stored, requested),
        _ => 1,
    };
    let scaled = match scale {
        1 => None,
        _ => guarded(path, || decode_scaled(path, bytes, stored, scale))?,
    };
    let mut image = match scaled {
        Some(image) => image,
        None => guarded(path, || {
            DynamicImage::from_decoder(decoder).map_err(|e| image_error(path, e))
        })?,
    };
    check_complete(path, bytes)?;
    image.apply_orientation(orientation);
    Ok(match image {
        DynamicImage::ImageRgb8(_) => image,
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    })
}

/// Most scans (SOS markers) a JPEG may have. A camera's progressive JPEG has about 10; a hostile
/// one with thousands of tiny scans makes every decoder (libjpeg, and Pillow through it) redo the
/// whole image per scan, for minutes. libjpeg-turbo's own tools cap it the same way
/// (`djpeg -maxscans`).
const MAX_JPEG_SCANS: usize = 1000;

/// Refuses a JPEG with more than [`MAX_JPEG_SCANS`] scans, counted before decoding. `FF DA` is
/// the SOS marker: entropy-coded data escapes every `FF` with `FF 00`, so the pair only occurs as
/// a marker (an EXIF thumbnail's scans count too, which only makes the count an upper bound).
fn check_scan_count(path: &Path, bytes: &[u8]) -> Result<()> {
    let scans = bytes.windows(2).filter(|w| w == &[0xFF, 0xDA]).count();
    if scans > MAX_JPEG_SCANS {
        return Err(EncodeError::decode(
            path,
            format!("{scans} JPEG scans, more than the limit of {MAX_JPEG_SCANS} (a decoder would take minutes)"),
        ));
    }
    Ok(())
}

/// The stored (width, height), refused when over the pixel limit (read from the header, before
/// any pixel is decoded) or empty.
fn checked_dimensions(
    path: &Path,
    decoder: &impl ImageDecoder,
    limits: &ImageLimits,
) -> Result<(u32, u32)> {
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(EncodeError::TooManyPixels {
            path: path.to_path_buf(),
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(EncodeError::decode(
            path,
            format!("image has {width}x{height} pixels"),
        ));
    }
    Ok((width, height))
}

/// Runs a decode, turning a panic inside a third-party decoder into an error naming the file:
/// one malformed file must not abort the ingest of a whole archive. libjpeg's fatal errors
/// arrive this way too, with their message.
fn guarded<T>(path: &Path, decode: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|payload| {
        let detail = match libjpeg_message(payload.as_ref()) {
            Some(message) => format!("corrupt JPEG: {message}"),
            None => "the image decoder crashed on this file".to_string(),
        };
        Err(EncodeError::decode(path, detail))
    })
}

fn read_bounded(path: &Path, limits: &ImageLimits) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| EncodeError::io(path, e))?;
    if meta.is_dir() {
        return Err(EncodeError::not_image(path, "is a directory"));
    }
    if meta.len() == 0 {
        return Err(EncodeError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > limits.max_file_bytes {
        return Err(EncodeError::FileTooLarge {
            path: path.to_path_buf(),
            bytes: meta.len(),
            limit: limits.max_file_bytes,
        });
    }
    std::fs::read(path).map_err(|e| EncodeError::io(path, e))
}

/// The decoder's own allocation cap: the pixel limit at 16 bytes a pixel (RGBA, 32-bit float),
/// and at least 64 MiB so small limits still leave room for decoder tables.
fn decoder_limits(limits: &ImageLimits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_alloc = Some(max_alloc(limits));
    l
}

fn max_alloc(limits: &ImageLimits) -> u64 {
    limits.max_pixels.saturating_mul(16).max(64 << 20)
}

fn unknown_format_detail(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("unrecognised format (first bytes {})", head.join(" "))
}

fn image_error(path: &Path, err: ImageError) -> EncodeError {
    match err {
        ImageError::Unsupported(e) => EncodeError::not_image(path, e.to_string()),
        ImageError::Limits(e) => EncodeError::decode(path, format!("over the memory limit: {e}")),
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            EncodeError::decode(path, "truncated: the file ends before the image data does")
        }
        other => EncodeError::decode(path, other.to_string()),
    }
}

/// JPEG decoders fill a truncated scan with grey instead of failing (Pillow raises "image file is
/// truncated"), so the last scan (SOS marker, FF DA) must be followed by an end-of-image marker
/// (FF D9). Entropy-coded data cannot contain either pair (an FF there is followed by 00 or a
/// restart marker), and comparing with the last scan ignores the EOI of an EXIF thumbnail.
fn check_complete(path: &Path, bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Ok(());
    }
    // Same as "the last start-of-scan comes before the last end-of-image", but searched from the
    // ends where the markers sit: a backwards search for the first scan of a 10 MB photo read
    // the whole file (4.6% of a draft-mode ingest of camera photos).
    let is = |marker: u8| move |w: &[u8]| w == [0xFF, marker];
    let complete = bytes.windows(2).rposition(is(0xD9)).is_some_and(|end| {
        let (before, after) = bytes.split_at(end);
        !after.windows(2).any(is(0xDA)) && before.windows(2).any(is(0xDA))
    });
    if complete {
        Ok(())
    } else {
        Err(EncodeError::decode(
            path,
            "truncated JPEG: the last scan has no end-of-image marker (FF D9)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_is_complete_when_its_last_scan_is_followed_by_end_of_image() {
        let check = |bytes: &[u8]| check_complete(Path::new("x.jpg"), bytes).is_ok();
        let (soi, sos, eoi) = ([0xFF, 0xD8], [0xFF, 0xDA], [0xFF, 0xD9]);
        let data = [0x12, 0xFF, 0x00, 0x34];
        assert!(check(&[&soi[..], &sos, &data, &eoi].concat()));
        assert!(!check(&[&soi[..], &sos, &data].concat()), "cut in the scan");
        assert!(!check(&[&soi[..], &data, &eoi].concat()), "no scan at all");
        // An EXIF thumbnail ends with its own FF D9 before the main image's scan.
        let thumbnail = [&soi[..], &sos, &data, &eoi].concat();
        assert!(
            !check(&[&soi[..], &thumbnail, &sos, &data].concat()),
            "cut after thumbnail"
        );
        assert!(check(&[&soi[..], &thumbnail, &sos, &data, &eoi].concat()));
        assert!(
            check(b"not a jpeg"),
            "other formats are checked by their decoders"
        );
    }

    /// A photo whose quantisation table is renumbered (so the frame refers to a missing one)
    /// passes the header read but fails inside libjpeg's reduced decode: the fatal error
    /// unwinds out of the C code and becomes an error naming the file and libjpeg's reason.
    #[test]
    fn a_libjpeg_fatal_error_names_the_file_and_the_reason() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/images/draft/photo_520x390.jpg"
        );
        let mut bytes = std::fs::read(fixture).unwrap();
        let dqt = bytes.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
        bytes[dqt + 4] = 3; // Pq/Tq of the first table: 8-bit, table 3
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renumbered.jpg");
        std::fs::write(&path, &bytes).unwrap();
        let limits = ImageLimits::default();
        let err = load_image_draft(&path, &limits, Some((64, 64))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("renumbered.jpg"), "{text}");
        assert!(text.contains("corrupt JPEG: Quantization table"), "{text}");
    }

    /// A progressive JPEG padded with 1,200 extra scans is refused before any decoding, with or
    /// without a draft; the real progressive fixture (a handful of scans) still decodes.
    #[test]
    fn jpegs_with_thousands_of_scans_are_refused_before_decoding() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/images/progressive_96x72.jpg"
        );
        let limits = ImageLimits::default();
        load_image(fixture.as_ref(), &limits).unwrap();
        let bytes = std::fs::read(fixture).unwrap();
        let end = bytes.len() - 2; // FF D9
        let empty_scan = [0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00];
        let mut hostile = bytes[..end].to_vec();
        for _ in 0..1200 {
            hostile.extend_from_slice(&empty_scan);
        }
        hostile.extend_from_slice(&bytes[end..]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scans.jpg");
        std::fs::write(&path, &hostile).unwrap();
        for draft in [None, Some((16, 16))] {
            let err = load_image_draft(&path, &limits, draft)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("scans.jpg")
                    && err.contains("JPEG scans, more than the limit of 1000"),
                "{err}"
            );
        }
    }
}
