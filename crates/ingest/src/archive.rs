//! Reading a hospital image archive: a manifest (CSV or JSONL) or a folder walk, streamed in
//! chunks, with every image path checked to stay inside the archive root.
//!
//! A row that cannot be used becomes a [`Rejection`] (id, path, [`RejectReason`]) rather than an
//! error, so one bad file never stops an archive; only an unreadable manifest is an error.
//!
//! - **Manifest**: `.csv` (header row) or `.jsonl` (one object per line; strings, numbers and
//!   booleans become cell text). An id column (default `id`), an image path column (default
//!   `path`), and any other columns, which are the row's metadata (a label or split column is
//!   just metadata: `ingest` stores it as payload when the collection has that field).
//! - **Folder**: every file under the root with an image extension (jpg, jpeg, png, tif, tiff,
//!   bmp, webp, gif, dcm, dicom; any case) and every other file that starts like a DICOM file
//!   (the `DICM` preamble: archives often have no extensions), in sorted order; the id is the
//!   relative path without extension, `/`-separated; there is no metadata. Files named
//!   `DICOMDIR` are indexes, not images, and are skipped.
//! - **DICOMDIR**: the image files a DICOMDIR names, ids as for a folder, paths relative to the
//!   DICOMDIR's folder.
//!
//! ```
//! use medvec_ingest::archive::{ArchiveReader, ArchiveSource, ManifestColumns};
//! let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
//! let source = ArchiveSource::Manifest(root.join("archive/manifest.csv"));
//! let mut reader = ArchiveReader::open(&source, &ManifestColumns::default())?;
//! assert!(reader.metadata_columns().contains(&"dx".to_string()));
//! let chunk = reader.next_chunk(4)?;
//! assert_eq!(chunk.len(), 4);
//! # Ok::<(), medvec_ingest::archive::ArchiveError>(())
//! ```

use crate::encode::EncodeError;
use crate::error::one_line;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};

/// Errors that stop reading an archive (a row's problems are [`Rejection`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The manifest as a whole is unusable (no header, a missing column, an unknown extension).
    #[error("{}: {detail}", .path.display())]
    File { path: PathBuf, detail: String },
}

/// Why a row was not ingested; [`as_str`](Self::as_str) is the `reason` column of the rejects file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No path in the row, or no file at the path.
    MissingPath,
    /// An absolute path, a `..` component, or a symlink resolving outside the root.
    EscapesRoot,
    /// A zero-byte file.
    ZeroByte,
    /// Content that is not an image format medvec reads, or a directory.
    NotAnImage,
    /// A DICOM file medvec does not ingest; the code says why (`not-dicom`, `no-pixel-data`,
    /// `unsupported-transfer-syntax`, `bad-fragment-table`, `nesting-too-deep`, ...; see
    /// [`DicomError::reason`](crate::dicom::DicomError::reason)).
    Dicom(&'static str),
    /// A recognised image that does not decode (truncated or corrupt).
    Truncated,
    /// More pixels than [`ImageLimits::max_pixels`](crate::encode::ImageLimits::max_pixels), or a file larger than its byte limit.
    TooManyPixels,
    /// A file that exists but cannot be read (permissions).
    Unreadable,
    /// A manifest row that cannot be used: ragged, bad JSON, a bad id, a cell that does not
    /// parse as its payload type, a template slot with no value.
    BadMetadata,
}

impl RejectReason {
    /// The short code written to the rejects file.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::MissingPath => "missing",
            RejectReason::EscapesRoot => "escapes-root",
            RejectReason::ZeroByte => "zero-byte",
            RejectReason::NotAnImage => "not-an-image",
            RejectReason::Dicom(reason) => reason,
            RejectReason::Truncated => "truncated",
            RejectReason::TooManyPixels => "too-many-pixels",
            RejectReason::Unreadable => "unreadable",
            RejectReason::BadMetadata => "bad-metadata",
        }
    }

    /// The reason for an image load error.
    pub fn of(error: &EncodeError) -> RejectReason {
        match error {
            EncodeError::EmptyFile { .. } => RejectReason::ZeroByte,
            EncodeError::NotAnImage { .. } => RejectReason::NotAnImage,
            EncodeError::TooManyPixels { .. } | EncodeError::FileTooLarge { .. } => {
                RejectReason::TooManyPixels
            }
            EncodeError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                RejectReason::MissingPath
            }
            EncodeError::Io { .. } => RejectReason::Unreadable,
            EncodeError::Dicom(error) => match error.reason() {
                "too-many-pixels" => RejectReason::TooManyPixels,
                "missing" => RejectReason::MissingPath,
                "unreadable" => RejectReason::Unreadable,
                "escapes-root" => RejectReason::EscapesRoot,
                reason => RejectReason::Dicom(reason),
            },
            _ => RejectReason::Truncated,
        }
    }
}

/// One row not ingested: its id and path as written in the manifest, why, and a one-line detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub id: String,
    pub path: String,
    pub reason: RejectReason,
    pub detail: String,
}

/// One usable manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRow {
    /// Line of the manifest (CSV: the header is line 1), or the file's rank in a folder walk.
    pub line: u64,
    pub id: String,
    /// The image path as written, relative to the root.
    pub path: String,
    /// `(column, cell)` for every metadata column, in manifest order.
    pub metadata: Vec<(String, String)>,
}

impl ArchiveRow {
    /// A metadata cell by column name.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v.as_str())
    }

    /// A rejection of this row.
    pub fn reject(&self, reason: RejectReason, detail: impl AsRef<str>) -> Rejection {
        Rejection {
            id: self.id.clone(),
            path: self.path.clone(),
            reason,
            detail: one_line(detail.as_ref()),
        }
    }
}

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveSource {
    /// A `.csv` or `.jsonl` manifest.
    Manifest(PathBuf),
    /// Every image file under a folder.
    Folder(PathBuf),
    /// The image files a DICOMDIR names.
    Dicomdir(PathBuf),
}

/// Which manifest columns hold the id and the image path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestColumns {
    /// Default `id`.
    pub id: String,
    /// Default `path`.
    pub image: String,
}

impl Default for ManifestColumns {
    fn default() -> Self {
        ManifestColumns {
            id: "id".into(),
            image: "path".into(),
        }
    }
}

/// Streams an archive's rows, a chunk at a time.
#[derive(Debug)]
pub struct ArchiveReader {
    inner: Inner,
    columns: ManifestColumns,
    metadata: Vec<String>,
}

#[derive(Debug)]
enum Inner {
    Csv {
        path: PathBuf,
        reader: csv::Reader<File>,
        headers: Vec<String>,
    },
    Jsonl {
        path: PathBuf,
        lines: std::io::Lines<BufReader<File>>,
        line: u64,
    },
    Folder {
        root: PathBuf,
        /// Directories still to visit, each a sorted, reversed list of entries.
        stack: Vec<Vec<PathBuf>>,
        rank: u64,
    },
    Listed {
        root: PathBuf,
        files: std::vec::IntoIter<PathBuf>,
        rank: u64,
    },
}

const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp", "gif", "dcm", "dicom",
];

impl ArchiveReader {
    /// Opens a manifest (checking its id and path columns) or starts a folder walk.
    pub fn open(
        source: &ArchiveSource,
        columns: &ManifestColumns,
    ) -> Result<ArchiveReader, ArchiveError> {
        let (inner, metadata) = match source {
            ArchiveSource::Manifest(path) => open_manifest(path, columns)?,
            ArchiveSource::Folder(root) => {
                let entries = sorted_entries(root)?;
                let inner = Inner::Folder {
                    root: root.clone(),
                    stack: vec![entries],
                    rank: 0,
                };
                (inner, Vec::new())
            }
            ArchiveSource::Dicomdir(path) => (open_dicomdir(path)?, Vec::new()),
        };
        Ok(ArchiveReader {
            inner,
            columns: columns.clone(),
            metadata,
        })
    }

    /// The metadata columns (all but id and path), in manifest order. For JSONL, the keys of
    /// the first line; for a folder, none.
    pub fn metadata_columns(&self) -> &[String] {
        &self.metadata
    }

    /// How many rows the archive has: a pass over the manifest (or folder) that reads no image,
    /// so that progress can show an ETA.
    pub fn count_rows(
        source: &ArchiveSource,
        columns: &ManifestColumns,
    ) -> Result<u64, ArchiveError> {
        let mut reader = ArchiveReader::open(source, columns)?;
        let mut rows = 0;
        loop {
            match reader.next_chunk(4096)?.len() {
                0 => return Ok(rows),
                n => rows += n as u64,
            }
        }
    }

    /// Up to `n` rows (fewer only at the end; empty when done), each usable or rejected.
    pub fn next_chunk(
        &mut self,
        n: usize,
    ) -> Result<Vec<Result<ArchiveRow, Rejection>>, ArchiveError> {
        let mut out = Vec::with_capacity(n.min(4096));
        while out.len() < n.max(1) {
            match self.next_row()? {
                Some(row) => out.push(row),
                None => break,
            }
        }
        Ok(out)
    }

    fn next_row(&mut self) -> Result<Option<Result<ArchiveRow, Rejection>>, ArchiveError> {
        match &mut self.inner {
            Inner::Csv {
                path,
                reader,
                headers,
            } => next_csv(path, reader, headers, &self.columns),
            Inner::Jsonl { path, lines, line } => {
                next_jsonl(path, lines, line, &self.columns, &self.metadata)
            }
            Inner::Folder { root, stack, rank } => next_file(root, stack, rank),
            Inner::Listed { root, files, rank } => Ok(files.next().map(|path| {
                *rank += 1;
                file_row(root, &path, *rank)
            })),
        }
    }
}

fn open_manifest(
    path: &Path,
    columns: &ManifestColumns,
) -> Result<(Inner, Vec<String>), ArchiveError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => open_csv(path, columns),
        Some("jsonl") | Some("ndjson") => open_jsonl(path, columns),
        _ => Err(file_error(path, "manifest must be .csv or .jsonl")),
    }
}

fn file_error(path: &Path, detail: impl AsRef<str>) -> ArchiveError {
    ArchiveError::File {
        path: path.to_path_buf(),
        detail: one_line(detail.as_ref()),
    }
}

fn io_error(path: &Path, error: std::io::Error) -> ArchiveError {
    ArchiveError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The metadata columns, after checking the id and path columns are present.
fn metadata_of(
    path: &Path,
    keys: &[String],
    columns: &ManifestColumns,
) -> Result<Vec<String>, ArchiveError> {
    for want in [&columns.id, &columns.image] {
        if !keys.contains(want) {
            return Err(file_error(
                path,
                format!("no `{want}` column (columns: {})", keys.join(", ")),
            ));
        }
    }
    Ok(keys
        .iter()
        .filter(|k| **k != columns.id && **k != columns.image)
        .cloned()
        .collect())
}

fn open_csv(path: &Path, columns: &ManifestColumns) -> Result<(Inner, Vec<String>), ArchiveError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| file_error(path, format!("header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let metadata = metadata_of(path, &headers, columns)?;
    let inner = Inner::Csv {
        path: path.to_path_buf(),
        reader,
        headers,
    };
    Ok((inner, metadata))
}

fn next_csv(
    path: &Path,
    reader: &mut csv::Reader<File>,
    headers: &[String],
    columns: &ManifestColumns,
) -> Result<Option<Result<ArchiveRow, Rejection>>, ArchiveError> {
    let mut record = csv::StringRecord::new();
    let line = reader.position().line();
    match reader.read_record(&mut record) {
        Ok(false) => Ok(None),
        Ok(true) => {
            let cells: Vec<(String, String)> = headers
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_string))
                .collect();
            let ragged = (record.len() != headers.len()).then(|| {
                format!(
                    "line {line}: {} cells, the header has {}",
                    record.len(),
                    headers.len()
                )
            });
            Ok(Some(row_from_cells(line, cells, columns, ragged)))
        }
        Err(e) if e.is_io_error() => Err(file_error(path, e.to_string())),
        // A bad row (invalid UTF-8, say): rejected, the next one is read.
        Err(e) => Ok(Some(Err(Rejection {
            id: String::new(),
            path: String::new(),
            reason: RejectReason::BadMetadata,
            detail: one_line(&format!("line {line}: {e}")),
        }))),
    }
}

/// A row from `(column, cell)` pairs; `problem` (already found) rejects it.
fn row_from_cells(
    line: u64,
    cells: Vec<(String, String)>,
    columns: &ManifestColumns,
    problem: Option<String>,
) -> Result<ArchiveRow, Rejection> {
    let take = |name: &str| {
        cells
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let row = ArchiveRow {
        line,
        id: take(&columns.id),
        path: take(&columns.image),
        metadata: cells
            .iter()
            .filter(|(c, _)| *c != columns.id && *c != columns.image)
            .cloned()
            .collect(),
    };
    if let Some(problem) = problem {
        return Err(row.reject(RejectReason::BadMetadata, problem));
    }
    if let Err(why) = medvec_store::validate_id(&row.id) {
        return Err(row.reject(RejectReason::BadMetadata, format!("line {line}: {why}")));
    }
    if row.path.is_empty() {
        return Err(row.reject(
            RejectReason::MissingPath,
            format!("line {line}: no image path"),
        ));
    }
    Ok(row)
}

fn open_jsonl(
    path: &Path,
    columns: &ManifestColumns,
) -> Result<(Inner, Vec<String>), ArchiveError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut first = String::new();
    BufReader::new(File::open(path).map_err(|e| io_error(path, e))?)
        .read_line(&mut first)
        .map_err(|e| io_error(path, e))?;
    let keys: Vec<String> = match serde_json::from_str::<serde_json::Value>(&first) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => return Err(file_error(path, "line 1 is not a JSON object")),
    };
    let metadata = metadata_of(path, &keys, columns)?;
    let inner = Inner::Jsonl {
        path: path.to_path_buf(),
        lines: BufReader::new(file).lines(),
        line: 0,
    };
    Ok((inner, metadata))
}

fn next_jsonl(
    path: &Path,
    lines: &mut std::io::Lines<BufReader<File>>,
    line: &mut u64,
    columns: &ManifestColumns,
    metadata: &[String],
) -> Result<Option<Result<ArchiveRow, Rejection>>, ArchiveError> {
    loop {
        *line += 1;
        let text = match lines.next() {
            None => return Ok(None),
            Some(Ok(text)) => text,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Ok(Some(Err(bad_line(*line, "not UTF-8"))))
            }
            Some(Err(e)) => return Err(io_error(path, e)),
        };
        if text.trim().is_empty() {
            continue;
        }
        let map = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Ok(Some(Err(bad_line(*line, "not a JSON object")))),
        };
        let cell = |key: &str| match map.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let mut cells = vec![
            (columns.id.clone(), cell(&columns.id)),
            (columns.image.clone(), cell(&columns.image)),
        ];
        cells.extend(metadata.iter().map(|k| (k.clone(), cell(k))));
        return Ok(Some(row_from_cells(*line, cells, columns, None)));
    }
}

fn bad_line(line: u64, why: &str) -> Rejection {
    Rejection {
        id: String::new(),
        path: String::new(),
        reason: RejectReason::BadMetadata,
        detail: format!("line {line}: {why}"),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    entries.reverse();
    Ok(entries)
}

fn next_file(
    root: &Path,
    stack: &mut Vec<Vec<PathBuf>>,
    rank: &mut u64,
) -> Result<Option<Result<ArchiveRow, Rejection>>, ArchiveError> {
    while let Some(top) = stack.last_mut() {
        let Some(path) = top.pop() else {
            stack.pop();
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            stack.push(sorted_entries(&path)?);
            continue;
        }
        if !is_archive_file(&path) {
            continue;
        }
        *rank += 1;
        return Ok(Some(file_row(root, &path, *rank)));
    }
    Ok(None)
}

/// True for a file with an image extension, or one that starts like a DICOM file; never for a
/// DICOMDIR (an index of other files).
fn is_archive_file(path: &Path) -> bool {
    if path
        .file_name()
        .is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR"))
    {
        return false;
    }
    let has_image_extension = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    has_image_extension || crate::dicom::looks_like_dicom(path)
}

/// The row of a file found under `root`: its id is the relative path without extension.
fn file_row(root: &Path, path: &Path, rank: u64) -> Result<ArchiveRow, Rejection> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let id = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let rel = rel.to_string_lossy().into_owned();
    let cells = vec![("id".into(), id), ("path".into(), rel)];
    row_from_cells(rank, cells, &ManifestColumns::default(), None)
}

/// The files a DICOMDIR names, as rows relative to its folder.
fn open_dicomdir(path: &Path) -> Result<Inner, ArchiveError> {
    let files = crate::dicom::read_dicomdir(path).map_err(|e| file_error(path, e.to_string()))?;
    let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok(Inner::Listed {
        root,
        files: files.into_iter(),
        rank: 0,
    })
}

/// Resolves a manifest path against the (canonical) root: rejects absolute paths, `..`
/// components, missing files and symlinks that resolve outside the root.
///
/// ```
/// use medvec_ingest::archive::{resolve_in_root, RejectReason};
/// let root = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/images")).unwrap();
/// assert!(resolve_in_root(&root, "rgb_80x60.jpg").is_ok());
/// assert_eq!(resolve_in_root(&root, "../README.md").unwrap_err().0, RejectReason::EscapesRoot);
/// assert_eq!(resolve_in_root(&root, "/etc/passwd").unwrap_err().0, RejectReason::EscapesRoot);
/// assert_eq!(resolve_in_root(&root, "nope.png").unwrap_err().0, RejectReason::MissingPath);
/// ```
pub fn resolve_in_root(root: &Path, relative: &str) -> Result<PathBuf, (RejectReason, String)> {
    let rel = Path::new(relative);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err((
            RejectReason::EscapesRoot,
            "absolute path or `..` component".into(),
        ));
    }
    let joined = root.join(rel);
    match std::fs::canonicalize(&joined) {
        Ok(real) if real.starts_with(root) => Ok(real),
        Ok(_) => Err((
            RejectReason::EscapesRoot,
            "a symlink resolves outside the root".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err((RejectReason::MissingPath, "no such file".into()))
        }
        Err(e) => Err((RejectReason::Unreadable, one_line(&e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_rows(reader: &mut ArchiveReader) -> Vec<Result<ArchiveRow, Rejection>> {
        let mut out = Vec::new();
        loop {
            let chunk = reader.next_chunk(2).unwrap();
            if chunk.is_empty() {
                return out;
            }
            out.extend(chunk);
        }
    }

    #[test]
    fn csv_rows_ragged_rows_and_bad_ids_are_rejected_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            "id,path,dx\na,a.png,mel\nb,b.png\n,c.png,nv\nd,,nv\n",
        )
        .unwrap();
        let mut reader =
            ArchiveReader::open(&ArchiveSource::Manifest(path), &ManifestColumns::default())
                .unwrap();
        assert_eq!(reader.metadata_columns(), ["dx".to_string()]);
        let rows = all_rows(&mut reader);
        assert_eq!(rows.len(), 4);
        let a = rows[0].as_ref().unwrap();
        assert_eq!(
            (a.id.as_str(), a.path.as_str(), a.get("dx"), a.line),
            ("a", "a.png", Some("mel"), 2)
        );
        let reasons: Vec<_> = rows[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().reason)
            .collect();
        assert_eq!(
            reasons,
            [
                RejectReason::BadMetadata,
                RejectReason::BadMetadata,
                RejectReason::MissingPath
            ]
        );
    }

    #[test]
    fn missing_columns_and_extensions_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("m.csv");
        std::fs::write(&csv, "id,file\na,a.png\n").unwrap();
        let err = ArchiveReader::open(&ArchiveSource::Manifest(csv), &ManifestColumns::default())
            .unwrap_err();
        assert!(err.to_string().contains("no `path` column"), "{err}");
        let txt = dir.path().join("m.txt");
        std::fs::write(&txt, "x").unwrap();
        assert!(
            ArchiveReader::open(&ArchiveSource::Manifest(txt), &ManifestColumns::default())
                .is_err()
        );
    }

    #[test]
    fn jsonl_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, "{\"id\": \"a\", \"path\": \"a.png\", \"age\": 45}\n\nnot json\n{\"id\": \"b\", \"path\": \"b.png\", \"age\": null}\n").unwrap();
        let mut reader =
            ArchiveReader::open(&ArchiveSource::Manifest(path), &ManifestColumns::default())
                .unwrap();
        let rows = all_rows(&mut reader);
        assert_eq!(rows[0].as_ref().unwrap().get("age"), Some("45"));
        assert_eq!(
            rows[1].as_ref().unwrap_err().reason,
            RejectReason::BadMetadata
        );
        assert_eq!(rows[2].as_ref().unwrap().get("age"), Some(""));
    }

    #[test]
    fn folder_walk_ids_are_relative_paths_without_extension() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for f in ["b.PNG", "a.jpg", "notes.txt", "sub/c.tif"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let source = ArchiveSource::Folder(dir.path().to_path_buf());
        let mut reader = ArchiveReader::open(&source, &ManifestColumns::default()).unwrap();
        let ids: Vec<String> = all_rows(&mut reader)
            .into_iter()
            .map(|r| r.unwrap().id)
            .collect();
        assert_eq!(ids, ["a", "b", "sub/c"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_rejected() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.png"), "x").unwrap();
        std::fs::write(root.path().join("in.png"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.png"), root.path().join("link.png"))
            .unwrap();
        std::os::unix::fs::symlink(root.path().join("in.png"), root.path().join("ok.png")).unwrap();
        let root = std::fs::canonicalize(root.path()).unwrap();
        assert_eq!(
            resolve_in_root(&root, "link.png").unwrap_err().0,
            RejectReason::EscapesRoot
        );
        assert!(resolve_in_root(&root, "ok.png").is_ok());
        assert!(resolve_in_root(&root, "./in.png").is_ok());
        assert_eq!(
            resolve_in_root(&root, "a/../in.png").unwrap_err().0,
            RejectReason::EscapesRoot
        );
    }
}
