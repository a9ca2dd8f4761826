//! Pillow's `Image.resize` for 8-bit RGB images, ported from Pillow's `libImaging/Resample.c`
//! and `Geometry.c`, so that medvec's pixels equal the ones users' notebooks feed their models.
//!
//! Convolution filters (box, bilinear, hamming, bicubic with a = -0.5, lanczos): separable, the
//! filter support widened by the downscale factor (antialiasing), weights normalised per output
//! pixel then converted to 22-bit fixed point; one pass into an 8-bit image (rounded and
//! clipped), then the other pass (which one goes first follows Pillow 13: `vertical_first`).
//! Nearest: Pillow's affine scaling, source coordinate `(x + 0.5) * scale` accumulated in double
//! precision and truncated.
//!
//! Only a window of the output is computed (the part a center crop keeps, and the intermediate
//! pixels it needs): each output pixel depends only on its own coefficients, so the window's
//! pixels equal the whole resize's. With AVX2 (detected at run time) the passes use 256-bit
//! integer arithmetic that gives the same 32-bit sums as Pillow's C.

use image::RgbImage;
use std::ops::Range;

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

/// Per kept output pixel: first input index, number of taps, and `ksize` fixed-point weights.
struct Coefficients {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

impl Coefficients {
    /// Number of output pixels described.
    fn len(&self) -> usize {
        self.bounds.len()
    }

    /// First input pixel and weights of the `i`th output pixel described.
    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (first, taps) = self.bounds[i];
        (first, &self.weights[i * self.ksize..i * self.ksize + taps])
    }

    /// The input pixels these outputs read (every output reads at least one).
    fn reads(&self) -> Range<usize> {
        let start = self.bounds.iter().map(|b| b.0).min().unwrap_or(0);
        let end = self.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
        start..end
    }
}

/// Taps per output pixel of a resize from `in_size` to `out_size`: the filter's support widened
/// by the downscale factor (Pillow's `ksize`).
fn kernel_size(in_size: u32, out_size: u32, filter: ResizeFilter) -> usize {
    let filterscale = (f64::from(in_size) / f64::from(out_size)).max(1.0);
    (filter.support() * filterscale).ceil() as usize * 2 + 1
}

/// Weights a full resize of one axis from `in_size` to `out_size` computes: what the
/// coefficient table (and the AVX2 tap table, 4 times larger) costs in memory.
pub(crate) fn coefficient_count(in_size: u32, out_size: u32, filter: ResizeFilter) -> u64 {
    kernel_size(in_size, out_size, filter) as u64 * u64::from(out_size)
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the output pixels
/// `outputs` of a full-image resize (each output's weights depend only on its own position).
fn coefficients(
    in_size: u32,
    out_size: u32,
    filter: ResizeFilter,
    outputs: Range<usize>,
) -> Coefficients {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = kernel_size(in_size, out_size, filter);
    let ss = 1.0 / filterscale;
    let mut bounds = Vec::with_capacity(outputs.len());
    let mut weights = vec![0i32; outputs.len() * ksize];
    let mut k = vec![0f64; ksize];
    for (row, xx) in weights.chunks_exact_mut(ksize).zip(outputs) {
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
        for (out, w) in row[..taps].iter_mut().zip(&k) {
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

/// An image's bytes (rows of `stride` bytes) as one pass reads them: its first row (vertical
/// pass) or column (horizontal pass) is pixel `origin` of the resize's input.
struct Pixels<'a> {
    raw: &'a [u8],
    stride: usize,
    origin: usize,
}

impl<'a> Pixels<'a> {
    fn of(src: &'a RgbImage, origin: usize) -> Pixels<'a> {
        Pixels {
            raw: src.as_raw(),
            stride: src.width() as usize * 3,
            origin,
        }
    }
}

/// Output pixel `i` of `co` from `row`: per channel, `HALF + Σ pixel * weight` in wrapping
/// 32-bit arithmetic, as Pillow's `ImagingResampleHorizontal_8bpc`.
fn convolve_pixel(row: &[u8], origin: usize, co: &Coefficients, i: usize) -> [u8; 3] {
    let (first, weights) = co.taps(i);
    let first = first - origin;
    let pixels = &row[first * 3..(first + weights.len()) * 3];
    let mut acc = [HALF; 3];
    for (px, &w) in pixels.chunks_exact(3).zip(weights) {
        for c in 0..3 {
            acc[c] = acc[c].wrapping_add(i32::from(px[c]).wrapping_mul(w));
        }
    }
    acc.map(clip8)
}

/// Whether the CPU has AVX2 (and the tests did not ask for the portable code).
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    #[cfg(test)]
    if tests::PORTABLE_ONLY.get() {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx2")
}

/// Rows `rows` of `src` resampled across: `co` describes the output columns, its input columns
/// counted from `origin` (the absolute column of `src`'s first one).
fn horizontal(src: &RgbImage, origin: usize, rows: Range<usize>, co: &Coefficients) -> RgbImage {
    let mut out = RgbImage::new(co.len() as u32, rows.len() as u32);
    let pixels = Pixels::of(src, origin);
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        if let Some(taps) = avx2::RowTaps::new(co, origin..origin + src.width() as usize) {
            // SAFETY: `horizontal_rows` only requires AVX2, which the CPU has (checked above).
            unsafe { avx2::horizontal_rows(&pixels, rows, co, &taps, &mut out) };
            return out;
        }
    }
    for (y, out_row) in rows.zip(out.chunks_exact_mut(co.len() * 3)) {
        let row = &pixels.raw[y * pixels.stride..(y + 1) * pixels.stride];
        for (i, px) in out_row.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&convolve_pixel(row, origin, co, i));
        }
    }
    out
}

/// Columns `columns` of `src` resampled down: `co` describes the output rows, its input rows
/// counted from `origin` (the absolute row of `src`'s first one).
fn vertical(src: &RgbImage, origin: usize, columns: Range<usize>, co: &Coefficients) -> RgbImage {
    let mut out = RgbImage::new(columns.len() as u32, co.len() as u32);
    let pixels = Pixels::of(src, origin);
    let bytes = columns.start * 3..columns.end * 3;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: `vertical_rows` only requires AVX2, which the CPU has (checked just above).
        unsafe { avx2::vertical_rows(&pixels, bytes, co, &mut out) };
        return out;
    }
    vertical_rows(&pixels, bytes, co, &mut out);
    out
}

/// [`vertical`]'s loops, on the bytes `bytes` of each row. Each output row is a weighted sum of
/// whole input rows, accumulated row by row so the inner loop runs over contiguous bytes (and
/// vectorises); wrapping 32-bit sums as in Pillow's `ImagingResampleVertical_8bpc`.
#[inline(always)]
fn vertical_rows(src: &Pixels, bytes: Range<usize>, co: &Coefficients, out: &mut [u8]) {
    let mut acc = vec![HALF; bytes.len()];
    for (i, out_row) in out.chunks_exact_mut(bytes.len()).enumerate() {
        let (first, weights) = co.taps(i);
        acc.fill(HALF);
        for (y, &weight) in (first - src.origin..).zip(weights) {
            let row = &src.raw[y * src.stride..][bytes.clone()];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i32::from(p).wrapping_mul(weight));
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

/// The AVX2 passes (see the module's doc).
#[cfg(target_arch = "x86_64")]
mod avx2;

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

fn nearest(src: &RgbImage, out_w: u32, out_h: u32, window: &Window) -> RgbImage {
    // The whole tables, sliced: each index depends on the sums before it.
    let xs = &nearest_table(src.width(), out_w)[window.x.clone()];
    let ys = &nearest_table(src.height(), out_h)[window.y.clone()];
    RgbImage::from_fn(xs.len() as u32, ys.len() as u32, |x, y| {
        *src.get_pixel(xs[x as usize] as u32, ys[y as usize] as u32)
    })
}

/// A rectangle of an image: columns `x`, rows `y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) x: Range<usize>,
    pub(crate) y: Range<usize>,
}

impl Window {
    /// The pixels of `image` inside the window (which must lie within it), as a new image.
    pub(crate) fn copy(&self, image: &RgbImage) -> RgbImage {
        let stride = image.width() as usize * 3;
        let rows = &image.as_raw()[self.y.start * stride..self.y.end * stride];
        let mut raw = Vec::with_capacity(self.x.len() * self.y.len() * 3);
        for row in rows.chunks_exact(stride) {
            raw.extend_from_slice(&row[self.x.start * 3..self.x.end * 3]);
        }
        RgbImage::from_raw(self.x.len() as u32, self.y.len() as u32, raw)
            .expect("the buffer holds exactly the window's pixels")
    }
}

/// One axis of a windowed resize: the output pixels kept and, unless Pillow skips this pass
/// because the size does not change, their coefficients.
struct Axis {
    kept: Range<usize>,
    co: Option<Coefficients>,
}

impl Axis {
    fn new(in_size: u32, out_size: u32, filter: ResizeFilter, kept: Range<usize>) -> Axis {
        let co =
            (in_size != out_size).then(|| coefficients(in_size, out_size, filter, kept.clone()));
        Axis { kept, co }
    }

    /// The input pixels the kept outputs depend on.
    fn reads(&self) -> Range<usize> {
        self.co
            .as_ref()
            .map_or(self.kept.clone(), Coefficients::reads)
    }
}

/// The pixels inside `window` of `image.resize((out_w, out_h), resample=filter)` as Pillow
/// computes it, computing only those (and the intermediate pixels they need): each output pixel
/// depends only on its own coefficients, so they equal the whole resize's. Sizes must be
/// non-zero and the window must lie within the output.
pub(crate) fn resize_window(
    src: &RgbImage,
    (out_w, out_h): (u32, u32),
    filter: ResizeFilter,
    window: &Window,
) -> RgbImage {
    let (in_w, in_h) = src.dimensions();
    if filter == ResizeFilter::Nearest {
        return nearest(src, out_w, out_h, window);
    }
    let across = Axis::new(in_w, out_w, filter, window.x.clone());
    let down = Axis::new(in_h, out_h, filter, window.y.clone());
    // The order is Pillow's for the whole image: the intermediate is rounded to 8 bits.
    if vertical_first(in_w, in_h, out_w, out_h) {
        down_then_across(src, down, across)
    } else {
        across_then_down(src, across, down)
    }
}

/// The vertical pass on the input columns the kept outputs read, then the horizontal one.
fn down_then_across(src: &RgbImage, down: Axis, across: Axis) -> RgbImage {
    let columns = across.reads();
    let mid = match &down.co {
        Some(co) => vertical(src, 0, columns.clone(), co),
        None => Window {
            x: columns.clone(),
            y: down.kept,
        }
        .copy(src),
    };
    match &across.co {
        Some(co) => horizontal(&mid, columns.start, 0..mid.height() as usize, co),
        None => mid,
    }
}

/// The horizontal pass on the input rows the kept outputs read, then the vertical one.
fn across_then_down(src: &RgbImage, across: Axis, down: Axis) -> RgbImage {
    let rows = down.reads();
    let mid = match &across.co {
        Some(co) => horizontal(src, 0, rows.clone(), co),
        None => Window {
            x: across.kept,
            y: rows.clone(),
        }
        .copy(src),
    };
    match &down.co {
        Some(co) => vertical(&mid, rows.start, 0..mid.width() as usize, co),
        None => mid,
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

/// The straightforward port of Pillow (whole image, one output value at a time, taps in
/// Pillow's order), which the windowed passes must equal, and random inputs to compare them on.
#[cfg(test)]
pub(crate) mod reference {
    use super::*;

    pub(crate) const FILTERS: [ResizeFilter; 6] = [
        ResizeFilter::Nearest,
        ResizeFilter::Box,
        ResizeFilter::Bilinear,
        ResizeFilter::Hamming,
        ResizeFilter::Bicubic,
        ResizeFilter::Lanczos,
    ];

    /// `image.resize((out_w, out_h), resample=filter)`.
    pub(crate) fn resize(src: &RgbImage, out_w: u32, out_h: u32, filter: ResizeFilter) -> RgbImage {
        let (in_w, in_h) = src.dimensions();
        if (in_w, in_h) == (out_w, out_h) {
            return src.clone();
        }
        if filter == ResizeFilter::Nearest {
            let (xs, ys) = (nearest_table(in_w, out_w), nearest_table(in_h, out_h));
            return RgbImage::from_fn(out_w, out_h, |x, y| {
                *src.get_pixel(xs[x as usize] as u32, ys[y as usize] as u32)
            });
        }
        let across = |img: &RgbImage| pass(img, out_w, img.height(), filter, true);
        let down = |img: &RgbImage| pass(img, img.width(), out_h, filter, false);
        if vertical_first(in_w, in_h, out_w, out_h) {
            across(&down(src))
        } else {
            down(&across(src))
        }
    }

    /// One pass to `w x h` (`horizontal`: across, else down), skipped when the size is kept.
    fn pass(img: &RgbImage, w: u32, h: u32, filter: ResizeFilter, horizontal: bool) -> RgbImage {
        if img.dimensions() == (w, h) {
            return img.clone();
        }
        let (in_size, out_size) = if horizontal {
            (img.width(), w)
        } else {
            (img.height(), h)
        };
        let co = coefficients(in_size, out_size, filter, 0..out_size as usize);
        let mut out = RgbImage::new(w, h);
        for (x, y, px) in out.enumerate_pixels_mut() {
            let (first, weights) = co.taps(if horizontal { x } else { y } as usize);
            for (c, value) in px.0.iter_mut().enumerate() {
                let mut acc = HALF;
                for (i, &weight) in (first as u32..).zip(weights) {
                    let p = if horizontal {
                        img.get_pixel(i, y)
                    } else {
                        img.get_pixel(x, i)
                    };
                    acc = acc.wrapping_add(i32::from(p.0[c]).wrapping_mul(weight));
                }
                *value = clip8(acc);
            }
        }
        out
    }

    /// A small deterministic generator (SplitMix64), so failures replay.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in `0..n` (n > 0), near enough for tests.
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// A non-empty sub-range of `0..n`, the whole of it one time in four.
        pub(crate) fn range(&mut self, n: usize) -> Range<usize> {
            if self.below(4) == 0 {
                return 0..n;
            }
            let start = self.below(n);
            start..start + 1 + self.below(n - start)
        }

        /// A side length: often 1 or tiny, sometimes large enough for many taps per pixel.
        pub(crate) fn side(&mut self) -> u32 {
            match self.below(6) {
                0 => 1,
                1 => 2 + self.below(6) as u32,
                2..=4 => 1 + self.below(60) as u32,
                _ => 60 + self.below(200) as u32,
            }
        }

        /// Noise, or smooth gradients with sharp edges (which make bicubic and lanczos overshoot
        /// past 0 and 255, so clipping is exercised either way).
        pub(crate) fn image(&mut self, w: u32, h: u32) -> RgbImage {
            let noise = self.below(2) == 0;
            let seed = self.next();
            RgbImage::from_fn(w, h, |x, y| {
                image::Rgb(std::array::from_fn(|c| {
                    if noise {
                        (self.next() >> 56) as u8
                    } else if (x / 3 + y / 2 + c as u32).is_multiple_of(4) {
                        255 * ((seed >> c) & 1) as u8
                    } else {
                        (x * 7 + y * 13 + c as u32 * 50) as u8
                    }
                }))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Set by tests to run the portable kernels on a CPU with AVX2.
        pub(super) static PORTABLE_ONLY: Cell<bool> = const { Cell::new(false) };
    }

    /// `resize_window` with the AVX2 kernels (when the CPU has them) and with the portable ones,
    /// which must agree.
    fn both_kernels(src: &RgbImage, size: (u32, u32), f: ResizeFilter, w: &Window) -> RgbImage {
        let fast = resize_window(src, size, f, w);
        PORTABLE_ONLY.set(true);
        let portable = resize_window(src, size, f, w);
        PORTABLE_ONLY.set(false);
        assert_eq!(fast, portable, "{size:?} {f:?} {w:?}");
        fast
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for filter in [
            ResizeFilter::Bilinear,
            ResizeFilter::Bicubic,
            ResizeFilter::Lanczos,
        ] {
            for (i, o) in [(90u32, 64u32), (30, 64), (1000, 7)] {
                let co = coefficients(i, o, filter, 0..o as usize);
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
        for filter in reference::FILTERS {
            let out = reference::resize(&src, 64, 9, filter);
            let window = Window { x: 0..64, y: 0..9 };
            assert_eq!(resize_window(&src, (64, 9), filter, &window), out);
            assert!(out.pixels().all(|p| p.0 == [10, 128, 250]), "{filter:?}");
        }
    }

    #[test]
    fn nearest_picks_pillow_indices() {
        // Pillow: Image.new("L", (4, 1)).resize((2, 1), NEAREST) samples columns 1 and 3.
        assert_eq!(nearest_table(4, 2), vec![1, 3]);
        assert_eq!(nearest_table(3, 6), vec![0, 0, 1, 1, 2, 2]);
    }

    /// Any window of any resize (upscale, downscale, one side kept, 1-pixel sides, either pass
    /// order, every filter) equals the same pixels of the whole-image reference.
    #[test]
    fn windows_equal_the_whole_resize() {
        let mut rng = reference::Rng(7);
        let mut vertical_first_cases = 0;
        for case in 0..1500 {
            let (in_w, in_h) = (rng.side(), rng.side());
            let mut out = |n: u32| if rng.below(5) == 0 { n } else { rng.side() };
            let (out_w, out_h) = (out(in_w), out(in_h));
            let filter = reference::FILTERS[rng.below(6)];
            let src = rng.image(in_w, in_h);
            let window = Window {
                x: rng.range(out_w as usize),
                y: rng.range(out_h as usize),
            };
            vertical_first_cases += usize::from(vertical_first(in_w, in_h, out_w, out_h));
            let whole = reference::resize(&src, out_w, out_h, filter);
            assert_eq!(
                both_kernels(&src, (out_w, out_h), filter, &window),
                window.copy(&whole),
                "case {case}: {in_w}x{in_h} -> {out_w}x{out_h} {filter:?}, {window:?}"
            );
        }
        assert!(vertical_first_cases > 100, "{vertical_first_cases}");
    }

    /// The shapes medvec meets most: photos to the fixture model's and to ViT/CLIP's crops.
    #[test]
    fn photo_sized_center_windows_equal_the_whole_resize() {
        let mut rng = reference::Rng(11);
        for ((in_w, in_h), (out_w, out_h), crop) in [
            ((640, 480), (85, 64), 56),
            ((480, 640), (64, 85), 56),
            ((640, 480), (298, 224), 224),
            ((300, 900), (224, 672), 224),
        ] {
            let src = rng.image(in_w, in_h);
            let window = Window {
                x: (out_w - crop) / 2..(out_w + crop) / 2,
                y: (out_h - crop) / 2..(out_h + crop) / 2,
            };
            for filter in reference::FILTERS {
                let whole = reference::resize(&src, out_w as u32, out_h as u32, filter);
                assert_eq!(
                    both_kernels(&src, (out_w as u32, out_h as u32), filter, &window),
                    window.copy(&whole),
                    "{in_w}x{in_h} -> {out_w}x{out_h} {filter:?}"
                );
            }
        }
    }
}
