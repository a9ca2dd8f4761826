//! A structural walk of a DICOM file's bytes, before dicom-rs parses it.
//!
//! dicom-object builds nested sequences by recursion (`build_object` → `build_sequence` →
//! `build_object`), and drops them by recursion too, so a file with sequences nested thousands
//! deep would overflow the stack of the thread reading it. This walk is a loop with an explicit
//! stack: it measures the nesting depth and refuses a file deeper than [`MAX_NESTING`] before
//! dicom-rs sees it. It descends exactly where dicom-parser does (an explicit `SQ`, an implicit
//! VR tag the standard dictionary calls `SQ`, or any undefined length other than encapsulated
//! Pixel Data), so the depth it measures is the depth dicom-object would recurse to.
//!
//! On the way it checks what dicom-rs would otherwise trust or report vaguely: encapsulated
//! fragments and Basic Offset Table entries that point outside the data, and Pixel Data cut
//! short. It stops quietly at anything it does not understand: dicom-rs then reports it.

use super::error::DicomError;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use std::io::Read;
use std::path::Path;

/// Deepest sequence nesting accepted. Real images nest a handful of levels (functional groups,
/// code sequences); structured reports a few dozen at most.
pub const MAX_NESTING: usize = 64;

const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const ITEM: u16 = 0xE000;
const ITEM_END: u16 = 0xE00D;
const SEQUENCE_END: u16 = 0xE0DD;
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Implicit VR Little Endian, Explicit VR Big Endian, Deflated Explicit VR Little Endian.
pub(crate) const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub(crate) const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
pub(crate) const DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";

/// What the walk of the file meta group found.
pub(crate) struct Meta {
    /// Transfer Syntax UID, trailing NUL and spaces removed.
    pub transfer_syntax: String,
    /// Offset of the data set (just after the file meta group).
    pub dataset_start: usize,
}

/// Checks the preamble and `DICM`, and reads the file meta group (always explicit VR little
/// endian) far enough to find the transfer syntax and where the data set starts.
pub(crate) fn read_meta(path: &Path, bytes: &[u8]) -> Result<Meta, DicomError> {
    if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
        return Err(DicomError::not_dicom(
            path,
            "no DICM marker after a 128-byte preamble",
        ));
    }
    let mut pos = 132;
    let mut transfer_syntax = None;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let group = u16::from_le_bytes([head[0], head[1]]);
        if group != 0x0002 {
            break;
        }
        let element = u16::from_le_bytes([head[2], head[3]]);
        let vr = [head[4], head[5]];
        let (len, header) = if is_short_vr(vr) {
            (u32::from(u16::from_le_bytes([head[6], head[7]])), 8)
        } else {
            let Some(l) = bytes.get(pos + 8..pos + 12) else {
                break;
            };
            (u32::from_le_bytes([l[0], l[1], l[2], l[3]]), 12)
        };
        let start = pos + header;
        let Some(value) = (len != UNDEFINED)
            .then(|| bytes.get(start..start + len as usize))
            .flatten()
        else {
            return Err(DicomError::not_dicom(path, "file meta group is cut short"));
        };
        if element == 0x0010 {
            let uid = String::from_utf8_lossy(value);
            transfer_syntax = Some(uid.trim_end_matches(['\0', ' ']).trim().to_string());
        }
        pos = start + len as usize;
    }
    match transfer_syntax {
        Some(transfer_syntax) if !transfer_syntax.is_empty() => Ok(Meta {
            transfer_syntax,
            dataset_start: pos,
        }),
        _ => Err(DicomError::not_dicom(
            path,
            "file meta group has no transfer syntax",
        )),
    }
}

/// Walks the data set after the file meta group: refuses nesting deeper than
/// [`MAX_NESTING`], encapsulated fragments or offsets outside the data, and native Pixel Data
/// cut short. A deflated data set is inflated first, to at most `max_bytes`.
pub(crate) fn check_dataset(
    path: &Path,
    bytes: &[u8],
    meta: &Meta,
    max_bytes: u64,
) -> Result<(), DicomError> {
    let data = bytes.get(meta.dataset_start..).unwrap_or_default();
    match meta.transfer_syntax.as_str() {
        DEFLATED_LE => {
            let mut inflated = Vec::new();
            let mut reader = flate2::read::DeflateDecoder::new(data).take(max_bytes + 1);
            if reader.read_to_end(&mut inflated).is_err() {
                return Err(DicomError::decode(
                    path,
                    "deflated data set does not inflate",
                ));
            }
            if inflated.len() as u64 > max_bytes {
                return Err(DicomError::FileTooLarge {
                    path: path.to_path_buf(),
                    bytes: inflated.len() as u64,
                    limit: max_bytes,
                });
            }
            Walker::new(path, &inflated, false, true).run()
        }
        IMPLICIT_LE => Walker::new(path, data, false, false).run(),
        EXPLICIT_BE => Walker::new(path, data, true, true).run(),
        _ => Walker::new(path, data, false, true).run(),
    }
}

/// VRs whose explicit length is 16 bits (PS3.5 7.1.2); all others have 2 reserved bytes and
/// a 32-bit length, as dicom-encoding reads them (an unknown VR counts as `UN`).
fn is_short_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// One open sequence or item: where it ends when its length is defined.
struct Open {
    sequence: bool,
    end: Option<usize>,
}

struct Walker<'a> {
    path: &'a Path,
    data: &'a [u8],
    big_endian: bool,
    explicit: bool,
    pos: usize,
    stack: Vec<Open>,
}

impl<'a> Walker<'a> {
    fn new(path: &'a Path, data: &'a [u8], big_endian: bool, explicit: bool) -> Self {
        Walker {
            path,
            data,
            big_endian,
            explicit,
            pos: 0,
            stack: Vec::new(),
        }
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b = self.data.get(at..at + 2)?;
        Some(match self.big_endian {
            true => u16::from_be_bytes([b[0], b[1]]),
            false => u16::from_le_bytes([b[0], b[1]]),
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.data.get(at..at + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(match self.big_endian {
            true => u32::from_be_bytes(b),
            false => u32::from_le_bytes(b),
        })
    }

    fn push(&mut self, sequence: bool, len: u32) -> Result<(), DicomError> {
        let end = (len != UNDEFINED).then(|| self.pos.saturating_add(len as usize));
        self.stack.push(Open { sequence, end });
        // A sequence level is a sequence and its item: 2 entries. Counting items too bounds the
        // stack against item tags repeated outside any sequence.
        if self.stack.len() > 2 * MAX_NESTING {
            return Err(DicomError::NestingTooDeep {
                path: self.path.to_path_buf(),
                limit: MAX_NESTING,
            });
        }
        Ok(())
    }

    /// Closes every open sequence or item whose defined length ends here.
    fn close_ended(&mut self) {
        while let Some(Open { end: Some(end), .. }) = self.stack.last() {
            if *end > self.pos {
                break;
            }
            self.stack.pop();
        }
    }

    fn run(mut self) -> Result<(), DicomError> {
        loop {
            self.close_ended();
            let (Some(group), Some(element)) = (self.u16_at(self.pos), self.u16_at(self.pos + 2))
            else {
                return Ok(()); // end of data (or a stray trailing byte)
            };
            let tag = Tag(group, element);
            if group == 0xFFFE {
                let Some(len) = self.u32_at(self.pos + 4) else {
                    return Ok(());
                };
                self.pos += 8;
                match element {
                    ITEM => self.push(false, len)?,
                    ITEM_END => self.pop(false),
                    SEQUENCE_END => self.pop(true),
                    // Not a DICOM tag at all. The parser would read it as an element with a
                    // length of its own (up to 4 GiB, allocated before the value is read), so
                    // the walk cannot just stop here and leave the rest unchecked.
                    _ => {
                        return Err(DicomError::decode(
                            self.path,
                            format!("unknown delimiter tag (FFFE,{element:04X})"),
                        ))
                    }
                }
                continue;
            }
            let Some((vr, len)) = self.header()? else {
                return Ok(());
            };
            if tag == PIXEL_DATA && len == UNDEFINED {
                self.fragments()?;
            } else if vr == Some(VR::SQ) || len == UNDEFINED {
                self.push(true, len)?;
            } else {
                let end = self.pos.checked_add(len as usize);
                if end.is_none_or(|end| end > self.data.len()) {
                    return Err(match tag == PIXEL_DATA {
                        true => DicomError::truncated(
                            self.path,
                            format!(
                                "Pixel Data is {len} bytes long, the file holds {} after its header",
                                self.data.len() - self.pos
                            ),
                        ),
                        false => DicomError::decode(
                            self.path,
                            format!(
                                "element ({group:04X},{element:04X}) runs past the end of the file"
                            ),
                        ),
                    });
                }
                self.pos += len as usize;
            }
        }
    }

    /// Closes the innermost open item (or sequence) with an undefined length: a delimiter.
    fn pop(&mut self, sequence: bool) {
        if let Some(i) = self.stack.iter().rposition(|o| o.sequence == sequence) {
            self.stack.truncate(i);
        }
    }

    /// Reads an element header at `pos` (its tag already known not to be an item tag), moving
    /// `pos` to the value. `None` at the end of the data. The VR is `Some(SQ)` for a sequence.
    fn header(&mut self) -> Result<Option<(Option<VR>, u32)>, DicomError> {
        let tag = Tag(
            self.u16_at(self.pos).unwrap_or(0),
            self.u16_at(self.pos + 2).unwrap_or(0),
        );
        if self.explicit {
            let Some(vr) = self.data.get(self.pos + 4..self.pos + 6) else {
                return Ok(None);
            };
            let vr = [vr[0], vr[1]];
            let (len, header) = if is_short_vr(vr) {
                match self.u16_at(self.pos + 6) {
                    Some(l) => (u32::from(l), 8),
                    None => return Ok(None),
                }
            } else {
                match self.u32_at(self.pos + 8) {
                    Some(l) => (l, 12),
                    None => return Ok(None),
                }
            };
            self.pos += header;
            Ok(Some(((&vr == b"SQ").then_some(VR::SQ), len)))
        } else {
            let Some(len) = self.u32_at(self.pos + 4) else {
                return Ok(None);
            };
            self.pos += 8;
            let sq = tag != PIXEL_DATA
                && StandardDataDictionary
                    .by_tag(tag)
                    .is_some_and(|e| e.vr().relaxed() == VR::SQ);
            Ok(Some((sq.then_some(VR::SQ), len)))
        }
    }

    /// Walks encapsulated Pixel Data from its first item to the sequence delimiter: every
    /// fragment inside the data, every Basic Offset Table entry at the start of a fragment.
    ///
    /// A fragment running past the end of the data is a cut file (truncated pixel data) unless
    /// the offset table also points where no fragment starts (a forged table); table entries
    /// past the cut are not judged.
    fn fragments(&mut self) -> Result<(), DicomError> {
        let mut offset_table: Option<Vec<u32>> = None;
        // Offsets (from the first fragment's item tag) at which fragments start.
        let mut starts = Vec::new();
        let mut offset = 0u64;
        let mut cut = false;
        loop {
            let (Some(group), Some(element), Some(len)) = (
                self.u16_at(self.pos),
                self.u16_at(self.pos + 2),
                self.u32_at(self.pos + 4),
            ) else {
                cut = true;
                break;
            };
            self.pos += 8;
            match (group, element) {
                (0xFFFE, SEQUENCE_END) => break,
                (0xFFFE, ITEM) => {}
                _ => {
                    return Err(DicomError::fragment(
                        self.path,
                        format!("a ({group:04X},{element:04X}) element among the fragments"),
                    ))
                }
            }
            let end = self.pos.checked_add(len as usize);
            let value = end.and_then(|end| self.data.get(self.pos..end));
            match (&offset_table, value) {
                (None, Some(value)) => {
                    let table = value
                        .chunks_exact(4)
                        .map(|b| {
                            let b = [b[0], b[1], b[2], b[3]];
                            match self.big_endian {
                                true => u32::from_be_bytes(b),
                                false => u32::from_le_bytes(b),
                            }
                        })
                        .collect();
                    offset_table = Some(table);
                }
                (None, None) => {
                    return Err(DicomError::fragment(
                        self.path,
                        format!(
                            "a Basic Offset Table of {len} bytes with {} bytes left in the file",
                            self.data.len() - self.pos
                        ),
                    ))
                }
                (Some(_), _) => {
                    starts.push(offset);
                    offset += 8 + u64::from(len);
                }
            }
            if value.is_none() {
                cut = true;
                break;
            }
            self.pos += len as usize;
        }
        let frames = starts.len();
        for &entry in offset_table.iter().flatten() {
            let entry = u64::from(entry);
            let beyond_cut = cut && entry >= offset;
            if !beyond_cut && starts.binary_search(&entry).is_err() {
                return Err(DicomError::fragment(
                    self.path,
                    format!(
                        "Basic Offset Table entry {entry} is not the start of one of the {frames} fragments"
                    ),
                ));
            }
        }
        if cut {
            return Err(DicomError::truncated(
                self.path,
                "the file ends inside the encapsulated Pixel Data",
            ));
        }
        Ok(())
    }
}
