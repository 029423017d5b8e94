//! Databases under a `dir` entry (Litestream v0.5's `dir`, `pattern`, `recursive`, `watch`):
//! found by a scan at start and, with `watch`, kept in step with the directory while the run
//! goes on — a SQLite file that appears (or gets its header) is launched, one that disappears
//! is retired (its replica data stays).
//!
//! What must stay true: only files the entry matches and whose header says SQLite are
//! replicated (never `-wal`/`-shm`/`-journal` files or walstream's own meta folders); the
//! watchers are registered before each scan, so no file created meanwhile is missed; events are
//! handled path by path (one `stat` and a 16-byte read each) and a full rescan happens only when
//! the watcher lost events or a directory of the tree changed; scans run on blocking threads.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::fleet::Launcher;
use crate::config::DirConfig;
use crate::db::{DirBatch, DirEvents, DirWatcher};
use crate::discover;

/// How often a watched directory entry is rescanned when its directories cannot be watched.
pub const RESCAN_WITHOUT_EVENTS: std::time::Duration = std::time::Duration::from_secs(5);

/// Watches and reconciles one `dir` entry until cancelled (or, without `watch`, after the
/// initial scan).
pub(super) async fn run(dir: Arc<DirConfig>, launcher: Arc<Launcher>, cancel: CancellationToken) {
    if !wait_for_dir(&dir, &launcher, &cancel).await {
        return;
    }
    let events = DirEvents::new();
    let mut tree = Tree::default();
    let mut known = BTreeSet::new();
    if dir.watch {
        tree.sync(&dir, &launcher, &events).await;
    }
    rescan(&dir, &launcher, &mut known).await;
    info!(dir = %dir.dir.display(), databases = known.len(), watch = dir.watch, "directory scanned");
    if !dir.watch {
        return;
    }
    loop {
        // Without working watchers (e.g. the inotify instance limit reached), poll by rescans.
        let fallback = if tree.degraded {
            RESCAN_WITHOUT_EVENTS
        } else {
            std::time::Duration::MAX
        };
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            b = events.next() => b,
            _ = tokio::time::sleep(fallback) => DirBatch::Rescan,
        };
        let paths = match batch {
            DirBatch::Rescan => None,
            DirBatch::Paths(paths) => Some(paths),
        };
        let tree_changed = paths
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| tree.concerns(p)));
        if tree_changed {
            tree.sync(&dir, &launcher, &events).await;
            rescan(&dir, &launcher, &mut known).await;
        } else {
            for p in paths.unwrap_or_default() {
                reconcile_one(&dir, &launcher, &mut known, p).await;
            }
        }
    }
}

/// Waits until the entry's directory exists (polling; only with `watch`). False when cancelled
/// or when it does not exist and the entry does not watch.
async fn wait_for_dir(dir: &DirConfig, launcher: &Launcher, cancel: &CancellationToken) -> bool {
    let mut logged = false;
    loop {
        if dir.dir.is_dir() {
            return true;
        }
        if !dir.watch {
            error!(dir = %dir.dir.display(), "directory does not exist, no databases replicated from it");
            return false;
        }
        if !logged {
            info!(dir = %dir.dir.display(), "waiting for directory");
            logged = true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(launcher.ctx.poll) => {}
        }
    }
}

/// Full scan: launch what is new, retire what is gone.
async fn rescan(dir: &Arc<DirConfig>, launcher: &Launcher, known: &mut BTreeSet<PathBuf>) {
    let scanned = {
        let dir = Arc::clone(dir);
        crate::rt::spawn_blocking(move || discover::scan(&dir)).await
    };
    let found: BTreeSet<PathBuf> = match scanned {
        Ok(Ok(paths)) => paths.into_iter().collect(),
        Ok(Err(e)) => {
            error!(dir = %dir.dir.display(), error = %e, "scan directory");
            return;
        }
        Err(e) => {
            error!(dir = %dir.dir.display(), error = %e, "scan directory");
            return;
        }
    };
    for gone in known.difference(&found).cloned().collect::<Vec<_>>() {
        launcher.retire(&gone);
        known.remove(&gone);
    }
    for new in found.difference(known).cloned().collect::<Vec<_>>() {
        if launch(dir, launcher, &new) {
            known.insert(new);
        }
    }
}

/// One changed path: launch it if it became a matching SQLite file, retire it if it vanished.
async fn reconcile_one(
    dir: &DirConfig,
    launcher: &Launcher,
    known: &mut BTreeSet<PathBuf>,
    path: PathBuf,
) {
    if !dir.matches(&path) {
        return;
    }
    let probe = path.clone();
    let is_db = crate::rt::spawn_blocking(move || discover::is_sqlite_file(&probe))
        .await
        .map_or(Ok(false), |r| r);
    match is_db {
        Ok(true) if !known.contains(&path) => {
            if launch(dir, launcher, &path) {
                known.insert(path);
            }
        }
        Ok(true) => {}
        Ok(false) => debug!(path = %path.display(), "not (yet) a SQLite database"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if known.remove(&path) {
                launcher.retire(&path);
            }
        }
        Err(e) => warn!(path = %path.display(), error = %e, "cannot read database header"),
    }
}

/// Launches the database at `path`; false when it was not started (logged).
fn launch(dir: &DirConfig, launcher: &Launcher, path: &Path) -> bool {
    let Some(cfg) = dir.db_config(path) else {
        return false;
    };
    match launcher.launch(&cfg) {
        Ok(started) => {
            if started {
                info!(db = %path.display(), dir = %dir.dir.display(), "database discovered");
            }
            started
        }
        Err(e) => {
            error!(db = %path.display(), error = %format!("{e:#}"), "cannot replicate discovered database");
            false
        }
    }
}

/// The directories of a watched entry (the root, and with `recursive` every subdirectory that is
/// not hidden — walstream's meta folders are hidden — nor a symlink), each with its watcher.
#[derive(Default)]
struct Tree {
    watchers: HashMap<PathBuf, DirWatcher>,
    /// Some directory could not be watched: changes are found by periodic rescans.
    degraded: bool,
}

impl Tree {
    /// True when `path` is, or may be, a directory of the tree (so the tree must be re-read).
    fn concerns(&self, path: &Path) -> bool {
        self.watchers.contains_key(path) || path.is_dir()
    }

    /// Watches exactly the directories the entry covers now.
    async fn sync(&mut self, dir: &Arc<DirConfig>, launcher: &Launcher, events: &DirEvents) {
        let root = dir.dir.clone();
        let recursive = dir.recursive;
        let dirs: BTreeSet<PathBuf> =
            match crate::rt::spawn_blocking(move || directories(&root, recursive)).await {
                Ok(d) => d,
                Err(_) => return,
            };
        self.watchers.retain(|d, _| dirs.contains(d));
        let mut degraded = false;
        for d in dirs {
            if self.watchers.contains_key(&d) {
                continue;
            }
            let cfg = Arc::clone(dir);
            let filter = move |p: &Path| cfg.matches(p) || (cfg.recursive && may_be_subdir(p));
            match DirWatcher::new(&launcher.ctx.hub, &d, filter, events) {
                Ok(w) => {
                    self.watchers.insert(d, w);
                }
                Err(e) => {
                    if !self.degraded {
                        warn!(dir = %d.display(), error = %e, every = ?RESCAN_WITHOUT_EVENTS,
                            "cannot watch directory, rescanning periodically");
                    }
                    degraded = true;
                }
            }
        }
        self.degraded = degraded;
    }
}

/// A path that could be a subdirectory of a recursive tree: not hidden, not a SQLite side file.
fn may_be_subdir(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.')
        && !name.ends_with("-wal")
        && !name.ends_with("-shm")
        && !name.ends_with("-journal")
}

/// `root` and, when `recursive`, every non-hidden, non-symlink directory below it.
fn directories(root: &Path, recursive: bool) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::from([root.to_path_buf()]);
    if !recursive {
        return out;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && !hidden {
                let p = e.path();
                out.insert(p.clone());
                stack.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_skip_hidden_and_follow_recursion() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path();
        for d in ["a/b", ".app.db-litestream/generations", "c"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        assert_eq!(
            directories(root, false),
            BTreeSet::from([root.to_path_buf()])
        );
        let all = directories(root, true);
        let want: BTreeSet<PathBuf> = ["", "a", "a/b", "c"]
            .iter()
            .map(|d| {
                if d.is_empty() {
                    root.to_path_buf()
                } else {
                    root.join(d)
                }
            })
            .collect();
        assert_eq!(all, want);
    }

    #[test]
    fn side_files_are_never_subdirectories() {
        assert!(may_be_subdir(Path::new("/d/tenants")));
        assert!(!may_be_subdir(Path::new("/d/a.db-wal")));
        assert!(!may_be_subdir(Path::new("/d/a.db-shm")));
        assert!(!may_be_subdir(Path::new("/d/.a.db-litestream")));
    }
}
