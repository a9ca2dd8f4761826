//! The markdown report of a search bench run: one row per system, ratios against the peers.

use super::*;

pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) build_s: f64,
    pub(crate) build_cpu_s: f64,
    pub(crate) at_target: Option<SweepPoint>,
    pub(crate) first_query_ms: f64,
    pub(crate) vm_hwm_mib: f64,
    pub(crate) delta_mib: f64,
    /// RssAnon and RssFile at the end of the search.
    pub(crate) rss_anon_mib: f64,
    pub(crate) rss_file_mib: f64,
    pub(crate) sweep: Vec<SweepPoint>,
}

pub(crate) fn fmt_ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "n/a".into()
    }
}

pub(crate) fn fmt_or_na(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "n/a".into()
    }
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A report row of one measured figure: label, the figure of a system, decimals shown.
type MeasuredRow = (&'static str, fn(&Row) -> f64, usize);

pub(crate) fn report(cfg: &Config, rows: &[Row], load_start: &str) -> String {
    let mut s = String::new();
    let tgt = |r: &Row| {
        r.at_target
            .as_ref()
            .map(|p| (p.ef, p.recall, p.qps, p.qps_cpu))
    };
    let quantized = match cfg.quantization {
        Quantization::None => String::new(),
        q => format!(", medvec field quantization {}", q.name()),
    };
    s += &format!(
        "\n### {} × {}-d cosine, {} queries, k={K}, M=16, ef_construction=200, 2 threads{quantized}\n\n",
        cfg.n, cfg.dim, cfg.queries
    );
    s += &format!(
        "{} CPUs; load average (1/5/15 min) at start {load_start}, at end {}. \
         Medians: builds of {} runs, QPS of >= 5 batch runs, open-to-first-query of 7 processes, \
         RSS of 3 processes.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        cfg.repeats
    );
    s += "| metric | ";
    s += &rows
        .iter()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    let m = &rows[0];
    let peer = |name: &str| rows.iter().find(|r| r.name == name);
    // A ratio column for every f32 peer (n/a when it did not run), and for each int8 peer that ran.
    let ratio_peers: Vec<&str> = PEERS
        .iter()
        .enumerate()
        .filter(|&(i, p)| i < F32_PEERS || peer(p).is_some())
        .map(|(_, &p)| p)
        .collect();
    for p in &ratio_peers {
        s += &format!(" | {} / {p}", m.name);
    }
    s += " |\n|---|";
    s += &"---:|".repeat(rows.len() + ratio_peers.len());
    s += "\n";
    let mut line = |label: &str, f: &dyn Fn(&Row) -> String, v: &dyn Fn(&Row) -> f64| {
        s += &format!("| {label} | ");
        s += &rows.iter().map(f).collect::<Vec<_>>().join(" | ");
        for &p in &ratio_peers {
            s += " | ";
            s += &peer(p).map_or("n/a".into(), |p| fmt_ratio(v(m), v(p)));
        }
        s += " |\n";
    };
    line(
        "build time (s, median)",
        &|r| format!("{:.1}", r.build_s),
        &|r| r.build_s,
    );
    line(
        "build CPU time (CPU-s, median)",
        &|r| format!("{:.1}", r.build_cpu_s),
        &|r| r.build_cpu_s,
    );
    line(
        &format!("smallest ef with recall@{K} ≥ {TARGET_RECALL}"),
        &|r| tgt(r).map_or("not reached".into(), |t| format!("{} ({:.3})", t.0, t.1)),
        &|r| tgt(r).map_or(f64::NAN, |t| t.0 as f64),
    );
    line(
        "QPS at that ef",
        &|r| tgt(r).map_or("n/a".into(), |t| format!("{:.0}", t.2)),
        &|r| tgt(r).map_or(f64::NAN, |t| t.2),
    );
    line(
        "queries per CPU-second at that ef",
        &|r| tgt(r).map_or("n/a".into(), |t| format!("{:.0}", t.3)),
        &|r| tgt(r).map_or(f64::NAN, |t| t.3),
    );
    let measured: [MeasuredRow; 5] = [
        ("open-to-first-query (ms, median)", |r| r.first_query_ms, 1),
        ("peak RSS during search (MiB, VmHWM)", |r| r.vm_hwm_mib, 0),
        ("  of which index + search (MiB)", |r| r.delta_mib, 0),
        (
            "RssAnon at the end of the search (MiB)",
            |r| r.rss_anon_mib,
            0,
        ),
        (
            "RssFile at the end of the search (MiB)",
            |r| r.rss_file_mib,
            0,
        ),
    ];
    for (label, value, digits) in measured {
        line(label, &|r| fmt_or_na(value(r), digits), &value);
    }
    s += &format!(
        "\n#### ef sweep: recall@{K} (median over the builds, range when they differ); QPS = wall-clock \
         queries/s, q/CPU-s = queries per CPU-second (median over builds of the median of ≥5 batch \
         runs of all queries)\n\n| ef | "
    );
    s += &rows
        .iter()
        .map(|r| format!("{} recall | {} QPS (q/CPU-s)", r.name, r.name))
        .collect::<Vec<_>>()
        .join(" | ");
    for p in &ratio_peers {
        s += &format!(" | QPS (q/CPU-s) {} / {p}", m.name);
    }
    s += " |\n|---:|";
    s += &"---:|".repeat(rows.len() * 2 + ratio_peers.len());
    s += "\n";
    for &ef in &cfg.efs {
        let point = |r: &Row| r.sweep.iter().find(|p| p.ef == ef).cloned();
        s += &format!("| {ef} | ");
        s += &rows
            .iter()
            .map(|r| {
                point(r).map_or("n/a | n/a".into(), |p| {
                    if p.recall_max - p.recall_min >= 0.00005 {
                        format!(
                            "{:.4} ({:.3}–{:.3}) | {:.0} ({:.0})",
                            p.recall, p.recall_min, p.recall_max, p.qps, p.qps_cpu
                        )
                    } else {
                        format!("{:.4} | {:.0} ({:.0})", p.recall, p.qps, p.qps_cpu)
                    }
                })
            })
            .collect::<Vec<_>>()
            .join(" | ");
        for &p in &ratio_peers {
            s += " | ";
            s += &peer(p)
                .and_then(|p| {
                    let (a, b) = (point(m)?, point(p)?);
                    Some(format!(
                        "{} ({})",
                        fmt_ratio(a.qps, b.qps),
                        fmt_ratio(a.qps_cpu, b.qps_cpu)
                    ))
                })
                .unwrap_or_else(|| "n/a".into());
        }
        s += " |\n";
    }
    s += "\nTargets (throughput and build are judged per CPU-second, which other jobs on the \
          machine disturb far less than wall-clock time; both are shown):\n";
    if let Some(h) = peer("hnswlib") {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let (wall, cpu, qps_ok) = match (tgt(m), tgt(h)) {
            (Some(a), Some(b)) => (fmt_ratio(a.2, b.2), fmt_ratio(a.3, b.3), a.3 >= b.3),
            _ => ("n/a".into(), "n/a".into(), false),
        };
        s += &format!(
            "- QPS ≥ 1.0× hnswlib at recall@{K} ≥ {TARGET_RECALL}: {} ({cpu} per CPU-second, \
             {wall} wall-clock)\n",
            verdict(qps_ok),
        );
        s += &format!(
            "- build ≤ 1.2× hnswlib: {} ({} CPU time, {} wall-clock)\n",
            verdict(m.build_cpu_s <= 1.2 * h.build_cpu_s),
            fmt_ratio(m.build_cpu_s, h.build_cpu_s),
            fmt_ratio(m.build_s, h.build_s)
        );
        s += &format!(
            "- peak RSS during search ≤ hnswlib: {} ({})\n",
            verdict(m.vm_hwm_mib <= h.vm_hwm_mib),
            fmt_ratio(m.vm_hwm_mib, h.vm_hwm_mib)
        );
        s += &format!(
            "- open-to-first-query < 50 ms: {} ({:.1} ms)\n",
            verdict(m.first_query_ms < 50.0),
            m.first_query_ms
        );
    }
    s
}
