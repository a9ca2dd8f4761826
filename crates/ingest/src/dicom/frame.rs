//! One frame's stored sample values, as pydicom 3's `ds.pixel_array` holds them: decoded,
//! unused high bits corrected, planar configuration undone, YBR_FULL / YBR_FULL_422 converted to
//! RGB with pydicom's own float32 matrix.
//!
//! dicom-rs does the decoding: dicom-object holds native Pixel Data and the fragments, and the
//! transfer syntax registry's RLE and JPEG 2000 adapters decode them. dicom-pixeldata's
//! `decode_pixel_data_frame` is not used: it first parses every LUT attribute and fails on files
//! pydicom reads (a window with 2 centres and 1 width), it does not expand native YBR_FULL_422,
//! and it copies all native frames per frame. JPEG frames go to `jpeg-decoder` (the decoder
//! dicom-rs's JPEG adapter uses) directly, without its colour transform: pydicom asks libjpeg for
//! the stored components and converts YBR to RGB itself, and dicom-rs's adapter cannot be told
//! not to convert.

use super::error::DicomError;
use super::scan::{DEFLATED_LE, EXPLICIT_BE, IMPLICIT_LE};
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_encoding::adapters::PixelDataObject;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_object::DefaultDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

pub(crate) const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub(crate) const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
pub(crate) const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
pub(crate) const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.57";
pub(crate) const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
pub(crate) const JPEG2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
pub(crate) const JPEG2000: &str = "1.2.840.10008.1.2.4.91";
pub(crate) const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// The transfer syntaxes medvec decodes.
pub const SUPPORTED_TRANSFER_SYNTAXES: [&str; 11] = [
    IMPLICIT_LE,
    EXPLICIT_LE,
    EXPLICIT_BE,
    DEFLATED_LE,
    JPEG_BASELINE,
    JPEG_EXTENDED,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_SV1,
    JPEG2000_LOSSLESS,
    JPEG2000,
    RLE_LOSSLESS,
];

fn is_native(ts: &str) -> bool {
    matches!(ts, IMPLICIT_LE | EXPLICIT_LE | EXPLICIT_BE | DEFLATED_LE)
}

fn is_jpeg(ts: &str) -> bool {
    matches!(
        ts,
        JPEG_BASELINE | JPEG_EXTENDED | JPEG_LOSSLESS | JPEG_LOSSLESS_SV1
    )
}

fn is_j2k(ts: &str) -> bool {
    matches!(ts, JPEG2000_LOSSLESS | JPEG2000)
}

/// The Image Pixel attributes the decoding needs (PS3.3 C.7.6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PixelHeader {
    pub transfer_syntax: String,
    pub rows: u32,
    pub columns: u32,
    pub samples: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    /// Photometric Interpretation, trimmed.
    pub photometric: String,
    pub planar: u16,
    pub frames: u32,
}

impl PixelHeader {
    fn pixels(&self) -> usize {
        self.rows as usize * self.columns as usize
    }

    /// Bytes of one native frame (for 1-bit data, rounded up).
    pub(crate) fn native_frame_bits(&self) -> u64 {
        let samples = match self.photometric.as_str() {
            "YBR_FULL_422" => 2,
            _ => u64::from(self.samples),
        };
        self.pixels() as u64 * samples * u64::from(self.bits_allocated)
    }
}

/// numpy's dtype of the decoded array: 8, 16 or 32 bits, signed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dtype {
    pub bits: u32,
    pub signed: bool,
}

impl Dtype {
    /// `v` (an integer) cast to this dtype, wrapping as numpy's integer casts do.
    pub(crate) fn wrap(self, v: i64) -> i64 {
        let shift = 64 - self.bits;
        match self.signed {
            true => (v << shift) >> shift,
            false => ((v as u64) << shift >> shift) as i64,
        }
    }
}

/// One decoded frame: `values` are `rows x columns x samples`, interleaved.
#[derive(Debug, Clone)]
pub(crate) struct Samples {
    pub values: Vec<f64>,
    pub dtype: Dtype,
}

/// Decodes frame `frame` of `obj` (its header already checked, `frame < header.frames`).
pub(crate) fn decode_frame(
    path: &Path,
    obj: &DefaultDicomObject,
    header: &PixelHeader,
    frame: u32,
) -> Result<Samples, DicomError> {
    let ts = header.transfer_syntax.as_str();
    let dtype = Dtype {
        bits: match header.bits_allocated {
            1 | 8 => 8,
            16 => 16,
            32 => 32,
            other => return Err(DicomError::decode(path, format!("BitsAllocated {other}"))),
        },
        signed: header.signed && header.bits_allocated != 1,
    };
    let mut photometric = header.photometric.clone();
    let mut values = if is_native(ts) {
        native_frame(path, obj, header, frame, dtype, &mut photometric)?
    } else if is_jpeg(ts) {
        jpeg_frame(path, obj, header, frame, dtype, &mut photometric)?
    } else {
        adapter_frame(path, obj, header, frame, dtype)?
    };
    if header.samples > 1 && header.planar == 1 && ts != RLE_LOSSLESS {
        values = interleave(&values, header.samples as usize);
    }
    if is_j2k(ts) {
        j2k_sign_correction(obj, header, frame, dtype, &mut values);
    } else if header.bits_allocated > header.bits_stored && header.bits_allocated > 1 {
        // pydicom's `_correct_unused_bits`: a shift left then right in the array's dtype.
        let narrow = Dtype {
            bits: u32::from(header.bits_stored),
            signed: dtype.signed,
        };
        // Values already within BitsStored (nearly always) are unchanged by the shifts.
        let (lo, hi) = match narrow.signed {
            true => (
                -(2f64.powi(narrow.bits as i32 - 1)),
                2f64.powi(narrow.bits as i32 - 1),
            ),
            false => (0.0, 2f64.powi(narrow.bits as i32)),
        };
        for v in &mut values {
            if !(*v >= lo && *v < hi) {
                *v = narrow.wrap(*v as i64) as f64;
            }
        }
    }
    if matches!(photometric.as_str(), "YBR_FULL" | "YBR_FULL_422") && header.samples == 3 {
        if dtype.bits != 8 {
            return Err(DicomError::decode(
                path,
                format!(
                    "{photometric} with {} bits allocated",
                    header.bits_allocated
                ),
            ));
        }
        ybr_full_to_rgb(&mut values);
    }
    Ok(Samples { values, dtype })
}

/// Reads little-endian samples of `dtype` from `bytes`.
fn from_le(bytes: &[u8], dtype: Dtype) -> Vec<f64> {
    match (dtype.bits, dtype.signed) {
        (8, false) => bytes.iter().map(|&b| f64::from(b)).collect(),
        (8, true) => bytes.iter().map(|&b| f64::from(b as i8)).collect(),
        (16, false) => bytes
            .chunks_exact(2)
            .map(|b| f64::from(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        (16, true) => bytes
            .chunks_exact(2)
            .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        (_, false) => bytes
            .chunks_exact(4)
            .map(|b| f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        (_, true) => bytes
            .chunks_exact(4)
            .map(|b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
    }
}

/// Planar (RRR..GGG..BBB..) to interleaved (RGBRGB..), as pydicom's reshape for planar
/// configuration 1.
fn interleave(values: &[f64], samples: usize) -> Vec<f64> {
    let plane = values.len() / samples;
    let mut out = Vec::with_capacity(values.len());
    for i in 0..plane {
        for s in 0..samples {
            out.push(values[s * plane + i]);
        }
    }
    out
}

/// Native Pixel Data as little-endian bytes: dicom-object holds OB as bytes and OW as 16-bit
/// values already in host order (big endian files included), which is pydicom's byte swap of
/// OW for Explicit VR Big Endian.
fn native_bytes(value: &PrimitiveValue) -> Cow<'_, [u8]> {
    match value {
        PrimitiveValue::U8(v) => Cow::Borrowed(&v[..]),
        PrimitiveValue::U16(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        PrimitiveValue::I16(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        PrimitiveValue::U32(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        PrimitiveValue::I32(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        PrimitiveValue::F32(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        other => other.to_bytes(),
    }
}

/// The native Pixel Data value and its length in bytes.
pub(crate) fn native_pixel_data(obj: &DefaultDicomObject) -> Option<&PrimitiveValue> {
    match obj.element(tags::PIXEL_DATA).ok()?.value() {
        Value::Primitive(p) => Some(p),
        _ => None,
    }
}

/// A native frame's bytes, with only that frame's part of a 16-bit value converted.
fn native_frame_bytes(value: &PrimitiveValue, start: usize, end: usize) -> Option<Vec<u8>> {
    match value {
        PrimitiveValue::U8(v) => v.get(start..end).map(<[u8]>::to_vec),
        PrimitiveValue::U16(v) => {
            let words = v.get(start / 2..end.div_ceil(2))?;
            let mut bytes = Vec::with_capacity(words.len() * 2);
            for w in words {
                bytes.extend_from_slice(&w.to_le_bytes());
            }
            let skip = start % 2;
            Some(bytes[skip..skip + (end - start)].to_vec())
        }
        other => native_bytes(other).get(start..end).map(<[u8]>::to_vec),
    }
}

fn native_frame(
    path: &Path,
    obj: &DefaultDicomObject,
    header: &PixelHeader,
    frame: u32,
    dtype: Dtype,
    photometric: &mut String,
) -> Result<Vec<f64>, DicomError> {
    let value = native_pixel_data(obj).ok_or_else(|| DicomError::NoPixelData {
        path: path.to_path_buf(),
    })?;
    let frame_bits = header.native_frame_bits();
    let short = || DicomError::truncated(path, format!("frame {frame} is past the pixel data"));
    if header.bits_allocated == 1 {
        // pydicom unpacks bits little-endian first, a frame starting at any bit.
        let first = u64::from(frame) * frame_bits;
        let (start, end) = (
            (first / 8) as usize,
            (first + frame_bits).div_ceil(8) as usize,
        );
        let bytes = native_frame_bytes(value, start, end).ok_or_else(short)?;
        let skip = (first % 8) as usize;
        return Ok((0..frame_bits as usize)
            .map(|i| {
                let bit = skip + i;
                f64::from((bytes[bit / 8] >> (bit % 8)) & 1)
            })
            .collect());
    }
    let len = (frame_bits / 8) as usize;
    let start = frame as usize * len;
    // The common case, 16-bit samples held as 16-bit words: no byte round trip.
    if let (PrimitiveValue::U16(words), 16) = (value, dtype.bits) {
        let words = words.get(start / 2..(start + len) / 2).ok_or_else(short)?;
        let values = match dtype.signed {
            true => words.iter().map(|&w| f64::from(w as i16)).collect(),
            false => words.iter().map(|&w| f64::from(w)).collect(),
        };
        return Ok(values);
    }
    let mut bytes = native_frame_bytes(value, start, start + len).ok_or_else(short)?;
    if header.transfer_syntax == EXPLICIT_BE {
        big_endian_to_le(&mut bytes, value, dtype.bits);
    }
    let values = from_le(&bytes, dtype);
    if photometric == "YBR_FULL_422" {
        *photometric = "YBR_FULL".into();
        return Ok(expand_422(&values));
    }
    Ok(values)
}

/// Explicit VR Big Endian samples wider than the words dicom-object converted: OB holds
/// the file's bytes (each sample big endian), OW holds 16-bit words already in host order (a
/// 32-bit sample's two words then need swapping). pydicom reads both with a big-endian dtype.
fn big_endian_to_le(bytes: &mut [u8], value: &PrimitiveValue, bits: u32) {
    let width = (bits / 8) as usize;
    match value {
        PrimitiveValue::U8(_) if width > 1 => {
            bytes.chunks_exact_mut(width).for_each(<[u8]>::reverse);
        }
        PrimitiveValue::U16(_) | PrimitiveValue::I16(_) if width == 4 => {
            for sample in bytes.chunks_exact_mut(4) {
                sample.rotate_left(2);
            }
        }
        _ => {}
    }
}

/// pydicom's YBR_FULL_422 expansion of native data: `Y1 Y2 Cb Cr` to `Y1 Cb Cr Y2 Cb Cr`.
fn expand_422(values: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len() / 2 * 3);
    for q in values.chunks_exact(4) {
        out.extend_from_slice(&[q[0], q[2], q[3], q[1], q[2], q[3]]);
    }
    out
}

/// Runs a third-party decoder, turning a panic into an error naming the file: dicom-rs's RLE
/// and JPEG 2000 adapters index with lengths taken from the file.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, DicomError>) -> Result<T, DicomError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(DicomError::decode(path, "the decoder failed on this data")))
}

/// RLE and JPEG 2000 frames, through the registry's adapters.
fn adapter_frame(
    path: &Path,
    obj: &DefaultDicomObject,
    header: &PixelHeader,
    frame: u32,
    dtype: Dtype,
) -> Result<Vec<f64>, DicomError> {
    let ts = header.transfer_syntax.as_str();
    let unsupported = || DicomError::UnsupportedTransferSyntax {
        path: path.to_path_buf(),
        uid: ts.to_string(),
    };
    let entry = TransferSyntaxRegistry.get(ts).ok_or_else(unsupported)?;
    let want = header.pixels() * usize::from(header.samples) * (dtype.bits as usize / 8);
    let bytes = match entry.codec() {
        Codec::EncapsulatedPixelData(Some(reader), _) => guarded(path, || {
            let mut out = Vec::new();
            reader
                .decode_frame(obj, frame, &mut out)
                .map_err(|e| DicomError::decode(path, e.to_string()))?;
            Ok(out)
        })?,
        _ => return Err(unsupported()),
    };
    if bytes.len() < want {
        return Err(DicomError::truncated(
            path,
            format!("frame {frame} decodes to {} of {want} bytes", bytes.len()),
        ));
    }
    Ok(from_le(&bytes[..want], dtype))
}

/// pydicom's `_apply_sign_correction` for JPEG 2000 greyscale: when the codestream's signedness
/// differs from Pixel Representation, shift left then right by `bits - precision`.
fn j2k_sign_correction(
    obj: &DefaultDicomObject,
    header: &PixelHeader,
    frame: u32,
    dtype: Dtype,
    values: &mut [f64],
) {
    if !header.photometric.starts_with("MONOCHROME") {
        return;
    }
    let (precision, signed) = obj
        .frame_pixel_data(frame)
        .and_then(|data| j2k_parameters(&data))
        .unwrap_or((u32::from(header.bits_stored), header.signed));
    if signed == header.signed || precision == 0 || precision >= dtype.bits {
        return;
    }
    let narrow = Dtype {
        bits: precision,
        signed: dtype.signed,
    };
    for v in values {
        *v = narrow.wrap(*v as i64) as f64;
    }
}

/// (precision, signed) of the first component in a JPEG 2000 codestream's SIZ segment (or a
/// JP2 file's `jp2c` box), as pydicom's `get_j2k_parameters` reads them.
fn j2k_parameters(data: &[u8]) -> Option<(u32, bool)> {
    let mut offset = 0usize;
    if data.get(..12)? == b"\x00\x00\x00\x0cjP  \x0d\x0a\x87\x0a" {
        offset = 12;
        while offset < data.len() {
            let len = u32::from_be_bytes(data.get(offset..offset + 4)?.try_into().ok()?) as usize;
            if data.get(offset + 4..offset + 8)? == b"jp2c" {
                offset += 8;
                break;
            }
            offset = offset.checked_add(len).filter(|_| len > 0)?;
        }
    }
    if data.get(offset..offset + 4)? != b"\xff\x4f\xff\x51" {
        return None;
    }
    let ssiz = *data.get(offset + 42)?;
    Some((u32::from(ssiz & 0x7F) + 1, ssiz & 0x80 != 0))
}

fn jpeg_frame(
    path: &Path,
    obj: &DefaultDicomObject,
    header: &PixelHeader,
    frame: u32,
    dtype: Dtype,
    photometric: &mut String,
) -> Result<Vec<f64>, DicomError> {
    let data = obj.frame_pixel_data(frame).ok_or_else(|| {
        DicomError::fragment(path, format!("no fragments found for frame {frame}"))
    })?;
    if header.samples == 3 {
        conform_jpeg_colour_space(&data, &header.transfer_syntax, photometric);
    }
    let mut decoder = jpeg_decoder::Decoder::new(&data[..]);
    if header.samples == 3 {
        // "RGB" is jpeg-decoder's name for "interleave the components as stored" (its `None`
        // writes the planes one after another and fails on subsampled chroma).
        decoder.set_color_transform(jpeg_decoder::ColorTransform::RGB);
    }
    let decoded = decoder.decode().map_err(|e| match e {
        jpeg_decoder::Error::Unsupported(_) => DicomError::UnsupportedTransferSyntax {
            path: path.to_path_buf(),
            uid: header.transfer_syntax.clone(),
        },
        e => DicomError::decode(path, format!("JPEG frame {frame}: {e}")),
    })?;
    let info = decoder
        .info()
        .ok_or_else(|| DicomError::decode(path, "JPEG frame has no frame header"))?;
    if (u32::from(info.height), u32::from(info.width)) != (header.rows, header.columns) {
        return Err(DicomError::decode(
            path,
            format!(
                "JPEG frame is {}x{}, the header says {}x{}",
                info.width, info.height, header.columns, header.rows
            ),
        ));
    }
    let want = header.pixels() * usize::from(header.samples);
    // jpeg-decoder returns 8-bit samples, or 16-bit in host order for lossless above 8 bits.
    let wide =
        decoded.len() >= want * 2 && info.coding_process == jpeg_decoder::CodingProcess::Lossless;
    let values: Vec<f64> = if wide {
        decoded
            .chunks_exact(2)
            .take(want)
            .map(|b| f64::from(u16::from_ne_bytes([b[0], b[1]])))
            .collect()
    } else {
        decoded.iter().take(want).map(|&b| f64::from(b)).collect()
    };
    if values.len() < want {
        return Err(DicomError::truncated(
            path,
            format!(
                "JPEG frame {frame} holds {} of {want} samples",
                values.len()
            ),
        ));
    }
    // The array is of the header's dtype: a signed one reads the decoded bits as signed.
    Ok(values
        .into_iter()
        .map(|v| dtype.wrap(v as i64) as f64)
        .collect())
}

/// pydicom's `_conform_jpg_colorspace`: component IDs `R G B` (or `r g b`) mean RGB whatever
/// the header says; a JFIF APP0 segment means YBR when the header says neither YBR.
fn conform_jpeg_colour_space(data: &[u8], ts: &str, photometric: &mut String) {
    let Some((ids, jfif)) = jpeg_markers(data) else {
        return;
    };
    if (ids == b"RGB" || ids == b"rgb") && photometric != "RGB" {
        *photometric = "RGB".into();
    } else if jfif && !photometric.contains("YBR") {
        *photometric = match ts {
            JPEG_BASELINE => "YBR_FULL_422".into(),
            _ => "YBR_FULL".into(),
        };
    }
}

/// The frame header's component IDs, and whether an APPn segment before it starts with `JFIF`.
fn jpeg_markers(data: &[u8]) -> Option<(Vec<u8>, bool)> {
    if data.get(..2)? != b"\xff\xd8" {
        return None;
    }
    let mut offset = 2usize;
    let mut jfif = false;
    loop {
        let marker = data.get(offset..offset + 2)?;
        let (m0, m1) = (marker[0], marker[1]);
        let is_sof = m0 == 0xFF && matches!(m1, 0xC0..=0xCF) && !matches!(m1, 0xC4 | 0xC8 | 0xCC);
        if is_sof || (m0 == 0xFF && m1 == 0xF7) {
            let count = *data.get(offset + 9)? as usize;
            let ids = (0..count)
                .map(|i| data.get(offset + 10 + 3 * i).copied())
                .collect::<Option<Vec<u8>>>()?;
            return Some((ids, jfif));
        }
        let len = u16::from_be_bytes([*data.get(offset + 2)?, *data.get(offset + 3)?]) as usize;
        if m0 == 0xFF && (0xE0..=0xEF).contains(&m1) {
            let body = data.get(offset + 4..offset + 2 + len)?;
            jfif |= body.starts_with(b"JFIF");
        }
        offset += len + 2;
    }
}

/// pydicom's `_convert_YBR_FULL_to_RGB`, in float32 as numpy does it: (Y, Cb - 128, Cr - 128)
/// times the T.871 matrix, + 0.5, floor, clip to 0..255.
fn ybr_full_to_rgb(values: &mut [f64]) {
    // The entries are float64 expressions rounded once to float32, as np.asarray does.
    let m: [[f32; 3]; 3] = [
        [1.0, 1.0, 1.0],
        [0.0, (-0.114f64 * 1.772 / 0.587) as f32, 1.772],
        [1.402, (-0.299f64 * 1.402 / 0.587) as f32, 0.0],
    ];
    for px in values.chunks_exact_mut(3) {
        let x = [px[0] as f32, px[1] as f32 - 128.0, px[2] as f32 - 128.0];
        for (j, out) in px.iter_mut().enumerate() {
            let v = x[2].mul_add(m[2][j], x[1].mul_add(m[1][j], x[0] * m[0][j]));
            *out = f64::from((v + 0.5).floor().clamp(0.0, 255.0));
        }
    }
}
