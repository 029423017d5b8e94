//! Errors of the live-database module. Every variant names the file it is about, so a log line
//! alone tells which database (or shadow file) failed.
//!
//! What must stay true: callers branch on [`DbError::NotFound`] (wait and retry),
//! [`DbError::Replaced`] (re-attach: a new generation) and
//! [`DbError::NotADatabase`] (give up on this database only); everything else is a failed tick
//! that the next tick retries.

use std::path::{Path, PathBuf};

use crate::wal::WalError;

/// What went wrong with one live database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database file does not exist (yet); the caller waits and retries.
    #[error("{path}: database file does not exist")]
    NotFound { path: PathBuf },
    /// The file at the database path is no longer the one walstream attached (deleted and
    /// re-created, or replaced by a rename). walstream detached from the old file and forgot its
    /// generation, so the next attach starts a new one; nothing of the new file went into the
    /// old generation.
    #[error("{path}: database file was replaced")]
    Replaced { path: PathBuf },
    /// The file exists but SQLite refuses it.
    #[error("{path}: file is not a database")]
    NotADatabase { path: PathBuf },
    /// `PRAGMA journal_mode = wal` answered something else (e.g. an in-memory or locked mode).
    #[error("{path}: enable wal failed, mode={mode:?}")]
    WalModeRefused { path: PathBuf, mode: String },
    /// An operation that needs the attached database ran before `open` (or after `close`).
    #[error("{path}: database is not open")]
    NotOpen { path: PathBuf },
    /// A snapshot was requested before the first generation exists.
    #[error("{path}: no generation")]
    NoGeneration { path: PathBuf },
    /// A SQLite call failed.
    #[error("{path}: {op}: {source}")]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A file-system call failed.
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A WAL (real or shadow) header or frame could not be parsed.
    #[error("{path}: {source}")]
    Wal {
        path: PathBuf,
        #[source]
        source: WalError,
    },
    /// The shadow WAL's page size differs from the database's.
    #[error("{path}: wal page size {found} differs from database page size {expected}")]
    PageSizeMismatch {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    /// Frames validated in the first pass changed before they were copied (the real WAL was
    /// rewritten underneath us); nothing was appended.
    #[error("{path}: wal changed while copying frames at offset {offset}")]
    WalChanged { path: PathBuf, offset: u64 },
}

impl DbError {
    /// A closure turning an I/O error into [`DbError::Io`] for `path`.
    pub(crate) fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> DbError {
        let path = path.to_path_buf();
        move |source| DbError::Io { path, op, source }
    }

    /// A closure turning a SQLite error into [`DbError`] for `path`; "not a database" gets its
    /// own variant.
    pub(crate) fn sqlite(path: &Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError {
        let path = path.to_path_buf();
        move |source| {
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
                DbError::NotADatabase { path }
            } else {
                DbError::Sqlite { path, op, source }
            }
        }
    }

    /// A closure turning a WAL parse error into [`DbError::Wal`] for `path`.
    pub(crate) fn wal(path: &Path) -> impl FnOnce(WalError) -> DbError {
        let path = path.to_path_buf();
        move |source| DbError::Wal { path, source }
    }

    /// True when SQLite answered "busy" (another connection holds the lock).
    pub fn is_busy(&self) -> bool {
        matches!(self, DbError::Sqlite { source, .. }
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy))
    }
}
