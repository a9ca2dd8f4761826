//! Files medvec writes outside a store (exports, rejects lists, predictions) hold patient data
//! too, so they are created owner-only (0600), like the store's own files.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Creates (or truncates) `path` readable and writable by its owner only. An existing file
/// keeps its mode, so a user who chose wider permissions for it keeps them.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
