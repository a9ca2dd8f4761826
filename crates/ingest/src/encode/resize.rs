//! Pillow's `Image.resize` for 8-bit RGB images, ported from Pillow's `libImaging/Resample.c`
//! and `Geometry.c`, so that medvec's pixels equal the ones users' notebooks feed their models.
//!
//! Convolution filters (box, bilinear, hamming, bicubic with a = -0.5, lanczos): separable, the
//! filter support widened by the downscale factor (antialiasing), weights normalised per output
//! pixel then converted to 22-bit fixed point; one pass into an 8-bit image (rounded and
//! clipped), then the other pass (which one goes first follows Pillow 13: `vertical_first`).
//! Nearest: Pillow's affine scaling, source coordinate `(x + 0.5) * scale` accumulated in double
//! precision and truncated.

use image::RgbImage;

/// Pillow's resampling filters, by their Pillow codes (`preprocessor_config.json`'s `resample`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeFilter {
    /// 0, `PIL.Image.NEAREST`.
    Nearest,
    /// 1, `PIL.Image.LANCZOS`.
    Lanczos,
    /// 2, `PIL.Image.BILINEAR`.
    Bilinear,
    /// 3, `PIL.Image.BICUBIC`.
    Bicubic,
    /// 4, `PIL.Image.BOX`.
    Box,
    /// 5, `PIL.Image.HAMMING`.
    Hamming,
}

impl ResizeFilter {
    /// The filter with Pillow code `code`.
    pub fn from_pil(code: u64) -> Option<ResizeFilter> {
        Some(match code {
            0 => ResizeFilter::Nearest,
            1 => ResizeFilter::Lanczos,
            2 => ResizeFilter::Bilinear,
            3 => ResizeFilter::Bicubic,
            4 => ResizeFilter::Box,
            5 => ResizeFilter::Hamming,
            _ => return None,
        })
    }

    /// Half-width of the filter at scale 1.
    fn support(self) -> f64 {
        match self {
            ResizeFilter::Nearest | ResizeFilter::Box => 0.5,
            ResizeFilter::Bilinear | ResizeFilter::Hamming => 1.0,
            ResizeFilter::Bicubic => 2.0,
            ResizeFilter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            ResizeFilter::Nearest | ResizeFilter::Box => box_filter(x),
            ResizeFilter::Bilinear => bilinear_filter(x),
            ResizeFilter::Hamming => hamming_filter(x),
            ResizeFilter::Bicubic => bicubic_filter(x),
            ResizeFilter::Lanczos => lanczos_filter(x),
        }
    }
}

fn box_filter(x: f64) -> f64 {
    if x > -0.5 && x <= 0.5 {
        1.0
    } else {
        0.0
    }
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn hamming_filter(x: f64) -> f64 {
    let x = x.abs();
    if x == 0.0 {
        1.0
    } else if x >= 1.0 {
        0.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x * (0.54 + 0.46 * x.cos())
    }
}

fn bicubic_filter(x: f64) -> f64 {
    // Pillow uses a = -0.5 (Keys), not the a = -0.75 of OpenCV.
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos_filter(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// Bits of fraction in Pillow's fixed-point weights: 32 - 8 - 2.
const PRECISION_BITS: u32 = 22;

/// Per output pixel: first input index, number of taps, and `ksize` fixed-point weights.
struct Coefficients {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for a full-image box.
fn coefficients(in_size: u32, out_size: u32, filter: ResizeFilter) -> Coefficients {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let ss = 1.0 / filterscale;
    let mut bounds = Vec::with_capacity(out_size as usize);
    let mut weights = vec![0i32; out_size as usize * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size as usize {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero, as `as i64` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) - xmin;
        let taps = xmax.max(0) as usize;
        let mut sum = 0.0;
        for (x, slot) in k.iter_mut().enumerate().take(taps) {
            let w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            *slot = w;
            sum += w;
        }
        let row = &mut weights[xx * ksize..xx * ksize + taps];
        for (out, w) in row.iter_mut().zip(&k) {
            let w = if sum != 0.0 { w / sum } else { *w };
            *out = to_fixed(w);
        }
        bounds.push((xmin as usize, taps));
    }
    Coefficients {
        ksize,
        bounds,
        weights,
    }
}

/// Rounds half away from zero by truncation, exactly like Pillow's `normalize_coeffs_8bpc`.
fn to_fixed(w: f64) -> i32 {
    let scaled = w * f64::from(1u32 << PRECISION_BITS);
    if w < 0.0 {
        (scaled - 0.5) as i32
    } else {
        (scaled + 0.5) as i32
    }
}

/// Pillow's `clip8`: drop the fraction (floor), clamp to 0..=255.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The rounding offset every accumulator starts from (Pillow's `ss = 1 << (PRECISION_BITS-1)`).
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Convolves consecutive RGB pixels (`pixels`: `weights.len()` pixels, 3 bytes each). Sums are
/// 32-bit, as in Pillow's `ImagingResampleHorizontal_8bpc` (wrapping where C would overflow).
fn convolve_pixels(pixels: &[u8], weights: &[i32]) -> [u8; 3] {
    let mut acc = [HALF; 3];
    for (px, &w) in pixels.chunks_exact(3).zip(weights) {
        for c in 0..3 {
            acc[c] = acc[c].wrapping_add(i32::from(px[c]) * w);
        }
    }
    [clip8(acc[0]), clip8(acc[1]), clip8(acc[2])]
}

fn horizontal(src: &RgbImage, out_w: u32, filter: ResizeFilter) -> RgbImage {
    let (in_w, h) = src.dimensions();
    let co = coefficients(in_w, out_w, filter);
    let mut out = RgbImage::new(out_w, h);
    let row_len = in_w as usize * 3;
    for (y, out_row) in out.rows_mut().enumerate() {
        let row = &src.as_raw()[y * row_len..(y + 1) * row_len];
        for (xx, px) in out_row.enumerate() {
            let (first, taps) = co.bounds[xx];
            let w = &co.weights[xx * co.ksize..xx * co.ksize + taps];
            px.0 = convolve_pixels(&row[first * 3..(first + taps) * 3], w);
        }
    }
    out
}

/// Each output row is a weighted sum of whole input rows: accumulated row by row, so the inner
/// loop runs over contiguous bytes (and vectorises); per byte the taps are summed in the same
/// order as Pillow's `ImagingResampleVertical_8bpc`.
fn vertical(src: &RgbImage, out_h: u32, filter: ResizeFilter) -> RgbImage {
    let (w, in_h) = src.dimensions();
    let co = coefficients(in_h, out_h, filter);
    let mut out = RgbImage::new(w, out_h);
    let stride = w as usize * 3;
    let mut acc = vec![HALF; stride];
    for (yy, out_row) in out.chunks_exact_mut(stride).enumerate() {
        let (first, taps) = co.bounds[yy];
        let weights = &co.weights[yy * co.ksize..yy * co.ksize + taps];
        acc.fill(HALF);
        for (i, &weight) in weights.iter().enumerate() {
            let row = &src.as_raw()[(first + i) * stride..(first + i + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i32::from(p) * weight);
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Pillow's nearest-neighbour source indices: `COORD(xo)` with `xo` accumulated in doubles.
fn nearest_table(in_size: u32, out_size: u32) -> Vec<usize> {
    let step = f64::from(in_size) / f64::from(out_size);
    let mut pos = step * 0.5;
    let last = in_size as usize - 1;
    (0..out_size)
        .map(|_| {
            let index = (pos as usize).min(last);
            pos += step;
            index
        })
        .collect()
}

fn nearest(src: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    let xs = nearest_table(src.width(), out_w);
    let ys = nearest_table(src.height(), out_h);
    RgbImage::from_fn(out_w, out_h, |x, y| {
        *src.get_pixel(xs[x as usize] as u32, ys[y as usize] as u32)
    })
}

/// `image.resize((out_w, out_h), resample=filter)` as Pillow computes it. Sizes must be non-zero.
pub(crate) fn resize(src: &RgbImage, out_w: u32, out_h: u32, filter: ResizeFilter) -> RgbImage {
    let (in_w, in_h) = src.dimensions();
    if (in_w, in_h) == (out_w, out_h) {
        return src.clone(); // Pillow returns a copy without resampling
    }
    if filter == ResizeFilter::Nearest {
        return nearest(src, out_w, out_h);
    }
    // Pillow skips a pass whose size does not change; the other pass sees the original pixels.
    let across = |img: &RgbImage| {
        if img.width() != out_w {
            horizontal(img, out_w, filter)
        } else {
            img.clone()
        }
    };
    let down = |img: &RgbImage| {
        if img.height() != out_h {
            vertical(img, out_h, filter)
        } else {
            img.clone()
        }
    };
    if vertical_first(in_w, in_h, out_w, out_h) {
        across(&down(src))
    } else {
        down(&across(src))
    }
}

/// Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks
/// by more than twice as many pixels as the width; before, it always went horizontal first.
/// The order matters because the intermediate image is rounded to 8 bits. This matches the
/// Pillow pinned in tools/requirements.txt (checked on 395 random size pairs); with an older
/// Pillow a few pixels differ by one level.
fn vertical_first(in_w: u32, in_h: u32, out_w: u32, out_h: u32) -> bool {
    let shrink_h = i64::from(in_h) - i64::from(out_h);
    let shrink_w = i64::from(in_w) - i64::from(out_w);
    out_h < in_h && shrink_h > 2 * shrink_w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for filter in [
            ResizeFilter::Bilinear,
            ResizeFilter::Bicubic,
            ResizeFilter::Lanczos,
        ] {
            for (i, o) in [(90u32, 64u32), (30, 64), (1000, 7)] {
                let co = coefficients(i, o, filter);
                for (xx, (_, taps)) in co.bounds.iter().enumerate() {
                    let s: i64 = co.weights[xx * co.ksize..xx * co.ksize + taps]
                        .iter()
                        .map(|&w| i64::from(w))
                        .sum();
                    assert!(
                        (s - (1 << PRECISION_BITS)).abs() <= *taps as i64,
                        "{filter:?} {i}->{o}"
                    );
                }
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = RgbImage::from_pixel(37, 23, image::Rgb([10, 128, 250]));
        for filter in [
            ResizeFilter::Nearest,
            ResizeFilter::Box,
            ResizeFilter::Bilinear,
            ResizeFilter::Hamming,
            ResizeFilter::Bicubic,
            ResizeFilter::Lanczos,
        ] {
            let out = resize(&src, 64, 9, filter);
            assert!(out.pixels().all(|p| p.0 == [10, 128, 250]), "{filter:?}");
        }
    }

    #[test]
    fn nearest_picks_pillow_indices() {
        // Pillow: Image.new("L", (4, 1)).resize((2, 1), NEAREST) samples columns 1 and 3.
        assert_eq!(nearest_table(4, 2), vec![1, 3]);
        assert_eq!(nearest_table(3, 6), vec![0, 0, 1, 1, 2, 2]);
    }
}
