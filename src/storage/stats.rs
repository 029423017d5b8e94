//! Counters of one replica client's storage traffic, read by the metrics layer to publish
//! Litestream's `litestream_replica_operation_total` / `_bytes` (spec §8) and our own retry and
//! error counters.
//!
//! Invariants: counters only grow; an operation is counted once when it succeeds (like Litestream,
//! which counts after the SDK call returns), bytes are the stored (compressed) bytes moved, every
//! retry and every returned error is counted exactly once.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Op, StorageError};

/// Coarse class of a returned error, for the error counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    NotFound,
    Permanent,
    Transient,
    /// Configuration, local I/O and invalid names.
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 4] = [
        ErrorClass::NotFound,
        ErrorClass::Permanent,
        ErrorClass::Transient,
        ErrorClass::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::NotFound => "not_found",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Transient => "transient",
            ErrorClass::Other => "other",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// Atomic counters; shared by all clones of a `ReplicaClient`.
#[derive(Debug, Default)]
pub struct StorageStats {
    operations: [AtomicU64; 4],
    bytes: [AtomicU64; 4],
    retries: AtomicU64,
    errors: [AtomicU64; 4],
}

impl StorageStats {
    /// Successful operations of kind `op`.
    pub fn operations(&self, op: Op) -> u64 {
        self.operations[op.slot()].load(Ordering::Relaxed)
    }

    /// Bytes moved by `op` (non-zero only for GET and PUT).
    pub fn bytes(&self, op: Op) -> u64 {
        self.bytes[op.slot()].load(Ordering::Relaxed)
    }

    /// Retries performed (attempts after the first).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Errors returned to callers, by class.
    pub fn errors(&self, class: ErrorClass) -> u64 {
        self.errors[class.slot()].load(Ordering::Relaxed)
    }

    pub(crate) fn record_op(&self, op: Op) {
        self.operations[op.slot()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_bytes(&self, op: Op, n: u64) {
        self.bytes[op.slot()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `err` and hands it back, so call sites can write `Err(stats.record_error(e))`.
    pub(crate) fn record_error(&self, err: StorageError) -> StorageError {
        self.errors[err.class().slot()].fetch_add(1, Ordering::Relaxed);
        err
    }
}
