//! Import errors. Each is one line naming the file and, where there is one, the row and column,
//! because the person fixing the input opens that file at that line.

use std::path::{Path, PathBuf};

/// Everything that can go wrong reading an import source.
///
/// `row` is the line number in the file for CSV and JSONL (the CSV header is line 1) and the
/// 1-based row index for `.npy` files.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file as a whole is unusable: a bad header, a missing column, a dimension mismatch.
    #[error("{}: {detail}", .path.display())]
    File { path: PathBuf, detail: String },
    /// A `.npy` file holds fewer bytes than its header promises.
    #[error(
        "{}: truncated: header says {rows} rows of {dim}, file holds only {bytes} bytes after the header",
        .path.display()
    )]
    Truncated {
        path: PathBuf,
        rows: u64,
        dim: u64,
        bytes: u64,
    },
    /// A whole row is unusable: not a JSON object, the wrong number of cells, too long.
    #[error("{}: row {row}: {detail}", .path.display())]
    Row {
        path: PathBuf,
        row: u64,
        detail: String,
    },
    /// One cell (CSV) or key (JSONL) of one row is unusable.
    #[error("{}: row {row}, column {column}: {detail}", .path.display())]
    Cell {
        path: PathBuf,
        row: u64,
        column: String,
        detail: String,
    },
}

pub type Result<T, E = ImportError> = std::result::Result<T, E>;

impl ImportError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ImportError::Io { path, .. }
            | ImportError::File { path, .. }
            | ImportError::Truncated { path, .. }
            | ImportError::Row { path, .. }
            | ImportError::Cell { path, .. } => path,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> ImportError {
        ImportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn file(path: &Path, detail: impl AsRef<str>) -> ImportError {
        ImportError::File {
            path: path.to_path_buf(),
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn row(path: &Path, row: u64, detail: impl AsRef<str>) -> ImportError {
        ImportError::Row {
            path: path.to_path_buf(),
            row,
            detail: one_line(detail.as_ref()),
        }
    }

    pub(crate) fn cell(
        path: &Path,
        row: u64,
        column: &str,
        detail: impl AsRef<str>,
    ) -> ImportError {
        ImportError::Cell {
            path: path.to_path_buf(),
            row,
            column: one_line(column),
            detail: one_line(detail.as_ref()),
        }
    }
}

/// The longest detail kept in a message; cells can be megabytes long.
const MAX_DETAIL_CHARS: usize = 240;

/// Escapes control characters (a quoted CSV cell may hold newlines) and shortens long text,
/// keeping its end because that is where "is not a number" sits.
pub(crate) fn one_line(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    let count = escaped.chars().count();
    if count <= MAX_DETAIL_CHARS {
        return escaped;
    }
    let head: String = escaped.chars().take(MAX_DETAIL_CHARS - 80).collect();
    let tail: String = escaped.chars().skip(count - 60).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_short() {
        let long = format!("`a\nb{}` is not a number", "x".repeat(10_000));
        let err = ImportError::cell(Path::new("t.csv"), 3, "c\r1", long);
        let text = err.to_string();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        assert!(
            text.starts_with("t.csv: row 3, column c\\r1: `a\\nbxxx"),
            "{text}"
        );
        assert!(text.ends_with("` is not a number"), "{text}");
        assert!(text.len() < 400);
    }

    #[test]
    fn path_is_reported() {
        let err = ImportError::row(Path::new("x.jsonl"), 2, "bad");
        assert_eq!(err.path(), Path::new("x.jsonl"));
        assert_eq!(err.to_string(), "x.jsonl: row 2: bad");
    }
}
