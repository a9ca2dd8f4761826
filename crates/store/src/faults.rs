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

/// Injected write failures, for the disk-full tests.
///
/// When a point is armed (by `MEDVEC_FAIL_AT=NAME[:N]` or [`fail_at`]), its N-th hit and every
/// later one return `ENOSPC`, the way a full disk keeps failing until space is freed;
/// [`clear_failures`] frees it. Unarmed, a check costs one relaxed atomic load.
pub mod failure {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Mutex;

    /// Write-path points where a failure can be injected.
    pub const POINTS: &[&str] = &[
        "wal-append",
        "wal-create",
        "segment-write",
        "graph-write",
        "manifest-write",
        "head-write",
    ];

    const UNKNOWN: u8 = 0;
    const OFF: u8 = 1;
    const ON: u8 = 2;
    static ARMED: AtomicU8 = AtomicU8::new(UNKNOWN);
    /// (point, fail from this hit on, hits so far).
    static TARGET: Mutex<Option<(String, u64, u64)>> = Mutex::new(None);

    fn target() -> std::sync::MutexGuard<'static, Option<(String, u64, u64)>> {
        TARGET.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn from_env() -> Option<(String, u64, u64)> {
        let spec = std::env::var("MEDVEC_FAIL_AT").ok()?;
        let (name, nth) = match spec.rsplit_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some((name, nth.max(1), 0))
    }

    /// Arms `point`: its `nth` hit (1-based) and all later ones fail with ENOSPC.
    pub fn fail_at(point: &str, nth: u64) {
        *target() = Some((point.to_string(), nth.max(1), 0));
        ARMED.store(ON, Ordering::SeqCst);
    }

    /// Disarms every point: "space has returned".
    pub fn clear_failures() {
        *target() = None;
        ARMED.store(OFF, Ordering::SeqCst);
    }

    /// `Err(ENOSPC)` if `point` is armed and due.
    pub fn check(point: &str) -> std::io::Result<()> {
        let mut state = ARMED.load(Ordering::Relaxed);
        if state == OFF {
            return Ok(());
        }
        let mut guard = target();
        if state == UNKNOWN {
            if guard.is_none() {
                *guard = from_env();
            }
            state = if guard.is_some() { ON } else { OFF };
            ARMED.store(state, Ordering::SeqCst);
        }
        match guard.as_mut() {
            Some((wanted, nth, hits)) if wanted == point => {
                *hits += 1;
                if *hits >= *nth {
                    return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
