//! Finding the SQLite databases of a directory entry on disk (a scan at start and after the
//! watcher lost events; the orchestrator follows changes between scans).
//!
//! What must stay true: a file counts only when the entry matches its path and its first 16
//! bytes are SQLite's header (an empty file, one still being created, is not a database yet);
//! hidden folders (meta and backups folders) and symlinked folders are never entered; an
//! unreadable entry is skipped, not fatal; no SQLite connection is opened (a scan of 10,000
//! files costs a directory walk and 16 bytes each).

use std::io::Read;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::config::DirConfig;

/// The first 16 bytes of every SQLite database file.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// True when `path` is a regular file starting with [`SQLITE_HEADER`].
pub fn is_sqlite_file(path: &Path) -> std::io::Result<bool> {
    let mut f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Ok(false);
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(&head == SQLITE_HEADER)
}

/// Every database file of the entry, sorted.
pub fn scan(entry: &DirConfig) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![entry.dir.clone()];
    let mut first = true;
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if first => return Err(e),
            Err(e) => {
                debug!(dir = %dir.display(), error = %e, "skip unreadable directory");
                continue;
            }
        };
        first = false;
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else {
                continue;
            };
            let path = e.path();
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if kind.is_dir() {
                if entry.recursive && !hidden {
                    stack.push(path);
                }
            } else if entry.matches(&path) {
                match is_sqlite_file(&path) {
                    Ok(true) => found.push(path),
                    Ok(false) => {}
                    Err(e) => debug!(path = %path.display(), error = %e, "skip unreadable file"),
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DbConfig;

    fn entry(dir: &Path, recursive: bool) -> DirConfig {
        DirConfig::new(
            dir.to_path_buf(),
            "*.db",
            recursive,
            false,
            DbConfig::with_defaults(dir),
            None,
            None,
        )
        .expect("valid")
    }

    fn sqlite(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let c = rusqlite::Connection::open(path).expect("open");
        c.execute_batch("CREATE TABLE t(x)").expect("create");
    }

    #[test]
    fn finds_sqlite_files_by_pattern_depth_and_header() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        for p in [
            "a.db",
            "x/b.db",
            "x/y/c.db",
            "notes.sqlite",
            ".a.db-litestream/d.db",
        ] {
            sqlite(&d.join(p));
        }
        std::fs::write(d.join("empty.db"), b"").expect("empty");
        std::fs::write(d.join("text.db"), b"hello, not a database at all").expect("text");
        std::fs::write(d.join("a.db-wal"), b"SQLite format 3\0 not really").expect("wal");
        std::fs::create_dir_all(d.join("dir.db")).expect("a directory named like a db");
        let flat = scan(&entry(d, false)).expect("scan");
        assert_eq!(flat, vec![d.join("a.db")]);
        let deep = scan(&entry(d, true)).expect("scan");
        assert_eq!(
            deep,
            vec![d.join("a.db"), d.join("x/b.db"), d.join("x/y/c.db")]
        );
        assert!(scan(&entry(&d.join("missing"), true)).is_err());
    }

    #[test]
    fn header_check() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("a.db");
        sqlite(&p);
        assert!(is_sqlite_file(&p).expect("read"));
        std::fs::write(&p, b"SQLite format 3").expect("short");
        assert!(!is_sqlite_file(&p).expect("read"));
        assert!(is_sqlite_file(&t.path().join("none")).is_err());
    }
}
