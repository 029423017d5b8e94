//! Building one validated [`ReplicaConfig`] from a `replicas[]` entry (spec §7.3, §7.4, §9),
//! following Litestream v0.3.13's `NewReplicaFromConfig` rules.
//!
//! Invariants: the type comes from the URL scheme, else `type`, else `file`; `url` excludes
//! `path`/`bucket`; config `region`/`endpoint` beat URL-derived values; an explicit duration (even
//! 0) replaces its default; sftp is refused; age keys are parsed (X25519) but never echoed;
//! `snapshot-tiers` (walstream) is the backups' keep-* mapping and needs `retention` > 0 (its
//! v0.3-layout condition is checked in `build.rs`, where the layout is decided).

use std::path::PathBuf;

use serde_yaml::Value;

use super::backups::keep_policy;
use super::credentials::{EnvLookup, GlobalKeys, resolve_target};
use super::defaults::*;
use super::node::Section;
use super::paths::normalize_db_path;
use super::url::{is_url, parse_replica_url, redact_password};
use super::v05::{self, Refusal};
use super::{
    AbsTarget, AgeConfig, ConfigError, GcsTarget, KeepPolicy, ReplicaConfig, ReplicaTarget,
    S3Target,
};
use crate::gofmt::non_negative;

pub(crate) const REPLICA_KEYS: &[&str] = &[
    "type",
    "name",
    "path",
    "url",
    "retention",
    "retention-check-interval",
    "sync-interval",
    "snapshot-interval",
    "validation-interval",
    "layout",
    "snapshot-tiers",
    "access-key-id",
    "secret-access-key",
    "region",
    "bucket",
    "endpoint",
    "force-path-style",
    "skip-verify",
    "account-name",
    "account-key",
    "host",
    "user",
    "password",
    "key-path",
    "age",
];
const AGE_KEYS: &[&str] = &["identities", "recipients"];

/// What the caller knows about the enclosing database.
pub(crate) struct ReplicaScope<'a> {
    pub origin: &'a str,
    /// Error location of the database, e.g. `dbs[0] (/data/app.db)`.
    pub db_location: &'a str,
    /// Warning prefix of the database, e.g. `dbs[0]`.
    pub db_key: &'a str,
    /// Database path for warnings.
    pub db_path: &'a str,
    pub global: &'a GlobalKeys,
    pub env: EnvLookup<'a>,
    /// Where `replicate`'s refusals (e.g. `storage-class`) are collected.
    pub refusals: &'a std::cell::RefCell<Vec<Refusal>>,
}

/// Raw string/bool keys of a replica entry (empty strings already mapped to `None`).
struct Fields {
    kind: Option<String>,
    path: Option<String>,
    url: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    force_path_style: Option<bool>,
    skip_verify: bool,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    account_name: Option<String>,
    account_key: Option<String>,
    host: Option<String>,
    user: Option<String>,
}

impl Fields {
    fn read(s: &Section<'_>) -> Result<Fields, ConfigError> {
        Ok(Fields {
            kind: s.non_empty("type")?,
            path: s.non_empty("path")?,
            url: s.non_empty("url")?,
            bucket: s.non_empty("bucket")?,
            region: s.non_empty("region")?,
            endpoint: s.non_empty("endpoint")?,
            force_path_style: s.bool("force-path-style")?,
            skip_verify: s.bool("skip-verify")?.unwrap_or(false),
            access_key_id: s.non_empty("access-key-id")?,
            secret_access_key: s.non_empty("secret-access-key")?,
            account_name: s.non_empty("account-name")?,
            account_key: s.non_empty("account-key")?,
            host: s.non_empty("host")?,
            user: s.non_empty("user")?,
        })
    }

    fn replica_type(&self) -> String {
        replica_type(self.url.as_deref(), self.kind.as_deref())
    }
}

/// Litestream's `ReplicaType()`: URL scheme (`gs` meaning `gcs`), else `type`, else `file`.
fn replica_type(url: Option<&str>, kind: Option<&str>) -> String {
    let scheme = url.filter(|u| is_url(u)).and_then(|u| u.split_once("://"));
    match scheme.map(|(s, _)| s.to_ascii_lowercase()) {
        Some(s) if s == "gs" => "gcs".to_string(),
        Some(s) => s,
        None => kind.unwrap_or("file").to_string(),
    }
}

/// The label used in error locations: the name, else the type.
fn replica_label(bare: &Section<'_>) -> Result<String, ConfigError> {
    if let Some(name) = bare.non_empty("name")? {
        return Ok(name);
    }
    let url = bare.non_empty("url")?;
    Ok(replica_type(
        url.as_deref(),
        bare.non_empty("type")?.as_deref(),
    ))
}

/// Builds the replica at `slot` of a database (`replicas[1]`, or `replica` for Litestream v0.5's
/// singular key).
pub(crate) fn build_replica(
    value: &Value,
    slot: &str,
    scope: &ReplicaScope<'_>,
    warnings: &mut Vec<String>,
) -> Result<ReplicaConfig, ConfigError> {
    let base = format!("{}: {slot}", scope.db_location);
    let place = format!("{}.{slot}", scope.db_key);
    let label = replica_label(&Section::new(value, scope.origin, &base)?)?;
    let located = format!("{base} {label:?}");
    let merged = with_url_query(value, &located, &place, scope, warnings)?;
    let value = merged.as_ref().unwrap_or(value);
    let s = Section::new(value, scope.origin, &located)?;
    let fields = Fields::read(&s)?;
    let kind = fields.replica_type();
    let known: Vec<&str> = REPLICA_KEYS
        .iter()
        .chain(v05::REPLICA_KEYS)
        .chain(v05::FOREIGN_TYPE_KEYS)
        .copied()
        .collect();
    s.warn_unknown(
        &known,
        &format!("in {place} (db {})", scope.db_path),
        warnings,
    );

    if let Some(path) = fields.path.as_deref().filter(|p| is_url(p)) {
        let msg = format!(
            "replica path cannot be a url, please use the 'url' field instead: {}",
            redact_password(path)
        );
        return Err(s.err("path", msg));
    }
    if s.is_empty() {
        return Err(s.err_here("empty replica: set \"url\", or \"type\" with its settings"));
    }
    let mut target = match kind.as_str() {
        "file" => file_target(&s, &fields)?,
        "s3" => ReplicaTarget::S3(s3_target(&s, &fields)?),
        // `gs` is Litestream v0.5's type name (v0.3.13: `gcs`).
        "gcs" | "gs" => ReplicaTarget::Gcs(gcs_target(&s, &fields)?),
        "abs" => ReplicaTarget::Abs(abs_target(&s, &fields)?),
        "sftp" => return Err(s.err_here(sftp_refusal(&fields).to_string())),
        "webdav" | "nats" | "oss" => return Err(s.err_here(unsupported_type(&kind))),
        _ if fields.url.is_some() => return Err(url_error(&s, &fields)),
        other => return Err(s.err("type", format!("unknown replica type in config: {other:?}"))),
    };
    v05::check_replica(&s, target.type_name(), &mut scope.refusals.borrow_mut())?;
    resolve_target(&mut target, scope.global, scope.env);

    let mut replica = ReplicaConfig::with_defaults(label, target);
    apply_durations(&s, &mut replica)?;
    replica.snapshot_tiers = snapshot_tiers(&s, &replica, warnings)?;
    replica.age = read_age(
        &s.child("age")?,
        &format!("in {place}.age (db {})", scope.db_path),
        warnings,
    )?;
    Ok(replica)
}

/// The replica with the keys its `s3://` URL's query stands for (Litestream v0.5), each only
/// where the entry leaves it unset (keys win over the URL, as in Litestream); `None` without a
/// query. Unknown parameters are warned about.
fn with_url_query(
    value: &Value,
    base: &str,
    place: &str,
    scope: &ReplicaScope<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, ConfigError> {
    let s = Section::new(value, scope.origin, base)?;
    let Some(url) = s.non_empty("url")?.filter(|u| u.contains('?')) else {
        return Ok(None);
    };
    let query = super::url_query::s3_query_keys(&url).map_err(|e| s.err("url", e.to_string()))?;
    for name in &query.unknown {
        warnings.push(format!(
            "unknown query parameter {name:?} in the url of {place} (db {})",
            scope.db_path
        ));
    }
    let Value::Mapping(map) = value else {
        return Ok(None);
    };
    let mut map = map.clone();
    for (key, v) in query.keys {
        let key = Value::from(key);
        if map.get(&key).is_none_or(Value::is_null) {
            map.insert(key, v);
        }
    }
    Ok(Some(Value::Mapping(map)))
}

/// The error `parse_replica_url` gives for the URL (unknown scheme, bad syntax …) at key `url`.
fn url_error(s: &Section<'_>, f: &Fields) -> ConfigError {
    let url = f.url.as_deref().unwrap_or_default();
    match parse_replica_url(url) {
        Err(e) => s.err("url", e.to_string()),
        Ok(_) => s.err(
            "url",
            format!("unsupported replica url: {}", redact_password(url)),
        ),
    }
}

/// Parses the `url` key; any URL problem is reported at `url`.
fn url_target(s: &Section<'_>, url: &str) -> Result<ReplicaTarget, ConfigError> {
    parse_replica_url(url).map_err(|e| s.err("url", e.to_string()))
}

fn reject_url_with(s: &Section<'_>, f: &Fields, kind: &str) -> Result<(), ConfigError> {
    if f.url.is_none() {
        return Ok(());
    }
    if f.path.is_some() {
        return Err(s.err_here(format!("cannot specify url & path for {kind} replica")));
    }
    if f.bucket.is_some() && kind != "file" {
        return Err(s.err_here(format!("cannot specify url & bucket for {kind} replica")));
    }
    Ok(())
}

fn file_target(s: &Section<'_>, f: &Fields) -> Result<ReplicaTarget, ConfigError> {
    reject_url_with(s, f, "file")?;
    if let Some(url) = &f.url {
        if !is_url(url) {
            return Err(s.err(
                "url",
                ConfigError::MissingScheme(redact_password(url)).to_string(),
            ));
        }
        return url_target(s, url);
    }
    let Some(path) = &f.path else {
        return Err(if f.kind.is_none() {
            s.err_here(
                "replica has neither \"url\" nor \"path\" (without \"type\" it is a file replica)",
            )
        } else {
            s.err_here("file replica path required")
        });
    };
    let path: PathBuf = normalize_db_path(path).map_err(|e| s.err("path", e.to_string()))?;
    Ok(ReplicaTarget::File { path })
}

fn s3_target(s: &Section<'_>, f: &Fields) -> Result<S3Target, ConfigError> {
    reject_url_with(s, f, "s3")?;
    let mut t = S3Target {
        bucket: f.bucket.clone().unwrap_or_default(),
        path: f.path.clone().unwrap_or_default(),
        region: f.region.clone(),
        endpoint: f.endpoint.clone(),
        // Path style whenever an endpoint is configured, unless explicitly switched off.
        force_path_style: f.force_path_style.unwrap_or(f.endpoint.is_some()),
        skip_verify: f.skip_verify,
        access_key_id: f.access_key_id.clone(),
        secret_access_key: f.secret_access_key.clone(),
    };
    if let Some(url) = &f.url {
        let ReplicaTarget::S3(u) = url_target(s, url)? else {
            return Err(s.err("url", "expected an s3:// url"));
        };
        t.bucket = u.bucket;
        t.path = u.path;
        t.region = t.region.or(u.region);
        t.endpoint = t.endpoint.or(u.endpoint);
        // A provider pattern forces path style; `force-path-style: false` cannot undo it.
        t.force_path_style = t.force_path_style || u.force_path_style;
    }
    if t.bucket.is_empty() {
        return Err(s.err_here("bucket required for s3 replica"));
    }
    refuse_rooted_object_path(s, "s3", &t.path)?;
    Ok(t)
}

fn gcs_target(s: &Section<'_>, f: &Fields) -> Result<GcsTarget, ConfigError> {
    reject_url_with(s, f, "gcs")?;
    if let Some(url) = &f.url {
        let ReplicaTarget::Gcs(u) = url_target(s, url)? else {
            return Err(s.err("url", "expected a gcs:// url"));
        };
        return Ok(u);
    }
    let Some(bucket) = f.bucket.clone() else {
        return Err(s.err_here("bucket required for gcs replica"));
    };
    let path = f.path.clone().unwrap_or_default();
    refuse_rooted_object_path(s, "gcs", &path)?;
    Ok(GcsTarget {
        bucket,
        path,
        emulator_host: None,
    })
}

fn abs_target(s: &Section<'_>, f: &Fields) -> Result<AbsTarget, ConfigError> {
    reject_url_with(s, f, "abs")?;
    let mut t = AbsTarget {
        account_name: f.account_name.clone(),
        account_key: f.account_key.clone(),
        bucket: f.bucket.clone().unwrap_or_default(),
        path: f.path.clone().unwrap_or_default(),
        endpoint: f.endpoint.clone(),
        emulator_url: None,
    };
    if let Some(url) = &f.url {
        let ReplicaTarget::Abs(u) = url_target(s, url)? else {
            return Err(s.err("url", "expected an abs:// url"));
        };
        t.account_name = t.account_name.or(u.account_name);
        t.bucket = u.bucket;
        t.path = u.path;
    }
    if t.bucket.is_empty() {
        return Err(s.err_here("bucket required for abs replica"));
    }
    refuse_rooted_object_path(s, "abs", &t.path)?;
    Ok(t)
}

/// Litestream keeps a leading `/` of an object-store `path` in its keys (`/x/generations/…`),
/// which walstream's object-store client cannot represent (the storage layer refuses it too);
/// refused here so the message names the file and key. URL paths never start with `/`.
fn refuse_rooted_object_path(s: &Section<'_>, kind: &str, path: &str) -> Result<(), ConfigError> {
    if !path.starts_with('/') {
        return Ok(());
    }
    let msg = format!(
        "{kind} replica path {path:?} starts with \"/\": Litestream keeps the slash in object keys, \
         which walstream does not support; remove the leading slash"
    );
    Err(s.err("path", msg))
}

/// Litestream v0.5's other replica types, which walstream does not support.
fn unsupported_type(kind: &str) -> String {
    format!("{kind} replicas are not supported by walstream (supported: file, s3, gcs, abs)")
}

fn sftp_refusal(f: &Fields) -> ConfigError {
    let shown = match &f.url {
        Some(url) => redact_password(url),
        None => format!(
            "sftp://{}{}{}",
            f.user
                .as_deref()
                .map(|u| format!("{u}@"))
                .unwrap_or_default(),
            f.host.as_deref().unwrap_or_default(),
            f.path.as_deref().unwrap_or_default()
        ),
    };
    ConfigError::Sftp(shown)
}

fn apply_durations(s: &Section<'_>, r: &mut ReplicaConfig) -> Result<(), ConfigError> {
    if let Some(v) = s.duration("retention")? {
        r.retention = non_negative(v);
    }
    let check = s.duration("retention-check-interval")?;
    if let Some(v) = check {
        r.retention_check_interval = non_negative(v);
    }
    if !r.retention.is_zero() {
        if r.retention_check_interval.is_zero() {
            let msg = "must be greater than 0 when retention is enabled";
            return Err(s.err("retention-check-interval", msg));
        }
        r.retention_check_interval = r.retention_check_interval.min(r.retention);
    }
    if let Some(v) = s.duration("sync-interval")? {
        if v <= 0 {
            return Err(s.err("sync-interval", "must be greater than 0"));
        }
        r.sync_interval = non_negative(v);
    }
    if let Some(v) = s.duration("snapshot-interval")? {
        r.snapshot_interval = non_negative(v);
    }
    if let Some(v) = s.duration("validation-interval")? {
        r.validation_interval = non_negative(v);
    }
    if let Some(text) = s.non_empty("layout")? {
        r.layout = Some(match text.as_str() {
            "v0.3" | "v3" => super::ReplicaLayout::V3,
            "ltx" | "v0.5" => super::ReplicaLayout::Ltx,
            other => {
                let msg = format!(
                    "{other:?} is not a layout: use v0.3 (generations/) or ltx (Litestream v0.5)"
                );
                return Err(s.err("layout", msg));
            }
        });
    }
    Ok(())
}

/// `snapshot-tiers`: a keep-* mapping like `backups.retention.<kind>`, only with `retention` on
/// (it keeps snapshots beyond the window; without a window nothing is deleted anyway). The v0.3
/// layout is checked where the layout is decided (`build.rs`).
fn snapshot_tiers(
    s: &Section<'_>,
    r: &ReplicaConfig,
    warnings: &mut Vec<String>,
) -> Result<Option<KeepPolicy>, ConfigError> {
    let policy = keep_policy(&s.child("snapshot-tiers")?, warnings)?;
    if policy.is_some() && r.retention.is_zero() {
        let msg = "needs retention greater than 0 (it keeps snapshots beyond the retention window)";
        return Err(s.err("snapshot-tiers", msg));
    }
    Ok(policy)
}

fn read_age(
    s: &Section<'_>,
    place: &str,
    warnings: &mut Vec<String>,
) -> Result<AgeConfig, ConfigError> {
    s.warn_unknown(AGE_KEYS, place, warnings);
    let identities = s.string_list("identities")?;
    for (i, text) in identities.iter().enumerate() {
        super::age::parse_identities(text).map_err(|m| s.err(&format!("identities[{i}]"), m))?;
    }
    let recipients = s.string_list("recipients")?;
    for (i, text) in recipients.iter().enumerate() {
        super::age::parse_recipients(text).map_err(|m| s.err(&format!("recipients[{i}]"), m))?;
    }
    Ok(AgeConfig {
        identities,
        recipients,
    })
}

impl ReplicaConfig {
    /// A replica with every default of spec §4.1 applied.
    pub fn with_defaults(name: String, target: ReplicaTarget) -> ReplicaConfig {
        ReplicaConfig {
            name,
            target,
            retention: DEFAULT_RETENTION,
            retention_check_interval: DEFAULT_RETENTION_CHECK_INTERVAL,
            sync_interval: DEFAULT_SYNC_INTERVAL,
            snapshot_interval: DEFAULT_SNAPSHOT_INTERVAL,
            validation_interval: DEFAULT_VALIDATION_INTERVAL,
            age: AgeConfig::default(),
            layout: None,
            snapshot_tiers: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{KeepPolicy, parse_with_env};

    fn parse(replica: &str) -> Result<super::super::LoadedConfig, String> {
        let text = format!("dbs:\n  - path: /d/a.db\n    {replica}");
        parse_with_env(&text, true, Some(Path::new("/c.yml")), &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn snapshot_tiers_take_the_backups_keep_mapping() {
        let loaded = parse(
            "replicas:\n      - path: /r\n        retention: 72h\n        snapshot-tiers: {keep-daily: 7, keep-weekly: 4, keep-monthly: 2}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let tiers = KeepPolicy {
            daily: 7,
            weekly: 4,
            monthly: 2,
            ..KeepPolicy::default()
        };
        assert_eq!(loaded.config.dbs[0].replicas[0].snapshot_tiers, Some(tiers));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let plain = parse("replicas:\n      - path: /r\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.config.dbs[0].replicas[0].snapshot_tiers, None);
    }

    #[test]
    fn snapshot_tiers_need_retention_and_the_v03_layout() {
        for (replica, said) in [
            (
                "replicas:\n      - path: /r\n        retention: 0s\n        snapshot-tiers: {keep-daily: 7}\n",
                "config /c.yml: dbs[0] (/d/a.db): replicas[0] \"file\": snapshot-tiers: needs retention greater than 0 (it keeps snapshots beyond the retention window)",
            ),
            (
                "replicas:\n      - path: /r\n        snapshot-tiers: {keep-daily: 0}\n",
                "config /c.yml: dbs[0] (/d/a.db): replicas[0] \"file\": snapshot-tiers: keeps nothing: give at least one of keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly (≥ 1)",
            ),
            (
                "replica:\n      path: /r\n      snapshot-tiers: {keep-daily: 7}\n",
                "config /c.yml: dbs[0] (/d/a.db): replica: snapshot-tiers of replica \"file\" applies to the v0.3 layout (generations/) only; this replica writes LTX",
            ),
            (
                "replicas:\n      - path: /r\n        layout: ltx\n        snapshot-tiers: {keep-last: 3}\n",
                "config /c.yml: dbs[0] (/d/a.db): replicas: snapshot-tiers of replica \"file\" applies to the v0.3 layout (generations/) only; this replica writes LTX",
            ),
        ] {
            match parse(replica) {
                Ok(c) => panic!("{replica}: accepted: {:?}", c.config.dbs[0].replicas),
                Err(e) => assert_eq!(e, said, "{replica}"),
            }
        }
        // A singular `replica:` with `layout: v0.3` writes generations/: accepted.
        let v3 = parse(
            "replica:\n      path: /r\n      layout: v0.3\n      snapshot-tiers: {keep-daily: 7}\n",
        );
        assert!(v3.is_ok(), "{v3:?}");
    }
}
