//! Opt-in JPEG "draft" decoding: the equivalent of Pillow's `Image.draft("RGB", (w, h))`, which
//! makes libjpeg decode at 1/2, 1/4 or 1/8 of the stored size with a reduced inverse DCT.
//!
//! A 12-megapixel camera photo fed to a 224-pixel model is mostly thrown away by the resize;
//! decoding it at 1/8 skips most of the IDCT, upsampling, colour conversion and resize work.
//! The decoder is libjpeg-turbo's (as the `mozjpeg` crate builds it), the one Pillow calls, with
//! Pillow's settings (`scale_num/scale_denom`, accurate integer IDCT, fancy upsampling), so the
//! pixels equal a notebook's that calls `draft()` (`crates/ingest/tests/encode_parity.rs`).

use super::error::{EncodeError, Result};
use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg::{ColorSpace, DctMethod, Decompress};
use std::path::Path;

/// DCT scale denominators libjpeg implements for `draft`, largest first.
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

/// Decodes a JPEG whose header reported `stored` = (width, height) (already checked against the
/// pixel limit) at 1/`scale` (2, 4 or 8) of that size, orientation not applied. `None` when the file is
/// CMYK/YCCK: not camera photos, and their colour handling would differ from the full-size
/// decoder's, so the caller decodes them at full size instead.
///
/// libjpeg reports a fatal error by unwinding out of its C code; the caller's `catch_unwind`
/// (`image_io::guarded`) stops it, and [`libjpeg_message`] turns it into the error's text.
pub(crate) fn decode_scaled(
    path: &Path,
    bytes: &[u8],
    stored: (u32, u32),
    scale: u32,
) -> Result<Option<DynamicImage>> {
    let fail = |e: std::io::Error| EncodeError::decode(path, e.to_string());
    let mut decoder = Decompress::new_mem(bytes).map_err(fail)?;
    // libjpeg allocates from its own header parse: refuse a file whose frame header differs
    // from the one the pixel limit was checked against, so the limit bounds its memory too.
    let header = (decoder.width(), decoder.height());
    if header != (stored.0 as usize, stored.1 as usize) {
        return Err(EncodeError::decode(
            path,
            format!(
                "JPEG frame header says {}x{}, first read as {}x{}",
                header.0, header.1, stored.0, stored.1
            ),
        ));
    }
    let grey = match decoder.color_space() {
        ColorSpace::JCS_GRAYSCALE => true,
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => false,
        _ => return Ok(None),
    };
    // libjpeg's scaling is `scale_num / 8`; `1 / scale` is the same reduction (it picks the
    // IDCT size from the ratio).
    decoder.scale(match scale {
        2 => 4,
        4 => 2,
        _ => 1,
    });
    // Pillow's settings (libjpeg's defaults, set so that a default changing cannot go unseen).
    decoder.dct_method(DctMethod::IntegerSlow);
    decoder.do_fancy_upsampling(true);
    let mut started = if grey {
        decoder.grayscale()
    } else {
        decoder.rgb()
    }
    .map_err(fail)?;
    let size = (started.width() as u32, started.height() as u32);
    let pixels: Vec<u8> = started.read_scanlines().map_err(fail)?;
    // A truncated file ends in libjpeg's fill-in EOI (a warning, not an error); the caller's
    // completeness check refuses it afterwards, as it does for the full-size decoder.
    started.finish().map_err(fail)?;
    check_size(path, stored, scale, size)?;
    Ok(Some(to_image(path, grey, size, pixels)?))
}

/// libjpeg's output size must be Pillow's (each side divided by `scale`, rounded up).
fn check_size(path: &Path, stored: (u32, u32), scale: u32, got: (u32, u32)) -> Result<()> {
    if got == drafted_size(stored, scale) {
        return Ok(());
    }
    Err(EncodeError::decode(
        path,
        format!(
            "cannot decode this {}x{} JPEG at 1/{scale} (got {}x{})",
            stored.0, stored.1, got.0, got.1
        ),
    ))
}

/// The text of a libjpeg fatal error, from the payload the `mozjpeg` crate unwinds with.
pub(crate) fn libjpeg_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .and_then(|m| m.strip_prefix("libjpeg fatal error: "))
}

fn to_image(
    path: &Path,
    grey: bool,
    (width, height): (u32, u32),
    pixels: Vec<u8>,
) -> Result<DynamicImage> {
    let short = || EncodeError::decode(path, "the JPEG decoder returned too few pixels");
    Ok(if grey {
        DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, pixels).ok_or_else(short)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).ok_or_else(short)?)
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
