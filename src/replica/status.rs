//! Per-replica status published on a `watch` channel (read by the HTTP server and tests).
//!
//! What must stay true: the status is only ever replaced as a whole (readers see a consistent
//! value); `position` is the last position durably uploaded (never ahead of storage);
//! `pending_since` is set while local commits exist that are not yet uploaded.

use std::time::SystemTime;

use crate::db::Pos;

/// The newest snapshot this replica knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMark {
    pub generation: String,
    pub index: u32,
    pub at: SystemTime,
}

/// A status snapshot of one replica.
#[derive(Debug, Clone, Default)]
pub struct ReplicaStatus {
    pub name: String,
    /// Replica type (`file`, `s3`, `gcs`, `abs`).
    pub kind: &'static str,
    /// Last position known to be in storage (an LTX replica: the shadow position its newest
    /// TXID covers).
    pub position: Option<Pos>,
    /// LTX replicas: the highest TXID stored (`None` for v0.3 replicas and before the first
    /// round); `/api/v1/status` shows it as `txid`, `/metrics` as `litestream_txid`.
    pub ltx_txid: Option<u64>,
    /// When the last upload round succeeded.
    pub last_sync: Option<SystemTime>,
    /// When the oldest local change not yet uploaded was first seen (`None`: caught up).
    pub pending_since: Option<SystemTime>,
    /// Last error text and when it happened (kept after recovery, for diagnosis).
    pub last_error: Option<(SystemTime, String)>,
    /// Failed rounds since start.
    pub error_count: u64,
    /// Consecutive failed rounds (0 when healthy).
    pub failure_streak: u32,
    pub latest_snapshot: Option<SnapshotMark>,
    /// Uncompressed WAL bytes uploaded since start.
    pub wal_bytes: u64,
    /// The last validation (`validation-interval`), `None` before the first one.
    pub validation: Option<ValidationResult>,
    /// Validations that matched, and those that did not (mismatch or error), since start.
    pub validations_ok: u64,
    pub validations_failed: u64,
    /// Successful retention delete calls (a generation, a batch of snapshots or of segments)
    /// since start: tells readers of the storage listing that objects went away.
    pub retention_deletions: u64,
    /// LTX replicas with `verify-compaction`: compactions after which the level's files did not
    /// follow each other (Litestream v0.5's `litestream_compaction_verify_error_count`).
    pub compaction_verify_errors: u64,
    /// Set while another database owns the replica path (the refusal message of
    /// [`super::owner`]); this replica writes nothing meanwhile.
    pub owner_conflict: Option<String>,
    /// Set while the database fails `PRAGMA quick_check` before a snapshot (the finding):
    /// snapshots are refused, so the replica's latest restore point stays the last good one.
    /// Cleared by the next check that passes.
    pub source_damaged: Option<String>,
}

/// How a validation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationOutcome {
    /// The restored replica has the database file's checksum.
    Ok,
    /// The restore succeeded but the checksums differ.
    Mismatch,
    /// The validation could not complete (checkpoint, wait, restore or read failed).
    Error,
}

impl ValidationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationOutcome::Ok => "ok",
            ValidationOutcome::Mismatch => "mismatch",
            ValidationOutcome::Error => "error",
        }
    }
}

/// The result of one validation (spec §4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationResult {
    pub at: SystemTime,
    pub outcome: ValidationOutcome,
    /// Error text (`Error`) or a description of the mismatch.
    pub message: Option<String>,
    /// Position `P` validated against (`None` when the checkpoint failed).
    pub position: Option<Pos>,
    /// LTX replicas: the TXID restored, which holds exactly `P` (`None` for v0.3 replicas and
    /// when no TXID was fixed).
    pub txid: Option<u64>,
    /// CRC-64/ISO of the database file and of the restored replica, when computed.
    pub db_checksum: Option<u64>,
    pub replica_checksum: Option<u64>,
}
