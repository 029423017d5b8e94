//! Replica locations: where a replica writes, normalized and without credentials, so that two
//! replicas writing the same objects can be found before either writes anything ("one writer
//! per replica location").
//!
//! What must stay true:
//! - two targets have equal [`ReplicaLocation`]s exactly when they name the same backend kind,
//!   the same bucket/container (and, where one is set, the same endpoint host or account) and
//!   the same path after cleaning (`./`, `..`, doubled and trailing `/`; file paths absolute);
//!   nested paths are not a conflict: every object of a replica lives under
//!   `<path>/generations/` or `<path>/ltx/`, so `/r` and `/r/app` never share an object;
//! - the text of a location (`Display`) never carries a credential: keys, passwords and URL
//!   user info are never part of it;
//! - only replicas of two different databases conflict: two replicas of one database upload
//!   the same generation of the same database;
//! - [`check_distinct`] (the config-load check of `path` entries) is pure; databases discovered
//!   under `dir` entries are compared by the fleet (`replicate::fleet`) when they are found.

use std::fmt;
use std::path::Path;

use super::paths::clean_unix_path;
use super::{DbConfig, ReplicaTarget};

/// The normalized, credential-free place a replica writes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplicaLocation {
    /// `file`, `s3`, `gcs` or `abs`.
    kind: &'static str,
    /// Bucket or container (`account@container` for Azure); empty for files.
    bucket: String,
    /// Endpoint or emulator host (`host:port`, lower case), empty for the provider's default.
    host: String,
    /// Cleaned path: absolute for files, no leading or trailing `/` for object stores.
    path: String,
}

impl ReplicaTarget {
    /// Where this target writes ([`ReplicaLocation`]).
    pub fn location(&self) -> ReplicaLocation {
        let object = |kind, bucket: &str, host: Option<&str>, path: &str| ReplicaLocation {
            kind,
            bucket: bucket.to_string(),
            host: host.map(endpoint_host).unwrap_or_default(),
            path: object_path(path),
        };
        match self {
            ReplicaTarget::File { path } => ReplicaLocation {
                kind: "file",
                bucket: String::new(),
                host: String::new(),
                path: clean_file_path(path),
            },
            ReplicaTarget::S3(t) => object("s3", &t.bucket, t.endpoint.as_deref(), &t.path),
            ReplicaTarget::Gcs(t) => object("gcs", &t.bucket, t.emulator_host.as_deref(), &t.path),
            ReplicaTarget::Abs(t) => {
                let bucket = match &t.account_name {
                    Some(account) => format!("{account}@{}", t.bucket),
                    None => t.bucket.clone(),
                };
                object("abs", &bucket, t.endpoint.as_deref(), &t.path)
            }
        }
    }
}

impl fmt::Display for ReplicaLocation {
    /// `file:///abs/path`, `s3://bucket/path`, `abs://account@container/path`, plus
    /// `?endpoint=host:port` when an endpoint is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            "file" => write!(f, "file://{}", self.path)?,
            kind if self.path.is_empty() => write!(f, "{kind}://{}", self.bucket)?,
            kind => write!(f, "{kind}://{}/{}", self.bucket, self.path)?,
        }
        if !self.host.is_empty() {
            write!(f, "?endpoint={}", self.host)?;
        }
        Ok(())
    }
}

/// A cleaned object key prefix without leading or trailing `/` (`""` for the bucket root).
fn object_path(path: &str) -> String {
    let cleaned = clean_unix_path(path);
    let trimmed = cleaned.trim_matches('/');
    if trimmed == "." {
        String::new()
    } else {
        trimmed.to_string()
    }
}

/// An absolute, cleaned file path (relative paths against the current directory, as the file
/// backend resolves them).
fn clean_file_path(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    clean_unix_path(&absolute.to_string_lossy())
}

/// `host:port` of an endpoint URL, lower case, without scheme, user info or path.
fn endpoint_host(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.to_ascii_lowercase()
}

/// One replica of one database: its index among the databases and its replica slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaRef {
    /// Index into the slice given to [`check_distinct`].
    pub db: usize,
    /// Index into that database's `replicas`.
    pub replica: usize,
}

/// Two replicas that would write the same location: `second` comes after `first`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationConflict {
    pub first: ReplicaRef,
    pub second: ReplicaRef,
    pub location: ReplicaLocation,
}

/// The first pair of replicas of two different databases that write the same location, in
/// config order. Two replicas of one database may share one: they upload the same generation of
/// the same database (`tests/security.rs` uses that for a replica with wrong credentials).
pub fn check_distinct(dbs: &[&DbConfig]) -> Result<(), LocationConflict> {
    let mut seen: Vec<(ReplicaLocation, ReplicaRef)> = Vec::new();
    for (db, cfg) in dbs.iter().enumerate() {
        for (replica, r) in cfg.replicas.iter().enumerate() {
            let location = r.target.location();
            let here = ReplicaRef { db, replica };
            let taken = seen.iter().find(|(l, r)| *l == location && r.db != db);
            if let Some((_, first)) = taken {
                return Err(LocationConflict {
                    first: *first,
                    second: here,
                    location,
                });
            }
            seen.push((location, here));
        }
    }
    Ok(())
}

/// `replicas[i] "name"` (or `replica "name"` for Litestream v0.5's singular key).
pub fn replica_slot(db: &DbConfig, replica: usize) -> String {
    let name = db.replicas.get(replica).map_or("", |r| r.name.as_str());
    if db.v05_replica {
        format!("replica {name:?}")
    } else {
        format!("replicas[{replica}] {name:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AbsTarget, GcsTarget, S3Target};

    fn s3(bucket: &str, path: &str, endpoint: Option<&str>) -> ReplicaTarget {
        ReplicaTarget::S3(S3Target {
            bucket: bucket.into(),
            path: path.into(),
            endpoint: endpoint.map(str::to_string),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("SECRET".into()),
            ..S3Target::default()
        })
    }

    #[test]
    fn equal_locations_are_spelled_alike_after_cleaning() {
        let file = |p: &str| ReplicaTarget::File { path: p.into() }.location();
        assert_eq!(file("/r/./a/"), file("/r/b/../a"));
        assert_ne!(file("/r/a"), file("/r/a/b"));
        assert_eq!(file("/r//a/").to_string(), "file:///r/a");
        assert_eq!(
            s3("b", "/x//y/", None).location(),
            s3("b", "x/y", None).location()
        );
        // The endpoint host decides, not its scheme, user info, case or path.
        assert_eq!(
            s3("b", "x", Some("http://u:pw@MinIO:9000/")).location(),
            s3("b", "x", Some("https://minio:9000")).location()
        );
        assert_ne!(
            s3("b", "x", Some("http://minio:9000")).location(),
            s3("b", "x", None).location()
        );
        let gcs = ReplicaTarget::Gcs(GcsTarget {
            bucket: "b".into(),
            path: "x".into(),
            emulator_host: None,
        });
        assert_ne!(gcs.location(), s3("b", "x", None).location());
    }

    #[test]
    fn locations_are_shown_without_credentials() {
        let shown = s3("b", "x/y", Some("http://key:secret@127.0.0.1:9000")).location();
        assert_eq!(shown.to_string(), "s3://b/x/y?endpoint=127.0.0.1:9000");
        assert_eq!(s3("b", "", None).location().to_string(), "s3://b");
        assert_eq!(s3("b", "/", None).location(), s3("b", ".", None).location());
        let abs = ReplicaTarget::Abs(AbsTarget {
            account_name: Some("acct".into()),
            account_key: Some("KEYSECRET".into()),
            bucket: "ctr".into(),
            path: "db".into(),
            endpoint: None,
            emulator_url: None,
        });
        assert_eq!(abs.location().to_string(), "abs://acct@ctr/db");
        assert_eq!(
            endpoint_host("http://u:p@h:1/path?q#f"),
            "h:1",
            "user info, path, query and fragment are dropped"
        );
    }
}
