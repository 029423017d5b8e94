//! The files a restore creates beside the output path, and the final atomic move into place.
//!
//! What must stay true:
//! - The database is built in `OUT.tmp` (mode 0600; missing parent directories are created with
//!   mode 0700), exactly where Litestream builds it; stale `OUT.tmp`, `OUT.tmp-wal`,
//!   `OUT.tmp-shm` and `OUT.tmp-journal` from an earlier crashed run are removed first so SQLite
//!   can never pick up a foreign WAL.
//! - Until [`TempOutput::commit`] succeeds, dropping the guard removes every one of those files:
//!   a failed restore leaves nothing at `OUT` and nothing beside it.
//! - `commit` never replaces an existing `OUT` (hard link, which fails if `OUT` exists, then
//!   unlink of the temporary name) and fsyncs the directory afterwards.
//! - Spill files are unlinked the moment they are created, so they cannot outlive the process.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::RestoreError;

/// Mode of the temporary database file (Litestream creates it 0600 when no DB info is known).
const FILE_MODE: u32 = 0o600;
/// Mode of parent directories a restore has to create.
const DIR_MODE: u32 = 0o700;
/// Suffixes SQLite may add beside the temporary database.
const SQLITE_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Owns `OUT.tmp` and its side files until the restore is committed.
#[derive(Debug)]
pub struct TempOutput {
    out: PathBuf,
    tmp: PathBuf,
    armed: bool,
}

/// `path` with `suffix` appended to its last component.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl TempOutput {
    /// Creates the parent directories and a fresh, empty `OUT.tmp`.
    pub fn create(out: &Path) -> Result<(TempOutput, File), RestoreError> {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)
                .map_err(|e| RestoreError::io("create directory", parent, e))?;
        }
        let guard = TempOutput {
            out: out.to_path_buf(),
            tmp: with_suffix(out, ".tmp"),
            armed: true,
        };
        guard.remove_files()?;
        let file = create_new(&guard.tmp)?;
        Ok((guard, file))
    }

    /// The temporary database path (`OUT.tmp`).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Removes SQLite's side files of the temporary database (left by verification, if any).
    pub fn remove_side_files(&self) -> Result<(), RestoreError> {
        for suffix in SQLITE_SIDE_FILES {
            remove_if_exists(&with_suffix(&self.tmp, suffix))?;
        }
        Ok(())
    }

    /// Moves `OUT.tmp` to `OUT` without ever replacing an existing `OUT`, then fsyncs the
    /// directory.
    pub fn commit(mut self) -> Result<(), RestoreError> {
        self.remove_side_files()?;
        match std::fs::hard_link(&self.tmp, &self.out) {
            Ok(()) => remove_if_exists(&self.tmp)?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(RestoreError::OutputExists(self.out.clone()));
            }
            // Filesystems without hard links: check, then rename (a narrow race, as Litestream).
            Err(_) => {
                if self.out.symlink_metadata().is_ok() {
                    return Err(RestoreError::OutputExists(self.out.clone()));
                }
                std::fs::rename(&self.tmp, &self.out)
                    .map_err(|e| RestoreError::io("rename", &self.tmp, e))?;
            }
        }
        self.armed = false;
        sync_parent(&self.out)
    }

    fn remove_files(&self) -> Result<(), RestoreError> {
        remove_if_exists(&self.tmp)?;
        self.remove_side_files()
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the restore already failed and reports that error.
            let _ = self.remove_files();
        }
    }
}

/// Creates `path` exclusively with mode 0600.
fn create_new(path: &Path) -> Result<File, RestoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| RestoreError::io("create", path, e))
}

/// An anonymous scratch file beside `out`: created exclusively, then unlinked at once.
pub fn spill_file(out: &Path, index: u32, offset: u64) -> Result<File, RestoreError> {
    let path = with_suffix(out, &format!(".tmp-{index:08x}-{offset:08x}.spill"));
    remove_if_exists(&path)?;
    let file = create_new(&path)?;
    std::fs::remove_file(&path).map_err(|e| RestoreError::io("remove", &path, e))?;
    Ok(file)
}

fn remove_if_exists(path: &Path) -> Result<(), RestoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(RestoreError::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Fsyncs the directory holding `path` so the rename is durable.
fn sync_parent(path: &Path) -> Result<(), RestoreError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RestoreError::io("sync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn failed_restore_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("a/b/out.db");
        let (guard, _file) = TempOutput::create(&out).expect("create");
        assert_eq!(mode(guard.tmp_path()), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        std::fs::write(with_suffix(guard.tmp_path(), "-wal"), b"x").expect("wal");
        drop(guard);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .expect("list")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn commit_moves_and_never_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.db");
        std::fs::write(with_suffix(&out, ".tmp-wal"), b"stale").expect("stale wal");
        let (guard, file) = TempOutput::create(&out).expect("create");
        assert!(!with_suffix(&out, ".tmp-wal").exists(), "stale WAL removed");
        std::os::unix::fs::FileExt::write_all_at(&file, b"data", 0).expect("write");
        guard.commit().expect("commit");
        assert_eq!(std::fs::read(&out).expect("read"), b"data");
        assert!(!with_suffix(&out, ".tmp").exists());

        let (guard, _file) = TempOutput::create(&out).expect("create again");
        let err = guard.commit().expect_err("exists");
        assert!(matches!(err, RestoreError::OutputExists(_)), "{err}");
        assert_eq!(std::fs::read(&out).expect("read"), b"data", "not replaced");
        assert!(!with_suffix(&out, ".tmp").exists(), "guard cleaned up");
    }

    #[test]
    fn spill_files_are_anonymous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.db");
        let f = spill_file(&out, 3, 32).expect("spill");
        std::os::unix::fs::FileExt::write_all_at(&f, b"abc", 0).expect("write");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }
}
