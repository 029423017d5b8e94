//! Snapshot guards against an application that commits between the guard's sync tick and its
//! checkpoint (a hook runs the application's work at that moment): the database file read
//! through the guard, with the shadow frames up to `guard.pos` laid over it, must be the
//! database at `guard.pos` — here the live database, as the application is idle afterwards.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::{Db, SnapshotGuard};
use crate::config::DbConfig;

type Hook = Box<dyn FnOnce()>;

thread_local! {
    static HOOK: RefCell<Option<Hook>> = RefCell::new(None);
}

/// Runs (once) the hook set on this thread, right before a snapshot's checkpoint.
pub(super) fn before_checkpoint() {
    if let Some(hook) = HOOK.with(|h| h.borrow_mut().take()) {
        hook();
    }
}

/// Defaults, without the size and time rules: only the snapshot's own checkpoint runs.
fn config(db: &Path) -> DbConfig {
    let mut cfg = DbConfig::with_defaults(db);
    cfg.min_checkpoint_page_count = 1_000_000;
    cfg.checkpoint_interval = Duration::ZERO;
    cfg
}

fn app(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open app");
    conn.busy_timeout(Duration::from_secs(5)).expect("busy");
    conn.query_row("PRAGMA journal_mode = wal", [], |r| r.get::<_, String>(0))
        .expect("wal");
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
        .expect("no autocheckpoint");
    conn
}

fn rows(conn: &Connection, table: &str) -> Vec<(i64, Vec<u8>)> {
    let mut st = conn
        .prepare(&format!("SELECT id, v FROM {table} ORDER BY id"))
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The image a snapshot stores: the guarded file with the guard's shadow frames replayed.
fn image(db: &Db, guard: &SnapshotGuard, out: &Path) -> Connection {
    let mut bytes = vec![0u8; guard.size as usize];
    std::os::unix::fs::FileExt::read_exact_at(&**guard.file, &mut bytes, 0).expect("read db");
    std::fs::write(out, bytes).expect("write image");
    let shadow = std::fs::read(db.shadow_wal_path(&guard.pos.generation, guard.pos.index))
        .expect("read shadow");
    let mut wal: PathBuf = out.to_path_buf();
    wal.set_extension("db-wal");
    std::fs::write(&wal, &shadow[..guard.pos.offset as usize]).expect("write wal");
    let conn = Connection::open(out).expect("open image");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    conn
}

/// The application commits to a second table after the guard's tick, and one of its readers
/// pins a WAL frame between those commits, so the snapshot's checkpoint runs but cannot
/// complete (no WAL restart) after copying frames past the tick's position into the file.
#[test]
fn a_checkpoint_that_does_not_restart_moves_the_snapshot_to_where_it_left_the_shadow() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    let writer = app(&path);
    writer
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);
             CREATE TABLE u (id INTEGER PRIMARY KEY, v BLOB);",
        )
        .expect("tables");
    for _ in 0..50 {
        writer
            .execute("INSERT INTO t (v) VALUES (randomblob(300))", [])
            .expect("insert");
    }
    let db = Db::new(&config(&path));
    rt.block_on(db.open()).expect("open");
    rt.block_on(db.sync()).expect("first sync");

    let hook_path = path.clone();
    let pinned = std::sync::Arc::new(std::sync::Mutex::new(None::<Connection>));
    let keep = std::sync::Arc::clone(&pinned);
    HOOK.with(|h| {
        *h.borrow_mut() = Some(Box::new(move || {
            let app = app(&hook_path);
            for _ in 0..40 {
                app.execute("INSERT INTO u (v) VALUES (randomblob(500))", [])
                    .expect("insert u");
            }
            let reader = Connection::open(&hook_path).expect("open reader");
            reader.execute_batch("BEGIN").expect("begin");
            let _: i64 = reader
                .query_row("SELECT count(*) FROM u", [], |r| r.get(0))
                .expect("read");
            app.execute("UPDATE t SET v = randomblob(300) WHERE id % 2 = 0", [])
                .expect("update t");
            *keep.lock().expect("pin") = Some(reader);
        }));
    });
    // Taken on this thread (where the hook is set), as `Db::begin_snapshot` does on a
    // blocking thread.
    let guard = db
        .shared
        .begin_snapshot(&db.shared)
        .expect("snapshot guard");
    let live = (rows(&writer, "t"), rows(&writer, "u"));
    let img = image(&db, &guard, &dir.path().join("image.db"));
    let got = (rows(&img, "t"), rows(&img, "u"));
    assert_eq!(
        got.1.len(),
        40,
        "the commits after the tick are in the snapshot"
    );
    assert!(
        got == live,
        "the snapshot is the database where its position says"
    );
    drop(guard);
    drop(pinned);
}
