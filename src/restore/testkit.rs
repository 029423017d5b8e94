//! Hand-made `file://` replicas for restore tests and benchmarks: a real WAL-mode SQLite
//! database whose `-wal` bytes are cut into segments after each commit, exactly as a
//! Litestream-format writer stores them (spec §1.4, §1.5), with storage timestamps (file
//! mtimes) under the caller's control.
//!
//! What must stay true: every object is a byte range of the real WAL (offset-0 segments start
//! with the WAL header, every segment ends on a commit), a snapshot is the database file right
//! after a `TRUNCATE` checkpoint (so it holds every earlier index), and [`Event::rows`] is the
//! table content a restore to that event must reproduce. Not used by the program itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use crate::lz4;
use crate::storage::layout;

/// Rows of table `t(id INTEGER PRIMARY KEY, v TEXT)`.
pub type Rows = Vec<(i64, String)>;

/// One object written to the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Replica-relative key.
    pub key: String,
    pub index: u32,
    /// WAL offset for segments, `None` for snapshots.
    pub offset: Option<u64>,
    /// Uncompressed length of the object.
    pub len: u64,
    pub created_at: SystemTime,
    /// Table content once this object is applied.
    pub rows: Rows,
}

/// Writes a database and its replica side by side.
pub struct ReplicaWriter {
    conn: Connection,
    db_path: PathBuf,
    replica: PathBuf,
    generation: String,
    index: u32,
    offset: u64,
    clock: SystemTime,
    step: Duration,
    pub events: Vec<Event>,
}

impl ReplicaWriter {
    /// A new database `work/app.db` (page size `page_size`) replicated to `replica` under
    /// `generation`; object timestamps start at `start` and advance by `step`.
    pub fn new(
        work: &Path,
        replica: &Path,
        generation: &str,
        page_size: u32,
        start: SystemTime,
        step: Duration,
    ) -> rusqlite::Result<Self> {
        let db_path = work.join("app.db");
        let conn = Connection::open(&db_path)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size={page_size}; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);"
        ))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(ReplicaWriter {
            conn,
            db_path,
            replica: replica.to_path_buf(),
            generation: generation.to_string(),
            index: 0,
            offset: 0,
            clock: start,
            step,
            events: Vec::new(),
        })
    }

    /// The application's connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Current table content.
    pub fn rows(&self) -> rusqlite::Result<Rows> {
        let mut stmt = self.conn.prepare("SELECT id, v FROM t ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    /// Inserts `n` rows of `len`-byte text in one transaction.
    pub fn insert(&mut self, n: usize, len: usize) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare("INSERT INTO t(v) VALUES (?1)")?;
            for i in 0..n {
                let base = self.events.len() * 1000 + i;
                let text: String = format!("{base:08}-").repeat(len / 9 + 1);
                stmt.execute([&text[..len]])?;
            }
        }
        tx.commit()
    }

    /// Runs `sql` as one transaction.
    pub fn exec(&mut self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!("BEGIN; {sql}; COMMIT;"))
    }

    /// Uploads everything written to the WAL since the last upload as one segment.
    pub fn upload_segment(&mut self) -> std::io::Result<Event> {
        let wal = fs::read(self.wal_path())?;
        let start = usize::try_from(self.offset).map_err(std::io::Error::other)?;
        let bytes = wal.get(start..).unwrap_or_default();
        let key = layout::segment_key("", &self.generation, self.index, self.offset);
        let offset = self.offset;
        self.offset += bytes.len() as u64;
        self.put(key, self.index, Some(offset), bytes)
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`: the next write starts WAL index + 1.
    pub fn checkpoint(&mut self) -> rusqlite::Result<()> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        assert_eq!(busy, 0, "checkpoint blocked");
        if self.offset > 0 {
            self.index += 1;
            self.offset = 0;
        }
        Ok(())
    }

    /// Uploads the database file as the snapshot of the current index (call right after
    /// [`checkpoint`](Self::checkpoint) so it holds every earlier index).
    pub fn snapshot(&mut self) -> std::io::Result<Event> {
        let bytes = fs::read(&self.db_path)?;
        let key = layout::snapshot_key("", &self.generation, self.index);
        self.put(key, self.index, None, &bytes)
    }

    fn wal_path(&self) -> PathBuf {
        let mut p = self.db_path.as_os_str().to_owned();
        p.push("-wal");
        PathBuf::from(p)
    }

    fn put(
        &mut self,
        key: String,
        index: u32,
        offset: Option<u64>,
        bytes: &[u8],
    ) -> std::io::Result<Event> {
        let path = self.replica.join(&key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&path, lz4::compress(bytes))?;
        let created_at = self.clock;
        fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(created_at)?;
        self.clock += self.step;
        let rows = self.rows().map_err(std::io::Error::other)?;
        let event = Event {
            key,
            index,
            offset,
            len: bytes.len() as u64,
            created_at,
            rows,
        };
        self.events.push(event.clone());
        Ok(event)
    }
}
