//! Fusion heads: early, late and kNN (in progress).
