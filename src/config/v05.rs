//! Litestream v0.5's configuration keys (spec `litestream-v0.5-format.md` Appendix A, read from
//! `cmd/litestream/main.go`): the top-level settings (`levels`, `snapshot`, `l0-retention`, …),
//! the replica settings v0.5 accepts at the top level as defaults for every replica, the
//! per-database `snapshot`, and the refusals only `replicate` reports.
//!
//! What must stay true:
//! - every v0.5 key is read: its value is validated with Litestream's rules (a value v0.5 rejects
//!   is a config error naming the file and key), and it is either applied, stored for the LTX
//!   writer or `replicate`'s heartbeat ([`V05Settings`]), or recorded as a [`Refusal`];
//! - a key that makes reading a replica impossible (SSE-C, Azure SAS tokens) is a config error for
//!   every command; a key whose behaviour only `replicate` would lack (control socket, MCP, KMS
//!   key, storage class, restore-before-replicate) is a [`Refusal`]: read-side
//!   commands load the file, `replicate` stops with its one line (a singular `replica:` is
//!   written in the LTX layout);
//! - top-level replica settings fill only what a replica leaves unset (Go's `SetDefaults`);
//! - one snapshot interval and one retention hold for every database (Litestream's rule: a
//!   per-database `snapshot:` value becomes the global one when the file sets none, and two
//!   different per-database values are an error).

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::ConfigError;
use super::heartbeat::{DEFAULT_HEARTBEAT_INTERVAL, HeartbeatUrl, MIN_HEARTBEAT_INTERVAL};
use super::node::Section;
use crate::gofmt::{format_go_duration, non_negative};

/// Top-level keys that only Litestream v0.5 has (besides the replica settings below).
pub(crate) const TOP_KEYS: &[&str] = &[
    "levels",
    "snapshot",
    "validation",
    "l0-retention",
    "l0-retention-check-interval",
    "verify-compaction",
    "retention",
    "heartbeat-url",
    "heartbeat-interval",
    "socket",
    "mcp-addr",
    "shutdown-sync-timeout",
    "shutdown-sync-interval",
];

/// v0.5 replica settings that walstream applies from the top level to every replica leaving
/// them unset (`access-key-id`/`secret-access-key` are handled with the credentials).
pub(crate) const INHERITED_KEYS: &[&str] = &[
    "sync-interval",
    "validation-interval",
    "max-sync-ltx-files",
    "auto-recover",
    "region",
    "bucket",
    "endpoint",
    "force-path-style",
    "sign-payload",
    "require-content-md5",
    "skip-verify",
    "part-size",
    "concurrency",
    "account-name",
    "account-key",
    "age",
];

/// v0.5 replica settings of replica types walstream refuses (sftp, webdav, nats): accepted at
/// the top level and on other types, where Litestream ignores them too.
pub(crate) const FOREIGN_TYPE_KEYS: &[&str] = &[
    "host",
    "user",
    "password",
    "key-path",
    "concurrent-writes",
    "host-key",
    "webdav-url",
    "webdav-username",
    "webdav-password",
    "jwt",
    "seed",
    "creds",
    "nkey",
    "username",
    "token",
    "tls",
    "root-cas",
    "client-cert",
    "client-key",
    "max-reconnects",
    "reconnect-wait",
    "timeout",
];

/// Replica keys v0.5 added (validated here; see [`check_replica`]).
pub(crate) const REPLICA_KEYS: &[&str] = &[
    "max-sync-ltx-files",
    "auto-recover",
    "sign-payload",
    "require-content-md5",
    "storage-class",
    "part-size",
    "concurrency",
    "sse-customer-algorithm",
    "sse-customer-key",
    "sse-customer-key-path",
    "sse-customer-key-md5",
    "sse-kms-key-id",
    "sas-token",
];

/// Per-database keys v0.5 added (besides `dir`, `pattern`, `recursive`, `watch`, `replica`).
pub(crate) const DB_KEYS: &[&str] = &[
    "snapshot",
    "meta-dir",
    "busy-timeout",
    "truncate-page-n",
    "max-sync-wal-bytes",
    "restore-if-db-not-exists",
];

/// walstream's busy timeout on its own database connections (`src/db/conn.rs`), not configurable.
pub const WALSTREAM_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// Litestream v0.5's global settings with its defaults. They drive the LTX writer of databases
/// with a singular `replica:` (`replica::ltx`); `snapshot.*` and `retention.enabled` also set the
/// v0.3 replicas' snapshot interval and retention (see [`replica_defaults`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V05Settings {
    /// `levels[].interval`: L1, L2, … (default 30s, 5m, 1h).
    pub levels: Vec<Duration>,
    /// `snapshot.interval` (default 24h).
    pub snapshot_interval: Duration,
    /// `snapshot.retention` (default 24h).
    pub snapshot_retention: Duration,
    /// `l0-retention` (default 5m; 0 = disabled).
    pub l0_retention: Duration,
    /// `l0-retention-check-interval` (default 15s).
    pub l0_retention_check_interval: Duration,
    /// `retention.enabled` (default true; false = never delete remote files).
    pub retention_enabled: bool,
    /// `verify-compaction` (default false).
    pub verify_compaction: bool,
    /// `shutdown-sync-timeout` (default 30s): the deadline of `replicate`'s final sync.
    pub shutdown_sync_timeout: Duration,
    /// `shutdown-sync-interval` (default 500ms).
    pub shutdown_sync_interval: Duration,
    /// `heartbeat-url`: pinged by `replicate` while every database replicates (`None`: off).
    pub heartbeat_url: Option<HeartbeatUrl>,
    /// `heartbeat-interval` (default 5m, at least 1m).
    pub heartbeat_interval: Duration,
}

impl Default for V05Settings {
    fn default() -> Self {
        V05Settings {
            levels: vec![
                Duration::from_secs(30),
                Duration::from_secs(5 * 60),
                Duration::from_secs(60 * 60),
            ],
            snapshot_interval: Duration::from_secs(24 * 60 * 60),
            snapshot_retention: Duration::from_secs(24 * 60 * 60),
            l0_retention: Duration::from_secs(5 * 60),
            l0_retention_check_interval: Duration::from_secs(15),
            retention_enabled: true,
            verify_compaction: false,
            shutdown_sync_timeout: Duration::from_secs(30),
            shutdown_sync_interval: Duration::from_millis(500),
            heartbeat_url: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
        }
    }
}

/// A key walstream loads but `replicate` refuses to run with (one line, like a config error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The refused key as written (`replica`, `heartbeat-url`, `enabled` of `socket`, …).
    pub key: String,
    pub origin: String,
    pub location: String,
    pub message: String,
}

impl Refusal {
    /// The refusal as the config error `replicate` fails with.
    pub fn to_error(&self) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            location: self.location.clone(),
            message: self.message.clone(),
        }
    }

    /// A refusal of `key` in the mapping `s`.
    pub(crate) fn at(s: &Section<'_>, key: &str, message: impl Into<String>) -> Refusal {
        match s.err(key, message) {
            ConfigError::Invalid {
                origin,
                location,
                message,
            } => Refusal {
                key: key.to_string(),
                origin,
                location,
                message,
            },
            other => Refusal {
                key: key.to_string(),
                origin: s.origin.clone(),
                location: s.key_path(key),
                message: other.to_string(),
            },
        }
    }
}

/// Reads the v0.5 top-level keys; refusals are appended to `refusals`.
pub(crate) fn read_top(
    top: &Section<'_>,
    warnings: &mut Vec<String>,
    refusals: &mut Vec<Refusal>,
) -> Result<V05Settings, ConfigError> {
    let mut v = V05Settings::default();
    if top.value("levels").is_some() {
        v.levels = read_levels(top, warnings)?;
    }
    let snapshot = top.child("snapshot")?;
    snapshot.warn_unknown(&["interval", "retention"], "in snapshot", warnings);
    if let Some(d) = positive(&snapshot, "interval", "snapshot interval")? {
        v.snapshot_interval = d;
    }
    if let Some(d) = positive(&snapshot, "retention", "snapshot retention")? {
        v.snapshot_retention = d;
    }
    if let Some(n) = top.duration("l0-retention")? {
        if n < 0 {
            return Err(top.err("l0-retention", "l0 retention must not be negative"));
        }
        v.l0_retention = non_negative(n);
    }
    if let Some(d) = positive(
        top,
        "l0-retention-check-interval",
        "l0 retention check interval",
    )? {
        v.l0_retention_check_interval = d;
    }
    v.verify_compaction = top.bool("verify-compaction")?.unwrap_or(false);
    let retention = top.child("retention")?;
    retention.warn_unknown(&["enabled"], "in retention", warnings);
    v.retention_enabled = retention.bool("enabled")?.unwrap_or(true);
    read_shutdown(top, &mut v)?;
    read_services(top, &mut v, warnings, refusals)?;
    Ok(v)
}

/// `levels: [{interval: 30s}, …]`: each interval > 0 (`levels[i].interval`).
fn read_levels(
    top: &Section<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Duration>, ConfigError> {
    let mut levels = Vec::new();
    for (i, item) in top.seq("levels")?.into_iter().enumerate() {
        let level = Section::new(item, &top.origin, &format!("levels[{i}]"))?;
        let place = format!("in levels[{i}]");
        level.warn_unknown(&["interval"], &place, warnings);
        let n = level.duration("interval")?.unwrap_or(0);
        if n <= 0 {
            let msg = "compaction interval must be greater than 0";
            return Err(level.err("interval", msg));
        }
        levels.push(non_negative(n));
    }
    Ok(levels)
}

fn read_shutdown(top: &Section<'_>, v: &mut V05Settings) -> Result<(), ConfigError> {
    if let Some(n) = top.duration("shutdown-sync-timeout")? {
        if n < 0 {
            let msg = "shutdown-sync-timeout must be >= 0";
            return Err(top.err("shutdown-sync-timeout", msg));
        }
        v.shutdown_sync_timeout = non_negative(n);
    }
    let interval = positive(top, "shutdown-sync-interval", "shutdown sync interval")?;
    if let Some(d) = interval {
        v.shutdown_sync_interval = d;
    }
    Ok(())
}

/// `heartbeat-*` (the heartbeat `replicate` sends), then `mcp-addr`, `socket`, `validation`:
/// services walstream does not run. Their values are validated; setting one up is a refusal for
/// `replicate`.
fn read_services(
    top: &Section<'_>,
    v: &mut V05Settings,
    warnings: &mut Vec<String>,
    refusals: &mut Vec<Refusal>,
) -> Result<(), ConfigError> {
    if let Some(url) = top.non_empty("heartbeat-url")? {
        let url = HeartbeatUrl::parse(&url).map_err(|msg| top.err("heartbeat-url", msg))?;
        v.heartbeat_url = Some(url);
    }
    if let Some(n) = top.duration("heartbeat-interval")? {
        if n < 0 || non_negative(n) < MIN_HEARTBEAT_INTERVAL {
            let msg = "heartbeat interval must be at least 1 minute";
            return Err(top.err("heartbeat-interval", msg));
        }
        v.heartbeat_interval = non_negative(n);
    }
    if top.non_empty("mcp-addr")?.is_some() {
        refusals.push(Refusal::at(top, "mcp-addr", MCP));
    }
    let socket = top.child("socket")?;
    let place = "in socket";
    socket.warn_unknown(&["enabled", "path", "permissions"], place, warnings);
    socket.string("path")?;
    read_permissions(&socket)?;
    if socket.bool("enabled")?.unwrap_or(false) {
        refusals.push(Refusal::at(&socket, "enabled", SOCKET));
    }
    let validation = top.child("validation")?;
    validation.warn_unknown(&["interval"], "in validation", warnings);
    if validation.duration("interval")?.is_some_and(|n| n > 0) {
        refusals.push(Refusal::at(&validation, "interval", VALIDATION));
    }
    Ok(())
}

/// `socket.permissions`: an integer; Go's YAML 1.1 reads `0600` as octal, which YAML 1.2 keeps
/// as the text `0600`, so octal digits after a leading `0` are accepted too.
fn read_permissions(socket: &Section<'_>) -> Result<(), ConfigError> {
    match socket.value("permissions") {
        Some(Value::String(s))
            if s.len() > 1
                && s.starts_with('0')
                && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) =>
        {
            Ok(())
        }
        _ => socket.int("permissions").map(|_| ()),
    }
}

const MCP: &str = "walstream has no MCP server; remove the key (walstream's HTTP API under \
     \"addr\" serves status and restore points)";
const SOCKET: &str = "walstream has no control socket (sync, register, start, stop); remove the \
     socket section or set enabled: false (walstream's HTTP API under \"addr\" with \"http-token\" \
     offers sync and status)";
const VALIDATION: &str = "walstream does not run Litestream v0.5's listing check; remove the key, \
     or set a replica's \"validation-interval\" for walstream's restore-and-compare validation \
     (a full restore each time)";
/// The refusal of a singular `replica:` by `replicate`.
/// A duration that must be > 0 when set (`<what> must be greater than 0`).
fn positive(s: &Section<'_>, key: &str, what: &str) -> Result<Option<Duration>, ConfigError> {
    match s.duration(key)? {
        None => Ok(None),
        Some(n) if n <= 0 => Err(s.err(key, format!("{what} must be greater than 0"))),
        Some(n) => Ok(Some(non_negative(n))),
    }
}

/// The snapshot interval and retention every database uses, as YAML values: the top-level
/// `snapshot.*`, else the per-database one (all databases must agree, as in Litestream).
pub(crate) struct SnapshotValues<'v> {
    pub interval: Option<&'v Value>,
    pub retention: Option<&'v Value>,
}

/// Resolves [`SnapshotValues`] from the top level and every `dbs[]` entry.
pub(crate) fn snapshot_values<'v>(top: &Section<'v>) -> Result<SnapshotValues<'v>, ConfigError> {
    let global = top.child("snapshot")?;
    let mut out = SnapshotValues {
        interval: global.value("interval"),
        retention: global.value("retention"),
    };
    let mut seen: [Option<(usize, i64)>; 2] = [None, None];
    for (index, entry) in top.seq("dbs")?.into_iter().enumerate() {
        let db = Section::new(entry, &top.origin, &entry_location(entry, index))?;
        let snapshot = db.child("snapshot")?;
        for (slot, (key, what)) in [
            ("interval", "snapshot interval"),
            ("retention", "snapshot retention"),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(n) = positive(&snapshot, key, what)? else {
                continue;
            };
            let n = i64::try_from(n.as_nanos()).unwrap_or(i64::MAX);
            if let Some((first, m)) = seen[slot].filter(|(_, m)| *m != n) {
                let msg = format!(
                    "conflicting database {what}s: dbs[{first}] has {}, this one has {} \
                     (one value holds for every database)",
                    format_go_duration(i128::from(m)),
                    format_go_duration(i128::from(n)),
                );
                return Err(snapshot.err(key, msg));
            }
            seen[slot].get_or_insert((index, n));
            let target = if slot == 0 {
                &mut out.interval
            } else {
                &mut out.retention
            };
            if global.value(key).is_none() {
                *target = target.or(snapshot.value(key));
            }
        }
    }
    Ok(out)
}

/// `dbs[i] (/data/app.db)` or `dbs[i] (dir /data/tenants)`, as the entry builders name entries.
fn entry_location(entry: &Value, index: usize) -> String {
    let key = format!("dbs[{index}]");
    let text = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let shown = |raw: &str| {
        super::normalize_db_path(raw).map_or(raw.to_string(), |p| p.display().to_string())
    };
    match (text("path"), text("dir")) {
        (Some(path), _) => format!("{key} ({})", shown(path)),
        (None, Some(dir)) => format!("{key} (dir {})", shown(dir)),
        (None, None) => key,
    }
}

/// The mapping every replica inherits unset keys from: the top-level replica settings plus
/// `snapshot-interval` / `retention` from the v0.5 snapshot settings. Top-level `storage-class`,
/// `sse-kms-key-id` are refusals and `sse-customer-*`, `sas-token` errors, reported here at the
/// top level.
pub(crate) fn replica_defaults(
    top: &Section<'_>,
    snapshot: &SnapshotValues<'_>,
    refusals: &mut Vec<Refusal>,
) -> Result<Mapping, ConfigError> {
    check_replica(top, "s3", refusals)?;
    check_replica(top, "abs", refusals)?;
    let mut defaults = Mapping::new();
    for key in INHERITED_KEYS {
        if let Some(v) = top.value(key) {
            defaults.insert(Value::from(*key), v.clone());
        }
    }
    if let Some(v) = snapshot.interval {
        defaults.insert(Value::from("snapshot-interval"), v.clone());
    }
    if let Some(v) = snapshot.retention {
        defaults.insert(Value::from("retention"), v.clone());
    }
    Ok(defaults)
}

/// `item` with every key of `defaults` it leaves unset (a `skip-verify: true` default wins, as in
/// Go's `SetDefaults`).
pub(crate) fn inherit(item: &Value, defaults: &Mapping) -> Value {
    let Value::Mapping(map) = item else {
        return item.clone();
    };
    let mut out = map.clone();
    for (k, v) in defaults {
        let unset = out.get(k).is_none_or(Value::is_null);
        let forced = k.as_str() == Some("skip-verify") && v.as_bool() == Some(true);
        if unset || forced {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Mapping(out)
}

/// The v0.5 replica keys of a replica (or the top level) of type `kind`: validated; SSE-C and SAS
/// tokens are errors, KMS keys and storage classes refusals.
pub(crate) fn check_replica(
    s: &Section<'_>,
    kind: &str,
    refusals: &mut Vec<Refusal>,
) -> Result<(), ConfigError> {
    s.int("max-sync-ltx-files")?;
    s.int("concurrency")?;
    s.string("part-size")?;
    for key in ["auto-recover", "sign-payload", "require-content-md5"] {
        s.bool(key)?;
    }
    match kind {
        "s3" => check_s3(s, refusals),
        "abs" if s.non_empty("sas-token")?.is_some() => Err(s.err("sas-token", SAS)),
        _ => Ok(()),
    }
}

fn check_s3(s: &Section<'_>, refusals: &mut Vec<Refusal>) -> Result<(), ConfigError> {
    for key in [
        "sse-customer-algorithm",
        "sse-customer-key",
        "sse-customer-key-path",
        "sse-customer-key-md5",
    ] {
        if s.non_empty(key)?.is_some() {
            return Err(s.err(key, SSE_C));
        }
    }
    if s.non_empty("sse-kms-key-id")?.is_some() {
        refusals.push(Refusal::at(s, "sse-kms-key-id", SSE_KMS));
    }
    if s.non_empty("storage-class")?.is_some() {
        refusals.push(Refusal::at(s, "storage-class", STORAGE_CLASS));
    }
    Ok(())
}

const SSE_C: &str = "S3 server-side encryption with customer keys (SSE-C) is not supported by \
     walstream: every read and write of the replica needs the key; use age encryption \
     (\"age:\") or the bucket's default encryption";
const SAS: &str = "Azure SAS tokens are not supported by walstream; use \"account-key\" \
     (or LITESTREAM_AZURE_ACCOUNT_KEY, or a managed identity)";
const SSE_KMS: &str = "walstream does not ask S3 for SSE-KMS with this key, so uploads would get \
     the bucket's default encryption; make the key the bucket's default encryption and remove \
     this key (reading works either way)";
const STORAGE_CLASS: &str = "walstream uploads with the bucket's default storage class; remove \
     the key (a bucket lifecycle rule can move objects to another class)";

/// The per-database v0.5 keys: `busy-timeout` (SQLite busy timeout of walstream's connections,
/// and how long a RESTART/TRUNCATE checkpoint retries) and `truncate-page-n` (0 disables the
/// forced TRUNCATE) are honoured, `max-sync-wal-bytes` is validated (the v0.3 layout has no
/// per-sync file to split), `restore-if-db-not-exists: true` is a refusal.
pub(crate) fn read_db(
    s: &Section<'_>,
    db: &mut super::DbConfig,
    refusals: &mut Vec<Refusal>,
) -> Result<(), ConfigError> {
    if let Some(n) = s.duration("busy-timeout")? {
        if n <= 0 {
            return Err(s.err("busy-timeout", "must be greater than 0"));
        }
        db.busy_timeout = Duration::from_nanos(n.unsigned_abs());
    }
    if let Some(n) = s.int("truncate-page-n")? {
        db.truncate_page_count = u64::try_from(n)
            .map_err(|_| s.err("truncate-page-n", format!("must not be negative, got {n}")))?;
    }
    if s.int("max-sync-wal-bytes")?.is_some_and(|n| n < 0) {
        return Err(s.err("max-sync-wal-bytes", "must not be negative"));
    }
    if s.bool("restore-if-db-not-exists")?.unwrap_or(false) {
        refusals.push(Refusal::at(s, "restore-if-db-not-exists", RESTORE_FIRST));
    }
    Ok(())
}

const RESTORE_FIRST: &str = "walstream replicate does not restore first; run \"walstream restore \
     -if-db-not-exists -if-replica-exists DB_PATH\" (or a directory entry's DIR) before \
     replicate, e.g. in an init container, and remove the key";
