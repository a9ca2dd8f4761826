//! Keeps payload values out of logs and error messages.
//!
//! Payload can identify a patient (a name, a date of birth, a free-text note), and error messages
//! end up in terminals, CI logs and bug reports. Messages therefore show a value only through
//! [`Redacted`], which prints a placeholder unless the process opted in with [`set_verbose`]
//! (the CLI's `--verbose`). Record ids are not redacted: they are how a user finds the record.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// What a hidden value prints as.
pub const PLACEHOLDER: &str = "<hidden>";

/// Lets messages show payload values (off by default).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn is_verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Displays the wrapped value only in verbose mode, [`PLACEHOLDER`] otherwise.
pub struct Redacted<T>(pub T);

impl<T: fmt::Display> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_verbose() {
            self.0.fmt(f)
        } else {
            f.write_str(PLACEHOLDER)
        }
    }
}
