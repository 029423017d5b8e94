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
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::duration::format_go_duration;
use crate::config::{Config, DbConfig, ReplicaConfig, ReplicaTarget};
use crate::db::{Db, DbError, WalWatcher, WatchHub};
use crate::replica::Replica;
use crate::storage::ReplicaClient;

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
    checkpoint_interval: Duration,
    /// Minimum time between two db syncs started by file-change events.
    sync_pace: Duration,
}

impl DbHandle {
    /// True while the database is attached (only then is a final sync meaningful).
    pub fn is_open(&self) -> bool {
        self.db.is_open()
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
    crate::db::configure_process_memory();
    info!(version = %format!("v{}", env!("CARGO_PKG_VERSION")), "walstream");
    if config.dbs.is_empty() {
        error!("no databases specified in configuration");
    }
    let snapshots = Arc::new(Semaphore::new(SNAPSHOT_CONCURRENCY));
    let handles = config
        .dbs
        .iter()
        .map(|cfg| build_db(cfg, &snapshots))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let root = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ctx = Arc::new(RunCtx {
        hub: WatchHub::new(),
        attach: Arc::new(Semaphore::new(ATTACH_CONCURRENCY)),
        poll: opts.db_poll_interval,
    });
    for h in &handles {
        let (h, cancel, t) = (Arc::clone(h), root.child_token(), tracker.clone());
        tracker.spawn(db_task(h, cancel, t, Arc::clone(&ctx)));
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
fn build_db(cfg: &DbConfig, snapshots: &Arc<Semaphore>) -> anyhow::Result<Arc<DbHandle>> {
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
        replicas.push(Replica::with_snapshot_permits(
            Arc::clone(&db),
            rc.clone(),
            client,
            Arc::clone(snapshots),
        ));
    }
    Ok(Arc::new(DbHandle {
        db,
        replicas,
        backups: cfg.backups.clone(),
        opened: AtomicBool::new(false),
        monitor_interval: cfg.monitor_interval,
        checkpoint_interval: cfg.checkpoint_interval,
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

/// What a run shares between its databases: the one file watcher and the start-up limits.
struct RunCtx {
    hub: WatchHub,
    /// Bounds attaches (open + first sync) running at once.
    attach: Arc<Semaphore>,
    poll: Duration,
}

/// Attaches one database (waiting for its file), starts its replicas, then syncs it on every
/// change until cancelled. A database that is deleted or replaced while attached is detached and
/// attached again (a new generation); its replicas keep running and keep the old data.
async fn db_task(
    h: Arc<DbHandle>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    ctx: Arc<RunCtx>,
) {
    let label = h.db.path().display().to_string();
    // Registered before the first attach, so no change after it goes unnoticed.
    let mut changes = h.db.watch_changes(&ctx.hub);
    loop {
        if !attach_when_present(&h, &cancel, &ctx, &mut changes).await {
            return;
        }
        if !h.opened.swap(true, Ordering::AcqRel) {
            for r in &h.replicas {
                tracker.spawn(Arc::clone(r).run(cancel.child_token()));
            }
        }
        match monitor(&h, &cancel, &label, &mut changes).await {
            None => return,
            Some(DbError::Replaced { .. }) => {
                info!(db = %label, "database file replaced, attaching the new file (new generation)")
            }
            Some(_) => info!(db = %label, "database file removed, waiting for it to reappear"),
        }
    }
}

/// Opens the database and runs its first sync (under an attach permit), waiting while its file
/// does not exist: woken by the file watcher, or polled every [`Options::db_poll_interval`] when
/// the directory is not watched (every [`IDLE_RECHECK`] when it is). False when cancelled or when
/// the database cannot be used (logged).
async fn attach_when_present(
    h: &DbHandle,
    cancel: &CancellationToken,
    ctx: &RunCtx,
    changes: &mut WalWatcher,
) -> bool {
    let mut waiting_logged = false;
    let wait = if changes.is_active() {
        ctx.poll.max(IDLE_RECHECK)
    } else {
        ctx.poll
    };
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => return false,
            p = Arc::clone(&ctx.attach).acquire_owned() => p,
        };
        let opened = h.db.open().await;
        if opened.is_ok() {
            // One sync first so the replicas start with a generation to work on.
            if let Err(e) = h.db.sync().await {
                error!(db = %h.db.path().display(), error = %e, "sync error");
            }
            return true;
        }
        drop(permit);
        match opened {
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
            Ok(()) => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = changes.changed() => {}
            _ = tokio::time::sleep(wait) => {}
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

/// The sync loop of one database, event-driven: a sync runs when the file watcher reports a
/// change (paced by [`db_sync_pace`]). Without events (or after the watcher missed one) it
/// polls every `monitor-interval`, like Litestream. With events, a timer only re-checks every
/// [`IDLE_RECHECK`] (two `stat` calls; a sync only if something changed that no event reported —
/// then the database falls back to polling) and wakes when the time-based checkpoint
/// (`checkpoint-interval`) falls due, so an idle database costs nearly nothing. A monitor
/// interval of 0 disables syncing (Litestream's semantics). Returns `None` when cancelled, or
/// the error that detached the database (its file was removed or replaced).
async fn monitor(
    h: &DbHandle,
    cancel: &CancellationToken,
    label: &str,
    changes: &mut WalWatcher,
) -> Option<DbError> {
    if h.monitor_interval.is_zero() {
        cancel.cancelled().await;
        return None;
    }
    let mut pace = crate::replica::rate::RateLimiter::new(h.sync_pace);
    let mut failing = false;
    let mut polling = !changes.is_active();
    let mut seen = (changes.events(), h.db.fingerprint());
    loop {
        let wait = if polling || failing {
            h.monitor_interval
        } else {
            idle_wait(h, &seen.1)
        };
        let by_event = tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(wait) => false,
            _ = changes.changed() => true,
        };
        if !by_event && !polling && !failing {
            let now = h.db.fingerprint();
            if now == seen.1 && !checkpoint_due(h, &now) {
                continue; // quiet: nothing written, nothing due
            }
            if now != seen.1 && !event_arrives(changes, seen.0).await {
                warn!(db = %label, "file watcher missed a change, polling at monitor-interval");
                polling = true;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = pace.acquire() => {}
        }
        let events_before = changes.events();
        let result = h.db.sync().await;
        seen = (events_before, h.db.fingerprint());
        match result {
            Ok(_) => {
                if failing {
                    info!(db = %label, "sync recovered");
                }
                failing = false;
            }
            Err(e @ (DbError::Replaced { .. } | DbError::NotFound { .. })) => return Some(e),
            Err(e) if !failing => {
                error!(db = %label, error = %e, "sync error");
                failing = true;
            }
            Err(e) => tracing::debug!(db = %label, error = %e, "sync error"),
        }
    }
}

/// How long an event-driven database may sleep: until the next re-check, or until its
/// time-based checkpoint falls due if that comes first.
fn idle_wait(h: &DbHandle, seen: &crate::db::Fingerprint) -> Duration {
    let recheck = h.monitor_interval.max(IDLE_RECHECK);
    match checkpoint_due_at(h, seen) {
        Some(at) => at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(recheck),
        None => recheck,
    }
}

/// When the time-based PASSIVE checkpoint (spec §3.5: database file unmodified for
/// `checkpoint-interval` while the shadow holds more than one frame) falls due, if it can.
fn checkpoint_due_at(h: &DbHandle, fp: &crate::db::Fingerprint) -> Option<SystemTime> {
    if h.checkpoint_interval.is_zero() {
        return None;
    }
    let st = h.db.state();
    let pos = st.pos.as_ref()?;
    if st.page_size == 0 || pos.offset <= crate::db::checkpoint::wal_size_for(st.page_size, 1) {
        return None;
    }
    // A hair past the interval: the policy wants the age strictly greater.
    Some(fp.db_modified()? + h.checkpoint_interval + Duration::from_millis(10))
}

fn checkpoint_due(h: &DbHandle, fp: &crate::db::Fingerprint) -> bool {
    checkpoint_due_at(h, fp).is_some_and(|at| at <= SystemTime::now())
}

/// True when an event arrived since `before`, waiting briefly for one still on its way from the
/// watcher thread (a change seen by `stat` can be a moment ahead of its event).
async fn event_arrives(changes: &WalWatcher, before: u64) -> bool {
    for _ in 0..10 {
        if changes.events() != before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    changes.events() != before
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
