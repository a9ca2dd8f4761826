//! A store on read-only media (or without write permission): reads work, writes get a clear
//! error naming the store.

mod common;
mod mounts;

use common::*;
use medvec_store::{SearchParams, Store, StoreError};
use std::path::{Path, PathBuf};

/// A store with a segment and a logged tail; returns its root.
fn build(dir: &Path) -> (PathBuf, Vec<Vec<f32>>) {
    let root = dir.join("store");
    let store = Store::create(&root).unwrap();
    let cases = store.create_collection("cases", schema(16)).unwrap();
    let vectors = clustered(1300, 16, 5, 17);
    cases.upsert(&records(&vectors[..1200], 0)).unwrap();
    cases.flush().unwrap();
    cases.upsert(&records(&vectors[1200..], 1200)).unwrap();
    cases.save_head("early", b"weights").unwrap();
    (root, vectors)
}

/// Reads everything through `root`, which must not be writable, and checks that every kind of
/// write is refused with an error naming the store.
fn check_reads_work_and_writes_fail(root: &Path, vectors: &[Vec<f32>]) {
    let store = Store::open_read_only(root).unwrap();
    assert_eq!(store.verify().unwrap()[0].0, "cases");
    let cases = store.collection("cases").unwrap();
    assert_eq!(cases.len(), 1300);
    assert!(cases.get("case-001250").unwrap().is_some());
    assert_eq!(cases.load_head("early").unwrap(), b"weights");
    let hits = cases
        .search("image", &vectors[7], &SearchParams::top(1))
        .unwrap();
    assert_eq!(hits[0].id, "case-000007");
    let refused = cases.upsert(&records(&vectors[..1], 0)).unwrap_err();
    assert!(matches!(refused, StoreError::ReadOnly { .. }), "{refused}");
    let err = Store::open(root).err().expect("a writer open must fail");
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err}");
    let message = err.to_string();
    assert!(message.starts_with(root.to_str().unwrap()), "{message}");
    assert!(message.contains("not writable"), "{message}");
}

#[test]
fn a_read_only_bind_mount_serves_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (root, vectors) = build(dir.path());
    let mount = match mounts::read_only_bind(&root, &dir.path().join("ro")) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: cannot make a read-only bind mount ({why})");
            return;
        }
    };
    check_reads_work_and_writes_fail(&mount.path, &vectors);
    // Nothing changed underneath: the writable original still opens as a writer.
    drop(mount);
    let store = Store::open(&root).unwrap();
    assert_eq!(store.collection("cases").unwrap().len(), 1300);
}

#[test]
fn a_store_without_write_permission_serves_reads_and_refuses_writes() {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: root ignores file permissions (the bind-mount test covers this)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root, vectors) = build(dir.path());
    set_writable(&root, false);
    check_reads_work_and_writes_fail(&root, &vectors);
    set_writable(&root, true);
}

fn set_writable(dir: &Path, writable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mut paths = files_under(dir);
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(
        paths
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf)),
    );
    dirs.sort();
    dirs.dedup();
    paths.extend(dirs);
    for path in paths {
        let mode = match (path.is_dir(), writable) {
            (true, true) => 0o700,
            (true, false) => 0o500,
            (false, true) => 0o600,
            (false, false) => 0o400,
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}
