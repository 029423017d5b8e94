//! Verification of the restored database before it is moved into place:
//! `PRAGMA integrity_check` (default), `PRAGMA quick_check`, or nothing.
//!
//! What must stay true: verification only reads. It runs on the temporary file, whose WAL is
//! empty, so SQLite's open and close write no page of the database (the bytes stay identical to
//! Litestream's restore); the `-wal`/`-shm` files SQLite creates are removed by the caller.
//! Pages are read through [`verify_vfs`] (memory-mapped reads with bounded resident memory).

use std::path::Path;
use std::str::FromStr;

use rusqlite::{Connection, OpenFlags};

use super::error::RestoreError;
use super::verify_vfs;

/// How thoroughly to check the restored database (`-integrity-check`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IntegrityCheck {
    /// `PRAGMA integrity_check`.
    #[default]
    Full,
    /// `PRAGMA quick_check`.
    Quick,
    /// No check.
    None,
}

impl FromStr for IntegrityCheck {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(IntegrityCheck::Full),
            "quick" => Ok(IntegrityCheck::Quick),
            "none" => Ok(IntegrityCheck::None),
            _ => Err("must be full, quick or none".to_string()),
        }
    }
}

impl IntegrityCheck {
    fn pragma(self) -> Option<&'static str> {
        match self {
            IntegrityCheck::Full => Some("PRAGMA integrity_check"),
            IntegrityCheck::Quick => Some("PRAGMA quick_check"),
            IntegrityCheck::None => None,
        }
    }
}

/// Most problem lines quoted in the error.
const MAX_REPORTED: usize = 5;

/// Runs the chosen check on `path`; `Err(Integrity)` unless SQLite answers exactly `ok`.
pub fn verify(path: &Path, check: IntegrityCheck) -> Result<(), RestoreError> {
    let Some(pragma) = check.pragma() else {
        return Ok(());
    };
    let sqlite = |source| RestoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if verify_vfs::available() {
        Connection::open_with_flags_and_vfs(path, flags, verify_vfs::VFS_NAME)
    } else {
        Connection::open_with_flags(path, flags)
    }
    .map_err(sqlite)?;
    let lines = {
        let mut stmt = conn.prepare(pragma).map_err(sqlite)?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(sqlite)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(sqlite)?
    };
    conn.close().map_err(|(_, e)| sqlite(e))?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(());
    }
    let mut detail: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .take(MAX_REPORTED)
        .collect();
    if lines.len() > MAX_REPORTED {
        detail.push("…");
    }
    Err(RestoreError::Integrity {
        path: path.to_path_buf(),
        detail: detail.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flag_values() {
        assert_eq!("full".parse(), Ok(IntegrityCheck::Full));
        assert_eq!("quick".parse(), Ok(IntegrityCheck::Quick));
        assert_eq!("none".parse(), Ok(IntegrityCheck::None));
        assert!("FULL".parse::<IntegrityCheck>().is_err());
    }

    #[test]
    fn good_database_passes_and_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode=wal; CREATE TABLE t(a); INSERT INTO t VALUES (1),(2);
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .expect("setup");
        drop(conn);
        let before = std::fs::read(&path).expect("read");
        verify(&path, IntegrityCheck::Full).expect("full");
        verify(&path, IntegrityCheck::Quick).expect("quick");
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn corrupt_database_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "PRAGMA page_size=512; CREATE TABLE t(a TEXT); CREATE INDEX i ON t(a);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<200)
             INSERT INTO t SELECT printf('%050d', x) FROM c;",
        )
        .expect("setup");
        drop(conn);
        break_last_page(&path, 512);
        verify(&path, IntegrityCheck::None).expect("no check");
    }

    /// A database larger than the mapped-read trim interval: every page is still checked, the
    /// file is unchanged, and a broken page near the end is found.
    #[test]
    fn large_database_is_checked_through_the_mapping() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "PRAGMA page_size=4096; PRAGMA journal_mode=wal;
             CREATE TABLE t(a TEXT); CREATE INDEX i ON t(a);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<60000)
             INSERT INTO t SELECT printf('%0100d', x) FROM c;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .expect("setup");
        drop(conn);
        let before = std::fs::read(&path).expect("read");
        assert!(before.len() > 12 << 20, "{} bytes", before.len());
        verify(&path, IntegrityCheck::Full).expect("full");
        assert_eq!(std::fs::read(&path).expect("read"), before);
        break_last_page(&path, 4096);
    }

    /// Breaks the b-tree page header of the last page (an index or table leaf: invalid page type
    /// and cell count) and checks that the full check refuses the file.
    fn break_last_page(path: &std::path::Path, page_size: usize) {
        let mut bytes = std::fs::read(path).expect("read");
        let at = bytes.len() - page_size;
        bytes[at..at + 8].fill(0x55);
        std::fs::write(path, &bytes).expect("write");
        let err = verify(path, IntegrityCheck::Full).expect_err("corrupt");
        assert!(
            matches!(
                err,
                RestoreError::Integrity { .. } | RestoreError::Sqlite { .. }
            ),
            "{err}"
        );
    }
}
