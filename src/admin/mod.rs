//! walstream's admin operations on one live database (issues 6, 17): manual, pre-restore and
//! scheduled backups taken with SQLite's online backup API ([`backups`]), the safe live restore
//! that copies a verified database INTO the live one through the same API ([`live_restore`]),
//! names and ids ([`names`]), the one-operation-at-a-time lock ([`lock`]), tiered retention
//! with pins ([`retention`]), the times of scheduled backups ([`schedule`]), read-only
//! comparison ([`compare`]) and CSV export ([`export`]) of backups and the live database,
//! uploaded database files checked and kept as backups ([`upload`]) and the in-memory summary
//! of each backups folder for metrics and status ([`tally`]).
//!
//! What must stay true:
//! - a backup is never a file copy of the live database: it is SQLite's online backup of a
//!   consistent read snapshot, written to a temporary name, fsynced, then renamed;
//! - a live restore never replaces, truncates or renames the live database file: the
//!   application's open connections stay valid and see the restored content after their next
//!   transaction, and walstream replicates it like any other write;
//! - ids and names that reach the file system are validated first ([`names`]), so no request
//!   can name a path outside the backups folder.
//!
//! The HTTP layer is `server::admin_api`; the CLI is `walstream backup` (`cli::backup`).

pub mod backups;
pub mod compare;
pub mod drill;
pub mod export;
pub mod guard;
pub mod kind;
pub mod live_restore;
pub mod lock;
pub mod names;
pub mod page_copy;
pub mod retention;
pub mod schedule;
pub mod sources;
mod sqlite;
pub mod tally;
pub mod upload;

use std::path::{Path, PathBuf};

pub use backups::{BackupFilter, BackupKind, BackupRecord, BackupStore, CreatedBy, SourcePos};
pub use live_restore::{RestoreSource, restore_live};
pub use lock::{Busy, OpGuard, OpLock};

/// Why an admin operation failed. Each variant maps to one HTTP status in `server::admin_api`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A bad id, name, description or timestamp from the caller (HTTP 400).
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// No backup with this id in the folder (HTTP 404).
    #[error("backup {id:?} not found in {}", dir.display())]
    NotFound { id: String, dir: PathBuf },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} {}: {source}", path.display())]
    Sqlite {
        op: &'static str,
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("integrity check of {} failed: {detail}", path.display())]
    Integrity { path: PathBuf, detail: String },
    #[error("backup {id} is damaged: its sha256 is {actual}, the metadata records {expected}")]
    Checksum {
        id: String,
        expected: String,
        actual: String,
    },
    /// An uploaded file is larger than `max-upload-size` (HTTP 413).
    #[error("upload larger than max-upload-size ({limit} bytes); nothing was kept")]
    TooLarge { limit: u64 },
    /// A pinned backup cannot be deleted (HTTP 409).
    #[error("backup {id} is pinned; unpin it first to delete it")]
    Pinned { id: String },
    #[error("backup metadata {}: {reason}", path.display())]
    Metadata { path: PathBuf, reason: String },
    #[error("{} stayed locked by other connections for {seconds}s; nothing was changed", path.display())]
    LockTimeout { path: PathBuf, seconds: u64 },
    /// A live restore would change the schema and the caller did not say `force` (HTTP 409).
    #[error("{0}")]
    SchemaConflict(Box<guard::SchemaConflict>),
    /// The database has no replica to restore from.
    #[error("database {} has no replica", path.display())]
    NoReplica { path: PathBuf },
    #[error("restore from replica {replica}: {source}")]
    Restore {
        replica: String,
        source: crate::restore::RestoreError,
    },
}

impl AdminError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AdminError {
        let path = path.to_path_buf();
        move |source| AdminError::Io { op, path, source }
    }

    pub(crate) fn sqlite(
        op: &'static str,
        path: &Path,
    ) -> impl FnOnce(rusqlite::Error) -> AdminError {
        let path = path.to_path_buf();
        move |source| AdminError::Sqlite { op, path, source }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// Runs blocking admin work through [`crate::rt::spawn_blocking`].
pub async fn blocking<T, F>(f: F) -> Result<T, AdminError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AdminError> + Send + 'static,
{
    crate::rt::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(AdminError::Io {
            op: "blocking task",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })
    })
}
