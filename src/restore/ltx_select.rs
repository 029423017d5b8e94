//! Restoring from a replica that may hold Litestream v0.5 (LTX) files: which layout to use,
//! listing the levels, and the entry point [`restore_auto`] the CLI calls.
//!
//! Layout choice, as v0.5.17 makes it (spec §5.5, `Replica.Restore`/`shouldUseV3Restore`):
//! - no LTX file at any level → the v0.3 restore ([`super::restore`]), unchanged;
//! - `-generation` or `-index` (v0.3-only flags) → the v0.3 restore;
//! - `-txid` → LTX;
//! - both layouts on a file or S3 replica (the only backends where v0.5.17 reads v0.3): without
//!   `-timestamp`, v0.3 if its newest snapshot or WAL segment is newer than the newest LTX file;
//!   with `-timestamp`, v0.3 if its best snapshot at or before T (by creation time) is newer than
//!   the best L9 snapshot strictly before T (or there is no such L9 snapshot);
//! - otherwise LTX. On GCS and Azure v0.5.17 never reads v0.3, so LTX wins there whenever it
//!   exists.
//!
//! When a replica with LTX files is restored from its v0.3 layout, the generation is chosen as
//! v0.5.17 chooses it ([`super::restore_v05_fallback`]), not as v0.3.13 does: a `-timestamp`
//! after the last v0.3 write (say between the v0.3 and the first LTX run) restores the whole
//! generation instead of "no matching backups found". With `-generation` or `-index` the v0.3
//! restore runs unchanged.
//!
//! What must stay true: the log says which layout was used and why; a replica without LTX files
//! behaves exactly as before (same requests, same messages).

use chrono::{DateTime, Utc};
use tracing::{Instrument, info};

use crate::storage::{LtxFileInfo, ReplicaClient, SNAPSHOT_LEVEL, StorageError, Timestamps};

use super::error::RestoreError;
use super::ltx_apply::{LtxSummary, execute_ltx};
use super::ltx_plan::{Levels, LtxPlanError, LtxTarget, plan};
use super::{Outcome, ReplicaRef, RestoreRequest};

/// The v0.5-only parts of a restore request.
#[derive(Debug, Clone, Copy, Default)]
pub struct LtxRequest {
    /// `-txid` (16 hex digits; `None` = latest).
    pub txid: Option<u64>,
    /// `-dry-run`: plan only, write nothing.
    pub dry_run: bool,
}

/// How [`restore_auto`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoOutcome {
    /// The v0.3 layout was restored (or skipped with `-if-replica-exists`).
    V3(Outcome),
    Ltx {
        replica_type: &'static str,
        summary: LtxSummary,
    },
    /// `-dry-run`: the files that would be fetched, in order, and the replica type.
    Plan {
        replica_type: &'static str,
        files: Vec<LtxFileInfo>,
    },
    /// `-dry-run` on the v0.3 layout: the replica's name and the plan.
    PlanV3 {
        replica: String,
        plan: super::RestorePlan,
    },
    /// No LTX file matched and `-if-replica-exists` was given.
    NoBackups,
}

/// Which layout a restore reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V3,
    Ltx,
}

fn list_err(client: &ReplicaClient, e: StorageError) -> RestoreError {
    RestoreError::List {
        replica: client.describe(),
        source: Box::new(e),
    }
}

/// Lists levels 0..=9 (index = level).
pub async fn list_levels(
    client: &ReplicaClient,
    timestamps: Timestamps,
) -> Result<Levels, RestoreError> {
    let mut levels = Vec::with_capacity(usize::from(SNAPSHOT_LEVEL) + 1);
    for level in 0..=SNAPSHOT_LEVEL {
        let files = client
            .ltx_files(level, timestamps)
            .await
            .map_err(|e| list_err(client, e))?;
        levels.push(files);
    }
    Ok(levels)
}

/// Restores from `replicas`, reading the LTX layout where a replica has one (module rules).
pub async fn restore_auto(
    replicas: &[ReplicaRef<'_>],
    req: &RestoreRequest,
    ltx: &LtxRequest,
) -> Result<AutoOutcome, RestoreError> {
    if ltx.txid.is_some() && req.timestamp.is_some() {
        return Err(RestoreError::IndexAndTimestamp);
    }
    let mut with_ltx = None;
    for r in replicas {
        if r.client
            .has_ltx_files()
            .await
            .map_err(|e| list_err(r.client, e))?
        {
            with_ltx = Some(*r);
            break;
        }
    }
    let Some(replica) = with_ltx else {
        if ltx.txid.is_some() {
            return not_available(req);
        }
        if ltx.dry_run {
            return plan_v3(replicas, req, false).await;
        }
        return super::restore(replicas, req).await.map(AutoOutcome::V3);
    };
    let (layout, why) = choose_layout(replica.client, req, ltx).await?;
    if ltx.dry_run {
        // v0.5.17 prints only the plan (its log goes to stdout in config mode).
        tracing::debug!(replica = %replica.name, layout = layout_name(layout), reason = why, "restore layout");
    } else {
        info!(replica = %replica.name, layout = layout_name(layout), reason = why, "restore layout");
    }
    if layout == Layout::V3 {
        let v3_flags = req.generation.as_deref().is_some_and(|g| !g.is_empty())
            || req.index.is_some_and(|n| n != super::plan::NO_INDEX);
        if ltx.dry_run {
            return plan_v3(&[replica], req, !v3_flags).await;
        }
        let restored = match v3_flags {
            true => super::restore(&[replica], req).await,
            false => super::restore_v05_fallback(replica, req).await,
        };
        return restored.map(AutoOutcome::V3);
    }
    let timestamps = match req.timestamp {
        Some(_) => Timestamps::Metadata,
        None => Timestamps::Listing,
    };
    let levels = list_levels(replica.client, timestamps).await?;
    let target = LtxTarget {
        txid: ltx.txid,
        timestamp: req.timestamp,
    };
    let files = match plan(&levels, &target) {
        Ok(files) => files,
        Err(LtxPlanError::NotAvailable) => return not_available(req),
        Err(e) => return Err(e.into()),
    };
    if ltx.dry_run {
        let replica_type = replica.client.replica_type();
        return Ok(AutoOutcome::Plan {
            replica_type,
            files,
        });
    }
    if req.output.symlink_metadata().is_ok() {
        return Err(RestoreError::OutputExists(req.output.clone()));
    }
    let span = tracing::info_span!("restore", replica = %replica.name);
    let executed = execute_ltx(replica.client, &files, &req.output, &req.exec)
        .instrument(span)
        .await;
    let summary = match executed {
        Err(e)
            if e.is_damage()
                && target.txid.is_none_or(|t| t == 0)
                && target.timestamp.is_none() =>
        {
            let top = files.iter().map(|f| f.max_txid).max().unwrap_or(0);
            let good = super::ltx_fallback::newest_good_txid(replica, &levels, top, req).await;
            return Err(RestoreError::LatestDamaged {
                source: Box::new(e),
                good,
            });
        }
        other => other?,
    };
    Ok(AutoOutcome::Ltx {
        replica_type: replica.client.replica_type(),
        summary,
    })
}

/// `-dry-run` on the v0.3 layout: its plan, or "no matching backups found" (a success with
/// `-if-replica-exists`).
async fn plan_v3(
    replicas: &[ReplicaRef<'_>],
    req: &RestoreRequest,
    v05: bool,
) -> Result<AutoOutcome, RestoreError> {
    match super::plan_v3(replicas, req, v05).await? {
        Some((replica, plan)) => Ok(AutoOutcome::PlanV3 { replica, plan }),
        None if req.if_replica_exists => {
            info!("no matching backups found");
            Ok(AutoOutcome::NoBackups)
        }
        None => Err(RestoreError::NoMatchingBackups),
    }
}

fn not_available(req: &RestoreRequest) -> Result<AutoOutcome, RestoreError> {
    if req.if_replica_exists {
        info!("no matching backups found");
        return Ok(AutoOutcome::NoBackups);
    }
    Err(LtxPlanError::NotAvailable.into())
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::V3 => "v0.3 generations",
        Layout::Ltx => "v0.5 ltx",
    }
}

/// Chooses the layout for a replica that holds LTX files (module rules).
pub async fn choose_layout(
    client: &ReplicaClient,
    req: &RestoreRequest,
    ltx: &LtxRequest,
) -> Result<(Layout, &'static str), RestoreError> {
    let v3_flags =
        req.generation.is_some() || req.index.is_some_and(|i| i != super::plan::NO_INDEX);
    if v3_flags {
        return Ok((Layout::V3, "-generation/-index are v0.3 flags"));
    }
    if ltx.txid.is_some() {
        return Ok((Layout::Ltx, "-txid given"));
    }
    if !matches!(client.replica_type(), "file" | "s3") {
        return Ok((Layout::Ltx, "v0.5.17 reads v0.3 only on file and s3"));
    }
    let v3 = v3_times(client).await?;
    if v3.is_empty() {
        return Ok((Layout::Ltx, "no v0.3 generations"));
    }
    match req.timestamp {
        None => {
            let levels = list_levels(client, Timestamps::Listing).await?;
            let ltx_newest = levels.iter().flatten().map(|f| f.created_at).max();
            let v3_newest = v3.iter().map(|t| t.1).max();
            if v3_newest > ltx_newest {
                Ok((Layout::V3, "v0.3 generations hold the newer backup"))
            } else {
                Ok((Layout::Ltx, "ltx files hold the newer backup"))
            }
        }
        Some(t) => {
            let snaps = client
                .ltx_files(SNAPSHOT_LEVEL, Timestamps::Metadata)
                .await
                .map_err(|e| list_err(client, e))?;
            let ltx_best = snaps.iter().rfind(|f| f.created_at < t);
            let v3_best = v3
                .iter()
                .filter(|(is_snapshot, at)| *is_snapshot && *at <= t)
                .map(|t| t.1)
                .max();
            match (v3_best, ltx_best) {
                (Some(_), None) => Ok((Layout::V3, "only v0.3 has a snapshot before -timestamp")),
                (Some(v), Some(l)) if v > l.created_at => {
                    Ok((Layout::V3, "v0.3 has the newer snapshot before -timestamp"))
                }
                _ => Ok((Layout::Ltx, "ltx has the newer snapshot before -timestamp")),
            }
        }
    }
}

/// (is a snapshot, created at) of every v0.3 snapshot and WAL segment.
async fn v3_times(client: &ReplicaClient) -> Result<Vec<(bool, DateTime<Utc>)>, RestoreError> {
    let err = |e| list_err(client, e);
    let mut out = Vec::new();
    for generation in client.generations().await.map_err(err)? {
        for s in client.snapshots(&generation).await.map_err(err)? {
            out.push((true, s.created_at));
        }
        for s in client.wal_segments(&generation).await.map_err(err)? {
            out.push((false, s.created_at));
        }
    }
    Ok(out)
}
