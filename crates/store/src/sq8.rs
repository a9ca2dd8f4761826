//! SQ8 codes: one byte per dimension, for graph walks that read a quarter of the bytes.
//!
//! Each segment learns, per dimension, the range `[lo, lo + 255·step]` of its rows (unit vectors
//! for cosine fields, raw vectors otherwise) and stores `c = round((x − lo) / step)`. A query is
//! scored against codes *asymmetrically*: the query stays in floating point and
//!
//! ```text
//! ⟨q, x⟩ ≈ Σ q_i·lo_i + Σ (q_i·step_i)·c_i
//! ```
//!
//! where the weights `q_i·step_i` are rounded once per query to 16-bit integers, so the inner
//! loop is an integer multiply-add of bytes by words (AVX-512 VNNI, AVX2, or portable). Walks use
//! these approximate distances; the candidates they return are re-scored with the exact `f32`
//! column, so every score a caller sees is exact.

use crate::distance::PreparedQuery;
use crate::schema::Metric;
use std::io::Write;
use std::sync::OnceLock;

/// Per-dimension ranges of one segment's codes.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranges {
    pub lo: Vec<f32>,
    pub step: Vec<f32>,
}

impl Ranges {
    /// The smallest ranges covering every vector of `rows` (already scaled as they are coded).
    /// A dimension with one value everywhere gets step 0 (every code 0, decoded exactly).
    #[cfg(test)]
    pub fn learn<'a>(dim: usize, rows: impl Iterator<Item = &'a [f32]>) -> Ranges {
        let mut extent = Extent::new(dim);
        rows.for_each(|row| extent.add(row));
        extent.ranges()
    }

    /// Appends the code of `x` (scaled as the ranges were learned) to `out`.
    pub fn encode_into(&self, x: &[f32], scale: f32, out: &mut Vec<u8>) {
        for ((&lo, &step), &x) in self.lo.iter().zip(&self.step).zip(x) {
            let code = if step > 0.0 {
                ((x * scale - lo) / step).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
            out.push(code);
        }
    }

    /// The vector a code stands for (tests only: searches never decode).
    #[cfg(test)]
    pub fn decode(&self, code: &[u8]) -> Vec<f32> {
        code.iter()
            .zip(self.lo.iter().zip(&self.step))
            .map(|(&c, (&lo, &step))| lo + step * c as f32)
            .collect()
    }
}

/// How a field's rows are scaled before coding: cosine codes unit vectors (the graph compares
/// directions), the other metrics the raw vectors.
pub fn scale_for(metric: Metric, inv_norm: f32) -> f32 {
    match metric {
        Metric::Cosine => inv_norm,
        Metric::L2 | Metric::Dot => 1.0,
    }
}

/// Writes a codes body: the ranges (`lo` then `step`, `dim` floats each), then `rows` codes of
/// `dim` bytes. Rows without a vector (`present[row]` false) get zeros; no walk reaches them.
pub fn write_body(
    out: &mut dyn Write,
    (vectors, inv_norms): (&[f32], &[f32]),
    present: &[bool],
    dim: usize,
    metric: Metric,
) -> std::io::Result<()> {
    let mut extent = Extent::new(dim);
    let mut scaled = Vec::with_capacity(dim);
    for ((vector, &inv), _) in vectors
        .chunks_exact(dim)
        .zip(inv_norms)
        .zip(present)
        .filter(|(_, &p)| p)
    {
        let scale = scale_for(metric, inv);
        scaled.clear();
        scaled.extend(vector.iter().map(|x| x * scale));
        extent.add(&scaled);
    }
    let ranges = extent.ranges();
    crate::fileio::write_words(out, ranges.lo.iter().chain(&ranges.step).copied())?;
    let mut buffer = Vec::with_capacity(1 << 16);
    for ((vector, &inv), &p) in vectors.chunks_exact(dim).zip(inv_norms).zip(present) {
        if p {
            ranges.encode_into(vector, scale_for(metric, inv), &mut buffer);
        } else {
            buffer.resize(buffer.len() + dim, 0);
        }
        if buffer.len() >= 1 << 16 {
            out.write_all(&buffer)?;
            buffer.clear();
        }
    }
    out.write_all(&buffer)
}

/// The running per-dimension minimum and maximum of the rows seen.
struct Extent {
    lo: Vec<f32>,
    hi: Vec<f32>,
}

impl Extent {
    fn new(dim: usize) -> Extent {
        Extent {
            lo: vec![f32::INFINITY; dim],
            hi: vec![f32::NEG_INFINITY; dim],
        }
    }

    fn add(&mut self, row: &[f32]) {
        for ((lo, hi), &x) in self.lo.iter_mut().zip(&mut self.hi).zip(row) {
            *lo = lo.min(x);
            *hi = hi.max(x);
        }
    }

    /// No rows seen leaves a dimension at `lo` 0 and step 0.
    fn ranges(self) -> Ranges {
        let (lo, step) = self
            .lo
            .iter()
            .zip(&self.hi)
            .map(|(&lo, &hi)| match lo.is_finite() && hi.is_finite() {
                true => (lo, (hi - lo) / 255.0),
                false => (0.0, 0.0),
            })
            .unzip();
        Ranges { lo, step }
    }
}

/// A query prepared for one segment's codes: integer weights, their scale and the constant term.
pub struct CodeQuery {
    metric: Metric,
    weights: Vec<i16>,
    /// `Σ q_i·step_i·c_i ≈ weight_scale · Σ weights_i·c_i`.
    weight_scale: f32,
    /// `Σ q_i·lo_i`.
    base: f32,
    /// `‖q‖²`, for l2.
    query_norm_sq: f32,
}

impl CodeQuery {
    /// Prepares `query` (already normalised for cosine) for codes with ranges `lo` and `step`.
    pub fn new(query: &PreparedQuery, lo: &[f32], step: &[f32]) -> CodeQuery {
        let q = query.vector();
        let base = q.iter().zip(lo).map(|(q, lo)| q * lo).sum();
        let scaled: Vec<f32> = q.iter().zip(step).map(|(q, s)| q * s).collect();
        let largest = scaled.iter().fold(0f32, |m, w| m.max(w.abs()));
        let limit = weight_limit(q.len());
        let weight_scale = if largest > 0.0 { largest / limit } else { 1.0 };
        let weights = scaled
            .iter()
            .map(|w| (w / weight_scale).round() as i16)
            .collect();
        CodeQuery {
            metric: query.metric(),
            weights,
            weight_scale,
            base,
            query_norm_sq: q.iter().map(|x| x * x).sum(),
        }
    }

    /// The approximate distance, on the scale of [`PreparedQuery::distance`], to a row whose
    /// code is `code` and whose reciprocal norm is `inv_norm`.
    #[inline]
    pub fn distance(&self, code: &[u8], inv_norm: f32) -> f32 {
        let along = self.base + self.weight_scale * dot_codes(code, &self.weights) as f32;
        match self.metric {
            Metric::Cosine => 1.0 - along,
            Metric::Dot => -along,
            Metric::L2 => {
                let norm_sq = if inv_norm > 0.0 {
                    1.0 / (inv_norm * inv_norm)
                } else {
                    0.0
                };
                self.query_norm_sq - 2.0 * along + norm_sq
            }
        }
    }
}

/// The largest weight magnitude for which `dim` products of a byte (≤ 255) and a weight cannot
/// overflow an `i32` sum: 32,767 up to 257 dimensions, less beyond (4,112 at 2,048).
fn weight_limit(dim: usize) -> f32 {
    let limit = i32::MAX as usize / (255 * dim.max(1));
    limit.clamp(1, i16::MAX as usize) as f32
}

type CodeKernel = fn(&[u8], &[i16]) -> i32;

/// `Σ code_i · weight_i` over `min(len)` elements, with the best kernel for this CPU.
#[inline]
pub fn dot_codes(code: &[u8], weights: &[i16]) -> i32 {
    static KERNEL: OnceLock<CodeKernel> = OnceLock::new();
    let kernel = KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            return x86::dot_vnni;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return x86::dot_avx2;
        }
        portable_dot
    });
    kernel(code, weights)
}

/// The reference kernel; the SIMD ones must equal it exactly (integer arithmetic).
pub fn portable_dot(code: &[u8], weights: &[i16]) -> i32 {
    code.iter()
        .zip(weights)
        .map(|(&c, &w)| c as i32 * w as i32)
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub fn dot_vnni(code: &[u8], weights: &[i16]) -> i32 {
        // SAFETY: installed by `dot_codes` only after detecting AVX-512BW and VNNI at run time.
        unsafe { vnni(code, weights) }
    }

    pub fn dot_avx2(code: &[u8], weights: &[i16]) -> i32 {
        // SAFETY: installed by `dot_codes` only after detecting AVX2 at run time.
        unsafe { avx2(code, weights) }
    }

    /// 32 bytes widened to words, multiplied, summed in pairs and accumulated into 16 lanes of
    /// `i32` by one VNNI instruction (`vpdpwssd`). AVX-512 CPUs without VNNI take the AVX2 kernel.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn vnni(code: &[u8], weights: &[i16]) -> i32 {
        let n = code.len().min(weights.len());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY (loads): each reads 32 bytes at i and 32 words at i, with i + 32 <= n.
        while i + 32 <= n {
            let c = _mm512_cvtepu8_epi16(_mm256_loadu_si256(code.as_ptr().add(i).cast()));
            let w = _mm512_loadu_si512(weights.as_ptr().add(i).cast());
            acc = _mm512_dpwssd_epi32(acc, c, w);
            i += 32;
        }
        let mut sum = _mm512_reduce_add_epi32(acc);
        while i < n {
            sum += *code.get_unchecked(i) as i32 * *weights.get_unchecked(i) as i32;
            i += 1;
        }
        sum
    }

    /// 16 bytes widened to words, multiplied and summed in pairs into 8 lanes of `i32` per step.
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(code: &[u8], weights: &[i16]) -> i32 {
        let n = code.len().min(weights.len());
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY (loads): each reads 16 bytes at i and 16 words at i, with i + 16 <= n.
        while i + 16 <= n {
            let c = _mm256_cvtepu8_epi16(_mm_loadu_si128(code.as_ptr().add(i).cast()));
            let w = _mm256_loadu_si256(weights.as_ptr().add(i).cast());
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(c, w));
            i += 16;
        }
        let halves = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let pairs = _mm_add_epi32(halves, _mm_shuffle_epi32::<0b01_00_11_10>(halves));
        let one = _mm_add_epi32(pairs, _mm_shuffle_epi32::<0b10_11_00_01>(pairs));
        let mut sum = _mm_cvtsi128_si32(one);
        while i < n {
            sum += *code.get_unchecked(i) as i32 * *weights.get_unchecked(i) as i32;
            i += 1;
        }
        sum
    }

    #[cfg(test)]
    pub fn both(code: &[u8], weights: &[i16]) -> Vec<i32> {
        let mut out = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            out.push(dot_vnni(code, weights));
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            out.push(dot_avx2(code, weights));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }

    #[test]
    fn simd_kernels_equal_the_portable_one() {
        let mut seed = 7;
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 100, 128, 513, 2048] {
            let code: Vec<u8> = (0..n)
                .map(|_| ((lcg(&mut seed) + 1.0) * 127.9) as u8)
                .collect();
            let limit = weight_limit(n) as i16;
            let weights: Vec<i16> = (0..n)
                .map(|_| (lcg(&mut seed) * limit as f32) as i16)
                .collect();
            let expected = portable_dot(&code, &weights);
            #[cfg(target_arch = "x86_64")]
            for got in x86::both(&code, &weights) {
                assert_eq!(got, expected, "n = {n}");
            }
            assert_eq!(dot_codes(&code, &weights), expected);
        }
    }

    #[test]
    fn extreme_codes_and_weights_do_not_overflow() {
        for dim in [16, 257, 2048, 65_536] {
            let limit = weight_limit(dim) as i16;
            let code = vec![255u8; dim];
            let weights = vec![limit; dim];
            let expected = 255i64 * limit as i64 * dim as i64;
            assert!(expected <= i32::MAX as i64);
            assert_eq!(dot_codes(&code, &weights) as i64, expected);
            let negative = vec![-limit; dim];
            assert_eq!(dot_codes(&code, &negative) as i64, -expected);
        }
    }

    #[test]
    fn codes_round_trip_within_half_a_step() {
        let mut seed = 3;
        let rows: Vec<Vec<f32>> = (0..50)
            .map(|_| (0..24).map(|_| lcg(&mut seed)).collect())
            .collect();
        let ranges = Ranges::learn(24, rows.iter().map(Vec::as_slice));
        for row in &rows {
            let mut code = Vec::new();
            ranges.encode_into(row, 1.0, &mut code);
            let back = ranges.decode(&code);
            for ((x, y), step) in row.iter().zip(&back).zip(&ranges.step) {
                assert!((x - y).abs() <= step / 2.0 + 1e-6, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn constant_dimensions_code_exactly() {
        let rows = [vec![0.5, 1.0], vec![0.5, -1.0]];
        let ranges = Ranges::learn(2, rows.iter().map(Vec::as_slice));
        assert_eq!(ranges.step[0], 0.0);
        let mut code = Vec::new();
        ranges.encode_into(&rows[1], 1.0, &mut code);
        assert_eq!(ranges.decode(&code), vec![0.5, -1.0]);
    }

    /// The approximate distance is the exact distance to the decoded vector, up to the rounding
    /// of the query's weights.
    #[test]
    fn approximate_distances_match_the_decoded_vectors() {
        let mut seed = 11;
        let dim = 96;
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..dim).map(|_| lcg(&mut seed) * 3.0).collect())
            .collect();
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let inv: Vec<f32> = rows
                .iter()
                .map(|r| 1.0 / crate::distance::norm(r))
                .collect();
            let scaled: Vec<Vec<f32>> = rows
                .iter()
                .zip(&inv)
                .map(|(r, &i)| r.iter().map(|x| x * scale_for(metric, i)).collect())
                .collect();
            let ranges = Ranges::learn(dim, scaled.iter().map(Vec::as_slice));
            let query: Vec<f32> = (0..dim).map(|_| lcg(&mut seed)).collect();
            let prepared = PreparedQuery::new(metric, &query);
            let coded = CodeQuery::new(&prepared, &ranges.lo, &ranges.step);
            for ((row, &inv), scaled) in rows.iter().zip(&inv).zip(&scaled) {
                let mut code = Vec::new();
                ranges.encode_into(row, scale_for(metric, inv), &mut code);
                let decoded = ranges.decode(&code);
                let exact_on_decoded = match metric {
                    Metric::Cosine => 1.0 - crate::distance::dot(prepared.vector(), &decoded),
                    Metric::Dot => -crate::distance::dot(prepared.vector(), &decoded),
                    Metric::L2 => {
                        let along = crate::distance::dot(prepared.vector(), &decoded);
                        let q = crate::distance::dot(prepared.vector(), prepared.vector());
                        q - 2.0 * along + crate::distance::dot(scaled, scaled)
                    }
                };
                let got = coded.distance(&code, inv);
                let tolerance = 1e-3 * (1.0 + exact_on_decoded.abs());
                assert!(
                    (got - exact_on_decoded).abs() < tolerance,
                    "{metric:?}: {got} vs {exact_on_decoded}"
                );
            }
        }
    }
}
