//! `preprocessor_config.json` and the image pipeline of Hugging Face's `CLIPImageProcessor`
//! (also ViT, DINOv2/BiT, SigLIP-style configs): RGB, resize with Pillow's filters, center crop,
//! rescale, normalise, HWC -> CHW.

use super::config::{as_uint, expected_uint, kind, JsonFile};
use super::error::{EncodeError, Result};
use super::resize::{coefficient_count, resize_window, ResizeFilter, Window};
use image::{DynamicImage, RgbImage};
use serde_json::Value;
use std::borrow::Cow;
use std::path::Path;

/// Largest side accepted from a config: a hostile config must not make us allocate gigabytes.
const MAX_SIDE: u64 = 8192;
/// Largest intermediate image of a resize (about 200 MB of RGB).
const MAX_RESIZED_PIXELS: u64 = 1 << 26;
/// Most resize weights computed for one axis (4 bytes each, 16 in the AVX2 tap table): a
/// 20,000-pixel side resized to 224 needs about 80,000, so only hostile shapes come near it.
const MAX_RESIZE_COEFFICIENTS: u64 = 1 << 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResizeTarget {
    /// Shortest edge to this length, aspect kept (long edge `int(n * long / short)`).
    ShortestEdge(u32),
    /// Exactly this size, aspect not kept.
    Exact { width: u32, height: u32 },
}

/// The image half of a model folder: what `preprocessor_config.json` says to do to a picture
/// before the model sees it.
///
/// ```
/// use medvec_ingest::encode::{load_image, ImageLimits, ImagePreprocessor};
/// let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// let pre = ImagePreprocessor::from_file(format!("{root}/fixtures/models/tiny-image/preprocessor_config.json").as_ref())?;
/// let image = load_image(format!("{root}/fixtures/images/rgb_80x60.jpg").as_ref(), &ImageLimits::default())?;
/// let chw = pre.preprocess(&image)?;
/// assert_eq!(pre.fixed_size(), Some((56, 56)));
/// assert_eq!(chw.len(), 3 * 56 * 56);
/// # Ok::<(), medvec_ingest::encode::EncodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImagePreprocessor {
    path: std::path::PathBuf,
    resize: Option<(ResizeTarget, ResizeFilter)>,
    /// (width, height)
    crop: Option<(u32, u32)>,
    rescale: Option<f32>,
    normalize: Option<([f32; 3], [f32; 3])>,
    convert_rgb: bool,
}

impl ImagePreprocessor {
    /// Reads a `preprocessor_config.json`. Keys honoured: `do_resize`, `size` (`shortest_edge`,
    /// `height`/`width`, or an integer), `resample` (Pillow codes 0-5), `do_center_crop`,
    /// `crop_size` (integer or `height`/`width`), `do_rescale`, `rescale_factor`, `do_normalize`,
    /// `image_mean`, `image_std`, `do_convert_rgb`. A malformed file or a key of the wrong type
    /// is an [`EncodeError::Json`] / [`EncodeError::Config`] naming the file and the key.
    pub fn from_file(path: &Path) -> Result<ImagePreprocessor> {
        let json = JsonFile::read(path)?;
        let crop = if json.bool_or("do_center_crop", false)? {
            Some(crop_size(&json)?)
        } else {
            None
        };
        let resize = if json.bool_or("do_resize", true)? {
            Some((resize_target(&json, crop.is_some())?, resample(&json)?))
        } else {
            None
        };
        let rescale = if json.bool_or("do_rescale", true)? {
            Some(json.f64("rescale_factor")?.unwrap_or(1.0 / 255.0) as f32)
        } else {
            None
        };
        let normalize = if json.bool_or("do_normalize", true)? {
            Some((
                triplet(&json, "image_mean", false)?,
                triplet(&json, "image_std", true)?,
            ))
        } else {
            None
        };
        Ok(ImagePreprocessor {
            path: path.to_path_buf(),
            resize,
            crop,
            rescale,
            normalize,
            convert_rgb: json.bool_or("do_convert_rgb", true)?,
        })
    }

    /// The config file this came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(width, height)` of every output, when it does not depend on the input (a center crop or
    /// an exact resize); `None` for a shortest-edge resize without a crop.
    pub fn fixed_size(&self) -> Option<(u32, u32)> {
        match (self.crop, self.resize) {
            (Some(crop), _) => Some(crop),
            (None, Some((ResizeTarget::Exact { width, height }, _))) => Some((width, height)),
            _ => None,
        }
    }

    /// The `size` a notebook passes to Pillow's `Image.draft("RGB", size)` for this model, as
    /// (width, height), or `None` when the model sees the pixels unresized (no reduction is safe).
    /// Square, because `draft` runs before the EXIF rotation, so either stored side may become
    /// either side of the model input:
    /// - shortest-edge resize to `n`: `(n, n)` (both sides stay at least `n`, so the resize
    ///   still only shrinks);
    /// - exact resize to `w x h`: `(m, m)` with `m = max(w, h)`.
    pub fn draft_request(&self) -> Option<(u32, u32)> {
        let side = match self.resize? {
            (ResizeTarget::ShortestEdge(n), _) => n,
            (ResizeTarget::Exact { width, height }, _) => width.max(height),
        };
        Some((side, side))
    }

    /// Runs the pipeline on one image: a `3 x height x width` float32 tensor, channel-major
    /// (what `pixel_values[i]` holds in Python).
    pub fn preprocess(&self, image: &DynamicImage) -> Result<Vec<f32>> {
        let rgb = self.to_rgb(image)?;
        let size = match self.resize {
            Some((target, filter)) => {
                let (w, h) = target_size(target, rgb.width(), rgb.height());
                self.check_resized(&rgb, w, h, filter)?;
                (w, h)
            }
            None => rgb.dimensions(),
        };
        let crop = CenterCrop::new(size, self.crop.unwrap_or(size));
        // Only the pixels the crop keeps are resized: the others would be thrown away.
        let kept = match self.resize {
            Some((_, filter)) => Cow::Owned(resize_window(&rgb, size, filter, &crop.kept)),
            None if crop.keeps_all(size) => rgb,
            None => Cow::Owned(crop.kept.copy(&rgb)),
        };
        Ok(self.to_chw(&crop.pad(kept)))
    }

    /// A very elongated image (a 1 x 80,000,000 strip passes the pixel limit) would resize to
    /// billions of pixels with a shortest-edge resize, or need gigabytes of weights for an exact
    /// one (each output of the long axis averages millions of inputs): refuse it instead of
    /// exhausting memory.
    fn check_resized(&self, image: &RgbImage, w: u32, h: u32, filter: ResizeFilter) -> Result<()> {
        let (iw, ih) = image.dimensions();
        let weights = coefficient_count(iw, w, filter).max(coefficient_count(ih, h, filter));
        let why = if u64::from(w) * u64::from(h) > MAX_RESIZED_PIXELS {
            format!("more than {MAX_RESIZED_PIXELS} pixels")
        } else if weights > MAX_RESIZE_COEFFICIENTS {
            format!("{weights} resize weights, more than {MAX_RESIZE_COEFFICIENTS}")
        } else {
            return Ok(());
        };
        Err(EncodeError::input(
            &self.path,
            format!("a {iw}x{ih} image would be resized to {w}x{h}: {why}"),
        ))
    }

    /// The image as 8-bit RGB: borrowed when it already is (nothing is copied).
    fn to_rgb<'a>(&self, image: &'a DynamicImage) -> Result<Cow<'a, RgbImage>> {
        if image.width() == 0 || image.height() == 0 {
            return Err(EncodeError::input(&self.path, "image has no pixels"));
        }
        match image {
            DynamicImage::ImageRgb8(rgb) => Ok(Cow::Borrowed(rgb)),
            other if self.convert_rgb => Ok(Cow::Owned(other.to_rgb8())),
            other => Err(EncodeError::input(
                &self.path,
                format!(
                    "image is {:?}, not 8-bit RGB, and do_convert_rgb is false",
                    other.color()
                ),
            )),
        }
    }

    /// uint8 HWC -> float32 CHW with the same float32 operations, in the same order, as numpy:
    /// `x = a.astype(float32) * rescale; x = (x - mean) / std`. Each channel has only 256
    /// possible results, computed once and looked up.
    fn to_chw(&self, image: &RgbImage) -> Vec<f32> {
        let raw = image.as_raw();
        let mut out = Vec::with_capacity(raw.len());
        for c in 0..3 {
            let values: [f32; 256] = std::array::from_fn(|v| self.pixel_value(c, v as u8));
            out.extend(raw.chunks_exact(3).map(|px| values[usize::from(px[c])]));
        }
        out
    }

    fn pixel_value(&self, channel: usize, byte: u8) -> f32 {
        let mut x = f32::from(byte);
        if let Some(r) = self.rescale {
            x *= r;
        }
        if let Some((mean, std)) = self.normalize {
            x = (x - mean[channel]) / std[channel];
        }
        x
    }
}

/// Output size of a resize, as `transformers.image_transforms.get_resize_output_image_size`
/// computes it (the long edge is truncated, not rounded).
fn target_size(target: ResizeTarget, w: u32, h: u32) -> (u32, u32) {
    match target {
        ResizeTarget::Exact { width, height } => (width, height),
        ResizeTarget::ShortestEdge(n) => {
            let (short, long) = if w <= h { (w, h) } else { (h, w) };
            // Python's int(n * long / short): an exact integer product, a correctly rounded
            // float division (both operands fit in f64 exactly), then truncation.
            // `as u32` saturates; check_resized then refuses the result.
            let new_long = ((u64::from(n) * u64::from(long)) as f64 / f64::from(short)) as u32;
            let new_long = new_long.max(1);
            if w <= h {
                (n, new_long)
            } else {
                (new_long, n)
            }
        }
    }
}

/// `transformers.image_transforms.center_crop` of an image of some size: the window's top-left
/// corner is `((w - cw) // 2, (h - ch) // 2)` (floor division, so negative when the image is
/// smaller than the crop), and pixels outside the image are black, which is what its zero
/// padding amounts to.
struct CenterCrop {
    /// (width, height) of the crop.
    size: (u32, u32),
    /// The pixels of the image inside the crop.
    kept: Window,
    /// Where `kept`'s top-left pixel lands in the crop.
    at: (usize, usize),
}

impl CenterCrop {
    fn new((w, h): (u32, u32), (crop_w, crop_h): (u32, u32)) -> CenterCrop {
        let (x, left) = crop_axis(w, crop_w);
        let (y, top) = crop_axis(h, crop_h);
        CenterCrop {
            size: (crop_w, crop_h),
            kept: Window { x, y },
            at: (left, top),
        }
    }

    /// Whether the crop is the whole `size` image.
    fn keeps_all(&self, size: (u32, u32)) -> bool {
        self.size == size
    }

    /// The crop, given its kept pixels: those, bordered with black where the crop is larger
    /// than the image.
    fn pad<'a>(&self, kept: Cow<'a, RgbImage>) -> Cow<'a, RgbImage> {
        if kept.dimensions() == self.size {
            return kept;
        }
        let mut out = RgbImage::new(self.size.0, self.size.1);
        let (stride, kept_row) = (self.size.0 as usize * 3, kept.width() as usize * 3);
        let rows = out.chunks_exact_mut(stride).skip(self.at.1);
        for (out_row, row) in rows.zip(kept.chunks_exact(kept_row)) {
            out_row[self.at.0 * 3..][..kept_row].copy_from_slice(row);
        }
        Cow::Owned(out)
    }
}

/// One axis of a center crop of `crop` pixels out of `len`: the image pixels kept (never
/// empty), and the crop position of the first one.
fn crop_axis(len: u32, crop: u32) -> (std::ops::Range<usize>, usize) {
    let (len, crop) = (i64::from(len), i64::from(crop));
    let start = (len - crop).div_euclid(2);
    let kept = start.max(0)..(start + crop).min(len);
    let at = kept.start - start;
    (kept.start as usize..kept.end as usize, at as usize)
}

fn resample(json: &JsonFile) -> Result<ResizeFilter> {
    match json.get("resample") {
        None => Ok(ResizeFilter::Bicubic),
        Some(v) => as_uint(v)
            .and_then(ResizeFilter::from_pil)
            .ok_or_else(|| {
                json.error(
                    "resample",
                    format!(
                        "expected a Pillow filter code 0-5 (0 nearest, 2 bilinear, 3 bicubic, ...), found {}",
                        kind(v)
                    ),
                )
            }),
    }
}

fn resize_target(json: &JsonFile, has_crop: bool) -> Result<ResizeTarget> {
    let Some(value) = json.get("size") else {
        return Err(json.error("size", "missing, and do_resize is true"));
    };
    if let Some(n) = as_uint(value) {
        let n = side(json, "size", n)?;
        // transformers: an integer means the shortest edge for CLIP-style processors (which
        // crop afterwards) and a square for ViT-style ones.
        return Ok(if has_crop || is_clip(json) {
            ResizeTarget::ShortestEdge(n)
        } else {
            ResizeTarget::Exact {
                width: n,
                height: n,
            }
        });
    }
    let Value::Object(map) = value else {
        return Err(json.error(
            "size",
            format!("expected an integer or an object, found {}", kind(value)),
        ));
    };
    if map.contains_key("shortest_edge") {
        if map.keys().any(|k| k != "shortest_edge") {
            return Err(json.error(
                "size",
                "only `shortest_edge` alone is supported (no `longest_edge`)",
            ));
        }
        return Ok(ResizeTarget::ShortestEdge(size_key(
            json,
            "size",
            map,
            "shortest_edge",
        )?));
    }
    if map.contains_key("height") || map.contains_key("width") {
        return Ok(ResizeTarget::Exact {
            width: size_key(json, "size", map, "width")?,
            height: size_key(json, "size", map, "height")?,
        });
    }
    Err(json.error("size", "expected `shortest_edge` or `height` and `width`"))
}

fn is_clip(json: &JsonFile) -> bool {
    matches!(json.string("image_processor_type"), Ok(Some(t)) if t.contains("CLIP"))
}

/// `crop_size`: an integer (square) or `{"height": h, "width": w}`, as (width, height).
fn crop_size(json: &JsonFile) -> Result<(u32, u32)> {
    let key = "crop_size";
    let Some(value) = json.get(key) else {
        return Err(json.error(key, "missing, and do_center_crop is true"));
    };
    if let Some(n) = as_uint(value) {
        let n = side(json, key, n)?;
        return Ok((n, n));
    }
    match value {
        Value::Object(map) => Ok((
            size_key(json, key, map, "width")?,
            size_key(json, key, map, "height")?,
        )),
        other => Err(json.error(
            key,
            format!(
                "expected an integer or {{\"height\", \"width\"}}, found {}",
                kind(other)
            ),
        )),
    }
}

fn size_key(
    json: &JsonFile,
    key: &str,
    map: &serde_json::Map<String, Value>,
    sub: &str,
) -> Result<u32> {
    let name = format!("{key}.{sub}");
    let v = map.get(sub).ok_or_else(|| json.error(&name, "missing"))?;
    let n = as_uint(v).ok_or_else(|| json.error(&name, expected_uint(v)))?;
    side(json, &name, n)
}

fn side(json: &JsonFile, key: &str, n: u64) -> Result<u32> {
    if (1..=MAX_SIDE).contains(&n) {
        Ok(n as u32)
    } else {
        Err(json.error(key, format!("{n} is outside 1..={MAX_SIDE}")))
    }
}

/// `image_mean` / `image_std`: three numbers (or one, used for all channels). Required when
/// `do_normalize` is true: guessing ImageNet or CLIP statistics would silently give wrong vectors.
fn triplet(json: &JsonFile, key: &str, nonzero: bool) -> Result<[f32; 3]> {
    let Some(value) = json.get(key) else {
        return Err(json.error(key, "missing, and do_normalize is true"));
    };
    let numbers: Vec<f64> = match value {
        Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN)],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect(),
        other => return Err(json.error(key, format!("expected 3 numbers, found {}", kind(other)))),
    };
    let ok = |x: &f64| x.is_finite() && (!nonzero || *x != 0.0);
    match numbers.as_slice() {
        [a] if ok(a) => Ok([*a as f32; 3]),
        [a, b, c] if [a, b, c].into_iter().all(ok) => Ok([*a as f32, *b as f32, *c as f32]),
        _ => Err(json.error(
            key,
            format!(
                "expected 3 finite numbers{}, found {}",
                if nonzero { ", none zero" } else { "" },
                kind(value)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::resize::reference::{self, Rng, FILTERS};

    #[test]
    fn shortest_edge_matches_transformers() {
        let t = ResizeTarget::ShortestEdge(64);
        assert_eq!(target_size(t, 80, 60), (85, 64)); // int(64 * 80 / 60) = int(85.33)
        assert_eq!(target_size(t, 30, 90), (64, 192));
        assert_eq!(target_size(t, 120, 20), (384, 64));
        assert_eq!(target_size(t, 64, 64), (64, 64));
    }

    #[test]
    fn draft_requests_keep_every_side_at_least_the_resize() {
        let with = |resize| ImagePreprocessor {
            path: "p.json".into(),
            resize,
            crop: None,
            rescale: None,
            normalize: None,
            convert_rgb: true,
        };
        let shortest = Some((ResizeTarget::ShortestEdge(224), ResizeFilter::Bicubic));
        assert_eq!(with(shortest).draft_request(), Some((224, 224)));
        let exact = ResizeTarget::Exact {
            width: 384,
            height: 256,
        };
        let exact = Some((exact, ResizeFilter::Bilinear));
        assert_eq!(with(exact).draft_request(), Some((384, 384)));
        assert_eq!(with(None).draft_request(), None);
    }

    #[test]
    fn elongated_images_are_refused_not_allocated() {
        let pre = ImagePreprocessor {
            path: "p.json".into(),
            resize: Some((ResizeTarget::ShortestEdge(64), ResizeFilter::Bicubic)),
            crop: Some((56, 56)),
            rescale: None,
            normalize: None,
            convert_rgb: true,
        };
        let strip = DynamicImage::ImageRgb8(RgbImage::new(70_000, 1));
        let err = pre.preprocess(&strip).unwrap_err().to_string();
        assert!(err.contains("would be resized to 4480000x64"), "{err}");
        let empty = DynamicImage::ImageRgb8(RgbImage::new(0, 0));
        assert!(pre.preprocess(&empty).is_err());
    }

    /// An exact resize keeps the output small, but each output of an 8,000,000-pixel side
    /// averages ~140,000 inputs: 32 M weights. Refused before any is computed; a 20,000-pixel
    /// side (80,000 weights) is fine.
    #[test]
    fn resizes_needing_too_many_weights_are_refused() {
        let exact = ResizeTarget::Exact {
            width: 224,
            height: 224,
        };
        let pre = ImagePreprocessor {
            path: "p.json".into(),
            resize: Some((exact, ResizeFilter::Bicubic)),
            crop: None,
            rescale: None,
            normalize: None,
            convert_rgb: true,
        };
        let strip = DynamicImage::ImageRgb8(RgbImage::new(8_000_000, 1));
        let err = pre.preprocess(&strip).unwrap_err().to_string();
        assert!(err.contains("resize weights, more than 16777216"), "{err}");
        let wide = RgbImage::new(20_000, 2);
        pre.check_resized(&wide, 224, 224, ResizeFilter::Lanczos)
            .unwrap();
    }

    fn center_crop(image: &RgbImage, crop_w: u32, crop_h: u32) -> RgbImage {
        let crop = CenterCrop::new(image.dimensions(), (crop_w, crop_h));
        crop.pad(Cow::Owned(crop.kept.copy(image))).into_owned()
    }

    #[test]
    fn center_crop_floors_and_pads_like_transformers() {
        let img = RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 + 1, y as u8 + 1, 0]));
        let c = center_crop(&img, 2, 2); // left (5-2)//2 = 1, top (4-2)//2 = 1
        assert_eq!(c.get_pixel(0, 0).0, [2, 2, 0]);
        // Crop 7 wide from 5: padded canvas 7, image at ceil(2/2) = 1, window at 0.
        let c = center_crop(&img, 7, 4);
        assert_eq!(c.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(1, 0).0, [1, 1, 0]);
        assert_eq!(c.get_pixel(5, 0).0, [5, 1, 0]);
        assert_eq!(c.get_pixel(6, 0).0, [0, 0, 0]);
        // Crop 8 wide from 5: canvas 8, image at ceil(3/2) = 2.
        let c = center_crop(&img, 8, 4);
        assert_eq!(c.get_pixel(1, 0).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(2, 0).0, [1, 1, 0]);
    }

    /// `preprocess` as it was before it resized only the crop: the whole resize, transformers'
    /// center crop pixel by pixel, then the float operations value by value.
    fn reference_preprocess(pre: &ImagePreprocessor, image: &RgbImage) -> Vec<f32> {
        let resized = match pre.resize {
            Some((target, filter)) => {
                let (w, h) = target_size(target, image.width(), image.height());
                reference::resize(image, w, h, filter)
            }
            None => image.clone(),
        };
        let (w, h) = (i64::from(resized.width()), i64::from(resized.height()));
        let (crop_w, crop_h) = pre.crop.unwrap_or(resized.dimensions());
        let left = (w - i64::from(crop_w)).div_euclid(2);
        let top = (h - i64::from(crop_h)).div_euclid(2);
        let cropped = RgbImage::from_fn(crop_w, crop_h, |x, y| {
            let (sx, sy) = (left + i64::from(x), top + i64::from(y));
            if (0..w).contains(&sx) && (0..h).contains(&sy) {
                *resized.get_pixel(sx as u32, sy as u32)
            } else {
                image::Rgb([0, 0, 0])
            }
        });
        let plane = crop_w as usize * crop_h as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in cropped.pixels().enumerate() {
            for c in 0..3 {
                let mut x = f32::from(px.0[c]);
                if let Some(r) = pre.rescale {
                    x *= r;
                }
                if let Some((mean, std)) = pre.normalize {
                    x = (x - mean[c]) / std[c];
                }
                out[c * plane + i] = x;
            }
        }
        out
    }

    /// Random images through random pipelines (shortest-edge or exact resizes with every
    /// filter, or none; crops smaller or larger than the resize, or none; with and without
    /// rescaling and normalising) give the reference's floats, bit for bit.
    #[test]
    fn preprocess_equals_whole_resize_then_crop() {
        let mut rng = Rng(3);
        for case in 0..400 {
            let mut side = || match rng.below(4) {
                0 => 1,
                _ => 1 + rng.below(100) as u32,
            };
            let (w, h) = (side(), side());
            let (kind, a, b) = (rng.below(3), 1 + rng.below(64), 1 + rng.below(64));
            let target = match kind {
                0 => None,
                1 => Some(ResizeTarget::ShortestEdge(a as u32)),
                _ => Some(ResizeTarget::Exact {
                    width: a as u32,
                    height: b as u32,
                }),
            };
            let filter = FILTERS[rng.below(FILTERS.len())];
            let crop =
                (rng.below(4) != 0).then(|| (1 + rng.below(90) as u32, 1 + rng.below(90) as u32));
            let pre = ImagePreprocessor {
                path: "p.json".into(),
                resize: target.map(|t| (t, filter)),
                crop,
                rescale: (rng.below(2) == 0).then_some(1.0 / 255.0),
                normalize: (rng.below(2) == 0).then_some(([0.48, 0.46, 0.41], [0.27, 0.26, 0.28])),
                convert_rgb: true,
            };
            let rgb = rng.image(w, h);
            let image = if rng.below(4) == 0 {
                DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rgb.clone()).to_rgba8())
            } else {
                DynamicImage::ImageRgb8(rgb.clone())
            };
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            assert_eq!(
                bits(pre.preprocess(&image).unwrap()),
                bits(reference_preprocess(&pre, &rgb)),
                "case {case}: {w}x{h}, {pre:?}"
            );
        }
    }
}
