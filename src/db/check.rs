//! The source check before a new generation's first snapshot: `PRAGMA quick_check` of the live
//! database through a read-only connection of its own, bounded in time, so a damaged database
//! file (a corrupted volume, a bad copy) never becomes the replica's latest restore point.
//!
//! What must stay true: the check only reads (read-only connection, no checkpoint, no schema
//! change); it never takes much longer than its limit (a watchdog thread interrupts SQLite); a
//! check that ran out of time is reported as such, not as damage.

use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// What [`quick_check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceCheck {
    /// `quick_check` returned `ok`.
    Ok,
    /// `quick_check` reported damage (its first lines) or SQLite refused to read the file.
    Damaged(String),
    /// The limit passed before the check finished (nothing is known).
    OutOfTime,
}

/// Most lines of `quick_check`'s report kept in the message.
const REPORT_LINES: usize = 3;

/// Runs `PRAGMA quick_check` on `path` for at most `limit`.
pub fn quick_check(path: &Path, limit: Duration) -> SourceCheck {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(c) => c,
        Err(e) => return SourceCheck::Damaged(format!("open: {e}")),
    };
    // A watchdog interrupts the check when the limit passes; finishing first stops it.
    let handle = conn.get_interrupt_handle();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::Builder::new()
        .name("walstream-check".into())
        .spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                handle.interrupt();
            }
        });
    let lines: Result<Vec<String>, rusqlite::Error> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    drop(done);
    if let Ok(w) = watchdog {
        let _ = w.join();
    }
    match lines {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => SourceCheck::Ok,
        Ok(lines) => {
            let shown: Vec<&str> = lines
                .iter()
                .take(REPORT_LINES)
                .map(String::as_str)
                .collect();
            SourceCheck::Damaged(shown.join("; "))
        }
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            SourceCheck::OutOfTime
        }
        Err(e) => SourceCheck::Damaged(e.to_string()),
    }
}

/// Test databases for the check and for the replica's refusal: a filled WAL-mode database with
/// every page in the main file, and the damage (garbage over a table page in its middle).
#[cfg(test)]
pub(crate) mod testkit {
    use std::path::{Path, PathBuf};

    use rusqlite::Connection;

    /// `dir/app.db`: table `t` with 500 rows, checkpointed into the database file.
    pub fn filled_database(dir: &Path) -> PathBuf {
        let path = dir.join("app.db");
        let c = Connection::open(&path).expect("open");
        c.execute_batch(
            "PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
             INSERT INTO t SELECT i, hex(randomblob(100)) FROM n;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .expect("fill");
        path
    }

    /// Garbage over the sixth page (a table page of [`filled_database`]).
    pub fn damage(path: &Path) {
        let mut bytes = std::fs::read(path).expect("read");
        bytes[5 * 4096..6 * 4096].fill(0x5a);
        std::fs::write(path, bytes).expect("damage");
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::{damage, filled_database};
    use super::*;

    #[test]
    fn healthy_and_damaged_databases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = filled_database(dir.path());
        assert_eq!(quick_check(&path, Duration::from_secs(30)), SourceCheck::Ok);
        damage(&path);
        match quick_check(&path, Duration::from_secs(30)) {
            SourceCheck::Damaged(why) => assert!(!why.is_empty()),
            other => panic!("damage not found: {other:?}"),
        }
    }
}
