//! The single-writer lock: an `flock` on `LOCK` in the store directory.
//!
//! The kernel releases an `flock` when its holder dies, so a writer killed with SIGKILL leaves no
//! stale lock behind; the pid written into the file only serves the error message.

use crate::error::{IoContext, Result, StoreError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

pub const FILE_NAME: &str = "LOCK";

#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    pub fn acquire(store_dir: &Path) -> Result<WriteLock> {
        let path = store_dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    StoreError::NotWritable {
                        path: store_dir.to_path_buf(),
                        source: e,
                    }
                }
                _ => StoreError::Io {
                    path: path.clone(),
                    source: e,
                },
            })?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(StoreError::Locked {
                path: store_dir.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        file.set_len(0).at(&path)?;
        file.rewind().at(&path)?;
        write!(file, "{}", std::process::id()).at(&path)?;
        Ok(WriteLock { _file: file })
    }
}
