//! One live database (spec §3): attach, the long-running read transaction, the shadow WAL in
//! Litestream v0.3.13's meta-dir layout, generations, walstream's own checkpoints, snapshot
//! guards and shadow cleanup. Shared as `Arc<Db>`; all SQLite and file work runs in
//! `spawn_blocking` under one mutex per database.
//!
//! What must stay true:
//! - the meta dir is byte-for-byte Litestream's, so either program continues the other's
//!   generation when the WAL is continuous;
//! - shadow files only grow at their end with whole committed transactions, fsynced before the
//!   new position is published on the [`DbState`] channel; readers must not read a shadow file
//!   past the published offset of the current index (older indices are complete);
//! - no frame committed by the application is lost between walstream's final copy and a WAL
//!   reset (see [`checkpoint`]); checkpoints never run while a [`SnapshotGuard`] lives;
//! - shadow files are deleted only below `min(replica floor) − 1`, and only once every
//!   configured replica reported a floor in the current generation.
//!
//! Files: [`conn`] (SQLite connections), [`meta`] (layout), [`shadow`] (frame copying),
//! `identity` (the database identity row), `sync` (attach and the tick), [`checkpoint`] (policy and procedure), [`watch`] (inotify),
//! `validate` (the RESTART checkpoint + guard of validation).

pub mod check;
pub mod checkpoint;
mod conn;
mod error;
mod file;
mod identity;
mod meta;
pub mod shadow;
#[cfg(test)]
mod snapshot_tests;
mod sync;
mod validate;
pub mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::watch as tokio_watch;

use crate::rt::lock;

use crate::config::DbConfig;
use checkpoint::CheckpointPolicy;
pub use checkpoint::{CheckpointMode, TRUNCATE_PAGE_COUNT};
use conn::Conns;
pub use conn::configure_process_memory;
pub use error::DbError;
pub use file::DbFile;
pub use identity::{IDENTITY_ROW, format_id};
use meta::{Meta, Perms};
pub use shadow::COPY_BUFFER_BYTES;
pub use sync::{MAX_INDEX, reason};
pub use validate::RestartSnapshot;
pub use watch::{Delivering, DirBatch, DirEvents, DirWatcher, WalWatcher, WatchHub};

/// A position in the shadow WAL: `offset` = bytes in the shadow file of `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub generation: String,
    pub index: u32,
    pub offset: u64,
}

/// Published on a watch channel; receivers are woken when the generation, position, page size
/// or error changes (sizes and `last_sync` are refreshed silently on every tick).
#[derive(Clone, Debug, Default)]
pub struct DbState {
    pub generation: Option<String>,
    /// End of the shadow WAL (aligned to the last copied commit).
    pub pos: Option<Pos>,
    pub page_size: u32,
    pub db_size: u64,
    pub wal_size: u64,
    pub last_sync: Option<SystemTime>,
    pub last_error: Option<String>,
}

/// What two `stat` calls tell about a database and its WAL (see [`Db::fingerprint`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    db: Option<(u64, u64, SystemTime)>,
    wal: Option<(u64, SystemTime)>,
}

impl Fingerprint {
    fn of(db: &Path, wal: &Path) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        let db = std::fs::metadata(db).ok().map(|m| {
            (
                m.ino(),
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )
        });
        let wal = std::fs::metadata(wal)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        Fingerprint { db, wal }
    }

    /// Last modification of the database file (`None` when it does not exist).
    pub fn db_modified(&self) -> Option<SystemTime> {
        self.db.map(|(_, _, t)| t)
    }
}

/// What one sync tick did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Shadow end after the tick.
    pub pos: Pos,
    /// The position differs from the previous tick's (replicas have work).
    pub changed: bool,
    /// Reason when this tick started a new generation (spec §3.4 strings).
    pub new_generation: Option<&'static str>,
    /// Checkpoint performed by this tick.
    pub checkpoint: Option<CheckpointMode>,
}

/// Counters of one checkpoint mode (Litestream's `litestream_checkpoint_*` metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointStats {
    pub count: u64,
    /// Failed or skipped because the write lock stayed busy.
    pub error_count: u64,
    pub seconds: f64,
}

/// Counters and gauges of one database, for metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DbStats {
    pub sync_count: u64,
    pub sync_error_count: u64,
    pub sync_seconds: f64,
    /// Bytes appended to shadow WALs.
    pub total_wal_bytes: u64,
    pub shadow_wal_index: u32,
    /// Total bytes of the generation's shadow files.
    pub shadow_wal_size: u64,
    pub db_size: u64,
    pub wal_size: u64,
    /// Per mode, in [`CheckpointMode::ALL`] order.
    pub checkpoints: [CheckpointStats; 3],
    /// Largest copy buffer allocation (bytes) used to copy frames: bounded whatever the WAL size.
    pub max_copy_buffer: usize,
    /// When walstream's last successful checkpoint finished, and its mode (HTTP status API).
    pub last_checkpoint: Option<(SystemTime, CheckpointMode)>,
}

impl DbStats {
    pub fn checkpoint(&self, mode: CheckpointMode) -> &CheckpointStats {
        &self.checkpoints[mode_slot(mode)]
    }

    pub(crate) fn checkpoint_mut(&mut self, mode: CheckpointMode) -> &mut CheckpointStats {
        &mut self.checkpoints[mode_slot(mode)]
    }
}

fn mode_slot(mode: CheckpointMode) -> usize {
    match mode {
        CheckpointMode::Passive => 0,
        CheckpointMode::Restart => 1,
        CheckpointMode::Truncate => 2,
    }
}

/// Returned by [`Db::begin_snapshot`]. While it lives walstream runs no checkpoint and keeps
/// its read transaction, so no WAL frame past `pos` can reach the database file: the bytes
/// read through `file` hold every transaction of indices `< pos.index` and possibly part of
/// `pos.index` (restore replays that index from offset 0). A concurrent checkpoint by another
/// process may shrink the file, so read up to `size` or EOF, whichever comes first.
pub struct SnapshotGuard {
    pub pos: Pos,
    /// Read-only handle on the main database file, shared with the attached database: read it
    /// positionally (`read_at`) and never duplicate it (closing a duplicate descriptor would
    /// release SQLite's locks on the file, see `Attached::db_file`).
    pub file: Arc<DbFile>,
    /// File size when the guard was taken.
    pub size: u64,
    _active: GuardToken,
}

struct GuardToken(Arc<Shared>);

impl Drop for GuardToken {
    fn drop(&mut self) {
        self.0.guards.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What [`Shared::restarting_checkpoint`] did, with the position it published.
enum Checkpointed {
    Restarted(Pos),
    Ran(Pos),
    Skipped,
}

/// One live database. See the module docs.
pub struct Db {
    shared: Arc<Shared>,
}

/// State shared with blocking tasks.
pub(crate) struct Shared {
    path: PathBuf,
    wal_path: PathBuf,
    meta: Meta,
    policy: CheckpointPolicy,
    /// `busy-timeout` of walstream's connections.
    busy_timeout: std::time::Duration,
    attached: Mutex<Option<Attached>>,
    state: tokio_watch::Sender<DbState>,
    guards: AtomicUsize,
    /// Last index reported per replica in the current generation (`None`: not yet).
    floors: Mutex<HashMap<String, Option<u32>>>,
    stats: Mutex<DbStats>,
    page_size: AtomicU32,
    /// The database identity read (or stored) at the last attach; 0 before the first attach.
    database_id: AtomicU64,
    /// Mirrors `attached.is_some()` without taking the mutex (a tick may hold it for seconds).
    open: AtomicBool,
    /// (generation, index, total bytes) of the shadow files, left by the tick that knew them
    /// for [`Shared::publish`] (which otherwise lists the directory).
    shadow_total: Mutex<Option<(String, u32, u64)>>,
    /// The generation kept and the generations directory's mtime right after the last removal
    /// of other generations.
    generations_clean: Mutex<Option<(String, Option<SystemTime>)>>,
}

/// Connections and facts of an attached database.
pub(crate) struct Attached {
    conns: Conns,
    page_size: u32,
    perms: Perms,
    /// The read handle on the main database file that snapshots share: normally SQLite's own
    /// reader descriptor (see `file.rs`), otherwise the one handle this process opens outside
    /// SQLite. POSIX record locks belong to the process and are ALL released when ANY descriptor
    /// of the file is closed, so opening and closing the database file beside SQLite would drop
    /// SQLite's SHARED lock and let the application's last connection delete the `-wal` while we
    /// are attached. It is closed (or handed back) only when we detach.
    db_file: Arc<DbFile>,
    /// (device, inode) of the attached file: a different one at the path means the database was
    /// replaced (see [`DbError::Replaced`]).
    identity: (u64, u64),
}

impl Db {
    /// A database handle; does not touch the file yet.
    pub fn new(cfg: &DbConfig) -> Arc<Db> {
        let mut wal = cfg.path.clone().into_os_string();
        wal.push("-wal");
        let floors = cfg
            .replicas
            .iter()
            .map(|r| (r.name.clone(), None))
            .collect();
        let shared = Shared {
            path: cfg.path.clone(),
            wal_path: PathBuf::from(wal),
            meta: Meta::new(cfg.meta_path.clone()),
            busy_timeout: cfg.busy_timeout,
            policy: CheckpointPolicy {
                min_page_count: cfg.min_checkpoint_page_count,
                max_page_count: cfg.max_checkpoint_page_count,
                truncate_page_count: cfg.truncate_page_count,
                interval: cfg.checkpoint_interval,
            },
            attached: Mutex::new(None),
            state: tokio_watch::Sender::new(DbState::default()),
            guards: AtomicUsize::new(0),
            floors: Mutex::new(floors),
            stats: Mutex::new(DbStats::default()),
            page_size: AtomicU32::new(0),
            database_id: AtomicU64::new(0),
            open: AtomicBool::new(false),
            shadow_total: Mutex::new(None),
            generations_clean: Mutex::new(None),
        };
        Arc::new(Db {
            shared: Arc::new(shared),
        })
    }

    /// Attach sequence (spec §3.2). [`DbError::NotFound`] while the file does not exist.
    pub async fn open(&self) -> Result<(), DbError> {
        self.blocking(|s| s.attach()).await
    }

    /// One sync tick (spec §3.3–§3.5); attaches first if needed. Publishes [`DbState`].
    pub async fn sync(&self) -> Result<SyncOutcome, DbError> {
        self.blocking(|s| s.sync_and_publish()).await
    }

    /// A sync tick only if the database is attached (never attaches; `None`: not attached).
    /// A replica runs it right before an upload round, so the round uploads the WAL as of that
    /// moment rather than as of the monitor's last tick.
    pub async fn sync_attached(&self) -> Result<Option<SyncOutcome>, DbError> {
        self.blocking(|s| s.sync_if_attached()).await
    }

    /// The state channel (current value + change notifications).
    pub fn subscribe(&self) -> tokio_watch::Receiver<DbState> {
        self.shared.state.subscribe()
    }

    /// The last published state.
    pub fn state(&self) -> DbState {
        self.shared.state.borrow().clone()
    }

    /// Reads the current state without copying it (the idle re-check of thousands of
    /// databases runs this; keep `f` short, it holds the state channel's read lock).
    pub fn with_state<R>(&self, f: impl FnOnce(&DbState) -> R) -> R {
        f(&self.shared.state.borrow())
    }

    /// Counters and gauges for metrics.
    pub fn stats(&self) -> DbStats {
        lock(&self.shared.stats).clone()
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub fn wal_path(&self) -> &Path {
        &self.shared.wal_path
    }

    pub fn meta_path(&self) -> &Path {
        self.shared.meta.root()
    }

    /// `<meta>/generations/<gen>/wal/<index:08x>.wal`.
    pub fn shadow_wal_path(&self, generation: &str, index: u32) -> PathBuf {
        self.shared.meta.shadow_path(generation, index)
    }

    /// Page size; 0 before the first successful attach.
    pub fn page_size(&self) -> u32 {
        self.shared.page_size.load(Ordering::Acquire)
    }

    /// The database identity (`identity.rs`) read at the last attach or stored since; `None`
    /// before the first attach or while the database has none.
    pub fn database_id(&self) -> Option<u64> {
        Some(self.shared.database_id.load(Ordering::Acquire)).filter(|&id| id != 0)
    }

    /// The database identity, stored first (one small commit) when the database has none yet —
    /// what a replica calls before its first write. `None` while not attached.
    pub async fn ensure_database_id(&self) -> Result<Option<u64>, DbError> {
        if let Some(id) = self.database_id() {
            return Ok(Some(id));
        }
        let shared = Arc::clone(&self.shared);
        self.blocking(move |s| {
            let slot = lock(&s.attached);
            let Some(attached) = slot.as_ref() else {
                return Ok(None);
            };
            let id = attached.conns.database_id()?;
            shared.database_id.store(id, Ordering::Release);
            Ok(Some(id))
        })
        .await
    }

    /// True while attached.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Wakes on changes of the database file or its WAL (see [`WalWatcher`]); the caller keeps
    /// its own `monitor-interval` tick as the fallback.
    pub fn watch_changes(&self, hub: &WatchHub) -> WalWatcher {
        WalWatcher::new(hub, &self.shared.path)
    }

    /// Sizes and modification times of the database file and its WAL, from two `stat` calls:
    /// equal fingerprints before and after a quiet period mean nothing was written.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.shared.path, &self.shared.wal_path)
    }

    /// Snapshot support (spec §4.4): syncs, blocks walstream's checkpoints, runs a PASSIVE
    /// checkpoint and hands out the position and a read-only handle on the database file.
    pub async fn begin_snapshot(&self) -> Result<SnapshotGuard, DbError> {
        let shared = Arc::clone(&self.shared);
        self.blocking(move |s| s.begin_snapshot(&shared)).await
    }

    /// Validation support (spec §4.6): syncs, runs a RESTART checkpoint and, when it restarted
    /// the WAL, hands out a guard whose file holds exactly the shadow indices below `pos.index`.
    pub async fn begin_restart_snapshot(&self) -> Result<RestartSnapshot, DbError> {
        let shared = Arc::clone(&self.shared);
        self.blocking(move |s| s.begin_restart_snapshot(&shared))
            .await
    }

    /// A replica reports the shadow index it has uploaded up to in the current generation.
    /// Shadow files below `min(floor over all replicas) − 1` are deleted on the next tick.
    /// A floor above the current index (stale, from an earlier generation) is ignored.
    pub fn set_replica_floor(&self, replica_name: &str, index: u32) {
        lock(&self.shared.floors).insert(replica_name.to_string(), Some(index));
    }

    /// Releases the read transaction and closes the connections; `-wal` stays in place.
    pub async fn close(&self) -> Result<(), DbError> {
        self.blocking(|s| {
            let taken = lock(&s.attached).take();
            s.open.store(false, Ordering::Release);
            taken.map_or(Ok(()), |att| att.conns.close())
        })
        .await
    }

    /// Runs `f` on a blocking thread with the shared state, then closes the on-demand SQLite
    /// connections it left idle.
    async fn blocking<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, DbError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let run = move || {
            let result = f(&shared);
            if let Some(att) = shared.lock_attached().as_ref() {
                att.conns.park();
            }
            result
        };
        crate::rt::spawn_blocking(run).await.unwrap_or_else(|e| {
            Err(DbError::Io {
                path: self.shared.path.clone(),
                op: "blocking task",
                source: std::io::Error::other(e),
            })
        })
    }
}

impl Shared {
    fn lock_attached(&self) -> MutexGuard<'_, Option<Attached>> {
        lock(&self.attached)
    }

    pub(crate) fn with_stats(&self, f: impl FnOnce(&mut DbStats)) {
        f(&mut lock(&self.stats));
    }

    pub(crate) fn snapshot_running(&self) -> bool {
        self.guards.load(Ordering::Acquire) > 0
    }

    /// Attach if needed, check the file is still the attached one, tick, publish the outcome
    /// (or the error).
    fn sync_and_publish(&self) -> Result<SyncOutcome, DbError> {
        self.attach()?;
        self.sync_if_attached()?.ok_or_else(|| DbError::NotOpen {
            path: self.path.clone(),
        })
    }

    /// A sync tick of the attached database; `None` (nothing done) when it is not attached.
    /// Checked and run under one hold of the attachment, so it never attaches.
    fn sync_if_attached(&self) -> Result<Option<SyncOutcome>, DbError> {
        let mut slot = self.lock_attached();
        let Some(att) = slot.as_mut() else {
            return Ok(None);
        };
        let result = match self.still_attached_file(att) {
            Ok(()) => self.timed_tick(att),
            Err(e) => {
                self.detach(&mut slot);
                Err(e)
            }
        };
        // Published under the attachment: a tick that computed its position earlier must not
        // publish it after a later tick's (the state would step back, and a `POST …/sync`
        // waiting for the later position would see its replicas stop short of it).
        let published = self.publish(result).map(Some);
        drop(slot);
        published
    }

    /// The database path still names the attached file. [`DbError::NotFound`] when it is gone,
    /// [`DbError::Replaced`] (after forgetting the generation, so the next attach starts a new
    /// one) when another file took its place. Checked before every tick: the tick reads the WAL
    /// by path, and a replaced database's WAL must never reach the old generation.
    fn still_attached_file(&self, att: &Attached) -> Result<(), DbError> {
        use std::os::unix::fs::MetadataExt;
        let found = match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.meta.remove_generation()?;
                return Err(DbError::NotFound {
                    path: self.path.clone(),
                });
            }
            Err(e) => return Err(DbError::io(&self.path, "stat database")(e)),
        };
        if found == att.identity {
            return Ok(());
        }
        self.meta.remove_generation()?;
        Err(DbError::Replaced {
            path: self.path.clone(),
        })
    }

    /// Drops the attachment (connections and the file handle): the next sync attaches anew.
    fn detach(&self, slot: &mut MutexGuard<'_, Option<Attached>>) {
        if let Some(att) = slot.take() {
            self.open.store(false, Ordering::Release);
            if let Err(e) = att.conns.close() {
                tracing::warn!(db = %self.path.display(), error = %e, "close detached database");
            }
        }
    }

    fn begin_snapshot(&self, me: &Arc<Shared>) -> Result<SnapshotGuard, DbError> {
        let mut slot = self.lock_attached();
        let (att, before) = self.tick_attached(&mut slot)?;
        // A complete checkpoint (no application reader pinning older frames) re-takes our
        // read transaction on a fully backfilled WAL, i.e. on SQLite's read-mark 0: until it
        // ends, no process can copy WAL frames into the database file, so the snapshot is the
        // exact database at the end of every index below `pos.index` — consistent on its own,
        // even before any segment of `pos.index` is uploaded. Otherwise fall back to a plain
        // PASSIVE checkpoint: the file may then hold part of `pos.index` (restore replays it),
        // up to our read mark. A checkpoint that ran without restarting re-took that mark where
        // its final copy ended, past `before` when the application committed meanwhile, and
        // may have copied frames up to it into the file: the snapshot then stands where that
        // checkpoint left the shadow, never at `before` (pages past `before` in the file would
        // be missing from the frames laid over it, and the image would mix two states).
        let pos = match self.restarting_checkpoint(att, &before, CheckpointMode::Passive)? {
            Checkpointed::Restarted(after) => return self.guard(me, att, after),
            Checkpointed::Ran(after) => after,
            Checkpointed::Skipped => before,
        };
        att.conns.checkpoint_passive()?;
        self.guard(me, att, pos)
    }

    /// The attached database after one sync tick, and the position that tick published: where
    /// every snapshot starts.
    pub(super) fn tick_attached<'a>(
        &self,
        slot: &'a mut Option<Attached>,
    ) -> Result<(&'a mut Attached, Pos), DbError> {
        let att = slot.as_mut().ok_or_else(|| DbError::NotOpen {
            path: self.path.clone(),
        })?;
        let result = self.timed_tick(att);
        let before = self.publish(result)?.pos;
        Ok((att, before))
    }

    /// Hands out a snapshot guard at `pos` on the attached database file.
    fn guard(&self, me: &Arc<Shared>, att: &Attached, pos: Pos) -> Result<SnapshotGuard, DbError> {
        self.guards.fetch_add(1, Ordering::AcqRel);
        let token = GuardToken(Arc::clone(me));
        let file = Arc::clone(&att.db_file);
        let size = file
            .metadata()
            .map_err(DbError::io(&self.path, "stat database"))?
            .len();
        Ok(SnapshotGuard {
            pos,
            file,
            size,
            _active: token,
        })
    }

    /// Runs `mode` through walstream's checkpoint procedure and publishes where the shadow
    /// stands: [`Checkpointed::Restarted`] when the checkpoint completed and restarted the WAL
    /// (the shadow index advanced; the database file then holds exactly the indices below
    /// `pos.index`), [`Checkpointed::Ran`] when it ran without restarting (our read mark is now
    /// where its final copy ended), [`Checkpointed::Skipped`] when it could not run.
    fn restarting_checkpoint(
        &self,
        att: &mut Attached,
        before: &Pos,
        mode: CheckpointMode,
    ) -> Result<Checkpointed, DbError> {
        #[cfg(test)]
        snapshot_tests::before_checkpoint();
        let Some(adv) = self.checkpoint(att, &before.generation, mode)? else {
            return Ok(Checkpointed::Skipped);
        };
        let after = Pos {
            generation: before.generation.clone(),
            index: adv.index,
            offset: adv.shadow_size,
        };
        self.publish(Ok(SyncOutcome {
            pos: after.clone(),
            changed: false,
            new_generation: None,
            checkpoint: Some(mode),
        }))?;
        Ok(if adv.index != before.index {
            Checkpointed::Restarted(after)
        } else {
            Checkpointed::Ran(after)
        })
    }

    /// Publishes the tick's result on the state channel and refreshes the gauges.
    fn publish(&self, result: Result<SyncOutcome, DbError>) -> Result<SyncOutcome, DbError> {
        let db_size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let wal_size = std::fs::metadata(&self.wal_path)
            .map(|m| m.len())
            .unwrap_or(0);
        let page_size = self.page_size.load(Ordering::Acquire);
        let mut result = result;
        self.state.send_if_modified(|st| {
            let before = (st.pos.clone(), st.page_size, st.last_error.clone());
            st.db_size = db_size;
            st.wal_size = wal_size;
            st.page_size = page_size;
            st.last_sync = Some(SystemTime::now());
            match &mut result {
                Ok(outcome) => {
                    outcome.changed = st.pos.as_ref() != Some(&outcome.pos);
                    st.generation = Some(outcome.pos.generation.clone());
                    st.pos = Some(outcome.pos.clone());
                    st.last_error = None;
                }
                Err(e) => st.last_error = Some(e.to_string()),
            }
            before != (st.pos.clone(), st.page_size, st.last_error.clone())
        });
        let known = lock(&self.shadow_total).take();
        let shadow = match &result {
            Ok(o) => match known {
                Some((g, i, total)) if g == o.pos.generation && i == o.pos.index => {
                    Some((i, Ok((i, total))))
                }
                _ => Some((o.pos.index, self.meta.current_index(&o.pos.generation))),
            },
            Err(_) => None,
        };
        self.with_stats(|s| {
            s.db_size = db_size;
            s.wal_size = wal_size;
            if let Some((index, Ok((_, total)))) = shadow {
                s.shadow_wal_index = index;
                s.shadow_wal_size = total;
            }
        });
        result
    }

    /// Forgets every replica floor (a new generation started).
    pub(crate) fn reset_floors(&self) {
        for floor in lock(&self.floors).values_mut() {
            *floor = None;
        }
    }

    /// `min(floor) − 1` when every replica reported a usable floor, else `None`.
    pub(crate) fn shadow_cleanup_bound(&self, current: u32) -> Option<u32> {
        cleanup_bound(lock(&self.floors).values().copied(), current)
    }
}

/// Litestream's `cleanWAL` bound over the replicas' floors: delete indices below the result.
fn cleanup_bound(floors: impl Iterator<Item = Option<u32>>, current: u32) -> Option<u32> {
    let mut min: Option<u32> = None;
    for floor in floors {
        let f = floor.filter(|&f| f <= current)?;
        min = Some(min.map_or(f, |m| m.min(f)));
    }
    min.filter(|&m| m > 0).map(|m| m - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_bound_follows_litestream_clean_wal() {
        // No replicas: nothing is ever deleted.
        assert_eq!(cleanup_bound([].into_iter(), 9), None);
        // A replica that has not reported yet blocks cleanup.
        assert_eq!(cleanup_bound([Some(5), None].into_iter(), 9), None);
        // Keep one extra file below the lowest floor.
        assert_eq!(cleanup_bound([Some(5), Some(7)].into_iter(), 9), Some(4));
        assert_eq!(cleanup_bound([Some(1)].into_iter(), 9), Some(0));
        assert_eq!(cleanup_bound([Some(0)].into_iter(), 9), None);
        // A floor above the current index is stale (earlier generation): ignored.
        assert_eq!(cleanup_bound([Some(12)].into_iter(), 9), None);
    }
}
