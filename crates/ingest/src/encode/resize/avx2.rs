//! The passes with AVX2. The vertical pass is the portable loop, which the compiler vectorises
//! 8 lanes wide with AVX2's 32-bit multiply (the x86-64 baseline, SSE2, has to emulate it).
//! The horizontal pass reduces each output pixel's taps to one value per channel, which the
//! compiler does not vectorise well, so it is written out: `_mm256_madd_epi16` multiplies 16
//! pixel bytes by 16-bit halves of the weights and adds pairs of taps, which is exact because
//! each 22-bit weight `w` is split as `hi * 2^15 + lo` and `Σ p*w = (Σ p*hi) << 15 + Σ p*lo`
//! in wrapping 32-bit arithmetic.

use super::{convolve_pixel, Coefficients, Pixels, HALF, PRECISION_BITS};
use std::arch::x86_64::*;
use std::ops::Range;

#[target_feature(enable = "avx2")]
pub(super) fn vertical_rows(src: &Pixels, bytes: Range<usize>, co: &Coefficients, out: &mut [u8]) {
    super::vertical_rows(src, bytes, co, out)
}

/// Taps per group: 4 RGB pixels are 12 of the 16 bytes one load brings in.
const GROUP: usize = 4;

/// One group's weights for `_mm256_madd_epi16` against the pixel bytes spread by
/// [`SPREAD`]: in each 128-bit half, for R, G and B, the (tap 0, tap 1) or (tap 2, tap 3)
/// weights, then two zeros. `lo` holds the low 15 bits of the weights, `hi` the rest.
struct Group {
    lo: [i16; 16],
    hi: [i16; 16],
}

impl Group {
    /// `None` when a weight's high part does not fit 16 bits (never for Pillow's filters,
    /// whose normalised weights stay well below 256 in magnitude).
    fn new(taps: &[i32]) -> Option<Group> {
        let mut group = Group {
            lo: [0; 16],
            hi: [0; 16],
        };
        for (k, &w) in taps.iter().enumerate() {
            let (hi, lo) = (i16::try_from(w >> 15).ok()?, (w & 0x7fff) as i16);
            let at = k / 2 * 8 + k % 2;
            for c in 0..3 {
                group.lo[at + 2 * c] = lo;
                group.hi[at + 2 * c] = hi;
            }
        }
        Some(group)
    }
}

/// The horizontal weights in groups: every output pixel reads `groups * GROUP` pixels from
/// its `start` (its filter's taps, and zero weights up to whole groups).
pub(super) struct RowTaps {
    groups: usize,
    starts: Vec<usize>,
    weights: Vec<Group>,
}

impl RowTaps {
    /// `columns`: the (absolute) input columns present in the rows, which hold `co.reads()`;
    /// `starts` count from `columns.start`. `None` when the rows are narrower than the
    /// padded taps, or a weight does not split (see [`Group::new`]).
    pub(super) fn new(co: &Coefficients, columns: Range<usize>) -> Option<RowTaps> {
        let widest = co.bounds.iter().map(|b| b.1).max().unwrap_or(0);
        let width = widest.next_multiple_of(GROUP);
        if width > columns.len() {
            return None;
        }
        let mut starts = Vec::with_capacity(co.len());
        let mut weights = Vec::with_capacity(co.len() * width / GROUP);
        let mut padded = vec![0; width];
        for i in 0..co.len() {
            let (first, w) = co.taps(i);
            // Near the right edge the window moves left; the zero weights absorb the shift.
            let start = first.min(columns.end - width);
            padded.fill(0);
            padded[first - start..][..w.len()].copy_from_slice(w);
            for taps in padded.chunks_exact(GROUP) {
                weights.push(Group::new(taps)?);
            }
            starts.push(start - columns.start);
        }
        Some(RowTaps {
            groups: width / GROUP,
            starts,
            weights,
        })
    }
}

/// [`super::horizontal`]'s loops: output rows from the input rows `rows`.
#[target_feature(enable = "avx2")]
pub(super) fn horizontal_rows(
    src: &Pixels,
    rows: Range<usize>,
    co: &Coefficients,
    taps: &RowTaps,
    out: &mut [u8],
) {
    let span = taps.groups * GROUP * 3 + 4; // the last 16-byte load reads 4 bytes more
    for (y, out_row) in rows.zip(out.chunks_exact_mut(taps.starts.len() * 3)) {
        // To the end of the image: a load may read (and ignore) the next row's first bytes.
        let row = &src.raw[y * src.stride..];
        let pixels = taps
            .starts
            .iter()
            .zip(taps.weights.chunks_exact(taps.groups));
        for (i, (px, (&start, groups))) in out_row.chunks_exact_mut(3).zip(pixels).enumerate() {
            let value = match row.get(start * 3..start * 3 + span) {
                Some(bytes) => convolve(bytes, groups),
                // The last pixels of the image's last row.
                None => convolve_pixel(&row[..src.stride], src.origin, co, i),
            };
            px.copy_from_slice(&value);
        }
    }
}

/// Spreads pixels 0, 1 (low half) or 2, 3 (high half) of a group, broadcast to both
/// halves, into 16-bit (tap, next tap) pairs for R, G and B, then a zero pair.
#[rustfmt::skip]
const SPREAD: [i8; 32] = [
    0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
    6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1,
];

/// One output pixel from the bytes of its taps (`groups.len() * 12 + 4` of them).
#[target_feature(enable = "avx2")]
fn convolve(bytes: &[u8], groups: &[Group]) -> [u8; 3] {
    // SAFETY: SPREAD is 32 bytes, one unaligned 256-bit load.
    let spread = unsafe { _mm256_loadu_si256(SPREAD.as_ptr().cast()) };
    let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    for (group, chunk) in groups.iter().zip(bytes.windows(16).step_by(GROUP * 3)) {
        // SAFETY: `chunk` holds 16 bytes, one unaligned 128-bit load.
        let pixels = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
        let pixels = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(pixels), spread);
        // SAFETY: each array holds 16 i16s, one unaligned 256-bit load.
        let (w_lo, w_hi) = unsafe {
            (
                _mm256_loadu_si256(group.lo.as_ptr().cast()),
                _mm256_loadu_si256(group.hi.as_ptr().cast()),
            )
        };
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(pixels, w_lo));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(pixels, w_hi));
    }
    let acc = _mm256_add_epi32(lo, _mm256_slli_epi32::<15>(hi));
    let acc = _mm_add_epi32(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256::<1>(acc),
    );
    // clip8: the saturating packs to 16 then 8 bits clamp to 0..=255.
    let acc = _mm_srai_epi32::<{ PRECISION_BITS as i32 }>(_mm_add_epi32(acc, _mm_set1_epi32(HALF)));
    let bytes = _mm_packus_epi16(_mm_packs_epi32(acc, acc), acc);
    let [r, g, b, _] = _mm_cvtsi128_si32(bytes).to_le_bytes();
    [r, g, b]
}
