//! Real mounts for the disk-full and read-only tests: a small tmpfs, a read-only bind mount.
//! Both need root (or CAP_SYS_ADMIN); without it a test prints why it skipped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount point that is unmounted when dropped (drop every store using it first).
pub struct Mounted {
    pub path: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Mounts a tmpfs of `size` (like "2m") on `at`.
pub fn tmpfs(at: &Path, size: &str) -> Result<Mounted, String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let options = format!("size={size},mode=0700");
    run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        &options,
        "tmpfs",
        at.to_str().unwrap(),
    ])?;
    Ok(Mounted {
        path: at.to_path_buf(),
    })
}

/// Resizes a tmpfs mounted by [`tmpfs`]: "space returns".
pub fn resize(mounted: &Mounted, size: &str) -> Result<(), String> {
    let options = format!("remount,size={size}");
    run(&["mount", "-o", &options, mounted.path.to_str().unwrap()])
}

/// Mounts `source` read-only at `at` (a bind mount, then a read-only remount).
pub fn read_only_bind(source: &Path, at: &Path) -> Result<Mounted, String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let (source, target) = (source.to_str().unwrap(), at.to_str().unwrap());
    run(&["mount", "--bind", source, target])?;
    let mounted = Mounted {
        path: at.to_path_buf(),
    };
    run(&["mount", "-o", "remount,ro,bind", target])?;
    Ok(mounted)
}
