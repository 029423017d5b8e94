//! Directory entries (Litestream v0.5's `dir`, `pattern`, `recursive`, `watch` on a `dbs[]`
//! entry): the pattern matcher and the per-database configuration derived for every file found.
//!
//! What must stay true: `pattern` is a glob on the file name only (`*`, `?`, `[...]` with `^` or
//! `!` negation, `\` escapes, like Go's `filepath.Match`); side files (`-wal`, `-shm`,
//! `-journal`) and anything under a hidden folder (walstream's and Litestream's meta folders, the
//! entry's backups folder) never match; each database's replica path is the entry's replica
//! path plus the database's path relative to `dir`, so two databases never share a replica path,
//! a meta folder or a backups folder.

use std::path::{Component, Path, PathBuf};

use regex::Regex;

use super::{BackupsConfig, DbConfig, ReplicaTarget, default_meta_path};

/// Folder (under `dir`) holding the walstream backups of a directory entry's databases by
/// relative path. Hidden, so discovery never mistakes a backup for a database.
pub const DIR_BACKUPS_FOLDER: &str = ".walstream-backups";

/// A `dbs[]` entry with `dir`: which files are databases, and the settings each one gets.
#[derive(Debug, Clone)]
pub struct DirConfig {
    /// The directory (absolute, normalised).
    pub dir: PathBuf,
    /// The glob as written (`pattern`).
    pub pattern: String,
    matcher: Regex,
    pub recursive: bool,
    pub watch: bool,
    /// Settings every discovered database gets: `path` is `dir`, the replica targets hold the
    /// entry's base paths, `meta_path` is the base for meta folders when `meta-path` was set.
    pub template: DbConfig,
    /// `meta-path` of the entry: each database's meta folder goes under it by relative path.
    pub meta_base: Option<PathBuf>,
    /// `backups.path` of the entry: each database's backups go under it by relative path.
    pub backups_base: PathBuf,
}

impl DirConfig {
    /// A directory entry; `Err` with the reason when `pattern` is not a valid glob.
    pub fn new(
        dir: PathBuf,
        pattern: &str,
        recursive: bool,
        watch: bool,
        template: DbConfig,
        meta_base: Option<PathBuf>,
        backups_base: Option<PathBuf>,
    ) -> Result<DirConfig, String> {
        let matcher = glob_regex(pattern)?;
        let backups_base = backups_base.unwrap_or_else(|| dir.join(DIR_BACKUPS_FOLDER));
        Ok(DirConfig {
            dir,
            pattern: pattern.to_string(),
            matcher,
            recursive,
            watch,
            template,
            meta_base,
            backups_base,
        })
    }

    /// `path` relative to `dir` when it is inside it (at the allowed depth, no hidden folder on
    /// the way, no `..`).
    pub fn relative<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        let rel = path.strip_prefix(&self.dir).ok()?;
        let parts: Vec<Component<'_>> = rel.components().collect();
        if parts.is_empty() || (!self.recursive && parts.len() > 1) {
            return None;
        }
        let plain = parts.iter().all(|c| match c {
            Component::Normal(n) => !n.to_string_lossy().starts_with('.'),
            _ => false,
        });
        plain.then_some(rel)
    }

    /// True when `path` names a file this entry replicates (by name; the SQLite header is
    /// checked by discovery).
    pub fn matches(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let side = ["-wal", "-shm", "-journal"]
            .iter()
            .any(|s| name.ends_with(s));
        !side && self.matcher.is_match(name) && self.relative(path).is_some()
    }

    /// The configuration of the database at `path` (`None` when the entry does not cover it).
    pub fn db_config(&self, path: &Path) -> Option<DbConfig> {
        if !self.matches(path) {
            return None;
        }
        let rel = self.relative(path)?;
        let mut db = self.template.clone();
        db.path = path.to_path_buf();
        db.meta_path = match &self.meta_base {
            Some(base) => default_meta_path(&base.join(rel)),
            None => default_meta_path(path),
        };
        db.backups = BackupsConfig {
            path: self.backups_base.join(rel),
            ..self.template.backups.clone()
        };
        for r in &mut db.replicas {
            extend_target(&mut r.target, rel);
        }
        Some(db)
    }
}

/// The replica location of one database: the entry's location plus `rel`.
fn extend_target(target: &mut ReplicaTarget, rel: &Path) {
    let rel_key = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let join = |base: &mut String| {
        let trimmed = base.trim_end_matches('/');
        *base = if trimmed.is_empty() {
            rel_key.clone()
        } else {
            format!("{trimmed}/{rel_key}")
        };
    };
    match target {
        ReplicaTarget::File { path } => *path = path.join(rel),
        ReplicaTarget::S3(t) => join(&mut t.path),
        ReplicaTarget::Gcs(t) => join(&mut t.path),
        ReplicaTarget::Abs(t) => join(&mut t.path),
    }
}

/// The anchored regex of a Go `filepath.Match` pattern on one path element.
fn glob_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("empty pattern".into());
    }
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => match chars.next() {
                Some(e) => re.push_str(&regex::escape(&e.to_string())),
                None => return Err(format!("invalid pattern {pattern:?}: trailing \\")),
            },
            '[' => {
                re.push('[');
                if matches!(chars.peek(), Some('^') | Some('!')) {
                    chars.next();
                    re.push('^');
                }
                let mut empty = true;
                loop {
                    match chars.next() {
                        None => return Err(format!("invalid pattern {pattern:?}: unclosed [")),
                        Some(']') if !empty => break,
                        Some('\\') => match chars.next() {
                            Some(e) => re.push_str(&regex::escape(&e.to_string())),
                            None => {
                                return Err(format!("invalid pattern {pattern:?}: trailing \\"));
                            }
                        },
                        Some('-') if !empty => re.push('-'),
                        Some(ch) => re.push_str(&regex::escape(&ch.to_string())),
                    }
                    empty = false;
                }
                re.push(']');
            }
            '/' => {
                return Err(format!(
                    "invalid pattern {pattern:?}: it matches file names, no '/'"
                ));
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ReplicaConfig, S3Target};

    fn entry(recursive: bool) -> DirConfig {
        let mut t = DbConfig::with_defaults("/data/tenants");
        let file = ReplicaTarget::File {
            path: "/backups/tenants".into(),
        };
        let s3 = ReplicaTarget::S3(S3Target {
            bucket: "b".into(),
            path: "fleet/".into(),
            ..Default::default()
        });
        t.replicas = vec![
            ReplicaConfig::with_defaults("file".into(), file),
            ReplicaConfig::with_defaults("s3".into(), s3),
        ];
        DirConfig::new(
            "/data/tenants".into(),
            "*.db",
            recursive,
            true,
            t,
            None,
            None,
        )
        .expect("valid")
    }

    #[test]
    fn globs_follow_go_filepath_match() {
        let m = |p: &str, name: &str| glob_regex(p).expect(p).is_match(name);
        assert!(m("*.db", "a.db") && !m("*.db", "a.db-wal") && !m("*.db", "a.sqlite"));
        assert!(m("tenant-?.db", "tenant-1.db") && !m("tenant-?.db", "tenant-12.db"));
        assert!(m("[ab]*.db", "b1.db") && !m("[ab]*.db", "c1.db"));
        assert!(m("[^ab]*.db", "c1.db") && !m("[!ab]*.db", "a1.db"));
        assert!(m("[a-c].db", "b.db") && !m("[a-c].db", "d.db"));
        assert!(m("a\\*.db", "a*.db") && !m("a\\*.db", "ab.db"));
        assert!(m("x.db", "x.db") && !m("x.db", "xxdb"), "dots are literal");
        for bad in ["", "[ab", "a\\", "sub/*.db"] {
            assert!(glob_regex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matches_by_name_depth_and_side_files() {
        let flat = entry(false);
        let deep = entry(true);
        assert!(flat.matches(Path::new("/data/tenants/a.db")));
        assert!(
            !flat.matches(Path::new("/data/tenants/x/a.db")),
            "not recursive"
        );
        assert!(deep.matches(Path::new("/data/tenants/x/y/a.db")));
        for no in [
            "/data/tenants/a.db-wal",
            "/data/tenants/a.db-shm",
            "/data/tenants/a.db-journal",
            "/data/tenants/a.txt",
            "/data/other/a.db",
            "/data/tenants/.a.db-litestream/a.db",
            "/data/tenants/.walstream-backups/a.db/1.db",
            "/data/tenants",
        ] {
            assert!(!deep.matches(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn each_database_gets_its_own_replica_meta_and_backups_paths() {
        let e = entry(true);
        let db = e
            .db_config(Path::new("/data/tenants/x/a.db"))
            .expect("covered");
        assert_eq!(db.path, Path::new("/data/tenants/x/a.db"));
        assert_eq!(db.meta_path, Path::new("/data/tenants/x/.a.db-litestream"));
        assert_eq!(
            db.backups.path,
            Path::new("/data/tenants/.walstream-backups/x/a.db")
        );
        match &db.replicas[0].target {
            ReplicaTarget::File { path } => assert_eq!(path, Path::new("/backups/tenants/x/a.db")),
            other => panic!("{other:?}"),
        }
        match &db.replicas[1].target {
            ReplicaTarget::S3(t) => assert_eq!(t.path, "fleet/x/a.db"),
            other => panic!("{other:?}"),
        }
        assert_eq!(e.template.replicas.len(), 2, "template untouched");
        assert!(e.db_config(Path::new("/data/tenants/x/a.txt")).is_none());
        let meta = DirConfig::new(
            "/d".into(),
            "*.db",
            true,
            false,
            DbConfig::with_defaults("/d"),
            Some("/meta".into()),
            None,
        )
        .expect("valid");
        let db = meta.db_config(Path::new("/d/x/a.db")).expect("covered");
        assert_eq!(db.meta_path, Path::new("/meta/x/.a.db-litestream"));
    }
}
