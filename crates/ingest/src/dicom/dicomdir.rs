//! DICOMDIR: the index a DICOM disc or export carries, listing its files.

use super::error::DicomError;
use super::scan;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::OpenFileOptions;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};

/// Largest DICOMDIR read: a disc of 100,000 images has a DICOMDIR of a few tens of MB.
const MAX_DICOMDIR_BYTES: u64 = 256 << 20;

/// The files a DICOMDIR refers to (every directory record with a Referenced File ID: images,
/// and also reports or presentation states, which then fail as
/// [`NoPixelData`](DicomError::NoPixelData)), in record order without repeats, resolved
/// against the DICOMDIR's folder.
///
/// A reference that is absolute, has a `..` component, or resolves (through a symlink) outside
/// that folder makes the whole DICOMDIR [`DicomError::EscapesRoot`]: such a DICOMDIR is hostile
/// or broken, and the folder can still be ingested by walking it.
///
/// ```
/// use medvec_ingest::dicom::read_dicomdir;
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dicom/dicomdir");
/// let files = read_dicomdir(&dir.join("DICOMDIR"))?;
/// assert_eq!(files.len(), 3);
/// assert!(files[0].ends_with("PT000000/ST000000/SE000000/IM000000"));
/// # Ok::<(), medvec_ingest::dicom::DicomError>(())
/// ```
pub fn read_dicomdir(path: &Path) -> Result<Vec<PathBuf>, DicomError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DICOMDIR_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| DicomError::io(path, e))?;
    if bytes.len() as u64 > MAX_DICOMDIR_BYTES {
        return Err(DicomError::FileTooLarge {
            path: path.to_path_buf(),
            bytes: bytes.len() as u64,
            limit: MAX_DICOMDIR_BYTES,
        });
    }
    let meta = scan::read_meta(path, &bytes)?;
    scan::check_dataset(path, &bytes, &meta, MAX_DICOMDIR_BYTES)?;
    let object = catch_unwind(AssertUnwindSafe(|| {
        OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .from_reader(&bytes[128..])
    }));
    let Ok(Ok(object)) = object else {
        return Err(DicomError::decode(path, "the DICOMDIR does not parse"));
    };
    let records = object
        .get(tags::DIRECTORY_RECORD_SEQUENCE)
        .and_then(|e| e.items())
        .ok_or_else(|| DicomError::decode(path, "not a DICOMDIR: no Directory Record Sequence"))?;
    let root = path.parent().unwrap_or(Path::new("."));
    let canonical_root = root.canonicalize().map_err(|e| DicomError::io(root, e))?;
    let mut files: Vec<PathBuf> = Vec::new();
    // A disc can list 100,000 files: dedup by hash, not by scanning the list.
    let mut seen = std::collections::HashSet::new();
    for record in records {
        let Some(element) = record.get(tags::REFERENCED_FILE_ID) else {
            continue;
        };
        let Value::Primitive(value) = element.value() else {
            continue;
        };
        let mut file = root.to_path_buf();
        let mut any = false;
        for part in value.to_multi_str().iter() {
            let part = part.trim_matches([' ', '\0']);
            if part.is_empty() {
                continue;
            }
            let mut components = Path::new(part).components();
            let safe = matches!(
                (components.next(), components.next()),
                (Some(Component::Normal(_)), None)
            ) && !part.contains(['/', '\\']);
            if !safe {
                return Err(DicomError::EscapesRoot {
                    path: path.to_path_buf(),
                });
            }
            file.push(part);
            any = true;
        }
        if !any {
            continue;
        }
        if let Ok(real) = file.canonicalize() {
            if !real.starts_with(&canonical_root) {
                return Err(DicomError::EscapesRoot {
                    path: path.to_path_buf(),
                });
            }
        }
        if seen.insert(file.clone()) {
            files.push(file);
        }
    }
    Ok(files)
}
