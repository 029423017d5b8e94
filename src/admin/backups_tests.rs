//! Unit tests of the backups folder: online copy content, records, newest-first listing,
//! per-kind retention, deletion, id validation; and the live-restore copy into an open database.

use super::*;
use crate::admin::live_restore::{copy_into_live, prepare_target};
use rusqlite::Connection;

fn app(dir: &Path) -> (PathBuf, Connection) {
    let path = dir.join("app.db");
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = wal; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t (v) VALUES ('a'), ('b');",
    )
    .expect("setup");
    (path, conn)
}

fn store(db: &Path, retain: usize, pre: usize) -> BackupStore {
    let mut cfg = BackupsConfig::for_db(db);
    cfg.retain = retain;
    cfg.pre_restore_retain = pre;
    BackupStore::new(db, &cfg)
}

fn manual(name: Option<&str>) -> NewBackup<'_> {
    NewBackup {
        kind: BackupKind::Manual,
        name,
        description: None,
        source: None,
    }
}

fn count(path: &Path) -> i64 {
    let c = Connection::open(path).expect("open");
    c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn create_records_a_consistent_copy_with_its_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _app) = app(dir.path());
    let s = store(&db, 10, 5);
    let r = s.create(manual(Some("first"))).expect("create");
    assert_eq!(r.name, "first");
    assert_eq!(r.kind, BackupKind::Manual);
    assert_eq!(s.dir(), dir.path().join("backups").join("app.db"));
    let data = s.data_path(&r.id);
    let (size, sha) = hash_reader(File::open(&data).expect("open"), &data).expect("hash");
    assert_eq!((size, sha.as_str()), (r.size, r.sha256.as_str()));
    assert_eq!(count(&data), 2);
    let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&data), mode(&db));
    let listed = s.list().expect("list");
    assert_eq!(listed, vec![r.clone()]);
    // Nothing but the copy and its record is left in the folder.
    let mut names: Vec<String> = fs::read_dir(s.dir())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [format!("{}.db", r.id), format!("{}.json", r.id)]);
}

#[test]
fn retention_is_per_kind_and_keeps_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _app) = app(dir.path());
    let s = store(&db, 2, 1);
    let pre = |s: &BackupStore| {
        s.create(NewBackup {
            kind: BackupKind::PreRestore,
            name: None,
            description: Some("x"),
            source: None,
        })
        .expect("pre")
    };
    let p1 = pre(&s);
    let m: Vec<_> = (0..4).map(|_| s.create(manual(None)).expect("m")).collect();
    let listed = s.list().expect("list");
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&m[3].id.as_str()) && ids.contains(&m[2].id.as_str()));
    assert!(
        ids.contains(&p1.id.as_str()),
        "manual retention kept the pre-restore one"
    );
    let p2 = pre(&s);
    let kinds: Vec<_> = s.list().expect("list").into_iter().map(|r| r.id).collect();
    assert!(kinds.contains(&p2.id) && !kinds.contains(&p1.id));
    assert_eq!(kinds.len(), 3);
}

#[test]
fn get_and_delete_validate_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _app) = app(dir.path());
    let s = store(&db, 10, 5);
    let r = s.create(manual(None)).expect("create");
    assert_eq!(r.name, r.id);
    for bad in ["..", "../app", "a/b", ""] {
        assert!(
            matches!(s.get(bad), Err(AdminError::Invalid { .. })),
            "{bad}"
        );
        assert!(
            matches!(s.delete(bad), Err(AdminError::Invalid { .. })),
            "{bad}"
        );
    }
    assert!(matches!(s.get("nope"), Err(AdminError::NotFound { .. })));
    s.delete(&r.id).expect("delete");
    assert!(s.list().expect("list").is_empty());
    assert!(!s.data_path(&r.id).exists());
    assert!(matches!(s.delete(&r.id), Err(AdminError::NotFound { .. })));
}

#[test]
fn copy_into_live_keeps_other_connections_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, app) = app(dir.path());
    let s = store(&db, 10, 5);
    let r = s.create(manual(None)).expect("create");
    app.execute_batch("INSERT INTO t (v) VALUES ('c'); CREATE TABLE later (x);")
        .expect("more");
    let target = dir.path().join("target.db");
    fs::copy(s.data_path(&r.id), &target).expect("copy");
    prepare_target(&target, &db).expect("prepare");
    copy_into_live(&target, &db).expect("copy into live");
    // The application's connection, opened before, sees the restored content.
    let n: i64 = app
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 2);
    assert!(app.execute_batch("SELECT * FROM later").is_err());
    app.execute_batch("INSERT INTO t (v) VALUES ('d')")
        .expect("write after");
    let seq: i64 = app
        .query_row("SELECT COUNT(*) FROM _litestream_seq", [], |r| r.get(0))
        .expect("walstream table added");
    assert_eq!(seq, 0);
}
