//! Every command the demo suggests, and every medvec command in the README's quick start, runs
//! as written on the store the demo leaves behind: the first commands a newcomer types.
//!
//! The demo runs in a fresh folder laid out like the repository root (its `fixtures/` linked
//! in), with the default store `.medvec-demo`, as `bash tools/demo.sh` runs it; each command
//! then runs through `sh` from that folder.

mod util;

use std::path::Path;
use std::process::Command;
use util::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `medvec demo` in `dir` (a stand-in for the repository root); returns its stdout.
fn run_demo(dir: &Path) -> String {
    std::os::unix::fs::symlink(Path::new(REPO).join("fixtures"), dir.join("fixtures")).unwrap();
    let out = Command::new(medvec_bin())
        .arg("demo")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "medvec demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs one shell command line from `dir`, asserting success and some output.
fn run_as_written(dir: &Path, line: &str) {
    let out = Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`{line}` failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.trim().is_empty(), "`{line}` printed nothing");
}

/// The indented command lines after the demo's closing "try:".
fn suggested_commands(demo_output: &str) -> Vec<String> {
    let after = demo_output
        .split_once("; try:\n")
        .expect("the demo ends with commands to try")
        .1;
    after
        .lines()
        .map_while(|l| l.strip_prefix("  "))
        .map(String::from)
        .collect()
}

#[test]
fn every_command_the_demo_suggests_runs() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_demo(dir.path());
    let commands = suggested_commands(&output);
    assert!(commands.len() >= 8, "too few suggestions: {commands:?}");
    for line in &commands {
        assert!(line.contains(" .medvec-demo"), "{line}");
        run_as_written(dir.path(), line);
    }
    // The first suggestion a newcomer types answers with the case's neighbours, by name.
    let like = commands.iter().find(|c| c.contains("--like")).unwrap();
    let out = Command::new("sh")
        .args(["-c", like])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(" dx ") && text.contains(" age "), "{text}");
    assert_eq!(text.lines().count(), 2 + 5, "a header and 5 hits: {text}");
}

/// The `target/release/medvec ...` lines of the README's quick start (the binary
/// `bash tools/demo.sh` builds), with that path replaced by the binary under test.
fn readme_quick_start_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let section = readme
        .split("\n## Quick start")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Quick start section");
    let binary = medvec_bin();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("target/release/medvec "))
        .map(|rest| format!("{} {rest}", s(&binary)))
        .collect()
}

#[test]
fn readme_quick_start_commands_run_on_the_demo_store() {
    let dir = tempfile::tempdir().unwrap();
    run_demo(dir.path());
    let commands = readme_quick_start_commands();
    assert!(commands.len() >= 3, "too few commands: {commands:?}");
    for line in &commands {
        run_as_written(dir.path(), line);
    }
}
