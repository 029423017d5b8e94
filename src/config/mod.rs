//! Configuration: the Litestream v0.3.13 YAML model (spec §7), environment expansion, Go-style
//! durations, replica URL parsing and validation.
//!
//! Invariant: everything outside this module receives fully-resolved, validated values
//! ([`Config`], [`DbConfig`], [`ReplicaConfig`], [`ReplicaTarget`]); no other module reads
//! configuration environment variables.

use std::path::PathBuf;
use std::time::Duration;

/// Whole configuration file, validated, with defaults applied.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub dbs: Vec<DbConfig>,
    /// HTTP bind address (`addr`), `None` when empty or absent.
    pub addr: Option<String>,
    /// Subprocess command (`exec`).
    pub exec: Option<String>,
    pub logging: LoggingConfig,
    /// Where the file was loaded from (absent for URL-mode commands).
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggingConfig {
    pub level: LogLevel,
    pub json: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

/// One database (`dbs[]`).
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Absolute path of the database file (`~/` expanded).
    pub path: PathBuf,
    /// Meta directory; defaults to `<dir>/.<file>-litestream`.
    pub meta_path: PathBuf,
    /// 0 disables syncing.
    pub monitor_interval: Duration,
    pub checkpoint_interval: Duration,
    pub min_checkpoint_page_count: u64,
    pub max_checkpoint_page_count: u64,
    pub replicas: Vec<ReplicaConfig>,
}

/// One replica (`replicas[]`) with defaults applied.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Defaults to the type name (`file`, `s3`, `gcs`, `abs`).
    pub name: String,
    pub target: ReplicaTarget,
    /// Zero disables retention.
    pub retention: Duration,
    pub retention_check_interval: Duration,
    pub sync_interval: Duration,
    /// Zero = off.
    pub snapshot_interval: Duration,
    /// Zero = off.
    pub validation_interval: Duration,
    pub age: AgeConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgeConfig {
    pub identities: Vec<String>,
    pub recipients: Vec<String>,
}

/// Where a replica lives. Built from `url:` or from `type:` + per-type keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaTarget {
    File { path: PathBuf },
    S3(S3Target),
    Gcs(GcsTarget),
    Abs(AbsTarget),
}

impl ReplicaTarget {
    /// Litestream's type name, also the default replica name and the `replica_type` metric label.
    pub fn type_name(&self) -> &'static str {
        match self {
            ReplicaTarget::File { .. } => "file",
            ReplicaTarget::S3(_) => "s3",
            ReplicaTarget::Gcs(_) => "gcs",
            ReplicaTarget::Abs(_) => "abs",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Default)]
pub struct S3Target {
    pub bucket: String,
    /// Key prefix (no leading `/` when it came from a URL).
    pub path: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    pub skip_verify: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GcsTarget {
    pub bucket: String,
    pub path: String,
    /// `STORAGE_EMULATOR_HOST` (resolved by the config module), e.g. `http://127.0.0.1:4443`.
    pub emulator_host: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Default)]
pub struct AbsTarget {
    pub account_name: Option<String>,
    pub account_key: Option<String>,
    /// Container.
    pub bucket: String,
    pub path: String,
    pub endpoint: Option<String>,
}

// Debug impls that never print secrets.
impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("bucket", &self.bucket)
            .field("path", &self.path)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("force_path_style", &self.force_path_style)
            .field("skip_verify", &self.skip_verify)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "<set>"))
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl std::fmt::Debug for AbsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbsTarget")
            .field("account_name", &self.account_name)
            .field("account_key", &self.account_key.as_ref().map(|_| "<redacted>"))
            .field("bucket", &self.bucket)
            .field("path", &self.path)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}
