//! File-change notifications for one database: inotify (via `notify`) on the database's
//! directory, filtered to the database file and its `-wal`, coalesced into one
//! [`tokio::sync::Notify`] permit.
//!
//! What must stay true: only content changes wake the sync loop (create, remove, rename, data
//! writes, close-after-write); opens, reads and metadata changes do not — walstream's own reads
//! of the WAL would otherwise wake it forever. Any number of events between two waits count as
//! one. When the watch cannot be set up, [`WalWatcher::changed`] never resolves and the
//! caller's `monitor-interval` tick is the only trigger (logged once at WARN).

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::warn;

/// Wakes a sync loop when the database or its WAL changes.
pub struct WalWatcher {
    notify: Arc<Notify>,
    _watcher: Option<RecommendedWatcher>,
}

impl WalWatcher {
    /// Watches the directory of `db_path`. Never fails: without inotify it stays silent.
    pub fn new(db_path: &Path) -> WalWatcher {
        let notify = Arc::new(Notify::new());
        let watcher = match start(db_path, Arc::clone(&notify)) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(db = %db_path.display(), error = %e,
                    "cannot watch database directory, polling at monitor-interval only");
                None
            }
        };
        WalWatcher {
            notify,
            _watcher: watcher,
        }
    }

    /// True when file events are delivered (false: polling only).
    pub fn is_active(&self) -> bool {
        self._watcher.is_some()
    }

    /// Resolves once the database or its WAL changed since the previous call (immediately if a
    /// change is already pending). Cancel-safe.
    pub async fn changed(&mut self) {
        if self._watcher.is_some() {
            self.notify.notified().await;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

fn start(db_path: &Path, notify: Arc<Notify>) -> notify::Result<RecommendedWatcher> {
    let dir = match db_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let db_name = db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let mut wal_name = db_name.clone();
    wal_name.push("-wal");
    let names = [db_name, wal_name];
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
        if let Ok(event) = res
            && is_relevant(&event, &names)
        {
            notify.notify_one();
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// A content change of one of `names` (file names inside the watched directory), or a
/// notice that events were lost.
fn is_relevant(event: &Event, names: &[OsString]) -> bool {
    if event.need_rescan() {
        return true; // events were dropped (queue overflow): assume a change
    }
    let kind_matters = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Any | EventKind::Other => true,
    };
    kind_matters
        && event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| names.iter().any(|w| w == n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind};
    use std::path::PathBuf;

    fn names() -> Vec<OsString> {
        vec!["app.db".into(), "app.db-wal".into()]
    }

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn filters_kinds_and_names() {
        let n = names();
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(is_relevant(&event(write, "/d/app.db-wal"), &n));
        assert!(is_relevant(&event(write, "/d/app.db"), &n));
        assert!(!is_relevant(&event(write, "/d/app.db-shm"), &n));
        assert!(!is_relevant(&event(write, "/d/other.db-wal"), &n));
        let create = EventKind::Create(CreateKind::File);
        assert!(is_relevant(&event(create, "/d/app.db-wal"), &n));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(!is_relevant(&event(open, "/d/app.db-wal"), &n));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(is_relevant(&event(closed, "/d/app.db-wal"), &n));
        let chmod = EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions));
        assert!(!is_relevant(&event(chmod, "/d/app.db"), &n));
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(is_relevant(&overflow, &n));
    }

    #[tokio::test]
    async fn a_wal_write_wakes_the_watcher() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("app.db");
        let mut w = WalWatcher::new(&db);
        assert!(w.is_active());
        std::fs::write(dir.path().join("app.db-wal"), b"x").expect("write");
        tokio::time::timeout(std::time::Duration::from_secs(10), w.changed())
            .await
            .expect("event within 10 s");
    }
}
