//! The init container's mode for a damaged database (issue 19 item 7) on the real binary:
//! `walstream restore -if-db-not-exists -if-db-damaged -if-replica-exists -config C DB`
//! - keeps a database that passes `quick_check` (exit 0, untouched);
//! - replaces a damaged one (garbage over a table page, the PVC-corruption case) from the
//!   replica, moving the damaged file and its `-wal` aside as `DB.damaged-<time>` (never
//!   deleted), and the result is the replicated content with `PRAGMA integrity_check` = ok;
//! - with a damaged database and no backup in the replica exits 1 naming both, and leaves the
//!   database exactly as it was and nothing of walstream's beside it (SQLite may add the
//!   checked file's empty `-wal`/`-shm`).
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, run_expect_fail, walstream_bin};
use http_support::*;
use support::{insert, integrity, open_app, rows};

/// Garbage over the sixth page (a table page once the rows below are checkpointed in).
fn damage(db: &Path) {
    let mut bytes = std::fs::read(db).expect("read");
    assert!(bytes.len() > 6 * 4096, "database too small to damage");
    bytes[5 * 4096..6 * 4096].fill(0x5a);
    std::fs::write(db, bytes).expect("damage");
}

fn init_restore(cfg: &Path, db: &Path) -> Command {
    let mut cmd = Command::new(walstream_bin());
    cmd.args([
        "restore",
        "-if-db-not-exists",
        "-if-db-damaged",
        "-if-replica-exists",
        "-config",
    ])
    .arg(cfg)
    .arg(db);
    cmd
}

fn output(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn a_damaged_database_is_replaced_from_the_replica_and_kept_aside() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = open_app(&db);
    for id in 1..=300 {
        insert(&app, id);
    }
    let cfg_text = config(&db, "", &file_replica(&dir.join("replica"), "100ms"));
    let ws = Instance::start(&dir, &cfg_text, &[]);
    ws.wait_caught_up();
    let replicated = rows(&app);
    ws.proc.stop();
    app.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(app);
    let cfg = dir.join("walstream.yml");

    // Healthy: kept as it is.
    let before = std::fs::read(&db).expect("read");
    let out = run(&mut init_restore(&cfg, &db));
    assert!(
        output(&out).contains("passes quick_check"),
        "{}",
        output(&out)
    );
    assert_eq!(std::fs::read(&db).expect("read"), before);

    // Damaged (with a stale -wal beside it): replaced, the damaged pair kept aside.
    damage(&db);
    let damaged = std::fs::read(&db).expect("read");
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    std::fs::write(&wal, b"stale wal of the damaged file").expect("wal");
    let out = run(&mut init_restore(&cfg, &db));
    let text = output(&out);
    assert!(text.contains("fails quick_check"), "{text}");
    let c = rusqlite::Connection::open(&db).expect("open restored");
    assert_eq!(integrity(&c), "ok");
    assert_eq!(rows(&c), replicated);
    drop(c);
    let aside: Vec<String> = common::dir_names(&dir)
        .into_iter()
        .filter(|n| n.starts_with("app.db.damaged-"))
        .collect();
    // The damaged file, its -wal, and the -shm SQLite made for the check.
    assert_eq!(aside.len(), 3, "{aside:?}");
    let kept = dir.join(
        aside
            .iter()
            .find(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
            .expect("db aside"),
    );
    assert_eq!(std::fs::read(&kept).expect("read aside"), damaged);
    let kept_wal = PathBuf::from(format!("{}-wal", kept.display()));
    assert_eq!(
        std::fs::read(&kept_wal).expect("wal aside"),
        b"stale wal of the damaged file"
    );
    assert!(
        common::dir_names(&dir)
            .iter()
            .all(|n| !n.contains(".restore-")),
        "temporary restore target left: {:?}",
        common::dir_names(&dir)
    );
}

#[test]
fn a_damaged_database_without_a_backup_stays_in_place_and_fails() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = open_app(&db);
    for id in 1..=300 {
        insert(&app, id);
    }
    app.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(app);
    damage(&db);
    let cfg = dir.join("walstream.yml");
    std::fs::write(
        &cfg,
        config(&db, "", &file_replica(&dir.join("empty-replica"), "1s")),
    )
    .expect("config");
    let before_names = common::dir_names(&dir);
    let before = std::fs::read(&db).expect("read");
    let out = run_expect_fail(&mut init_restore(&cfg, &db));
    let text = output(&out);
    assert!(text.contains("fails quick_check"), "{text}");
    assert!(text.contains("no replica holds a backup"), "{text}");
    assert_eq!(std::fs::read(&db).expect("read"), before);
    // Nothing of ours left; SQLite's own -wal/-shm of the checked file may exist.
    let now: Vec<String> = common::dir_names(&dir)
        .into_iter()
        .filter(|n| n != "app.db-wal" && n != "app.db-shm")
        .collect();
    assert_eq!(now, before_names);
}
