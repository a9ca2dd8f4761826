//! What a fresh process pays to answer one question from a large store (issue 16, "Ids on disk"
//! and "Checksums without a full read"): `medvec get`, `medvec search --like` and
//! `medvec search --queries one.npy` on a store of N × DIM vectors built by one `medvec import`,
//! each run as a new process with the page cache warm. Also reports the import's own cost and
//! peak RSS (the writer's memory at N records).
//!
//! ```sh
//! cargo bench --bench open                                   # 1,000,000 × 128
//! MEDVEC_BENCH_OPEN_DIM=512 MEDVEC_BENCH_OPEN_EFC=40 cargo bench --bench open
//! MEDVEC_BENCH_OPEN_DIM=512 MEDVEC_BENCH_OPEN_EFC=40 MEDVEC_BENCH_OPEN_QUANTIZE=sq8 cargo bench --bench open
//! ```
//!
//! Knobs: `MEDVEC_BENCH_OPEN_N` (1,000,000), `MEDVEC_BENCH_OPEN_DIM` (128),
//! `MEDVEC_BENCH_OPEN_EFC` (ef_construction, 200; a smaller one builds faster and leaves the
//! files the same size, which is what this bench measures), `MEDVEC_BENCH_OPEN_RUNS` (5),
//! `MEDVEC_BENCH_OPEN_QUANTIZE` (`sq8` creates the field with SQ8 codes), `MEDVEC_BENCH_OPEN_DIR`
//! (where the data and store live; reused when present, default `target/bench-open-N-DIM-EFC`,
//! with `-sq8` appended for a quantised store). To measure a store built elsewhere (the long
//! mode, `benches/long.sh`), put it (or a link to it) at `DIR/store`, with a collection `bench`,
//! and name its field and ids: `MEDVEC_BENCH_OPEN_FIELD` (`image`) and
//! `MEDVEC_BENCH_OPEN_ID_PREFIX` (`r`: ids `r0` to `r{N-1}`).

#[path = "common/mod.rs"]
mod common;

use common::{env_usize, median, workspace, SplitMix};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The arguments of one measured command, given a random stored id.
type ArgsFor<'a> = dyn Fn(&str) -> Vec<String> + 'a;

struct Cost {
    wall: f64,
    cpu: f64,
    max_rss_mib: f64,
    anon_mib: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("MEDVEC_BENCH_OPEN_N", 1_000_000);
    let dim = env_usize("MEDVEC_BENCH_OPEN_DIM", 128);
    let efc = env_usize("MEDVEC_BENCH_OPEN_EFC", 200);
    let runs = env_usize("MEDVEC_BENCH_OPEN_RUNS", 5).max(1);
    let coded = match std::env::var("MEDVEC_BENCH_OPEN_QUANTIZE").as_deref() {
        Ok("sq8") => ":sq8",
        Ok("") | Ok("none") | Err(_) => "",
        Ok(other) => panic!("MEDVEC_BENCH_OPEN_QUANTIZE={other:?}: expected none or sq8"),
    };
    let dir = std::env::var_os("MEDVEC_BENCH_OPEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let suffix = coded.replace(':', "-");
            workspace().join(format!("target/bench-open-{n}-{dim}-{efc}{suffix}"))
        });
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("store");
    let field = std::env::var("MEDVEC_BENCH_OPEN_FIELD").unwrap_or_else(|_| "image".into());
    let id_prefix = std::env::var("MEDVEC_BENCH_OPEN_ID_PREFIX").unwrap_or_else(|_| "r".into());
    if !store.join("collections/bench/MANIFEST").exists() {
        write_inputs(&dir, n, dim, &id_prefix);
        let _ = std::fs::remove_dir_all(&store);
        let dim_spec = format!("{field}:{dim}:cosine{coded}");
        let efc_arg = efc.to_string();
        let create = [
            "create",
            path(&store),
            "bench",
            "--vector",
            &dim_spec,
            "--ef-construction",
            &efc_arg,
        ];
        run(&create);
        let npy = format!("{field}={}", dir.join("base.npy").display());
        let table = dir.join("table.csv");
        let (cost, _) = run(&[
            "import",
            path(&store),
            "bench",
            "--npy",
            &npy,
            "--table",
            path(&table),
        ]);
        println!(
            "import of {n} x {dim} (ef_construction {efc}): {:.1} s wall, {:.1} CPU-s, peak RSS {:.0} MiB, of it anonymous (sampled) {:.0} MiB",
            cost.wall, cost.cpu, cost.max_rss_mib, cost.anon_mib
        );
    }
    println!("{}", run(&["stats", path(&store)]).1.trim());
    let mut rng = SplitMix(20261206);
    let one = dir.join("one.npy");
    write_npy(&one, 1, dim, &mut |_| {
        (0..dim).map(|d| (d as f32 * 0.1).sin()).collect()
    });
    let (store_path, one_path) = (store.clone(), one.clone());
    let (store, one) = (path(&store_path), path(&one_path));
    let search = [
        "search", store, "bench", "--field", &field, "-k", "10", "--json",
    ];
    let commands: [(&str, &ArgsFor); 3] = [
        ("get ID", &|id| {
            strings(&["get", store, "bench", id, "--no-vectors"])
        }),
        ("search --like ID -k 10", &|id| {
            strings(&[&search[..], &["--like", id]].concat())
        }),
        ("search --queries one.npy -k 10", &|_| {
            strings(&[&search[..], &["--queries", one]].concat())
        }),
    ];
    println!("\n| command (fresh process, page cache warm) | median wall | median CPU | median peak RSS | of it anonymous (sampled) |");
    println!("|---|---|---|---|---|");
    for (name, args) in commands {
        let mut next = || args(&format!("{id_prefix}{}", rng.next() % n as u64));
        measure(&next());
        let costs: Vec<Cost> = (0..runs).map(|_| measure(&next())).collect();
        let wall = median(costs.iter().map(|c| c.wall).collect());
        let cpu = median(costs.iter().map(|c| c.cpu).collect());
        let rss = median(costs.iter().map(|c| c.max_rss_mib).collect());
        let anon = median(costs.iter().map(|c| c.anon_mib).collect());
        println!(
            "| `{name}` | {:.1} ms | {:.1} ms | {rss:.0} MiB | {anon:.0} MiB |",
            wall * 1e3,
            cpu * 1e3
        );
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn medvec() -> PathBuf {
    workspace().join("target/release/medvec")
}

/// Runs medvec to completion, returning its cost and its standard output.
fn run(args: &[&str]) -> (Cost, String) {
    let out = std::env::temp_dir().join(format!("medvec-bench-open-{}.out", std::process::id()));
    let file = std::fs::File::create(&out).unwrap();
    let (cost, code) = spawn_measured(Command::new(medvec()).args(args).stdout(file));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    assert_eq!(code, Some(0), "medvec {args:?} failed");
    (cost, text)
}

fn measure(args: &[String]) -> Cost {
    let (cost, code) = spawn_measured(Command::new(medvec()).args(args).stdout(Stdio::null()));
    assert_eq!(code, Some(0), "medvec {args:?} failed");
    cost
}

/// Runs a child and returns its wall time, CPU time and peak RSS (from `wait4`), and the peak
/// of its anonymous (private) memory, sampled from `/proc/PID/status` while it runs: the page
/// cache pages a mapping shows (file-backed RSS) are shared and reclaimable, anonymous ones are
/// what the process costs.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which std's Child cannot see
fn spawn_measured(command: &mut Command) -> (Cost, Option<i32>) {
    let start = std::time::Instant::now();
    let child = command.spawn().expect("spawn medvec");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut anon_kib = 0u64;
    // SAFETY: `rusage` is plain old data that wait4 fills in; the pid is our own child, reaped
    // here exactly once (std's `Child` is never waited on).
    let usage = loop {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            anon_kib = anon_kib.max(status_kib(&text, "RssAnon:"));
        }
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4 failed");
        if reaped == pid {
            break usage;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cost = Cost {
        wall: start.elapsed().as_secs_f64(),
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        anon_mib: anon_kib as f64 / 1024.0,
    };
    (
        cost,
        libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
    )
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `base.npy` (n clustered unit vectors) and `table.csv` (ids `{id_prefix}0`.., `r0`.. by
/// default), streamed to disk.
fn write_inputs(dir: &Path, n: usize, dim: usize, id_prefix: &str) {
    let mut rng = SplitMix(7);
    let centres: Vec<Vec<f32>> = (0..100)
        .map(|_| (0..dim).map(|_| rng.unit() * 2.0 - 1.0).collect())
        .collect();
    write_npy(&dir.join("base.npy"), n, dim, &mut |_| {
        let centre = &centres[(rng.next() % 100) as usize];
        let v: Vec<f32> = centre
            .iter()
            .map(|c| c + (rng.unit() - 0.5) * 0.7)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    });
    let mut table = std::io::BufWriter::new(std::fs::File::create(dir.join("table.csv")).unwrap());
    writeln!(table, "id").unwrap();
    for row in 0..n {
        writeln!(table, "{id_prefix}{row}").unwrap();
    }
}

fn write_npy(path: &Path, rows: usize, dim: usize, row: &mut dyn FnMut(usize) -> Vec<f32>) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    out.write_all(b"\x93NUMPY\x01\x00").unwrap();
    out.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    out.write_all(header.as_bytes()).unwrap();
    for r in 0..rows {
        for x in row(r) {
            out.write_all(&x.to_le_bytes()).unwrap();
        }
    }
}
