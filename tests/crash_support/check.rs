//! After each round (walstream dead): restore the latest point and one or two points in time with
//! the real `walstream restore`, and check each result: `PRAGMA integrity_check` is `ok`, the
//! content equals the workload replayed to the boundary its `meta.seq` names, the latest restore
//! holds every transaction a `POST …/sync` (or a clean stop) made durable, and a point-in-time
//! restore lies between what was durable by then and the latest restore. v0.3 layout:
//! `-timestamp` targets drawn from the consistent windows of [`super::points`]. LTX layout:
//! `-txid` targets drawn from the file ends the listing can reach ([`ltx::reachable_ends`]),
//! whose restores must be in TXID order and hold every sync whose TXID they reach; every level
//! must be gap- and overlap-free ([`ltx::check_levels`]); and [`Checker::compare_litestream`]
//! restores with the real Litestream v0.5.17 and compares.
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

use super::ltx;
use super::model::Model;
use super::points::{self, Window};
use super::rng::Rng;
use super::workload;

/// A `POST …/sync` that answered 200 (or a clean SIGTERM stop): every transaction up to `seq`
/// was in the replica at `at` (LTX: in a file up to TXID `txid`, the highest one listed right
/// after).
#[derive(Clone, Copy, Debug)]
pub struct Durable {
    pub at: SystemTime,
    pub seq: u64,
    pub txid: Option<u64>,
}

/// What a restore aims at.
#[derive(Clone, Copy, Debug)]
enum Point {
    Latest,
    Timestamp(DateTime<Utc>),
    Txid(u64),
}

impl Point {
    fn args(&self) -> Vec<String> {
        match self {
            Point::Latest => Vec::new(),
            Point::Timestamp(t) => vec!["-timestamp".into(), rfc3339(*t)],
            Point::Txid(t) => vec!["-txid".into(), ltx::txid_hex(*t)],
        }
    }

    fn label(&self) -> String {
        match self {
            Point::Latest => "latest".into(),
            other => other.args().join(" "),
        }
    }
}

/// One restore result waiting to be compared.
struct Restored {
    what: String,
    /// LTX `-txid` target (restores must be in TXID order).
    txid: Option<u64>,
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
    /// Rounds in which no `-timestamp` target was consistent (see [`points`]), or (LTX) no
    /// `-txid` target was reachable.
    pub timestamps_unavailable: u64,
    /// The replica is in the LTX layout.
    pub ltx: bool,
    /// LTX: Litestream v0.5.17's config for this database's replica.
    pub litestream_config: PathBuf,
    /// LTX: listings checked, rounds with files per level, Litestream restores compared.
    pub level_checks: u64,
    pub levels_seen: [u64; ltx::LEVELS],
    pub litestream_restores: u64,
    /// LTX: gaps below the oldest snapshot seen (retention's, [`ltx::check_levels`]).
    pub retention_gaps: u64,
    /// LTX: checks that found the replica empty with nothing durable (a kill before the first
    /// L0 was stored), where the latest restore has nothing to restore.
    pub empty_replicas: u64,
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
        ltx: bool,
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
            litestream_config: out_dir.join("litestream5.yml"),
            config,
            db,
            out_dir,
            target,
            margin,
            model: Model::new(seed),
            restores_latest: 0,
            restores_timestamp: 0,
            timestamps_unavailable: 0,
            ltx,
            level_checks: 0,
            retention_gaps: 0,
            empty_replicas: 0,
            levels_seen: [0; ltx::LEVELS],
            litestream_restores: 0,
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
        let listing = self.ltx.then(|| self.listing());
        // LTX: a kill before the first L0 was stored leaves nothing to restore; that is no loss
        // while nothing was durable (v0.3 rounds kill only after the first snapshot is stored).
        let nothing_yet = durable.is_empty() && matches!(&listing, Some(Ok(l)) if ltx::top(l) == 0);
        match self.restore(Point::Latest) {
            Ok((path, seq)) => restored.push(Restored {
                what: "latest".into(),
                txid: None,
                path,
                seq,
                min: durable_max,
            }),
            Err(_) if nothing_yet => self.empty_replicas += 1,
            Err(e) => problems.push(format!("latest restore: {e}")),
        }
        let n = rng.range(1, 3) as usize;
        let points = if let Some(listing) = listing {
            match listing {
                Ok(listing) => {
                    problems.extend(self.check_levels(&listing));
                    self.pick_txids(rng, n, &listing)
                }
                Err(e) => {
                    problems.push(format!("listing the replica: {e}"));
                    Vec::new()
                }
            }
        } else {
            match self.pick_times(rng, n) {
                Ok(times) => times.into_iter().map(Point::Timestamp).collect(),
                Err(e) => {
                    problems.push(format!("listing the replica: {e}"));
                    Vec::new()
                }
            }
        };
        for point in points {
            let (min, txid) = match point {
                Point::Timestamp(t) => (self.durable_by(durable, t), None),
                Point::Txid(t) => (durable_by_txid(durable, t), Some(t)),
                Point::Latest => (durable_max, None),
            };
            match self.restore(point) {
                Ok((path, seq)) => restored.push(Restored {
                    what: point.label(),
                    txid,
                    path,
                    seq,
                    min,
                }),
                Err(e) => problems.push(format!("restore {}: {e}", point.label())),
            }
        }
        problems.extend(self.judge(restored));
        problems
    }

    /// LTX: the layout rules' violations in `listing` ([`ltx::check_levels`]), counted.
    fn check_levels(&mut self, listing: &ltx::Listing) -> Vec<String> {
        self.level_checks += 1;
        for (seen, count) in self.levels_seen.iter_mut().zip(ltx::counts(listing)) {
            *seen += u64::from(count > 0);
        }
        let c = ltx::check_levels(listing);
        self.retention_gaps += c.retention_gaps as u64;
        c.problems
    }

    /// LTX: `n` distinct `-txid` targets among the file ends `listing` can reach, ascending.
    fn pick_txids(&mut self, rng: &mut Rng, n: usize, listing: &ltx::Listing) -> Vec<Point> {
        let mut ends = ltx::reachable_ends(listing);
        if ends.is_empty() {
            self.timestamps_unavailable += 1;
            return Vec::new();
        }
        let mut picked = Vec::new();
        while picked.len() < n && !ends.is_empty() {
            let i = rng.range(0, ends.len() as u64) as usize;
            picked.push(ends.remove(i));
        }
        picked.sort_unstable();
        picked.into_iter().map(Point::Txid).collect()
    }

    /// LTX: every level's files.
    pub fn listing(&self) -> Result<ltx::Listing, String> {
        let client = ReplicaClient::new(&self.target).map_err(|e| e.to_string())?;
        self.rt.block_on(ltx::list(&client))
    }

    /// LTX: the highest TXID stored (0: nothing yet).
    pub fn top_txid(&self) -> Result<u64, String> {
        self.listing().map(|l| ltx::top(&l))
    }

    /// LTX: restores the latest state and up to two reachable `-txid` targets with both the real
    /// `litestream restore` v0.5.17 and `walstream restore`; each pair must pass the integrity
    /// check, hold the same `meta.seq` and equal the replay there.
    pub fn compare_litestream(&mut self, rng: &mut Rng) -> Vec<String> {
        let mut problems = Vec::new();
        let mut points = vec![Point::Latest];
        match self.listing() {
            Ok(listing) => points.extend(self.pick_txids(rng, 2, &listing)),
            Err(e) => problems.push(format!("listing the replica: {e}")),
        }
        for point in points {
            let label = point.label();
            let ours = self.restore(point);
            let theirs = self.litestream_restore(point);
            match (ours, theirs) {
                (Ok((a, seq_a)), Ok((b, seq_b))) => {
                    self.litestream_restores += 1;
                    if seq_a != seq_b {
                        problems.push(format!(
                            "{label}: litestream v0.5.17 restored seq {seq_b:?}, walstream {seq_a:?}"
                        ));
                    }
                    for (who, path, seq) in [("walstream", &a, seq_a), ("litestream", &b, seq_b)] {
                        if let Err(e) = self.compare(path, seq) {
                            problems.push(format!("{label} by {who}: {e}"));
                        }
                    }
                    remove_db(&a);
                    remove_db(&b);
                }
                (ours, theirs) => {
                    for r in [&ours, &theirs].into_iter().flatten() {
                        remove_db(&r.0);
                    }
                    let say = |r: &Result<(PathBuf, Option<u64>), String>| match r {
                        Ok((_, seq)) => format!("seq {seq:?}"),
                        Err(e) => e.clone(),
                    };
                    problems.push(format!(
                        "{label}: walstream {}; litestream v0.5.17 {}",
                        say(&ours),
                        say(&theirs)
                    ));
                }
            }
        }
        problems
    }

    /// `litestream restore` v0.5.17 of `point` (its own config naming the same replica).
    fn litestream_restore(&mut self, point: Point) -> Result<(PathBuf, Option<u64>), String> {
        self.n += 1;
        let out = self.out_dir.join(format!("litestream-{}.db", self.n));
        let o = Command::new(crate::common::litestream5_bin())
            .arg("restore")
            .arg("-config")
            .arg(&self.litestream_config)
            .arg("-o")
            .arg(&out)
            .args(point.args())
            .arg(&self.db)
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("LITESTREAM_CONFIG")
            .output()
            .map_err(|e| format!("run litestream restore: {e}"))?;
        restored("litestream", &o, out)
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
        // LTX: a later `-txid` never restores an earlier state.
        let mut by_txid: Vec<&Restored> = restored.iter().filter(|r| r.txid.is_some()).collect();
        by_txid.sort_by_key(|r| r.txid);
        for pair in by_txid.windows(2) {
            if pair[1].seq < pair[0].seq {
                problems.push(format!(
                    "{} restored seq {:?} but {} restored seq {:?}",
                    pair[1].what, pair[1].seq, pair[0].what, pair[0].seq
                ));
            }
        }
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

    /// Runs `walstream restore` (latest, `-timestamp t` or `-txid t`), checks integrity and
    /// reads the restored `meta.seq`.
    fn restore(&mut self, point: Point) -> Result<(PathBuf, Option<u64>), String> {
        self.n += 1;
        let out = self.out_dir.join(format!("restored-{}.db", self.n));
        let mut cmd = Command::new(crate::common::walstream_bin());
        cmd.arg("restore")
            .arg("-config")
            .arg(&self.config)
            .arg("-o")
            .arg(&out)
            .args(point.args());
        match point {
            Point::Latest => self.restores_latest += 1,
            Point::Timestamp(_) | Point::Txid(_) => self.restores_timestamp += 1,
        }
        let started = Instant::now();
        let o = cmd
            .arg(&self.db)
            .output()
            .map_err(|e| format!("run walstream restore: {e}"))?;
        self.restore_time += started.elapsed();
        restored("walstream", &o, out)
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

/// The outcome of `<tool> restore -o out …`: `out` and its `meta.seq` when the tool exited 0
/// and the result passes [`open_checked`].
fn restored(
    tool: &str,
    o: &std::process::Output,
    out: PathBuf,
) -> Result<(PathBuf, Option<u64>), String> {
    if !o.status.success() {
        return Err(format!(
            "{tool} restore failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    open_checked(&out).map(|seq| (out, seq))
}

/// A restored database's `meta.seq`, after `PRAGMA integrity_check` returned `ok`.
fn open_checked(out: &Path) -> Result<Option<u64>, String> {
    let conn = Connection::open(out).map_err(|e| format!("open restored db: {e}"))?;
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check: {e}"))?;
    if ok != "ok" {
        return Err(format!("integrity_check of {}: {ok}", out.display()));
    }
    workload::committed_seq(&conn).map_err(|e| format!("read restored meta.seq: {e}"))
}

/// LTX: the greatest durable seq whose sync was stored at or below TXID `t`.
fn durable_by_txid(durable: &[Durable], t: u64) -> Option<u64> {
    durable
        .iter()
        .filter(|d| d.txid.is_some_and(|x| x <= t))
        .map(|d| d.seq)
        .max()
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
