//! Opt-in JPEG "draft" decoding: the equivalent of Pillow's `Image.draft("RGB", (w, h))`, which
//! makes libjpeg decode at 1/2, 1/4 or 1/8 of the stored size with a reduced inverse DCT.
//!
//! A 12-megapixel camera photo fed to a 224-pixel model is mostly thrown away by the resize;
//! decoding it at 1/8 skips most of the IDCT, upsampling, colour conversion and resize work.
//! The pixels differ slightly from libjpeg's (different scaled IDCT and chroma upsampling), so
//! vectors match a notebook calling `draft()` at cosine ≥ 0.999 rather than bit for bit
//! (`crates/ingest/tests/encode_parity.rs`).

use super::error::{EncodeError, Result};
use image::{DynamicImage, GrayImage, RgbImage};
use jpeg_decoder::{Decoder, PixelFormat};
use std::path::Path;

/// DCT scale denominators libjpeg (and `jpeg-decoder`) implement, largest first.
const SCALES: [u32; 4] = [8, 4, 2, 1];

/// The reduction Pillow's `JpegImageFile.draft` picks for an image stored `stored` = (width,
/// height) when asked for `requested`: the largest of 8, 4, 2, 1 not above
/// `min(width // req_w, height // req_h)`, so both sides stay at least the requested size.
///
/// ```
/// use medvec_ingest::encode::draft_scale;
/// assert_eq!(draft_scale((4000, 3000), (224, 224)), 8); // min(17, 13) = 13 -> 8
/// assert_eq!(draft_scale((640, 480), (224, 224)), 2); // min(2, 2) = 2
/// assert_eq!(draft_scale((400, 300), (224, 224)), 1); // min(1, 1) = 1: no reduction
/// ```
pub fn draft_scale(stored: (u32, u32), requested: (u32, u32)) -> u32 {
    let fit = |side: u32, want: u32| side / want.max(1);
    let most = fit(stored.0, requested.0).min(fit(stored.1, requested.1));
    SCALES.into_iter().find(|&s| s <= most).unwrap_or(1)
}

/// The size Pillow gives after `draft` with reduction `scale`: each side rounded up.
pub(crate) fn drafted_size(stored: (u32, u32), scale: u32) -> (u32, u32) {
    (stored.0.div_ceil(scale), stored.1.div_ceil(scale))
}

/// Decodes a JPEG at 1/`scale` of its stored size (orientation not applied). `None` when the
/// file is CMYK/YCCK or 12-bit: those are not camera photos, and their colour handling would
/// differ from the full-size decoder's, so the caller decodes them at full size instead.
pub(crate) fn decode_scaled(
    path: &Path,
    bytes: &[u8],
    scale: u32,
    max_alloc: usize,
) -> Result<Option<DynamicImage>> {
    let fail = |e: jpeg_decoder::Error| EncodeError::decode(path, e.to_string());
    let mut decoder = Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(max_alloc);
    decoder.read_info().map_err(fail)?;
    let info = decoder.info().ok_or_else(|| missing_header(path))?;
    if !matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::RGB24) {
        return Ok(None);
    }
    let stored = (u32::from(info.width), u32::from(info.height));
    let want = drafted_size(stored, scale);
    // `Decoder::scale` picks the smallest reduction reaching the request in *either* axis, so
    // asking for exactly Pillow's output size selects Pillow's reduction; checked below.
    let got = decoder.scale(side(want.0), side(want.1)).map_err(fail)?;
    if (u32::from(got.0), u32::from(got.1)) != want {
        return Err(EncodeError::decode(
            path,
            format!(
                "cannot decode this {}x{} JPEG at 1/{scale} (got {}x{})",
                stored.0, stored.1, got.0, got.1
            ),
        ));
    }
    let pixels = decoder.decode().map_err(fail)?;
    Ok(Some(to_image(path, info.pixel_format, want, pixels)?))
}

fn side(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn missing_header(path: &Path) -> EncodeError {
    EncodeError::decode(path, "JPEG without a frame header")
}

fn to_image(
    path: &Path,
    format: PixelFormat,
    (width, height): (u32, u32),
    pixels: Vec<u8>,
) -> Result<DynamicImage> {
    let short = || EncodeError::decode(path, "the JPEG decoder returned too few pixels");
    Ok(match format {
        PixelFormat::L8 => {
            DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, pixels).ok_or_else(short)?)
        }
        _ => DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(short)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pillow 13's `JpegImageFile.draft`, transcribed: `scale = min(w // rw, h // rh)`, then
    /// the first of 8, 4, 2, 1 that `scale` reaches (1 when it reaches none).
    fn pillow(stored: (u32, u32), req: (u32, u32)) -> u32 {
        let scale = (stored.0 / req.0).min(stored.1 / req.1);
        *[8, 4, 2, 1].iter().find(|&&s| scale >= s).unwrap_or(&1)
    }

    #[test]
    fn scale_is_chosen_like_pillow_draft() {
        for w in [1, 7, 8, 63, 64, 127, 128, 255, 256, 511, 512, 1000, 4000] {
            for h in [1, 9, 64, 130, 448, 3000] {
                for req in [(1, 1), (64, 64), (224, 224), (64, 200)] {
                    assert_eq!(
                        draft_scale((w, h), req),
                        pillow((w, h), req),
                        "{w}x{h} asking {req:?}"
                    );
                }
            }
        }
        assert_eq!(drafted_size((4000, 3001), 8), (500, 376));
    }
}
