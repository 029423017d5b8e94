//! The SQLite side of one attached database: two connections with Litestream's settings
//! (spec §3.2) and the few statements walstream ever runs.
//!
//! - `reader` (always open): holds the long-running read transaction (`BEGIN` + `PRAGMA
//!   schema_version`, where Litestream counts `_litestream_seq`: the same WAL read mark, without
//!   loading the schema) that pins a WAL read mark so no other process can checkpoint past it or
//!   reset the WAL; with the read transaction dropped (under the write
//!   lock) it runs walstream's checkpoints; snapshots read the database file through its
//!   descriptor (see `file.rs`);
//! - `main` (opened on demand, closed when idle): attach pragmas, `_litestream_seq` upserts
//!   (row 1, Litestream's counter; row 2 is the database identity, `identity.rs`),
//!   SQLite's write lock (`BEGIN IMMEDIATE`, always rolled back) around the final copy and
//!   checkpoint, and checkpoints while the reader holds its transaction.
//!
//! Open files per attached database: the reader's database, `-wal` and `-shm` descriptors, plus
//! the one database descriptor SQLite keeps for reuse after `main` closes (it may not close it
//! while the reader holds locks on the file) — four in all.
//!
//! What must stay true: every connection has the database's busy timeout (1 s by default), `SQLITE_FCNTL_PERSIST_WAL = 1`
//! (closing our connections never deletes `-wal`) and `wal_autocheckpoint = 0`; connections
//! are opened without `SQLITE_OPEN_CREATE`, so a vanished file is never recreated empty; a
//! checkpoint always runs on a connection outside any transaction.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, ffi};

use super::error::DbError;
use super::file::DbFile;
use crate::rt::lock;

/// Litestream's `BusyTimeout` (the default of `busy-timeout`), used where no database's
/// setting applies.
#[cfg(test)]
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

const UPSERT_SEQ: &str = "INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) \
                          ON CONFLICT (id) DO UPDATE SET seq = seq + 1";

/// Result row of `PRAGMA wal_checkpoint`: (busy, frames in the WAL, frames checkpointed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointResult {
    pub busy: i64,
    pub log: i64,
    pub checkpointed: i64,
}

impl CheckpointResult {
    /// Every frame of the WAL was copied into the database file.
    pub fn complete(&self) -> bool {
        self.busy == 0 && self.log == self.checkpointed
    }
}

/// A connection opened on first use and closed again by [`Conns::park`] when idle: `main` is
/// needed only at attach and around checkpoints, and keeping it open would cost SQLite's
/// per-connection memory (and a `-wal` descriptor) for every attached database.
struct OnDemand {
    conn: std::cell::RefCell<Option<Connection>>,
}

impl OnDemand {
    fn new(conn: Option<Connection>) -> OnDemand {
        OnDemand {
            conn: std::cell::RefCell::new(conn),
        }
    }

    /// Runs `f` on the connection, opening it first if needed.
    fn with<T>(
        &self,
        (path, busy): (&Path, Duration),
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, rusqlite::Error> {
        let mut slot = self.conn.borrow_mut();
        if slot.is_none() {
            *slot = Some(open_raw(path, busy)?);
        }
        match slot.as_ref() {
            Some(c) => f(c),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    }

    /// Closes the connection unless it is inside a transaction.
    fn park(&self) {
        let mut slot = self.conn.borrow_mut();
        if slot.as_ref().is_some_and(|c| c.is_autocommit()) {
            *slot = None;
        }
    }
}

/// The connections of an attached database: `reader` always open (it holds the read
/// transaction), shared with snapshot handles on its descriptor; `main` opened on demand.
pub(crate) struct Conns {
    path: PathBuf,
    /// SQLite busy timeout of both connections (`busy-timeout`).
    busy: Duration,
    main: OnDemand,
    reader: Arc<Mutex<Connection>>,
    read_held: bool,
}

impl Conns {
    /// Steps 1–6 of the attach sequence: WAL mode (converting a rollback-journal database),
    /// autocheckpoint off, the two Litestream tables, the long-running read transaction.
    pub fn attach(path: &Path, busy: Duration) -> Result<Conns, DbError> {
        let main = open(path, busy)?;
        enable_wal(&main, path)?;
        main.execute_batch(
            "CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
             CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);",
        )
        .map_err(DbError::sqlite(path, "create litestream tables"))?;
        let mut conns = Conns {
            path: path.to_path_buf(),
            busy,
            main: OnDemand::new(Some(main)),
            reader: Arc::new(Mutex::new(open(path, busy)?)),
            read_held: false,
        };
        conns.acquire_read()?;
        Ok(conns)
    }

    /// The database identity (row 2 of `_litestream_seq`, see `identity.rs`), stored first when
    /// missing.
    pub fn database_id(&self) -> Result<u64, DbError> {
        self.main
            .with(self.at(), |c| Ok(super::identity::ensure(c, &self.path)))
            .map_err(DbError::sqlite(&self.path, "open main connection"))?
    }

    /// The database identity if the database has one (nothing is written).
    pub fn read_database_id(&self) -> Result<Option<u64>, DbError> {
        self.main
            .with(self.at(), |c| Ok(super::identity::read(c, &self.path)))
            .map_err(DbError::sqlite(&self.path, "open main connection"))?
    }

    /// The database path and busy timeout, for opening `main`.
    fn at(&self) -> (&Path, Duration) {
        (&self.path, self.busy)
    }

    /// The busy timeout of these connections.
    pub fn busy_timeout(&self) -> Duration {
        self.busy
    }

    /// Closes `main` if it is idle (not inside a transaction). SQLite keeps its database
    /// descriptor for reuse while the reader holds its locks, so this never drops a lock.
    pub fn park(&self) {
        self.main.park();
    }

    /// A read handle on the database file through the reader's own descriptor when it names
    /// the file `identity`; `None` when it cannot be borrowed (the caller opens one instead).
    pub fn borrow_file(&self, identity: (u64, u64)) -> Option<DbFile> {
        let owner: Arc<dyn std::any::Any + Send + Sync> = self.reader.clone();
        DbFile::borrow_from(&lock(&self.reader), identity, owner)
    }

    /// `PRAGMA page_size`.
    pub fn page_size(&self) -> Result<u32, DbError> {
        let ps: i64 = self
            .main
            .with(self.at(), |c| {
                c.query_row("PRAGMA page_size", [], |r| r.get(0))
            })
            .map_err(DbError::sqlite(&self.path, "read page size"))?;
        u32::try_from(ps)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| DbError::Sqlite {
                path: self.path.clone(),
                op: "read page size",
                source: rusqlite::Error::IntegralValueOutOfRange(0, ps),
            })
    }

    /// Starts the long-running read transaction if it is not held.
    pub fn acquire_read(&mut self) -> Result<(), DbError> {
        if self.read_held {
            return Ok(());
        }
        let op = "acquire read lock";
        let reader = lock(&self.reader);
        reader
            .execute_batch("BEGIN")
            .map_err(DbError::sqlite(&self.path, op))?;
        // Any read starts the transaction; the schema version is read from the header page
        // alone, so this connection never parses (and keeps in memory) the schema.
        let read = reader.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0));
        if let Err(e) = read {
            let _ = reader.execute_batch("ROLLBACK");
            return Err(DbError::sqlite(&self.path, op)(e));
        }
        release_cache(&reader);
        self.read_held = true;
        Ok(())
    }

    /// Ends the long-running read transaction if it is held.
    pub fn release_read(&mut self) -> Result<(), DbError> {
        if !self.read_held {
            return Ok(());
        }
        self.read_held = false;
        lock(&self.reader)
            .execute_batch("ROLLBACK")
            .map_err(DbError::sqlite(&self.path, "release read lock"))
    }

    /// Forces a WAL write: upserts row 1 of `_litestream_seq`. With `truncate_wal`, the WAL
    /// file is cut to the frames of this transaction when it restarts the WAL (SQLite's
    /// `journal_size_limit` rule), which is how walstream's TRUNCATE reclaims disk space.
    /// Must not be called while `main` holds the write lock.
    pub fn upsert_seq(&self, truncate_wal: bool) -> Result<(), DbError> {
        let op = "upsert _litestream_seq";
        if truncate_wal {
            self.set_journal_size_limit(0)?;
        }
        let result = self.main.with(self.at(), |c| c.execute(UPSERT_SEQ, []));
        if truncate_wal {
            self.set_journal_size_limit(-1)?;
        }
        result.map(|_| ()).map_err(DbError::sqlite(&self.path, op))
    }

    fn set_journal_size_limit(&self, limit: i64) -> Result<(), DbError> {
        let sql = format!("PRAGMA journal_size_limit = {limit}");
        self.main
            .with(self.at(), |c| c.execute_batch(&sql))
            .map_err(DbError::sqlite(&self.path, "set journal_size_limit"))
    }

    /// Takes SQLite's write lock on the main connection. `Ok(false)` when another
    /// connection kept it for the whole busy timeout.
    pub fn begin_write_lock(&self) -> Result<bool, DbError> {
        match self
            .main
            .with(self.at(), |c| c.execute_batch("BEGIN IMMEDIATE"))
        {
            Ok(()) => Ok(true),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Ok(false),
            Err(e) => Err(DbError::sqlite(&self.path, "begin write lock")(e)),
        }
    }

    /// Releases the write lock (rolls the empty transaction back).
    pub fn end_write_lock(&self) -> Result<(), DbError> {
        self.main
            .with(self.at(), |c| c.execute_batch("ROLLBACK"))
            .map_err(DbError::sqlite(&self.path, "release write lock"))
    }

    /// `PRAGMA wal_checkpoint(PASSIVE)` on a connection outside any transaction: the reader
    /// when its read transaction is released (during walstream's checkpoint procedure, while
    /// `main` holds the write lock), otherwise `main`.
    pub fn checkpoint_passive(&self) -> Result<CheckpointResult, DbError> {
        let run = |c: &Connection| {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok(CheckpointResult {
                    busy: r.get(0)?,
                    log: r.get(1)?,
                    checkpointed: r.get(2)?,
                })
            })
        };
        let result = if self.read_held {
            self.main.with(self.at(), run)
        } else {
            run(&lock(&self.reader))
        };
        result.map_err(DbError::sqlite(&self.path, "checkpoint"))
    }

    /// Ends the read transaction; the connections close when dropped (the WAL stays). A
    /// snapshot still reading through the reader's descriptor keeps that connection open
    /// until it is done.
    pub fn close(mut self) -> Result<(), DbError> {
        self.release_read()
    }
}

/// Page-cache size (pages) of walstream's connections. They read a handful of pages (the schema,
/// `_litestream_seq`); below 3 pages SQLite also skips its up-front bulk allocation of ~20
/// pages, which across thousands of attached databases was most of their memory.
const CACHE_PAGES: i64 = 2;

/// Opens one connection with Litestream's settings, and with SQLite's per-connection memory
/// (lookaside slots, page cache) cut to what walstream's few statements need.
fn open(path: &Path, busy: Duration) -> Result<Connection, DbError> {
    open_raw(path, busy).map_err(DbError::sqlite(path, "open database"))
}

fn open_raw(path: &Path, busy: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    no_lookaside(&conn);
    conn.pragma_update(None, "cache_size", CACHE_PAGES)?;
    conn.busy_timeout(busy)?;
    persist_wal(&conn)?;
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
    Ok(conn)
}

/// Process-wide SQLite memory settings for a process that keeps thousands of connections open:
/// no up-front page-cache allocation per connection (SQLite's default allocates ~20 pages on a
/// connection's first read, before `cache_size` can be lowered — ~90 KiB per connection).
/// Must run before the first connection of the process is opened; later it is a no-op (SQLite
/// answers MISUSE once initialised, and the defaults stay).
pub fn configure_process_memory() {
    // SAFETY: called before SQLite is initialised by this process's first connection (the
    // orchestrator calls it first thing); SQLITE_CONFIG_PAGECACHE takes (void* buffer, int size,
    // int count) and a NULL buffer with count 0 only sets the initial bulk allocation to none.
    unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PAGECACHE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            0 as std::ffi::c_int,
            0 as std::ffi::c_int,
        );
    }
}

/// Turns off the connection's lookaside allocator (by default ~120 KiB allocated and touched per
/// connection; walstream's statements are too few for it to matter). Best effort: SQLite refuses
/// while lookaside memory is in use, and then the default stays.
fn no_lookaside(conn: &Connection) {
    // SAFETY: `conn` owns a live handle for the duration of the call; SQLITE_DBCONFIG_LOOKASIDE
    // takes (void* buffer, int slot size, int slot count), and a NULL buffer with 0 slots only
    // releases SQLite's own lookaside memory.
    unsafe {
        ffi::sqlite3_db_config(
            conn.handle(),
            ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            0 as std::ffi::c_int,
            0 as std::ffi::c_int,
        );
    }
}

/// Returns the connection's unpinned cached pages to the allocator: the reader keeps its read
/// transaction for hours and never needs the page it read to start it.
fn release_cache(conn: &Connection) {
    // SAFETY: `conn` owns a live handle for the duration of the call.
    unsafe {
        ffi::sqlite3_db_release_memory(conn.handle());
    }
}

/// `PRAGMA journal_mode = wal` must answer `wal`.
fn enable_wal(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = wal", [], |r| r.get(0))
        .map_err(DbError::sqlite(path, "enable wal"))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(DbError::WalModeRefused {
            path: path.to_path_buf(),
            mode,
        })
    }
}

/// `SQLITE_FCNTL_PERSIST_WAL = 1` on the main database of `conn`.
fn persist_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: `conn` owns a live handle for the duration of the call; the schema name is a
    // NUL-terminated literal; PERSIST_WAL reads and writes exactly one c_int through `arg`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::ffi::c_int).cast(),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_db(dir: &Path) -> (PathBuf, Connection) {
        let path = dir.join("t.db");
        let app = Connection::open(&path).expect("open");
        app.execute_batch(
            "PRAGMA journal_mode = wal; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (v BLOB);",
        )
        .expect("setup");
        (path, app)
    }

    fn wal_len(db: &Path) -> u64 {
        std::fs::metadata(format!("{}-wal", db.display()))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    #[test]
    fn truncate_upsert_cuts_the_wal_to_the_restarting_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, app) = app_db(dir.path());
        let mut conns = Conns::attach(&path, BUSY_TIMEOUT).expect("attach");
        app.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
             INSERT INTO t SELECT randomblob(3000) FROM n",
        )
        .expect("fill");
        let big = wal_len(&path);
        conns.release_read().expect("release");
        let r = conns.checkpoint_passive().expect("checkpoint");
        assert!(r.complete(), "{r:?}");
        conns.upsert_seq(true).expect("upsert");
        let fs = 24 + u64::from(conns.page_size().expect("page size"));
        assert!(big > 32 + 10 * fs);
        assert_eq!(
            wal_len(&path),
            32 + fs,
            "WAL cut to header + the upsert frame"
        );
        // A plain upsert after that leaves the file alone (journal_size_limit is back to -1).
        conns.upsert_seq(false).expect("upsert");
        assert_eq!(wal_len(&path), 32 + 2 * fs);
    }

    #[test]
    fn closing_walstream_last_keeps_the_wal_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, app) = app_db(dir.path());
        app.execute_batch("INSERT INTO t VALUES (1)")
            .expect("insert");
        let conns = Conns::attach(&path, BUSY_TIMEOUT).expect("attach");
        drop(app);
        conns.close().expect("close");
        assert!(
            wal_len(&path) >= 32,
            "persist-WAL keeps -wal after the last close"
        );
    }

    #[test]
    fn write_lock_blocks_other_writers_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, app) = app_db(dir.path());
        let conns = Conns::attach(&path, BUSY_TIMEOUT).expect("attach");
        assert!(conns.begin_write_lock().expect("lock"));
        app.busy_timeout(Duration::from_millis(10))
            .expect("timeout");
        let blocked = app.execute_batch("INSERT INTO t VALUES (1)");
        assert_eq!(
            blocked.expect_err("busy").sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        conns.end_write_lock().expect("unlock");
        app.execute_batch("INSERT INTO t VALUES (1)")
            .expect("insert after unlock");
    }
}
