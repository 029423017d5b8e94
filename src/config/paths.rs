//! Path rules of Litestream's config (spec §6, §7.2): `~` expansion, absolutisation against the
//! current directory, lexical cleaning (Go `path.Clean`), and the default meta directory.
//!
//! Invariants: purely lexical — symlinks are never resolved and the filesystem is never touched
//! (except reading the current directory and the home directory).

use std::path::{Path, PathBuf};

use super::ConfigError;

/// Go's `path.Clean` on a `/`-separated string: collapses `//`, drops `.`, resolves `..`
/// lexically (`..` at the root disappears), no trailing slash; empty → `"."`.
pub fn clean_unix_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Drops a leading `sqlite3://` or `sqlite://` (SQLite connection-string form), then expands a
/// leading `~` / `~/`, makes the path absolute against the current directory and cleans it
/// (Litestream v0.5's `expand`; v0.3.13 had no prefix rule). Used for database paths, file replica paths, meta paths and
/// the config path itself.
pub fn normalize_db_path(p: &str) -> Result<PathBuf, ConfigError> {
    let home = || {
        std::env::home_dir()
            .filter(|h| !h.as_os_str().is_empty())
            .ok_or_else(|| ConfigError::NoHome(p.to_string()))
    };
    let cwd = || {
        std::env::current_dir().map_err(|e| ConfigError::NoCurrentDir {
            path: p.to_string(),
            reason: e.to_string(),
        })
    };
    normalize_with(p, home, cwd)
}

/// [`normalize_db_path`] with injected home and current directories (for tests).
pub(crate) fn normalize_with(
    p: &str,
    home: impl FnOnce() -> Result<PathBuf, ConfigError>,
    cwd: impl FnOnce() -> Result<PathBuf, ConfigError>,
) -> Result<PathBuf, ConfigError> {
    let p = ["sqlite3://", "sqlite://"]
        .iter()
        .find_map(|prefix| p.strip_prefix(prefix))
        .unwrap_or(p);
    let joined: PathBuf = if p == "~" {
        home()?
    } else if let Some(rest) = p.strip_prefix("~/") {
        home()?.join(rest)
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        cwd()?.join(p)
    };
    let text = joined
        .to_str()
        .ok_or_else(|| ConfigError::NonUtf8Path(joined.clone()))?;
    Ok(PathBuf::from(clean_unix_path(text)))
}

/// `<dir>/.<file>-litestream` for a database path (Litestream's default meta directory).
pub fn default_meta_path(db_path: &Path) -> PathBuf {
    let dir = db_path.parent().unwrap_or_else(|| Path::new("/"));
    let file = db_path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    dir.join(format!(".{file}{META_DIR_SUFFIX}"))
}

/// Suffix of the meta directory name (Litestream's `MetaDirSuffix`).
pub const META_DIR_SUFFIX: &str = "-litestream";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_go_path_clean() {
        let cases: &[(&str, &str)] = &[
            ("", "."),
            ("/", "/"),
            ("//", "/"),
            ("/data/x/../y/", "/data/y"),
            ("/../a", "/a"),
            ("a/./b//c/", "a/b/c"),
            ("../../a", "../../a"),
            ("a/..", "."),
            ("a/../..", ".."),
            ("/a/b/../../..", "/"),
            (".", "."),
        ];
        for (input, want) in cases {
            assert_eq!(clean_unix_path(input), *want, "input {input:?}");
        }
    }

    fn norm(p: &str) -> Result<PathBuf, ConfigError> {
        normalize_with(
            p,
            || Ok(PathBuf::from("/home/u")),
            || Ok(PathBuf::from("/work/dir")),
        )
    }

    #[test]
    fn normalizes_db_paths() {
        let cases: &[(&str, &str)] = &[
            ("sqlite:///data/app.db", "/data/app.db"),
            ("sqlite3://~/app.db", "/home/u/app.db"),
            ("sqlite://app.db", "/work/dir/app.db"),
            ("~", "/home/u"),
            ("~/db/app.db", "/home/u/db/app.db"),
            ("./data/app.db", "/work/dir/data/app.db"),
            ("data/../app.db", "/work/dir/app.db"),
            ("/data//app.db", "/data/app.db"),
            ("~user/x.db", "/work/dir/~user/x.db"),
            ("${MYDIR}/a.db", "/work/dir/${MYDIR}/a.db"),
        ];
        for (input, want) in cases {
            assert_eq!(
                norm(input).expect(input),
                PathBuf::from(want),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn home_failure_is_reported() {
        let err = normalize_with(
            "~/x.db",
            || Err(ConfigError::NoHome("~/x.db".into())),
            || Ok(PathBuf::from("/")),
        )
        .expect_err("no home");
        assert_eq!(
            err.to_string(),
            "cannot expand path ~/x.db, no home directory available"
        );
    }

    #[test]
    fn real_cwd_makes_relative_paths_absolute() {
        let got = normalize_db_path("some/rel.db").expect("cwd available");
        assert!(got.is_absolute());
        assert!(got.ends_with("some/rel.db"));
    }

    #[test]
    fn meta_path_default() {
        assert_eq!(
            default_meta_path(Path::new("/data/app.db")),
            PathBuf::from("/data/.app.db-litestream")
        );
    }
}
