//! The databases a run replicates right now: the configured ones plus those discovered under
//! `dir` entries, which come and go while it runs. [`Fleet`] is the registry the HTTP server and
//! the shutdown path read; [`Launcher`] adds a database (building its replicas and spawning its
//! loop on the run's tracker) and retires one (cancelling its loops; its replica data stays).
//!
//! The fleet also carries the counters of the run's heartbeat (`heartbeat`), which the HTTP
//! server shows as metrics beside the databases'.
//!
//! What must stay true: a database path is in the fleet at most once (an explicit entry and a
//! discovered file naming the same path: the first one wins, the second is logged); every task is
//! spawned on the run's tracker under a child of the run's token, so shutdown waits for it;
//! retiring never deletes anything in a replica.

use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::DbHandle;
use super::heartbeat::{HeartbeatCounts, HeartbeatStats};
use super::monitor::{RunCtx, db_task};
use crate::config::DbConfig;

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

    fn insert(&self, h: Arc<DbHandle>) -> bool {
        {
            let mut dbs = self.write();
            if dbs.iter().any(|x| x.db.path() == h.db.path()) {
                return false;
            }
            dbs.push(h);
        }
        self.version.send_modify(|v| *v += 1);
        true
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
    /// Adds the database of `cfg` and starts its loop. `Ok(false)` when its path is already
    /// replicated (logged); `Err` when a replica client cannot be built.
    pub fn launch(&self, cfg: &DbConfig) -> anyhow::Result<bool> {
        if self.fleet.contains(&cfg.path) {
            warn!(db = %cfg.path.display(), "database already replicated by another entry, ignored");
            return Ok(false);
        }
        let cancel = self.root.child_token();
        let h = super::build_db(cfg, &self.snapshots, &self.v05, cancel.clone())?;
        if !self.fleet.insert(Arc::clone(&h)) {
            return Ok(false);
        }
        let tracker = self.tracker.clone();
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
