//! The meta directory of one database, byte-for-byte Litestream v0.3.13's layout (spec §3.1):
//!
//! ```text
//! <meta>/generation                              "<16 chars>\n", written as generation.tmp + rename
//! <meta>/generations/<gen>/wal/<index:08x>.wal   shadow WAL per index
//! ```
//!
//! What must stay true:
//! - names and parsing rules are Litestream's (`^[0-9a-f]{8}\.wal$`; a generation file counts
//!   when its trimmed content is 16 characters), so a meta dir left by Litestream is continued;
//! - new files get the database file's mode and owner, new directories the database
//!   directory's ([`Perms`]);
//! - only the current generation's directory survives a cleanup, and `*.tmp` files are removed
//!   at attach.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::DbError;

/// Length of a generation name (Litestream's `GenerationNameLen`).
const GENERATION_NAME_LEN: usize = 16;

/// A fresh generation id: 16 lowercase hex digits from 8 random bytes (the name a replica's
/// key layout parses back).
pub fn new_generation_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

const GENERATION_FILE: &str = "generation";
const GENERATIONS_DIR: &str = "generations";
const WAL_DIR: &str = "wal";
const WAL_EXT: &str = ".wal";
const TMP_EXT: &str = ".tmp";

/// Permissions copied from the database file (for files) and its directory (for directories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Perms {
    pub file_mode: u32,
    pub dir_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Perms {
    /// Reads the modes and owner of `db_path` and its parent directory.
    pub fn of(db_path: &Path) -> Result<Perms, DbError> {
        let file = fs::metadata(db_path).map_err(DbError::io(db_path, "stat database"))?;
        let dir_path = db_path.parent().unwrap_or(Path::new("."));
        let dir =
            fs::metadata(dir_path).map_err(DbError::io(dir_path, "stat database directory"))?;
        Ok(Perms {
            file_mode: file.mode() & 0o7777,
            dir_mode: dir.mode() & 0o7777,
            uid: file.uid(),
            gid: file.gid(),
        })
    }

    /// Gives `path` the database's owner; failures are ignored like Litestream does (an
    /// unprivileged process cannot chown and keeps its own ownership).
    fn chown(&self, path: &Path) {
        let _ = std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid));
    }

    /// Creates (truncating) a file with the database file's mode and owner.
    pub fn create_file(&self, path: &Path) -> Result<File, DbError> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(self.file_mode)
            .open(path)
            .map_err(DbError::io(path, "create file"))?;
        self.chown(path);
        Ok(f)
    }

    /// `mkdir -p` giving each created directory the database directory's mode and owner.
    pub fn mkdir_all(&self, path: &Path) -> Result<(), DbError> {
        if path.is_dir() {
            return Ok(());
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.mkdir_all(parent)?;
        }
        match fs::DirBuilder::new().mode(self.dir_mode).create(path) {
            Ok(()) => {
                self.chown(path);
                Ok(())
            }
            Err(_) if path.is_dir() => Ok(()),
            Err(e) => Err(DbError::io(path, "create directory")(e)),
        }
    }
}

/// Paths and file operations of one meta directory.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    root: PathBuf,
}

impl Meta {
    pub fn new(root: PathBuf) -> Meta {
        Meta { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn generation_file(&self) -> PathBuf {
        self.root.join(GENERATION_FILE)
    }

    pub fn generations_dir(&self) -> PathBuf {
        self.root.join(GENERATIONS_DIR)
    }

    pub fn generation_dir(&self, generation: &str) -> PathBuf {
        self.generations_dir().join(generation)
    }

    pub fn shadow_dir(&self, generation: &str) -> PathBuf {
        self.generation_dir(generation).join(WAL_DIR)
    }

    pub fn shadow_path(&self, generation: &str, index: u32) -> PathBuf {
        self.shadow_dir(generation)
            .join(format!("{index:08x}{WAL_EXT}"))
    }

    /// The current generation, `None` when the file is missing or its trimmed content is not
    /// 16 characters (Litestream's `CurrentGeneration`).
    pub fn read_generation(&self) -> Result<Option<String>, DbError> {
        let path = self.generation_file();
        let text = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DbError::io(&path, "read generation file")(e)),
        };
        let text = String::from_utf8_lossy(&text);
        let generation = text.trim();
        Ok((generation.len() == GENERATION_NAME_LEN).then(|| generation.to_string()))
    }

    /// Atomically replaces the generation file: `generation.tmp` (fsynced) + rename.
    pub fn write_generation(&self, generation: &str, perms: &Perms) -> Result<(), DbError> {
        let path = self.generation_file();
        let tmp = self.root.join(format!("{GENERATION_FILE}{TMP_EXT}"));
        let mut f = perms.create_file(&tmp)?;
        f.write_all(format!("{generation}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(DbError::io(&tmp, "write generation file"))?;
        fs::rename(&tmp, &path).map_err(DbError::io(&path, "rename generation file"))?;
        sync_dir(&self.root);
        Ok(())
    }

    /// Deletes the generation file (missing is fine).
    pub fn remove_generation(&self) -> Result<(), DbError> {
        let path = self.generation_file();
        remove_file_if_exists(&path).map_err(DbError::io(&path, "remove generation file"))
    }

    /// Highest shadow index of `generation` (0 when there is none) and the total size of its
    /// shadow files (Litestream's `CurrentShadowWALIndex`).
    pub fn current_index(&self, generation: &str) -> Result<(u32, u64), DbError> {
        let mut index = 0;
        let mut total = 0;
        for (i, size) in self.shadow_files(generation)? {
            index = index.max(i);
            total += size;
        }
        Ok((index, total))
    }

    /// `(index, size)` of every shadow WAL file of `generation`, unordered.
    pub fn shadow_files(&self, generation: &str) -> Result<Vec<(u32, u64)>, DbError> {
        let dir = self.shadow_dir(generation);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(DbError::io(&dir, "list shadow wal directory")(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(DbError::io(&dir, "list shadow wal directory"))?;
            let Some(index) = entry.file_name().to_str().and_then(parse_shadow_name) else {
                continue;
            };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((index, size));
        }
        Ok(out)
    }

    /// Deletes every entry of `generations/` except `keep`.
    pub fn remove_other_generations(&self, keep: Option<&str>) -> Result<(), DbError> {
        let dir = self.generations_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(DbError::io(&dir, "list generations")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(DbError::io(&dir, "list generations"))?;
            if keep.is_some_and(|k| entry.file_name().to_str() == Some(k)) {
                continue;
            }
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let result = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                remove_file_if_exists(&path)
            };
            result.map_err(DbError::io(&path, "remove old generation"))?;
        }
        Ok(())
    }

    /// Deletes shadow files of `generation` with an index below `min`.
    pub fn remove_shadow_below(&self, generation: &str, min: u32) -> Result<(), DbError> {
        for (index, _) in self.shadow_files(generation)? {
            if index < min {
                self.remove_shadow(generation, index)?;
            }
        }
        Ok(())
    }

    /// Deletes shadow file `index` of `generation` (missing is fine).
    pub fn remove_shadow(&self, generation: &str, index: u32) -> Result<(), DbError> {
        let path = self.shadow_path(generation, index);
        remove_file_if_exists(&path).map_err(DbError::io(&path, "remove shadow wal"))
    }

    /// Deletes every `*.tmp` file under the meta directory (leftovers of a crash).
    pub fn remove_tmp_files(&self) -> Result<(), DbError> {
        remove_tmp_under(&self.root)
    }
}

/// Parses `<index:08x>.wal` (exactly 8 lowercase hex digits).
pub(crate) fn parse_shadow_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(WAL_EXT)?;
    let hex = stem.len() == 8 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex {
        return None;
    }
    u32::from_str_radix(stem, 16).ok()
}

fn remove_tmp_under(dir: &Path) -> Result<(), DbError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return Ok(()), // like Litestream's walk: unreadable entries are skipped
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => remove_tmp_under(&path)?,
            Ok(_) if path.to_string_lossy().ends_with(TMP_EXT) => {
                remove_file_if_exists(&path).map_err(DbError::io(&path, "remove tmp file"))?
            }
            _ => {}
        }
    }
    Ok(())
}

fn remove_file_if_exists(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Best-effort fsync of a directory so a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_generation_ids_are_valid_and_distinct() {
        let a = new_generation_id();
        let b = new_generation_id();
        assert_eq!(a.len(), GENERATION_NAME_LEN);
        assert!(crate::storage::layout::is_valid_generation(&a), "{a}");
        assert!(crate::storage::layout::is_valid_generation(&b), "{b}");
        assert_ne!(a, b);
    }

    fn perms() -> Perms {
        Perms {
            file_mode: 0o640,
            dir_mode: 0o750,
            uid: nix_uid(),
            gid: nix_gid(),
        }
    }

    fn nix_uid() -> u32 {
        fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
    }

    fn nix_gid() -> u32 {
        fs::metadata("/proc/self").map(|m| m.gid()).unwrap_or(0)
    }

    #[test]
    fn shadow_names_follow_litestream() {
        assert_eq!(parse_shadow_name("00000000.wal"), Some(0));
        assert_eq!(parse_shadow_name("0000001f.wal"), Some(31));
        assert_eq!(parse_shadow_name("ffffffff.wal"), Some(u32::MAX));
        for bad in [
            "0000001F.wal",
            "0000001.wal",
            "000000001.wal",
            "00000001.wal.tmp",
            "x.wal",
        ] {
            assert_eq!(parse_shadow_name(bad), None, "{bad}");
        }
        let meta = Meta::new(PathBuf::from("/m"));
        assert_eq!(
            meta.shadow_path("0123456789abcdef", 26),
            PathBuf::from("/m/generations/0123456789abcdef/wal/0000001a.wal")
        );
    }

    #[test]
    fn generation_file_round_trip_and_litestream_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Meta::new(dir.path().join(".db-litestream"));
        let p = perms();
        p.mkdir_all(meta.root()).expect("mkdir");
        assert_eq!(meta.read_generation().expect("read"), None);
        meta.write_generation("0123456789abcdef", &p)
            .expect("write");
        let raw = fs::read(meta.generation_file()).expect("raw");
        assert_eq!(raw, b"0123456789abcdef\n");
        let mode = fs::metadata(meta.generation_file()).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            meta.read_generation().expect("read").as_deref(),
            Some("0123456789abcdef")
        );
        assert!(!meta.root().join("generation.tmp").exists());
        fs::write(meta.generation_file(), "short\n").expect("write short");
        assert_eq!(meta.read_generation().expect("read"), None);
        meta.remove_generation().expect("remove");
        meta.remove_generation().expect("remove twice");
    }

    #[test]
    fn index_cleanup_and_tmp_removal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Meta::new(dir.path().join("m"));
        let p = perms();
        let g = "0123456789abcdef";
        p.mkdir_all(&meta.shadow_dir(g)).expect("mkdir");
        assert_eq!(
            fs::metadata(meta.shadow_dir(g)).expect("stat").mode() & 0o777,
            0o750
        );
        for i in [0u32, 1, 2, 5] {
            fs::write(meta.shadow_path(g, i), vec![0u8; 10 + i as usize]).expect("write");
        }
        fs::write(meta.shadow_dir(g).join("00000009.wal.tmp"), b"x").expect("tmp");
        assert_eq!(
            meta.current_index(g).expect("index"),
            (5, 10 + 11 + 12 + 15)
        );
        meta.remove_shadow_below(g, 2).expect("cleanup");
        let mut left: Vec<u32> = meta
            .shadow_files(g)
            .expect("list")
            .iter()
            .map(|x| x.0)
            .collect();
        left.sort();
        assert_eq!(left, vec![2, 5]);
        meta.remove_tmp_files().expect("tmp");
        assert!(!meta.shadow_dir(g).join("00000009.wal.tmp").exists());

        p.mkdir_all(&meta.shadow_dir("fedcba9876543210"))
            .expect("other");
        fs::write(meta.generations_dir().join("stray"), b"x").expect("stray");
        meta.remove_other_generations(Some(g)).expect("clean");
        let names: Vec<_> = fs::read_dir(meta.generations_dir())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![g.to_string()]);
        assert_eq!(
            meta.current_index("aaaaaaaaaaaaaaaa").expect("none"),
            (0, 0)
        );
    }
}
