//! The live-database module against real SQLite files: attach, shadow WAL copying, generation
//! reasons, walstream's checkpoints, snapshot guards, shadow cleanup, and continuing a meta dir
//! left by the real Litestream v0.3.13.
//!
//! Must stay true: every test uses its own temp dir and a real application connection
//! (rusqlite) as the writer; nothing sleeps for readiness (polling with a deadline only); shadow
//! contents are checked byte for byte against the real WAL.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use walstream::config::{AgeConfig, DbConfig, ReplicaConfig, ReplicaTarget};
use walstream::db::{COPY_BUFFER_BYTES, CheckpointMode, Db, DbError, Pos, reason};
use walstream::wal::{FrameHeader, WalHeader, align, frame_size};

// ---------------------------------------------------------------------------------------------
// helpers

fn db_config(db: &Path) -> DbConfig {
    let name = db.file_name().expect("db file name").to_string_lossy();
    DbConfig {
        path: db.to_path_buf(),
        meta_path: db.with_file_name(format!(".{name}-litestream")),
        monitor_interval: Duration::from_secs(1),
        checkpoint_interval: Duration::ZERO,
        // Tests that want checkpoints lower these.
        min_checkpoint_page_count: 1_000_000,
        max_checkpoint_page_count: 0,
        replicas: Vec::new(),
        backups: walstream::config::BackupsConfig::for_db(db),
        truncate_page_count: walstream::config::TRUNCATE_PAGE_COUNT,
        busy_timeout: std::time::Duration::from_secs(1),
        v05_replica: false,
    }
}

/// The application: one connection in WAL mode.
struct App {
    conn: Connection,
}

impl App {
    fn open(path: &Path) -> App {
        let conn = common::sqlite::open_wal(path);
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
            .expect("create table");
        App { conn }
    }

    /// One transaction inserting `rows` rows of `size` random bytes.
    fn insert(&self, rows: usize, size: usize) {
        self.conn.execute_batch("BEGIN").expect("begin");
        for _ in 0..rows {
            self.conn
                .execute("INSERT INTO t (v) VALUES (randomblob(?1))", [size as i64])
                .expect("insert");
        }
        self.conn.execute_batch("COMMIT").expect("commit");
    }

    fn checkpoint(&self, mode: &str) -> (i64, i64, i64) {
        self.conn
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("app checkpoint")
    }

    fn rows(&self) -> Vec<(i64, Vec<u8>)> {
        common::sqlite::rows_as(&self.conn)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    app: App,
}

/// A database with one committed row.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    let app = App::open(&path);
    app.insert(1, 10);
    Fixture {
        _dir: dir,
        path,
        app,
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

async fn opened(cfg: &DbConfig) -> Arc<Db> {
    let db = Db::new(cfg);
    db.open().await.expect("open db");
    db
}

/// [`fixture`] attached with `tune(cfg)` and synced once.
async fn started(tune: impl FnOnce(&mut DbConfig)) -> (Fixture, DbConfig, Arc<Db>, Pos) {
    let f = fixture();
    let mut cfg = db_config(&f.path);
    tune(&mut cfg);
    let db = opened(&cfg).await;
    let pos = db.sync().await.expect("first sync").pos;
    (f, cfg, db, pos)
}

/// The shadow of `pos.index` is exactly the real WAL's first `pos.offset` bytes.
fn assert_shadow_is_wal_prefix(db: &Db, pos: &Pos) {
    let shadow = read(&db.shadow_wal_path(&pos.generation, pos.index));
    assert_eq!(
        shadow.len() as u64,
        pos.offset,
        "shadow length = published offset"
    );
    let wal = read(db.wal_path());
    assert!(
        wal.len() >= shadow.len(),
        "real WAL shorter than its shadow"
    );
    assert!(
        wal[..shadow.len()] == shadow[..],
        "shadow {}/{:08x} differs from the real WAL",
        pos.generation,
        pos.index
    );
}

/// The last frame of a shadow file is a commit frame.
fn assert_ends_on_commit(bytes: &[u8], page_size: u32) {
    let fs = frame_size(page_size) as usize;
    assert!(bytes.len() > 32, "shadow holds frames");
    let last = FrameHeader::parse(&bytes[bytes.len() - fs..], 0).expect("frame header");
    assert!(last.is_commit(), "shadow ends on a non-commit frame");
}

// ---------------------------------------------------------------------------------------------
// attach

#[tokio::test]
async fn missing_file_is_not_found_until_it_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("later.db");
    let db = Db::new(&db_config(&path));
    assert!(matches!(db.open().await, Err(DbError::NotFound { .. })));
    assert!(matches!(db.sync().await, Err(DbError::NotFound { .. })));
    let app = App::open(&path);
    app.insert(1, 10);
    db.open().await.expect("open once the file exists");
    let out = db.sync().await.expect("sync");
    assert_eq!(out.new_generation, Some(reason::NO_GENERATION));
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.db");
    fs::write(&path, "these are my notes, not a database\n".repeat(64)).expect("write");
    let db = Db::new(&db_config(&path));
    let err = db.open().await.expect_err("not a database");
    assert!(matches!(err, DbError::NotADatabase { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: file is not a database", path.display())
    );
    assert_eq!(
        read(&path),
        "these are my notes, not a database\n".repeat(64).as_bytes()
    );
}

#[tokio::test]
async fn a_rollback_journal_database_is_converted_to_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).expect("open");
        let mode: String = conn
            .query_row("PRAGMA journal_mode = delete", [], |r| r.get(0))
            .expect("delete mode");
        assert_eq!(mode, "delete");
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
            .expect("fill");
    }
    assert_eq!(
        &read(&path)[18..20],
        &[1, 1],
        "starts as a rollback-journal database"
    );
    let db = opened(&db_config(&path)).await;
    assert_eq!(&read(&path)[18..20], &[2, 2], "file header says WAL");
    let out = db.sync().await.expect("sync");
    assert_shadow_is_wal_prefix(&db, &out.pos);
    let conn = Connection::open(&path).expect("reopen");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    assert_eq!(tables, ["_litestream_lock", "_litestream_seq", "t"]);
}

#[tokio::test]
async fn meta_files_take_the_database_modes() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let dir = f.path.parent().expect("db dir");
    fs::set_permissions(&f.path, fs::Permissions::from_mode(0o640)).expect("chmod db");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o750)).expect("chmod dir");
    let cfg = db_config(&f.path);
    let db = opened(&cfg).await;
    let pos = db.sync().await.expect("sync").pos;
    let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&db.shadow_wal_path(&pos.generation, 0)), 0o640);
    assert_eq!(mode(&cfg.meta_path.join("generation")), 0o640);
    assert_eq!(mode(&cfg.meta_path), 0o750);
    let generation_dir = cfg.meta_path.join("generations").join(&pos.generation);
    assert_eq!(mode(&generation_dir), 0o750);
    assert_eq!(mode(&generation_dir.join("wal")), 0o750);
}

// ---------------------------------------------------------------------------------------------
// shadow WAL copying

#[tokio::test]
async fn sync_copies_exactly_the_committed_frames() {
    let f = fixture();
    f.app.insert(3, 100);
    let cfg = db_config(&f.path);
    let db = opened(&cfg).await;
    let first = db.sync().await.expect("first sync");
    assert_eq!(first.new_generation, Some(reason::NO_GENERATION));
    assert!(first.changed);
    assert_eq!(first.pos.index, 0);
    let wal_len = read(db.wal_path()).len() as u64;
    assert_eq!(first.pos.offset, align(wal_len, db.page_size()));
    assert_shadow_is_wal_prefix(&db, &first.pos);
    let generation_file = read(&cfg.meta_path.join("generation"));
    assert_eq!(
        generation_file,
        format!("{}\n", first.pos.generation).as_bytes()
    );
    let state = db.state();
    assert_eq!(state.pos.as_ref(), Some(&first.pos));
    assert_eq!(
        state.generation.as_deref(),
        Some(first.pos.generation.as_str())
    );
    assert_eq!(state.page_size, 4096);

    f.app.insert(10, 3000);
    let second = db.sync().await.expect("second sync");
    assert_eq!(second.new_generation, None);
    assert_eq!(second.pos.generation, first.pos.generation);
    assert!(second.pos.offset > first.pos.offset);
    assert!(second.changed);
    assert_shadow_is_wal_prefix(&db, &second.pos);
    assert_ends_on_commit(&read(&db.shadow_wal_path(&second.pos.generation, 0)), 4096);

    let idle = db.sync().await.expect("idle sync");
    assert_eq!(idle.pos, second.pos);
    assert!(!idle.changed);
    let stats = db.stats();
    assert_eq!(stats.sync_count, 3);
    assert_eq!(stats.total_wal_bytes, second.pos.offset - 32);
}

#[tokio::test]
async fn uncommitted_trailing_frames_are_not_copied() {
    let (f, _, db, committed) = started(|_| {}).await;
    // A tiny page cache makes SQLite spill the open transaction's pages into the WAL.
    f.app
        .conn
        .execute_batch("PRAGMA cache_size = 2; BEGIN")
        .expect("begin");
    for _ in 0..50 {
        f.app
            .conn
            .execute("INSERT INTO t (v) VALUES (randomblob(2000))", [])
            .expect("insert");
    }
    let wal_len = read(db.wal_path()).len() as u64;
    assert!(
        wal_len > committed.offset,
        "the open transaction spilled frames into the WAL"
    );
    let during = db.sync().await.expect("sync during transaction");
    assert_eq!(
        during.pos, committed,
        "no uncommitted frame reached the shadow"
    );
    assert!(!during.changed);

    f.app.conn.execute_batch("COMMIT").expect("commit");
    let after = db.sync().await.expect("sync after commit");
    assert!(after.pos.offset > wal_len - frame_size(4096));
    assert_shadow_is_wal_prefix(&db, &after.pos);
    assert_ends_on_commit(&read(&db.shadow_wal_path(&after.pos.generation, 0)), 4096);
}

#[tokio::test]
async fn a_64_mib_transaction_is_copied_with_bounded_buffers() {
    let (f, _, db, _) = started(|_| {}).await;
    f.app.insert(64, 1 << 20);
    let out = db.sync().await.expect("sync");
    let wal = wal_path(&f.path);
    assert!(fs::metadata(&wal).expect("wal").len() > 64 << 20);
    assert_eq!(
        out.pos.offset,
        align(fs::metadata(&wal).expect("wal").len(), 4096)
    );
    assert_files_equal_prefix(&db.shadow_wal_path(&out.pos.generation, 0), &wal);
    let buffers = db.stats().max_copy_buffer;
    assert!(buffers > 0);
    assert!(
        buffers <= 2 * COPY_BUFFER_BYTES + frame_size(4096) as usize,
        "copy buffers {buffers} exceed the fixed bound"
    );
    assert!(
        buffers < 4 << 20,
        "copying 64 MiB allocated {buffers} bytes of buffers"
    );
}

/// `shadow` equals the first `len(shadow)` bytes of `real`, compared chunk by chunk.
fn assert_files_equal_prefix(shadow: &Path, real: &Path) {
    let open = |p: &Path| fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (mut a, mut b) = (open(shadow), open(real));
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = a.read(&mut x).expect("read shadow");
        if n == 0 {
            return;
        }
        b.read_exact(&mut y[..n])
            .expect("real WAL at least as long as the shadow");
        assert!(
            x[..n] == y[..n],
            "shadow differs from the real WAL near offset {offset}"
        );
        offset += n as u64;
    }
}

// ---------------------------------------------------------------------------------------------
// checkpoints

#[tokio::test]
async fn checkpoint_at_min_page_count_starts_the_next_index() {
    let f = fixture();
    let mut cfg = db_config(&f.path);
    cfg.min_checkpoint_page_count = 8;
    let db = opened(&cfg).await;
    let first = db.sync().await.expect("first sync");
    assert_eq!((first.pos.index, first.checkpoint), (0, None));
    let old_header = WalHeader::parse(&read(db.wal_path())).expect("header");

    f.app.insert(20, 1000);
    let before = read(db.wal_path());
    let out = db.sync().await.expect("sync");
    assert_eq!(out.checkpoint, Some(CheckpointMode::Passive));
    assert_eq!(out.pos.index, 1);
    // Index 0 holds everything committed in the old WAL cycle.
    let shadow0 = read(&db.shadow_wal_path(&out.pos.generation, 0));
    assert_eq!(shadow0.len() as u64, align(before.len() as u64, 4096));
    assert!(before[..shadow0.len()] == shadow0[..]);
    // Index 1 starts with the new real header: next checkpoint sequence, salt-1 + 1.
    let real = read(db.wal_path());
    let new_header = WalHeader::parse(&real).expect("new header");
    assert_eq!(new_header.checkpoint_seq, old_header.checkpoint_seq + 1);
    assert_eq!(new_header.salt1, old_header.salt1.wrapping_add(1));
    assert_shadow_is_wal_prefix(&db, &out.pos);
    assert_eq!(
        out.pos.offset,
        32 + frame_size(4096),
        "header + the _litestream_seq frame"
    );
    let stats = db.stats();
    assert_eq!(stats.checkpoint(CheckpointMode::Passive).count, 1);
    assert_eq!(stats.checkpoint(CheckpointMode::Passive).error_count, 0);
    assert_eq!(stats.shadow_wal_index, 1);
}

#[tokio::test]
async fn restart_threshold_resets_the_wal() {
    let (f, _, db, first) = started(|c| {
        c.min_checkpoint_page_count = 4;
        c.max_checkpoint_page_count = 6;
    })
    .await;
    let restarts = db.stats().checkpoint(CheckpointMode::Restart).count;
    f.app.insert(20, 1000);
    let out = db.sync().await.expect("sync");
    assert_eq!(out.checkpoint, Some(CheckpointMode::Restart));
    assert_eq!(out.pos.index, first.index + 1);
    assert_shadow_is_wal_prefix(&db, &out.pos);
    assert_eq!(
        db.stats().checkpoint(CheckpointMode::Restart).count,
        restarts + 1
    );
}

/// Sets the database file's mtime `age` into the past.
fn age_db_file(path: &Path, age: Duration) {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open db file");
    f.set_modified(std::time::SystemTime::now() - age)
        .expect("set mtime");
}

#[tokio::test]
async fn checkpoint_interval_applies_to_an_idle_database_file() {
    let f = fixture();
    let mut cfg = db_config(&f.path);
    cfg.checkpoint_interval = Duration::from_secs(60);
    let db = opened(&cfg).await;
    age_db_file(&f.path, Duration::from_secs(600));
    let first = db.sync().await.expect("first sync");
    assert_eq!(
        first.checkpoint, None,
        "not on the tick that starts a generation"
    );
    age_db_file(&f.path, Duration::from_secs(10));
    f.app.insert(2, 100);
    let recent = db.sync().await.expect("sync");
    assert_eq!(recent.checkpoint, None, "database file modified 10 s ago");
    age_db_file(&f.path, Duration::from_secs(61));
    let idle = db.sync().await.expect("sync");
    assert_eq!(idle.checkpoint, Some(CheckpointMode::Passive));
    assert_eq!(idle.pos.index, first.pos.index + 1);
    assert_eq!(idle.pos.offset, 32 + frame_size(4096));
    // The checkpoint wrote the database file; a WAL of one frame never triggers the rule.
    age_db_file(&f.path, Duration::from_secs(61));
    assert_eq!(db.sync().await.expect("sync").checkpoint, None);
}

#[tokio::test]
async fn an_app_checkpoint_cannot_reset_the_wal_while_attached() {
    let (f, _, db, first) = started(|_| {}).await;
    f.app.insert(5, 3000);
    let wal_before = read(db.wal_path());
    f.app
        .conn
        .busy_timeout(Duration::from_millis(200))
        .expect("short busy timeout");

    let (busy, log, done) = f.app.checkpoint("TRUNCATE");
    assert_eq!(
        busy, 1,
        "TRUNCATE is refused while walstream holds its read mark"
    );
    assert!(
        done < log,
        "only frames below walstream's read mark were checkpointed"
    );
    let (busy, log, done) = f.app.checkpoint("PASSIVE");
    assert_eq!(busy, 0);
    assert!(done < log, "PASSIVE is partial");

    let wal_after = read(db.wal_path());
    assert_eq!(wal_after.len(), wal_before.len(), "WAL not truncated");
    assert_eq!(wal_after[..32], wal_before[..32], "WAL header not reset");
    let out = db.sync().await.expect("sync");
    assert_eq!(out.new_generation, None);
    assert_eq!(
        (out.pos.generation.as_str(), out.pos.index),
        (first.generation.as_str(), 0)
    );
    assert_shadow_is_wal_prefix(&db, &out.pos);
}

/// A writer commits continuously while walstream syncs and checkpoints every few pages; the
/// snapshot plus every shadow index, replayed in order, must give the writer's final database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_loses_no_transaction_across_checkpoints() {
    let (f, _, db, _) = started(|c| c.min_checkpoint_page_count = 3).await;
    let base = f._dir.path().join("restore.db");
    let start = {
        let guard = db.begin_snapshot().await.expect("snapshot");
        let mut bytes = vec![0u8; guard.size as usize];
        // Positional reads only: the handle may be SQLite's own descriptor.
        std::os::unix::fs::FileExt::read_exact_at(&**guard.file, &mut bytes, 0).expect("read db");
        fs::write(&base, bytes).expect("write base");
        guard.pos
    };

    let path = f.path.clone();
    let writer = std::thread::spawn(move || {
        let app = App::open(&path);
        for _ in 0..300 {
            app.insert(1, 700);
        }
    });
    let mut checkpoints = 0;
    while !writer.is_finished() {
        let out = db.sync().await.expect("sync while writing");
        checkpoints += usize::from(out.checkpoint.is_some());
    }
    writer.join().expect("writer thread");
    let last = db.sync().await.expect("final sync");
    assert!(
        checkpoints + usize::from(last.checkpoint.is_some()) > 0,
        "no checkpoint ran"
    );
    assert_eq!(
        last.pos.generation, start.generation,
        "stayed in one generation"
    );

    for index in start.index..=last.pos.index {
        let shadow = db.shadow_wal_path(&last.pos.generation, index);
        fs::copy(&shadow, wal_path(&base)).expect("place shadow as wal");
        let conn = Connection::open(&base).expect("open restore");
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .expect("apply wal");
        assert_eq!(busy, 0);
    }
    let restored = common::sqlite::checked(&base);
    let restored_rows = App { conn: restored }.rows();
    assert_eq!(restored_rows.len(), 301);
    assert!(
        restored_rows == f.app.rows(),
        "restored rows differ from the live database"
    );
}

/// Syncs racing each other (the monitor's tick, a replica's pre-upload tick, `POST …/sync`)
/// publish their positions in the order they computed them: the state never steps back, and
/// once they are done it holds the newest position any of them returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_syncs_never_publish_an_older_position() {
    let (f, _, db, _) = started(|c| c.min_checkpoint_page_count = 8).await;
    let key = |p: &Pos| (p.index, p.offset);
    let mut states = db.subscribe();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let mut seen: Vec<(u32, u64)> = Vec::new();
        loop {
            tokio::select! {
                changed = states.changed() => changed.expect("state channel open"),
                _ = &mut stopped => return seen,
            }
            if let Some(p) = states.borrow_and_update().pos.as_ref() {
                seen.push((p.index, p.offset));
            }
        }
    });
    let path = f.path.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_done = Arc::clone(&done);
    let writer = std::thread::spawn(move || {
        let app = App::open(&path);
        for _ in 0..300 {
            app.insert(1, 500);
            // Paced, so the syncs interleave with the commits.
            std::thread::sleep(Duration::from_millis(2));
        }
        writer_done.store(true, std::sync::atomic::Ordering::Release);
    });
    let mut syncers = Vec::new();
    for _ in 0..4 {
        let (db, done) = (Arc::clone(&db), Arc::clone(&done));
        syncers.push(tokio::spawn(async move {
            let mut newest = (0, 0);
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let out = db.sync().await.expect("concurrent sync");
                newest = newest.max((out.pos.index, out.pos.offset));
            }
            let out = db.sync().await.expect("sync after the writer");
            newest.max((out.pos.index, out.pos.offset))
        }));
    }
    let mut newest = (0, 0);
    for s in syncers {
        newest = newest.max(s.await.expect("syncer"));
    }
    writer.join().expect("writer thread");
    let state = db.state().pos.expect("published position");
    assert_eq!(
        key(&state),
        newest,
        "the state holds the newest position returned"
    );
    stop.send(()).expect("watcher running");
    let seen = watcher.await.expect("watcher");
    assert!(
        seen.len() > 1,
        "the watcher saw the state change: {seen:?} newest {newest:?}"
    );
    for pair in seen.windows(2) {
        assert!(pair[0] <= pair[1], "state stepped back: {pair:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// snapshots and cleanup

#[tokio::test]
async fn a_snapshot_guard_blocks_checkpoints_until_dropped() {
    let (f, _, db, _) = started(|c| c.min_checkpoint_page_count = 4).await;
    let guard = db.begin_snapshot().await.expect("snapshot");
    assert_eq!(db.state().pos.as_ref(), Some(&guard.pos));
    let mut head = [0u8; 16];
    std::os::unix::fs::FileExt::read_exact_at(&**guard.file, &mut head, 0).expect("read db header");
    assert_eq!(&head, b"SQLite format 3\0");
    assert_eq!(guard.size, fs::metadata(&f.path).expect("stat").len());

    f.app.insert(20, 1000);
    let held = db.sync().await.expect("sync under guard");
    assert_eq!(held.checkpoint, None);
    assert_eq!(held.pos.index, guard.pos.index);
    drop(guard);
    let freed = db.sync().await.expect("sync after guard");
    assert_eq!(freed.checkpoint, Some(CheckpointMode::Passive));
    assert_eq!(freed.pos.index, held.pos.index + 1);
}

fn replica(name: &str, dir: &Path) -> ReplicaConfig {
    ReplicaConfig {
        name: name.to_string(),
        target: ReplicaTarget::File {
            path: dir.join(name),
        },
        retention: Duration::from_secs(86400),
        retention_check_interval: Duration::from_secs(3600),
        sync_interval: Duration::from_secs(1),
        snapshot_interval: Duration::ZERO,
        validation_interval: Duration::ZERO,
        age: AgeConfig::default(),
        layout: None,
        snapshot_tiers: None,
    }
}

fn shadow_indices(db: &Db, generation: &str) -> Vec<u32> {
    let dir = db.shadow_wal_path(generation, 0).with_file_name("");
    let mut v: Vec<u32> = fs::read_dir(&dir)
        .expect("list shadow dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            u32::from_str_radix(name.strip_suffix(".wal")?, 16).ok()
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn shadow_files_are_removed_below_the_lowest_replica_floor_minus_one() {
    let (f, _, db, mut pos) = started(|c| {
        c.min_checkpoint_page_count = 2;
        let dir = c.path.parent().expect("db dir").to_path_buf();
        c.replicas = vec![replica("a", &dir), replica("b", &dir)];
    })
    .await;
    while pos.index < 6 {
        f.app.insert(3, 1000);
        pos = db.sync().await.expect("sync").pos;
    }
    let all = shadow_indices(&db, &pos.generation);
    assert_eq!(all, (0..=pos.index).collect::<Vec<_>>());

    db.set_replica_floor("a", 5);
    db.sync().await.expect("sync");
    assert_eq!(
        shadow_indices(&db, &pos.generation),
        all,
        "replica b has not reported yet"
    );
    db.set_replica_floor("b", 3);
    let now = db.sync().await.expect("sync").pos;
    assert_eq!(
        shadow_indices(&db, &now.generation),
        (2..=now.index).collect::<Vec<_>>()
    );
    db.set_replica_floor("b", 40);
    db.sync().await.expect("sync");
    assert_eq!(
        shadow_indices(&db, &now.generation)[0],
        2,
        "a floor beyond the index is ignored"
    );
}

// ---------------------------------------------------------------------------------------------
// generations

#[tokio::test]
async fn restart_on_an_intact_meta_dir_continues_the_generation() {
    let (f, cfg, db, _) = started(|_| {}).await;
    f.app.insert(2, 500);
    let before = db.sync().await.expect("sync").pos;
    assert!(db.is_open());
    db.close().await.expect("close");
    assert!(!db.is_open());
    assert!(wal_path(&f.path).exists(), "-wal left in place");
    f.app.insert(4, 500);

    let again = opened(&cfg).await;
    let out = again.sync().await.expect("sync after restart");
    assert_eq!(out.new_generation, None);
    assert_eq!(out.pos.generation, before.generation);
    assert_eq!(out.pos.index, before.index);
    assert!(out.pos.offset > before.offset);
    assert_shadow_is_wal_prefix(&again, &out.pos);
}

/// Opens, syncs two transactions, closes the app and walstream (walstream last, so the WAL
/// stays), and returns the config and the last position.
async fn stopped_with_shadow() -> (tempfile::TempDir, DbConfig, Pos) {
    let f = fixture();
    let cfg = db_config(&f.path);
    let db = opened(&cfg).await;
    db.sync().await.expect("sync");
    f.app.insert(4, 1000);
    let pos = db.sync().await.expect("sync").pos;
    drop(f.app);
    db.close().await.expect("close");
    (f._dir, cfg, pos)
}

async fn reason_after_restart(cfg: &DbConfig) -> (Option<&'static str>, Pos) {
    let db = opened(cfg).await;
    let out = db.sync().await.expect("sync");
    assert_shadow_is_wal_prefix(&db, &out.pos);
    (out.new_generation, out.pos)
}

#[tokio::test]
async fn wal_truncated_while_stopped_is_detected() {
    let (_dir, cfg, old) = stopped_with_shadow().await;
    let wal = fs::OpenOptions::new()
        .write(true)
        .open(wal_path(&cfg.path))
        .expect("open wal");
    wal.set_len(32 + frame_size(4096)).expect("truncate wal");
    let (why, pos) = reason_after_restart(&cfg).await;
    assert_eq!(why, Some(reason::WAL_TRUNCATED));
    assert_ne!(pos.generation, old.generation);
}

#[tokio::test]
async fn wal_overwritten_while_stopped_is_detected() {
    let (_dir, cfg, old) = stopped_with_shadow().await;
    let mut wal = read(&wal_path(&cfg.path));
    wal[old.offset as usize - 100] ^= 0xff;
    fs::write(wal_path(&cfg.path), &wal).expect("rewrite wal");
    let (why, pos) = reason_after_restart(&cfg).await;
    assert_eq!(why, Some(reason::WAL_OVERWRITTEN));
    assert_ne!(pos.generation, old.generation);
}

#[tokio::test]
async fn wal_deleted_while_stopped_clears_the_generation() {
    let (_dir, cfg, old) = stopped_with_shadow().await;
    fs::remove_file(wal_path(&cfg.path)).expect("delete wal");
    let (why, pos) = reason_after_restart(&cfg).await;
    assert_eq!(why, Some(reason::NO_GENERATION));
    assert_ne!(pos.generation, old.generation);
    let generations: Vec<_> = fs::read_dir(cfg.meta_path.join("generations"))
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        generations,
        [pos.generation],
        "the old generation directory is gone"
    );
}

/// Log lines of every test in this binary (one global subscriber, installed once).
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captured log lines mentioning `needle`.
fn log_lines(needle: &str) -> Vec<String> {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| LogSink)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("install log capture");
    });
    let text = String::from_utf8_lossy(&LOGS.lock().expect("log buffer")).into_owned();
    text.lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn generation_changes_are_logged_with_generation_and_reason() {
    log_lines("install");
    let (_dir, cfg, old) = stopped_with_shadow().await;
    let db_label = cfg.path.display().to_string();
    let first: Vec<_> = log_lines(&db_label);
    let created = first
        .iter()
        .find(|l| l.contains("sync: new generation"))
        .expect("new generation logged");
    assert!(created.contains(" INFO "), "{created}");
    assert!(
        created.contains(&format!("generation={}", old.generation)),
        "{created}"
    );
    assert!(
        created.contains("reason=\"no generation exists\""),
        "{created}"
    );

    fs::remove_file(wal_path(&cfg.path)).expect("delete wal");
    reason_after_restart(&cfg).await;
    let lines = log_lines(&db_label);
    let warned = lines
        .iter()
        .find(|l| l.contains("init: cannot determine last wal position, clearing generation"))
        .expect("cleared generation logged");
    assert!(warned.contains(" WARN "), "{warned}");
    // SQLite recreates an empty -wal when walstream attaches (spec §3.2 observed message).
    assert!(warned.contains("error=primary wal header: EOF"), "{warned}");
}

/// Damages the meta dir of an attached database and checks the reason of the next sync.
async fn reason_after(damage: impl FnOnce(&Db, &Pos)) -> Option<&'static str> {
    let f = fixture();
    f.app.insert(2, 1000);
    let db = opened(&db_config(&f.path)).await;
    let pos = db.sync().await.expect("sync").pos;
    damage(&db, &pos);
    let out = db.sync().await.expect("sync");
    assert_ne!(
        out.pos.generation, pos.generation,
        "a new generation started"
    );
    assert_eq!(out.pos.index, 0);
    assert_shadow_is_wal_prefix(&db, &out.pos);
    out.new_generation
}

#[tokio::test]
async fn each_damaged_shadow_state_has_its_reason() {
    let no_shadow = reason_after(|db, p| {
        fs::remove_file(db.shadow_wal_path(&p.generation, p.index)).expect("remove")
    });
    assert_eq!(no_shadow.await, Some(reason::NO_SHADOW_WAL));

    let short = reason_after(|db, p| {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(db.shadow_wal_path(&p.generation, p.index))
            .expect("open shadow");
        f.set_len(20).expect("truncate shadow");
    });
    assert_eq!(short.await, Some(reason::SHORT_SHADOW_WAL));

    let header_only = reason_after(|db, p| {
        let other = WalHeader::new(false, 4096, 0, (1, 2)).encode();
        fs::write(db.shadow_wal_path(&p.generation, p.index), other).expect("write")
    });
    assert_eq!(header_only.await, Some(reason::HEADER_ONLY_MISMATCH));

    let max = reason_after(|db, p| {
        fs::write(db.shadow_wal_path(&p.generation, 0x7fff_ffff), b"").expect("write")
    });
    assert_eq!(max.await, Some(reason::MAX_INDEX));

    let no_file = reason_after(|db, _| {
        fs::remove_file(db.meta_path().join("generation")).expect("remove generation file")
    });
    assert_eq!(no_file.await, Some(reason::NO_GENERATION));
}

// ---------------------------------------------------------------------------------------------
// watching

#[tokio::test]
async fn a_commit_wakes_the_watcher() {
    let f = fixture();
    let db = opened(&db_config(&f.path)).await;
    let first = db.sync().await.expect("sync").pos;
    let hub = walstream::db::WatchHub::new();
    let mut changes = db.watch_changes(&hub);
    f.app.insert(1, 10);
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .expect("a commit is reported by the watcher");
    let out = db.sync().await.expect("sync");
    assert!(out.pos.offset > first.offset);
}

// ---------------------------------------------------------------------------------------------
// hand-over from the real Litestream v0.3.13

/// Runs the real Litestream on `yaml`, logging to `log`.
fn start_litestream(yaml: &Path, log: &Path) -> common::Proc {
    common::Proc::litestream_config(&common::litestream_bin(), yaml, &[], log)
}

/// Waits until the newest shadow WAL of the current generation covers the whole real WAL;
/// returns (generation file content, newest shadow path, its length).
fn shadow_caught_up(cfg: &DbConfig) -> (String, PathBuf, u64) {
    common::poll_until(Duration::from_secs(60), "shadow WAL to catch up", || {
        let generation = fs::read_to_string(cfg.meta_path.join("generation")).ok()?;
        let dir = cfg
            .meta_path
            .join("generations")
            .join(generation.trim())
            .join("wal");
        let newest = fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).max()?;
        let len = fs::metadata(&newest).ok()?.len();
        let wal = fs::metadata(wal_path(&cfg.path)).ok()?.len();
        (len == align(wal, 4096) && len > 32).then_some((generation, newest, len))
    })
}

/// Litestream → walstream → Litestream on one database: each continues the other's generation,
/// index and offset.
#[tokio::test]
async fn hands_over_the_generation_with_litestream_both_ways() {
    let f = fixture();
    let cfg = db_config(&f.path);
    let yaml = f._dir.path().join("litestream.yml");
    let config = format!(
        "dbs:\n  - path: {}\n    replicas:\n      - path: {}\n",
        f.path.display(),
        f._dir.path().join("replica").display()
    );
    fs::write(&yaml, config).expect("write config");
    let log = f._dir.path().join("litestream.log");
    let child = start_litestream(&yaml, &log);
    shadow_caught_up(&cfg);
    f.app.insert(3, 700);
    let (generation, newest, len) = shadow_caught_up(&cfg);
    child.terminate();

    let db = opened(&cfg).await;
    let out = db.sync().await.expect("sync after hand-over");
    assert_eq!(
        out.new_generation, None,
        "Litestream's generation is continued"
    );
    assert_eq!(format!("{}\n", out.pos.generation), generation);
    assert_eq!(
        db.shadow_wal_path(&out.pos.generation, out.pos.index),
        newest
    );
    assert_eq!(out.pos.offset, len);
    f.app.insert(2, 700);
    let ours = db.sync().await.expect("sync").pos;
    assert_eq!(
        (ours.generation.as_str(), ours.index),
        (out.pos.generation.as_str(), out.pos.index)
    );
    assert!(ours.offset > out.pos.offset);
    assert_shadow_is_wal_prefix(&db, &ours);
    db.close().await.expect("close");

    let back = f._dir.path().join("litestream-again.log");
    let child = start_litestream(&yaml, &back);
    f.app.insert(2, 700);
    let (again, newest, len) = shadow_caught_up(&cfg);
    child.terminate();
    assert_eq!(
        again, generation,
        "Litestream continued walstream's generation"
    );
    assert_eq!(newest, db.shadow_wal_path(&ours.generation, ours.index));
    assert!(len > ours.offset);
    let text = fs::read_to_string(&back).expect("litestream log");
    assert!(!text.contains("new generation"), "{text}");
}
