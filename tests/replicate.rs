//! End-to-end tests of `walstream replicate` (the real binary) on `file://` replicas in temp dirs,
//! checked by restoring with the real `litestream restore` (v0.3.13).
//!
//! What each test proves: segments and a snapshot appear while an application writes; SIGTERM
//! runs a final sync so every commit made before the signal is in the replica; `kill -9` in the
//! middle of writes plus a restart continues the same generation with no new snapshot, and every
//! restore is the source at a transaction boundary; retention removes old snapshots and the WAL
//! below the oldest retained one while restores keep working; `-exec` propagates the child's exit;
//! argument errors use Litestream's wording.
//!
//! Pacing: writer threads space transactions by a few milliseconds to shape the workload (many
//! segments, several WAL indexes); readiness is always polled with a deadline, never slept for.

mod common;
#[path = "replicate_support/mod.rs"]
mod support;

use std::process::Command;

use common::walstream_bin;
use support::*;

/// A temp dir with `app.db` and a `replica/` directory.
struct Setup(common::Workspace);

impl std::ops::Deref for Setup {
    type Target = common::Workspace;
    fn deref(&self) -> &common::Workspace {
        &self.0
    }
}

impl Setup {
    fn new() -> Setup {
        Setup(common::Workspace::new())
    }
    fn url(&self) -> String {
        self.replica_url()
    }

    /// Writes `walstream.yml` with fast intervals (sync-interval 100ms unless `replica_extra`
    /// sets one); the extras are appended to the database and replica entries.
    fn config(&self, db_extra: &str, replica_extra: &str) -> String {
        let sync = if replica_extra.contains("sync-interval") {
            ""
        } else {
            "        sync-interval: 100ms\n"
        };
        let text = format!(
            "dbs:\n  - path: {}\n    monitor-interval: 50ms\n{db_extra}    replicas:\n      - url: {}\n{sync}{replica_extra}",
            self.db().display(),
            self.url()
        );
        self.write("walstream.yml", &text)
    }

    fn generations(&self) -> Vec<String> {
        list(&self.replica().join("generations"))
    }
    fn snapshots(&self, generation: &str) -> Vec<String> {
        list(
            &self
                .replica()
                .join("generations")
                .join(generation)
                .join("snapshots"),
        )
    }
    fn segments(&self, generation: &str) -> Vec<String> {
        list(
            &self
                .replica()
                .join("generations")
                .join(generation)
                .join("wal"),
        )
    }
}

#[test]
fn segments_and_snapshot_appear_and_restore_matches() {
    let s = Setup::new();
    let app = open_app(&s.db());
    let cfg = s.config("", "");
    let ws = walstream(&s.path(), &["-config", &cfg]);
    let mut id = 0;
    poll_until(DEADLINE, "a snapshot and segments", || {
        id += 1;
        insert(&app, id);
        s.generations()
            .first()
            .is_some_and(|g| !s.snapshots(g).is_empty() && s.segments(g).len() >= 3)
    });
    let log = ws.stop();
    assert!(log.contains("replicating to"), "{log}");
    assert!(log.contains("wal segment written"), "{log}");
    let g = s.generations();
    assert_eq!(g.len(), 1);
    // When the snapshot's own checkpoint completes it restarts the WAL, so the first snapshot
    // is at index 1 (the file then holds exactly index 0, see `Db::begin_snapshot`); when an
    // insert kept it from completing, at index 0. WAL is shipped from the snapshot's index on.
    let snaps = s.snapshots(&g[0]);
    assert!(
        snaps == ["00000001.snapshot.lz4"] || snaps == ["00000000.snapshot.lz4"],
        "{snaps:?}"
    );
    let first = format!("{}_00000000.wal.lz4", &snaps[0][..8]);
    assert!(s.segments(&g[0]).contains(&first), "{first} missing");
    let restored = litestream_restore(&[&s.url()], &s.path().join("out.db"));
    assert_eq!(restored, rows(&app));
}

#[test]
fn sigterm_final_sync_contains_every_commit() {
    let s = Setup::new();
    let app = open_app(&s.db());
    // A long sync interval: only the final sync can upload the last commits.
    let cfg = s.config("", "        sync-interval: 1h\n");
    let ws = walstream(&s.path(), &["-config", &cfg]);
    insert(&app, 1);
    poll_until(DEADLINE, "first snapshot", || {
        s.generations()
            .first()
            .is_some_and(|g| !s.snapshots(g).is_empty())
    });
    for id in 2..=300 {
        insert(&app, id);
    }
    let log = ws.stop();
    assert!(
        log.contains("signal received, walstream shutting down"),
        "{log}"
    );
    assert!(log.contains("walstream shut down"), "{log}");
    let restored = litestream_restore(&[&s.url()], &s.path().join("out.db"));
    assert_eq!(restored.len(), 300);
    assert_eq!(restored, rows(&app));
}

#[test]
fn kill9_mid_write_then_restart_resumes_same_generation() {
    let s = Setup::new();
    drop(open_app(&s.db()));
    let cfg = s.config("    min-checkpoint-page-count: 8\n", "");
    let ws = walstream(&s.path(), &["-config", &cfg]);
    let writer = Writer::start(s.db(), 1);
    poll_until(DEADLINE, "several segments", || {
        s.generations()
            .first()
            .is_some_and(|g| s.segments(g).len() >= 5)
    });
    ws.kill9();
    let generation = s.generations();
    assert_eq!(generation.len(), 1);
    let snapshots_before = s.snapshots(&generation[0]);
    // While walstream is down, the replica is a consistent prefix of what was written.
    let at_kill = litestream_restore(&[&s.url()], &s.path().join("at-kill.db"));
    assert!(!at_kill.is_empty());
    let ws = walstream(&s.path(), &["-config", &cfg]);
    let resumed_from = writer.last();
    let segments_at_restart = s.segments(&generation[0]).len();
    poll_until(DEADLINE, "uploads after restart", || {
        s.segments(&generation[0]).len() >= segments_at_restart + 3
            && writer.last() > resumed_from + 20
    });
    let last = writer.finish();
    let log = ws.stop();
    assert_eq!(
        s.generations(),
        generation,
        "a new generation was started; log:\n{log}"
    );
    assert_eq!(
        s.snapshots(&generation[0]),
        snapshots_before,
        "new snapshot after restart"
    );
    let source = rows(&open_app(&s.db()));
    assert_eq!(source.len() as i64, last);
    assert_prefix(&at_kill, &source);
    let restored = litestream_restore(&[&s.url()], &s.path().join("final.db"));
    assert_eq!(restored, source);
}

#[test]
fn retention_removes_old_snapshots_and_wal() {
    let s = Setup::new();
    drop(open_app(&s.db()));
    let cfg = s.config(
        "    min-checkpoint-page-count: 4\n",
        "        snapshot-interval: 500ms\n        retention: 1s\n        retention-check-interval: 500ms\n",
    );
    let ws = walstream(&s.path(), &["-config", &cfg]);
    let writer = Writer::start(s.db(), 1);
    let mut first: Option<(String, String)> = None;
    poll_until(DEADLINE, "a first snapshot", || {
        first = s
            .generations()
            .first()
            .and_then(|g| Some((g.clone(), s.snapshots(g).first()?.clone())));
        first.is_some()
    });
    let (g, first_snapshot) = first.expect("polled");
    poll_until(
        DEADLINE,
        "retention to drop the first snapshot and its WAL",
        || {
            let snaps = s.snapshots(&g);
            let Some(oldest) = snaps.first() else {
                return false;
            };
            let segs = s.segments(&g);
            oldest[..8] > first_snapshot[..8] && segs.iter().all(|n| n[..8] >= oldest[..8])
        },
    );
    let last = writer.finish();
    let log = ws.stop();
    assert!(log.contains("snapshot deleted"), "{log}");
    let g = s.generations();
    assert_eq!(g.len(), 1);
    // Nothing below the oldest remaining snapshot, everything from it onward is contiguous.
    let min_snapshot = s.snapshots(&g[0])[0][..8].to_string();
    assert!(s.segments(&g[0]).iter().all(|n| n[..8] >= min_snapshot[..]));
    let restored = litestream_restore(&[&s.url()], &s.path().join("out.db"));
    assert_eq!(restored.len() as i64, last);
    assert_eq!(restored, rows(&open_app(&s.db())));
}

#[test]
fn exec_child_exit_code_is_propagated() {
    let s = Setup::new();
    drop(open_app(&s.db()));
    let db = s.db().display().to_string();
    let url = s.url();
    // Child fails: walstream syncs, then fails with Litestream's `exit status N`.
    let ws = walstream(&s.path(), &["-exec", "sh -c 'exit 3'", &db, &url]);
    let (status, log) = ws.wait();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("subprocess exited, walstream shutting down"),
        "{log}"
    );
    assert!(log.contains("exit status 3"), "{log}");
    // Child succeeds: exit 0.
    let ws = walstream(&s.path(), &["-exec", "true", &db, &url]);
    let (status, log) = ws.wait();
    assert!(status.success(), "{log}");
    // A signal is forwarded to the child; its death by that signal is a clean shutdown.
    let ws = walstream(&s.path(), &["-exec", "sleep 60", &db, &url]);
    poll_until(DEADLINE, "start-up", || {
        ws.log_text().contains("initialized db")
    });
    let log = ws.stop();
    assert!(log.contains("sending signal to exec process"), "{log}");
}

#[test]
fn second_signal_exits_at_once() {
    let s = Setup::new();
    drop(open_app(&s.db()));
    let db = s.db().display().to_string();
    let url = s.url();
    // The child ignores SIGTERM, so the first signal leaves walstream waiting for it; the child
    // ends when the test closes walstream's stdin (which it reads).
    let child = "sh -c 'trap \"\" TERM INT; read x'";
    let ws = walstream(&s.path(), &["-exec", child, &db, &url]);
    poll_until(DEADLINE, "start-up", || {
        ws.log_text().contains("initialized db")
    });
    ws.signal(libc::SIGTERM);
    poll_until(DEADLINE, "the wait for the child", || {
        ws.log_text().contains("waiting for exec process to close")
    });
    ws.signal(libc::SIGTERM);
    let (status, log) = ws.wait();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(!log.contains("walstream shut down"), "{log}");
}

#[test]
fn argument_errors_use_litestream_wording() {
    let s = Setup::new();
    let db = s.db().display().to_string();
    let url = s.url();
    let cases: [(&[&str], &str); 3] = [
        (&[&db], "must specify at least one replica URL for "),
        (
            &["-config", "x.yml", &db, &url],
            "cannot specify a replica URL and the -config flag",
        ),
        (
            &[&db, &url, "file:///tmp/other"],
            "duplicate replica name: \\\"file\\\"",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(walstream_bin())
            .arg("replicate")
            .args(args)
            .output()
            .expect("run walstream");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

#[test]
fn empty_config_keeps_running_until_signal() {
    let s = Setup::new();
    let path = s.path().join("empty.yml");
    std::fs::write(&path, "dbs: []\n").expect("write config");
    let ws = walstream(&s.path(), &["-config", &path.display().to_string()]);
    poll_until(DEADLINE, "the error line", || {
        ws.log_text()
            .contains("no databases specified in configuration")
    });
    let log = ws.stop();
    assert!(log.contains("walstream shut down"), "{log}");
}

/// A database another connection keeps locked while walstream attaches (an application
/// creating it) is tried again, not given up: once the lock goes, it is replicated.
#[test]
fn a_database_locked_at_attach_is_tried_again() {
    let s = Setup::new();
    let db = s.path().join("busy.db");
    let replica = s.path().join("busy-replica");
    let holder = rusqlite::Connection::open(&db).expect("open");
    holder
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); BEGIN EXCLUSIVE;")
        .expect("exclusive lock");
    let text = format!(
        "dbs:\n  - path: {db}\n    monitor-interval: 50ms\n    replicas:\n      - url: file://{r}\n        sync-interval: 100ms\n",
        db = db.display(),
        r = replica.display(),
    );
    let cfg = s.path().join("busy.yml");
    std::fs::write(&cfg, text).expect("write config");
    let ws = walstream(&s.path(), &["-config", &cfg.display().to_string()]);
    poll_until(DEADLINE, "walstream to find the database busy", || {
        ws.log_text().contains("database busy, trying again")
    });
    holder.execute_batch("COMMIT").expect("release");
    drop(holder);
    let app = open_app(&db);
    insert(&app, 1);
    poll_until(DEADLINE, "the database's first segment", || {
        let g = list(&replica.join("generations"));
        g.first()
            .is_some_and(|g| !list(&replica.join("generations").join(g).join("wal")).is_empty())
    });
    assert!(
        !ws.log_text().contains("cannot open database"),
        "{}",
        ws.log_text()
    );
    ws.stop();
    let url = format!("file://{}", replica.display());
    let restored = litestream_restore(&[&url], &s.path().join("busy-out.db"));
    assert_eq!(restored, rows(&app));
}

#[test]
fn non_sqlite_database_fails_alone_and_missing_database_is_awaited() {
    let s = Setup::new();
    let bad = s.path().join("bad.db");
    std::fs::write(&bad, vec![b'x'; 8192]).expect("write garbage");
    let late = s.path().join("late.db");
    let late_replica = s.path().join("late-replica");
    let text = format!(
        "dbs:\n  - path: {bad}\n    replicas:\n      - url: file://{bad_r}\n  - path: {late}\n    monitor-interval: 50ms\n    replicas:\n      - url: file://{late_r}\n        sync-interval: 100ms\n",
        bad = bad.display(),
        bad_r = s.path().join("bad-replica").display(),
        late = late.display(),
        late_r = late_replica.display(),
    );
    let cfg = s.path().join("two.yml");
    std::fs::write(&cfg, text).expect("write config");
    let ws = walstream(&s.path(), &["-config", &cfg.display().to_string()]);
    poll_until(
        DEADLINE,
        "the bad database's error and the wait for the missing one",
        || {
            let log = ws.log_text();
            log.contains("cannot open database") && log.contains("waiting for database file")
        },
    );
    // The second database does not exist yet: it is picked up once created.
    let app = open_app(&late);
    insert(&app, 1);
    poll_until(DEADLINE, "the late database's first segment", || {
        let g = list(&late_replica.join("generations"));
        g.first().is_some_and(|g| {
            !list(&late_replica.join("generations").join(g).join("wal")).is_empty()
        })
    });
    ws.stop();
    let url = format!("file://{}", late_replica.display());
    let restored = litestream_restore(&[&url], &s.path().join("late-out.db"));
    assert_eq!(restored, rows(&app));
}
