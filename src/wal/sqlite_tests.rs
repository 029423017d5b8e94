//! Tests of the WAL parser against WAL files written by real SQLite (rusqlite, bundled).
//!
//! What must stay true: each test keeps its connection open while reading the `-wal` file
//! (closing the last connection checkpoints and deletes it) and checks our numbers against
//! SQLite's own (`PRAGMA page_count`, `wal_checkpoint` frame counts).

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::*;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
    conn: Connection,
}

impl Db {
    fn open() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.db");
        let conn = Connection::open(&path).expect("open sqlite");
        let mode: String = conn
            .query_row("PRAGMA journal_mode=wal", [], |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint=0; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
        )
        .expect("setup");
        Db {
            _dir: dir,
            path,
            conn,
        }
    }

    fn wal_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push("-wal");
        PathBuf::from(p)
    }

    fn wal(&self) -> Vec<u8> {
        read(&self.wal_path())
    }

    /// One transaction inserting `rows` rows of `size` bytes.
    fn insert(&self, rows: usize, size: usize) {
        let tx = self.conn.unchecked_transaction().expect("begin");
        for _ in 0..rows {
            tx.execute("INSERT INTO t(v) VALUES (randomblob(?1))", [size as i64])
                .expect("insert");
        }
        tx.commit().expect("commit");
    }

    fn page_count(&self) -> u32 {
        self.conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("page_count")
    }

    /// `(busy, log frames, checkpointed frames)`.
    fn checkpoint(&self, mode: &str) -> (i64, i64, i64) {
        self.conn
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("checkpoint")
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read wal file")
}

fn scan(wal: &[u8]) -> (WalHeader, ScanSummary) {
    let h = WalHeader::parse(wal).expect("sqlite wrote a valid header");
    let s = FrameScanner::new(&h, h.checksum(), 32).scan_slice(&wal[WAL_HEADER_SIZE..]);
    (h, s)
}

#[test]
fn real_wal_parses_and_every_frame_verifies() {
    let db = Db::open();
    for _ in 0..3 {
        db.insert(5, 3000);
    }
    let wal = db.wal();
    let (h, s) = scan(&wal);
    assert_eq!(h.version, WAL_VERSION);
    assert_eq!(h.page_size, 4096);
    assert_eq!(h.encode().as_slice(), &wal[..32]);

    assert_eq!(s.stop, ScanStop::Eof);
    assert_eq!(s.commit_end, wal.len() as u64);
    assert_eq!(s.frames, (wal.len() as u64 - 32) / h.frame_size());
    assert_eq!(s.committed_frames, s.frames);
    assert_eq!(s.db_size, Some(db.page_count()));

    // Four transactions (CREATE TABLE + three inserts) → four commit frames.
    let mut commits = 0;
    let mut r = &wal[32..];
    FrameScanner::new(&h, h.checksum(), 32)
        .scan(&mut r, |fh, _| {
            commits += u32::from(fh.is_commit());
            Ok(())
        })
        .expect("in-memory read");
    assert_eq!(commits, 4);

    // SQLite agrees on the number of frames in the log.
    let (_, log_frames, _) = db.checkpoint("PASSIVE");
    assert_eq!(log_frames as u64, s.frames);
}

#[test]
fn spilled_uncommitted_frames_are_not_counted_as_committed() {
    let db = Db::open();
    db.insert(2, 100);
    let committed_len = db.wal().len() as u64;
    // A tiny page cache forces SQLite to spill dirty pages into the WAL before the commit.
    db.conn
        .execute_batch("PRAGMA cache_size=2")
        .expect("cache_size");
    let tx = db.conn.unchecked_transaction().expect("begin");
    for _ in 0..200 {
        tx.execute("INSERT INTO t(v) VALUES (randomblob(2000))", [])
            .expect("insert");
    }
    let wal = db.wal();
    assert!(
        wal.len() as u64 > committed_len,
        "SQLite spilled frames before commit"
    );
    let (_, s) = scan(&wal);
    assert!(s.frames > s.committed_frames, "{s:?}");
    assert_eq!(s.commit_end, committed_len);
    tx.commit().expect("commit");
    let (_, s) = scan(&db.wal());
    assert_eq!(s.commit_end, db.wal().len() as u64);
    assert_eq!(s.db_size, Some(db.page_count()));
}

#[test]
fn flipped_byte_in_a_real_frame_stops_the_scan_before_it() {
    let db = Db::open();
    for _ in 0..4 {
        db.insert(1, 500);
    }
    let mut wal = db.wal();
    let (h, clean) = scan(&wal);
    assert!(clean.frames >= 4);
    let bad = frame_offset(2, h.page_size);
    wal[bad as usize + FRAME_HEADER_SIZE + 7] ^= 0x40;
    let (_, s) = scan(&wal);
    assert!(
        matches!(s.stop, ScanStop::ChecksumMismatch { offset, .. } if offset == bad),
        "{s:?}"
    );
    assert_eq!(s.valid_end, bad);
    assert!(s.commit_end <= bad);
}

#[test]
fn frames_left_from_the_previous_cycle_are_rejected_by_salt() {
    let db = Db::open();
    db.insert(20, 3000);
    let (old, old_scan) = scan(&db.wal());
    let (busy, _, _) = db.checkpoint("RESTART");
    assert_eq!(busy, 0, "no other reader blocks the restart");
    db.insert(1, 10);
    let wal = db.wal();
    let (new, s) = scan(&wal);

    // Spec §2: a restart bumps the checkpoint sequence and salt-1, and does not truncate.
    assert_eq!(new.checkpoint_seq, old.checkpoint_seq + 1);
    assert_eq!(new.salt1, old.salt1.wrapping_add(1));
    assert_eq!(wal.len() as u64, old_scan.valid_end);
    let at = s.valid_end;
    assert!(at < wal.len() as u64);
    assert!(
        matches!(s.stop, ScanStop::SaltMismatch { offset, found, .. } if offset == at && found == old.salts()),
        "{s:?}"
    );
    assert_eq!(s.commit_end, at);
    assert_eq!(s.db_size, Some(db.page_count()));
}

#[test]
fn seed_from_a_copied_prefix_continues_on_the_real_wal() {
    let db = Db::open();
    db.insert(3, 1000);
    let prefix = db.wal();
    db.insert(3, 1000);
    let wal = db.wal();
    let h = WalHeader::parse(&wal).expect("header");
    // Like the shadow copier: seed from the shadow's last frame, continue on the real WAL.
    let mut shadow = std::io::Cursor::new(prefix.clone());
    let seed = read_seed_checksum(&mut shadow, &h, prefix.len() as u64).expect("seed");
    let start = align(prefix.len() as u64, h.page_size);
    let s = FrameScanner::new(&h, seed, start).scan_slice(&wal[start as usize..]);
    assert_eq!(s.stop, ScanStop::Eof);
    assert_eq!(s.commit_end, wal.len() as u64);
    assert!(s.frames > 0);
}
