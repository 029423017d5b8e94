//! The one temp-dir fixture of the integration suites: a canonical directory (symlink-free, so
//! paths in configs and logs compare equal) holding the database, the file replica and configs.
//!
//! Must stay true: the directory lives as long as the [`Workspace`] (or the `TempDir` of
//! [`tempdir`]) and is removed with it.

use std::path::{Path, PathBuf};

/// A fresh temp dir and its canonical path (keep the `TempDir` alive as long as the path is used).
pub fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = std::fs::canonicalize(dir.path()).expect("canonicalize");
    (dir, path)
}

/// A temp dir with the conventional `app.db`, `replica/` and config files.
pub struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let (dir, root) = tempdir();
        Workspace { _dir: dir, root }
    }

    /// The canonical root.
    pub fn path(&self) -> PathBuf {
        self.root.clone()
    }

    /// `rel` under the root.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// The application database, `app.db`.
    pub fn db(&self) -> PathBuf {
        self.join("app.db")
    }

    /// The file replica's directory, `replica/`.
    pub fn replica(&self) -> PathBuf {
        self.join("replica")
    }

    /// The file replica as a `file://` URL.
    pub fn replica_url(&self) -> String {
        format!("file://{}", self.replica().display())
    }

    /// Writes `text` to `name` under the root; returns the file's path as a string (for `-config`).
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create config dir");
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.display().to_string()
    }
}
