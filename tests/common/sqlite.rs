//! The application side of the integration suites: the `t(id, v)` table every suite writes, the
//! one row reader, and the checks a restored database must pass.
//!
//! Must stay true: every read of a restored database goes through [`checked`], which asserts
//! `PRAGMA integrity_check` = ok first, so no content comparison passes on a damaged file.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Rows of `t`, ordered by id.
pub type Rows = Vec<(i64, String)>;

/// A connection in WAL mode with a 5 s busy timeout.
pub fn open_wal(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open app db");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mode: String = c
        .query_row("PRAGMA journal_mode=wal", [], |r| r.get(0))
        .expect("wal mode");
    assert_eq!(mode, "wal");
    c
}

/// The application's connection: WAL mode, a busy timeout, table `t`.
pub fn open_app(path: &Path) -> Connection {
    let c = open_wal(path);
    c.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);")
        .expect("create table");
    c
}

/// One committed row `id` with a value of varying length.
pub fn insert(c: &Connection, id: i64) {
    c.execute(
        "INSERT INTO t(id, v) VALUES (?1, ?2)",
        rusqlite::params![
            id,
            format!("row-{id}-{}", "x".repeat((id % 7 * 100) as usize))
        ],
    )
    .expect("insert");
}

/// All rows of `t`, ordered.
pub fn rows(c: &Connection) -> Rows {
    rows_as(c)
}

/// All rows of `t`, ordered, with `v` read as `V` (text, blob, …): the one row reader.
pub fn rows_as<V: rusqlite::types::FromSql>(c: &Connection) -> Vec<(i64, V)> {
    let mut st = c
        .prepare("SELECT id, v FROM t ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// `PRAGMA integrity_check` result.
pub fn integrity(c: &Connection) -> String {
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// Opens a restored database after asserting `PRAGMA integrity_check` = ok.
pub fn checked(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open restored db");
    assert_eq!(integrity(&c), "ok", "integrity of {}", path.display());
    c
}

/// The rows of `t` of a restored database (integrity-checked).
pub fn restored_rows(path: &Path) -> Rows {
    rows(&checked(path))
}

/// `SELECT count(*) FROM t` of a restored database (integrity-checked).
pub fn restored_count(path: &Path) -> i64 {
    checked(path)
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count rows")
}

/// The restored database at `path` passes `PRAGMA integrity_check` and holds exactly `expected`
/// in `t`.
pub fn assert_restores_to(path: &Path, expected: &[(i64, String)]) {
    let got = restored_rows(path);
    assert!(
        got == expected,
        "{} holds {} rows, expected {} (first difference at {:?})",
        path.display(),
        got.len(),
        expected.len(),
        got.iter().zip(expected).position(|(a, b)| a != b)
    );
}

/// Removes a database and every side file a restore may leave (`-wal`, `-shm`, `.tmp*`).
pub fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".tmp", ".tmp-wal", ".tmp-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}
