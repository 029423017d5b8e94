//! The few SQLite calls of the admin operations: connections, the online backup loop, the
//! integrity check, page size and walstream's own tables.
//!
//! What must stay true: the live database is opened without `SQLITE_OPEN_CREATE` (a vanished
//! file is never recreated empty); reading it for a backup uses a read-only connection, which
//! never checkpoints and never deletes `-wal` when it closes; a busy or locked step of the
//! online backup is retried with a growing pause until [`LOCK_WAIT`] has passed and then fails
//! without having changed the destination.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::AdminError;

/// How long a backup step waits in total for a lock another connection holds.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);
/// Busy timeout of every admin connection (one attempt inside the retry loop).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between two attempts of a busy backup step.
const MAX_PAUSE: Duration = Duration::from_millis(100);
/// Most problem lines quoted from a failed integrity check.
const MAX_REPORTED: usize = 5;

/// A read-only connection to an existing database.
pub fn open_read_only(path: &Path) -> Result<Connection, AdminError> {
    open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// A read-write connection to an existing database (never creates it).
pub fn open_existing(path: &Path) -> Result<Connection, AdminError> {
    open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
}

/// A read-write connection that creates the file (temporary backup targets only).
pub fn open_new(path: &Path) -> Result<Connection, AdminError> {
    open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
}

/// A read-only connection that reads exactly the bytes of the file: `immutable=1`, so SQLite
/// takes no locks and creates no `-wal`/`-shm` beside it, even for a WAL-mode header (uploaded
/// files, which must be checked without leaving anything behind).
pub fn open_immutable(path: &Path) -> Result<Connection, AdminError> {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(&uri, flags).map_err(AdminError::sqlite("open", path))
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, AdminError> {
    let flags = flags | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(AdminError::sqlite("open", path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(AdminError::sqlite("set busy timeout", path))?;
    Ok(conn)
}

/// Copies every page of `src` into `dst` in one step (one transaction on `dst`), retrying while
/// either side is busy or locked, for at most [`LOCK_WAIT`].
pub fn copy_database(
    src: &Connection,
    dst: &mut Connection,
    dst_path: &Path,
) -> Result<(), AdminError> {
    let backup = Backup::new(src, dst).map_err(AdminError::sqlite("start backup", dst_path))?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match backup.step(-1) {
            Ok(StepResult::Done) => return Ok(()),
            Ok(StepResult::More) => {}
            Ok(_busy_or_locked) => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(AdminError::LockTimeout {
                        path: dst_path.to_path_buf(),
                        seconds: LOCK_WAIT.as_secs(),
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => return Err(AdminError::sqlite("backup step", dst_path)(e)),
        }
    }
}

/// `PRAGMA integrity_check` must answer exactly `ok`.
pub fn integrity_check(conn: &Connection, path: &Path) -> Result<(), AdminError> {
    let sqlite = AdminError::sqlite("integrity check", path);
    let lines = (|| {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect::<Result<Vec<String>, _>>()
    })()
    .map_err(sqlite)?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(());
    }
    let mut detail = lines
        .iter()
        .take(MAX_REPORTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if lines.len() > MAX_REPORTED {
        detail.push_str(&format!("; … {} problems in all", lines.len()));
    }
    Err(AdminError::Integrity {
        path: path.to_path_buf(),
        detail,
    })
}

/// `PRAGMA page_size`.
pub fn page_size(conn: &Connection, path: &Path) -> Result<u32, AdminError> {
    let ps: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(AdminError::sqlite("read page size", path))?;
    u32::try_from(ps).map_err(|_| AdminError::Sqlite {
        op: "read page size",
        path: path.to_path_buf(),
        source: rusqlite::Error::IntegralValueOutOfRange(0, ps),
    })
}

/// Creates Litestream's `_litestream_seq` and `_litestream_lock` tables when missing, so that
/// walstream's read transaction and sequence upserts keep working once this content is live.
pub fn ensure_litestream_tables(conn: &Connection, path: &Path) -> Result<(), AdminError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
         CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);",
    )
    .map_err(AdminError::sqlite("create walstream tables", path))
}
