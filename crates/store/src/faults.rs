//! Fault-injection points for the crash tests.
//!
//! The write path calls [`point`] just before and after every fsync and rename. When the
//! environment variable `MEDVEC_CRASH_AT` names a point (optionally `NAME:N` for its N-th hit),
//! the process aborts there, exactly as a `kill -9` or power cut would stop it. Without the
//! variable a point costs one relaxed atomic load.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;

static ARMED: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;
static HITS: AtomicU64 = AtomicU64::new(0);
static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let spec = std::env::var("MEDVEC_CRASH_AT").ok()?;
        let (name, nth) = match spec.rsplit_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some((name, nth.max(1)))
    })
}

/// Aborts the process here if `MEDVEC_CRASH_AT` asks for it.
pub fn point(name: &str) {
    let state = ARMED.load(Ordering::Relaxed);
    if state == OFF {
        return;
    }
    if state == UNKNOWN {
        let armed = if target().is_some() { ON } else { OFF };
        ARMED.store(armed, Ordering::Relaxed);
        if armed == OFF {
            return;
        }
    }
    if let Some((wanted, nth)) = target() {
        if wanted == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            std::process::abort();
        }
    }
}

/// The names of all fault points, for the crash harness.
pub const POINTS: &[&str] = &[
    "wal-before-fsync",
    "wal-after-fsync",
    "segment-after-write",
    "before-rename",
    "after-rename",
    "flush-after-manifest",
    "compact-after-manifest",
    "merge-after-manifest",
];

/// Injected write failures, for the disk-full tests.
///
/// When a point is armed (by `MEDVEC_FAIL_AT=NAME[:N][,NAME[:N]...]` or [`fail_at`]), its N-th
/// hit and every later one return `ENOSPC`, the way a full disk keeps failing until space is
/// freed; [`clear_failures`] frees it. Unarmed, a check costs one relaxed atomic load.
pub mod failure {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Mutex;

    /// Write-path points where a failure can be injected.
    pub const POINTS: &[&str] = &[
        "wal-append",
        "wal-truncate",
        "wal-create",
        "segment-write",
        "graph-write",
        "manifest-write",
        "head-write",
        "model-record-write",
    ];

    const UNKNOWN: u8 = 0;
    const OFF: u8 = 1;
    const ON: u8 = 2;
    static ARMED: AtomicU8 = AtomicU8::new(UNKNOWN);
    /// Armed points: (name, fail from this hit on, hits so far).
    static TARGETS: Mutex<Vec<(String, u64, u64)>> = Mutex::new(Vec::new());

    fn targets() -> std::sync::MutexGuard<'static, Vec<(String, u64, u64)>> {
        TARGETS.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn from_env() -> Vec<(String, u64, u64)> {
        let spec = std::env::var("MEDVEC_FAIL_AT").unwrap_or_default();
        spec.split(',')
            .filter(|s| !s.is_empty())
            .map(|one| match one.rsplit_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1).max(1), 0),
                None => (one.to_string(), 1, 0),
            })
            .collect()
    }

    /// Arms `point` (besides any already armed): its `nth` hit (1-based) and all later ones
    /// fail with ENOSPC.
    pub fn fail_at(point: &str, nth: u64) {
        let mut list = targets();
        if ARMED.load(Ordering::SeqCst) == UNKNOWN {
            *list = from_env();
        }
        list.retain(|(name, _, _)| name != point);
        list.push((point.to_string(), nth.max(1), 0));
        ARMED.store(ON, Ordering::SeqCst);
    }

    /// Disarms every point: "space has returned".
    pub fn clear_failures() {
        targets().clear();
        ARMED.store(OFF, Ordering::SeqCst);
    }

    /// `Err(ENOSPC)` if `point` is armed and due.
    pub fn check(point: &str) -> std::io::Result<()> {
        if ARMED.load(Ordering::Relaxed) == OFF {
            return Ok(());
        }
        let mut list = targets();
        if ARMED.load(Ordering::SeqCst) == UNKNOWN {
            *list = from_env();
            let state = if list.is_empty() { OFF } else { ON };
            ARMED.store(state, Ordering::SeqCst);
        }
        for (_, nth, hits) in list.iter_mut().filter(|(name, _, _)| name == point) {
            *hits += 1;
            if *hits >= *nth {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        Ok(())
    }
}
