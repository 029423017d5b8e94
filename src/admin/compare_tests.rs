//! Tests of [`super`]: known differences between two real SQLite files (a row changed, added
//! and removed, a table added, a `WITHOUT ROWID` table, a table whose definition changed),
//! paging, and identical files.

use super::*;
use std::path::PathBuf;
use tempfile::TempDir;

fn db(dir: &TempDir, name: &str, sql: &str) -> PathBuf {
    let path = dir.path().join(name);
    let c = Connection::open(&path).unwrap();
    c.execute_batch(sql).unwrap();
    path
}

const BASE: &str = "
    CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n REAL);
    INSERT INTO t VALUES (1,'one',1.5),(2,'two',2.5),(3,'three',NULL),(4,'four',4.0),(5,'five',5.0);
    CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
    INSERT INTO kv VALUES ('a', x'01'), ('b', x'02');
    CREATE TABLE w(x);
    INSERT INTO w VALUES (1), (2);
    CREATE TABLE _litestream_seq(id INTEGER PRIMARY KEY, seq INTEGER);
";

fn pair() -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new().unwrap();
    let a = db(&dir, "a.db", BASE);
    let b = db(
        &dir,
        "b.db",
        &format!(
            "{BASE}
            UPDATE t SET v = 'TWO' WHERE id = 2;
            UPDATE t SET n = 3.5 WHERE id = 3;
            DELETE FROM t WHERE id = 5;
            INSERT INTO t VALUES (6, 'six', 6.0);
            UPDATE kv SET v = x'ff' WHERE k = 'b';
            INSERT INTO kv VALUES ('c', NULL);
            DROP TABLE w;
            CREATE TABLE w(x, y);
            INSERT INTO w VALUES (1, 1);
            CREATE TABLE added(id INTEGER PRIMARY KEY);
            CREATE INDEX t_v ON t(v);
            INSERT INTO _litestream_seq VALUES (1, 99);"
        ),
    );
    (dir, a, b)
}

fn page(limit: usize, offset: u64) -> Page {
    Page {
        table: None,
        offset,
        limit,
    }
}

fn table<'c>(c: &'c Comparison, name: &str) -> &'c TableDiff {
    c.tables.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn known_differences_are_found() {
    let (_dir, a, b) = pair();
    let c = compare(Side::Backup(&a), Side::Backup(&b), &page(100, 0)).unwrap();
    assert!(!c.identical);
    let names = |v: &[SchemaObject]| -> Vec<String> {
        v.iter().map(|o| format!("{} {}", o.kind, o.name)).collect()
    };
    assert_eq!(names(&c.schema.added), ["index t_v", "table added"]);
    assert!(c.schema.removed.is_empty());
    assert_eq!(c.schema.changed.len(), 1);
    assert_eq!(c.schema.changed[0].name, "w");

    let t = table(&c, "t");
    assert!(t.compared);
    assert_eq!((t.rows_a, t.rows_b), (Some(5), Some(5)));
    assert_eq!((t.added, t.removed, t.changed), (1, 1, 2));
    assert_eq!(t.key, ["rowid"]);
    let kv = table(&c, "kv");
    assert_eq!((kv.added, kv.removed, kv.changed), (1, 0, 1));
    assert_eq!(kv.key, ["k"]);
    let w = table(&c, "w");
    assert!(!w.compared);
    assert_eq!((w.rows_a, w.rows_b), (Some(2), Some(1)));
    assert!(w.note.as_deref().unwrap().contains("definition differs"));
    let added = table(&c, "added");
    assert_eq!((added.rows_a, added.rows_b), (None, Some(0)));
    assert!(c.tables.iter().all(|t| !t.name.starts_with("_litestream")));

    // Rows: kv (added c, changed b), then t (removed 5, added 6, changed 2 and 3).
    let shown: Vec<String> = c
        .rows
        .iter()
        .map(|r| format!("{} {} {}", r.table, r.change, r.key[0]))
        .collect();
    assert_eq!(
        shown,
        [
            "kv added \"c\"",
            "kv changed \"b\"",
            "t removed 5",
            "t added 6",
            "t changed 2",
            "t changed 3"
        ]
    );
    let changed2 = &c.rows[4];
    assert_eq!(changed2.a.as_ref().unwrap()[1], json!("two"));
    assert_eq!(changed2.b.as_ref().unwrap()[1], json!("TWO"));
    assert!(c.rows[2].b.is_none() && c.rows[3].a.is_none());
    assert_eq!(
        c.rows[1].b.as_ref().unwrap()[1],
        json!({"blob": "ff", "bytes": 1})
    );
    assert_eq!(c.next_offset, None);
}

#[test]
fn pages_walk_every_change_once() {
    let (_dir, a, b) = pair();
    let all = compare(Side::Backup(&a), Side::Backup(&b), &page(1000, 0)).unwrap();
    let key = |r: &RowChange| format!("{} {} {}", r.table, r.change, r.key[0]);
    let mut walked = Vec::new();
    let mut offset = 0;
    loop {
        let c = compare(Side::Backup(&a), Side::Backup(&b), &page(4, offset)).unwrap();
        assert!(c.rows.len() <= 4);
        walked.extend(c.rows.iter().map(key));
        match c.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(walked, all.rows.iter().map(key).collect::<Vec<_>>());
    let only_t = Page {
        table: Some("t".into()),
        offset: 1,
        limit: 2,
    };
    let c = compare(Side::Backup(&a), Side::Backup(&b), &only_t).unwrap();
    let got: Vec<String> = c.rows.iter().map(key).collect();
    assert_eq!(got, ["t added 6", "t changed 2"]);
    assert_eq!(c.next_offset, Some(3));
}

#[test]
fn a_file_equals_itself_and_nothing_is_written() {
    let (_dir, a, _) = pair();
    let before = std::fs::read(&a).unwrap();
    let c = compare(Side::Backup(&a), Side::Live(&a), &page(10, 0)).unwrap();
    assert!(c.identical, "{c:?}");
    assert!(c.rows.is_empty());
    assert_eq!(std::fs::read(&a).unwrap(), before);
}

#[test]
fn a_missing_file_and_bad_pages_are_errors() {
    let (dir, a, _) = pair();
    let missing = dir.path().join("missing.db");
    let e = compare(Side::Backup(&a), Side::Backup(&missing), &page(10, 0)).unwrap_err();
    assert!(e.to_string().contains("missing.db"), "{e}");
    assert!(Page::new(None, None, Some("0")).is_err());
    assert!(Page::new(None, None, Some("1001")).is_err());
    assert!(Page::new(None, Some("-1"), None).is_err());
    assert!(Page::new(Some(String::new()), None, None).is_err());
    assert_eq!(Page::new(None, None, None).unwrap().limit, DEFAULT_LIMIT);
    assert_eq!(Source::parse("live").unwrap(), Source::Live);
    assert!(Source::parse("../etc/passwd").is_err());
}
