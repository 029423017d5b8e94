//! File-change notifications for every database of the process: ONE inotify instance (via
//! `notify`, one event thread) shared by all databases, each directory watched once however many
//! databases live in it, and every event dispatched by file name to the database it concerns.
//!
//! - [`WatchHub`]: the process-wide watcher. Cheap to clone; the orchestrator makes one.
//! - [`WalWatcher`]: one database's registration (its file and `-wal`), coalescing any number of
//!   events into one [`tokio::sync::Notify`] permit. Dropping it unregisters; the directory is
//!   unwatched when its last registration goes.
//! - [`DirWatcher`] + [`DirEvents`]: a directory listener for discovery (the paths, passing a
//!   filter, of files that appeared, vanished, were renamed or written).
//!
//! What must stay true:
//! - only content changes wake a database (create, remove, rename, data writes,
//!   close-after-write); opens, reads and metadata changes do not — walstream's own reads of the
//!   WAL would otherwise wake it forever; events for other files of the directory cost one hash
//!   look-up on the event thread and wake nobody;
//! - a dropped-events notice (inotify queue overflow) wakes every registration;
//! - while no database waits in [`WalWatcher::changed`] (each is syncing or held back by its
//!   sync pace) and no directory listener exists, the event thread pauses after an event for
//!   at most [`HOLD_MAX`]: the kernel queues the events meanwhile and merges repeated writes of
//!   one file into one, so a busy database costs one wake-up per sync instead of one per
//!   commit. A database that starts waiting ends the pause at once;
//! - the route table's lock is never held while calling into the `notify` watcher (its
//!   `watch`/`unwatch` wait for the event thread, which takes the route lock to dispatch);
//! - when the watch cannot be set up, [`WalWatcher::is_active`] is false and
//!   [`WalWatcher::changed`] never resolves: the caller's `monitor-interval` tick is the only
//!   trigger (logged once per registration at WARN).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::warn;

use crate::rt::lock;

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

/// Most paths a [`DirEvents`] queues before it asks for a full rescan instead.
const MAX_QUEUED_PATHS: usize = 10_000;

/// Longest pause of the event thread while no database waits for a change (setting a watch
/// up or down ends a pause, as the event thread does that work).
pub const HOLD_MAX: std::time::Duration = std::time::Duration::from_millis(250);

/// How many databases wait for a change; the event thread pauses while there are none.
#[derive(Default)]
struct Gate {
    /// (databases waiting, the event thread is paused).
    state: Mutex<(usize, bool)>,
    opened: std::sync::Condvar,
}

impl Gate {
    /// Counts a waiter until the guard is dropped, ending any pause of the event thread.
    fn arm(self: &Arc<Self>) -> Armed {
        let mut state = lock(&self.state);
        state.0 += 1;
        if state.1 {
            self.opened.notify_all();
        }
        Armed(Arc::clone(self))
    }

    /// On the event thread after an event: waits (at most [`HOLD_MAX`]) while nobody waits.
    fn hold(&self) {
        self.hold_for(HOLD_MAX);
    }

    fn hold_for(&self, max: std::time::Duration) {
        let mut state = lock(&self.state);
        if state.0 == 0 {
            state.1 = true;
            state = match self.opened.wait_timeout_while(state, max, |s| s.0 == 0) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
            state.1 = false;
        }
    }
}

/// A database waiting for a change (see [`Gate`]).
struct Armed(Arc<Gate>);

/// Keeps a watcher's events flowing while alive (see [`WalWatcher::deliver_events`]).
pub struct Delivering {
    _armed: Option<Armed>,
}

impl Drop for Armed {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.0 = state.0.saturating_sub(1);
    }
}

/// Where a directory listener's events go: the paths seen since the last batch, or a request
/// to rescan everything (inotify overflow, or too many paths queued).
#[derive(Default)]
struct DirSink {
    notify: Notify,
    queued: Mutex<(std::collections::HashSet<PathBuf>, bool)>,
}

impl DirSink {
    fn push(&self, path: &Path) {
        {
            let mut q = lock(&self.queued);
            if !q.1 {
                q.0.insert(path.to_path_buf());
                if q.0.len() > MAX_QUEUED_PATHS {
                    q.0.clear();
                    q.1 = true;
                }
            }
        }
        self.notify.notify_one();
    }

    fn rescan(&self) {
        {
            let mut q = lock(&self.queued);
            q.0.clear();
            q.1 = true;
        }
        self.notify.notify_one();
    }
}

/// One directory listener: the paths it wants and where they go.
struct Listener {
    id: u64,
    filter: PathFilter,
    sink: Arc<DirSink>,
}

/// Registrations of one watched directory.
#[derive(Default)]
struct DirRoutes {
    /// File name → registrations (id, slot).
    files: HashMap<OsString, Vec<(u64, Arc<Slot>)>>,
    listeners: Vec<Listener>,
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
    /// Directory listeners registered (the event thread never pauses while there are any).
    listeners: usize,
}

struct HubShared {
    /// `None` when inotify could not be initialised (every registration is then inactive).
    /// Also serializes every watch/unwatch with the route changes that go with it.
    watcher: Mutex<Option<RecommendedWatcher>>,
    routes: Arc<Mutex<Routes>>,
    gate: Arc<Gate>,
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
        let gate = Arc::new(Gate::default());
        let (for_events, gate_events) = (Arc::clone(&routes), Arc::clone(&gate));
        let watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
            if let Ok(event) = res {
                let listeners = {
                    let routes = lock(&for_events);
                    dispatch(&routes, &event);
                    routes.listeners
                };
                if listeners == 0 {
                    gate_events.hold();
                }
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
                gate,
            }),
        }
    }

    /// Number of directories watched now (for tests and status).
    pub fn watched_dirs(&self) -> usize {
        lock(&self.shared.routes).dirs.len()
    }

    /// Registers `slot` for `names` in `dir`, and `listener` (filter, sink) when given. Returns
    /// the id, or why the directory cannot be watched.
    fn register(
        &self,
        dir: &Path,
        names: &[OsString],
        slot: &Arc<Slot>,
        listener: Option<(PathFilter, Arc<DirSink>)>,
    ) -> Result<u64, String> {
        let mut watcher = lock(&self.shared.watcher);
        let Some(w) = watcher.as_mut() else {
            return Err("file watcher unavailable".into());
        };
        let known = lock(&self.shared.routes).dirs.contains_key(dir);
        if !known {
            // The event thread sets the watch up: end any pause first.
            let _resume = self.shared.gate.arm();
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
        if let Some((filter, sink)) = listener {
            entry.listeners.push(Listener { id, filter, sink });
            routes.listeners += 1;
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
            let before = entry.listeners.len();
            entry.listeners.retain(|l| l.id != id);
            let removed = before - entry.listeners.len();
            let emptied = entry.is_empty();
            if emptied {
                routes.dirs.remove(dir);
            }
            routes.listeners -= removed;
            emptied
        };
        if emptied && let Some(w) = watcher.as_mut() {
            let _resume = self.shared.gate.arm();
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
            entry.listeners.iter().for_each(|l| l.sink.rescan());
        }
        return;
    }
    let content = is_content_change(&event.kind);
    if !content {
        return;
    }
    for path in &event.paths {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let Some(entry) = routes.dirs.get(dir) else {
            continue;
        };
        if let Some(regs) = entry.files.get(name) {
            regs.iter().for_each(|(_, s)| s.wake());
        }
        for l in &entry.listeners {
            if (l.filter)(path) {
                l.sink.push(path);
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
        let registration = match hub.register(&dir, &[db_name, wal_name], &slot, None) {
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
        match &self.registration {
            Some((hub, _, _)) => {
                let _waiting = hub.shared.gate.arm();
                self.slot.notify.notified().await;
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Keeps events flowing to [`Self::events`] while the guard lives, for a caller that polls
    /// the count instead of waiting in [`Self::changed`] (see the module docs on pauses).
    pub fn deliver_events(&self) -> Delivering {
        Delivering {
            _armed: self
                .registration
                .as_ref()
                .map(|(hub, _, _)| hub.shared.gate.arm()),
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

/// What a [`DirEvents`] delivers: the paths that changed, or "rescan everything".
#[derive(Debug, PartialEq, Eq)]
pub enum DirBatch {
    Paths(Vec<PathBuf>),
    Rescan,
}

/// The receiving end of one or more [`DirWatcher`]s (e.g. every directory of a recursive tree):
/// the paths passing their filters that were created, removed, renamed or written since the
/// last batch. Bounded: past [`MAX_QUEUED_PATHS`] it asks for a rescan instead.
#[derive(Clone, Default)]
pub struct DirEvents {
    sink: Arc<DirSink>,
}

impl DirEvents {
    pub fn new() -> DirEvents {
        DirEvents::default()
    }

    /// Waits for changes, then takes everything queued so far. Cancel-safe.
    pub async fn next(&self) -> DirBatch {
        loop {
            self.sink.notify.notified().await;
            let mut q = lock(&self.sink.queued);
            if std::mem::take(&mut q.1) {
                q.0.clear();
                return DirBatch::Rescan;
            }
            if !q.0.is_empty() {
                let mut paths: Vec<PathBuf> = q.0.drain().collect();
                paths.sort();
                return DirBatch::Paths(paths);
            }
        }
    }
}

/// A discovery registration on one directory: changes to files whose path passes `filter` go
/// to `events`. Dropping it unregisters.
pub struct DirWatcher {
    registration: Option<(WatchHub, PathBuf, u64)>,
}

impl DirWatcher {
    /// Watches `dir`; `Err` (with the reason) when it cannot be watched.
    pub fn new(
        hub: &WatchHub,
        dir: &Path,
        filter: impl Fn(&Path) -> bool + Send + Sync + 'static,
        events: &DirEvents,
    ) -> Result<DirWatcher, String> {
        let unused = Arc::new(Slot::default());
        let listener = (Box::new(filter) as PathFilter, Arc::clone(&events.sink));
        let id = hub.register(dir, &[], &unused, Some(listener))?;
        Ok(DirWatcher {
            registration: Some((hub.clone(), dir.to_path_buf(), id)),
        })
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        if let Some((hub, dir, id)) = self.registration.take() {
            hub.unregister(&dir, id);
        }
    }
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

    #[tokio::test]
    async fn listeners_queue_the_paths_that_pass_their_filter() {
        let events = DirEvents::new();
        let filter: PathFilter = Box::new(|p: &Path| p.extension().is_some_and(|e| e == "db"));
        let mut entry = DirRoutes::default();
        entry.listeners.push(Listener {
            id: 1,
            filter,
            sink: Arc::clone(&events.sink),
        });
        let mut routes = Routes::default();
        routes.dirs.insert(PathBuf::from("/d"), entry);
        dispatch(
            &routes,
            &event(EventKind::Create(CreateKind::File), "/d/a.db"),
        );
        dispatch(
            &routes,
            &event(EventKind::Create(CreateKind::File), "/d/a.txt"),
        );
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        dispatch(&routes, &event(write, "/d/b.db"));
        dispatch(&routes, &event(write, "/d/b.db"));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        dispatch(&routes, &event(open, "/d/c.db"));
        assert_eq!(
            events.next().await,
            DirBatch::Paths(vec![PathBuf::from("/d/a.db"), PathBuf::from("/d/b.db")])
        );
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        dispatch(&routes, &overflow);
        assert_eq!(events.next().await, DirBatch::Rescan);
    }

    #[test]
    fn a_paused_event_thread_resumes_when_a_database_starts_waiting() {
        let gate = Arc::new(Gate::default());
        // Someone waits: no pause at all.
        let waiting = gate.arm();
        gate.hold_for(Duration::from_secs(3600));
        drop(waiting);
        assert_eq!(*lock(&gate.state), (0, false));
        // Nobody waits: the pause lasts until a database arms (not the hour).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let paused = Arc::clone(&gate);
        let thread = std::thread::spawn(move || {
            paused.hold_for(Duration::from_secs(3600));
            let _ = done_tx.send(());
        });
        while !lock(&gate.state).1 {
            std::thread::yield_now();
        }
        let armed = gate.arm();
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the pause ended when a database started waiting");
        thread.join().expect("join");
        assert_eq!(*lock(&gate.state), (1, false));
        drop(armed);
        assert_eq!(lock(&gate.state).0, 0);
    }

    #[tokio::test]
    async fn a_change_made_while_nobody_waits_reaches_the_next_waiter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = WatchHub::new();
        let mut a = WalWatcher::new(&hub, &dir.path().join("a.db"));
        assert!(a.is_active());
        // Nobody waits: the event thread may pause on the first event; the rest queue up.
        for i in 0..50u8 {
            std::fs::write(dir.path().join("a.db-wal"), [i]).expect("write");
        }
        tokio::time::timeout(Duration::from_secs(10), a.changed())
            .await
            .expect("woken within 10 s");
        assert!(a.events() >= 1);
        // Counting events while polling keeps them flowing too.
        let before = a.events();
        let delivering = a.deliver_events();
        std::fs::write(dir.path().join("a.db"), b"x").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while a.events() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no event counted within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(delivering);
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
        let events = DirEvents::new();
        let _w = DirWatcher::new(
            &hub,
            dir.path(),
            |p| p.extension().is_some_and(|e| e == "db"),
            &events,
        )
        .expect("watch");
        std::fs::write(dir.path().join("new.db"), b"x").expect("write");
        std::fs::write(dir.path().join("new.txt"), b"x").expect("write");
        let batch = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("woken within 10 s");
        assert_eq!(batch, DirBatch::Paths(vec![dir.path().join("new.db")]));
    }
}
