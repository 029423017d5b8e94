//! File-change notifications for every database of the process: ONE inotify instance (via
//! `notify`, one event thread) shared by all databases, each directory watched once however many
//! databases live in it, and every event dispatched by file name to the database it concerns.
//!
//! - [`WatchHub`]: the process-wide watcher. Cheap to clone; the orchestrator makes one.
//! - [`WalWatcher`]: one database's registration (its file and `-wal`), coalescing any number of
//!   events into one [`tokio::sync::Notify`] permit. Dropping it unregisters; the directory is
//!   unwatched when its last registration goes.
//! - [`DirWatcher`]: a directory listener for discovery (files appearing, vanishing or renamed
//!   whose path passes a filter).
//!
//! What must stay true:
//! - only content changes wake a database (create, remove, rename, data writes,
//!   close-after-write); opens, reads and metadata changes do not — walstream's own reads of the
//!   WAL would otherwise wake it forever; events for other files of the directory cost one hash
//!   look-up on the event thread and wake nobody;
//! - a dropped-events notice (inotify queue overflow) wakes every registration;
//! - the route table's lock is never held while calling into the `notify` watcher (its
//!   `watch`/`unwatch` wait for the event thread, which takes the route lock to dispatch);
//! - when the watch cannot be set up, [`WalWatcher::is_active`] is false and
//!   [`WalWatcher::changed`] never resolves: the caller's `monitor-interval` tick is the only
//!   trigger (logged once per registration at WARN).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::warn;

/// A wake-up target: a coalescing permit plus a count of events delivered.
#[derive(Default)]
struct Slot {
    notify: Notify,
    events: AtomicU64,
}

impl Slot {
    fn wake(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }
}

/// Decides which paths of a watched directory a [`DirWatcher`] cares about.
type PathFilter = Box<dyn Fn(&Path) -> bool + Send + Sync>;

/// Registrations of one watched directory.
#[derive(Default)]
struct DirRoutes {
    /// File name → registrations (id, slot).
    files: HashMap<OsString, Vec<(u64, Arc<Slot>)>>,
    listeners: Vec<(u64, Arc<Slot>, Arc<PathFilter>)>,
}

impl DirRoutes {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.listeners.is_empty()
    }
}

#[derive(Default)]
struct Routes {
    dirs: HashMap<PathBuf, DirRoutes>,
    next_id: u64,
}

struct HubShared {
    /// `None` when inotify could not be initialised (every registration is then inactive).
    /// Also serializes every watch/unwatch with the route changes that go with it.
    watcher: Mutex<Option<RecommendedWatcher>>,
    routes: Arc<Mutex<Routes>>,
}

/// The process-wide file watcher. See the module docs.
#[derive(Clone)]
pub struct WatchHub {
    shared: Arc<HubShared>,
}

impl Default for WatchHub {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchHub {
    /// Starts the watcher thread. Never fails: without inotify every registration is inactive.
    pub fn new() -> WatchHub {
        let routes = Arc::new(Mutex::new(Routes::default()));
        let for_events = Arc::clone(&routes);
        let watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
            if let Ok(event) = res {
                dispatch(&lock(&for_events), &event);
            }
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot start the file watcher, polling at monitor-interval only");
                None
            }
        };
        WatchHub {
            shared: Arc::new(HubShared {
                watcher: Mutex::new(watcher),
                routes,
            }),
        }
    }

    /// Number of directories watched now (for tests and status).
    pub fn watched_dirs(&self) -> usize {
        lock(&self.shared.routes).dirs.len()
    }

    /// Registers `slot` for `names` in `dir`, or as a listener when `filter` is given. Returns
    /// the id, or `None` when the directory cannot be watched.
    fn register(
        &self,
        dir: &Path,
        names: &[OsString],
        filter: Option<PathFilter>,
        slot: &Arc<Slot>,
    ) -> Result<u64, String> {
        let mut watcher = lock(&self.shared.watcher);
        let Some(w) = watcher.as_mut() else {
            return Err("file watcher unavailable".into());
        };
        let known = lock(&self.shared.routes).dirs.contains_key(dir);
        if !known {
            w.watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| e.to_string())?;
        }
        let mut routes = lock(&self.shared.routes);
        routes.next_id += 1;
        let id = routes.next_id;
        let entry = routes.dirs.entry(dir.to_path_buf()).or_default();
        for name in names {
            let regs = entry.files.entry(name.clone()).or_default();
            regs.push((id, Arc::clone(slot)));
        }
        if let Some(f) = filter {
            entry.listeners.push((id, Arc::clone(slot), Arc::new(f)));
        }
        Ok(id)
    }

    fn unregister(&self, dir: &Path, id: u64) {
        let mut watcher = lock(&self.shared.watcher);
        let emptied = {
            let mut routes = lock(&self.shared.routes);
            let Some(entry) = routes.dirs.get_mut(dir) else {
                return;
            };
            entry.files.retain(|_, regs| {
                regs.retain(|(i, _)| *i != id);
                !regs.is_empty()
            });
            entry.listeners.retain(|(i, _, _)| *i != id);
            let emptied = entry.is_empty();
            if emptied {
                routes.dirs.remove(dir);
            }
            emptied
        };
        if emptied && let Some(w) = watcher.as_mut() {
            // The directory may be gone already (then inotify dropped the watch itself).
            let _ = w.unwatch(dir);
        }
    }
}

/// Delivers one event to the registrations it concerns (runs on the watcher thread).
fn dispatch(routes: &Routes, event: &Event) {
    if event.need_rescan() {
        for entry in routes.dirs.values() {
            entry.files.values().flatten().for_each(|(_, s)| s.wake());
            entry.listeners.iter().for_each(|(_, s, _)| s.wake());
        }
        return;
    }
    let content = is_content_change(&event.kind);
    let membership = is_membership_change(&event.kind);
    if !content && !membership {
        return;
    }
    for path in &event.paths {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let Some(entry) = routes.dirs.get(dir) else {
            continue;
        };
        if content && let Some(regs) = entry.files.get(name) {
            regs.iter().for_each(|(_, s)| s.wake());
        }
        if membership {
            for (_, slot, filter) in &entry.listeners {
                if filter(path) {
                    slot.wake();
                }
            }
        }
    }
}

/// Event kinds that may change a database's content (see the module docs).
fn is_content_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Any | EventKind::Other => true,
    }
}

/// Event kinds that may add or remove a file of a directory (discovery), or finish writing one
/// (a new database's header arrives with its first write).
fn is_membership_change(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Any
            | EventKind::Other
    )
}

/// The directory to watch for `path` (its parent, `.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// One database's registration: wakes when the database file or its WAL changes.
pub struct WalWatcher {
    slot: Arc<Slot>,
    registration: Option<(WatchHub, PathBuf, u64)>,
}

impl WalWatcher {
    /// Registers `db_path` (and its `-wal`) with `hub`. Never fails: when the directory cannot
    /// be watched the registration is inactive (logged once).
    pub fn new(hub: &WatchHub, db_path: &Path) -> WalWatcher {
        let slot = Arc::new(Slot::default());
        let dir = parent_dir(db_path);
        let db_name = db_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let mut wal_name = db_name.clone();
        wal_name.push("-wal");
        let registration = match hub.register(&dir, &[db_name, wal_name], None, &slot) {
            Ok(id) => Some((hub.clone(), dir, id)),
            Err(e) => {
                warn!(db = %db_path.display(), error = %e,
                    "cannot watch database directory, polling at monitor-interval only");
                None
            }
        };
        WalWatcher { slot, registration }
    }

    /// True when file events are delivered (false: polling only).
    pub fn is_active(&self) -> bool {
        self.registration.is_some()
    }

    /// Number of events delivered so far (a change of it means a wake-up is pending or was
    /// consumed; used to tell a missed event from a pending one).
    pub fn events(&self) -> u64 {
        self.slot.events.load(Ordering::Relaxed)
    }

    /// Resolves once the database or its WAL changed since the previous call (immediately if a
    /// change is already pending). Cancel-safe.
    pub async fn changed(&mut self) {
        if self.registration.is_some() {
            self.slot.notify.notified().await;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for WalWatcher {
    fn drop(&mut self) {
        if let Some((hub, dir, id)) = self.registration.take() {
            hub.unregister(&dir, id);
        }
    }
}

/// A discovery registration: wakes when a file passing `filter` appears in, vanishes from, is
/// renamed in or finishes a write in `dir`.
pub struct DirWatcher {
    slot: Arc<Slot>,
    registration: Option<(WatchHub, PathBuf, u64)>,
}

impl DirWatcher {
    /// Watches `dir`; `Err` (with the reason) when it cannot be watched.
    pub fn new(
        hub: &WatchHub,
        dir: &Path,
        filter: impl Fn(&Path) -> bool + Send + Sync + 'static,
    ) -> Result<DirWatcher, String> {
        let slot = Arc::new(Slot::default());
        let id = hub.register(dir, &[], Some(Box::new(filter)), &slot)?;
        Ok(DirWatcher {
            slot,
            registration: Some((hub.clone(), dir.to_path_buf(), id)),
        })
    }

    /// Resolves once a matching change happened since the previous call. Cancel-safe.
    pub async fn changed(&self) {
        self.slot.notify.notified().await;
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        if let Some((hub, dir, id)) = self.registration.take() {
            hub.unregister(&dir, id);
        }
    }
}

/// Locks a mutex, recovering from poisoning (the tables stay consistent: every update is one
/// statement under the lock).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind};
    use std::time::Duration;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    fn routes_for(names: &[&str]) -> (Routes, Arc<Slot>) {
        let slot = Arc::new(Slot::default());
        let mut entry = DirRoutes::default();
        for n in names {
            entry
                .files
                .insert(OsString::from(n), vec![(1, Arc::clone(&slot))]);
        }
        let mut routes = Routes::default();
        routes.dirs.insert(PathBuf::from("/d"), entry);
        (routes, slot)
    }

    fn delivered(kind: EventKind, path: &str) -> bool {
        let (routes, slot) = routes_for(&["app.db", "app.db-wal"]);
        dispatch(&routes, &event(kind, path));
        slot.events.load(Ordering::Relaxed) > 0
    }

    #[test]
    fn dispatch_filters_kinds_and_names() {
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(delivered(write, "/d/app.db-wal"));
        assert!(delivered(write, "/d/app.db"));
        assert!(!delivered(write, "/d/app.db-shm"));
        assert!(!delivered(write, "/d/other.db-wal"));
        assert!(!delivered(write, "/e/app.db-wal"), "other directory");
        assert!(delivered(
            EventKind::Create(CreateKind::File),
            "/d/app.db-wal"
        ));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(!delivered(open, "/d/app.db-wal"));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(delivered(closed, "/d/app.db-wal"));
        let chmod = EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions));
        assert!(!delivered(chmod, "/d/app.db"));
    }

    #[test]
    fn overflow_wakes_everyone() {
        let (routes, slot) = routes_for(&["app.db"]);
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        dispatch(&routes, &overflow);
        assert_eq!(slot.events.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn listeners_see_membership_changes_that_pass_their_filter() {
        let slot = Arc::new(Slot::default());
        let filter: PathFilter = Box::new(|p: &Path| p.extension().is_some_and(|e| e == "db"));
        let mut entry = DirRoutes::default();
        entry
            .listeners
            .push((1, Arc::clone(&slot), Arc::new(filter)));
        let mut routes = Routes::default();
        routes.dirs.insert(PathBuf::from("/d"), entry);
        let count = || slot.events.load(Ordering::Relaxed);
        dispatch(
            &routes,
            &event(EventKind::Create(CreateKind::File), "/d/a.db"),
        );
        assert_eq!(count(), 1);
        dispatch(
            &routes,
            &event(EventKind::Create(CreateKind::File), "/d/a.txt"),
        );
        assert_eq!(count(), 1, "filtered out");
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        dispatch(&routes, &event(write, "/d/a.db"));
        assert_eq!(count(), 1, "a data write is not a membership change");
    }

    #[tokio::test]
    async fn one_hub_serves_many_databases_of_one_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = WatchHub::new();
        let mut a = WalWatcher::new(&hub, &dir.path().join("a.db"));
        let mut b = WalWatcher::new(&hub, &dir.path().join("b.db"));
        assert!(a.is_active() && b.is_active());
        assert_eq!(hub.watched_dirs(), 1, "the directory is watched once");
        std::fs::write(dir.path().join("a.db-wal"), b"x").expect("write");
        tokio::time::timeout(Duration::from_secs(10), a.changed())
            .await
            .expect("a woken within 10 s");
        assert_eq!(b.events(), 0, "b is not woken by a's WAL");
        std::fs::write(dir.path().join("b.db"), b"y").expect("write");
        tokio::time::timeout(Duration::from_secs(10), b.changed())
            .await
            .expect("b woken within 10 s");
        drop(a);
        assert_eq!(hub.watched_dirs(), 1, "b still registered");
        drop(b);
        assert_eq!(
            hub.watched_dirs(),
            0,
            "unwatched with the last registration"
        );
    }

    #[tokio::test]
    async fn dir_watcher_sees_a_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = WatchHub::new();
        let w = DirWatcher::new(&hub, dir.path(), |p| {
            p.extension().is_some_and(|e| e == "db")
        })
        .expect("watch");
        std::fs::write(dir.path().join("new.db"), b"x").expect("write");
        tokio::time::timeout(Duration::from_secs(10), w.changed())
            .await
            .expect("woken within 10 s");
    }
}
