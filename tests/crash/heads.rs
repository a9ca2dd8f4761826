//! Crashes while a fusion head is trained and saved: a kill or an abort around the rename
//! leaves the old head or the new one, never a half-written model.

use super::*;
use std::path::Path;

fn demo_store(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("demo");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let csv = fixtures.join("meta.csv");
    medvec_ok(&[
        "create",
        s(&store),
        "ham10000",
        "--vector",
        "image:64:cosine",
        "--vector",
        "text:64:cosine",
        "--field",
        "dx:string",
        "--field",
        "split:string",
    ]);
    medvec_ok(&[
        "import",
        s(&store),
        "ham10000",
        "--npy",
        &format!("image={}", fixtures.join("image.npy").display()),
        "--npy",
        &format!("text={}", fixtures.join("text.npy").display()),
        "--table",
        s(&csv),
    ]);
    store
}

fn train_args<'a>(store: &'a Path, seed: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        s(store),
        "ham10000",
        "--head",
        "late",
        "--label",
        "dx",
        "--split-column",
        "split",
        "--shift",
        "0.5",
        "--seed",
        seed,
        "--epochs",
        "8",
        "--name",
        "dx",
    ]
}

/// The saved heads' metadata as `heads --json` lists it, without timings (which differ
/// between identical trainings).
fn listed(store: &Path) -> Vec<serde_json::Value> {
    let out = medvec_ok(&["heads", s(store), "ham10000", "--json"]);
    out.lines()
        .map(|l| {
            let mut head: serde_json::Value = serde_json::from_str(l).unwrap();
            drop_timings(&mut head);
            head
        })
        .collect()
}

/// Removes every measured time or speed (`seconds_per_epoch`, `rows_per_second`, ...).
fn drop_timings(value: &mut serde_json::Value) {
    if let Some(object) = value.as_object_mut() {
        object.retain(|key, _| !key.contains("second"));
        object.values_mut().for_each(drop_timings);
    }
}

/// Trains seed 2 over a head trained with seed 1, crashing; the head afterwards must be the
/// old one or the new one (as a clean run in a copy of the store makes it), and usable.
fn check_old_or_new(crash: impl Fn(&[&str]), context: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path());
    medvec_ok(&train_args(&store, "1"));
    let old = listed(&store);
    let clean = dir.path().join("clean");
    copy_dir(&store, &clean);
    medvec_ok(&train_args(&clean, "2"));
    let new = listed(&clean);
    assert_ne!(old, new, "different seeds give different heads");
    crash(&train_args(&store, "2"));
    medvec_ok(&["verify", s(&store)]);
    let now = listed(&store);
    assert!(
        now == old || now == new,
        "{context}: the head is neither old nor new: {now:?}"
    );
    medvec_ok(&["eval", s(&store), "ham10000", "--head", "dx", "--json"]);
}

#[test]
fn a_head_save_aborted_around_its_rename_leaves_the_old_or_the_new_head() {
    for point in ["before-rename", "after-rename"] {
        check_old_or_new(|args| abort_at(point, args, "training"), point);
    }
    report("head save, abort before/after its rename", 2);
}

#[test]
fn training_killed_at_random_points_leaves_the_old_or_the_new_head() {
    for (trial, delay) in delays(random_trials().div_ceil(4), 600)
        .into_iter()
        .enumerate()
    {
        check_old_or_new(
            |args| {
                run_until_killed_quiet(args, delay);
            },
            &format!("training trial {trial}, kill after {delay:?}"),
        );
    }
    report(
        "head training, SIGKILL at random times",
        random_trials().div_ceil(4),
    );
}

fn run_until_killed_quiet(args: &[&str], delay: Duration) {
    let mut child = Command::new(medvec_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
}
