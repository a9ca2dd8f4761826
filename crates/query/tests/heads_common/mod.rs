//! Shared helpers of the heads integration tests: synthetic data, .npy writing and the
//! Python reference runner.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A standard normal draw (Box–Muller), so the data depend only on the ChaCha8 stream.
pub fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Synthetic paired data: each class has a random mean per modality (spread `sep`) and
/// unit Gaussian noise around it; rows are in a random order.
pub struct Synthetic {
    pub text: Array2<f32>,
    pub image: Array2<f32>,
    pub labels: Vec<usize>,
}

pub fn clusters(per_class: &[usize], dims: (usize, usize), sep: f32, seed: u64) -> Synthetic {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let classes = per_class.len();
    let t_means = Array2::from_shape_simple_fn((classes, dims.0), || sep * normal(&mut rng));
    let i_means = Array2::from_shape_simple_fn((classes, dims.1), || sep * normal(&mut rng));
    let mut labels: Vec<usize> = per_class
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(c, n))
        .collect();
    for i in (1..labels.len()).rev() {
        let j = rng.random_range(0..=i);
        labels.swap(i, j);
    }
    let n = labels.len();
    let text = Array2::from_shape_fn((n, dims.0), |(r, j)| {
        t_means[[labels[r], j]] + normal(&mut rng)
    });
    let image = Array2::from_shape_fn((n, dims.1), |(r, j)| {
        i_means[[labels[r], j]] + normal(&mut rng)
    });
    Synthetic {
        text,
        image,
        labels,
    }
}

fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&((dict.len() + pad + 1) as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header.extend(std::iter::repeat_n(b' ', pad));
    header.push(b'\n');
    header
}

/// Writes a C-order little-endian float32 .npy file.
pub fn write_npy_f32(path: &Path, a: &Array2<f32>) {
    let mut bytes = npy_header("<f4", &format!("({}, {})", a.nrows(), a.ncols()));
    for v in a.iter() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .expect("write npy");
}

/// Writes a little-endian int64 vector .npy file.
pub fn write_npy_usize(path: &Path, v: &[usize]) {
    let mut bytes = npy_header("<i8", &format!("({},)", v.len()));
    for &x in v {
        bytes.extend_from_slice(&(x as i64).to_le_bytes());
    }
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .expect("write npy");
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with numpy and scikit-learn: $MEDVEC_PYTHON, else <workspace>/.venv/bin/python.
pub fn python() -> PathBuf {
    let candidate = std::env::var_os("MEDVEC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        candidate.exists(),
        "reference Python {} not found: run `bash tools/setup.sh` (creates .venv with numpy and scikit-learn) \
         or set MEDVEC_PYTHON",
        candidate.display()
    );
    candidate
}

/// Runs `tools/reference_heads.py <command> <dir>` and parses its JSON output.
pub fn reference(command: &str, dir: &Path) -> serde_json::Value {
    let script = workspace_root().join("tools/reference_heads.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(command)
        .arg(dir)
        .output()
        .expect("run reference_heads.py");
    assert!(
        out.status.success(),
        "reference_heads.py {command} failed (run `bash tools/setup.sh`?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}
