use std::path::Path;

use rusqlite::Connection;

use super::*;

/// A WAL-mode database with `rows` rows of ~500 bytes in `t` (about 8 rows a page).
fn db(path: &Path, rows: i64) -> Connection {
    let c = Connection::open(path).expect("open");
    c.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
    )
    .expect("schema");
    fill(&c, 1, rows);
    c
}

fn fill(c: &Connection, from: i64, to: i64) {
    c.execute(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO t(id, v) SELECT i, randomblob(500) FROM n",
        [from, to],
    )
    .expect("fill");
}

fn pages(c: &Connection) -> Vec<(u32, Vec<u8>)> {
    let mut s = c
        .prepare("SELECT pgno, data FROM sqlite_dbpage WHERE pgno > 1")
        .expect("prepare");
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("pages")
}

fn rows(c: &Connection) -> Vec<(i64, Vec<u8>)> {
    let mut s = c
        .prepare("SELECT id, v FROM t ORDER BY id")
        .expect("prepare");
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Target = a copy of live taken now (a checkpointed file copy); then `change` runs on live.
fn pair(dir: &Path, n: i64, change: impl FnOnce(&Connection)) -> (Connection, Connection) {
    let live_path = dir.join("live.db");
    let live = db(&live_path, n);
    live.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let target_path = dir.join("target.db");
    std::fs::copy(&live_path, &target_path).expect("copy");
    change(&live);
    let target = Connection::open(&target_path).expect("open target");
    (live, target)
}

/// The copy as `copy_into_live` makes it: on a connection of its own, discarded afterwards
/// (its b-tree keeps a parse of pages it wrote raw).
fn copy(dir: &Path, target: &Connection) -> Result<Option<PageCopy>, AdminError> {
    copy_between(dir, target, || {})
}

fn copy_between(
    dir: &Path,
    target: &Connection,
    between: impl FnOnce(),
) -> Result<Option<PageCopy>, AdminError> {
    let path = dir.join("live.db");
    let writer = Connection::open(&path).expect("writer");
    copy_with(target, &writer, &path, between)
}

fn assert_equal(live: &Connection, target: &Connection) {
    assert_eq!(rows(live), rows(target), "rows differ after the copy");
    assert_eq!(
        pages(live),
        pages(target),
        "pages 2.. differ after the copy"
    );
    let ok: String = live
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
}

#[test]
fn this_build_has_sqlite_dbpage() {
    // .cargo/config.toml enables it; without it every live restore copies the whole file.
    let c = Connection::open_in_memory().expect("open");
    assert!(
        has_dbpage(&c),
        "sqlite_dbpage missing: is .cargo/config.toml's LIBSQLITE3_FLAGS set?"
    );
}

#[test]
fn writes_only_the_pages_that_differ() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, target) = pair(dir.path(), 4000, |c| {
        c.execute(
            "UPDATE t SET v = randomblob(500) WHERE id IN (10, 2000, 3990)",
            [],
        )
        .expect("update");
    });
    let app = Connection::open(dir.path().join("live.db")).expect("app connection");
    let before: i64 = app
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("read");
    let done = copy(dir.path(), &target)
        .expect("copy")
        .expect("page copy available");
    assert_eq!(done.recheck, Recheck::Nothing);
    assert!(done.pages > 400, "{done:?}");
    // Three rows changed: their leaf pages (and perhaps a parent), plus page 1.
    assert!(done.written >= 4 && done.written <= 8, "{done:?}");
    assert_equal(&live, &target);
    let after: i64 = app
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("read");
    assert_eq!((before, after), (4000, 4000));
    assert_eq!(
        rows(&app),
        rows(&target),
        "an open connection sees the restored rows"
    );
}

#[test]
fn shrinks_and_grows_the_live_database_to_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, target) = pair(dir.path(), 1000, |c| fill(c, 1001, 3000));
    let done = copy(dir.path(), &target).expect("copy").expect("page copy");
    let count = |c: &Connection| -> i64 {
        c.query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(count(&live), count(&target), "{done:?}");
    assert_equal(&live, &target);

    let dir = tempfile::tempdir().expect("tempdir");
    let (live, target) = pair(dir.path(), 1000, |c| {
        c.execute("DELETE FROM t WHERE id > 500", [])
            .expect("delete");
        c.execute_batch("VACUUM").expect("vacuum");
    });
    // The target (1000 rows) is now the larger one.
    copy(dir.path(), &target).expect("copy").expect("page copy");
    assert_eq!(count(&live), count(&target));
    assert_equal(&live, &target);
}

/// 2,000 rows, row 5 changed since the target was taken, and an application connection.
fn one_row_changed(dir: &Path) -> (Connection, Connection, Connection) {
    let (live, target) = pair(dir, 2000, |c| {
        c.execute("UPDATE t SET v = randomblob(500) WHERE id = 5", [])
            .expect("update");
    });
    let app = Connection::open(dir.join("live.db")).expect("app connection");
    (live, target, app)
}

#[test]
fn a_commit_during_the_first_comparison_is_caught_under_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, target, app) = one_row_changed(dir.path());
    let done = copy_between(dir.path(), &target, || {
        // Pages the first comparison found equal change now.
        app.execute(
            "UPDATE t SET v = randomblob(500) WHERE id IN (1500, 1900)",
            [],
        )
        .expect("app commit");
    })
    .expect("copy")
    .expect("page copy");
    // The two rows' leaf pages (and their parent), found in the WAL.
    assert!(matches!(done.recheck, Recheck::WalPages(1..=4)), "{done:?}");
    assert_equal(&live, &target);
    assert_eq!(rows(&app), rows(&target));
}

#[test]
fn a_wal_restarted_during_the_first_comparison_means_comparing_everything_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, target, app) = one_row_changed(dir.path());
    let done = copy_between(dir.path(), &target, || {
        app.execute("UPDATE t SET v = randomblob(500) WHERE id = 1500", [])
            .expect("app commit");
        app.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("truncate");
        // The next commit starts a new WAL (new salts): the first one's frames are gone.
        app.execute("UPDATE t SET v = randomblob(500) WHERE id = 1900", [])
            .expect("app commit");
    })
    .expect("copy")
    .expect("page copy");
    assert_eq!(done.recheck, Recheck::Everything, "{done:?}");
    assert_equal(&live, &target);
}

#[test]
fn a_schema_change_is_seen_by_open_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_live, target) = pair(dir.path(), 100, |c| {
        c.execute_batch("CREATE TABLE later(x); INSERT INTO later VALUES (1);")
            .expect("later");
    });
    let app = Connection::open(dir.path().join("live.db")).expect("app connection");
    app.execute_batch("SELECT * FROM later")
        .expect("app knows the table");
    copy(dir.path(), &target).expect("copy").expect("page copy");
    assert!(
        app.execute_batch("SELECT * FROM later").is_err(),
        "stale schema used"
    );
    app.execute("INSERT INTO t(id, v) VALUES (5000, x'00')", [])
        .expect("write after");
}

#[test]
fn readers_see_the_old_or_the_new_content_never_a_mix() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Every row changes (new values), so nearly every page is written.
    let (live, target) = pair(dir.path(), 3000, |c| {
        c.execute("UPDATE t SET v = zeroblob(500)", [])
            .expect("update");
    });
    let path = dir.path().join("live.db");
    let old = rows(&live);
    let new = rows(&target);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, path, new) = (stop.clone(), path.clone(), new.clone());
        std::thread::spawn(move || {
            let c = Connection::open(&path).expect("reader");
            let mut seen = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = rows(&c);
                if r == old {
                    seen.0 += 1;
                } else if r == new {
                    seen.1 += 1;
                } else {
                    panic!("a reader saw a mix of old and new rows");
                }
            }
            seen
        })
    };
    copy(dir.path(), &target).expect("copy").expect("page copy");
    let c = Connection::open(&path).expect("after");
    assert_eq!(rows(&c), new);
    // Let the reader see the new content at least once before it stops.
    while rows(&c) != new {}
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (saw_old, saw_new) = reader.join().expect("reader thread");
    assert!(
        saw_new > 0,
        "the reader never read after the copy ({saw_old} before)"
    );
}

#[test]
fn a_database_not_in_wal_mode_is_left_to_the_backup_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, target) = pair(dir.path(), 10, |_| {});
    live.execute_batch("PRAGMA journal_mode = DELETE")
        .expect("delete mode");
    let before = pages(&live);
    assert_eq!(copy(dir.path(), &target).expect("copy"), None);
    assert_eq!(pages(&live), before, "nothing may change");
}
