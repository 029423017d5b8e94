//! Directory entries of `dbs[]` (Litestream v0.5's `dir`, `pattern`, `recursive`, `watch`): one
//! entry stands for every SQLite database under `dir` whose file name matches `pattern`; each
//! discovered database gets the entry's settings with paths derived from its path relative to
//! `dir` (Litestream's `newDBFromDirectoryEntry`).
//!
//! What must stay true:
//! - [`DirConfig::matches`] and [`DirConfig::db_config`] are pure (no file system access);
//! - two different databases of one entry never share a replica location, a meta directory or a
//!   backups folder: every derived path appends the relative path `rel` (`<replica>/rel`,
//!   `<prefix>/rel`, `<meta-path>/<rel dir>/.<file>-litestream` or `<meta-dir>/<rel>-litestream`,
//!   `<backups.path>/rel`);
//! - SQLite side files (`-wal`, `-shm`, `-journal`), meta directories (`.<name>-litestream`) and
//!   the default backups folders (`backups/<db file name>/`) are never databases;
//! - replica names stay as configured.

use std::path::{Component, Path, PathBuf};

use super::glob::Glob;
use super::paths::{META_DIR_SUFFIX, clean_unix_path, default_meta_path};
use super::{BackupsConfig, DbConfig, ReplicaTarget, default_backups_path};

/// Suffixes of SQLite's side files beside a database.
const SIDE_FILE_SUFFIXES: &[&str] = &["-wal", "-shm", "-journal"];
/// Name of the default backups folder beside a database (see [`default_backups_path`]).
const BACKUPS_DIR: &str = "backups";

/// One `dbs[]` entry with `dir:`.
#[derive(Debug, Clone)]
pub struct DirConfig {
    /// Absolute, cleaned directory (`~` expanded).
    pub dir: PathBuf,
    /// The pattern as written (e.g. `*.db`).
    pub pattern: String,
    glob: Glob,
    /// Databases in sub-directories too (any depth); otherwise only files directly in `dir`.
    pub recursive: bool,
    /// Attach/detach databases created/removed while running (Litestream's `watch`).
    pub watch: bool,
    /// `meta-path` of the entry: base folder of the per-database meta directories.
    pub meta_base: Option<PathBuf>,
    /// `meta-dir` of the entry (Litestream v0.5): the meta directory of `dir/<rel>` is
    /// `<meta-dir>/<rel>-litestream`.
    pub meta_dir: Option<PathBuf>,
    /// `backups.path` of the entry: base folder of the per-database backups folders.
    pub backups_base: Option<PathBuf>,
    /// Every other setting; its `path` is `dir`, its replica targets are the bases.
    pub template: DbConfig,
}

impl DirConfig {
    /// A directory entry; `pattern` must be valid (see [`Glob::parse`]).
    pub fn new(dir: PathBuf, pattern: &str, template: DbConfig) -> Result<DirConfig, String> {
        Ok(DirConfig {
            dir,
            pattern: pattern.to_string(),
            glob: Glob::parse(pattern)?,
            recursive: false,
            watch: false,
            meta_base: None,
            meta_dir: None,
            backups_base: None,
            template,
        })
    }

    /// The path of `path` below [`Self::dir`] as `/`-joined plain names; `None` when `path` is
    /// not strictly below it (or contains `.`/`..` or non-UTF-8 names).
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rest = path.strip_prefix(&self.dir).ok()?;
        let mut names = Vec::new();
        for component in rest.components() {
            match component {
                Component::Normal(name) => names.push(name.to_str()?),
                _ => return None,
            }
        }
        (!names.is_empty()).then(|| names.join("/"))
    }

    /// Whether `path` is a database of this entry by name and place alone (the caller checks
    /// the file is SQLite).
    pub fn matches(&self, path: &Path) -> bool {
        self.relative(path)
            .is_some_and(|rel| self.matches_relative(&rel))
    }

    /// [`Self::matches`] for a path relative to `dir` (`a/b.db`), e.g. one found in a replica.
    pub fn matches_relative(&self, rel: &str) -> bool {
        let names: Vec<&str> = rel.split('/').collect();
        let Some((file, dirs)) = names.split_last() else {
            return false;
        };
        if names
            .iter()
            .any(|n| n.is_empty() || *n == "." || *n == "..")
        {
            return false;
        }
        if !self.recursive && !dirs.is_empty() {
            return false;
        }
        if SIDE_FILE_SUFFIXES.iter().any(|s| file.ends_with(s)) || !self.glob.matches(file) {
            return false;
        }
        !dirs.iter().any(|d| is_meta_dir(d)) && !self.inside_backups_folder(dirs)
    }

    /// `…/backups/<name>/…` where `<name>` is a database name of this entry: the default backups
    /// folder of a sibling database, whose copies are SQLite files too.
    fn inside_backups_folder(&self, dirs: &[&str]) -> bool {
        dirs.windows(2)
            .any(|w| w[0] == BACKUPS_DIR && self.glob.matches(w[1]))
    }

    /// The configuration of the database at `db_path`, or `None` when it is not one of this
    /// entry's databases ([`Self::matches`]).
    pub fn db_config(&self, db_path: &Path) -> Option<DbConfig> {
        let rel = self.relative(db_path)?;
        if !self.matches_relative(&rel) {
            return None;
        }
        let mut db = self.template.clone();
        db.path = db_path.to_path_buf();
        db.meta_path = match (&self.meta_base, &self.meta_dir) {
            (_, Some(meta_dir)) => meta_dir.join(format!("{rel}{META_DIR_SUFFIX}")),
            (Some(base), None) => default_meta_path(&base.join(&rel)),
            (None, None) => default_meta_path(db_path),
        };
        db.backups = BackupsConfig {
            path: match &self.backups_base {
                None => default_backups_path(db_path),
                Some(base) => base.join(&rel),
            },
            ..self.template.backups.clone()
        };
        for replica in &mut db.replicas {
            extend_target(&mut replica.target, &rel);
        }
        Some(db)
    }
}

/// `.<name>-litestream`: the meta directory of a database.
pub fn is_meta_dir(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(META_DIR_SUFFIX) && name.len() > META_DIR_SUFFIX.len()
}

/// Appends `rel` to a replica location: a directory join for files, a key-prefix join (no
/// doubled or leading `/`) for object stores.
pub fn extend_target(target: &mut ReplicaTarget, rel: &str) {
    match target {
        ReplicaTarget::File { path } => *path = path.join(rel),
        ReplicaTarget::S3(t) => t.path = join_prefix(&t.path, rel),
        ReplicaTarget::Gcs(t) => t.path = join_prefix(&t.path, rel),
        ReplicaTarget::Abs(t) => t.path = join_prefix(&t.path, rel),
    }
}

fn join_prefix(prefix: &str, rel: &str) -> String {
    let joined = clean_unix_path(&format!("{prefix}/{rel}"));
    joined.trim_start_matches('/').to_string()
}
