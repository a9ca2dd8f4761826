//! Fuzz entry for the DICOM reader: any bytes, never a panic, bounded memory.

use super::{DicomImage, FrameChoice, WindowChoice};
use crate::encode::ImageLimits;
use std::path::Path;

/// Opens `data` as a DICOM file and decodes its first and middle frames with each window
/// choice. Errors are expected; a panic or an abort is a bug. Limits are small, so a fuzzer's
/// header cannot make the reader allocate much.
pub fn dicom(data: &[u8]) {
    tolerate_guarded_decoder_panics();
    let limits = ImageLimits {
        max_file_bytes: 16 << 20,
        max_pixels: 1 << 20,
    };
    let Ok(image) = DicomImage::from_bytes(Path::new("fuzz.dcm"), data, &limits) else {
        return;
    };
    // The header as ingest and `medvec dicom-tags` read it.
    let _ = super::header_lines(image.object(), false);
    let tags = super::TagSelection::new(&[], false).expect("the safe tags are known");
    let _ = tags.values(image.object(), Some(&[7; 32]));
    let mut frames = image.frames(FrameChoice::First);
    frames.extend(image.frames(FrameChoice::Middle));
    frames.dedup();
    for frame in frames {
        for window in [
            WindowChoice::FromFile,
            WindowChoice::MinMax,
            WindowChoice::Fixed {
                center: 40.0,
                width: 400.0,
            },
        ] {
            if let Ok(rgb) = image.frame_rgb8(frame, &window) {
                assert_eq!((rgb.width(), rgb.height()), (image.columns(), image.rows()));
            }
        }
    }
}

/// The RLE and JPEG 2000 adapters of dicom-rs index with lengths taken from the file, and the
/// reader runs them under `catch_unwind` (`frame::guarded`), so a user gets an error naming the
/// file. libFuzzer's panic hook aborts on every panic, caught or not; this hook lets panics
/// raised inside those decoders unwind to the guard and hands every other panic (medvec's own
/// code, or a dependency called unguarded) to libFuzzer's hook, which aborts.
fn tolerate_guarded_decoder_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map_or("", |l| l.file());
            let guarded = ["dicom-transfer-syntax-registry", "jpeg2k", "openjpeg"]
                .iter()
                .any(|crate_name| file.contains(crate_name));
            if !guarded {
                fuzzer_hook(info);
            }
        }));
    });
}
