//! Configuration: the Litestream v0.3.13 YAML model (spec §7) plus every key of Litestream v0.5's
//! (read, validated, applied or refused by name), environment expansion, replica URL
//! parsing and validation (durations are parsed with [`crate::gofmt`]).
//!
//! Invariant: everything outside this module receives fully-resolved, validated values
//! ([`Config`], [`DbConfig`], [`ReplicaConfig`], [`ReplicaTarget`]); no other module reads
//! configuration environment variables (`*_CONFIG`, `LITESTREAM_*`, `STORAGE_EMULATOR_HOST`,
//! `WALSTREAM_HTTP_TOKEN`).
//!
//! Files: `build.rs` (top level, logging, dbs), `dir.rs` (directory entries and the per-database
//! configs derived from them), `glob.rs` (their file-name patterns), `build_replica.rs`
//! (replicas), `location.rs` (normalized replica locations: one writer each), `node.rs` (typed
//! YAML access and unknown-key warnings), `url.rs` (replica URLs), `paths.rs`,
//! `expand.rs` (env expansion), `credentials.rs` (env-derived credentials), `defaults.rs`,
//! `error.rs`, `v05.rs` (Litestream v0.5's keys and the refusals only `replicate` reports),
//! `heartbeat.rs` (v0.5's `heartbeat-url`), `backups.rs` (`dbs[].backups`: folder, retention
//! policies, schedule), `cors.rs` (`http-cors-origins`),
//! `url_query.rs` (v0.5's `s3://…?endpoint=…` query parameters as replica keys).

pub mod age;
mod backups;
mod build;
mod build_replica;
mod cors;
mod credentials;
mod defaults;
mod dir;
mod error;
pub mod expand;
mod glob;
mod heartbeat;
pub mod location;
mod node;
mod paths;
mod url;
mod url_query;
mod v05;

#[cfg(test)]
mod dir_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v05_tests;

pub use backups::{
    BackupRetention, BackupSchedule, BackupsConfig, KEEP_KEYS, KeepPolicy, default_backups_path,
};
pub use build::check_unique_names;
pub(crate) use credentials::process_env;
pub use defaults::*;
pub use dir::{DirConfig, extend_target, is_meta_dir};
pub use error::ConfigError;
pub use glob::Glob;
pub use heartbeat::{DEFAULT_HEARTBEAT_INTERVAL, HeartbeatUrl, MIN_HEARTBEAT_INTERVAL};
pub use location::ReplicaLocation;
pub use paths::{META_DIR_SUFFIX, clean_unix_path, default_meta_path, normalize_db_path};
pub use url::{is_url, parse_replica_url, redact_password};
pub use v05::{Refusal, V05Settings, WALSTREAM_BUSY_TIMEOUT};

use std::path::{Path, PathBuf};
use std::time::Duration;

use credentials::{EnvLookup, GlobalKeys, resolve_target};

/// Whole configuration file, validated, with defaults applied.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Explicit databases (`dbs[]` entries with `path`).
    pub dbs: Vec<DbConfig>,
    /// Directories of databases (`dbs[]` entries with `dir`), in file order.
    pub dirs: Vec<DirConfig>,
    /// HTTP bind address (`addr`), `None` when empty or absent.
    pub addr: Option<String>,
    /// Subprocess command (`exec`).
    pub exec: Option<String>,
    pub logging: LoggingConfig,
    /// walstream's HTTP settings (`readiness-max-lag`, `http-token`, `http-protect-reads`).
    pub http: HttpConfig,
    /// Where the file was loaded from (absent for URL-mode commands).
    pub source: Option<PathBuf>,
    /// Litestream v0.5's global settings (defaults when the file has none).
    pub v05: V05Settings,
    /// Keys `replicate` refuses to run with (read-side commands load the file); see
    /// [`Config::check_replicate`].
    pub refusals: Vec<Refusal>,
}

/// walstream's own top-level HTTP keys (not in Litestream): readiness threshold, the bearer
/// token that enables the mutating endpoints, the origins allowed cross-site. The token never
/// appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `/readyz` fails when a replica's oldest unreplicated commit is older than this.
    pub readiness_max_lag: Duration,
    /// `http-token`, else the environment variable [`HTTP_TOKEN_ENV`]; `None` = mutating
    /// endpoints and downloads (database content) disabled.
    pub token: Option<String>,
    /// `http-protect-reads`: `/metrics` and the other `/api/v1` GET endpoints also need the
    /// token (the downloads always do).
    pub protect_reads: bool,
    /// `metrics-db-labels`: false sums `/metrics` over databases, without `db`/`name` labels.
    pub metrics_db_labels: bool,
    /// `http-cors-origins`: browser origins allowed to call the API cross-site, exactly as
    /// browsers send them in `Origin` (empty: no CORS headers at all).
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            readiness_max_lag: DEFAULT_READINESS_MAX_LAG,
            token: None,
            protect_reads: false,
            metrics_db_labels: true,
            cors_origins: Vec::new(),
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("readiness_max_lag", &self.readiness_max_lag)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("protect_reads", &self.protect_reads)
            .field("metrics_db_labels", &self.metrics_db_labels)
            .field("cors_origins", &self.cors_origins)
            .finish()
    }
}

/// The HTTP token from the process environment ([`HTTP_TOKEN_ENV`]), for commands that run
/// without a config file (`walstream status -addr URL`).
pub fn http_token_from_env() -> Option<String> {
    process_env(HTTP_TOKEN_ENV).filter(|v| !v.is_empty())
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
    /// WAL pages at which a TRUNCATE checkpoint is forced (Litestream v0.5's `truncate-page-n`;
    /// v0.3's fixed 500,000 by default); 0 disables it.
    pub truncate_page_count: u64,
    /// SQLite busy timeout of walstream's connections and the longest a RESTART/TRUNCATE
    /// checkpoint retries (Litestream v0.5's `busy-timeout`; 1 s by default, v0.3's fixed value).
    pub busy_timeout: Duration,
    pub replicas: Vec<ReplicaConfig>,
    /// walstream's manual backups of this database (`backups:`; not in Litestream).
    pub backups: BackupsConfig,
    /// The replica came from Litestream v0.5's singular `replica:` key (then `replicas` holds
    /// exactly it): a replica that holds, or will hold, the v0.5 (LTX) layout. Read-side commands
    /// use it like any replica; `replicate` writes it in the LTX layout.
    pub v05_replica: bool,
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
    /// `layout` (walstream): the layout `replicate` writes, overriding the rule that a singular
    /// `replica:` writes LTX and a `replicas:` item the v0.3 layout (`None`: that rule).
    pub layout: Option<ReplicaLayout>,
    /// `snapshot-tiers` (walstream): snapshots of a v0.3 replica kept beyond `retention` by
    /// keep-last/hourly/daily/weekly/monthly/yearly, as snapshot-only restore points (`None`:
    /// only `retention` decides). Needs `retention` > 0 and the v0.3 layout.
    pub snapshot_tiers: Option<KeepPolicy>,
}

/// The replica layout `replicate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaLayout {
    /// Litestream v0.3: `generations/<id>/snapshots|wal/…`.
    V3,
    /// Litestream v0.5: LTX files in `ltx/<level>/…`.
    Ltx,
}

impl ReplicaLayout {
    /// The layout of replica `r` of a database whose replicas came from a singular `replica:`
    /// (`v05_replica`) or a `replicas:` list.
    pub fn of(r: &ReplicaConfig, v05_replica: bool) -> ReplicaLayout {
        r.layout.unwrap_or(if v05_replica {
            ReplicaLayout::Ltx
        } else {
            ReplicaLayout::V3
        })
    }
}

/// `age:` of a replica. `Debug` shows only how many keys there are: identities are secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AgeConfig {
    pub identities: Vec<String>,
    pub recipients: Vec<String>,
}

impl AgeConfig {
    /// True when any age key is configured.
    pub fn is_configured(&self) -> bool {
        !self.identities.is_empty() || !self.recipients.is_empty()
    }

    /// Every configured identity, parsed (spec §9). The config loader already validated them;
    /// the error names the list entry, never the key text.
    pub fn parsed_identities(&self) -> Result<Vec<::age::x25519::Identity>, String> {
        parse_all(&self.identities, "identities", age::parse_identities)
    }

    /// Every configured recipient, parsed (spec §9).
    pub fn parsed_recipients(&self) -> Result<Vec<::age::x25519::Recipient>, String> {
        parse_all(&self.recipients, "recipients", age::parse_recipients)
    }
}

impl std::fmt::Debug for AgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgeConfig")
            .field("identities", &self.identities.len())
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

fn parse_all<K>(
    texts: &[String],
    field: &str,
    parse: fn(&str) -> Result<Vec<K>, String>,
) -> Result<Vec<K>, String> {
    let mut keys = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        keys.extend(parse(text).map_err(|m| format!("age.{field}[{i}]: {m}"))?);
    }
    Ok(keys)
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
    /// `AZURITE_BLOB_STORAGE_URL` (resolved by the config module): the blob service of the
    /// emulator, used only when the emulator is enabled (`AZURE_STORAGE_USE_EMULATOR`).
    pub emulator_url: Option<String>,
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
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl std::fmt::Debug for AbsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbsTarget")
            .field("account_name", &self.account_name)
            .field(
                "account_key",
                &self.account_key.as_ref().map(|_| "<redacted>"),
            )
            .field("bucket", &self.bucket)
            .field("path", &self.path)
            .field("endpoint", &self.endpoint)
            .field("emulator_url", &self.emulator_url)
            .finish()
    }
}

/// A loaded configuration plus one warning line per unknown key.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// e.g. `unknown key "sync-intervall" in dbs[0].replicas[0] (db /data/app.db)`.
    pub warnings: Vec<String>,
}

/// Reads and validates the config file at `path` (`~` expanded, made absolute first, like
/// Litestream). A missing file is [`ConfigError::NotFound`] (`config file not found: <path>`).
pub fn load(path: &Path, expand_env: bool) -> Result<LoadedConfig, ConfigError> {
    let text = path
        .to_str()
        .ok_or_else(|| ConfigError::NonUtf8Path(path.to_path_buf()))?;
    let path = normalize_db_path(text)?;
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::NotFound(path));
        }
        Err(e) => {
            return Err(ConfigError::Read {
                path,
                reason: e.to_string(),
            });
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Read {
        path: path.clone(),
        reason: "file is not valid UTF-8".to_string(),
    })?;
    parse_str(&text, expand_env, Some(&path))
}

/// Parses and validates config text; `source` names the file in messages and
/// [`Config::source`]. Environment variables are read from the process.
pub fn parse_str(
    text: &str,
    expand_env: bool,
    source: Option<&Path>,
) -> Result<LoadedConfig, ConfigError> {
    parse_with_env(text, expand_env, source, &process_env)
}

/// [`parse_str`] with an injected environment (used for `$VAR` expansion and credentials).
pub(crate) fn parse_with_env(
    text: &str,
    expand_env: bool,
    source: Option<&Path>,
    env: EnvLookup<'_>,
) -> Result<LoadedConfig, ConfigError> {
    let origin = match source {
        Some(p) => format!("config {}", p.display()),
        None => "config".to_string(),
    };
    let text = if expand_env {
        // `$PID` is the process id (Litestream v0.5).
        let pid = std::process::id().to_string();
        let lookup = |name: &str| match name {
            "PID" => Some(pid.clone()),
            other => env(other),
        };
        expand::expand_env(text, &lookup)
    } else {
        text.to_string()
    };
    let mut root: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| yaml_error(&origin, &e))?;
    root.apply_merge().map_err(|e| yaml_error(&origin, &e))?;
    let mut warnings = Vec::new();
    let mut config = build::build_config(&root, &origin, env, &mut warnings)?;
    config.source = source.map(Path::to_path_buf);
    Ok(LoadedConfig { config, warnings })
}

fn yaml_error(origin: &str, e: &serde_yaml::Error) -> ConfigError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut message = e.to_string();
    // serde_yaml inserts " at line L column C" for the primary location, reported separately.
    let primary = format!(" at line {line} column {column}");
    if let Some(i) = message.find(&primary) {
        message.replace_range(i..i + primary.len(), "");
    }
    ConfigError::Yaml {
        origin: origin.to_string(),
        line,
        column,
        message,
    }
}

/// The config path used without `-config`: `WALSTREAM_CONFIG` if non-empty, else
/// `LITESTREAM_CONFIG` if non-empty, else `/etc/walstream.yml` if it exists, else
/// `/etc/litestream.yml`.
pub fn default_config_path() -> PathBuf {
    resolve_config_path(process_env, |p| p.exists())
}

/// The decision of [`default_config_path`] with injected environment and existence checks.
pub fn resolve_config_path(
    env: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&Path) -> bool,
) -> PathBuf {
    for name in ["WALSTREAM_CONFIG", "LITESTREAM_CONFIG"] {
        if let Some(v) = env(name).filter(|v| !v.is_empty()) {
            return PathBuf::from(v);
        }
    }
    let preferred = Path::new(WALSTREAM_CONFIG_PATH);
    if exists(preferred) {
        return preferred.to_path_buf();
    }
    PathBuf::from(LITESTREAM_CONFIG_PATH)
}

/// A URL-mode replica (`litestream generations s3://…`, `replicate DB URL…`): all defaults,
/// name = type, credentials and emulator settings from the environment.
pub fn replica_from_url(url: &str) -> Result<ReplicaConfig, ConfigError> {
    replica_from_url_with_env(url, &process_env)
}

pub(crate) fn replica_from_url_with_env(
    url: &str,
    env: EnvLookup<'_>,
) -> Result<ReplicaConfig, ConfigError> {
    let mut target = parse_replica_url(url)?;
    if let ReplicaTarget::S3(t) = &mut target {
        apply_s3_query(t, url)?;
    }
    resolve_target(&mut target, &GlobalKeys::default(), env);
    Ok(ReplicaConfig::with_defaults(
        target.type_name().to_string(),
        target,
    ))
}

/// The query parameters of an `s3://` URL given on the command line (Litestream v0.5):
/// `endpoint`, `region`, `forcePathStyle`, `skipVerify` are applied; SSE and storage-class
/// parameters are refused (walstream would neither read nor write the objects that way); the
/// upload tuning parameters are validated; unknown ones are ignored, as in Litestream.
fn apply_s3_query(t: &mut S3Target, url: &str) -> Result<(), ConfigError> {
    let query = url_query::s3_query_keys(url)?;
    for (key, value) in query.keys {
        match (key, value) {
            ("endpoint", serde_yaml::Value::String(e)) => {
                t.endpoint = Some(e);
                t.force_path_style = true;
            }
            ("region", serde_yaml::Value::String(r)) => t.region = Some(r),
            ("force-path-style", serde_yaml::Value::Bool(b)) => t.force_path_style = b,
            ("skip-verify", serde_yaml::Value::Bool(b)) => t.skip_verify = b,
            (k, _) if k.starts_with("sse-") || k == "storage-class" => {
                return Err(ConfigError::BadUrl {
                    url: redact_password(url.split('?').next().unwrap_or(url)),
                    reason: format!(
                        "query parameter for {k:?} is not supported by walstream (see the README's Litestream v0.5 key table)"
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The configuration of `replicate DB_PATH URL…`: one database with defaults, one URL-mode
/// replica per URL; two URLs of the same type fail with `duplicate replica name: "<type>"`.
pub fn config_for_urls<I>(db_path: &str, urls: I) -> Result<Config, ConfigError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut db = DbConfig::with_defaults(normalize_db_path(db_path)?);
    for url in urls {
        db.replicas.push(replica_from_url(url.as_ref())?);
    }
    check_unique_names(&db.replicas)?;
    Ok(Config {
        dbs: vec![db],
        ..Config::default()
    })
}

impl Config {
    /// The database whose normalised path equals `path` after `~`/absolute normalisation.
    pub fn db_by_path(&self, path: &Path) -> Option<&DbConfig> {
        let wanted = normalize_db_path(path.to_str()?).ok()?;
        self.dbs.iter().find(|db| db.path == wanted)
    }

    /// The directory entry whose normalised `dir` equals `path` after normalisation.
    pub fn dir_by_path(&self, path: &Path) -> Option<&DirConfig> {
        let wanted = normalize_db_path(path.to_str()?).ok()?;
        self.dirs.iter().find(|d| d.dir == wanted)
    }
}

impl Config {
    /// `Ok` when `replicate` may run with this file, else one [`Refusal`]: the first in file
    /// order of the v0.5 services and settings walstream does not provide (heartbeat, socket,
    /// MCP, …). A singular `replica:` is accepted: walstream writes it in the LTX layout.
    pub fn check_replicate(&self) -> Result<(), ConfigError> {
        match self.refusals.first() {
            Some(refusal) => Err(refusal.to_error()),
            None => Ok(()),
        }
    }
}

impl DbConfig {
    /// The replica called `name`.
    pub fn replica(&self, name: &str) -> Option<&ReplicaConfig> {
        self.replicas.iter().find(|r| r.name == name)
    }
}
