//! Unit tests of the backups folder: online copy content, records, newest-first listing,
//! per-kind retention, deletion, id validation, labels, the copy's metadata, list filters and
//! old records; and the live-restore copy into an open database.

use super::*;
use crate::admin::live_restore::{copy_into_live, prepare_target};
use rusqlite::Connection;
use std::collections::BTreeMap;

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
        labels: BTreeMap::new(),
        created_by: CreatedBy::Cli,
    }
}

fn labelled(pairs: &[(&str, &str)]) -> NewBackup<'static> {
    NewBackup {
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..manual(None)
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
            labels: BTreeMap::new(),
            created_by: CreatedBy::Restore,
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

#[test]
fn labels_are_validated_and_named_in_errors() {
    use crate::admin::names::{check_label, parse_label, parse_labels};
    for key in ["env", "a", "app.kubernetes.io_name-2", &"k".repeat(63)] {
        check_label(key, "v").unwrap_or_else(|e| panic!("refused {key:?}: {e}"));
    }
    for key in ["", "Env", "a b", "a/b", "a=b", "ü", &"k".repeat(64)] {
        let e = check_label(key, "v").expect_err(key).to_string();
        assert!(
            e.starts_with("invalid label: key ") && e.contains("must be"),
            "{e}"
        );
    }
    check_label("k", "").expect("empty value");
    check_label("k", &"é".repeat(128)).expect("256 bytes");
    let e = check_label("k", &"é".repeat(129)).expect_err("257 bytes");
    assert_eq!(
        e.to_string(),
        "invalid label: value of \"k\" is longer than 256 bytes"
    );
    let e = check_label("note", "a\nb").expect_err("newline");
    assert_eq!(
        e.to_string(),
        "invalid label: value of \"note\" must not contain control characters"
    );
    assert_eq!(
        parse_label("ticket=a=b").expect("parse"),
        ("ticket".to_string(), "a=b".to_string())
    );
    let e = parse_label("novalue").expect_err("no =");
    assert_eq!(
        e.to_string(),
        "invalid label: \"novalue\" must be key=value"
    );
    let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    assert!(parse_labels(&many[..32]).is_ok());
    let e = parse_labels(&many).expect_err("33 labels");
    assert!(e.to_string().contains("33 given, at most 32"), "{e}");
    // A bad label is refused before anything is written.
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _app) = app(dir.path());
    let s = store(&db, 10, 5);
    let r = s.create(labelled(&[("Bad Key", "x")]));
    assert!(matches!(r, Err(AdminError::Invalid { .. })), "{r:?}");
    assert!(!s.dir().exists() || s.list().expect("list").is_empty());
}

#[test]
fn create_records_labels_and_the_copys_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch(
        "PRAGMA page_size = 8192; PRAGMA user_version = 42;
         CREATE TABLE a (x);
         CREATE INDEX a_x ON a (x);
         CREATE TABLE b (k TEXT PRIMARY KEY, v);
         INSERT INTO a VALUES (1), (2);",
    )
    .expect("setup");
    let s = store(&path, 10, 5);
    let r = s
        .create(labelled(&[("env", "prod"), ("ticket", "OPS-1")]))
        .expect("create");
    assert_eq!(r.user_version, Some(42));
    assert_eq!(r.page_size, Some(8192));
    assert_eq!(r.page_count, Some(r.size / 8192));
    assert_eq!(r.created_by, Some(CreatedBy::Cli));
    assert_eq!(r.labels.get("env").map(String::as_str), Some("prod"));
    assert_eq!(r.labels.len(), 2);
    // The fingerprint, computed here from the known schema (ORDER BY type, name; the
    // primary key's automatic index has a NULL sql).
    let rows = [
        ["index", "a_x", "a", "CREATE INDEX a_x ON a (x)"],
        ["index", "sqlite_autoindex_b_1", "b", ""],
        ["table", "a", "a", "CREATE TABLE a (x)"],
        ["table", "b", "b", "CREATE TABLE b (k TEXT PRIMARY KEY, v)"],
    ];
    let mut text = Vec::new();
    for row in rows {
        for v in row {
            text.extend_from_slice(v.as_bytes());
            text.push(0);
        }
    }
    let (_, expected) = hash_reader(&text[..], &path).expect("hash");
    assert_eq!(r.schema_sha256.as_deref(), Some(expected.as_str()));
    // Read from the copy: changing the live database afterwards changes nothing recorded.
    conn.execute_batch("PRAGMA user_version = 7; CREATE TABLE later (y);")
        .expect("change");
    let listed = s.list().expect("list");
    assert_eq!(listed, vec![r.clone()]);
    let copy = Connection::open(s.data_path(&r.id)).expect("open copy");
    let again = copy_meta(&copy, &path).expect("meta of the copy");
    assert_eq!(again.schema_sha256, expected);
    let live = copy_meta(&conn, &path).expect("meta of the live db");
    assert_ne!(live.schema_sha256, expected);
    assert_eq!(live.user_version, 7);
    // The record on disk carries the new fields.
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(s.dir().join(format!("{}.json", r.id))).expect("read"))
            .expect("json");
    assert_eq!(json["labels"]["ticket"], "OPS-1");
    assert_eq!(json["created_by"], "cli");
    assert_eq!(json["user_version"], 42);
}

#[test]
fn filters_select_by_kind_and_every_label_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _app) = app(dir.path());
    let s = store(&db, 10, 5);
    let a = s
        .create(labelled(&[("env", "prod"), ("team", "x")]))
        .expect("a");
    let b = s.create(labelled(&[("env", "prod")])).expect("b");
    let c = s
        .create(labelled(&[("env", "dev"), ("team", "x")]))
        .expect("c");
    let pre = s
        .create(NewBackup {
            kind: BackupKind::PreRestore,
            created_by: CreatedBy::Restore,
            ..labelled(&[("env", "prod")])
        })
        .expect("pre");
    let ids = |f: BackupFilter| -> Vec<String> {
        s.list_filtered(&f)
            .expect("list")
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let (a, b, c, pre) = (a.id.as_str(), b.id.as_str(), c.id.as_str(), pre.id.as_str());
    let parse = |kind: Option<&str>, labels: &[&str], limit: Option<&str>| {
        BackupFilter::parse(kind, labels, limit).expect("filter")
    };
    assert_eq!(ids(parse(None, &[], None)), [pre, c, b, a]);
    assert_eq!(ids(parse(Some("manual"), &["env=prod"], None)), [b, a]);
    assert_eq!(ids(parse(None, &["env=prod", "team=x"], None)), [a]);
    assert_eq!(ids(parse(None, &["team=x"], Some("1"))), [c]);
    assert_eq!(ids(parse(Some("pre-restore"), &[], None)), [pre]);
    assert!(ids(parse(None, &["env=prod", "env=qa"], None)).is_empty());
    assert!(ids(parse(None, &["nope=1"], None)).is_empty());
    assert_eq!(ids(parse(None, &[], Some("1000"))).len(), 4);
    for (kind, limit, what) in [
        (Some("auto"), None, "invalid kind: \"auto\" must be"),
        (None, Some("0"), "invalid limit: \"0\" must be"),
        (None, Some("1001"), "invalid limit"),
        (None, Some("-1"), "invalid limit"),
        (None, Some("ten"), "invalid limit"),
    ] {
        let e = BackupFilter::parse::<&str>(kind, &[], limit).expect_err(what);
        assert!(e.to_string().starts_with(what), "{e}");
    }
    let e = BackupFilter::parse(None, &["Env=x"], None).expect_err("bad label");
    assert!(
        e.to_string().starts_with("invalid label: key \"Env\""),
        "{e}"
    );
}

#[test]
fn records_written_before_labels_and_metadata_still_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _app) = app(dir.path());
    let s = store(&db, 10, 5);
    let r = s.create(manual(Some("old"))).expect("create");
    let old = format!(
        r#"{{"id": "{}", "name": "old", "description": "", "kind": "manual",
            "created": "{}", "size": {}, "sha256": "{}", "source": null}}"#,
        r.id, r.created, r.size, r.sha256
    );
    fs::write(s.dir().join(format!("{}.json", r.id)), old).expect("rewrite");
    let (loaded, _) = s.get(&r.id).expect("old record loads");
    assert!(loaded.labels.is_empty());
    assert_eq!(
        (loaded.user_version, loaded.schema_sha256, loaded.page_count),
        (None, None, None)
    );
    assert_eq!((loaded.page_size, loaded.created_by), (None, None));
    assert_eq!(s.list().expect("list").len(), 1);
    let kept = BackupFilter::parse::<&str>(Some("manual"), &[], None).expect("filter");
    assert_eq!(s.list_filtered(&kept).expect("list").len(), 1);
    let labelled_only = BackupFilter::parse(None, &["env=prod"], None).expect("filter");
    assert!(s.list_filtered(&labelled_only).expect("list").is_empty());
}

#[test]
fn the_tally_follows_this_stores_changes_at_once_and_another_processs_on_refresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _app) = app(dir.path());
    let s = store(&db, 10, 5);
    s.refresh_tally().expect("refresh");
    let none = s
        .tally()
        .summary()
        .expect("listed: no folder is no backups");
    assert!(none.kinds.iter().all(|k| k.count == 0) && none.volume.is_none());
    let first = s.create(manual(None)).expect("create");
    let sum = s.tally().summary().expect("loaded");
    assert_eq!((sum.kinds[0].count, sum.kinds[0].bytes), (1, first.size));
    assert!(sum.volume.is_some_and(|v| v.total_bytes > 0));
    // Another store of the same folder (another process): seen at the next refresh.
    let other = store(&db, 10, 5);
    let second = other.create(manual(None)).expect("create");
    assert_eq!(s.tally().summary().expect("loaded").kinds[0].count, 1);
    s.refresh_tally().expect("refresh");
    let sum = s.tally().summary().expect("loaded");
    assert_eq!(
        (sum.kinds[0].count, sum.kinds[0].bytes),
        (2, first.size + second.size)
    );
    s.delete(&first.id).expect("delete");
    assert_eq!(s.tally().summary().expect("loaded").kinds[0].count, 1);
}

#[test]
fn time_range_keeps_backups_created_inside_it_both_ends_included() {
    let record = |created: &str| BackupRecord {
        id: created.into(),
        name: created.into(),
        description: String::new(),
        kind: BackupKind::Manual,
        created: created.into(),
        size: 1,
        sha256: String::new(),
        source: None,
        labels: Default::default(),
        user_version: None,
        schema_sha256: None,
        page_count: None,
        page_size: None,
        created_by: None,
        pinned: false,
    };
    let records = vec![
        record("2026-12-03T00:00:00.000Z"),
        record("2026-12-02T00:00:00.000Z"),
        record("2026-12-01T00:00:00.000Z"),
    ];
    let range = |since: Option<&str>, until: Option<&str>| -> Vec<String> {
        BackupFilter::default()
            .with_range(since, until)
            .expect("range")
            .apply(records.clone())
            .into_iter()
            .map(|r| r.created)
            .collect()
    };
    assert_eq!(
        range(Some("2026-12-02T00:00:00Z"), None),
        ["2026-12-03T00:00:00.000Z", "2026-12-02T00:00:00.000Z"]
    );
    assert_eq!(
        range(None, Some("2026-12-01T12:00:00+00:00")),
        ["2026-12-01T00:00:00.000Z"]
    );
    assert_eq!(
        range(Some("2026-12-02T00:00:00Z"), Some("2026-12-02T00:00:00Z")),
        ["2026-12-02T00:00:00.000Z"]
    );
    let e = BackupFilter::default()
        .with_range(Some("yesterday"), None)
        .expect_err("bad time");
    assert!(
        e.to_string().starts_with("invalid since: \"yesterday\""),
        "{e}"
    );
}
