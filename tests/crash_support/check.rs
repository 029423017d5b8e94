//! After each round (walstream dead): restore the latest point and one or two points in time with
//! the real `walstream restore`, and check each result: `PRAGMA integrity_check` is `ok`, the
//! content equals the workload replayed to the boundary its `meta.seq` names, the latest restore
//! holds every transaction a `POST …/sync` (or a clean stop) made durable, and a point-in-time
//! restore lies between what was durable by then and the latest restore. `-timestamp` targets
//! are drawn from the consistent windows of [`super::points`].
//!
//! Must stay true: every violation is reported as a loss (never retried or ignored); times for
//! `-timestamp` come from the replica's own listing (storage timestamps, as restore uses them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use walstream::config::ReplicaTarget;
use walstream::storage::ReplicaClient;

use super::model::Model;
use super::points::{self, Window};
use super::rng::Rng;
use super::workload;

/// A `POST …/sync` that answered 200 (or a clean SIGTERM stop): every transaction up to `seq`
/// was in the replica at `at`.
#[derive(Clone, Copy, Debug)]
pub struct Durable {
    pub at: SystemTime,
    pub seq: u64,
}

/// One restore result waiting to be compared.
struct Restored {
    what: String,
    path: PathBuf,
    /// The restored `meta.seq`; `None` for the empty database from before transaction 0 (a
    /// snapshot of a database file no checkpoint had reached yet).
    seq: Option<u64>,
    /// Lower bound on `seq` (durable before the target time).
    min: Option<u64>,
}

pub struct Checker {
    pub config: PathBuf,
    pub db: PathBuf,
    pub out_dir: PathBuf,
    pub target: ReplicaTarget,
    /// Slack between a sync's return and the storage timestamps (S3 lists whole seconds).
    pub margin: Duration,
    pub model: Model,
    pub restores_latest: u64,
    pub restores_timestamp: u64,
    /// Rounds in which no `-timestamp` target was consistent (see [`points`]).
    pub timestamps_unavailable: u64,
    /// Time spent in `walstream restore` and in comparing with the replay.
    pub restore_time: Duration,
    pub compare_time: Duration,
    rt: tokio::runtime::Runtime,
    n: u64,
}

impl Checker {
    pub fn new(
        config: PathBuf,
        db: PathBuf,
        out_dir: PathBuf,
        target: ReplicaTarget,
        seed: u64,
    ) -> Checker {
        let margin = match target {
            ReplicaTarget::File { .. } => Duration::ZERO,
            _ => Duration::from_millis(1500),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Checker {
            config,
            db,
            out_dir,
            target,
            margin,
            model: Model::new(seed),
            restores_latest: 0,
            restores_timestamp: 0,
            timestamps_unavailable: 0,
            restore_time: Duration::ZERO,
            compare_time: Duration::ZERO,
            rt,
            n: 0,
        }
    }

    /// Restores and checks; returns the problems found (empty: no loss).
    pub fn check_round(&mut self, rng: &mut Rng, durable: &[Durable]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut restored = Vec::new();
        let durable_max = durable.iter().map(|d| d.seq).max();
        match self.restore(None) {
            Ok((path, seq)) => restored.push(Restored {
                what: "latest".into(),
                path,
                seq,
                min: durable_max,
            }),
            Err(e) => problems.push(format!("latest restore: {e}")),
        }
        let n = rng.range(1, 3) as usize;
        match self.pick_times(rng, n) {
            Ok(times) => {
                for t in times {
                    let min = self.durable_by(durable, t);
                    match self.restore(Some(t)) {
                        Ok((path, seq)) => restored.push(Restored {
                            what: format!("-timestamp {}", rfc3339(t)),
                            path,
                            seq,
                            min,
                        }),
                        Err(e) => problems.push(format!("restore -timestamp {}: {e}", rfc3339(t))),
                    }
                }
            }
            Err(e) => problems.push(format!("listing the replica: {e}")),
        }
        problems.extend(self.judge(restored));
        problems
    }

    /// Compares every restore (in boundary order, so the replay mostly moves forward) and checks
    /// the bounds; removes the restored files.
    fn judge(&mut self, mut restored: Vec<Restored>) -> Vec<String> {
        let mut problems = Vec::new();
        let latest = restored
            .first()
            .filter(|r| r.what == "latest")
            .map(|r| r.seq);
        let source = read_seq(&self.db);
        restored.sort_by_key(|r| r.seq);
        for r in &restored {
            if r.seq < r.min {
                problems.push(format!(
                    "{} restored seq {:?} but seq {:?} was durable (synced) before",
                    r.what, r.seq, r.min
                ));
            }
            if latest.is_some_and(|l| r.seq > l) {
                problems.push(format!(
                    "{} restored seq {:?} > latest restore's {:?}",
                    r.what, r.seq, latest
                ));
            }
            if let Ok(source) = source
                && r.seq > source
            {
                problems.push(format!(
                    "{} restored seq {:?} but the source has only committed {source:?}",
                    r.what, r.seq
                ));
            }
            if let Err(e) = self.compare(&r.path, r.seq) {
                problems.push(format!("{}: {e}", r.what));
            }
            remove_db(&r.path);
        }
        problems
    }

    fn compare(&mut self, path: &Path, seq: Option<u64>) -> Result<(), String> {
        let started = Instant::now();
        let conn = Connection::open(path).map_err(|e| format!("open restored db: {e}"))?;
        let res = match seq {
            Some(seq) => self.model.compare(&conn, seq),
            None => expect_empty(&conn),
        };
        self.compare_time += started.elapsed();
        res
    }

    /// The greatest durable seq whose sync returned at least `margin` before `t`.
    fn durable_by(&self, durable: &[Durable], t: DateTime<Utc>) -> Option<u64> {
        let t = SystemTime::from(t);
        durable
            .iter()
            .filter(|d| d.at + self.margin <= t)
            .map(|d| d.seq)
            .max()
    }

    /// Runs `walstream restore` (latest, or `-timestamp t`), checks integrity and reads the
    /// restored `meta.seq`.
    fn restore(&mut self, t: Option<DateTime<Utc>>) -> Result<(PathBuf, Option<u64>), String> {
        self.n += 1;
        let out = self.out_dir.join(format!("restored-{}.db", self.n));
        let mut cmd = Command::new(crate::common::walstream_bin());
        cmd.arg("restore")
            .arg("-config")
            .arg(&self.config)
            .arg("-o")
            .arg(&out);
        if let Some(t) = t {
            cmd.arg("-timestamp").arg(rfc3339(t));
            self.restores_timestamp += 1;
        } else {
            self.restores_latest += 1;
        }
        let started = Instant::now();
        let o = cmd
            .arg(&self.db)
            .output()
            .map_err(|e| format!("run walstream restore: {e}"))?;
        self.restore_time += started.elapsed();
        if !o.status.success() {
            return Err(format!(
                "walstream restore failed ({}): {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        let conn = Connection::open(&out).map_err(|e| format!("open restored db: {e}"))?;
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| format!("integrity_check: {e}"))?;
        if ok != "ok" {
            return Err(format!("integrity_check of {}: {ok}", out.display()));
        }
        match workload::committed_seq(&conn) {
            Ok(seq) => Ok((out, seq)),
            Err(e) => Err(format!("read restored meta.seq: {e}")),
        }
    }

    /// `n` restore times, each inside a consistent window (see [`points`]); mostly the newest
    /// generation's.
    fn pick_times(&mut self, rng: &mut Rng, n: usize) -> Result<Vec<DateTime<Utc>>, String> {
        let gens = self.windows()?;
        if gens.is_empty() {
            // Only snapshots without a later segment (a kill right after a new generation's
            // first snapshot): no target is consistent yet; the latest restore still runs.
            self.timestamps_unavailable += 1;
            return Ok(Vec::new());
        }
        let mut times = Vec::new();
        for _ in 0..n {
            let wins = if rng.chance(2, 3) {
                &gens[gens.len() - 1]
            } else {
                rng.pick(&gens)
            };
            let (lo, hi) = *rng.pick(wins);
            let span = (hi - lo).num_nanoseconds().unwrap_or(i64::MAX).max(0) as u64;
            let off = if span == 0 { 0 } else { rng.range(0, span + 1) };
            times.push(lo + chrono::Duration::nanoseconds(off as i64));
        }
        Ok(times)
    }

    /// The consistent `-timestamp` windows of every generation that has one, oldest id first.
    fn windows(&self) -> Result<Vec<Vec<Window>>, String> {
        let client = ReplicaClient::new(&self.target).map_err(|e| e.to_string())?;
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut ids = client.generations().await.map_err(|e| e.to_string())?;
            ids.sort();
            for id in ids {
                let snaps = client.snapshots(&id).await.map_err(|e| e.to_string())?;
                let segs = client.wal_segments(&id).await.map_err(|e| e.to_string())?;
                let w = points::windows(&snaps, &segs);
                if !w.is_empty() {
                    out.push(w);
                }
            }
            Ok(out)
        })
    }
}

impl Checker {
    /// Deletes every generation of the replica except those in `keep` (the ones walstream wrote
    /// at the last few checks, current last: the next round resumes it, and `-timestamp`
    /// targets still reach back across generation changes), so a long object-store run's
    /// storage stays bounded; does nothing when the current one is not in the replica. Returns
    /// how many were deleted.
    pub fn prune(&self, keep: &[String]) -> Result<u64, String> {
        let client = ReplicaClient::new(&self.target).map_err(|e| e.to_string())?;
        self.rt.block_on(async {
            let ids = client.generations().await.map_err(|e| e.to_string())?;
            if !keep.last().is_some_and(|k| ids.contains(k)) {
                return Ok(0);
            }
            let mut deleted = 0;
            for id in ids.iter().filter(|g| !keep.contains(g)) {
                client
                    .delete_generation(id)
                    .await
                    .map_err(|e| format!("delete generation {id}: {e}"))?;
                deleted += 1;
            }
            Ok(deleted)
        })
    }
}

/// The committed `meta.seq` of the live database (a short-lived connection that never
/// checkpoints on close).
pub fn read_seq(db: &Path) -> Result<Option<u64>, String> {
    let conn = Connection::open(db).map_err(|e| format!("open {}: {e}", db.display()))?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    workload::committed_seq(&conn).map_err(|e| format!("read meta.seq: {e}"))
}

/// The state before transaction 0: no application table at all.
fn expect_empty(conn: &Connection) -> Result<(), String> {
    let mut st = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_litestream\\_%' ESCAPE '\\'")
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    if names.is_empty() {
        Ok(())
    } else {
        Err(format!("no meta.seq but application tables {names:?}"))
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}
