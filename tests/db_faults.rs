//! Faults of the live database host under a running `walstream replicate`: the shadow WAL
//! folder (meta-path) running out of space, and the database file replaced or deleted.
//!
//! What must stay true: a fault shows up as a clear log line and in `/api/v1/status`; once the
//! fault is gone replication resumes without a restart where walstream can (disk full), and a
//! restore equals the source database. The disk-full test mounts a small tmpfs, so it needs
//! root (CI runs the tests as root); it fails loudly when the mount is refused.
//!
//! A database deleted or replaced *while replicate runs* is reported (log and status), detached,
//! and attached again as a new generation when a file is back at its path; the old generation
//! keeps the old database, with nothing of the new file in it (Litestream v0.3.13 keeps syncing
//! its old connection and errors forever). A database replaced while replicate was stopped starts
//! a new generation on restart.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::Rows;
use http_support::{Instance, tempdir, walstream_restore};
use support::{insert, open_app, rows};

/// A tmpfs of `size` mounted at `dir` for the life of the guard.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).expect("mkdir mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs at {} failed (this test needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Writes zeros into `path` until the file system reports it is full.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 16 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "fill: {e}");
            break;
        }
    }
    // Also the last partial block.
    while f.write_all(&[0u8; 512]).is_ok() {}
}

fn config(db: &Path, meta: &Path, replica: &Path) -> String {
    format!(
        "addr: \"127.0.0.1:0\"\ndbs:\n  - path: \"{}\"\n    meta-path: \"{}\"\n    \
         monitor-interval: 50ms\n    replicas:\n      - name: file\n        url: \"file://{}\"\n        \
         sync-interval: 100ms\n",
        db.display(),
        meta.display(),
        replica.display()
    )
}

/// Polls `check` until it holds; on timeout the panic shows walstream's log and status.
fn wait(inst: &Instance, what: &str, check: impl FnMut() -> bool) {
    if common::poll::poll_within(support::DEADLINE, check).is_none() {
        let status = inst.get("/api/v1/status").body;
        panic!(
            "timed out waiting for {what}\nstatus: {status}\nlog:\n{}",
            inst.proc.log_text()
        );
    }
}

fn first_db(status: &Value) -> &Value {
    &status["databases"][0]
}

/// True once the database synced without error and its replica holds its position.
fn caught_up(inst: &Instance) -> bool {
    let status = inst.get("/api/v1/status").json();
    let db = first_db(&status);
    db["last_error"].is_null()
        && !db["position"].is_null()
        && db["position"] == db["replicas"][0]["position"]
}

#[test]
fn meta_path_out_of_space_reports_and_recovers() {
    let (_tmp, dir) = tempdir();
    let meta = dir.join("meta");
    let _mount = Tmpfs::mount(&meta, "8m");
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let app = open_app(&db);
    for id in 1..=20 {
        insert(&app, id);
    }
    let inst = Instance::start(&dir, &config(&db, &meta, &replica), &[]);
    wait(&inst, "first sync replicated", || caught_up(&inst));

    fill(&meta.join("filler"));
    for id in 21..=60 {
        insert(&app, id);
    }
    let mut seen = String::new();
    wait(&inst, "a no-space error in /api/v1/status", || {
        let status = inst.get("/api/v1/status").json();
        seen = first_db(&status)["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        seen.contains("No space left on device")
    });
    let shadow = meta.join("generations");
    assert!(seen.contains(&shadow.display().to_string()), "{seen}");
    assert!(
        seen.contains("write shadow wal: No space left on device"),
        "{seen}"
    );
    wait(&inst, "the no-space error in the log", || {
        let log = inst.proc.log_text();
        log.lines()
            .any(|l| l.contains("sync error") && l.contains("No space left on device"))
    });

    fs::remove_file(meta.join("filler")).expect("free space");
    for id in 61..=80 {
        insert(&app, id);
    }
    wait(&inst, "replication resumed", || caught_up(&inst));
    let log = inst.proc.stop();
    assert!(log.contains("sync recovered"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    let source = rows(&app);
    assert_eq!(source.len(), 80);
    let out = dir.join("restored.db");
    let url = format!("file://{}", replica.display());
    assert_eq!(walstream_restore(&[&url], &[], &out), source);
}

/// Removes the database and its `-wal`/`-shm` files, as an operator replacing it would.
fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match fs::remove_file(PathBuf::from(p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove {}{suffix}: {e}", db.display()),
        }
    }
}

/// The generations in the file replica (names).
fn generations(replica: &Path) -> Vec<String> {
    support::list(&replica.join("generations"))
}

/// Restores generation `g` of the file replica and returns its rows.
fn restore_generation(dir: &Path, replica: &Path, g: &str, name: &str) -> Vec<(i64, String)> {
    let out = dir.join(name);
    let url = format!("file://{}", replica.display());
    walstream_restore(&["-generation", g, &url], &[], &out)
}

/// Waits until the replica holds a second generation and the running walstream has caught up
/// with the database again (so everything committed so far is in that generation).
fn wait_new_generation(inst: &Instance, replica: &Path) {
    wait(inst, "a second generation, caught up", || {
        generations(replica).len() == 2 && caught_up(inst)
    });
}

/// A database with 30 rows replicated by a running walstream (one generation so far).
struct Replicating {
    db: PathBuf,
    replica: PathBuf,
    app: rusqlite::Connection,
    before: Rows,
    inst: Instance,
    first: Vec<String>,
}

fn replicating(dir: &Path) -> Replicating {
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let app = open_app(&db);
    for id in 1..=30 {
        insert(&app, id);
    }
    let before = rows(&app);
    let inst = Instance::start(dir, &config(&db, &dir.join("meta"), &replica), &[]);
    wait(&inst, "first sync replicated", || caught_up(&inst));
    let first = generations(&replica);
    assert_eq!(first.len(), 1, "{first:?}");
    Replicating {
        db,
        replica,
        app,
        before,
        inst,
        first,
    }
}

impl Replicating {
    /// The fields in declaration order, for a test to bind by name.
    fn parts(
        self,
    ) -> (
        PathBuf,
        PathBuf,
        rusqlite::Connection,
        Rows,
        Instance,
        Vec<String>,
    ) {
        (
            self.db,
            self.replica,
            self.app,
            self.before,
            self.inst,
            self.first,
        )
    }
}

/// Latest restores to `now`; the first generation still restores to `before`.
fn assert_new_and_old(
    dir: &Path,
    replica: &Path,
    now: &[(i64, String)],
    first: &str,
    before: &[(i64, String)],
) {
    let out = dir.join("latest.db");
    let url = format!("file://{}", replica.display());
    assert_eq!(walstream_restore(&[&url], &[], &out), now);
    assert_eq!(
        restore_generation(dir, replica, first, "old.db"),
        before,
        "the old generation holds the old database and nothing of the new one"
    );
}

#[test]
fn database_deleted_and_recreated_under_replicate_starts_a_new_generation() {
    let (_tmp, dir) = tempdir();
    let (db, replica, app, before, inst, first) = replicating(&dir).parts();
    drop(app);
    remove_database(&db);
    wait(&inst, "the missing database in /api/v1/status", || {
        let status = inst.get("/api/v1/status").json();
        let err = first_db(&status)["last_error"].as_str().unwrap_or_default();
        err.contains(&db.display().to_string()) && err.contains("database file does not exist")
    });
    wait(&inst, "the removal in the log", || {
        inst.proc
            .log_text()
            .contains("database file removed, waiting for it to reappear")
    });
    // The old generation is intact while the database is gone.
    assert_eq!(
        restore_generation(&dir, &replica, &first[0], "gone.db"),
        before
    );

    let app = open_app(&db);
    for id in 500..=520 {
        insert(&app, id);
    }
    wait_new_generation(&inst, &replica);
    let log = inst.proc.stop();
    assert!(!log.contains("panicked"), "{log}");
    let now = rows(&app);
    assert!(now.iter().all(|(id, _)| *id >= 500), "{now:?}");
    assert_new_and_old(&dir, &replica, &now, &first[0], &before);
}

#[test]
fn database_replaced_by_rename_under_replicate_starts_a_new_generation() {
    let (_tmp, dir) = tempdir();
    let (db, replica, app, before, inst, first) = replicating(&dir).parts();

    // A restored copy prepared beside it, then moved into place (what `mv backup.db app.db`
    // or a restore tool does); the application reopens it and keeps writing.
    let staged = dir.join("staged.db");
    let other = open_app(&staged);
    for id in 700..=710 {
        insert(&other, id);
    }
    other
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .expect("fold the staged copy into one file");
    drop(other);
    drop(app);
    fs::rename(&staged, &db).expect("rename into place");
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let app = open_app(&db);
    for id in 711..=720 {
        insert(&app, id);
    }
    wait_new_generation(&inst, &replica);
    let log = inst.proc.stop();
    assert!(
        log.contains("database file replaced") || log.contains("database file removed"),
        "{log}"
    );
    let now = rows(&app);
    assert_eq!(now.len(), 21, "{now:?}");
    assert_new_and_old(&dir, &replica, &now, &first[0], &before);
}

#[test]
fn database_replaced_while_stopped_starts_a_new_generation() {
    let (_tmp, dir) = tempdir();
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let meta = dir.join("meta");
    let cfg = config(&db, &meta, &replica);
    let app = open_app(&db);
    for id in 1..=30 {
        insert(&app, id);
    }
    let inst = Instance::start(&dir, &cfg, &[]);
    wait(&inst, "first sync replicated", || caught_up(&inst));
    inst.proc.stop();
    drop(app);
    remove_database(&db);
    let app = open_app(&db);
    for id in 1000..=1010 {
        insert(&app, id);
    }
    let inst = Instance::start(&dir, &cfg, &[]);
    wait(&inst, "the new database replicated", || caught_up(&inst));
    let log = inst.proc.stop();
    assert!(
        log.contains("init: cannot determine last wal position, clearing generation"),
        "{log}"
    );
    assert!(
        log.contains("msg=\"sync: new generation\"")
            && log.contains("reason=\"no generation exists\""),
        "{log}"
    );
    let generations = support::list(&replica.join("generations"));
    assert_eq!(generations.len(), 2, "{generations:?}");
    let out = dir.join("restored.db");
    let url = format!("file://{}", replica.display());
    assert_eq!(walstream_restore(&[&url], &[], &out), rows(&app));
}
