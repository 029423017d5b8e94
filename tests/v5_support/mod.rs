//! Replicas written by the real Litestream v0.5.17 (LTX layout) for the v0.5 restore and
//! listing tests, and running both tools' `restore`/`ltx` against them.
//!
//! What [`make_v5_replica`] produces, and what callers may rely on:
//! - a WAL-mode database `<dir>/app.db` with `t(id INTEGER PRIMARY KEY, v TEXT)`, written for at
//!   least [`MIN_SPAN`] by a workload of inserts, updates, a delete plus `VACUUM` (the database
//!   shrinks once) and a batch transaction, spaced so that Litestream's 100 ms monitor cuts it
//!   into many TXIDs;
//! - Litestream v0.5.17 ran with short levels (L1 = 2 s, L2 = 5 s), a snapshot every 6 s and an
//!   L0 retention of 3 s, so the replica holds L9 snapshots, L1 and L2 files and a pruned L0;
//!   with `upgrade: true` Litestream v0.3.13 first wrote generations to the same path
//!   (`tests/common/litestream.rs`), so both layouts sit side by side;
//! - before Litestream is stopped, `litestream restore` (polled with a deadline) returns every
//!   committed row, so the replica is complete;
//! - `ws_config` is a walstream config (`replicas:` list) for the same database and replica.
//!
//! Pacing: writes are spaced by [`WRITE_SPACING`] to shape the workload (TXIDs, levels); never to
//! wait for readiness, which is polled.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::common::Proc;
use crate::common::litestream::make_litestream_replica;
use crate::common::{Backend, litestream5_bin, unique_name, walstream_bin};

/// Each v0.5 run writes for at least this long (several L1/L2 intervals and snapshots).
pub const MIN_SPAN: Duration = Duration::from_secs(14);
/// Spacing between transactions.
pub const WRITE_SPACING: Duration = Duration::from_millis(60);
/// How long Litestream may take to get every row onto the replica.
const REPLICA_DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);

/// A replica written by Litestream v0.5.17.
#[derive(Debug, Clone)]
pub struct V5Replica {
    pub backend: Backend,
    pub dir: PathBuf,
    pub db_path: PathBuf,
    /// Config for Litestream v0.5.17 (`levels`, `snapshot`, `l0-retention`, one replica).
    pub ls_config: PathBuf,
    /// Config for walstream naming the same database and replica.
    pub ws_config: PathBuf,
    /// The replica URL (`None` for abs).
    pub url: Option<String>,
    pub ls_env: Vec<(String, String)>,
    pub ws_env: Vec<(String, String)>,
    pub rows: i64,
    /// With `upgrade`: a time after every v0.3 object and before v0.5.17 started.
    pub v3_done: Option<std::time::SystemTime>,
}

/// Writes a v0.5.17 replica in `dir` on `backend` (see the module docs).
pub fn make_v5_replica(backend: Backend, dir: &Path, upgrade: bool) -> V5Replica {
    let dir = fs::canonicalize(dir).expect("canonicalize work dir");
    let (prefix, rows, v3_done) = if upgrade {
        let v3 = make_litestream_replica(backend, &dir);
        let done = std::time::SystemTime::now();
        // Object stores keep 1 s timestamps: start v0.5 in a later second than the v0.3 objects.
        std::thread::sleep(Duration::from_millis(1100));
        (v3.prefix, v3.rows, Some(done))
    } else {
        (unique_name("ls5"), 0, None)
    };
    let db_path = dir.join("app.db");
    let replica_dir = dir.join("replica");
    let item = backend.replica_list_item(&prefix, &replica_dir, 6);
    // v0.5.17 names Google Cloud Storage `gs` (in configs and URLs); walstream takes both.
    let item = item.replace("type: \"gcs\"", "type: \"gs\"");
    let ls_config = dir.join("litestream5.yml");
    let ls_text = format!(
        "levels:\n  - interval: 2s\n  - interval: 5s\nsnapshot:\n  interval: 6s\n  retention: 1h\n\
         l0-retention: 3s\nl0-retention-check-interval: 1s\n\
         dbs:\n  - path: {db}\n    monitor-interval: 100ms\n    replicas:\n{item}        sync-interval: 100ms\n",
        db = db_path.display()
    );
    fs::write(&ls_config, ls_text).expect("write litestream config");
    let ws_config = dir.join("walstream.yml");
    let ws_text = format!(
        "dbs:\n  - path: {db}\n    replicas:\n{item}",
        db = db_path.display()
    );
    fs::write(&ws_config, ws_text).expect("write walstream config");
    let mut r = V5Replica {
        backend,
        dir: dir.clone(),
        db_path,
        ls_config,
        ws_config,
        url: backend
            .replica_url(&prefix, &replica_dir)
            .map(|u| u.replacen("gcs://", "gs://", 1)),
        ls_env: backend.env_for_litestream(),
        ws_env: backend.env_for_walstream(),
        rows,
        v3_done,
    };
    run_v5(&mut r);
    r
}

/// Starts v0.5.17, runs the workload, waits until the replica holds every row, stops it.
fn run_v5(r: &mut V5Replica) {
    let app = crate::common::open_app(&r.db_path);
    let log = r.dir.join("litestream5.log");
    let mut child = Proc::litestream_config(&litestream5_bin(), &r.ls_config, &r.ls_env, &log);
    let started = Instant::now();
    let mut step = 0u32;
    while started.elapsed() < MIN_SPAN {
        workload_step(&app, step);
        step += 1;
        std::thread::sleep(WRITE_SPACING);
    }
    r.rows = app
        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .expect("count rows");
    wait_complete(r, &mut child);
    child.stop();
}

/// One transaction of the workload.
fn workload_step(app: &Connection, step: u32) {
    let v = format!("row-{step:06}-").repeat(30);
    match step {
        60 => app
            .execute_batch("DELETE FROM t WHERE id % 3 = 0; VACUUM;")
            .expect("delete and vacuum"),
        s if s % 25 == 24 => {
            app.execute("UPDATE t SET v = v || 'u' WHERE id % 7 = ?1", [s % 7])
                .expect("update");
        }
        s if s % 40 == 39 => {
            let tx = app.unchecked_transaction().expect("begin");
            for i in 0..50 {
                tx.execute("INSERT INTO t(v) VALUES (?1)", [format!("{v}{i}")])
                    .expect("insert batch");
            }
            tx.commit().expect("commit batch");
        }
        _ => {
            app.execute("INSERT INTO t(v) VALUES (?1)", [v])
                .expect("insert");
        }
    }
}

/// Polls `litestream restore` until the restored copy has every row.
fn wait_complete(r: &V5Replica, child: &mut Proc) {
    let deadline = Instant::now() + REPLICA_DEADLINE;
    let mut attempt = 0;
    loop {
        child.assert_running();
        attempt += 1;
        let out = r.dir.join(format!("probe-{attempt}.db"));
        let res = ls_restore(r, &out, &[]);
        let got = if res.status.success() {
            count_rows(&out)
        } else {
            -1
        };
        remove_db(&out);
        if got == r.rows {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica did not get all {} rows in time (last probe {got}): {}",
            r.rows,
            String::from_utf8_lossy(&res.stderr)
        );
        std::thread::sleep(POLL);
    }
}

/// The source argument: the URL where there is one, else the DB path with `-config`.
fn source_args(r: &V5Replica, config: &Path) -> Vec<String> {
    match &r.url {
        Some(url) => vec![url.clone()],
        None => vec![
            "-config".into(),
            config.display().to_string(),
            r.db_path.display().to_string(),
        ],
    }
}

/// `litestream restore -o out [extra] SOURCE` (v0.5.17).
pub fn ls_restore(r: &V5Replica, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(litestream5_bin());
    cmd.arg("restore").arg("-o").arg(out).args(extra);
    cmd.args(source_args(r, &r.ls_config));
    cmd.envs(r.ls_env.iter().map(|(k, v)| (k, v)))
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("LITESTREAM_CONFIG");
    cmd.output().expect("run litestream restore")
}

/// `walstream restore -o out [extra] SOURCE`.
pub fn ws_restore(r: &V5Replica, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(walstream_bin());
    cmd.arg("restore").arg("-o").arg(out).args(extra);
    cmd.args(source_args(r, &r.ws_config));
    cmd.envs(r.ws_env.iter().map(|(k, v)| (k, v)))
        .env_remove("LITESTREAM_CONFIG")
        .env_remove("WALSTREAM_CONFIG");
    cmd.output().expect("run walstream restore")
}

/// `<tool> ltx [args] SOURCE` for either tool.
pub fn ltx_listing(r: &V5Replica, walstream: bool, args: &[&str]) -> Output {
    let (bin, config, env) = if walstream {
        (walstream_bin(), &r.ws_config, &r.ws_env)
    } else {
        (litestream5_bin(), &r.ls_config, &r.ls_env)
    };
    let mut cmd = Command::new(bin);
    cmd.arg("ltx").args(args).args(source_args(r, config));
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("LITESTREAM_CONFIG")
        .env_remove("WALSTREAM_CONFIG");
    cmd.output().expect("run ltx")
}

/// One row of `<tool> ltx -json` (the same fields in both tools).
#[derive(Debug, serde::Deserialize)]
pub struct LtxRow {
    pub level: u8,
    pub min_txid: String,
    pub max_txid: String,
    /// Storage timestamp (whole seconds in v0.5.17's JSON).
    pub timestamp: String,
}

/// Every level's files as `<tool> ltx -level all -json` lists them.
pub fn ltx_rows(r: &V5Replica, walstream: bool) -> Vec<LtxRow> {
    let out = ltx_listing(r, walstream, &["-level", "all", "-json"]);
    assert!(out.status.success(), "ltx -json failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("ltx -json parses")
}

/// Rows in `t` of a restored database, after `PRAGMA integrity_check` returned `ok`.
pub fn count_rows(db: &Path) -> i64 {
    crate::common::sqlite::restored_count(db)
}

/// Removes a database and every side file either tool may leave.
pub fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".tmp", ".tmp-wal", ".tmp-shm", "-txid"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = fs::remove_file(PathBuf::from(p));
    }
}

/// Nothing at `out` and nothing beside it.
pub fn assert_nothing_at(out: &Path) {
    let dir = out.parent().expect("parent");
    let name = out.file_name().expect("name").to_string_lossy().to_string();
    let left: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&name))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
