//! The restore error type. Every variant that comes from replica data names the object key and,
//! for WAL problems, the byte offset inside the uncompressed WAL of that index, so an operator
//! can find the bad object.
//!
//! What must stay true: messages that Litestream v0.3.13 also prints keep its exact wording
//! (spec §5.4), because scripts match on them.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::plan::PlanError;

/// A boxed lower-level error (storage client, LZ4 decoder, WAL parser).
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("no matching backups found")]
    NoMatchingBackups,
    #[error("cannot restore, output path already exists: {}", .0.display())]
    OutputExists(PathBuf),
    #[error("cannot specify index & timestamp to restore")]
    IndexAndTimestamp,
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("list replica {replica}: {source}")]
    List { replica: String, source: Source },
    #[error("read {key}: {source}")]
    Read { key: String, source: Source },
    #[error("decompress {key}: {source}")]
    Decompress { key: String, source: Source },
    #[error(
        "wal segment gap: {key} starts at wal offset {got} but the previous segments end at {expected}"
    )]
    Gap {
        key: String,
        expected: u64,
        got: u64,
    },
    #[error("invalid wal header in {key}: {source}")]
    WalHeader { key: String, source: Source },
    #[error("wal frame salt mismatch in {key} at wal offset {offset}")]
    FrameSalt { key: String, offset: u64 },
    #[error("wal frame checksum mismatch in {key} at wal offset {offset}")]
    FrameChecksum { key: String, offset: u64 },
    #[error("wal frame with page number 0 in {key} at wal offset {offset}")]
    FramePageZero { key: String, offset: u64 },
    #[error("wal index {generation}/{index:08x} ends inside a frame: {key} at wal offset {offset}")]
    TruncatedFrame {
        generation: String,
        index: u32,
        key: String,
        offset: u64,
    },
    #[error(
        "wal index {generation}/{index:08x} does not end on a commit frame: last frame in {key} at wal offset {offset}"
    )]
    NotCommitted {
        generation: String,
        index: u32,
        key: String,
        offset: u64,
    },
    #[error("page size mismatch: {key} has page size {wal}, the database has {db}")]
    PageSize { key: String, wal: u32, db: u32 },
    #[error("snapshot {key} is not an SQLite database")]
    SnapshotNotSqlite { key: String },
    #[error(
        "snapshot {key} is truncated: {len} bytes, but its header says {pages} pages of {page_size} bytes"
    )]
    SnapshotTruncated {
        key: String,
        len: u64,
        pages: u32,
        page_size: u32,
    },
    #[error("integrity check of {} failed: {detail}", path.display())]
    Integrity { path: PathBuf, detail: String },
    /// The latest point is damaged; `good` is the newest earlier point that restored intact.
    #[error("{source}; {}", match good {
        Some(g) => g.to_string(),
        None => format!("no earlier point of the replica restored intact either (tried at most {})", MAX_TRIES),
    })]
    LatestDamaged {
        source: Box<RestoreError>,
        good: Option<GoodPoint>,
    },
    #[error("sqlite {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("restore task failed: {0}")]
    Task(String),
    /// A Litestream v0.5 (LTX) file that cannot be decoded (names the object).
    #[error(transparent)]
    Ltx(#[from] crate::ltx::LtxError),
    /// No usable LTX restore plan (v0.5.17's wording where it has one).
    #[error(transparent)]
    LtxPlan(#[from] super::ltx_plan::LtxPlanError),
    #[error("ltx file {key}: {detail}")]
    LtxFile { key: String, detail: String },
    #[error(
        "page {pgno} of the restored database (commit {commit} pages) is in none of the planned ltx files (base {base})"
    )]
    LtxMissingPage {
        pgno: u32,
        commit: u32,
        base: String,
    },
}

impl RestoreError {
    /// Helper for I/O errors with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RestoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Restores tried at most while looking for an intact point (`fallback`).
pub const MAX_TRIES: usize = 6;

/// An earlier point that restored intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodPoint {
    pub replica: String,
    pub at: GoodAt,
    /// The newest object time of that point (its last segment or file, or its snapshot).
    pub time: DateTime<Utc>,
}

/// Where a [`GoodPoint`] is: a v0.3 generation's index, or an LTX replica's TXID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoodAt {
    Index { generation: String, index: u32 },
    Txid(u64),
}

impl std::fmt::Display for GoodPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match &self.at {
            GoodAt::Index { generation, index } => write!(
                f,
                "the newest point that restores intact is replica {} generation {generation} \
                 index {index:08x} (written up to {time}): restore it with -generation \
                 {generation} -index {index:x}",
                self.replica
            ),
            GoodAt::Txid(txid) => write!(
                f,
                "the newest point that restores intact is replica {} TXID {txid:016x} \
                 (written up to {time}): restore it with -txid {txid:016x}",
                self.replica
            ),
        }
    }
}
