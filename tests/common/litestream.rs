//! Makes a replica written by the real Litestream v0.3.13 on any test backend, for the
//! compatibility tests (listing now, restore later).
//!
//! What [`make_litestream_replica`] produces, and what callers may rely on:
//! - a WAL-mode database `<dir>/app.db` with one table `t(id INTEGER PRIMARY KEY, v TEXT)` holding
//!   [`LitestreamReplica::rows`] rows, and a config `<dir>/litestream.yml` naming it with a single
//!   replica on `backend` (`monitor-interval: 100ms`, `min-checkpoint-page-count: 4`,
//!   `sync-interval: 100ms`, so WAL indexes roll every few transactions and segments are many);
//! - **two generations**: Litestream runs once, is stopped with SIGTERM, the application then
//!   resets the WAL (`PRAGMA wal_checkpoint(TRUNCATE)`) and writes more while Litestream is down,
//!   so the second run logs `sync: new generation` (checked; the driver panics otherwise);
//! - after each run the replica holds every committed row: the driver polls
//!   `litestream restore` (with a deadline) until the restored copy has all rows, before stopping
//!   Litestream;
//! - Litestream's own logs are kept in `<dir>/litestream-run<N>.log` for debugging failures.
//!
//! Pacing: writes are spaced by a few milliseconds so that Litestream's 100 ms sync loop cuts them
//! into many segments, and each run writes for at least [`MIN_RUN_SPAN`] so that its objects span
//! several distinct seconds. That pause shapes the workload; it is never used to wait for readiness.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::sqlite::{open_app, remove_db};
use super::{Backend, Proc, litestream_bin, unique_name};

/// Transactions written during each Litestream run, at least.
const WRITES_PER_RUN: usize = 120;
/// Each run keeps writing for at least this long, so that its objects carry several distinct
/// creation seconds (the `-timestamp` tests pick restore points from them) however slowly a
/// loaded machine gets through the writes.
const MIN_RUN_SPAN: Duration = Duration::from_secs(5);
/// Transactions written while Litestream is stopped (they start the second generation's WAL).
const WRITES_WHILE_STOPPED: usize = 5;
/// Spacing between transactions, so one 100 ms sync interval sees only a few of them.
const WRITE_SPACING: Duration = Duration::from_millis(15);
/// How long Litestream may take to get every row onto the replica.
const REPLICA_DEADLINE: Duration = Duration::from_secs(90);
/// Pause between two probe restores.
const PROBE_EVERY: Duration = Duration::from_millis(200);

/// A replica written by Litestream v0.3.13, and how to reach it.
#[derive(Debug, Clone)]
pub struct LitestreamReplica {
    /// Working directory holding the DB, config and logs.
    pub dir: PathBuf,
    /// Config naming `db_path` and its single replica (valid for Litestream and walstream).
    pub config_path: PathBuf,
    /// The source database (absolute).
    pub db_path: PathBuf,
    /// The replica as a URL both tools accept (`Backend::replica_url`; `None` for abs).
    pub replica_url: Option<String>,
    /// Environment for running `litestream` against this replica.
    pub env: Vec<(String, String)>,
    /// Environment for running `walstream` against this replica.
    pub walstream_env: Vec<(String, String)>,
    /// Rows in `t` after the last committed transaction (the replica holds all of them).
    pub rows: i64,
    /// The key prefix of object-store replicas (unused by `File`).
    pub prefix: String,
}

/// Runs Litestream v0.3.13 twice against a fresh database in `dir` (see the module docs) and
/// returns the replica it wrote. Panics with context on any failure.
pub fn make_litestream_replica(backend: Backend, dir: &Path) -> LitestreamReplica {
    let dir = fs::canonicalize(dir).expect("canonicalize replica work dir");
    let db_path = dir.join("app.db");
    let replica_dir = dir.join("replica");
    let prefix = unique_name("lsrepl");
    let config_path = dir.join("litestream.yml");
    fs::write(
        &config_path,
        config_text(&db_path, &prefix, &replica_dir, backend),
    )
    .expect("write litestream config");
    let mut replica = LitestreamReplica {
        dir: dir.clone(),
        config_path,
        db_path: db_path.clone(),
        replica_url: backend.replica_url(&prefix, &replica_dir),
        env: backend.env_for_litestream(),
        walstream_env: backend.env_for_walstream(),
        rows: 0,
        prefix: prefix.clone(),
    };
    // The application's connection stays open for the whole scenario, so that SQLite never
    // deletes the WAL behind Litestream's back (only the explicit reset does that job).
    let app = open_app(&db_path);
    run_once(&mut replica, &app, 1);
    reset_wal_while_stopped(&mut replica, &app);
    let log = run_once(&mut replica, &app, 2);
    assert!(
        log.contains("sync: new generation"),
        "second Litestream run did not start a new generation; log:\n{log}"
    );
    replica
}

/// The config: one DB, the backend's replica entry from the shared test helpers plus a fast
/// sync interval.
fn config_text(db: &Path, prefix: &str, file_dir: &Path, backend: Backend) -> String {
    format!(
        "dbs:\n  - path: {db}\n    monitor-interval: 100ms\n    min-checkpoint-page-count: 4\n    \
         replicas:\n{entry}        sync-interval: 100ms\n",
        db = db.display(),
        entry = backend.replica_list_item(prefix, file_dir, 6),
    )
}

/// One committed transaction adding a ~300-byte row.
fn write_row(app: &Connection, replica: &mut LitestreamReplica, tag: &str) {
    let n = replica.rows;
    let v = format!("{tag}-{n:06}-").repeat(20);
    app.execute("INSERT INTO t(v) VALUES (?1)", [v])
        .expect("insert row");
    replica.rows += 1;
}

/// Starts Litestream, writes, waits for the replica to hold every row, stops it; returns its log.
fn run_once(replica: &mut LitestreamReplica, app: &Connection, run: usize) -> String {
    let log_path = replica.dir.join(format!("litestream-run{run}.log"));
    let mut child = Proc::litestream_for(replica, &log_path);
    let started = Instant::now();
    let mut written = 0;
    while written < WRITES_PER_RUN || started.elapsed() < MIN_RUN_SPAN {
        write_row(app, replica, &format!("run{run}"));
        written += 1;
        std::thread::sleep(WRITE_SPACING);
    }
    wait_for_rows(replica, &mut child);
    child.stop();
    fs::read_to_string(&log_path).expect("read litestream log")
}

/// While Litestream is down: checkpoint and truncate the WAL, then write, so the WAL header
/// Litestream saw last no longer exists.
fn reset_wal_while_stopped(replica: &mut LitestreamReplica, app: &Connection) {
    let (busy, _, _): (i64, i64, i64) = app
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("truncate checkpoint");
    assert_eq!(
        busy, 0,
        "TRUNCATE checkpoint was blocked with Litestream stopped"
    );
    for _ in 0..WRITES_WHILE_STOPPED {
        write_row(app, replica, "stopped");
    }
}

/// Polls `litestream restore` until the restored copy has every row (or the deadline passes, or
/// Litestream exits).
fn wait_for_rows(replica: &LitestreamReplica, child: &mut Proc) {
    let mut attempt = 0;
    let mut last = String::new();
    let what = format!("the replica to receive all {} rows", replica.rows);
    let done = child.poll_every(PROBE_EVERY, REPLICA_DEADLINE, &what, |_| {
        attempt += 1;
        let out = replica.dir.join(format!("probe-{attempt}.db"));
        match restored_rows(replica, &out) {
            Ok(n) if n == replica.rows => return Some(()),
            Ok(n) => last = format!("restored {n} of {} rows", replica.rows),
            Err(e) => last = e,
        }
        None
    });
    if let Err(e) = done {
        panic!("{e}\nlast probe: {last}");
    }
}

/// Restores the replica with Litestream into `out` and counts its rows; removes the probe files.
fn restored_rows(replica: &LitestreamReplica, out: &Path) -> Result<i64, String> {
    let output = Command::new(litestream_bin())
        .arg("restore")
        .arg("-config")
        .arg(&replica.config_path)
        .arg("-o")
        .arg(out)
        .arg(&replica.db_path)
        .envs(replica.env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| format!("run litestream restore: {e}"))?;
    let result = if output.status.success() {
        Connection::open(out)
            .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .map_err(|e| format!("read restored db: {e}"))
    } else {
        Err(format!(
            "litestream restore failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    };
    remove_db(out);
    result
}

impl Proc {
    fn litestream_for(replica: &LitestreamReplica, log: &Path) -> Proc {
        Proc::litestream_config(&litestream_bin(), &replica.config_path, &replica.env, log)
    }

    /// `bin replicate -config config` (either Litestream) with `env` and without
    /// `AWS_CA_BUNDLE` (which v0.5.17 refuses), stdout and stderr to `log`.
    pub fn litestream_config(
        bin: &Path,
        config: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.env_remove("AWS_CA_BUNDLE")
            .arg("replicate")
            .arg("-config")
            .arg(config)
            .envs(env.iter().map(|(k, v)| (k, v)));
        Proc::spawn("litestream", cmd, log)
    }
}
