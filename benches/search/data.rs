//! The search bench's data: deterministic clustered unit vectors, their exact top-10, and the
//! `.npy` files the peers read.

use super::*;

/// Bumped whenever the generator changes, so stale `.npy` files are regenerated.
pub(crate) const GENERATOR_VERSION: u32 = 1;
pub(crate) const SEED: u64 = 0x6d65_6476_6563_0001;
/// Within-cluster spread relative to the spread of the cluster centres.
pub(crate) const SPREAD: f32 = 1.0;

/// SplitMix64: tiny, deterministic across platforms and crate versions.
pub(crate) struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal pairs by Box-Muller.
    fn normals(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let (u, v) = (self.unit(), self.unit());
            let r = (-2.0 * u.ln()).sqrt();
            let t = std::f64::consts::TAU * v;
            pair[0] = (r * t.cos()) as f32;
            if pair.len() > 1 {
                pair[1] = (r * t.sin()) as f32;
            }
        }
    }
}

/// `count` unit vectors from `clusters` isotropic Gaussian clusters; row `i` belongs to cluster
/// `hash(i) % clusters`. Every row has its own stream, so rows can be generated in parallel.
pub(crate) fn clustered(count: usize, dim: usize, centres: &[f32], stream: u64) -> Vec<f32> {
    let clusters = centres.len() / dim;
    let mut out = vec![0f32; count * dim];
    let threads = 2;
    let per = count.div_ceil(threads);
    std::thread::scope(|scope| {
        for (t, chunk) in out.chunks_mut(per * dim).enumerate() {
            scope.spawn(move || {
                let mut noise = vec![0f32; dim];
                for (j, row) in chunk.chunks_exact_mut(dim).enumerate() {
                    let i = (t * per + j) as u64;
                    let mut rng = Rng(SEED ^ stream.wrapping_mul(0x1000_0000_01B3) ^ (i << 1));
                    rng.next_u64();
                    let c = (rng.next_u64() % clusters as u64) as usize;
                    rng.normals(&mut noise);
                    for ((x, &m), &z) in row.iter_mut().zip(&centres[c * dim..]).zip(&noise) {
                        *x = m + SPREAD * z;
                    }
                    normalise(row);
                }
            });
        }
    });
    out
}

pub(crate) struct Data {
    pub(crate) base: Vec<f32>,
    pub(crate) queries: Vec<f32>,
    pub(crate) truth: Vec<u32>,
}

pub(crate) fn npy_path(cfg: &Config, name: &str) -> PathBuf {
    cfg.data_dir.join(format!("{name}.npy"))
}

/// Loads the data set when the files match the configuration, else generates and writes it.
pub(crate) fn load_or_generate(cfg: &Config) -> Data {
    std::fs::create_dir_all(&cfg.data_dir).expect("create target/bench-data");
    let tag_path = cfg.data_dir.join("DATASET");
    let tag = std::fs::read_to_string(&tag_path).unwrap_or_default();
    if tag.trim() == cfg.tag() {
        let base = read_npy_f32(&npy_path(cfg, "base"));
        let queries = read_npy_f32(&npy_path(cfg, "queries"));
        let truth = read_npy_i32(&npy_path(cfg, "truth"));
        if let (Ok((base, [n, d])), Ok((queries, [q, _])), Ok((truth, [_, k]))) =
            (base, queries, truth)
        {
            if n == cfg.n && d == cfg.dim && q == cfg.queries && k == K {
                eprintln!(
                    "bench: reusing data set {} in {}",
                    cfg.tag(),
                    cfg.data_dir.display()
                );
                return Data {
                    base,
                    queries,
                    truth: truth.into_iter().map(|x| x as u32).collect(),
                };
            }
        }
    }
    let t = Instant::now();
    let _ = std::fs::remove_file(&tag_path);
    let mut centres = vec![0f32; cfg.clusters * cfg.dim];
    Rng(SEED).normals(&mut centres);
    let base = clustered(cfg.n, cfg.dim, &centres, 1);
    let queries = clustered(cfg.queries, cfg.dim, &centres, 2);
    let truth = brute_force(&base, &queries, cfg.dim);
    write_npy(
        &npy_path(cfg, "base"),
        "<f4",
        [cfg.n, cfg.dim],
        bytes_f32(&base),
    );
    write_npy(
        &npy_path(cfg, "queries"),
        "<f4",
        [cfg.queries, cfg.dim],
        bytes_f32(&queries),
    );
    let truth_bytes: Vec<u8> = truth
        .iter()
        .flat_map(|&x| (x as i32).to_le_bytes())
        .collect();
    write_npy(
        &npy_path(cfg, "truth"),
        "<i4",
        [cfg.queries, K],
        truth_bytes,
    );
    std::fs::write(&tag_path, format!("{}\n", cfg.tag())).expect("write DATASET");
    eprintln!(
        "bench: generated data set {} (with exact top-{K}) in {:.1} s",
        cfg.tag(),
        t.elapsed().as_secs_f64()
    );
    Data {
        base,
        queries,
        truth,
    }
}

/// Exact top-K by inner product of unit vectors (= cosine), on two threads. Each pass over the
/// base serves a block of queries, so at 10M rows the scan is bound by arithmetic, not by
/// reading 5 GB from memory once per query.
pub(crate) fn brute_force(base: &[f32], queries: &[f32], dim: usize) -> Vec<u32> {
    const BLOCK: usize = 16;
    let nq = queries.len() / dim;
    let mut truth = vec![0u32; nq * K];
    let per = nq.div_ceil(2).max(1);
    std::thread::scope(|scope| {
        for (t, out) in truth.chunks_mut(per * K).enumerate() {
            scope.spawn(move || {
                for (b, slots) in out.chunks_mut(BLOCK * K).enumerate() {
                    let first = t * per + b * BLOCK;
                    let block = &queries[first * dim..(first + slots.len() / K) * dim];
                    let mut best: Vec<Vec<(f32, u32)>> =
                        vec![Vec::with_capacity(K + 1); slots.len() / K];
                    for (row, x) in base.chunks_exact(dim).enumerate() {
                        for (q, top) in block.chunks_exact(dim).zip(best.iter_mut()) {
                            let s = medvec_store::distance::dot(q, x);
                            if top.len() < K || s > top[K - 1].0 {
                                let at = top.partition_point(|b| b.0 >= s);
                                top.insert(at, (s, row as u32));
                                top.truncate(K);
                            }
                        }
                    }
                    for (slot, top) in slots.chunks_exact_mut(K).zip(best) {
                        for (dst, (_, row)) in slot.iter_mut().zip(top) {
                            *dst = row;
                        }
                    }
                }
            });
        }
    });
    truth
}

pub(crate) fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn write_npy(path: &Path, descr: &str, shape: [usize; 2], body: Vec<u8>) {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}), }}",
        shape[0], shape[1]
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let tmp = path.with_extension("npy.tmp");
    let mut out = BufWriter::new(File::create(&tmp).expect("create npy"));
    out.write_all(b"\x93NUMPY\x01\x00").unwrap();
    out.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    out.write_all(header.as_bytes()).unwrap();
    out.write_all(&body).unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    std::fs::rename(&tmp, path).expect("rename npy");
}
