//! The `replicate` orchestrator: runs every configured database and its replicas until the
//! shutdown future resolves, then performs one final sync under a deadline (spec §6.2).
//!
//! What must stay true:
//! - one database failing (not SQLite, unreadable) is logged for that database only; the others
//!   keep running; a database file that does not exist yet is waited for (file events, slow
//!   poll); one deleted or replaced while attached is detached and attached again as a new
//!   generation, its replicas keeping the old data;
//! - per-database cost stays flat: one process-wide file watcher ([`WatchHub`]), no thread per
//!   database, a quiet database wakes only for a `stat` re-check every [`IDLE_RECHECK`], and
//!   attaches and snapshots are bounded ([`ATTACH_CONCURRENCY`], [`SNAPSHOT_CONCURRENCY`]);
//! - task structure: a root [`CancellationToken`] with one child per database and one grandchild
//!   per replica; every task is spawned on one [`TaskTracker`]; a database with
//!   `backups.schedule` has one more task under its token (`backup_schedule`), one with
//!   `backups.drill-interval` one more (`drill`), the others none;
//! - shutdown: cancel the loops and the background tasks beside them (lag trackers, restore-point
//!   refreshers, the heartbeat: [`Lifecycle`]), wait for them and for HTTP work already started (an upload round
//!   in flight is finished), then a final `db.sync()` and `replica.sync()` of every opened
//!   database — not under the cancelled token but under [`Options::shutdown_timeout`] — then
//!   stop the services (the HTTP server, gracefully: requests in flight finish), then close the
//!   databases (releasing the read transaction, leaving `-wal` in place); nothing of ours
//!   touches storage after the final sync and no task is left when `run_with` returns;
//! - credentials never reach the log: start-up lines print only names, types, paths, buckets,
//!   regions and endpoints.

mod backup_schedule;
mod discovery;
pub mod drill;
mod fleet;
pub mod heartbeat;
mod lifecycle;
mod monitor;

pub use fleet::Fleet;
pub use lifecycle::Lifecycle;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::config::{Config, DbConfig, ReplicaConfig, ReplicaLocation, ReplicaTarget};
use crate::db::{Db, WatchHub};
use crate::gofmt::format_go_duration;
use crate::replica::Replica;
use crate::storage::{ErrorClass, Op, ReplicaClient};

/// Kubernetes' default grace period: the final sync must finish within it.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a database file that does not exist yet is looked for (without file events).
pub const DB_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// With file events, how often a quiet database is still checked (two `stat` calls) for a change
/// the watcher did not report — e.g. on a file system that does not deliver inotify events for
/// writes from elsewhere. Finding one switches that database to `monitor-interval` polling.
pub const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// Databases attaching (open + first sync) at once: thousands starting together queue up.
pub const ATTACH_CONCURRENCY: usize = 8;
/// Snapshots (reading and uploading a whole database file) running at once in one process.
pub const SNAPSHOT_CONCURRENCY: usize = 4;
/// Least time the services (the HTTP server's requests in flight) get after the final sync, even
/// when it used up the shutdown deadline.
pub const SERVICE_DRAIN_MIN: Duration = Duration::from_secs(2);

/// Tunables of a run that are not part of Litestream's config file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline for stopping the loops plus the final sync.
    pub shutdown_timeout: Duration,
    /// How often a missing database file is looked for.
    pub db_poll_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            db_poll_interval: DB_POLL_INTERVAL,
        }
    }
}

/// One database and its replicas.
pub struct DbHandle {
    pub db: Arc<Db>,
    pub replicas: Vec<Arc<Replica>>,
    /// Where the admin API keeps this database's backups (`dbs[].backups`).
    pub backups: crate::config::BackupsConfig,
    /// One admin operation at a time (HTTP backups, restores, deletes, scheduled backups).
    pub ops: Arc<crate::admin::OpLock>,
    /// The summary of the backups folder, shared by every backup store of this database.
    pub backup_tally: Arc<crate::admin::tally::Tally>,
    /// The last restore drill's report (`backups.drill-interval` or `POST …/drill`).
    pub drill: std::sync::Mutex<Option<crate::admin::drill::DrillReport>>,
    /// Each replica's name and location, in config order: no other database of the fleet may
    /// write to these ([`Fleet`] refuses it).
    locations: Vec<(String, ReplicaLocation)>,
    /// Set once the replicas' loops were started (on the first attach).
    replicas_started: AtomicBool,
    monitor_interval: Duration,
    checkpoint_interval: Duration,
    /// Minimum time between two db syncs started by file-change events.
    sync_pace: Duration,
    /// Ends this database's loops (shutdown, or the file was removed from a watched `dir`).
    cancel: CancellationToken,
}

impl DbHandle {
    /// True while the database is attached (only then is a final sync meaningful).
    pub fn is_open(&self) -> bool {
        self.db.is_open()
    }
}

/// Runs until `shutdown` resolves, with default [`Options`].
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with(config, shutdown, Options::default(), |_, _| {}).await
}

/// Runs until `shutdown` resolves. `started` receives the [`Fleet`] once the configured
/// databases are started (the HTTP server and tests read replica status through it; databases
/// discovered under `dir` entries join it as they are found) and the run's [`Lifecycle`], on
/// which everything it starts must be spawned.
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()>,
    opts: Options,
    started: impl FnOnce(&Arc<Fleet>, &Lifecycle),
) -> anyhow::Result<()> {
    crate::db::configure_process_memory();
    info!(version = %format!("v{}", env!("CARGO_PKG_VERSION")), "walstream");
    if config.dbs.is_empty() && config.dirs.is_empty() {
        error!("no databases specified in configuration");
    }
    let root = CancellationToken::new();
    let tracker = TaskTracker::new();
    let launcher = Arc::new(fleet::Launcher {
        fleet: Fleet::new(),
        root: root.clone(),
        tracker: tracker.clone(),
        ctx: Arc::new(monitor::RunCtx {
            hub: WatchHub::new(),
            attach: Arc::new(Semaphore::new(ATTACH_CONCURRENCY)),
            poll: opts.db_poll_interval,
        }),
        snapshots: Arc::new(Semaphore::new(SNAPSHOT_CONCURRENCY)),
        v05: Arc::new(config.v05.clone()),
    });
    for cfg in &config.dbs {
        launcher.launch(cfg)?;
    }
    for dir in &config.dirs {
        let (dir, l, cancel) = (
            Arc::new(dir.clone()),
            Arc::clone(&launcher),
            root.child_token(),
        );
        tracker.spawn(discovery::run(dir, l, cancel));
    }
    let lifecycle = Lifecycle::new(root.clone(), tracker.clone());
    if let Some(url) = config.v05.heartbeat_url.clone() {
        let hb = heartbeat::Heartbeat {
            url,
            interval: config.v05.heartbeat_interval,
        };
        let stats = launcher.fleet.heartbeat_stats();
        let (fleet, life) = (Arc::clone(&launcher.fleet), lifecycle.clone());
        lifecycle.spawn_background(heartbeat::run(hb, fleet, life, stats));
    }
    started(&launcher.fleet, &lifecycle);
    shutdown.await;

    let deadline = Instant::now() + opts.shutdown_timeout;
    root.cancel();
    tracker.close();
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        warn!("background tasks did not stop before the shutdown deadline");
    }
    let handles = launcher.fleet.handles();
    let (requests, lists) = storage_requests(&handles);
    debug!(
        storage_requests = requests,
        storage_lists = lists,
        "loops stopped"
    );
    if tokio::time::timeout_at(deadline, final_sync(&handles))
        .await
        .is_err()
    {
        error!(
            timeout = %format_go_duration(opts.shutdown_timeout.as_nanos() as i128),
            "final sync did not finish before the shutdown deadline"
        );
    }
    let (requests, lists) = storage_requests(&handles);
    debug!(
        storage_requests = requests,
        storage_lists = lists,
        "final sync done"
    );
    let drain = deadline.max(Instant::now() + SERVICE_DRAIN_MIN);
    if !lifecycle.finish(drain).await {
        warn!("http requests still running at the shutdown deadline");
    }
    let (requests, lists) = storage_requests(&handles);
    let tasks_left = lifecycle.running();
    debug!(
        storage_requests = requests,
        storage_lists = lists,
        tasks_left,
        "services stopped"
    );
    for h in handles.iter().filter(|h| h.is_open()) {
        if let Err(e) = h.db.close().await {
            error!(db = %h.db.path().display(), error = %e, "close error");
        }
    }
    info!("walstream shut down");
    Ok(())
}

/// Builds the database and its replica clients, logging the start-up lines. A singular
/// `replica:` (v0.5 shape) gets the LTX writer with `v05`'s levels, snapshots and retention.
fn build_db(
    cfg: &DbConfig,
    snapshots: &Arc<Semaphore>,
    v05: &Arc<crate::config::V05Settings>,
    cancel: CancellationToken,
) -> anyhow::Result<Arc<DbHandle>> {
    let db = Db::new(cfg);
    info!(path = %cfg.path.display(), "initialized db");
    let mut replicas = Vec::with_capacity(cfg.replicas.len());
    for rc in &cfg.replicas {
        let client = ReplicaClient::for_replica(rc)
            .with_context(|| {
                format!(
                    "cannot open replica {:?} of {}",
                    rc.name,
                    cfg.path.display()
                )
            })?
            .with_modes_from(&cfg.path);
        log_replica(rc);
        let ltx = crate::config::ReplicaLayout::of(rc, cfg.v05_replica)
            == crate::config::ReplicaLayout::Ltx;
        let replica = if ltx {
            info!(name = %rc.name, "replica writes the Litestream v0.5 (LTX) layout");
            Replica::with_ltx(
                Arc::clone(&db),
                rc.clone(),
                client,
                Some(Arc::clone(snapshots)),
                Arc::clone(v05),
            )
        } else {
            Replica::with_snapshot_permits(
                Arc::clone(&db),
                rc.clone(),
                client,
                Arc::clone(snapshots),
            )
        };
        replicas.push(replica);
    }
    Ok(Arc::new(DbHandle {
        db,
        replicas,
        backups: cfg.backups.clone(),
        ops: crate::admin::OpLock::new(
            &cfg.path.display().to_string(),
            Some(crate::admin::BackupStore::new(&cfg.path, &cfg.backups)),
        ),
        backup_tally: Arc::default(),
        drill: std::sync::Mutex::new(None),
        locations: replica_locations(cfg),
        replicas_started: AtomicBool::new(false),
        monitor_interval: cfg.monitor_interval,
        checkpoint_interval: cfg.checkpoint_interval,
        sync_pace: db_sync_pace(cfg),
        cancel,
    }))
}

/// Each replica's name and location, in config order.
fn replica_locations(cfg: &DbConfig) -> Vec<(String, ReplicaLocation)> {
    let replicas = cfg.replicas.iter();
    replicas
        .map(|r| (r.name.clone(), r.target.location()))
        .collect()
}

/// `replicating to name=… type=… sync-interval=…` plus the target's location fields.
fn log_replica(rc: &ReplicaConfig) {
    let interval = format_go_duration(rc.sync_interval.as_nanos() as i128);
    let (name, kind) = (rc.name.as_str(), rc.target.type_name());
    match &rc.target {
        ReplicaTarget::File { path } => {
            info!(name, r#type = kind, "sync-interval" = %interval, path = %path.display(), "replicating to")
        }
        ReplicaTarget::S3(t) => info!(
            name, r#type = kind, "sync-interval" = %interval, bucket = %t.bucket, path = %t.path,
            region = %t.region.as_deref().unwrap_or(""), endpoint = %t.endpoint.as_deref().unwrap_or(""),
            "replicating to"
        ),
        ReplicaTarget::Gcs(t) => info!(
            name, r#type = kind, "sync-interval" = %interval, bucket = %t.bucket, path = %t.path,
            "replicating to"
        ),
        ReplicaTarget::Abs(t) => info!(
            name, r#type = kind, "sync-interval" = %interval, bucket = %t.bucket, path = %t.path,
            endpoint = %t.endpoint.as_deref().unwrap_or(""), "replicating to"
        ),
    }
}

/// How often file-change events may start a db sync: no more often than the fastest consumer
/// (the smallest replica `sync-interval`) can use the result, and never slower than
/// `monitor-interval`. Syncing on every commit would copy the WAL in tiny pieces for nothing.
pub fn db_sync_pace(cfg: &DbConfig) -> Duration {
    cfg.replicas
        .iter()
        .map(|r| r.sync_interval)
        .min()
        .map_or(cfg.monitor_interval, |s| s.min(cfg.monitor_interval))
}

/// Storage requests of every replica client so far (successes, errors and retries) and the
/// successful listings among them, for the shutdown log lines that show no listing ran after
/// shutdown started and nothing reached storage after the final sync.
fn storage_requests(handles: &[Arc<DbHandle>]) -> (u64, u64) {
    let replicas = handles.iter().flat_map(|h| h.replicas.iter());
    replicas.fold((0, 0), |(requests, lists), r| {
        let s = r.client().stats();
        let ops: u64 = Op::ALL.iter().map(|&op| s.operations(op)).sum();
        let errors: u64 = ErrorClass::ALL.iter().map(|&c| s.errors(c)).sum();
        (
            requests + ops + errors + s.retries(),
            lists + s.operations(Op::List),
        )
    })
}

/// Final sync of every opened database and its replicas (concurrently per database).
async fn final_sync(handles: &[Arc<DbHandle>]) {
    let jobs = handles.iter().filter(|h| h.is_open()).map(|h| async move {
        let label = h.db.path().display().to_string();
        if let Err(e) = h.db.sync().await {
            error!(db = %label, error = %e, "final sync error");
        }
        let replicas = h.replicas.iter().map(|r| async {
            match r.sync().await {
                // A replica refused by its path's owner record was logged when refused.
                Err(e) if !e.is_owner_conflict() => {
                    error!(db = %label, replica = %r.name(), error = %e, "final replica sync error");
                }
                _ => {}
            }
        });
        futures::future::join_all(replicas).await;
    });
    futures::future::join_all(jobs).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReplicaConfig;

    fn replica(sync: Duration) -> ReplicaConfig {
        let target = ReplicaTarget::File { path: "/r".into() };
        let mut r = ReplicaConfig::with_defaults("file".into(), target);
        r.sync_interval = sync;
        r
    }

    #[test]
    fn db_sync_pace_follows_fastest_replica_capped_by_monitor_interval() {
        let ms = Duration::from_millis;
        let mut cfg = DbConfig::with_defaults("/data/app.db");
        cfg.monitor_interval = ms(1000);
        assert_eq!(
            db_sync_pace(&cfg),
            ms(1000),
            "no replicas: monitor interval"
        );
        cfg.replicas = vec![replica(ms(1000)), replica(ms(10))];
        assert_eq!(db_sync_pace(&cfg), ms(10));
        cfg.replicas = vec![replica(ms(5000))];
        assert_eq!(db_sync_pace(&cfg), ms(1000));
    }
}
