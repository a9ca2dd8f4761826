//! Unit tests on DICOM files built byte by byte (explicit VR little endian unless said).

use super::*;
use crate::encode::ImageLimits;

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const RLE: &str = "1.2.840.10008.1.2.5";

/// Preamble, `DICM` and a file meta group naming `ts`.
fn file_start(ts: &str) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let mut uid = ts.as_bytes().to_vec();
    if uid.len() % 2 == 1 {
        uid.push(0);
    }
    let mut meta = Vec::new();
    meta.extend(element(0x0002, 0x0010, b"UI", &uid));
    out.extend(element(
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    ));
    out.extend(meta);
    out
}

/// An explicit VR little endian element.
fn element(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(elem.to_le_bytes());
    out.extend(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend([0, 0]);
        out.extend((value.len() as u32).to_le_bytes());
    } else {
        out.extend((value.len() as u16).to_le_bytes());
    }
    out.extend(value);
    out
}

fn us(group: u16, elem: u16, v: u16) -> Vec<u8> {
    element(group, elem, b"US", &v.to_le_bytes())
}

fn cs(group: u16, elem: u16, text: &str) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(b' ');
    }
    element(group, elem, b"CS", &v)
}

fn item_tag(elem: u16, len: u32) -> Vec<u8> {
    let mut out = vec![0xFE, 0xFF];
    out.extend(elem.to_le_bytes());
    out.extend(len.to_le_bytes());
    out
}

/// `depth` Content Sequences nested inside each other, undefined lengths.
fn nested(depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..depth {
        out.extend([0x40, 0x00, 0x30, 0xA7]);
        out.extend(b"SQ\0\0");
        out.extend(0xFFFF_FFFFu32.to_le_bytes());
        out.extend(item_tag(0xE000, 0xFFFF_FFFF));
    }
    for _ in 0..depth {
        out.extend(item_tag(0xE00D, 0));
        out.extend(item_tag(0xE0DD, 0));
    }
    out
}

/// Image Pixel attributes of a `rows x columns` 8-bit MONOCHROME2 image.
fn grey_header(rows: u16, columns: u16, frames: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(us(0x0028, 0x0002, 1));
    out.extend(cs(0x0028, 0x0004, "MONOCHROME2"));
    if let Some(n) = frames {
        let mut v = n.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        out.extend(element(0x0028, 0x0008, b"IS", &v));
    }
    out.extend(us(0x0028, 0x0010, rows));
    out.extend(us(0x0028, 0x0011, columns));
    out.extend(us(0x0028, 0x0100, 8));
    out.extend(us(0x0028, 0x0101, 8));
    out.extend(us(0x0028, 0x0102, 7));
    out.extend(us(0x0028, 0x0103, 0));
    out
}

fn open(bytes: &[u8]) -> Result<DicomImage, DicomError> {
    DicomImage::from_bytes(Path::new("test.dcm"), bytes, &ImageLimits::default())
}

fn grey_file(pixels: &[u8], rows: u16, columns: u16) -> Vec<u8> {
    let mut f = file_start(EXPLICIT_LE);
    f.extend(grey_header(rows, columns, None));
    f.extend(element(0x7FE0, 0x0010, b"OB", pixels));
    f
}

#[test]
fn minmax_window_and_inversion_on_a_tiny_image() {
    let image = open(&grey_file(&[10, 20, 30, 40], 2, 2)).unwrap();
    let rgb = image.frame_rgb8(0, &WindowChoice::MinMax).unwrap();
    // (v - 10) / 30 * 255: 0, 85, 170, 255; grey repeated into R, G, B.
    assert_eq!(rgb.as_raw()[..6], [0, 0, 0, 85, 85, 85]);
    assert_eq!(rgb.get_pixel(1, 1).0, [255, 255, 255]);
    // LINEAR window 25,10: c = 24.5, w = 9: <= 20 -> 0, > 29 -> 255.
    let fixed = WindowChoice::Fixed {
        center: 25.0,
        width: 10.0,
    };
    let rgb = image.frame_rgb8(0, &fixed).unwrap();
    let grey: Vec<u8> = rgb.as_raw().iter().step_by(3).copied().collect();
    assert_eq!(grey, [0, 0, 255, 255]);
    // A constant frame is 0 (MONOCHROME2).
    let flat = open(&grey_file(&[7, 7, 7, 7], 2, 2)).unwrap();
    let rgb = flat.frame_rgb8(0, &WindowChoice::FromFile).unwrap();
    assert!(rgb.as_raw().iter().all(|&v| v == 0));
}

#[test]
fn nesting_1000_deep_is_refused_without_recursion() {
    let mut f = file_start(EXPLICIT_LE);
    f.extend(nested(1000));
    f.extend(grey_header(2, 2, None));
    f.extend(element(0x7FE0, 0x0010, b"OB", &[0, 1, 2, 3]));
    // A small stack: the walk must not recurse per level (dicom-object would).
    let result = std::thread::Builder::new()
        .stack_size(128 << 10)
        .spawn(move || open(&f).map(|_| ()))
        .unwrap()
        .join()
        .unwrap();
    let e = result.unwrap_err();
    assert_eq!(e.reason(), "nesting-too-deep", "{e}");
    assert!(e.to_string().contains(&MAX_NESTING.to_string()));
}

#[test]
fn nesting_at_the_limit_parses_on_a_default_thread_stack() {
    let mut f = file_start(EXPLICIT_LE);
    f.extend(nested(MAX_NESTING));
    f.extend(grey_header(2, 2, None));
    f.extend(element(0x7FE0, 0x0010, b"OB", &[0, 1, 2, 3]));
    // 2 MiB is what std gives a spawned thread (and rayon a worker).
    let result = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || open(&f).map(|i| i.frame_count()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(result.unwrap(), 1);
    let mut f = file_start(EXPLICIT_LE);
    f.extend(nested(MAX_NESTING + 1));
    assert_eq!(open(&f).unwrap_err().reason(), "nesting-too-deep");
}

#[test]
fn item_tags_outside_sequences_are_bounded() {
    let mut f = file_start(EXPLICIT_LE);
    for _ in 0..10_000 {
        f.extend(item_tag(0xE000, 0xFFFF_FFFF));
    }
    assert_eq!(open(&f).unwrap_err().reason(), "nesting-too-deep");
}

fn rle_file(offset_table: &[u32], fragments: &[&[u8]], cut: usize) -> Vec<u8> {
    rle_frames(None, offset_table, fragments, cut)
}

fn rle_frames(
    frames: Option<&str>,
    offset_table: &[u32],
    fragments: &[&[u8]],
    cut: usize,
) -> Vec<u8> {
    let mut f = file_start(RLE);
    f.extend(grey_header(2, 2, frames));
    f.extend([0xE0, 0x7F, 0x10, 0x00]);
    f.extend(b"OB\0\0");
    f.extend(0xFFFF_FFFFu32.to_le_bytes());
    let table: Vec<u8> = offset_table.iter().flat_map(|o| o.to_le_bytes()).collect();
    f.extend(item_tag(0xE000, table.len() as u32));
    f.extend(table);
    for frag in fragments {
        f.extend(item_tag(0xE000, frag.len() as u32));
        f.extend(*frag);
    }
    f.extend(item_tag(0xE0DD, 0));
    f.truncate(f.len() - cut);
    f
}

/// An RLE fragment of one segment holding the 4 bytes 1, 2, 3, 4.
fn rle_fragment() -> Vec<u8> {
    let mut frag = vec![0u8; 64];
    frag[0] = 1;
    frag[4] = 64;
    frag.extend([3, 1, 2, 3, 4]);
    frag.push(0);
    frag
}

#[test]
fn fragments_and_offset_tables_are_checked() {
    let frag = rle_fragment();
    let image = open(&rle_file(&[0], &[&frag], 0)).unwrap();
    let rgb = image.frame_rgb8(0, &WindowChoice::MinMax).unwrap();
    assert_eq!(rgb.get_pixel(1, 1).0, [255, 255, 255]);
    // A table entry that is no fragment's start.
    let e = open(&rle_file(&[0x7FFF_0000], &[&frag], 0)).unwrap_err();
    assert_eq!(e.reason(), "bad-fragment-table", "{e}");
    let e = open(&rle_file(&[0, 4], &[&frag], 0)).unwrap_err();
    assert_eq!(e.reason(), "bad-fragment-table", "{e}");
    // A file cut inside its last fragment is truncated, not forged.
    let e = open(&rle_file(&[0], &[&frag], 20)).unwrap_err();
    assert_eq!(e.reason(), "truncated-pixel-data", "{e}");
    // More frames than fragments.
    let f = rle_frames(Some("3"), &[], &[&frag, &frag], 0);
    assert_eq!(open(&f).unwrap_err().reason(), "truncated-pixel-data");
    let f = rle_frames(Some("2"), &[], &[&frag, &frag], 0);
    assert_eq!(open(&f).unwrap().frames(FrameChoice::All), vec![0, 1]);
}

#[test]
fn native_pixel_data_shorter_than_promised_is_truncated() {
    let e = open(&grey_file(&[1, 2], 2, 2)).unwrap_err();
    assert_eq!(e.reason(), "truncated-pixel-data", "{e}");
    // Declared longer than the file.
    let mut f = grey_file(&[1, 2, 3, 4], 2, 2);
    f.truncate(f.len() - 2);
    assert_eq!(open(&f).unwrap_err().reason(), "truncated-pixel-data");
}

#[test]
fn header_problems_are_reasons_not_panics() {
    assert_eq!(open(b"DICM").unwrap_err().reason(), "not-dicom");
    assert_eq!(
        open(&file_start(EXPLICIT_LE)).unwrap_err().reason(),
        "no-pixel-data"
    );
    let mut f = file_start("1.2.840.10008.1.2.4.80");
    f.extend(grey_header(2, 2, None));
    f.extend(element(0x7FE0, 0x0010, b"OB", &[0; 4]));
    assert_eq!(
        open(&f).unwrap_err().reason(),
        "unsupported-transfer-syntax"
    );
    let mut f = file_start(EXPLICIT_LE);
    f.extend(grey_header(0, 2, None));
    f.extend(element(0x7FE0, 0x0010, b"OB", &[0; 4]));
    assert_eq!(open(&f).unwrap_err().reason(), "corrupt");
    let small = ImageLimits {
        max_pixels: 3,
        ..ImageLimits::default()
    };
    let e =
        DicomImage::from_bytes(Path::new("x.dcm"), &grey_file(&[0; 4], 2, 2), &small).unwrap_err();
    assert_eq!(e.reason(), "too-many-pixels");
}

#[test]
fn fuzz_entry_survives_mutated_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dicom");
    let seeds: Vec<Vec<u8>> = [
        "mono2_u8.dcm",
        "rle_rgb_u8.dcm",
        "jpeg_baseline_ybr422.dcm",
        "j2k_lossless_u12.dcm",
        "palette_u8_lut16.dcm",
        "voi_lut_seq.dcm",
        "deflated.dcm",
    ]
    .iter()
    .filter_map(|f| std::fs::read(dir.join(f)).ok())
    .collect();
    assert!(!seeds.is_empty());
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..600 {
        let mut data = seeds[round % seeds.len()].clone();
        for _ in 0..1 + next() % 8 {
            if data.len() <= 132 {
                break;
            }
            let at = 128 + (next() as usize) % (data.len() - 128);
            match next() % 4 {
                0 => data[at] = next() as u8,
                1 => data[at] ^= 0x80,
                2 => data.truncate(at),
                _ => {
                    let end = (at + 4).min(data.len());
                    data[at..end].fill(0xFF)
                }
            }
        }
        fuzz::dicom(&data);
    }
}

#[test]
fn images_and_errors_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DicomImage>();
    send_sync::<DicomError>();
}
