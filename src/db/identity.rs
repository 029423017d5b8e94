//! The database identity: a random 64-bit id stored in the database itself, as row
//! [`IDENTITY_ROW`] of Litestream's `_litestream_seq` table (Litestream uses row 1 as its write
//! counter and never reads other rows). Being database content, it is replicated, restored and
//! copied by backups with the data, so a restored database keeps its identity while a different
//! database (another application, a fresh empty file) has another one. Replicas compare it with
//! the owner record of their replica path (`replica::owner`).
//!
//! What must stay true: the row is written once, only when missing and only when a replica is
//! about to write (attach only reads it, so a database without replicas never gets the row);
//! a database that has one keeps it forever; the id is never 0 (0
//! means "unknown" to readers of [`super::Db::database_id`]).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::error::DbError;

/// The `_litestream_seq.id` of walstream's identity row (`seq` holds the id as a signed
/// 64-bit integer).
pub const IDENTITY_ROW: i64 = 2;

/// The database's identity if it has one (a 0 row counts as none); reads only.
pub(super) fn read(conn: &Connection, path: &Path) -> Result<Option<u64>, DbError> {
    let id = conn
        .query_row(
            "SELECT seq FROM _litestream_seq WHERE id = ?1",
            [IDENTITY_ROW],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(DbError::sqlite(path, "read database identity"))?;
    Ok(id.filter(|&id| id != 0).map(|id| id as u64))
}

/// The database's identity, created (one `INSERT`, its own transaction) when the row is missing.
/// The `_litestream_seq` table must exist.
pub(super) fn ensure(conn: &Connection, path: &Path) -> Result<u64, DbError> {
    if let Some(id) = read(conn, path)? {
        return Ok(id);
    }
    let id = new_id();
    // Conditional: another process (a second walstream on the same file) may have stored one
    // meanwhile; a stored non-zero id wins (read back below), a 0 row is replaced.
    conn.execute(
        "INSERT OR REPLACE INTO _litestream_seq (id, seq) SELECT ?1, ?2 \
         WHERE NOT EXISTS (SELECT 1 FROM _litestream_seq WHERE id = ?1 AND seq != 0)",
        rusqlite::params![IDENTITY_ROW, id as i64],
    )
    .map_err(DbError::sqlite(path, "store database identity"))?;
    Ok(read(conn, path)?.unwrap_or(id))
}

/// A random non-zero id.
fn new_id() -> u64 {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return id;
        }
    }
}

/// The id as walstream prints it: 16 lower-case hex digits.
pub fn format_id(id: u64) -> String {
    format!("{id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
             INSERT INTO _litestream_seq VALUES (1, 7);",
        )
        .expect("schema");
        (dir, path, conn)
    }

    #[test]
    fn created_once_then_kept() {
        let (_dir, path, conn) = db();
        let first = ensure(&conn, &path).expect("create");
        assert_ne!(first, 0);
        let changes = conn.total_changes();
        assert_eq!(ensure(&conn, &path).expect("again"), first);
        assert_eq!(
            conn.total_changes(),
            changes,
            "an existing identity writes nothing"
        );
        let seq: i64 = conn
            .query_row("SELECT seq FROM _litestream_seq WHERE id = 1", [], |r| {
                r.get(0)
            })
            .expect("row 1");
        assert_eq!(seq, 7, "Litestream's counter row is untouched");
    }

    #[test]
    fn two_databases_get_different_identities() {
        let (_a, pa, ca) = db();
        let (_b, pb, cb) = db();
        assert_ne!(ensure(&ca, &pa).expect("a"), ensure(&cb, &pb).expect("b"));
    }

    #[test]
    fn a_zero_row_is_replaced() {
        let (_dir, path, conn) = db();
        conn.execute("INSERT INTO _litestream_seq VALUES (2, 0)", [])
            .expect("zero");
        let id = ensure(&conn, &path).expect("ensure");
        assert_ne!(id, 0);
        assert_eq!(format_id(id).len(), 16);
    }
}
