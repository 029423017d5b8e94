//! Directory replication on the real binary (`dir`, `pattern`, `recursive`, `watch`): databases
//! created, deleted and re-created, replaced by a rename, and written for the first time while
//! `walstream replicate` runs and writers commit to them.
//!
//! What must stay true: every discovered database replicates into the entry's replica path
//! plus its own path relative to `dir`, and restores to its own content, never another's (each
//! database's rows carry ids from its own range); a re-created or replaced database starts a new
//! generation and the old generation still restores the old content; files that do not match
//! the pattern, side files and files that are not SQLite (yet) are never replicated.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use common::Rows;
use http_support::{tempdir, walstream_restore};
use support::{DEADLINE, Writer, insert, open_app, poll_until, rows};

/// Generations stored for the database at `rel` under the replica root.
fn generations(replica: &Path, rel: &str) -> Vec<String> {
    support::list(&replica.join(rel).join("generations"))
}

/// Waits until the database at `rel` has `n` generations in the replica.
fn wait_generations(proc: &support::Proc, replica: &Path, rel: &str, n: usize) {
    let caught_up =
        common::poll::poll_within(support::DEADLINE, || generations(replica, rel).len() >= n);
    assert!(
        caught_up.is_some(),
        "timed out waiting for {n} generation(s) of {rel}; log:\n{}",
        proc.log_text()
    );
}

/// Restores the database at `rel` (latest, or one generation) and returns its rows.
fn restore(dir: &Path, replica: &Path, rel: &str, generation: Option<&str>) -> Vec<(i64, String)> {
    let url = format!("file://{}", replica.join(rel).display());
    let out = dir.join(format!(
        "restored-{}-{}.db",
        rel.replace('/', "_"),
        generation.unwrap_or("latest")
    ));
    let _ = fs::remove_file(&out);
    match generation {
        Some(g) => walstream_restore(&["-generation", g, &url], &[], &out),
        None => walstream_restore(&[&url], &[], &out),
    }
}

/// A database file with rows `first..first+n` folded into the main file (no `-wal`), ready to
/// be moved into place.
fn staged_database(path: &Path, first: i64, n: i64) -> Vec<(i64, String)> {
    let c = open_app(path);
    for id in first..first + n {
        insert(&c, id);
    }
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .expect("fold into one file");
    let r = rows(&c);
    drop(c);
    r
}

/// `walstream replicate` on a dir entry for `tenants` (pattern `*.db`, `extra` keys) replicating
/// to `replica` with a 100 ms sync interval.
fn start(dir: &Path, tenants: &Path, replica: &Path, extra: &str) -> support::Proc {
    let config = format!(
        "dbs:\n  - dir: \"{}\"\n    pattern: \"*.db\"\n    {extra}replicas:\n      \
         - url: \"file://{}\"\n        sync-interval: 100ms\n",
        tenants.display(),
        replica.display()
    );
    let cfg = dir.join("walstream.yml");
    fs::write(&cfg, config).expect("config");
    support::walstream(dir, &["-config", cfg.to_str().expect("utf-8")])
}

/// The rows of `db` once its writer stopped.
fn finished(w: Writer, db: &Path) -> Vec<(i64, String)> {
    w.finish();
    rows(&open_app(db))
}

fn all_ids_in(rows: &[(i64, String)], range: std::ops::Range<i64>) -> bool {
    rows.iter().all(|(id, _)| range.contains(id))
}

#[test]
fn databases_that_come_and_go_under_a_watched_dir_each_restore_to_their_own_content() {
    let (_tmp, dir) = tempdir();
    let (tenants, replica) = (dir.join("tenants"), dir.join("replica"));
    fs::create_dir_all(tenants.join("sub")).expect("mkdir");
    let db = |rel: &str| tenants.join(rel);
    // Present at start: two databases, a SQLite file the pattern excludes, an empty file.
    let wa = Writer::paced(&db("a.db"), 1000, std::time::Duration::from_millis(20));
    let wb = Writer::paced(&db("sub/b.db"), 2000, std::time::Duration::from_millis(20));
    poll_until(DEADLINE, "first commits", || {
        wa.last() >= 1000 && wb.last() >= 2000
    });
    drop(open_app(&db("notes.txt")));
    fs::write(db("empty.db"), b"").expect("empty file");
    let proc = start(
        &dir,
        &tenants,
        &replica,
        "recursive: true\n    watch: true\n    ",
    );
    wait_generations(&proc, &replica, "a.db", 1);
    wait_generations(&proc, &replica, "sub/b.db", 1);

    // Created while running: in the root, in a new subdirectory, and the empty file gets its
    // first content.
    let wc = Writer::paced(&db("c.db"), 3000, std::time::Duration::from_millis(20));
    fs::create_dir_all(tenants.join("sub2")).expect("mkdir");
    let wd = Writer::paced(&db("sub2/d.db"), 4000, std::time::Duration::from_millis(20));
    let we = Writer::paced(&db("empty.db"), 5000, std::time::Duration::from_millis(20));
    for rel in ["c.db", "sub2/d.db", "empty.db"] {
        wait_generations(&proc, &replica, rel, 1);
    }

    // a.db deleted (writer stopped first), then re-created with other rows.
    let a_old = finished(wa, &db("a.db"));
    poll_until(DEADLINE, "a.db's last commit replicated", || {
        let gens = generations(&replica, "a.db");
        gens.len() == 1 && restore(&dir, &replica, "a.db", None) == a_old
    });
    let a_generation = generations(&replica, "a.db").remove(0);
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db("a.db").display()));
    }
    poll_until(DEADLINE, "a.db retired", || {
        proc.log_text()
            .contains("database removed, replication stopped")
    });
    let wa = Writer::paced(&db("a.db"), 6000, std::time::Duration::from_millis(20));
    wait_generations(&proc, &replica, "a.db", 2);

    // sub/b.db replaced by a copy moved into place from outside the tree.
    let b_old = finished(wb, &db("sub/b.db"));
    poll_until(DEADLINE, "b.db's last commit replicated", || {
        restore(&dir, &replica, "sub/b.db", None) == b_old
    });
    let b_generation = generations(&replica, "sub/b.db").remove(0);
    let staged = dir.join("staged.db");
    let b_new = staged_database(&staged, 7000, 25);
    fs::rename(&staged, db("sub/b.db")).expect("rename into place");
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db("sub/b.db").display()));
    }
    wait_generations(&proc, &replica, "sub/b.db", 2);

    let sources: Vec<(&str, Rows, std::ops::Range<i64>)> = vec![
        ("a.db", finished(wa, &db("a.db")), 6000..7000),
        ("c.db", finished(wc, &db("c.db")), 3000..4000),
        ("sub2/d.db", finished(wd, &db("sub2/d.db")), 4000..5000),
        ("empty.db", finished(we, &db("empty.db")), 5000..6000),
    ];
    let log = proc.stop();
    assert!(!log.contains("panicked"), "{log}");

    for (rel, source, range) in &sources {
        let restored = restore(&dir, &replica, rel, None);
        assert!(all_ids_in(&restored, range.clone()), "{rel}: {restored:?}");
        assert_eq!(&restored, source, "{rel} restores to its own content");
    }
    assert_eq!(restore(&dir, &replica, "sub/b.db", None), b_new);
    assert_eq!(
        restore(&dir, &replica, "a.db", Some(&a_generation)),
        a_old,
        "a.db's old generation keeps the deleted database"
    );
    assert_eq!(
        restore(&dir, &replica, "sub/b.db", Some(&b_generation)),
        b_old,
        "b.db's old generation keeps the replaced database"
    );
    let stored = support::list(&replica);
    assert!(
        !stored.iter().any(|n| n.contains("notes.txt")),
        "{stored:?}"
    );
    assert!(
        !stored
            .iter()
            .any(|n| n.ends_with("-wal") || n.ends_with("-shm")),
        "{stored:?}"
    );
    assert!(!replica.join("staged.db").exists());
}

#[test]
fn without_watch_only_the_databases_present_at_start_replicate() {
    let (_tmp, dir) = tempdir();
    let (tenants, replica) = (dir.join("tenants"), dir.join("replica"));
    fs::create_dir_all(tenants.join("deep")).expect("mkdir");
    let a = open_app(&tenants.join("a.db"));
    insert(&a, 1);
    let deep = open_app(&tenants.join("deep/b.db"));
    insert(&deep, 2);
    let proc = start(&dir, &tenants, &replica, "");
    wait_generations(&proc, &replica, "a.db", 1);
    let late = open_app(&tenants.join("late.db"));
    insert(&late, 3);
    let log = proc.stop();
    assert_eq!(restore(&dir, &replica, "a.db", None), rows(&a));
    let stored: Vec<PathBuf> = ["deep", "late.db"]
        .iter()
        .map(|n| replica.join(n))
        .collect();
    for p in stored {
        assert!(!p.exists(), "{} replicated: {log}", p.display());
    }
}

/// The ids `/api/v1/status` lists.
fn status_ids(inst: &http_support::Instance) -> Vec<String> {
    let status = inst.get("/api/v1/status").json();
    status["databases"]
        .as_array()
        .map(|dbs| {
            dbs.iter()
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_http_status_follows_databases_as_they_come_and_go() {
    let (_tmp, dir) = tempdir();
    let (tenants, replica) = (dir.join("tenants"), dir.join("replica"));
    fs::create_dir_all(&tenants).expect("mkdir");
    insert(&open_app(&tenants.join("a.db")), 1);
    let config = format!(
        "addr: \"127.0.0.1:0\"\ndbs:\n  - dir: \"{}\"\n    pattern: \"*.db\"\n    watch: true\n    \
         replicas:\n      - url: \"file://{}\"\n",
        tenants.display(),
        replica.display()
    );
    let inst = http_support::Instance::start(&dir, &config, &[]);
    poll_until(DEADLINE, "a.db listed", || status_ids(&inst) == ["a.db"]);
    let b = open_app(&tenants.join("b.db"));
    insert(&b, 2);
    poll_until(DEADLINE, "b.db listed", || {
        status_ids(&inst) == ["a.db", "b.db"]
    });
    let points = inst.get("/api/v1/databases/b.db/restore-points");
    assert_eq!(points.status, 200, "{}", points.body);
    drop(b);
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", tenants.join("b.db").display()));
    }
    poll_until(DEADLINE, "b.db gone", || status_ids(&inst) == ["a.db"]);
    let gone = inst.get("/api/v1/databases/b.db/restore-points");
    assert_eq!(gone.status, 404, "{}", gone.body);
    let log = inst.proc.stop();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_discovered_database_whose_replica_location_is_taken_is_refused_and_the_others_run() {
    let (_tmp, dir) = tempdir();
    let (tenants, replica) = (dir.join("tenants"), dir.join("replica"));
    fs::create_dir_all(&tenants).expect("mkdir");
    let (static_db, taken, free) = (dir.join("a.db"), tenants.join("x.db"), tenants.join("y.db"));
    let mut apps = Vec::new();
    for (path, id) in [(&static_db, 1), (&taken, 2), (&free, 3)] {
        let app = open_app(path);
        insert(&app, id);
        apps.push(app);
    }
    // The static entry writes exactly where the dir entry would put tenants/x.db.
    let config = format!(
        "dbs:\n  - path: \"{a}\"\n    replicas:\n      - url: \"file://{r}/x.db\"\n        \
         sync-interval: 100ms\n  - dir: \"{t}\"\n    pattern: \"*.db\"\n    replicas:\n      \
         - url: \"file://{r}\"\n        sync-interval: 100ms\n",
        a = static_db.display(),
        t = tenants.display(),
        r = replica.display()
    );
    let cfg = dir.join("walstream.yml");
    fs::write(&cfg, config).expect("config");
    let mut proc = support::walstream(&dir, &["-config", cfg.to_str().expect("utf-8")]);
    wait_generations(&proc, &replica, "y.db", 1);
    wait_generations(&proc, &replica, "x.db", 1);
    let refusal = proc.poll(DEADLINE, "the refusal of tenants/x.db", |p| {
        let log = p.log_text();
        log.lines()
            .find(|l| l.contains("one writer per replica location"))
            .map(str::to_string)
    });
    let refusal = refusal.unwrap_or_else(|e| panic!("{e}"));
    for part in [
        "cannot replicate discovered database".to_string(),
        taken.display().to_string(),
        static_db.display().to_string(),
        format!("file://{}/x.db", replica.display()),
    ] {
        assert!(refusal.contains(&part), "{part} not in: {refusal}");
    }
    let log = proc.stop();
    // The static database owns the location; the discovered neighbour replicated as usual.
    assert_eq!(
        restore(&dir, &replica, "x.db", None),
        rows(&apps[0]),
        "{log}"
    );
    assert_eq!(
        restore(&dir, &replica, "y.db", None),
        rows(&apps[2]),
        "{log}"
    );
}
