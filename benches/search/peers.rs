//! The peers (hnswlib, faiss, usearch and their int8 variants), run by `tools/bench_peers.py`
//! on the same `.npy` files, and their results read back.

use super::*;

#[derive(Debug, Clone)]
pub(crate) struct PeerResult {
    pub(crate) name: String,
    pub(crate) build_s: f64,
    pub(crate) build_cpu_s: f64,
    pub(crate) build_runs_s: Vec<f64>,
    pub(crate) sweep: Vec<SweepPoint>,
    pub(crate) first_query_ms: f64,
    pub(crate) vm_hwm_kib: f64,
    pub(crate) baseline_kib: f64,
    pub(crate) rss_anon_kib: f64,
    pub(crate) rss_file_kib: f64,
    pub(crate) index_bytes: u64,
}

pub(crate) fn run_peers(cfg: &Config) -> Vec<PeerResult> {
    if let Some(earlier) = std::env::var_os("MEDVEC_BENCH_PEERS_FROM") {
        eprintln!("bench: peers' results read from {earlier:?} (an earlier run on the same data)");
        return read_peers(Path::new(&earlier));
    }
    let out_path = cfg.data_dir.join(format!("peers{}.json", cfg.suffix()));
    let _ = std::fs::remove_file(&out_path);
    let efs: Vec<String> = cfg.efs.iter().map(|e| e.to_string()).collect();
    let mut cmd = Command::new(python());
    cmd.arg(workspace().join("tools/bench_peers.py"))
        .arg("--data")
        .arg(&cfg.data_dir)
        .arg("--efs")
        .arg(efs.join(","))
        .arg("--repeats")
        .arg(cfg.repeats.to_string())
        .arg("--threads")
        .arg("2")
        .arg("--peers")
        .arg(cfg.peers.join(","))
        .arg("--out")
        .arg(&out_path);
    eprintln!("bench: running {cmd:?}");
    let status = cmd
        .status()
        .expect("run tools/bench_peers.py (set MEDVEC_PYTHON)");
    assert!(status.success(), "tools/bench_peers.py failed");
    read_peers(&out_path)
}

pub(crate) fn read_peers(out_path: &Path) -> Vec<PeerResult> {
    let text = std::fs::read_to_string(out_path).expect("peers.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("peers.json");
    let f = |v: &serde_json::Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    json.as_array()
        .expect("peers.json is a list")
        .iter()
        .map(|p| PeerResult {
            name: p["name"].as_str().unwrap_or("?").to_string(),
            build_s: f(p, "build_s"),
            build_cpu_s: f(p, "build_cpu_s"),
            build_runs_s: p["build_runs_s"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default(),
            sweep: p["sweep"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| SweepPoint {
                            ef: x["ef"].as_u64().unwrap_or(0) as usize,
                            recall: f(x, "recall"),
                            recall_min: f(x, "recall_min"),
                            recall_max: f(x, "recall_max"),
                            qps: f(x, "qps"),
                            qps_cpu: f(x, "qps_cpu"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            first_query_ms: f(p, "first_query_ms"),
            vm_hwm_kib: f(p, "vm_hwm_kib"),
            baseline_kib: f(p, "baseline_kib"),
            rss_anon_kib: f(p, "rss_anon_kib"),
            rss_file_kib: f(p, "rss_file_kib"),
            index_bytes: p["index_bytes"].as_u64().unwrap_or(0),
        })
        .collect()
}
