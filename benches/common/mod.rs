//! Helpers every benchmark uses: environment knobs, paths, the Python of the peers, medians and
//! CPU time. Included by each bench with `#[path = "common/mod.rs"] mod common;`.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// `name` from the environment as a number, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The repository root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with the peers installed: `MEDVEC_PYTHON`, else the project's `.venv`.
pub fn python() -> PathBuf {
    std::env::var_os("MEDVEC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// The median (NaN for no values).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// CPU time of this process so far, all threads (user + system).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// What every ONNX bench does first: return `false` when cargo only lists bench targets
/// (`cargo bench -- --list`), and refuse to run without ONNX Runtime.
pub fn ready_for_onnx() -> bool {
    if std::env::args().any(|a| a == "--list") {
        return false;
    }
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "ORT_DYLIB_PATH is not set: run `. tools/.cache/env.sh` (after `bash tools/setup.sh`)"
    );
    true
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// SplitMix64: a tiny generator whose stream never changes with crate versions, so generated
/// bench data is the same on every run.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Reads a 2-d little-endian 4-byte `.npy` file (as the search bench writes them, `benches/search/data.rs`).
pub fn read_npy_raw(path: &Path, descr: &str) -> Result<(Vec<u8>, [usize; 2]), String> {
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| e.to_string())?);
    let mut head = [0u8; 10];
    file.read_exact(&mut head).map_err(|e| e.to_string())?;
    if &head[..6] != b"\x93NUMPY" || head[6] != 1 {
        return Err("not an npy 1.0 file".into());
    }
    let len = u16::from_le_bytes([head[8], head[9]]) as usize;
    let mut header = vec![0u8; len];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let header = String::from_utf8_lossy(&header);
    if !header.contains(&format!("'descr': '{descr}'")) || header.contains("'fortran_order': True")
    {
        return Err(format!("unexpected header {header}"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let [rows, cols] = dims[..] else {
        return Err("not 2-d".into());
    };
    let mut body = Vec::with_capacity(rows * cols * 4);
    file.read_to_end(&mut body).map_err(|e| e.to_string())?;
    if body.len() != rows * cols * 4 {
        return Err("truncated".into());
    }
    Ok((body, [rows, cols]))
}

pub fn read_npy_f32(path: &Path) -> Result<(Vec<f32>, [usize; 2]), String> {
    read_npy_words(path, "<f4", f32::from_le_bytes)
}

pub fn read_npy_i32(path: &Path) -> Result<(Vec<i32>, [usize; 2]), String> {
    read_npy_words(path, "<i4", i32::from_le_bytes)
}

/// A 2-d `.npy` file of 4-byte little-endian `descr` values, decoded by `decode`.
fn read_npy_words<T>(
    path: &Path,
    descr: &str,
    decode: fn([u8; 4]) -> T,
) -> Result<(Vec<T>, [usize; 2]), String> {
    let (body, shape) = read_npy_raw(path, descr)?;
    let values = body
        .chunks_exact(4)
        .map(|c| decode(c.try_into().expect("4 bytes")))
        .collect();
    Ok((values, shape))
}
