//! The observed state of the running replication, read by both `server` and `metrics` (this
//! module uses neither): one [`DbEntry`] per database (with its URL id, health tracker and
//! restore-point refresh trigger) and one [`ReplicaEntry`] per replica (lag tracker,
//! restore-point cache), plus [`AppState::observe`], which copies everything the endpoints and
//! metrics need into a plain [`Observation`]. Files: `lag` (replication lag, database health),
//! `restore_points` (cache and refresher), `backup_tallies` (keeps each database's backups
//! summary in step with its folder), this file (the model).
//!
//! What must stay true: observing only reads watch channels, atomics and short-held in-memory
//! locks — never SQLite, never storage, never the database's attach mutex (held during sync
//! ticks) — so every read endpoint answers at once; database ids are unique, derived from the
//! file name (`app.db`, then `app.db-2`, … for clashes in config order), never a raw path; the
//! background tasks (following the fleet, lag trackers, refreshers) run on the run's
//! [`Lifecycle`], so they end when shutdown starts, before the final sync.

pub mod backup_tallies;
pub mod lag;
pub mod restore_points;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

pub use crate::admin::tally::Summary as BackupSummary;
use crate::config::HttpConfig;
use crate::db::{DbState, DbStats};
use crate::replica::{Replica, ReplicaStatus};
use crate::replicate::heartbeat::HeartbeatCounts;
use crate::replicate::{DbHandle, Fleet, Lifecycle};
use crate::storage::{ErrorClass, Op, StorageStats};
use lag::{DbHealth, LagTracker};
use restore_points::{PointsSlot, Refresh, ReplicaPoints};

/// Everything the handlers share. The set of databases follows the run's [`Fleet`]
/// ([`AppState::follow`]): databases discovered under a `dir` entry appear, removed ones go.
pub struct AppState {
    dbs: RwLock<Entries>,
    pub settings: HttpConfig,
    /// Bounds the restore-point listings running at once.
    listings: Arc<Semaphore>,
    /// Where the background tasks run.
    lifecycle: Lifecycle,
    /// The fleet followed ([`AppState::follow`]), for the heartbeat's counters.
    fleet: OnceLock<Arc<Fleet>>,
}

/// The databases in the fleet's order, and by id.
#[derive(Default)]
struct Entries {
    list: Vec<Arc<DbEntry>>,
    by_id: HashMap<String, Arc<DbEntry>>,
}

impl Entries {
    fn push(&mut self, e: Arc<DbEntry>) {
        self.by_id.insert(e.id.clone(), Arc::clone(&e));
        self.list.push(e);
    }
}

/// One database as the HTTP API names it.
pub struct DbEntry {
    /// URL id: the file name, made unique.
    pub id: String,
    /// Lower-case id and path, for `?q=` of `/api/v1/status`.
    pub search_key: String,
    pub handle: Arc<DbHandle>,
    pub replicas: Vec<ReplicaEntry>,
    pub health: Arc<Mutex<DbHealth>>,
    /// Asks the restore-point refresher for a listing.
    pub refresh: Arc<Refresh>,
    /// The entry's background tasks (lag trackers, refresher), aborted when it is removed.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// One replica of a [`DbEntry`].
pub struct ReplicaEntry {
    pub replica: Arc<Replica>,
    pub lag: Arc<Mutex<LagTracker>>,
    pub points: PointsSlot,
}

/// Storage counters of one replica client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageCounters {
    /// (operation, successful calls, stored bytes moved).
    pub ops: Vec<(Op, u64, u64)>,
    pub retries: u64,
    pub errors: Vec<(ErrorClass, u64)>,
}

impl StorageCounters {
    pub fn read(stats: &StorageStats) -> Self {
        StorageCounters {
            ops: Op::ALL
                .iter()
                .map(|&op| (op, stats.operations(op), stats.bytes(op)))
                .collect(),
            retries: stats.retries(),
            errors: ErrorClass::ALL
                .iter()
                .map(|&c| (c, stats.errors(c)))
                .collect(),
        }
    }

    pub fn bytes(&self, op: Op) -> u64 {
        self.ops.iter().find(|o| o.0 == op).map_or(0, |o| o.2)
    }
}

/// A consistent-enough copy of one database's state at one instant.
#[derive(Debug, Clone)]
pub struct DbObservation {
    pub id: String,
    pub path: PathBuf,
    pub attached: bool,
    pub state: DbState,
    pub stats: DbStats,
    pub failing_since: Option<SystemTime>,
    pub replicas: Vec<ReplicaObservation>,
    /// The backups folder's summary (`None` until it was first listed).
    pub backups: Option<BackupSummary>,
    /// The last restore drill (`None`: none ran yet).
    pub drill: Option<crate::admin::drill::DrillReport>,
}

/// A copy of one replica's state.
#[derive(Debug, Clone)]
pub struct ReplicaObservation {
    pub status: ReplicaStatus,
    pub replica_type: &'static str,
    /// `ReplicaClient::describe()`: no credentials.
    pub url: String,
    pub lag: Duration,
    pub storage: StorageCounters,
    pub points: Arc<ReplicaPoints>,
}

impl ReplicaObservation {
    /// Newest snapshot time known from this process's own snapshots or the storage listing.
    pub fn latest_snapshot(&self) -> Option<(String, u32, SystemTime)> {
        let own = self
            .status
            .latest_snapshot
            .as_ref()
            .map(|m| (m.generation.clone(), m.index, m.at));
        let listed = self
            .points
            .latest_snapshot()
            .map(|(g, s)| (g.to_string(), s.index, s.created_at));
        match (own, listed) {
            (Some(a), Some(b)) => Some(if a.2 >= b.2 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// Everything observed at `at`.
#[derive(Debug, Clone)]
pub struct Observation {
    pub at: SystemTime,
    pub dbs: Vec<DbObservation>,
    /// The heartbeat's counters (`None`: no `heartbeat-url`).
    pub heartbeat: Option<HeartbeatCounts>,
}

impl AppState {
    /// Builds the entries for `handles` (does not start anything); background tasks will run on
    /// `lifecycle`.
    pub fn new(handles: &[Arc<DbHandle>], settings: HttpConfig, lifecycle: Lifecycle) -> Self {
        let ids = unique_ids(handles.iter().map(|h| h.db.path().to_path_buf()));
        let mut entries = Entries::default();
        for (h, id) in handles.iter().zip(ids) {
            entries.push(DbEntry::new(id, h));
        }
        AppState {
            dbs: RwLock::new(entries),
            settings,
            listings: Arc::new(Semaphore::new(restore_points::LISTING_CONCURRENCY)),
            lifecycle,
            fleet: OnceLock::new(),
        }
    }

    /// Every database now, in the fleet's order.
    pub fn entries(&self) -> Vec<Arc<DbEntry>> {
        crate::rt::read(&self.dbs).list.clone()
    }

    /// The run's lifecycle (the HTTP layer spawns its work on it).
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Starts the trackers and restore-point refreshers of every entry.
    pub fn spawn_background(&self) {
        for entry in crate::rt::read(&self.dbs).list.iter() {
            entry.spawn_background(&self.listings, &self.lifecycle);
        }
    }

    /// Keeps the entries in step with `fleet` (additions get an id and their background tasks,
    /// removals lose theirs) until the fleet is dropped or shutdown starts.
    pub fn follow(self: &Arc<Self>, fleet: &Arc<Fleet>) {
        let _ = self.fleet.set(Arc::clone(fleet));
        self.lifecycle
            .spawn_background(backup_tallies::refresher(Arc::downgrade(self)));
        let (state, fleet) = (Arc::downgrade(self), Arc::clone(fleet));
        let mut changes = fleet.subscribe();
        self.lifecycle.spawn_background(async move {
            loop {
                let Some(state) = state.upgrade() else {
                    return;
                };
                state.sync_with(&fleet.handles());
                drop(state);
                if changes.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// Adds entries for new `handles`, removes those no longer in it.
    fn sync_with(&self, handles: &[Arc<DbHandle>]) {
        let mut dbs = crate::rt::write(&self.dbs);
        let before = dbs.list.len();
        dbs.list.retain(|e| {
            let keep = handles.iter().any(|h| Arc::ptr_eq(h, &e.handle));
            if !keep {
                e.stop_background();
            }
            keep
        });
        if dbs.list.len() != before {
            let kept = dbs.list.clone();
            dbs.by_id = kept.iter().map(|e| (e.id.clone(), Arc::clone(e))).collect();
        }
        let known: HashSet<*const DbHandle> =
            dbs.list.iter().map(|e| Arc::as_ptr(&e.handle)).collect();
        for h in handles {
            if known.contains(&Arc::as_ptr(h)) {
                continue;
            }
            let id = free_id(h.db.path(), &dbs.by_id);
            let entry = DbEntry::new(id, h);
            entry.spawn_background(&self.listings, &self.lifecycle);
            dbs.push(entry);
        }
    }

    /// The database called `id` in URLs.
    pub fn db(&self, id: &str) -> Option<Arc<DbEntry>> {
        crate::rt::read(&self.dbs).by_id.get(id).cloned()
    }

    /// Copies the current state of every database and replica (never blocks on I/O).
    pub fn observe(&self) -> Observation {
        let at = SystemTime::now();
        Observation {
            at,
            dbs: self.entries().iter().map(|d| d.observe(at)).collect(),
            heartbeat: self.fleet.get().and_then(|f| f.heartbeat()),
        }
    }
}

impl DbEntry {
    fn new(id: String, h: &Arc<DbHandle>) -> Arc<DbEntry> {
        let search_key = format!("{id}\n{}", h.db.path().display()).to_lowercase();
        Arc::new(DbEntry {
            id,
            search_key,
            handle: Arc::clone(h),
            replicas: h
                .replicas
                .iter()
                .map(|r| ReplicaEntry {
                    replica: Arc::clone(r),
                    lag: Arc::new(Mutex::new(LagTracker::new())),
                    points: Arc::new(RwLock::new(Arc::new(ReplicaPoints::default()))),
                })
                .collect(),
            health: Arc::new(Mutex::new(DbHealth::default())),
            refresh: Arc::new(Refresh::default()),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Starts this database's lag trackers and restore-point refresher on `life`.
    fn spawn_background(&self, listings: &Arc<Semaphore>, life: &Lifecycle) {
        let db = &self.handle.db;
        let mut tasks =
            vec![life.spawn_background(lag::track_db(db.subscribe(), Arc::clone(&self.health)))];
        for r in &self.replicas {
            tasks.push(life.spawn_background(lag::track_replica(
                db.subscribe(),
                r.replica.subscribe_status(),
                Arc::clone(&r.lag),
            )));
        }
        let slots = self
            .replicas
            .iter()
            .map(|r| (Arc::clone(&r.replica), Arc::clone(&r.points)))
            .collect();
        tasks.push(life.spawn_background(restore_points::refresher(
            slots,
            Arc::clone(&self.refresh),
            Arc::clone(listings),
        )));
        crate::rt::lock(&self.tasks).extend(tasks);
    }

    fn stop_background(&self) {
        for t in crate::rt::lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    /// True when some replica stored or deleted something since its restore points were listed.
    pub fn points_stale(&self) -> bool {
        self.replicas.iter().any(|r| r.points_stale())
    }

    /// Asks the refresher to list the stale replicas (every replica with `force`) and waits at
    /// most `wait` until each was listed or its listing failed after the request.
    pub async fn wait_for_listing(&self, force: bool, wait: Duration) {
        let asked = SystemTime::now();
        let mut passes = self.refresh.passes();
        if force {
            self.refresh.force();
        } else {
            self.refresh.demand();
        }
        let deadline = tokio::time::Instant::now() + wait;
        while !self.replicas.iter().all(|r| r.listed_since(asked, force)) {
            match tokio::time::timeout_at(deadline, passes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }

    pub fn observe(&self, at: SystemTime) -> DbObservation {
        let db = &self.handle.db;
        DbObservation {
            id: self.id.clone(),
            path: db.path().to_path_buf(),
            attached: self.handle.is_open(),
            state: db.state(),
            stats: db.stats(),
            failing_since: crate::rt::lock(&self.health).failing_since,
            replicas: self.replicas.iter().map(|r| r.observe(at)).collect(),
            backups: self.handle.backup_tally.summary(),
            drill: crate::rt::lock(&self.handle.drill).clone(),
        }
    }
}

impl ReplicaEntry {
    fn points_stale(&self) -> bool {
        restore_points::is_stale(&restore_points::read(&self.points), &self.replica.status())
    }

    /// True when a listing started at or after `asked`, or failed after it; without `force` a
    /// listing that is not stale counts too.
    fn listed_since(&self, asked: SystemTime, force: bool) -> bool {
        let p = restore_points::read(&self.points);
        let failed = p.error.as_ref().is_some_and(|(t, _)| *t >= asked);
        let listed = p.refreshed_at.is_some_and(|t| t >= asked);
        failed || listed || (!force && !restore_points::is_stale(&p, &self.replica.status()))
    }

    fn observe(&self, at: SystemTime) -> ReplicaObservation {
        let client = self.replica.client();
        ReplicaObservation {
            status: self.replica.status(),
            replica_type: client.replica_type(),
            url: client.describe(),
            lag: crate::rt::lock(&self.lag).lag(at),
            storage: StorageCounters::read(client.stats()),
            points: restore_points::read(&self.points),
        }
    }
}

/// The file name of `path` as an id, made unique against `taken` like [`unique_ids`].
fn free_id<V>(path: &std::path::Path, taken: &HashMap<String, V>) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".to_string());
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains_key(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// File names as ids; a clash gets `-2`, `-3`, … in order.
pub fn unique_ids(paths: impl Iterator<Item = PathBuf>) -> Vec<String> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    paths
        .map(|path| {
            let id = free_id(&path, &seen);
            seen.insert(id.clone(), ());
            id
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_file_names_made_unique() {
        let paths = [
            "/a/app.db",
            "/b/app.db",
            "/c/other.db",
            "/d/app.db",
            "/e/app.db-2",
        ];
        let ids = unique_ids(paths.iter().map(PathBuf::from));
        assert_eq!(
            ids,
            ["app.db", "app.db-2", "other.db", "app.db-3", "app.db-2-2"]
        );
    }
}
