//! Prometheus metrics in an owned [`Registry`] (never the global one): every metric Litestream
//! v0.3.13 exports (spec §8) with its name, type, labels and meaning, plus walstream's own
//! (`walstream_*`). Documented in `docs/metrics.md`.
//!
//! What must stay true:
//! - values are computed at scrape time from an [`Observation`] (status snapshots and the
//!   monotonic counters kept by `db`, `replica` and `storage`), so no other module updates
//!   metrics and a scrape never waits for I/O;
//! - counters only come from monotonic sources; label `db` is the absolute database path and
//!   `name` the replica name, as in Litestream;
//! - series appear like Litestream's: checkpoint series after a mode's first use, validation
//!   series pre-initialised, storage operation series only for object-store replica types
//!   (Litestream's file replica counts none);
//! - [`FAMILIES`] lists every family once; `docs/metrics.md` documents each one;
//! - the backup series come from the in-memory summary in the observation (`admin::tally`):
//!   a scrape never lists a backups folder.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::state::{DbObservation, Observation, ReplicaObservation};
use crate::storage::Op;

/// One metric family: name, help text, type, label names and how `metrics-db-labels: false`
/// folds its per-database series.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub counter: bool,
    pub labels: &'static [&'static str],
    pub fleet: Fold,
}

/// What a family becomes without the `db` and `name` labels (`metrics-db-labels: false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// The sum over databases and replicas (counters, sizes, the attached count).
    Sum,
    /// The largest value (the replication lag).
    Max,
    /// Not exported: a per-database index, offset or timestamp has no meaningful total.
    Drop,
}

/// The labels that name a database or a replica.
const DB_LABELS: &[&str] = &["db", "name"];

const fn gauge(
    name: &'static str,
    labels: &'static [&'static str],
    fleet: Fold,
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        counter: false,
        labels,
        fleet,
    }
}

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        counter: true,
        labels,
        fleet: Fold::Sum,
    }
}

const DB: &[&str] = &["db"];
const DB_MODE: &[&str] = &["db", "mode"];
const REPLICA: &[&str] = &["db", "name"];
const OPERATION: &[&str] = &["replica_type", "operation"];

pub const DB_SIZE: Family = gauge(
    "litestream_db_size",
    DB,
    Fold::Sum,
    "The current size of the real DB",
);
pub const WAL_SIZE: Family = gauge(
    "litestream_wal_size",
    DB,
    Fold::Sum,
    "The current size of the real WAL",
);
pub const TOTAL_WAL_BYTES: Family = counter(
    "litestream_total_wal_bytes",
    DB,
    "Total number of bytes written to shadow WAL",
);
pub const SHADOW_WAL_INDEX: Family = gauge(
    "litestream_shadow_wal_index",
    DB,
    Fold::Drop,
    "The current index of the shadow WAL",
);
pub const SHADOW_WAL_SIZE: Family = gauge(
    "litestream_shadow_wal_size",
    DB,
    Fold::Sum,
    "Current size of shadow WAL, in bytes",
);
pub const SYNC_COUNT: Family = counter(
    "litestream_sync_count",
    DB,
    "Number of sync operations performed",
);
pub const SYNC_ERROR_COUNT: Family = counter(
    "litestream_sync_error_count",
    DB,
    "Number of sync errors that have occurred",
);
pub const SYNC_SECONDS: Family = counter(
    "litestream_sync_seconds",
    DB,
    "Time spent syncing shadow WAL, in seconds",
);
pub const CHECKPOINT_COUNT: Family = counter(
    "litestream_checkpoint_count",
    DB_MODE,
    "Number of checkpoint operations",
);
pub const CHECKPOINT_ERROR_COUNT: Family = counter(
    "litestream_checkpoint_error_count",
    DB_MODE,
    "Number of checkpoint errors",
);
pub const CHECKPOINT_SECONDS: Family = counter(
    "litestream_checkpoint_seconds",
    DB_MODE,
    "Time spent checkpointing WAL, in seconds",
);
pub const REPLICA_WAL_BYTES: Family = counter(
    "litestream_replica_wal_bytes",
    REPLICA,
    "The number wal bytes written by a replica",
);
pub const REPLICA_WAL_INDEX: Family = gauge(
    "litestream_replica_wal_index",
    REPLICA,
    Fold::Drop,
    "The current WAL index",
);
pub const REPLICA_WAL_OFFSET: Family = gauge(
    "litestream_replica_wal_offset",
    REPLICA,
    Fold::Drop,
    "The current WAL offset",
);
pub const REPLICA_VALIDATION_TOTAL: Family = counter(
    "litestream_replica_validation_total",
    &["db", "name", "status"],
    "The number of validations performed",
);
pub const REPLICA_OPERATION_TOTAL: Family = counter(
    "litestream_replica_operation_total",
    OPERATION,
    "The number of replica operations performed",
);
pub const REPLICA_OPERATION_BYTES: Family = counter(
    "litestream_replica_operation_bytes",
    OPERATION,
    "The number of bytes used by replica operations",
);

pub const TXID: Family = gauge(
    "litestream_txid",
    DB,
    Fold::Drop,
    "Highest TXID stored in the database's LTX replica (Litestream v0.5's family)",
);
pub const COMPACTION_VERIFY_ERRORS: Family = counter(
    "litestream_compaction_verify_error_count",
    DB,
    "Number of post-compaction verification failures",
);
pub const DB_ATTACHED: Family = gauge(
    "walstream_db_attached",
    DB,
    Fold::Sum,
    "1 while the database is attached (read transaction held), else 0",
);
pub const LAST_SYNC: Family = gauge(
    "walstream_replica_last_sync_timestamp_seconds",
    REPLICA,
    Fold::Drop,
    "Unix time of the replica's last successful upload round (0: none yet)",
);
pub const LAG: Family = gauge(
    "walstream_replica_lag_seconds",
    REPLICA,
    Fold::Max,
    "Age of the oldest commit not yet durable in the replica (0 when caught up)",
);
pub const SYNC_ERRORS: Family = counter(
    "walstream_replica_sync_errors_total",
    REPLICA,
    "Failed upload rounds of the replica",
);
pub const STORAGE_ERRORS: Family = counter(
    "walstream_replica_storage_errors_total",
    &["db", "name", "kind"],
    "Storage calls that returned an error, by kind (not_found, permanent, transient, other)",
);
pub const STORAGE_RETRIES: Family = counter(
    "walstream_replica_storage_retries_total",
    REPLICA,
    "Storage call attempts after the first",
);
pub const STORAGE_OPERATIONS: Family = counter(
    "walstream_replica_storage_operations_total",
    &["db", "name", "operation"],
    "Successful storage calls of the replica, any replica type",
);
pub const UPLOADED_BYTES: Family = counter(
    "walstream_replica_uploaded_bytes_total",
    REPLICA,
    "Stored (compressed) bytes uploaded: snapshots and WAL segments",
);
pub const LATEST_SNAPSHOT: Family = gauge(
    "walstream_replica_latest_snapshot_timestamp_seconds",
    REPLICA,
    Fold::Drop,
    "Unix time of the newest snapshot in the replica",
);
pub const OLDEST_RESTORE_POINT: Family = gauge(
    "walstream_replica_oldest_restore_point_timestamp_seconds",
    REPLICA,
    Fold::Drop,
    "Unix time of the oldest point the replica can restore to (its oldest snapshot)",
);
pub const OWNER_CONFLICT: Family = gauge(
    "walstream_replica_owner_conflict",
    REPLICA,
    Fold::Sum,
    "1 while another database owns the replica path (its owner record names another identity) and this replica writes nothing, else 0",
);

pub const SOURCE_DAMAGED: Family = gauge(
    "walstream_replica_source_damaged",
    REPLICA,
    Fold::Sum,
    "1 while the database fails PRAGMA quick_check before this replica's snapshots (they are refused, so the latest restore point stays the last good one), else 0",
);

const DB_KIND: &[&str] = &["db", "kind"];
pub const BACKUP_COUNT: Family = gauge(
    "walstream_backup_count",
    DB_KIND,
    Fold::Sum,
    "Backups in the database's backups folder, by kind (kinds with at least one)",
);
pub const BACKUP_BYTES: Family = gauge(
    "walstream_backup_bytes",
    DB_KIND,
    Fold::Sum,
    "Bytes of the database's backups, by kind",
);
pub const BACKUP_NEWEST: Family = gauge(
    "walstream_backup_newest_timestamp_seconds",
    DB_KIND,
    Fold::Drop,
    "Unix time of the newest backup of the kind",
);
pub const BACKUP_VOLUME_FREE: Family = gauge(
    "walstream_backup_volume_free_bytes",
    DB,
    Fold::Drop,
    "Bytes available on the volume of the database's backups folder",
);
pub const BACKUP_VOLUME_TOTAL: Family = gauge(
    "walstream_backup_volume_total_bytes",
    DB,
    Fold::Drop,
    "Size of the volume of the database's backups folder, in bytes",
);

const DB_SOURCE: &[&str] = &["db", "source"];
pub const DRILL_FAILED: Family = gauge(
    "walstream_drill_failed",
    DB_SOURCE,
    Fold::Sum,
    "1 when the last restore drill's part failed, else 0; source: replica or backup",
);
pub const DRILL_SECONDS: Family = gauge(
    "walstream_drill_duration_seconds",
    DB_SOURCE,
    Fold::Max,
    "How long the last restore drill's part took (the recovery time it measured)",
);
pub const DRILL_TIMESTAMP: Family = gauge(
    "walstream_drill_timestamp_seconds",
    DB,
    Fold::Drop,
    "Unix time the last restore drill finished",
);

pub const HEARTBEAT_PINGS: Family = counter(
    "walstream_heartbeat_pings_total",
    &["result"],
    "Heartbeat pings (heartbeat-url) by result: ok (2xx answer) or failed",
);
pub const HEARTBEAT_SUPPRESSED: Family = counter(
    "walstream_heartbeat_suppressed_total",
    &[],
    "Checks at which a heartbeat ping was due but held back because a database was not healthy",
);

/// Every family, in the order of `docs/metrics.md`.
pub const FAMILIES: &[Family] = &[
    DB_SIZE,
    WAL_SIZE,
    TOTAL_WAL_BYTES,
    SHADOW_WAL_INDEX,
    SHADOW_WAL_SIZE,
    SYNC_COUNT,
    SYNC_ERROR_COUNT,
    SYNC_SECONDS,
    CHECKPOINT_COUNT,
    CHECKPOINT_ERROR_COUNT,
    CHECKPOINT_SECONDS,
    REPLICA_WAL_BYTES,
    REPLICA_WAL_INDEX,
    REPLICA_WAL_OFFSET,
    REPLICA_VALIDATION_TOTAL,
    REPLICA_OPERATION_TOTAL,
    REPLICA_OPERATION_BYTES,
    TXID,
    COMPACTION_VERIFY_ERRORS,
    DB_ATTACHED,
    LAST_SYNC,
    LAG,
    SYNC_ERRORS,
    STORAGE_ERRORS,
    STORAGE_RETRIES,
    STORAGE_OPERATIONS,
    UPLOADED_BYTES,
    LATEST_SNAPSHOT,
    OLDEST_RESTORE_POINT,
    OWNER_CONFLICT,
    SOURCE_DAMAGED,
    BACKUP_COUNT,
    BACKUP_BYTES,
    BACKUP_NEWEST,
    BACKUP_VOLUME_FREE,
    BACKUP_VOLUME_TOTAL,
    DRILL_FAILED,
    DRILL_SECONDS,
    DRILL_TIMESTAMP,
    HEARTBEAT_PINGS,
    HEARTBEAT_SUPPRESSED,
];

/// Errors of building or rendering the registry.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metric {name}: {source}")]
    Describe {
        name: &'static str,
        source: prometheus::Error,
    },
    #[error("register collector: {0}")]
    Register(prometheus::Error),
    #[error("encode metrics: {0}")]
    Encode(prometheus::Error),
}

/// Where the collector reads its values at each scrape.
pub type Source = Arc<dyn Fn() -> Observation + Send + Sync>;

/// The registry with walstream's collector.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry whose only collector renders [`FAMILIES`] from `source()` at each scrape;
    /// without `db_labels` (`metrics-db-labels: false`) folded over databases ([`Fold`]).
    pub fn new(source: Source, db_labels: bool) -> Result<Self, MetricsError> {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                let labels = f.labels.iter().map(|l| l.to_string()).collect();
                Desc::new(f.name.into(), f.help.into(), labels, Default::default()).map_err(
                    |source| MetricsError::Describe {
                        name: f.name,
                        source,
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let registry = Registry::new();
        registry
            .register(Box::new(ObservationCollector {
                descs,
                source,
                db_labels,
            }))
            .map_err(MetricsError::Register)?;
        Ok(Metrics { registry })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(MetricsError::Encode)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// `Content-Type` of [`Metrics::render`].
pub fn content_type() -> &'static str {
    prometheus::TEXT_FORMAT
}

struct ObservationCollector {
    descs: Vec<Desc>,
    source: Source,
    db_labels: bool,
}

impl Collector for ObservationCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        families_with(&(self.source)(), self.db_labels)
    }
}

/// Folded series of one family: (values of the labels other than `db`/`name`, value).
type Folded = (Family, Vec<(Vec<String>, f64)>);

/// Collects samples per family; without `db_labels`, folds the per-database ones (see [`Fold`]).
struct Samples {
    db_labels: bool,
    by_name: BTreeMap<&'static str, (Family, Vec<Metric>)>,
    folded: BTreeMap<&'static str, Folded>,
}

impl Samples {
    fn new(db_labels: bool) -> Self {
        Samples {
            db_labels,
            by_name: BTreeMap::new(),
            folded: BTreeMap::new(),
        }
    }

    /// True when series are per database (and the `db` label string is needed).
    fn per_db(&self) -> bool {
        self.db_labels
    }

    fn add(&mut self, f: Family, labels: &[&str], value: f64) {
        if self.db_labels || !f.labels.iter().any(|l| DB_LABELS.contains(l)) {
            let pairs = f.labels.iter().zip(labels).map(|(n, v)| (*n, *v));
            self.push(f, pairs, value);
        } else if f.fleet != Fold::Drop {
            self.fold(f, labels, value);
        }
    }

    fn push<'a>(
        &mut self,
        f: Family,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
        value: f64,
    ) {
        let pairs = labels
            .map(|(name, value)| {
                let mut p = LabelPair::default();
                p.set_name(name.to_string());
                p.set_value(value.to_string());
                p
            })
            .collect();
        let mut m = Metric::from_label(pairs);
        if f.counter {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        self.by_name
            .entry(f.name)
            .or_insert_with(|| (f, Vec::new()))
            .1
            .push(m);
    }

    /// Adds `value` into the series of `f` with the same non-database labels.
    fn fold(&mut self, f: Family, labels: &[&str], value: f64) {
        let kept = || {
            f.labels
                .iter()
                .zip(labels)
                .filter(|(n, _)| !DB_LABELS.contains(n))
                .map(|(_, v)| *v)
        };
        let series = &mut self
            .folded
            .entry(f.name)
            .or_insert_with(|| (f, Vec::new()))
            .1;
        // A family has at most a handful of label combinations left: a scan is enough.
        match series
            .iter_mut()
            .find(|(l, _)| l.iter().map(String::as_str).eq(kept()))
        {
            Some((_, total)) if f.fleet == Fold::Max => *total = total.max(value),
            Some((_, total)) => *total += value,
            None => series.push((kept().map(str::to_string).collect(), value)),
        }
    }

    fn into_families(mut self) -> Vec<MetricFamily> {
        for (f, series) in std::mem::take(&mut self.folded).into_values() {
            let names: Vec<&str> = f
                .labels
                .iter()
                .copied()
                .filter(|n| !DB_LABELS.contains(n))
                .collect();
            for (values, v) in &series {
                let pairs = names.iter().copied().zip(values.iter().map(String::as_str));
                self.push(f, pairs, *v);
            }
        }
        self.by_name
            .into_values()
            .map(|(f, metrics)| {
                let mut mf = MetricFamily::default();
                mf.set_name(f.name.to_string());
                mf.set_help(f.help.to_string());
                mf.set_field_type(if f.counter {
                    MetricType::COUNTER
                } else {
                    MetricType::GAUGE
                });
                mf.set_metric(metrics);
                mf
            })
            .collect()
    }
}

/// Unix seconds (fractional) of `t`; 0 before the epoch.
fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every family's samples for `obs` with per-database labels (pure; the unit under test).
pub fn families(obs: &Observation) -> Vec<MetricFamily> {
    families_with(obs, true)
}

/// Every family's samples for `obs`; without `db_labels` folded over databases ([`Fold`]).
pub fn families_with(obs: &Observation, db_labels: bool) -> Vec<MetricFamily> {
    let mut s = Samples::new(db_labels);
    // Litestream's operation counters are per replica type: (type, operation) → (calls, bytes).
    let mut ops: BTreeMap<(&'static str, &'static str), (u64, u64)> = BTreeMap::new();
    for db in &obs.dbs {
        // The `db` label is built once per database, and not at all when folding.
        let label = if s.per_db() {
            db.path.display().to_string()
        } else {
            String::new()
        };
        db_samples(&mut s, &label, db);
        for r in &db.replicas {
            replica_samples(&mut s, &label, r);
            if r.replica_type != "file" {
                for &(op, n, bytes) in &r.storage.ops {
                    let e = ops.entry((r.replica_type, op.as_str())).or_default();
                    e.0 += n;
                    e.1 += bytes;
                }
            }
        }
    }
    for ((kind, op), (n, bytes)) in ops {
        s.add(REPLICA_OPERATION_TOTAL, &[kind, op], n as f64);
        if op == Op::Get.as_str() || op == Op::Put.as_str() {
            s.add(REPLICA_OPERATION_BYTES, &[kind, op], bytes as f64);
        }
    }
    // Only when the run sends a heartbeat (`heartbeat-url`).
    if let Some(hb) = &obs.heartbeat {
        s.add(HEARTBEAT_PINGS, &["ok"], hb.sent as f64);
        s.add(HEARTBEAT_PINGS, &["failed"], hb.failed as f64);
        s.add(HEARTBEAT_SUPPRESSED, &[], hb.suppressed as f64);
    }
    s.into_families()
}

fn db_samples(s: &mut Samples, label: &str, db: &DbObservation) {
    let l = [label];
    let st = &db.stats;
    s.add(DB_SIZE, &l, st.db_size as f64);
    s.add(WAL_SIZE, &l, st.wal_size as f64);
    s.add(TOTAL_WAL_BYTES, &l, st.total_wal_bytes as f64);
    s.add(SHADOW_WAL_INDEX, &l, f64::from(st.shadow_wal_index));
    s.add(SHADOW_WAL_SIZE, &l, st.shadow_wal_size as f64);
    s.add(SYNC_COUNT, &l, st.sync_count as f64);
    s.add(SYNC_ERROR_COUNT, &l, st.sync_error_count as f64);
    s.add(SYNC_SECONDS, &l, st.sync_seconds);
    for mode in crate::db::CheckpointMode::ALL {
        let c = st.checkpoint(mode);
        if c.count == 0 && c.error_count == 0 {
            continue;
        }
        let lm = [label, mode.as_str()];
        s.add(CHECKPOINT_COUNT, &lm, c.count as f64);
        s.add(CHECKPOINT_ERROR_COUNT, &lm, c.error_count as f64);
        s.add(CHECKPOINT_SECONDS, &lm, c.seconds);
    }
    s.add(DB_ATTACHED, &l, if db.attached { 1.0 } else { 0.0 });
    if let Some(b) = &db.backups {
        backup_samples(s, label, b);
    }
    if let Some(d) = &db.drill {
        drill_samples(s, label, d);
    }
}

/// The last restore drill: per part that ran, failed (0/1) and its duration; when it finished.
fn drill_samples(s: &mut Samples, label: &str, d: &crate::admin::drill::DrillReport) {
    for (source, part) in [("replica", &d.replica), ("backup", &d.backup)] {
        if let Some(p) = part {
            s.add(DRILL_FAILED, &[label, source], if p.ok { 0.0 } else { 1.0 });
            s.add(DRILL_SECONDS, &[label, source], p.duration_seconds);
        }
    }
    s.add(DRILL_TIMESTAMP, &[label], unix(d.finished));
}

/// The backups summary: per kind only kinds that have a backup (a fleet without backups adds
/// no series), the volume only while the folder exists.
fn backup_samples(s: &mut Samples, label: &str, b: &crate::state::BackupSummary) {
    for k in b.kinds.iter().filter(|k| k.count > 0) {
        let lk = [label, k.kind.as_str()];
        s.add(BACKUP_COUNT, &lk, k.count as f64);
        s.add(BACKUP_BYTES, &lk, k.bytes as f64);
        if let Some(t) = k.newest {
            s.add(BACKUP_NEWEST, &lk, unix(t));
        }
    }
    if let Some(v) = &b.volume {
        s.add(BACKUP_VOLUME_FREE, &[label], v.free_bytes as f64);
        s.add(BACKUP_VOLUME_TOTAL, &[label], v.total_bytes as f64);
    }
}

fn replica_samples(s: &mut Samples, db: &str, r: &ReplicaObservation) {
    let st = &r.status;
    let l = [db, st.name.as_str()];
    s.add(REPLICA_WAL_BYTES, &l, st.wal_bytes as f64);
    if let Some(txid) = st.ltx_txid {
        s.add(TXID, &[db], txid as f64);
        s.add(
            COMPACTION_VERIFY_ERRORS,
            &[db],
            st.compaction_verify_errors as f64,
        );
    }
    if let Some(p) = &st.position {
        s.add(REPLICA_WAL_INDEX, &l, f64::from(p.index));
        s.add(REPLICA_WAL_OFFSET, &l, p.offset as f64);
    }
    // Pre-initialised like Litestream's; `error` counts mismatches and failed validations.
    s.add(
        REPLICA_VALIDATION_TOTAL,
        &[db, &st.name, "error"],
        st.validations_failed as f64,
    );
    s.add(
        REPLICA_VALIDATION_TOTAL,
        &[db, &st.name, "ok"],
        st.validations_ok as f64,
    );
    s.add(LAST_SYNC, &l, st.last_sync.map_or(0.0, unix));
    s.add(LAG, &l, r.lag.as_secs_f64());
    s.add(SYNC_ERRORS, &l, st.error_count as f64);
    for &(class, n) in &r.storage.errors {
        s.add(STORAGE_ERRORS, &[db, &st.name, class.as_str()], n as f64);
    }
    s.add(STORAGE_RETRIES, &l, r.storage.retries as f64);
    for &(op, n, _) in &r.storage.ops {
        s.add(STORAGE_OPERATIONS, &[db, &st.name, op.as_str()], n as f64);
    }
    s.add(UPLOADED_BYTES, &l, r.storage.bytes(Op::Put) as f64);
    if let Some((_, _, at)) = r.latest_snapshot() {
        s.add(LATEST_SNAPSHOT, &l, unix(at));
    }
    if let Some(at) = r.points.oldest_restore_point() {
        s.add(OLDEST_RESTORE_POINT, &l, unix(at));
    }
    let refused = st.owner_conflict.is_some();
    s.add(OWNER_CONFLICT, &l, if refused { 1.0 } else { 0.0 });
    let damaged = st.source_damaged.is_some();
    s.add(SOURCE_DAMAGED, &l, if damaged { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::db::{CheckpointMode, DbState, DbStats, Pos};
    use crate::replica::ReplicaStatus;
    use crate::state::StorageCounters;
    use crate::storage::ErrorClass;

    fn replica(name: &str, kind: &'static str, puts: u64) -> ReplicaObservation {
        ReplicaObservation {
            status: ReplicaStatus {
                name: name.to_string(),
                kind,
                position: Some(Pos {
                    generation: "0123456789abcdef".into(),
                    index: 3,
                    offset: 8272,
                }),
                last_sync: Some(UNIX_EPOCH + Duration::from_secs(1000)),
                wal_bytes: 12345,
                error_count: 2,
                validations_ok: 4,
                validations_failed: 1,
                ..ReplicaStatus::default()
            },
            replica_type: kind,
            url: format!("{kind}://bucket/path"),
            lag: Duration::from_millis(1500),
            storage: StorageCounters {
                ops: vec![
                    (Op::Get, 1, 10),
                    (Op::Put, puts, 100 * puts),
                    (Op::List, 4, 0),
                ],
                retries: 7,
                errors: vec![(ErrorClass::Transient, 3)],
            },
            points: Arc::default(),
        }
    }

    fn observation() -> Observation {
        let mut stats = DbStats {
            db_size: 4096,
            wal_size: 8272,
            total_wal_bytes: 99,
            shadow_wal_index: 3,
            shadow_wal_size: 5000,
            sync_count: 10,
            sync_error_count: 1,
            sync_seconds: 0.25,
            ..DbStats::default()
        };
        stats.checkpoint_mut(CheckpointMode::Passive).count = 2;
        Observation {
            at: SystemTime::now(),
            dbs: vec![DbObservation {
                id: "app.db".into(),
                path: PathBuf::from("/data/app.db"),
                attached: true,
                state: DbState::default(),
                stats,
                failing_since: None,
                replicas: vec![
                    replica("file", "file", 5),
                    replica("s3", "s3", 2),
                    replica("s3b", "s3", 3),
                ],
                backups: Some(backup_summary()),
                drill: Some(drill_report()),
            }],
            heartbeat: None,
        }
    }

    /// A drill at 3000 s: the replica part passed in 2 s, the backup part failed.
    fn drill_report() -> crate::admin::drill::DrillReport {
        let part = |ok: bool, seconds: f64| crate::admin::drill::DrillPart {
            ok,
            source: "x".into(),
            duration_seconds: seconds,
            schema_matches_live: None,
            error: None,
        };
        crate::admin::drill::DrillReport {
            finished: UNIX_EPOCH + Duration::from_secs(3000),
            ok: false,
            duration_seconds: 2.5,
            replica: Some(part(true, 2.0)),
            backup: Some(part(false, 0.5)),
        }
    }

    /// Two manual backups (300 bytes, newest at 1000 s) and one uploaded (50 bytes, 2000 s).
    fn backup_summary() -> crate::state::BackupSummary {
        use crate::admin::BackupKind;
        use crate::admin::tally::{KindSummary, Volume};
        let kind = |kind, count, bytes, newest: Option<u64>| KindSummary {
            kind,
            count,
            bytes,
            newest: newest.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        };
        crate::state::BackupSummary {
            kinds: vec![
                kind(BackupKind::Manual, 2, 300, Some(1000)),
                kind(BackupKind::PreRestore, 0, 0, None),
                kind(BackupKind::Scheduled, 0, 0, None),
                kind(BackupKind::Uploaded, 1, 50, Some(2000)),
            ],
            volume: Some(Volume {
                free_bytes: 700,
                total_bytes: 1000,
                checked_at: UNIX_EPOCH,
            }),
        }
    }

    #[test]
    fn drill_series_per_part_and_the_finish_time() {
        let f = families(&observation());
        let db = "/data/app.db";
        assert_eq!(one(&f, "walstream_drill_failed", &[db, "replica"]), 0.0);
        assert_eq!(one(&f, "walstream_drill_failed", &[db, "backup"]), 1.0);
        assert_eq!(
            one(&f, "walstream_drill_duration_seconds", &[db, "replica"]),
            2.0
        );
        assert_eq!(one(&f, "walstream_drill_timestamp_seconds", &[db]), 3000.0);
    }

    #[test]
    fn backup_series_per_kind_that_has_backups_and_the_volume() {
        let f = families(&observation());
        let db = "/data/app.db";
        assert_eq!(one(&f, "walstream_backup_count", &[db, "manual"]), 2.0);
        assert_eq!(one(&f, "walstream_backup_bytes", &[db, "manual"]), 300.0);
        assert_eq!(one(&f, "walstream_backup_count", &[db, "uploaded"]), 1.0);
        assert_eq!(
            one(
                &f,
                "walstream_backup_newest_timestamp_seconds",
                &[db, "uploaded"]
            ),
            2000.0
        );
        assert_eq!(
            samples(&f, "walstream_backup_count").len(),
            2,
            "no empty kinds"
        );
        assert_eq!(one(&f, "walstream_backup_volume_free_bytes", &[db]), 700.0);
        assert_eq!(
            one(&f, "walstream_backup_volume_total_bytes", &[db]),
            1000.0
        );
        let mut unknown = observation();
        unknown.dbs[0].backups = None;
        let f = families(&unknown);
        assert!(samples(&f, "walstream_backup_count").is_empty());
        assert!(samples(&f, "walstream_backup_volume_free_bytes").is_empty());
        let folded = families_with(&fleet(3), false);
        assert_eq!(one(&folded, "walstream_backup_bytes", &["manual"]), 900.0);
    }

    /// `(labels, value)` of every sample of `name`.
    fn samples(fams: &[MetricFamily], name: &str) -> Vec<(Vec<String>, f64)> {
        let Some(f) = fams.iter().find(|f| f.name() == name) else {
            return Vec::new();
        };
        f.get_metric()
            .iter()
            .map(|m| {
                let labels = m
                    .get_label()
                    .iter()
                    .map(|l| l.value().to_string())
                    .collect();
                let v = if f.get_field_type() == MetricType::COUNTER {
                    m.get_counter().get_value()
                } else {
                    m.get_gauge().get_value()
                };
                (labels, v)
            })
            .collect()
    }

    fn one(fams: &[MetricFamily], name: &str, labels: &[&str]) -> f64 {
        let found: Vec<f64> = samples(fams, name)
            .into_iter()
            .filter(|(l, _)| l.iter().map(String::as_str).eq(labels.iter().copied()))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0]
    }

    #[test]
    fn litestream_families_carry_db_and_replica_values() {
        let f = families(&observation());
        let db = ["/data/app.db"];
        assert_eq!(one(&f, "litestream_db_size", &db), 4096.0);
        assert_eq!(one(&f, "litestream_wal_size", &db), 8272.0);
        assert_eq!(one(&f, "litestream_total_wal_bytes", &db), 99.0);
        assert_eq!(one(&f, "litestream_shadow_wal_index", &db), 3.0);
        assert_eq!(one(&f, "litestream_shadow_wal_size", &db), 5000.0);
        assert_eq!(one(&f, "litestream_sync_count", &db), 10.0);
        assert_eq!(one(&f, "litestream_sync_error_count", &db), 1.0);
        assert_eq!(one(&f, "litestream_sync_seconds", &db), 0.25);
        // Only the mode in use has series.
        assert_eq!(
            one(
                &f,
                "litestream_checkpoint_count",
                &["/data/app.db", "PASSIVE"]
            ),
            2.0
        );
        assert_eq!(samples(&f, "litestream_checkpoint_count").len(), 1);
        let r = ["/data/app.db", "s3"];
        assert_eq!(one(&f, "litestream_replica_wal_bytes", &r), 12345.0);
        assert_eq!(one(&f, "litestream_replica_wal_index", &r), 3.0);
        assert_eq!(one(&f, "litestream_replica_wal_offset", &r), 8272.0);
        for (status, n) in [("ok", 4.0), ("error", 1.0)] {
            let l = ["/data/app.db", "s3", status];
            assert_eq!(one(&f, "litestream_replica_validation_total", &l), n);
        }
        // Per replica type, summed over replicas; the file type is not counted (Litestream).
        assert_eq!(
            one(&f, "litestream_replica_operation_total", &["s3", "PUT"]),
            5.0
        );
        assert_eq!(
            one(&f, "litestream_replica_operation_bytes", &["s3", "PUT"]),
            500.0
        );
        assert_eq!(
            one(&f, "litestream_replica_operation_total", &["s3", "LIST"]),
            8.0
        );
        let types: Vec<_> = samples(&f, "litestream_replica_operation_total")
            .into_iter()
            .map(|(l, _)| l[0].clone())
            .collect();
        assert!(types.iter().all(|t| t == "s3"), "{types:?}");
        assert!(
            samples(&f, "litestream_replica_operation_bytes")
                .iter()
                .all(|(l, _)| l[1] == "GET" || l[1] == "PUT")
        );
    }

    #[test]
    fn walstream_families() {
        let f = families(&observation());
        let r = ["/data/app.db", "file"];
        assert_eq!(one(&f, "walstream_db_attached", &["/data/app.db"]), 1.0);
        assert_eq!(
            one(&f, "walstream_replica_last_sync_timestamp_seconds", &r),
            1000.0
        );
        assert_eq!(one(&f, "walstream_replica_lag_seconds", &r), 1.5);
        assert_eq!(one(&f, "walstream_replica_sync_errors_total", &r), 2.0);
        let transient = ["/data/app.db", "file", "transient"];
        assert_eq!(
            one(&f, "walstream_replica_storage_errors_total", &transient),
            3.0
        );
        assert_eq!(one(&f, "walstream_replica_storage_retries_total", &r), 7.0);
        let put = ["/data/app.db", "file", "PUT"];
        assert_eq!(
            one(&f, "walstream_replica_storage_operations_total", &put),
            5.0
        );
        assert_eq!(one(&f, "walstream_replica_uploaded_bytes_total", &r), 500.0);
        assert_eq!(one(&f, "walstream_replica_owner_conflict", &r), 0.0);
        assert_eq!(one(&f, "walstream_replica_source_damaged", &r), 0.0);
        // Unknown until a snapshot / a listing exists.
        assert!(samples(&f, "walstream_replica_latest_snapshot_timestamp_seconds").is_empty());
        assert!(
            samples(
                &f,
                "walstream_replica_oldest_restore_point_timestamp_seconds"
            )
            .is_empty()
        );
    }

    #[test]
    fn heartbeat_families_only_with_a_heartbeat() {
        let f = families(&observation());
        assert!(samples(&f, "walstream_heartbeat_pings_total").is_empty());
        assert!(samples(&f, "walstream_heartbeat_suppressed_total").is_empty());
        let mut obs = observation();
        obs.heartbeat = Some(crate::replicate::heartbeat::HeartbeatCounts {
            sent: 3,
            failed: 1,
            suppressed: 7,
        });
        for db_labels in [true, false] {
            let f = families_with(&obs, db_labels);
            assert_eq!(one(&f, "walstream_heartbeat_pings_total", &["ok"]), 3.0);
            assert_eq!(one(&f, "walstream_heartbeat_pings_total", &["failed"]), 1.0);
            assert_eq!(one(&f, "walstream_heartbeat_suppressed_total", &[]), 7.0);
        }
    }

    #[test]
    fn registry_renders_text_with_help_and_type() {
        let m = Metrics::new(Arc::new(observation), true).expect("registry");
        let text = m.render().expect("render");
        assert!(
            text.contains("# TYPE litestream_sync_count counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE litestream_db_size gauge\n"), "{text}");
        assert!(
            text.contains("litestream_db_size{db=\"/data/app.db\"} 4096\n"),
            "{text}"
        );
        assert!(content_type().starts_with("text/plain"));
    }

    /// The observation of [`observation`] repeated for `n` databases `/data/db-<i>.db`.
    fn fleet(n: usize) -> Observation {
        let one = observation().dbs.remove(0);
        let dbs = (0..n)
            .map(|i| DbObservation {
                id: format!("db-{i}.db"),
                path: PathBuf::from(format!("/data/db-{i}.db")),
                ..one.clone()
            })
            .collect();
        Observation {
            at: SystemTime::now(),
            dbs,
            heartbeat: None,
        }
    }

    #[test]
    fn without_db_labels_series_are_summed_maxed_or_dropped() {
        let mut obs = fleet(3);
        obs.dbs[0].replicas[1].status.owner_conflict = Some("other database".into());
        obs.dbs[2].replicas[0].status.owner_conflict = Some("other database".into());
        obs.dbs[1].replicas[2].status.source_damaged = Some("/data/db-1.db: page 6".into());
        obs.dbs[1].replicas[0].lag = Duration::from_secs(9);
        obs.dbs[2].attached = false;
        // One LTX replica (the only ones with a compaction verification count).
        obs.dbs[0].replicas[0].status.ltx_txid = Some(7);
        obs.dbs[0].replicas[0].status.compaction_verify_errors = 2;
        let f = families_with(&obs, false);
        for fam in &f {
            for m in fam.get_metric() {
                let names: Vec<&str> = m.get_label().iter().map(|l| l.name()).collect();
                assert!(
                    !names.contains(&"db") && !names.contains(&"name"),
                    "{}: {names:?}",
                    fam.name()
                );
            }
        }
        assert_eq!(one(&f, "litestream_db_size", &[]), 3.0 * 4096.0);
        assert_eq!(one(&f, "litestream_sync_count", &[]), 30.0);
        assert_eq!(one(&f, "litestream_checkpoint_count", &["PASSIVE"]), 6.0);
        // 3 databases × 3 replicas.
        assert_eq!(one(&f, "litestream_replica_wal_bytes", &[]), 9.0 * 12345.0);
        assert_eq!(
            one(&f, "litestream_replica_validation_total", &["ok"]),
            36.0
        );
        assert_eq!(
            one(&f, "litestream_replica_validation_total", &["error"]),
            9.0
        );
        assert_eq!(
            one(&f, "walstream_replica_storage_operations_total", &["PUT"]),
            3.0 * (5.0 + 2.0 + 3.0)
        );
        assert_eq!(
            one(&f, "walstream_replica_storage_errors_total", &["transient"]),
            27.0
        );
        assert_eq!(one(&f, "walstream_db_attached", &[]), 2.0);
        assert_eq!(one(&f, "walstream_replica_lag_seconds", &[]), 9.0);
        assert_eq!(one(&f, "walstream_replica_owner_conflict", &[]), 2.0);
        assert_eq!(one(&f, "walstream_replica_source_damaged", &[]), 1.0);
        assert_eq!(
            one(&f, "litestream_compaction_verify_error_count", &[]),
            2.0
        );
        // Per replica type already: the same as with labels.
        assert_eq!(
            one(&f, "litestream_replica_operation_total", &["s3", "PUT"]),
            15.0
        );
        for dropped in FAMILIES.iter().filter(|fam| fam.fleet == Fold::Drop) {
            assert!(samples(&f, dropped.name).is_empty(), "{}", dropped.name);
        }
        // Every other family keeps its series (the heartbeat's only exist with a heartbeat).
        let kept = FAMILIES.iter().filter(|fam| {
            fam.fleet != Fold::Drop
                && !fam.name.contains("checkpoint_")
                && !fam.name.starts_with("walstream_heartbeat_")
        });
        for fam in kept {
            assert!(!samples(&f, fam.name).is_empty(), "{}", fam.name);
        }
    }

    #[test]
    fn default_rendering_keeps_db_labels() {
        let obs = fleet(2);
        assert_eq!(
            samples(&families_with(&obs, true), "litestream_db_size").len(),
            2
        );
        let text = Metrics::new(Arc::new(|| fleet(2)), false)
            .expect("registry")
            .render()
            .expect("render");
        assert!(text.contains("\nlitestream_db_size 8192\n"), "{text}");
        assert!(!text.contains("db=\""), "{text}");
    }

    /// Not a timing assertion: prints the render time of a 10,000-database fleet (3 replicas
    /// each) with and without database labels (`cargo test --lib metrics -- --nocapture`).
    #[test]
    fn render_time_of_ten_thousand_databases() {
        let obs = Arc::new(fleet(10_000));
        for db_labels in [true, false] {
            let source = Arc::clone(&obs);
            let m = Metrics::new(Arc::new(move || (*source).clone()), db_labels).expect("registry");
            let started = std::time::Instant::now();
            let text = m.render().expect("render");
            println!(
                "metrics render, 10000 dbs × 3 replicas, db labels {db_labels}: {:?}, {} bytes, {} lines",
                started.elapsed(),
                text.len(),
                text.lines().count()
            );
        }
    }

    #[test]
    fn ltx_replica_exports_its_txid_and_v03_replicas_do_not() {
        let mut obs = observation();
        assert!(samples(&families(&obs), "litestream_txid").is_empty());
        obs.dbs[0].replicas[0].status.ltx_txid = Some(0x2a);
        obs.dbs[0].replicas[0].status.compaction_verify_errors = 3;
        let f = families(&obs);
        assert_eq!(one(&f, "litestream_txid", &["/data/app.db"]), 42.0);
        assert_eq!(
            one(
                &f,
                "litestream_compaction_verify_error_count",
                &["/data/app.db"]
            ),
            3.0
        );
    }

    #[test]
    fn every_family_is_documented() {
        let doc = include_str!("../docs/metrics.md");
        for f in FAMILIES {
            let row = format!(
                "| `{}` | {} |",
                f.name,
                if f.counter { "counter" } else { "gauge" }
            );
            assert!(
                doc.contains(&row),
                "docs/metrics.md lacks the row starting {row:?}"
            );
            for l in f.labels {
                assert!(
                    doc.contains(&format!("`{l}`")),
                    "label {l} of {} undocumented",
                    f.name
                );
            }
        }
    }
}
