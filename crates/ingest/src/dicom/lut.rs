//! From a frame's stored values to 8-bit RGB, step by step as `tools/reference_dicom.py` does
//! it with pydicom 3.0.2 and numpy: modality LUT, VOI LUT or window, MONOCHROME1 inversion,
//! `rint(t * 255)`; colour scaled from BitsStored; PALETTE COLOR through its LUTs.
//!
//! Every float step is the reference's float64 operation in the same order (Rust never fuses
//! a multiply and an add on its own), so the bytes are equal. The one exception is SIGMOID,
//! whose `exp` is numpy's: a value landing within an ulp of a rounding tie can differ by one.

use super::error::DicomError;
use super::frame::{Dtype, PixelHeader, Samples};
use super::WindowChoice;
use dicom_core::value::Value;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use image::RgbImage;
use std::path::Path;

/// `uint8(clip(rint(t * 255), 0, 255))`, numpy's cast sending NaN to 0.
fn to_u8(t: f64) -> u8 {
    rint(t * 255.0).clamp(0.0, 255.0) as u8
}

/// numpy's `rint` (round half to even). Adding and subtracting 1.5 * 2^52 rounds to an integer
/// in the current (nearest-even) mode, exactly, for |x| < 2^51; `round_ties_even` is a libm
/// call on baseline x86-64 and dominates the per-pixel cost.
fn rint(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    if x.abs() < 2_251_799_813_685_248.0 {
        (x + MAGIC) - MAGIC
    } else {
        x.round_ties_even()
    }
}

/// Attribute access with pydicom's notion of presence: an element with an empty value is
/// absent (pydicom reads it as `None`).
pub(crate) struct Attrs<'a> {
    pub path: &'a Path,
    pub obj: &'a InMemDicomObject,
}

impl Attrs<'_> {
    fn bad(&self, what: &str) -> DicomError {
        DicomError::decode(self.path, format!("{what} has a value that does not parse"))
    }

    /// All numbers of a numeric or numeric-string element; `None` when absent or empty.
    pub(crate) fn floats(&self, tag: Tag, what: &str) -> Result<Option<Vec<f64>>, DicomError> {
        let Some(e) = self.obj.get(tag) else {
            return Ok(None);
        };
        match e.value() {
            Value::Primitive(p) if p.multiplicity() > 0 => {
                let v = p.to_multi_float64().map_err(|_| self.bad(what))?;
                Ok((!v.is_empty()).then_some(v))
            }
            _ => Ok(None),
        }
    }

    pub(crate) fn first_float(&self, tag: Tag, what: &str) -> Result<Option<f64>, DicomError> {
        Ok(self.floats(tag, what)?.and_then(|v| v.first().copied()))
    }

    pub(crate) fn ints(&self, tag: Tag, what: &str) -> Result<Option<Vec<i64>>, DicomError> {
        let Some(e) = self.obj.get(tag) else {
            return Ok(None);
        };
        match e.value() {
            Value::Primitive(p) if p.multiplicity() > 0 => {
                let v = p.to_multi_int::<i64>().map_err(|_| self.bad(what))?;
                Ok((!v.is_empty()).then_some(v))
            }
            _ => Ok(None),
        }
    }

    pub(crate) fn string(&self, tag: Tag) -> Option<String> {
        let e = self.obj.get(tag)?;
        match e.value() {
            Value::Primitive(p) if p.multiplicity() > 0 => {
                Some(p.to_str().trim_matches([' ', '\0']).to_string())
            }
            _ => None,
        }
    }

    /// The first item of a non-empty sequence.
    fn first_item(&self, tag: Tag) -> Option<Attrs<'_>> {
        let items = self.obj.get(tag)?.items()?;
        items.first().map(|obj| Attrs {
            path: self.path,
            obj,
        })
    }
}

/// A LUT Descriptor + LUT Data pair (Modality or VOI LUT Sequence item).
struct Lut {
    entries: i64,
    first_map: i64,
    depth: u32,
    data: Vec<i64>,
    dtype: Dtype,
}

impl Lut {
    /// Reads an item's descriptor and data. `depth_ok` says which nominal depths pydicom accepts
    /// and gives the dtype's bits for it.
    fn read(
        item: &Attrs,
        what: &str,
        dtype_bits: impl Fn(u32) -> Option<u32>,
    ) -> Result<Lut, DicomError> {
        let bad = |detail: &str| DicomError::decode(item.path, format!("{what}: {detail}"));
        let desc = item
            .ints(tags::LUT_DESCRIPTOR, what)?
            .filter(|d| d.len() >= 3)
            .ok_or_else(|| bad("no LUT Descriptor"))?;
        let entries = if desc[0] == 0 { 1 << 16 } else { desc[0] };
        let depth = u32::try_from(desc[2]).map_err(|_| bad("bad LUT depth"))?;
        let bits = dtype_bits(depth).ok_or_else(|| bad("unsupported LUT depth"))?;
        let dtype = Dtype {
            bits,
            signed: false,
        };
        let element = item
            .obj
            .get(tags::LUT_DATA)
            .ok_or_else(|| bad("no LUT Data"))?;
        let mut data = item
            .ints(tags::LUT_DATA, what)?
            .ok_or_else(|| bad("no LUT Data"))?;
        if element.vr() == VR::OW {
            // pydicom unpacks exactly `entries` 16-bit words.
            if (data.len() as i64) < entries {
                return Err(bad("LUT Data shorter than its descriptor"));
            }
            data.truncate(entries as usize);
        }
        if data.iter().any(|&v| v < 0 || v >= 1 << bits) {
            return Err(bad("LUT Data value out of range"));
        }
        Ok(Lut {
            entries,
            first_map: desc[1],
            depth,
            data,
            dtype,
        })
    }

    /// `lut[clip(index_dtype(x - first_map), 0, entries - 1)]`, `x < first_map` to entry 0.
    fn map(&self, x: f64, index: Dtype, path: &Path) -> Result<f64, DicomError> {
        let i = if x >= self.first_map as f64 {
            let d = x - self.first_map as f64;
            index.wrap(d as i64)
        } else {
            0
        };
        let i = i.clamp(0, self.entries - 1) as usize;
        self.data
            .get(i)
            .map(|&v| v as f64)
            .ok_or_else(|| DicomError::decode(path, "LUT Data shorter than its descriptor"))
    }
}

/// The VOI chosen for a greyscale frame (step 3).
enum Voi {
    MinMax,
    Lut(Lut),
    Window {
        center: f64,
        width: f64,
        function: String,
    },
}

/// Steps 2-6 for a MONOCHROME1 / MONOCHROME2 frame.
pub(crate) fn grey_to_rgb(
    attrs: &Attrs,
    header: &PixelHeader,
    samples: &Samples,
    window: &WindowChoice,
) -> Result<RgbImage, DicomError> {
    let path = attrs.path;
    // Step 2: modality LUT.
    let slope = attrs.first_float(tags::RESCALE_SLOPE, "RescaleSlope")?;
    let intercept = attrs.first_float(tags::RESCALE_INTERCEPT, "RescaleIntercept")?;
    let rescale = slope.zip(intercept);
    let modality = match attrs.first_item(tags::MODALITY_LUT_SEQUENCE) {
        Some(item) => Some(Lut::read(&item, "Modality LUT", |d| {
            matches!(d, 8 | 16).then_some(d)
        })?),
        None => None,
    };
    let dtype = samples.dtype;
    let modality_of = |x: f64| -> Result<f64, DicomError> {
        match (&modality, rescale) {
            (Some(lut), _) => lut.map(x, dtype, path),
            (None, Some((slope, intercept))) => Ok(x * slope + intercept),
            (None, None) => Ok(x),
        }
    };
    // Step 3: VOI.
    let voi = match window {
        WindowChoice::MinMax => Voi::MinMax,
        WindowChoice::Fixed { center, width } => Voi::Window {
            center: *center,
            width: *width,
            function: "LINEAR".into(),
        },
        WindowChoice::FromFile => file_voi(attrs)?,
    };
    // Steps 3-6 for one stored value: t in [0, 1], inverted for MONOCHROME1, to 8 bits.
    let invert = header.photometric == "MONOCHROME1";
    let ramp = match &voi {
        Voi::Window {
            center,
            width,
            function,
        } => {
            let (y_min, y_max) = window_range(header, modality.as_ref(), rescale);
            let ramp = window_ramp(path, *center, *width, function, y_min, y_max)?;
            Some((ramp, y_min, y_max))
        }
        _ => None,
    };
    let grey_of = |x: f64, lo: f64, hi: f64| -> Result<u8, DicomError> {
        let v = modality_of(x)?;
        let t = match (&voi, &ramp) {
            (Voi::Lut(lut), _) => lut.map(v, lut.dtype, path)? / ((1u64 << lut.depth) - 1) as f64,
            (Voi::Window { .. }, Some((ramp, y_min, y_max))) => (ramp(v) - y_min) / (y_max - y_min),
            _ if hi > lo => (v - lo) / (hi - lo),
            _ => 0.0,
        };
        Ok(to_u8(if invert { 1.0 - t } else { t }))
    };
    let values = &samples.values;
    let mut rgb = vec![0u8; values.len() * 3];
    if dtype.bits <= 16 {
        // Stored values are integers of at most 16 bits: run the chain once per distinct value
        // (the same float operations, so the same bytes) and look pixels up in a table.
        let offset = if dtype.signed { 1 << 15 } else { 0 };
        let slot = |x: f64| (x as i64 + offset).clamp(0, 0xFFFF) as usize;
        let mut present = vec![false; 1 << 16];
        for &x in values {
            present[slot(x)] = true;
        }
        let stored = || {
            (0..1usize << 16)
                .filter(|&i| present[i])
                .map(|i| (i, (i as i64 - offset) as f64))
        };
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        if matches!(voi, Voi::MinMax) {
            for (_, x) in stored() {
                let v = modality_of(x)?;
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let mut table = vec![0u8; 1 << 16];
        for (i, x) in stored() {
            table[i] = grey_of(x, lo, hi)?;
        }
        for (px, &x) in rgb.chunks_exact_mut(3).zip(values) {
            px.fill(table[slot(x)]);
        }
    } else {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        if matches!(voi, Voi::MinMax) {
            for &x in values {
                let v = modality_of(x)?;
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        for (px, &x) in rgb.chunks_exact_mut(3).zip(values) {
            px.fill(grey_of(x, lo, hi)?);
        }
    }
    image_from(path, header, rgb)
}

/// The file's own VOI: the VOI LUT Sequence wins over WindowCenter / WindowWidth.
fn file_voi(attrs: &Attrs) -> Result<Voi, DicomError> {
    if let Some(item) = attrs.first_item(tags::VOILUT_SEQUENCE) {
        if item.obj.get(tags::LUT_DESCRIPTOR).is_some() && item.obj.get(tags::LUT_DATA).is_some() {
            let lut = Lut::read(&item, "VOI LUT", |d| match d {
                8 => Some(8),
                10..=16 => Some(16),
                _ => None,
            })?;
            return Ok(Voi::Lut(lut));
        }
    }
    let center = attrs.first_float(tags::WINDOW_CENTER, "WindowCenter")?;
    let width = attrs.first_float(tags::WINDOW_WIDTH, "WindowWidth")?;
    Ok(match center.zip(width) {
        Some((center, width)) => Voi::Window {
            center,
            width,
            function: attrs
                .string(tags::VOILUT_FUNCTION)
                .unwrap_or_else(|| "LINEAR".into())
                .to_uppercase(),
        },
        None => Voi::MinMax,
    })
}

/// pydicom's `apply_windowing` output range.
fn window_range(
    header: &PixelHeader,
    modality: Option<&Lut>,
    rescale: Option<(f64, f64)>,
) -> (f64, f64) {
    let bits = i32::from(header.bits_stored);
    let (mut y_min, mut y_max) = match (modality, header.signed) {
        (Some(lut), _) => (0.0, 2f64.powi(lut.depth as i32) - 1.0),
        (None, false) => (0.0, 2f64.powi(bits) - 1.0),
        (None, true) => (-(2f64.powi(bits - 1)), 2f64.powi(bits - 1) - 1.0),
    };
    if let Some((slope, intercept)) = rescale {
        y_min = y_min * slope + intercept;
        y_max = y_max * slope + intercept;
    }
    (y_min, y_max)
}

/// pydicom's `apply_windowing` for one value (LINEAR, LINEAR_EXACT, SIGMOID).
fn window_ramp(
    path: &Path,
    center: f64,
    width: f64,
    function: &str,
    y_min: f64,
    y_max: f64,
) -> Result<impl Fn(f64) -> f64, DicomError> {
    let y_range = y_max - y_min;
    let bad = |detail: &str| DicomError::decode(path, detail);
    let (c, w, sigmoid) = match function {
        "LINEAR" if width < 1.0 => return Err(bad("LINEAR window width below 1")),
        "LINEAR" => (center - 0.5, width - 1.0, false),
        "LINEAR_EXACT" if width <= 0.0 => return Err(bad("LINEAR_EXACT window width not above 0")),
        "LINEAR_EXACT" => (center, width, false),
        "SIGMOID" if width <= 0.0 => return Err(bad("SIGMOID window width not above 0")),
        "SIGMOID" => (center, width, true),
        _ => return Err(bad("unsupported VOI LUT Function")),
    };
    let (low, high) = (c - w / 2.0, c + w / 2.0);
    Ok(move |v: f64| {
        if sigmoid {
            y_range / (1.0 + ((-4.0 * (v - c)) / w).exp()) + y_min
        } else if v <= low {
            y_min
        } else if v > high {
            y_max
        } else {
            ((v - c) / w + 0.5) * y_range + y_min
        }
    })
}

/// RGB (YBR already converted): unchanged when BitsStored <= 8, else from 0..2^BitsStored-1.
pub(crate) fn colour_to_rgb(
    path: &Path,
    header: &PixelHeader,
    samples: &Samples,
) -> Result<RgbImage, DicomError> {
    let bytes = match header.bits_stored {
        0..=8 => samples
            .values
            .iter()
            .map(|&v| {
                Dtype {
                    bits: 8,
                    signed: false,
                }
                .wrap(v as i64) as u8
            })
            .collect(),
        bits => {
            let scale = 2f64.powi(i32::from(bits)) - 1.0;
            samples.values.iter().map(|&v| to_u8(v / scale)).collect()
        }
    };
    image_from(path, header, bytes)
}

/// PALETTE COLOR through the Red/Green/Blue Palette Color LUTs, as pydicom's `apply_color_lut`.
pub(crate) fn palette_to_rgb(
    attrs: &Attrs,
    header: &PixelHeader,
    samples: &Samples,
) -> Result<RgbImage, DicomError> {
    let path = attrs.path;
    let bad = |detail: &str| DicomError::decode(path, format!("palette: {detail}"));
    let desc = attrs
        .ints(
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            "palette descriptor",
        )?
        .filter(|d| d.len() >= 3)
        .ok_or_else(|| bad("no Red Palette Color LUT Descriptor"))?;
    let entries = if desc[0] == 0 { 1 << 16 } else { desc[0] };
    let first_map = desc[1];
    let channels = [
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    ];
    let raw: Vec<Vec<u8>> = channels
        .iter()
        .map(|&tag| {
            lut_bytes(attrs.obj, tag)
                .ok_or_else(|| bad("no Palette Color LUT Data (segmented palettes are not read)"))
        })
        .collect::<Result<_, _>>()?;
    // pydicom: the entry size is the data length over the number of entries.
    let bits = raw[0].len() as f64 / entries as f64 * 8.0;
    let bits = match bits {
        8.0 => 8,
        16.0 => 16,
        _ => return Err(bad("LUT entries are neither 8 nor 16 bits")),
    };
    let luts: Vec<Vec<u32>> = raw
        .iter()
        .map(|b| match bits {
            8 => b.iter().map(|&v| u32::from(v)).collect(),
            _ => b
                .chunks_exact(2)
                .map(|w| u32::from(u16::from_le_bytes([w[0], w[1]])))
                .collect(),
        })
        .collect();
    if luts.iter().any(|l| l.len() != luts[0].len()) {
        return Err(bad("LUT data must be the same length"));
    }
    let index = Dtype {
        bits,
        signed: false,
    };
    let mut out = Vec::with_capacity(samples.values.len() * 3);
    for &x in &samples.values {
        let i = if x >= first_map as f64 {
            index.wrap(x as i64 - first_map)
        } else {
            0
        };
        let i = i.clamp(0, entries - 1) as usize;
        for lut in &luts {
            let v = *lut
                .get(i)
                .ok_or_else(|| bad("LUT shorter than its descriptor"))?;
            out.push(match bits {
                8 => v as u8,
                _ => to_u8(f64::from(v) / 65535.0),
            });
        }
    }
    image_from(path, header, out)
}

/// An OB/OW element's bytes in file order (little endian for every syntax medvec reads but
/// Explicit VR Big Endian, where pydicom too reads the words in host order).
fn lut_bytes(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<u8>> {
    let e = obj.get(tag)?;
    match e.value() {
        Value::Primitive(dicom_core::PrimitiveValue::U8(v)) => Some(v.to_vec()),
        Value::Primitive(dicom_core::PrimitiveValue::U16(v)) => {
            Some(v.iter().flat_map(|w| w.to_le_bytes()).collect())
        }
        Value::Primitive(p) if p.multiplicity() > 0 => Some(p.to_bytes().into_owned()),
        _ => None,
    }
}

fn image_from(path: &Path, header: &PixelHeader, rgb: Vec<u8>) -> Result<RgbImage, DicomError> {
    RgbImage::from_raw(header.columns, header.rows, rgb)
        .ok_or_else(|| DicomError::decode(path, "decoded frame has the wrong number of samples"))
}
