//! Building the validated [`Config`] from parsed YAML: top-level keys, `logging`, `dbs[]`
//! (spec §7.1, §7.2). Replicas are built in `build_replica.rs`.
//!
//! Invariants: defaults are applied only to absent keys; database paths are normalised before
//! they are used in messages, lookups or the meta-path default; replica names are unique per
//! database; two databases never share a path, and no two replicas of the `path` entries share
//! a replica location; every replica item first inherits the top-level
//! defaults of Litestream v0.5 (`v05.rs`); a singular `replica:` is built like a `replicas:` item
//! and recorded as a refusal for `replicate`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::backups::build_backups;
use super::build_replica::{ReplicaScope, build_replica};
use super::credentials::{EnvLookup, GlobalKeys};
use super::defaults::*;
use super::location;
use super::node::Section;
use super::paths::{default_meta_path, normalize_db_path};
use super::url::split_host_port;
use super::v05::{self, Refusal};
use super::{
    BackupsConfig, Config, ConfigError, DbConfig, DirConfig, HttpConfig, LogLevel, LoggingConfig,
    ReplicaConfig,
};
use crate::gofmt::non_negative;

const TOP_KEYS: &[&str] = &[
    "dbs",
    "addr",
    "exec",
    "access-key-id",
    "secret-access-key",
    "logging",
    "readiness-max-lag",
    "http-token",
    "http-protect-reads",
    "metrics-db-labels",
    "http-cors-origins",
];
/// `source` is Litestream v0.5's (Go source file and line in each record); walstream's records
/// carry none, so it is read and not applied.
const LOGGING_KEYS: &[&str] = &["level", "type", "stderr", "source"];
const DB_KEYS: &[&str] = &[
    "path",
    "meta-path",
    "monitor-interval",
    "checkpoint-interval",
    "min-checkpoint-page-count",
    "max-checkpoint-page-count",
    "replicas",
    "backups",
    // Directory entries (Litestream v0.5); refused where they do not apply.
    "dir",
    "pattern",
    "recursive",
    "watch",
    "replica",
];

/// Builds the whole configuration from the YAML document `root`.
pub(crate) fn build_config(
    root: &Value,
    origin: &str,
    env: EnvLookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<Config, ConfigError> {
    let top = Section::new(root, origin, "")?;
    warn_unknown_top(&top, warnings);
    let global = GlobalKeys {
        access_key_id: top.non_empty("access-key-id")?,
        secret_access_key: top.non_empty("secret-access-key")?,
    };
    let addr = top.non_empty("addr")?;
    if let Some(a) = &addr
        && split_host_port(a).is_none_or(|(_, port)| port.is_empty())
    {
        return Err(top.err("addr", format!("must specify port for bind address: {a:?}")));
    }
    let logging = build_logging(&top.child("logging")?, env, warnings)?;
    let mut refusals = Vec::new();
    let v05 = v05::read_top(&top, warnings, &mut refusals)?;
    let snapshot = v05::snapshot_values(&top)?;
    let defaults = v05::replica_defaults(&top, &snapshot, &mut refusals)?;
    let shared = Shared {
        origin,
        global: &global,
        env,
        defaults: &defaults,
        retention_enabled: v05.retention_enabled,
        refusals: RefCell::new(refusals),
    };
    let (dbs, dirs) = build_entries(&top, &shared, warnings)?;
    Ok(Config {
        dbs,
        dirs,
        addr,
        exec: top.non_empty("exec")?,
        logging,
        http: build_http(&top, env)?,
        source: None,
        v05,
        refusals: shared.refusals.into_inner(),
    })
}

/// Warns about top-level keys neither Litestream v0.3 nor v0.5 (nor walstream) has.
fn warn_unknown_top(top: &Section<'_>, warnings: &mut Vec<String>) {
    let known: Vec<&str> = TOP_KEYS
        .iter()
        .chain(v05::TOP_KEYS)
        .chain(v05::INHERITED_KEYS)
        .chain(v05::REPLICA_KEYS)
        .chain(v05::FOREIGN_TYPE_KEYS)
        .copied()
        .collect();
    top.warn_unknown(&known, "at top level", warnings);
}

/// What every entry builder shares: the file, credentials, the replica defaults of the top
/// level and the refusals collected so far.
struct Shared<'a> {
    origin: &'a str,
    global: &'a GlobalKeys,
    env: EnvLookup<'a>,
    /// Keys every replica inherits when unset ([`v05::replica_defaults`]).
    defaults: &'a Mapping,
    /// `retention.enabled` (false: no replica deletes anything).
    retention_enabled: bool,
    refusals: RefCell<Vec<Refusal>>,
}

/// Every `dbs[]` entry, split into databases and directories; two databases never share a
/// path, two directory entries never share a directory.
fn build_entries(
    top: &Section<'_>,
    shared: &Shared<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<DbConfig>, Vec<DirConfig>), ConfigError> {
    let origin = shared.origin;
    let (mut dbs, mut dirs) = (
        Vec::<(usize, DbConfig)>::new(),
        Vec::<(usize, DirConfig)>::new(),
    );
    for (index, value) in top.seq("dbs")?.into_iter().enumerate() {
        let scope = EntryScope {
            index,
            origin,
            shared,
        };
        let (first, location, what) = match build_entry(value, &scope, warnings)? {
            Entry::Db(db) => {
                let first = dbs.iter().find(|(_, d)| d.path == db.path).map(|(i, _)| *i);
                let location = format!("dbs[{index}] ({})", db.path.display());
                dbs.push((index, db));
                (first, location, "database path")
            }
            Entry::Dir(dir) => {
                let first = dirs.iter().find(|(_, d)| d.dir == dir.dir).map(|(i, _)| *i);
                let location = format!("dbs[{index}] (dir {})", dir.dir.display());
                dirs.push((index, dir));
                (first, location, "directory")
            }
        };
        if let Some(first) = first {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                location,
                message: format!("duplicate {what} (also dbs[{first}])"),
            });
        }
    }
    check_replica_locations(origin, &dbs)?;
    Ok((
        dbs.into_iter().map(|(_, d)| d).collect(),
        dirs.into_iter().map(|(_, d)| d).collect(),
    ))
}

/// One writer per replica location: no two replicas of the databases `dbs` (`(index in dbs[],
/// config)`) write the same location (see [`super::location`]). Databases discovered under
/// `dir` entries are checked when they are found.
fn check_replica_locations(origin: &str, dbs: &[(usize, DbConfig)]) -> Result<(), ConfigError> {
    let configs: Vec<&DbConfig> = dbs.iter().map(|(_, d)| d).collect();
    let Err(conflict) = location::check_distinct(&configs) else {
        return Ok(());
    };
    let (first, second) = (conflict.first, conflict.second);
    let at = |r: location::ReplicaRef, separator: &str| {
        let (index, db) = &dbs[r.db];
        let slot = location::replica_slot(db, r.replica);
        format!("dbs[{index}] ({}){separator}{slot}", db.path.display())
    };
    Err(ConfigError::Invalid {
        origin: origin.to_string(),
        location: at(second, ": "),
        message: format!(
            "same replica location {} as {} (one writer per replica location)",
            conflict.location,
            at(first, " ")
        ),
    })
}

/// walstream's HTTP keys: `readiness-max-lag` (default [`DEFAULT_READINESS_MAX_LAG`]),
/// `http-token` (else `WALSTREAM_HTTP_TOKEN`), `http-protect-reads` (needs a token),
/// `metrics-db-labels` (default true), `http-cors-origins` (default none).
fn build_http(top: &Section<'_>, env: EnvLookup<'_>) -> Result<HttpConfig, ConfigError> {
    let mut http = HttpConfig::default();
    if let Some(v) = top.duration("readiness-max-lag")? {
        http.readiness_max_lag = non_negative(v);
    }
    http.token = top
        .non_empty("http-token")?
        .or_else(|| env(HTTP_TOKEN_ENV).filter(|v| !v.is_empty()));
    http.protect_reads = top.bool("http-protect-reads")?.unwrap_or(false);
    if http.protect_reads && http.token.is_none() {
        let msg = format!("needs http-token (or {HTTP_TOKEN_ENV}) to be set");
        return Err(top.err("http-protect-reads", msg));
    }
    http.metrics_db_labels = top.bool("metrics-db-labels")?.unwrap_or(true);
    http.cors_origins = cors_origins(top)?;
    Ok(http)
}

/// `http-cors-origins`: a list of origins, or one string of comma-separated origins (what a
/// `${VAR}` expands to); each validated and kept as browsers send it, duplicates dropped.
fn cors_origins(top: &Section<'_>) -> Result<Vec<String>, ConfigError> {
    const KEY: &str = "http-cors-origins";
    let items: Vec<(String, String)> = match top.value(KEY) {
        Some(Value::Sequence(_)) => top
            .string_list(KEY)?
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("{KEY}[{i}]"), s))
            .collect(),
        Some(_) => top
            .string(KEY)?
            .unwrap_or_default()
            .split(',')
            .map(|s| (KEY.to_string(), s.trim().to_string()))
            .filter(|(_, s)| !s.is_empty())
            .collect(),
        None => Vec::new(),
    };
    let mut origins: Vec<String> = Vec::new();
    for (key, text) in items {
        let origin = super::cors::parse_origin(&text).map_err(|msg| top.err(&key, msg))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// `logging`; a non-empty `LOG_LEVEL` environment variable replaces `logging.level`
/// (Litestream v0.5).
fn build_logging(
    s: &Section<'_>,
    env: EnvLookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<LoggingConfig, ConfigError> {
    s.warn_unknown(LOGGING_KEYS, "in logging", warnings);
    let configured = s.string("level")?.unwrap_or_default();
    let level = env("LOG_LEVEL").filter(|v| !v.is_empty());
    let level = LogLevel::parse_lenient(level.as_deref().unwrap_or(&configured));
    s.bool("source")?;
    let json = match s.string("type")?.as_deref() {
        None | Some("") | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            let msg = format!("unsupported log type {other:?} (expected \"text\" or \"json\")");
            return Err(s.err("type", msg));
        }
    };
    let stderr = s.bool("stderr")?.unwrap_or(false);
    Ok(LoggingConfig {
        level,
        json,
        stderr,
    })
}

impl LogLevel {
    /// Litestream's level rule: case-insensitive `debug`, `info`, `warn`/`warning`, `error`;
    /// anything else (including empty) is `info`.
    pub fn parse_lenient(s: &str) -> LogLevel {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => LogLevel::Debug,
            "WARN" | "WARNING" => LogLevel::Warn,
            "ERROR" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// One `dbs[]` entry: a database (`path`) or a directory of databases (`dir`).
enum Entry {
    Db(DbConfig),
    Dir(DirConfig),
}

/// What every entry builder needs besides the YAML value.
struct EntryScope<'a> {
    index: usize,
    origin: &'a str,
    shared: &'a Shared<'a>,
}

fn build_entry(
    value: &Value,
    scope: &EntryScope<'_>,
    warnings: &mut Vec<String>,
) -> Result<Entry, ConfigError> {
    let key = format!("dbs[{}]", scope.index);
    let bare = Section::new(value, scope.origin, &key)?;
    match (bare.non_empty("path")?, bare.non_empty("dir")?) {
        (Some(path), Some(_)) => {
            let path = normalize_db_path(&path).map_err(|e| bare.err("path", e.to_string()))?;
            let s = Section::new(value, scope.origin, &format!("{key} ({})", path.display()))?;
            Err(s.err("dir", "cannot be used with \"path\": an entry is one database (\"path\") or a directory of databases (\"dir\")"))
        }
        (Some(path), None) => build_db(value, &path, scope, warnings).map(Entry::Db),
        (None, Some(dir)) => build_dir(value, &dir, scope, warnings).map(Entry::Dir),
        (None, None) => Err(bare.err_here("missing required key \"path\" (or \"dir\")")),
    }
}

fn build_db(
    value: &Value,
    raw_path: &str,
    scope: &EntryScope<'_>,
    warnings: &mut Vec<String>,
) -> Result<DbConfig, ConfigError> {
    let (key, path, s) = entry_section(value, raw_path, "path", scope)?;
    for dir_only in ["pattern", "recursive", "watch", "meta-dir"] {
        if s.value(dir_only).is_some() {
            return Err(s.err(
                dir_only,
                "only allowed with \"dir\" (a directory of databases)",
            ));
        }
    }
    let shown_path = path.display().to_string();
    let mut db = DbConfig::with_defaults(path);
    read_db_settings(&s, &mut db, &key, &shown_path, scope, warnings)?;
    if let Some(meta) = s.non_empty("meta-path")? {
        db.meta_path = normalize_db_path(&meta).map_err(|e| s.err("meta-path", e.to_string()))?;
    }
    db.backups = build_backups(&s.child("backups")?, &db.path, warnings)?;
    Ok(db)
}

/// A `dir:` entry: `pattern` required and a valid glob; `meta-path` and `backups.path` become
/// base folders of the per-database paths (see [`DirConfig::db_config`]).
fn build_dir(
    value: &Value,
    raw_dir: &str,
    scope: &EntryScope<'_>,
    warnings: &mut Vec<String>,
) -> Result<DirConfig, ConfigError> {
    let (key, dir, s) = entry_section(value, raw_dir, "dir", scope)?;
    let Some(pattern) = s.non_empty("pattern")? else {
        return Err(s.err("pattern", "required with \"dir\" (e.g. pattern: \"*.db\")"));
    };
    let shown = format!("{}/{pattern}", dir.display());
    let mut template = DbConfig::with_defaults(&dir);
    read_db_settings(&s, &mut template, &key, &shown, scope, warnings)?;
    let mut entry = DirConfig::new(dir, &pattern, template)
        .map_err(|m| s.err("pattern", format!("invalid pattern {pattern:?}: {m}")))?;
    entry.recursive = s.bool("recursive")?.unwrap_or(false);
    entry.watch = s.bool("watch")?.unwrap_or(false);
    read_meta_bases(&s, &mut entry)?;
    let backups = s.child("backups")?;
    entry.template.backups = build_backups(&backups, &entry.dir, warnings)?;
    if backups.non_empty("path")?.is_some() {
        entry.backups_base = Some(entry.template.backups.path.clone());
    }
    Ok(entry)
}

/// How [`build_db`] and [`build_dir`] start: the entry's key (`dbs[i]`), its normalized `field`
/// (`path` or `dir`; an error is located at the bare key) and its section, located as `dbs[i]
/// (<path>)` or `dbs[i] (dir <dir>)`.
fn entry_section<'v>(
    value: &'v Value,
    raw: &str,
    field: &str,
    scope: &EntryScope<'_>,
) -> Result<(String, PathBuf, Section<'v>), ConfigError> {
    let key = format!("dbs[{}]", scope.index);
    let bare = Section::new(value, scope.origin, &key)?;
    let path = normalize_db_path(raw).map_err(|e| bare.err(field, e.to_string()))?;
    let label = if field == "dir" { "dir " } else { "" };
    let location = format!("{key} ({label}{})", path.display());
    let s = Section::new(value, scope.origin, &location)?;
    Ok((key, path, s))
}

/// `meta-path` (walstream: base of `<base>/<rel dir>/.<file>-litestream`) or Litestream v0.5's
/// `meta-dir` (`<meta-dir>/<rel>-litestream`) of a directory entry; not both.
fn read_meta_bases(s: &Section<'_>, entry: &mut DirConfig) -> Result<(), ConfigError> {
    let meta_path = s.non_empty("meta-path")?;
    let meta_dir = s.non_empty("meta-dir")?;
    if meta_path.is_some() && meta_dir.is_some() {
        return Err(s.err("meta-dir", "cannot be used with \"meta-path\""));
    }
    if let Some(meta) = meta_path {
        let base = normalize_db_path(&meta).map_err(|e| s.err("meta-path", e.to_string()))?;
        entry.meta_base = Some(base);
    }
    if let Some(meta) = meta_dir {
        let base = normalize_db_path(&meta).map_err(|e| s.err("meta-dir", e.to_string()))?;
        entry.meta_dir = Some(base);
    }
    Ok(())
}

/// The settings shared by database and directory entries: intervals, page counts, replicas.
/// `shown` names the database (or directory pattern) in warnings.
fn read_db_settings(
    s: &Section<'_>,
    db: &mut DbConfig,
    key: &str,
    shown: &str,
    scope: &EntryScope<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let known: Vec<&str> = DB_KEYS.iter().chain(v05::DB_KEYS).copied().collect();
    s.warn_unknown(&known, &format!("in {key} (db {shown})"), warnings);
    let mut refusals = scope.shared.refusals.borrow_mut();
    v05::read_db(s, db, &mut refusals)?;
    drop(refusals);
    if let Some(v) = s.duration("monitor-interval")? {
        db.monitor_interval = non_negative(v);
    }
    if let Some(v) = s.duration("checkpoint-interval")? {
        db.checkpoint_interval = non_negative(v);
    }
    if let Some(v) = s.int("min-checkpoint-page-count")? {
        if v <= 0 {
            return Err(s.err(
                "min-checkpoint-page-count",
                format!("must be greater than 0, got {v}"),
            ));
        }
        db.min_checkpoint_page_count = v.unsigned_abs();
    }
    if let Some(v) = s.int("max-checkpoint-page-count")? {
        // Go disables the RESTART checkpoint for any value ≤ 0.
        db.max_checkpoint_page_count = u64::try_from(v).unwrap_or(0);
    }
    read_replicas(s, db, key, shown, scope, warnings)?;
    check_unique_names(&db.replicas).map_err(|e| e.at(scope.origin, &s.location))
}

/// `replicas:` (Litestream v0.3) or the singular `replica:` (v0.5: marks the database as
/// [`DbConfig::v05_replica`], whose replica `replicate` writes in the LTX layout), each item
/// completed with the top-level defaults; `retention.enabled: false` switches retention off on
/// every replica.
fn read_replicas(
    s: &Section<'_>,
    db: &mut DbConfig,
    key: &str,
    shown: &str,
    scope: &EntryScope<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let shared = scope.shared;
    let replica_scope = ReplicaScope {
        origin: scope.origin,
        db_location: &s.location,
        db_key: key,
        db_path: shown,
        global: shared.global,
        env: shared.env,
        refusals: &shared.refusals,
    };
    let list = s.seq("replicas")?;
    if let Some(item) = s.value("replica") {
        if !list.is_empty() {
            let msg = "cannot be used with \"replicas\" on one database (as in Litestream v0.5)";
            return Err(s.err("replica", msg));
        }
        let item = v05::inherit(item, shared.defaults);
        db.replicas
            .push(build_replica(&item, "replica", &replica_scope, warnings)?);
        db.v05_replica = true;
    }
    for (i, item) in list.into_iter().enumerate() {
        let item = v05::inherit(item, shared.defaults);
        let slot = format!("replicas[{i}]");
        db.replicas
            .push(build_replica(&item, &slot, &replica_scope, warnings)?);
    }
    // One layout per database: its replicas are written from one shadow-WAL pipeline.
    let layouts: Vec<_> = db
        .replicas
        .iter()
        .map(|r| super::ReplicaLayout::of(r, db.v05_replica))
        .collect();
    if layouts.windows(2).any(|w| w[0] != w[1]) {
        let msg = "all replicas of one database must write the same layout (set the same \"layout\" on each)";
        return Err(s.err("replicas", msg));
    }
    let ltx = layouts.first() == Some(&super::ReplicaLayout::Ltx);
    if let Some(r) = db
        .replicas
        .iter()
        .find(|r| r.snapshot_tiers.is_some())
        .filter(|_| ltx)
    {
        let slot = if db.v05_replica {
            "replica"
        } else {
            "replicas"
        };
        let msg = format!(
            "snapshot-tiers of replica {:?} applies to the v0.3 layout (generations/) only; this replica writes LTX",
            r.name
        );
        return Err(s.err(slot, msg));
    }
    if !shared.retention_enabled {
        for r in &mut db.replicas {
            r.retention = std::time::Duration::ZERO;
        }
    }
    Ok(())
}

/// Replica names must be unique within one database (`duplicate replica name: "file"`).
pub fn check_unique_names(replicas: &[ReplicaConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for r in replicas {
        if !seen.insert(r.name.as_str()) {
            return Err(ConfigError::DuplicateReplicaName(r.name.clone()));
        }
    }
    Ok(())
}

impl DbConfig {
    /// A database at `path` (already normalised) with every default of spec §7.2 and no replicas.
    pub fn with_defaults(path: impl AsRef<Path>) -> DbConfig {
        let path = path.as_ref().to_path_buf();
        DbConfig {
            meta_path: default_meta_path(&path),
            backups: BackupsConfig::for_db(&path),
            path,
            monitor_interval: DEFAULT_MONITOR_INTERVAL,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            min_checkpoint_page_count: DEFAULT_MIN_CHECKPOINT_PAGE_COUNT,
            max_checkpoint_page_count: DEFAULT_MAX_CHECKPOINT_PAGE_COUNT,
            truncate_page_count: super::TRUNCATE_PAGE_COUNT,
            busy_timeout: super::WALSTREAM_BUSY_TIMEOUT,
            replicas: Vec::new(),
            v05_replica: false,
        }
    }
}
