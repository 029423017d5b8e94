//! `walstream restore` on hand-made `file://` replicas of a real WAL-mode database
//! ([`walstream::restore::testkit`]): latest, every `-index`, many `-timestamp`s, config mode
//! with several replicas, segments large enough to spill, a snapshot of several LZ4 blocks, and
//! the CLI outcomes of spec §5.4.
//! Every restore is checked with `PRAGMA integrity_check` and row by row against the source at
//! the expected point, and must leave nothing beside the output.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use walstream::restore::testkit::{Event, ReplicaWriter, Rows};

use common::sqlite::{assert_restores_to, restored_rows};
use common::walstream_bin;

const GEN: &str = "0a1b2c3d4e5f6a7b";
const STEP: Duration = Duration::from_secs(10);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn restore(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(walstream_bin())
        .arg("restore")
        .args(args)
        .current_dir(dir)
        .env_remove("LITESTREAM_CONFIG")
        .output()
        .expect("run walstream restore");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000) + Duration::from_nanos(123_456_789)
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A replica with snapshots at indices 0 and 2 and WAL indices 0..=3, several segments each.
fn build(work: &Path, replica: &Path, page_size: u32) -> ReplicaWriter {
    let mut w = ReplicaWriter::new(work, replica, GEN, page_size, start(), STEP).expect("writer");
    w.snapshot().expect("snapshot 0");
    for index in 0..4 {
        for seg in 0..3 {
            w.insert(5 + seg, 300).expect("insert");
            if seg == 2 {
                w.exec("UPDATE t SET v = v || 'x' WHERE id % 7 = 0")
                    .expect("update");
                w.exec("DELETE FROM t WHERE id % 11 = 0").expect("delete");
            }
            w.upload_segment().expect("segment");
        }
        w.checkpoint().expect("checkpoint");
        if index == 1 {
            w.snapshot().expect("snapshot 2");
        }
    }
    w
}

/// A writer on a new 4 KiB-page database with nothing replicated yet, and its replica dir.
fn empty_writer(work: &Path) -> (PathBuf, ReplicaWriter) {
    let replica = work.join("replica");
    let w = ReplicaWriter::new(work, &replica, GEN, 4096, start(), STEP).expect("writer");
    (replica, w)
}

fn url(replica: &Path) -> String {
    format!("file://{}", replica.display())
}

/// Files in `dir` other than `keep` (temporary files must never be left behind).
fn strays(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

fn assert_ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

/// Restores `args` into a fresh directory and returns the rows.
fn restore_rows(replica: &Path, extra: &[&str]) -> Rows {
    let out_dir = tempfile::tempdir().expect("out dir");
    let out = out_dir.path().join("out.db");
    let out_s = out.to_string_lossy().into_owned();
    let replica_url = url(replica);
    let mut args: Vec<&str> = vec!["-o", &out_s];
    args.extend_from_slice(extra);
    args.push(&replica_url);
    let run = restore(out_dir.path(), &args);
    assert_ok(&run);
    assert_eq!(strays(out_dir.path(), &["out.db"]), Vec::<String>::new());
    restored_rows(&out)
}

/// Rows after the last event at or before `t`.
fn rows_at(events: &[Event], t: SystemTime) -> Rows {
    events
        .iter()
        .rfind(|e| e.created_at <= t)
        .map(|e| e.rows.clone())
        .expect("an event before t")
}

#[test]
fn latest_restore_equals_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = dir.path().join("replica");
    let w = build(dir.path(), &replica, 4096);
    let rows = restore_rows(&replica, &[]);
    assert_eq!(rows, w.rows().expect("source rows"));
    assert!(rows.len() > 50, "the workload wrote rows");
}

#[test]
fn every_index_restores_that_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = dir.path().join("replica");
    let w = build(dir.path(), &replica, 1024);
    for index in 0..4u32 {
        let want = w
            .events
            .iter()
            .rfind(|e| e.index == index && e.offset.is_some())
            .map(|e| e.rows.clone())
            .expect("segments of index");
        let hex = format!("{index:x}");
        assert_eq!(
            restore_rows(&replica, &["-index", &hex]),
            want,
            "-index {hex}"
        );
    }
}

#[test]
fn timestamps_restore_the_state_at_that_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = dir.path().join("replica");
    let w = build(dir.path(), &replica, 4096);
    let first = w.events.first().expect("events").created_at;
    let last = w.events.last().expect("events").created_at;
    let mut t = first;
    while t <= last {
        let ts = rfc3339(t);
        let got = restore_rows(&replica, &["-timestamp", &ts, "-parallelism", "3"]);
        assert_eq!(got, rows_at(&w.events, t), "-timestamp {ts}");
        t += STEP * 3 / 2; // hits both exact object times and times between them
    }
}

/// The latest restore equals the source with one download at a time and with eight.
fn assert_restores_with_any_parallelism(replica: &Path, w: &ReplicaWriter) {
    for p in ["1", "8"] {
        let rows = restore_rows(replica, &["-parallelism", p]);
        assert_eq!(rows, w.rows().expect("source"), "-parallelism {p}");
    }
}

#[test]
fn large_transactions_spill_and_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (replica, mut w) = empty_writer(dir.path());
    w.snapshot().expect("snapshot");
    w.insert(3000, 2000).expect("6 MB transaction");
    w.upload_segment().expect("segment");
    w.insert(10, 100).expect("small");
    w.upload_segment().expect("segment");
    assert_restores_with_any_parallelism(&replica, &w);
}

#[test]
fn multi_block_snapshot_restores() {
    // ~10 MB of rows checkpointed into the database: its snapshot is two full 4 MiB LZ4 blocks
    // (decoded into recycled buffers) and a partial one (copied out).
    let dir = tempfile::tempdir().expect("tempdir");
    let (replica, mut w) = empty_writer(dir.path());
    w.insert(5000, 2000).expect("10 MB");
    w.checkpoint().expect("checkpoint");
    w.snapshot().expect("snapshot");
    w.insert(10, 100).expect("small");
    w.upload_segment().expect("segment");
    assert_restores_with_any_parallelism(&replica, &w);
}

#[test]
fn snapshot_only_restore_is_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (replica, mut w) = empty_writer(dir.path());
    w.insert(20, 100).expect("insert");
    w.checkpoint().expect("checkpoint");
    w.snapshot().expect("snapshot");
    let out_dir = tempfile::tempdir().expect("out");
    let out = out_dir.path().join("x.db");
    let run = restore(
        out_dir.path(),
        &["-o", out.to_str().expect("utf8"), &url(&replica)],
    );
    assert_ok(&run);
    assert!(
        run.stderr.contains("snapshot only, finalizing database"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs::read(&out).expect("restored"),
        fs::read(w.db_path()).expect("source"),
        "byte copy of the snapshot"
    );
}

/// Config with two file replicas of the same DB: `b` has newer data than `a`.
fn two_replica_config(dir: &Path) -> (PathBuf, PathBuf, Rows, Rows) {
    let db = dir.join("data/app.db");
    let (ra, rb) = (dir.join("ra"), dir.join("rb"));
    let wa_dir = dir.join("wa");
    let wb_dir = dir.join("wb");
    fs::create_dir_all(&wa_dir).expect("mkdir");
    fs::create_dir_all(&wb_dir).expect("mkdir");
    let mut wa = ReplicaWriter::new(&wa_dir, &ra, GEN, 4096, start(), STEP).expect("a");
    wa.snapshot().expect("snap a");
    wa.insert(3, 50).expect("insert a");
    wa.upload_segment().expect("seg a");
    let later = start() + Duration::from_secs(3600);
    let mut wb =
        ReplicaWriter::new(&wb_dir, &rb, "1111111111111111", 4096, later, STEP).expect("b");
    wb.snapshot().expect("snap b");
    wb.insert(9, 50).expect("insert b");
    wb.upload_segment().expect("seg b");
    let cfg = dir.join("ls.yml");
    let text = format!(
        "dbs:\n  - path: {}\n    replicas:\n      - name: a\n        path: {}\n      - name: b\n        path: {}\n",
        db.display(),
        ra.display(),
        rb.display()
    );
    fs::write(&cfg, text).expect("config");
    (
        cfg,
        db,
        wa.rows().expect("a rows"),
        wb.rows().expect("b rows"),
    )
}

#[test]
fn config_mode_picks_the_newest_replica_and_defaults_output_to_db_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, db, rows_a, rows_b) = two_replica_config(dir.path());
    let cfg_s = cfg.to_str().expect("utf8");
    let db_s = db.to_str().expect("utf8");
    assert_ok(&restore(dir.path(), &["-config", cfg_s, db_s]));
    assert_eq!(restored_rows(&db), rows_b, "newest replica (b) wins");
    assert_eq!(
        strays(&dir.path().join("data"), &["app.db"]),
        Vec::<String>::new()
    );

    let out = dir.path().join("from-a.db");
    let out_s = out.to_str().expect("utf8");
    let run = restore(
        dir.path(),
        &["-config", cfg_s, "-replica", "a", "-o", out_s, db_s],
    );
    assert_ok(&run);
    assert_restores_to(&out, &rows_a);

    let run = restore(
        dir.path(),
        &["-config", cfg_s, "-replica", "zz", "-o", "n.db", db_s],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("no matching backups found"),
        "{}",
        run.stdout
    );

    let run = restore(dir.path(), &["-config", cfg_s, "-if-db-not-exists", db_s]);
    assert_ok(&run);
    assert!(
        run.stdout.contains("database already exists, skipping"),
        "{}",
        run.stdout
    );
}

#[test]
fn cli_outcomes_match_litestream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = dir.path().join("replica");
    build(dir.path(), &replica, 4096);
    let u = url(&replica);
    let existing = dir.path().join("existing.db");
    fs::write(&existing, b"keep me").expect("existing");
    let ex = existing.to_str().expect("utf8");

    let run = restore(dir.path(), &["-o", ex, &u]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(&format!("cannot restore, output path already exists: {ex}")),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read(&existing).expect("read"), b"keep me");

    let run = restore(dir.path(), &["-if-db-not-exists", "-o", ex, &u]);
    assert_ok(&run);
    assert!(
        run.stderr.contains("database already exists, skipping"),
        "{}",
        run.stderr
    );

    let cases: [(&[&str], &str); 6] = [
        (&[&u], "output path required"),
        (
            &["-o", "x.db", "-timestamp", "yesterday", &u],
            "invalid -timestamp, must specify in ISO 8601\u{a0}format (e.g. 2000-01-01T00:00:00Z)",
        ),
        (
            &[
                "-o",
                "x.db",
                "-index",
                "1",
                "-timestamp",
                &rfc3339(start() + STEP),
                &u,
            ],
            "cannot specify index & timestamp to restore",
        ),
        (
            &["-o", "x.db", "-config", "c.yml", &u],
            "cannot specify a replica URL and the -config flag",
        ),
        (&["-o", "x.db"], "database path or replica URL required"),
        (&["-o", "x.db", &u, "extra"], "too many arguments"),
    ];
    for (args, msg) in cases {
        let run = restore(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(msg),
            "{args:?}: want {msg:?} in {}",
            run.stderr
        );
    }
    let run = restore(dir.path(), &["-o", "x.db", "-index", "zz", &u]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("invalid value \"zz\" for flag -index: invalid hexadecimal format"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("x.db").exists());
}

#[test]
fn no_backups_and_if_replica_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    let u = url(&empty);
    let run = restore(dir.path(), &["-o", "x.db", &u]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no matching backups found"),
        "{}",
        run.stderr
    );
    let run = restore(dir.path(), &["-if-replica-exists", "-o", "x.db", &u]);
    assert_ok(&run);
    assert!(
        run.stderr.contains("INFO no matching backups found"),
        "{}",
        run.stderr
    );
    assert_eq!(strays(dir.path(), &["empty"]), Vec::<String>::new());
}

#[test]
fn integrity_check_modes_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = dir.path().join("replica");
    let w = build(dir.path(), &replica, 4096);
    for mode in ["full", "quick", "none"] {
        let rows = restore_rows(&replica, &["-integrity-check", mode]);
        assert_eq!(rows, w.rows().expect("source"), "-integrity-check {mode}");
    }
    let run = restore(
        dir.path(),
        &["-integrity-check", "maybe", "-o", "x.db", &url(&replica)],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("invalid value \"maybe\" for flag -integrity-check")
    );
}

/// SIGTERM during a restore (an init container being stopped): either the restore finished
/// first and the output is complete, or it stopped, failed and left nothing — never a partial
/// file or a temporary file.
#[test]
fn sigterm_leaves_nothing_or_a_complete_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (replica, mut w) = empty_writer(dir.path());
    w.insert(40_000, 1000).expect("40 MB of rows");
    w.checkpoint().expect("checkpoint");
    w.snapshot().expect("snapshot");
    w.insert(100, 100).expect("insert");
    w.upload_segment().expect("segment");
    let out_dir = tempfile::tempdir().expect("out dir");
    let out = out_dir.path().join("out.db");
    let mut child = Command::new(walstream_bin())
        .args(["restore", "-o", out.to_str().expect("utf8"), &url(&replica)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start restore");
    let tmp = out_dir.path().join("out.db.tmp");
    common::poll_until(
        Duration::from_secs(60),
        "the restore to start or finish",
        || tmp.exists() || child.try_wait().expect("poll").is_some(),
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    let out_put = child.wait_with_output().expect("wait for restore");
    let stderr = String::from_utf8_lossy(&out_put.stderr);
    if out_put.status.success() {
        // Finished before the signal (or the signal raced the last step).
        assert_restores_to(&out, &w.rows().expect("source"));
        assert_eq!(strays(out_dir.path(), &["out.db"]), Vec::<String>::new());
    } else {
        assert!(kill.success(), "kill failed and restore failed: {stderr}");
        assert_eq!(out_put.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("restore interrupted by SIGTERM"),
            "{stderr}"
        );
        assert_eq!(strays(out_dir.path(), &[]), Vec::<String>::new());
    }
}
