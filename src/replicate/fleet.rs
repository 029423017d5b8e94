//! The databases a run replicates right now: the configured ones plus those discovered under
//! `dir` entries, which come and go while it runs. [`Fleet`] is the registry the HTTP server and
//! the shutdown path read; [`Launcher`] adds a database (building its replicas and spawning its
//! loop on the run's tracker) and retires one (cancelling its loops; its replica data stays).
//!
//! The fleet also carries the counters of the run's heartbeat (`heartbeat`), which the HTTP
//! server shows as metrics beside the databases'.
//!
//! What must stay true: a database path is in the fleet at most once (an explicit entry and a
//! discovered file naming the same path: the first one wins, the second is logged); a replica
//! location is written by at most one replica of the fleet (a discovered database whose replica
//! would write where another database's replica writes is refused before anything of it is
//! built: [`LocationTaken`]; static entries were checked at config load); every task is
//! spawned on the run's tracker under a child of the run's token, so shutdown waits for it;
//! retiring never deletes anything in a replica.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::DbHandle;
use super::heartbeat::{HeartbeatCounts, HeartbeatStats};
use super::monitor::{RunCtx, db_task};
use crate::config::{DbConfig, ReplicaLocation};

/// The running set of databases, in the order they were added.
pub struct Fleet {
    dbs: RwLock<Vec<Arc<DbHandle>>>,
    /// Bumped on every addition and removal.
    version: watch::Sender<u64>,
    /// The heartbeat's counters, set once when the run sends one (`heartbeat-url`).
    heartbeat: OnceLock<Arc<HeartbeatStats>>,
}

impl Fleet {
    pub fn new() -> Arc<Fleet> {
        Arc::new(Fleet {
            dbs: RwLock::new(Vec::new()),
            version: watch::Sender::new(0),
            heartbeat: OnceLock::new(),
        })
    }

    /// The heartbeat's counters so far; `None` when the run sends no heartbeat.
    pub fn heartbeat(&self) -> Option<HeartbeatCounts> {
        self.heartbeat.get().map(|s| s.counts())
    }

    /// The counters of the run's heartbeat (created on the first call).
    pub(super) fn heartbeat_stats(&self) -> Arc<HeartbeatStats> {
        Arc::clone(self.heartbeat.get_or_init(Default::default))
    }

    /// Every database now, in the order they were added.
    pub fn handles(&self) -> Vec<Arc<DbHandle>> {
        self.read().clone()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Woken on every addition and removal (the value is a change counter).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.read().iter().any(|h| h.db.path() == path)
    }

    /// Adds `h`: `Ok(false)` when its path is in the fleet already, `Err` when one of its
    /// replicas writes where a replica of another database does (checked under the same lock,
    /// so two databases discovered at once cannot both get in).
    fn insert(&self, h: Arc<DbHandle>) -> Result<bool, Box<LocationTaken>> {
        {
            let mut dbs = self.write();
            if dbs.iter().any(|x| x.db.path() == h.db.path()) {
                return Ok(false);
            }
            location_taken(&dbs, h.db.path(), &h.locations)?;
            dbs.push(h);
        }
        self.version.send_modify(|v| *v += 1);
        Ok(true)
    }

    /// `Err` when a replica in `locations` (of the database at `path`) writes where a replica
    /// of a database in the fleet does.
    fn check_locations(
        &self,
        path: &Path,
        locations: &[(String, ReplicaLocation)],
    ) -> Result<(), Box<LocationTaken>> {
        location_taken(&self.read(), path, locations)
    }

    fn remove(&self, path: &Path) -> Option<Arc<DbHandle>> {
        let removed = {
            let mut dbs = self.write();
            let i = dbs.iter().position(|h| h.db.path() == path)?;
            dbs.remove(i)
        };
        self.version.send_modify(|v| *v += 1);
        Some(removed)
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Arc<DbHandle>>> {
        crate::rt::read(&self.dbs)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Arc<DbHandle>>> {
        crate::rt::write(&self.dbs)
    }
}

/// A database refused because one of its replicas would write where a replica of another
/// database of the run writes (two writers would overwrite each other's generations).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "replica {replica:?} of {} would write to {location}, where replica {other_replica:?} of \
     database {} already writes (one writer per replica location); not replicated",
    db.display(),
    other_db.display()
)]
pub struct LocationTaken {
    pub db: PathBuf,
    pub replica: String,
    pub location: ReplicaLocation,
    pub other_db: PathBuf,
    pub other_replica: String,
}

/// The first replica in `locations` (of the database at `path`) whose location a database of
/// `dbs` writes to.
fn location_taken(
    dbs: &[Arc<DbHandle>],
    path: &Path,
    locations: &[(String, ReplicaLocation)],
) -> Result<(), Box<LocationTaken>> {
    for (replica, location) in locations {
        for other in dbs.iter().filter(|h| h.db.path() != path) {
            if let Some((other_replica, _)) = other.locations.iter().find(|(_, l)| l == location) {
                return Err(Box::new(LocationTaken {
                    db: path.to_path_buf(),
                    replica: replica.clone(),
                    location: location.clone(),
                    other_db: other.db.path().to_path_buf(),
                    other_replica: other_replica.clone(),
                }));
            }
        }
    }
    Ok(())
}

/// Starts and stops databases of one run.
pub(super) struct Launcher {
    pub fleet: Arc<Fleet>,
    pub root: CancellationToken,
    pub tracker: TaskTracker,
    pub ctx: Arc<RunCtx>,
    pub snapshots: Arc<Semaphore>,
    /// Litestream v0.5 settings of the LTX replicas (singular `replica:`).
    pub v05: Arc<crate::config::V05Settings>,
}

impl Launcher {
    /// Adds the database of `cfg` and starts its loop (and its backup schedule, when it has
    /// one). `Ok(false)` when its path is already replicated (logged); `Err` when a replica
    /// client cannot be built, a replica's location is taken ([`LocationTaken`], before
    /// anything is built) or the schedule's labels break the label rules.
    pub fn launch(&self, cfg: &DbConfig) -> anyhow::Result<bool> {
        if self.fleet.contains(&cfg.path) {
            warn!(db = %cfg.path.display(), "database already replicated by another entry, ignored");
            return Ok(false);
        }
        self.fleet
            .check_locations(&cfg.path, &super::replica_locations(cfg))?;
        if let Some(s) = &cfg.backups.schedule {
            crate::admin::names::check_labels(&s.labels).map_err(|e| {
                anyhow::anyhow!("backups.schedule.labels of {}: {e}", cfg.path.display())
            })?;
        }
        let cancel = self.root.child_token();
        let h = super::build_db(cfg, &self.snapshots, &self.v05, cancel.clone())?;
        if !self.fleet.insert(Arc::clone(&h))? {
            return Ok(false);
        }
        let tracker = self.tracker.clone();
        if let Some(schedule) = cfg.backups.schedule.clone() {
            let (h, cancel) = (Arc::clone(&h), cancel.clone());
            self.tracker
                .spawn(super::backup_schedule::run(h, schedule, cancel));
        }
        if let Some(interval) = cfg.backups.drill_interval {
            let (h, cancel) = (Arc::clone(&h), cancel.clone());
            self.tracker.spawn(super::drill::run(h, interval, cancel));
        }
        self.tracker
            .spawn(db_task(h, cancel, tracker, Arc::clone(&self.ctx)));
        Ok(true)
    }

    /// Stops replicating the database at `path` (it was removed); its replicas keep their data.
    pub fn retire(&self, path: &Path) {
        if let Some(h) = self.fleet.remove(path) {
            h.cancel.cancel();
            info!(db = %path.display(), "database removed, replication stopped (replica kept)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ReplicaConfig, ReplicaTarget, V05Settings};

    fn db(path: &str, replicas: &[(&str, &str)]) -> DbConfig {
        let mut cfg = DbConfig::with_defaults(path);
        cfg.replicas = replicas
            .iter()
            .map(|(name, dir)| {
                let target = ReplicaTarget::File { path: dir.into() };
                ReplicaConfig::with_defaults(name.to_string(), target)
            })
            .collect();
        cfg
    }

    fn handle(cfg: &DbConfig) -> Arc<DbHandle> {
        let permits = Arc::new(Semaphore::new(1));
        let v05 = Arc::new(V05Settings::default());
        super::super::build_db(cfg, &permits, &v05, CancellationToken::new()).expect("build")
    }

    #[tokio::test]
    async fn a_database_whose_replica_location_is_taken_is_refused_naming_both() {
        let fleet = Fleet::new();
        let first = db("/data/a.db", &[("disk", "/backups/t/x.db")]);
        assert_eq!(fleet.insert(handle(&first)), Ok(true));
        // The same location spelled differently, as the second replica of another database.
        let second = db(
            "/data/t/x.db",
            &[("other", "/elsewhere"), ("file", "/backups/t/./x.db/")],
        );
        let locations = super::super::replica_locations(&second);
        let want = Box::new(LocationTaken {
            db: "/data/t/x.db".into(),
            replica: "file".into(),
            location: first.replicas[0].target.location(),
            other_db: "/data/a.db".into(),
            other_replica: "disk".into(),
        });
        assert_eq!(
            fleet.check_locations(&second.path, &locations),
            Err(want.clone())
        );
        assert_eq!(fleet.insert(handle(&second)), Err(want.clone()));
        assert_eq!(fleet.len(), 1);
        assert_eq!(
            want.to_string(),
            "replica \"file\" of /data/t/x.db would write to file:///backups/t/x.db, where \
             replica \"disk\" of database /data/a.db already writes (one writer per replica \
             location); not replicated"
        );
        // Once the first database left, the location is free; the same path is no conflict.
        fleet.remove(Path::new("/data/a.db"));
        assert_eq!(fleet.insert(handle(&second)), Ok(true));
        assert_eq!(fleet.check_locations(&second.path, &locations), Ok(()));
    }
}
