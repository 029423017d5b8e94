//! JSON documents of the `/api/v1` and `/readyz` endpoints (documented in `docs/http-api.md`)
//! and their construction from an [`Observation`]. Deserialisable too, for `walstream status`.
//!
//! What must stay true: times are RFC 3339 UTC strings with as many fraction digits as needed
//! (restore-point times are exact storage times, usable as `restore -timestamp`); replica URLs
//! come from `ReplicaClient::describe()` and never hold credentials; a field is `null` when
//! unknown rather than absent; adding fields is compatible, renaming is not.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

pub use super::api_backups::BackupsDoc;
use crate::db::Pos;
use crate::state::restore_points::{GenerationPoints, ReplicaPoints};
use crate::state::{DbObservation, Observation, ReplicaObservation};

/// RFC 3339 UTC with the needed fraction digits, e.g. `2026-11-22T02:48:45.123456789Z`.
pub fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn opt_time(t: Option<SystemTime>) -> Option<String> {
    t.map(rfc3339)
}

/// A replica position (spec §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub generation: String,
    pub index: u32,
    pub offset: u64,
}

impl From<&Pos> for Position {
    fn from(p: &Pos) -> Self {
        Position {
            generation: p.generation.clone(),
            index: p.index,
            offset: p.offset,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{:08x}:{}", self.generation, self.index, self.offset)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedError {
    pub time: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub time: String,
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub generation: String,
    pub index: u32,
    pub time: String,
}

/// `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    pub version: String,
    pub time: String,
    pub databases: Vec<DatabaseStatus>,
    /// Present only when the request had paging or filter parameters.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub page: Option<PageDoc>,
}

/// Where a page of `GET /api/v1/status?…` sits among the matching databases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageDoc {
    /// Databases matching `q` and `state` (on every page).
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    /// Path and query of the next page; `null` on the last one.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    /// URL id (`/api/v1/databases/{name}/…`).
    pub name: String,
    pub path: String,
    pub attached: bool,
    /// Main database file size (bytes).
    pub size: u64,
    pub wal_size: u64,
    pub page_size: u32,
    pub generation: Option<String>,
    /// End of the shadow WAL: everything committed that walstream has seen.
    pub position: Option<Position>,
    pub last_sync: Option<String>,
    pub last_checkpoint: Option<Checkpoint>,
    /// Error of the last sync tick (`null` once a tick succeeds).
    pub last_error: Option<String>,
    /// Since when sync ticks keep failing.
    pub failing_since: Option<String>,
    pub replicas: Vec<ReplicaStatusDoc>,
    /// The backups folder's summary (`null` until it was first listed).
    #[serde(default)]
    pub backups: Option<BackupsDoc>,
    /// The last restore drill (`null` until one ran).
    #[serde(default)]
    pub drill: Option<DrillDoc>,
}

/// `databases[].drill`: the last restore drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillDoc {
    pub finished: String,
    pub ok: bool,
    pub duration_seconds: f64,
    /// The first replica's latest point restored and checked (`null`: no replica).
    pub replica: Option<crate::admin::drill::DrillPart>,
    /// The newest backup (not `pre-restore`) copied, verified and checked (`null`: none).
    pub backup: Option<crate::admin::drill::DrillPart>,
}

impl DrillDoc {
    pub fn from_report(r: &crate::admin::drill::DrillReport) -> DrillDoc {
        DrillDoc {
            finished: rfc3339(r.finished),
            ok: r.ok,
            duration_seconds: r.duration_seconds,
            replica: r.replica.clone(),
            backup: r.backup.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatusDoc {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Credential-free description of the location.
    pub url: String,
    /// Last position known to be in storage.
    pub position: Option<Position>,
    /// LTX replicas: the highest TXID stored, 16 hex digits as Litestream v0.5 prints it
    /// (absent for v0.3 replicas and before the first round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
    pub last_sync: Option<String>,
    /// Age of the oldest commit not yet in storage (0 when caught up).
    pub lag_seconds: f64,
    pub last_error: Option<TimedError>,
    pub error_count: u64,
    pub failure_streak: u32,
    pub latest_snapshot: Option<SnapshotRef>,
    pub oldest_restore_point: Option<String>,
    /// When the restore points were last listed from storage.
    pub restore_points_refreshed_at: Option<String>,
    /// The last validation (`validation-interval`); `null` before the first one.
    #[serde(default)]
    pub validation: Option<ValidationDoc>,
    /// Set while another database owns the replica path: the refusal (nothing is written).
    #[serde(default)]
    pub owner_conflict: Option<String>,
    /// Set while the database fails `PRAGMA quick_check` before this replica's snapshots:
    /// the finding (snapshots are refused; the latest restore point stays the last good one).
    #[serde(default)]
    pub source_damaged: Option<String>,
}

/// Result of a replica's last validation (spec §4.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationDoc {
    pub last_at: String,
    /// `ok`, `mismatch` or `error`.
    pub status: String,
    /// Why it failed (`null` when `ok`).
    pub message: Option<String>,
    /// The position validated against.
    pub position: Option<Position>,
    /// LTX (v0.5) replicas: the TXID restored and compared, 16 hex digits (absent for v0.3
    /// replicas and when no TXID was fixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
    /// CRC-64/ISO as 16 hex digits, like the `validator` log line.
    pub db_checksum: Option<String>,
    pub replica_checksum: Option<String>,
    /// Validations since start: `ok`, and mismatches plus errors.
    pub ok_count: u64,
    pub error_count: u64,
}

impl StatusDoc {
    pub fn from_observation(obs: &Observation) -> Self {
        StatusDoc {
            version: env!("CARGO_PKG_VERSION").to_string(),
            time: rfc3339(obs.at),
            databases: obs.dbs.iter().map(database_status).collect(),
            page: None,
        }
    }

    /// One page of a filtered listing.
    pub fn page(at: SystemTime, dbs: &[DbObservation], page: PageDoc) -> Self {
        StatusDoc {
            version: env!("CARGO_PKG_VERSION").to_string(),
            time: rfc3339(at),
            databases: dbs.iter().map(database_status).collect(),
            page: Some(page),
        }
    }
}

fn database_status(db: &DbObservation) -> DatabaseStatus {
    DatabaseStatus {
        name: db.id.clone(),
        path: db.path.display().to_string(),
        attached: db.attached,
        size: db.state.db_size,
        wal_size: db.state.wal_size,
        page_size: db.state.page_size,
        generation: db.state.generation.clone(),
        position: db.state.pos.as_ref().map(Position::from),
        last_sync: opt_time(db.state.last_sync),
        last_checkpoint: db.stats.last_checkpoint.map(|(t, mode)| Checkpoint {
            time: rfc3339(t),
            mode: mode.as_str().to_string(),
        }),
        last_error: db.state.last_error.clone(),
        failing_since: opt_time(db.failing_since),
        replicas: db.replicas.iter().map(replica_status).collect(),
        backups: db
            .backups
            .as_ref()
            .map(|b| BackupsDoc::from_summary(b, rfc3339)),
        drill: db.drill.as_ref().map(DrillDoc::from_report),
    }
}

fn replica_status(r: &ReplicaObservation) -> ReplicaStatusDoc {
    let st = &r.status;
    ReplicaStatusDoc {
        name: st.name.clone(),
        kind: r.replica_type.to_string(),
        url: r.url.clone(),
        position: st.position.as_ref().map(Position::from),
        txid: st.ltx_txid.map(|t| format!("{t:016x}")),
        last_sync: opt_time(st.last_sync),
        lag_seconds: r.lag.as_secs_f64(),
        last_error: st.last_error.as_ref().map(|(t, m)| TimedError {
            time: rfc3339(*t),
            message: m.clone(),
        }),
        error_count: st.error_count,
        failure_streak: st.failure_streak,
        latest_snapshot: r
            .latest_snapshot()
            .map(|(generation, index, t)| SnapshotRef {
                generation,
                index,
                time: rfc3339(t),
            }),
        oldest_restore_point: opt_time(r.points.oldest_restore_point()),
        restore_points_refreshed_at: opt_time(r.points.refreshed_at),
        validation: validation_doc(st),
        owner_conflict: st.owner_conflict.clone(),
        source_damaged: st.source_damaged.clone(),
    }
}

fn validation_doc(st: &crate::replica::ReplicaStatus) -> Option<ValidationDoc> {
    let v = st.validation.as_ref()?;
    Some(ValidationDoc {
        last_at: rfc3339(v.at),
        status: v.outcome.as_str().to_string(),
        message: v.message.clone(),
        position: v.position.as_ref().map(Position::from),
        txid: v.txid.map(crate::ltx::format_txid),
        db_checksum: v.db_checksum.map(|c| format!("{c:016x}")),
        replica_checksum: v.replica_checksum.map(|c| format!("{c:016x}")),
        ok_count: st.validations_ok,
        error_count: st.validations_failed,
    })
}

/// `GET /api/v1/databases/{db}/restore-points`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestorePointsDoc {
    pub database: String,
    pub path: String,
    pub replicas: Vec<ReplicaRestorePoints>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRestorePoints {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub refreshed_at: Option<String>,
    /// True when the replica stored or deleted objects after this listing started and a new
    /// listing did not finish within the request's wait.
    #[serde(default)]
    pub stale: bool,
    pub error: Option<TimedError>,
    pub oldest_restore_point: Option<String>,
    pub generations: Vec<GenerationDoc>,
    /// The LTX layout, for a replica that writes it (`null` otherwise).
    #[serde(default)]
    pub ltx: Option<LtxPointsDoc>,
}

/// The levels and L9 snapshots of an LTX replica (times from the storage listing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LtxPointsDoc {
    /// Any `-timestamp` from here on restores (the oldest snapshot, or the oldest file of a
    /// level still starting at TXID 1); a later time than `restorable_to` restores the latest.
    pub restorable_from: Option<String>,
    pub restorable_to: Option<String>,
    pub levels: Vec<LtxLevelDoc>,
    pub snapshots: Vec<LtxSnapshotDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LtxLevelDoc {
    pub level: u8,
    pub files: usize,
    pub size: u64,
    /// 16 hex digits, as `walstream ltx` and Litestream print TXIDs.
    pub min_txid: String,
    pub max_txid: String,
    pub oldest: String,
    pub newest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LtxSnapshotDoc {
    pub max_txid: String,
    pub size: u64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationDoc {
    pub generation: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// Any `-timestamp` in `[restorable_from, restorable_to]` restores this generation.
    pub restorable_from: Option<String>,
    pub restorable_to: Option<String>,
    pub snapshots: Vec<SnapshotDoc>,
    pub wal: Vec<WalSpanDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDoc {
    pub index: u32,
    pub size: u64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalSpanDoc {
    pub index: u32,
    pub segments: usize,
    pub first_offset: u64,
    pub last_offset: u64,
    pub size: u64,
    pub first_created_at: String,
    pub last_created_at: String,
}

impl RestorePointsDoc {
    pub fn from_observation(db: &DbObservation) -> Self {
        RestorePointsDoc {
            database: db.id.clone(),
            path: db.path.display().to_string(),
            replicas: db
                .replicas
                .iter()
                .map(|r| replica_points(r, &r.points))
                .collect(),
        }
    }
}

fn replica_points(r: &ReplicaObservation, p: &ReplicaPoints) -> ReplicaRestorePoints {
    ReplicaRestorePoints {
        name: r.status.name.clone(),
        kind: r.replica_type.to_string(),
        url: r.url.clone(),
        refreshed_at: opt_time(p.refreshed_at),
        stale: crate::state::restore_points::is_stale(p, &r.status),
        error: p.error.as_ref().map(|(t, m)| TimedError {
            time: rfc3339(*t),
            message: m.clone(),
        }),
        oldest_restore_point: opt_time(p.oldest_restore_point()),
        generations: p.generations.iter().map(generation_doc).collect(),
        ltx: p.ltx.as_ref().map(ltx_doc),
    }
}

fn ltx_doc(l: &crate::state::restore_points::LtxPoints) -> LtxPointsDoc {
    let txid = crate::ltx::format_txid;
    LtxPointsDoc {
        restorable_from: opt_time(l.restorable_from()),
        restorable_to: opt_time(l.restorable_to()),
        levels: l
            .levels
            .iter()
            .map(|v| LtxLevelDoc {
                level: v.level,
                files: v.files,
                size: v.size,
                min_txid: txid(v.min_txid),
                max_txid: txid(v.max_txid),
                oldest: rfc3339(v.oldest),
                newest: rfc3339(v.newest),
            })
            .collect(),
        snapshots: l
            .snapshots
            .iter()
            .map(|s| LtxSnapshotDoc {
                max_txid: txid(s.max_txid),
                size: s.size,
                created_at: rfc3339(s.created_at),
            })
            .collect(),
    }
}

fn generation_doc(g: &GenerationPoints) -> GenerationDoc {
    GenerationDoc {
        generation: g.generation.clone(),
        created_at: opt_time(g.created_at),
        updated_at: opt_time(g.updated_at),
        restorable_from: opt_time(g.restorable_from()),
        restorable_to: opt_time(g.restorable_to()),
        snapshots: g
            .snapshots
            .iter()
            .map(|s| SnapshotDoc {
                index: s.index,
                size: s.size,
                created_at: rfc3339(s.created_at),
            })
            .collect(),
        wal: g
            .wal
            .iter()
            .map(|w| WalSpanDoc {
                index: w.index,
                segments: w.segments,
                first_offset: w.first_offset,
                last_offset: w.last_offset,
                size: w.size,
                first_created_at: rfc3339(w.first_created_at),
                last_created_at: rfc3339(w.last_created_at),
            })
            .collect(),
    }
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyDoc {
    pub ready: bool,
    pub max_lag_seconds: f64,
    pub problems: Vec<Problem>,
}

/// Why one database or replica is not ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub db: String,
    /// `null` for database-level problems.
    pub replica: Option<String>,
    pub reason: String,
}

/// Readiness: every database attached and syncing, every replica synced at least once,
/// lagging at most `max_lag` and not refused by another database's owner record.
pub fn readiness(obs: &Observation, max_lag: Duration) -> ReadyDoc {
    let mut problems = Vec::new();
    let age = |t: SystemTime| obs.at.duration_since(t).unwrap_or(Duration::ZERO);
    let limit = crate::gofmt::format_go_duration(max_lag.as_nanos() as i128);
    for db in &obs.dbs {
        let mut problem = |replica: Option<&str>, reason: String| {
            problems.push(Problem {
                db: db.id.clone(),
                replica: replica.map(str::to_string),
                reason,
            })
        };
        if !db.attached {
            problem(None, "database not attached".into());
            continue;
        }
        if let Some(since) = db.failing_since.filter(|&t| age(t) > max_lag) {
            let err = db.state.last_error.clone().unwrap_or_default();
            let secs = age(since).as_secs_f64();
            problem(
                None,
                format!("sync failing for {secs:.1}s (> {limit}): {err}"),
            );
        }
        for r in &db.replicas {
            let name = Some(r.status.name.as_str());
            if let Some(conflict) = &r.status.owner_conflict {
                problem(name, format!("replica refused: {conflict}"));
            } else if let Some(damage) = &r.status.source_damaged {
                problem(
                    name,
                    format!("database fails quick_check, not snapshotted: {damage}"),
                );
            } else if r.status.last_sync.is_none() {
                problem(name, "replica has not completed a sync yet".into());
            } else if r.lag > max_lag {
                let lag = r.lag.as_secs_f64();
                let mut reason = format!("replica lag {lag:.1}s exceeds {limit}");
                if let Some((_, e)) = r
                    .status
                    .last_error
                    .as_ref()
                    .filter(|_| r.status.failure_streak > 0)
                {
                    reason.push_str(&format!(": {e}"));
                }
                problem(name, reason);
            }
        }
    }
    ReadyDoc {
        ready: problems.is_empty(),
        max_lag_seconds: max_lag.as_secs_f64(),
        problems,
    }
}

/// Body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDoc {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replica: Option<String>,
}

/// `POST /api/v1/databases/{db}/sync`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncDoc {
    pub database: String,
    /// The database position every replica now holds.
    pub position: Position,
    pub replicas: Vec<ReplicaPosition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaPosition {
    pub name: String,
    pub position: Position,
}

/// `POST /api/v1/databases/{db}/snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotTakenDoc {
    pub database: String,
    pub replicas: Vec<SnapshotTaken>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotTaken {
    pub name: String,
    pub generation: String,
    pub index: u32,
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
