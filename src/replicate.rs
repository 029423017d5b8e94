//! The `replicate` orchestrator: runs every configured database and its replicas until the
//! shutdown future resolves, then performs one final sync under a deadline (spec §6.2).
//!
//! What must stay true:
//! - one database failing (not SQLite, unreadable) is logged for that database only; the others
//!   keep running; a database file that does not exist yet is polled until it appears;
//! - task structure: a root [`CancellationToken`] with one child per database and one grandchild
//!   per replica; every task is spawned on one [`TaskTracker`];
//! - shutdown: cancel the loops, wait for them (an upload round in flight is finished), then a
//!   final `db.sync()` and `replica.sync()` of every opened database — not under the cancelled
//!   token but under [`Options::shutdown_timeout`] — then close the databases (releasing the read
//!   transaction, leaving `-wal` in place);
//! - credentials never reach the log: start-up lines print only names, types, paths, buckets,
//!   regions and endpoints.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::duration::format_go_duration;
use crate::config::{Config, DbConfig, ReplicaConfig, ReplicaTarget};
use crate::db::{Db, DbError};
use crate::replica::Replica;
use crate::storage::ReplicaClient;

/// Kubernetes' default grace period: the final sync must finish within it.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a database file that does not exist yet is looked for.
pub const DB_POLL_INTERVAL: Duration = Duration::from_secs(1);

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
    opened: AtomicBool,
    monitor_interval: Duration,
    /// Minimum time between two db syncs started by file-change events.
    sync_pace: Duration,
}

impl DbHandle {
    /// True once the database was attached (only then is a final sync meaningful).
    pub fn is_open(&self) -> bool {
        self.opened.load(Ordering::Acquire)
    }
}

/// Runs until `shutdown` resolves, with default [`Options`].
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with(config, shutdown, Options::default(), |_| {}).await
}

/// Runs until `shutdown` resolves. `started` receives the handles once every task is spawned
/// (the HTTP server and tests read replica status through them).
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()>,
    opts: Options,
    started: impl FnOnce(&[Arc<DbHandle>]),
) -> anyhow::Result<()> {
    info!(version = %format!("v{}", env!("CARGO_PKG_VERSION")), "walstream");
    if config.dbs.is_empty() {
        error!("no databases specified in configuration");
    }
    let handles = config
        .dbs
        .iter()
        .map(build_db)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let root = CancellationToken::new();
    let tracker = TaskTracker::new();
    for h in &handles {
        let (h, cancel, t) = (Arc::clone(h), root.child_token(), tracker.clone());
        tracker.spawn(db_task(h, cancel, t, opts.db_poll_interval));
    }
    started(&handles);
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
    if tokio::time::timeout_at(deadline, final_sync(&handles))
        .await
        .is_err()
    {
        error!(
            timeout = %format_go_duration(opts.shutdown_timeout.as_nanos() as i128),
            "final sync did not finish before the shutdown deadline"
        );
    }
    for h in handles.iter().filter(|h| h.is_open()) {
        if let Err(e) = h.db.close().await {
            error!(db = %h.db.path().display(), error = %e, "close error");
        }
    }
    info!("walstream shut down");
    Ok(())
}

/// Builds the database and its replica clients, logging the start-up lines.
fn build_db(cfg: &DbConfig) -> anyhow::Result<Arc<DbHandle>> {
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
        replicas.push(Replica::new(Arc::clone(&db), rc.clone(), client));
    }
    Ok(Arc::new(DbHandle {
        db,
        replicas,
        backups: cfg.backups.clone(),
        opened: AtomicBool::new(false),
        monitor_interval: cfg.monitor_interval,
        sync_pace: db_sync_pace(cfg),
    }))
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

/// Attaches one database (waiting for its file), starts its replicas, then syncs it on every
/// change until cancelled.
async fn db_task(
    h: Arc<DbHandle>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    poll: Duration,
) {
    if !open_when_present(&h, &cancel, poll).await {
        return;
    }
    h.opened.store(true, Ordering::Release);
    let label = h.db.path().display().to_string();
    // One sync first so the replicas start with a generation to work on.
    if let Err(e) = h.db.sync().await {
        error!(db = %label, error = %e, "sync error");
    }
    for r in &h.replicas {
        tracker.spawn(Arc::clone(r).run(cancel.child_token()));
    }
    monitor(&h, &cancel, &label).await;
}

/// Opens the database, polling while its file does not exist. False when cancelled or when the
/// database cannot be used (logged).
async fn open_when_present(h: &DbHandle, cancel: &CancellationToken, poll: Duration) -> bool {
    let mut waiting_logged = false;
    loop {
        match h.db.open().await {
            Ok(()) => return true,
            Err(DbError::NotFound { .. }) => {
                if !waiting_logged {
                    info!(db = %h.db.path().display(), "waiting for database file");
                    waiting_logged = true;
                }
            }
            Err(e) => {
                error!(db = %h.db.path().display(), error = %e, "cannot open database");
                return false;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(poll) => {}
        }
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

/// The sync loop of one database: on file changes (watcher, paced by [`db_sync_pace`]) and at
/// least every `monitor-interval`. A monitor interval of 0 disables syncing (Litestream's
/// semantics).
async fn monitor(h: &DbHandle, cancel: &CancellationToken, label: &str) {
    if h.monitor_interval.is_zero() {
        return;
    }
    let mut changes = h.db.watch_changes();
    let mut tick = tokio::time::interval(h.monitor_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pace = crate::replica::rate::RateLimiter::new(h.sync_pace);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
            _ = changes.changed() => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = pace.acquire() => {}
        }
        match h.db.sync().await {
            Ok(_) => {
                if failing {
                    info!(db = %label, "sync recovered");
                }
                failing = false;
            }
            Err(e) if !failing => {
                error!(db = %label, error = %e, "sync error");
                failing = true;
            }
            Err(e) => tracing::debug!(db = %label, error = %e, "sync error"),
        }
    }
}

/// Final sync of every opened database and its replicas (concurrently per database).
async fn final_sync(handles: &[Arc<DbHandle>]) {
    let jobs = handles.iter().filter(|h| h.is_open()).map(|h| async move {
        let label = h.db.path().display().to_string();
        if let Err(e) = h.db.sync().await {
            error!(db = %label, error = %e, "final sync error");
        }
        let replicas = h.replicas.iter().map(|r| async {
            if let Err(e) = r.sync().await {
                error!(db = %label, replica = %r.name(), error = %e, "final replica sync error");
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
