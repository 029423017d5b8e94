//! Discovery of the databases of a directory entry ([`DirConfig`]): which files under `dir` are
//! SQLite databases matching the entry's pattern, now.
//!
//! What must stay true:
//! - a file is a database when it is a regular file (a symlink to one counts) whose first 16
//!   bytes are SQLite's magic header; nothing else is read and SQLite is never opened, so a scan
//!   of 10,000 files costs one `open` + 16-byte `read` per candidate name;
//! - name and place rules are [`DirConfig::matches`] (pattern, depth, side files, meta dirs,
//!   backups folders), checked before any file is opened;
//! - symlinked directories are never followed (no loops) and meta directories are not entered;
//! - an entry that cannot be read (vanished, permission denied) is logged at debug and skipped;
//!   only a failure to read `dir` itself is an error;
//! - results are sorted.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::config::{DirConfig, is_meta_dir};

/// The first 16 bytes of every SQLite database file.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// True when `path` is a regular file (after following symlinks) starting with
/// [`SQLITE_HEADER`]; a file shorter than 16 bytes (e.g. just created, still empty) is not a
/// database yet.
pub fn is_sqlite_file(path: &Path) -> io::Result<bool> {
    if !fs::metadata(path)?.is_file() {
        return Ok(false);
    }
    let mut header = [0u8; 16];
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(&header == SQLITE_HEADER)
}

/// Every database of `entry` present under its directory, sorted. A missing directory is an
/// error (`NotFound`).
pub fn scan(entry: &DirConfig) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![entry.dir.clone()];
    let mut top = true;
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if top => return Err(e),
            Err(e) => {
                debug!(dir = %dir.display(), error = %e, "skipping unreadable directory");
                continue;
            }
        };
        top = false;
        for item in entries {
            match item {
                Ok(item) => visit(entry, &item, &mut pending, &mut found),
                Err(e) => debug!(dir = %dir.display(), error = %e, "skipping unreadable entry"),
            }
        }
    }
    found.sort();
    Ok(found)
}

/// One directory entry: queue a real sub-directory (recursive entries only, not meta dirs),
/// keep a matching SQLite file.
fn visit(
    entry: &DirConfig,
    item: &fs::DirEntry,
    pending: &mut Vec<PathBuf>,
    found: &mut Vec<PathBuf>,
) {
    let path = item.path();
    let kind = match item.file_type() {
        Ok(kind) => kind,
        Err(e) => {
            debug!(path = %path.display(), error = %e, "skipping entry without a type");
            return;
        }
    };
    if kind.is_dir() {
        let name = item.file_name();
        if entry.recursive && !name.to_str().is_some_and(is_meta_dir) {
            pending.push(path);
        }
        return;
    }
    if !entry.matches(&path) {
        return;
    }
    match is_sqlite_file(&path) {
        Ok(true) => found.push(path),
        Ok(false) => {}
        Err(e) => debug!(path = %path.display(), error = %e, "skipping unreadable file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DbConfig;

    fn entry(dir: &Path, pattern: &str, recursive: bool) -> DirConfig {
        let mut d = DirConfig::new(dir.to_path_buf(), pattern, DbConfig::with_defaults(dir))
            .expect("valid pattern");
        d.recursive = recursive;
        d
    }

    fn sqlite(path: &Path) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .expect("create");
    }

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
    }

    fn rel(root: &Path, found: &[PathBuf]) -> Vec<String> {
        found
            .iter()
            .map(|p| {
                p.strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn header_check() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = tmp.path().join("a.db");
        sqlite(&db);
        assert!(is_sqlite_file(&db).expect("read"));
        let empty = tmp.path().join("empty.db");
        write(&empty, b"");
        assert!(!is_sqlite_file(&empty).expect("read"));
        let short = tmp.path().join("short.db");
        write(&short, b"SQLite format");
        assert!(!is_sqlite_file(&short).expect("read"));
        let text = tmp.path().join("text.db");
        write(&text, b"not a database, but long enough");
        assert!(!is_sqlite_file(&text).expect("read"));
        assert!(!is_sqlite_file(tmp.path()).expect("a directory"));
        assert!(is_sqlite_file(&tmp.path().join("missing")).is_err());
    }

    /// One tree exercising every rule; flat and recursive scans of it.
    #[test]
    fn scan_applies_pattern_depth_and_skips() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        for db in ["a.db", "b.db", "x/c.db", "x/y/d.db", "backups/tenant/e.db"] {
            sqlite(&root.join(db));
        }
        sqlite(&root.join("other.sqlite"));
        // Side files, meta dirs and backups folders never count, even with a SQLite header.
        write(&root.join("a.db-wal"), SQLITE_HEADER);
        write(&root.join("a.db-shm"), SQLITE_HEADER);
        write(&root.join("a.db-journal"), SQLITE_HEADER);
        sqlite(&root.join(".a.db-litestream/shadow.db"));
        sqlite(&root.join("x/.c.db-litestream/generations/g.db"));
        sqlite(&root.join("backups/a.db/0001.db"));
        write(&root.join("empty.db"), b"");
        write(&root.join("x/notes.db"), b"plain text, not sqlite at all");

        let flat = scan(&entry(root, "*.db", false)).expect("scan");
        assert_eq!(rel(root, &flat), ["a.db", "b.db"]);
        let deep = scan(&entry(root, "*.db", true)).expect("scan");
        assert_eq!(
            rel(root, &deep),
            ["a.db", "b.db", "backups/tenant/e.db", "x/c.db", "x/y/d.db"]
        );
        let sqlite_only = scan(&entry(root, "*.sqlite", true)).expect("scan");
        assert_eq!(rel(root, &sqlite_only), ["other.sqlite"]);
        let single = scan(&entry(root, "[bc].db", true)).expect("scan");
        assert_eq!(rel(root, &single), ["b.db", "x/c.db"]);
    }

    #[test]
    fn symlinked_directories_are_not_followed_but_file_links_count() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        sqlite(&root.join("sub/a.db"));
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).expect("dir link");
        let outside = tmp.path().join("outside");
        sqlite(&outside.join("o.db"));
        std::os::unix::fs::symlink(&outside, root.join("out")).expect("dir link");
        std::os::unix::fs::symlink(outside.join("o.db"), root.join("linked.db"))
            .expect("file link");
        let found = scan(&entry(&root, "*.db", true)).expect("scan");
        assert_eq!(rel(&root, &found), ["linked.db", "sub/a.db"]);
    }

    #[test]
    fn missing_directory_is_an_error_unreadable_subdirectory_is_skipped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = scan(&entry(&tmp.path().join("nope"), "*.db", true)).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        sqlite(&tmp.path().join("ok/a.db"));
        sqlite(&tmp.path().join("locked/b.db"));
        use std::os::unix::fs::PermissionsExt;
        let locked = tmp.path().join("locked");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
        let readable_anyway = fs::read_dir(&locked).is_ok(); // running as root
        let found = scan(&entry(tmp.path(), "*.db", true));
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
        let found = rel(tmp.path(), &found.expect("scan"));
        if readable_anyway {
            assert_eq!(found, ["locked/b.db", "ok/a.db"]);
        } else {
            assert_eq!(found, ["ok/a.db"]);
        }
    }

    #[test]
    fn ten_thousand_files_scan_quickly() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let template = tmp.path().join("template.db");
        sqlite(&template);
        let bytes = fs::read(&template).expect("read");
        for i in 0..10_000 {
            let path = tmp.path().join(format!("t{}/db{i}.db", i % 100));
            write(&path, &bytes[..16.min(bytes.len())]);
        }
        let started = std::time::Instant::now();
        let found = scan(&entry(tmp.path(), "db*.db", true)).expect("scan");
        let took = started.elapsed();
        eprintln!("scan of 10,000 files (100 folders): {took:?}");
        assert_eq!(found.len(), 10_000);
        // Generous bound for a loaded CI machine; typical is well under 200 ms.
        assert!(
            took < std::time::Duration::from_secs(5),
            "scan took {took:?}"
        );
    }
}
