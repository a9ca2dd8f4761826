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
];
