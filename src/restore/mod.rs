//! Point-in-time restore (spec §5): choose replica/generation/snapshot/segments exactly as
//! Litestream v0.3.13 does, download in parallel, apply the WAL, verify, move into place.
//!
//! Pieces: [`plan`] (pure choice rules), [`select`] (listing replicas), [`fetch`] (download +
//! LZ4), [`apply`] (snapshot and WAL frames onto the file, strictly validated), [`verify`]
//! (`integrity_check`, reading through `verify_vfs`), [`output`] (temporary files and the
//! atomic move), [`execute`] (the pipeline), [`fallback`] (the newest intact point named when the
//! latest is damaged), `task` (worker panics as errors, downloads aborted
//! with the restore), [`progress`] (terminal progress bar). Litestream v0.5 (LTX) replicas:
//! [`ltx_select`] (layout choice and the entry point the CLI calls), [`ltx_plan`] (v0.5.17's
//! plan), [`ltx_apply`] (download, decode, apply; same output/verify path).
//!
//! What must stay true:
//! - Same restore point and same bytes as `litestream restore` on every replica it accepts;
//!   anything Litestream would silently restore short (gaps, broken checksums, truncated
//!   objects) is an error naming the object key — never a silently older database.
//! - Nothing appears at the output path unless the whole restore and its check succeeded, and
//!   nothing is left beside it after a failure.
//! - The order of checks (and so which message wins) follows Litestream: choose the target
//!   (`no matching backups found`), then `-index` + `-timestamp`, then the output-exists check.
//! - A `-timestamp` restore that lands in a gap without WAL (a snapshot kept by
//!   `snapshot-tiers`: [`plan::wal_gap`]) restores the same point as Litestream and says so in
//!   one warning naming the snapshot's time.

pub mod apply;
pub mod error;
pub mod execute;
pub mod fallback;
pub mod fetch;
pub mod flush;
pub mod ltx_apply;
pub mod ltx_fallback;
pub mod ltx_plan;
pub mod ltx_select;
pub mod output;
pub mod plan;
pub mod progress;
pub mod select;
mod task;
#[doc(hidden)]
pub mod testkit;
pub mod verify;
mod verify_vfs;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tracing::{Instrument, info, warn};

pub use error::RestoreError;
pub use execute::{DEFAULT_PARALLELISM, ExecOptions, RestoreSummary, execute};
pub use plan::{GenerationListing, RestorePlan, Target};
pub use select::{Choice, ReplicaRef, choose_target};
pub use verify::IntegrityCheck;

/// A restore as asked for on the command line, after the source replicas are resolved.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub output: PathBuf,
    /// `-generation` (restrict the search to this generation).
    pub generation: Option<String>,
    /// `-index` (already parsed from hex; `i32::MAX` means none, as in Litestream).
    pub index: Option<i64>,
    /// `-timestamp`.
    pub timestamp: Option<DateTime<Utc>>,
    pub exec: ExecOptions,
    /// `-if-replica-exists`: no backups is a success.
    pub if_replica_exists: bool,
}

/// How a restore ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Restored(RestoreSummary),
    /// No backup matched and `-if-replica-exists` was given.
    NoBackups,
}

/// Chooses the target among `replicas`, plans and executes the restore.
pub async fn restore(
    replicas: &[ReplicaRef<'_>],
    req: &RestoreRequest,
) -> Result<Outcome, RestoreError> {
    let target = Target::from_flags(req.index, req.timestamp);
    let Some((replica, listing)) = choose_v3(replicas, req, &target).await? else {
        return no_match(req);
    };
    match restore_listing(replica, &listing, &target, req).await {
        Err(e) if e.is_damage() && target == Target::Latest && req.generation.is_none() => {
            let good = fallback::newest_good_point(replica, &listing, req).await;
            Err(RestoreError::LatestDamaged {
                source: Box::new(e),
                good,
            })
        }
        other => other,
    }
}

/// The replica and generation Litestream v0.3.13 restores from (`None`: no match).
async fn choose_v3<'a>(
    replicas: &[ReplicaRef<'a>],
    req: &RestoreRequest,
    target: &Target,
) -> Result<Option<(ReplicaRef<'a>, GenerationListing)>, RestoreError> {
    let parallelism = req.exec.parallelism.max(1);
    let generation = req.generation.as_deref().filter(|g| !g.is_empty());
    let choice = choose_target(replicas, generation, target, parallelism).await?;
    Ok(choice.map(|c| (replicas[c.replica], c.listing)))
}

/// A v0.3 restore's plan without running it (`restore -dry-run` on the v0.3 layout): the replica
/// name and the snapshot and WAL segments it would apply; `None` when nothing matches. `v05`
/// chooses the generation as [`restore_v05_fallback`] does.
pub async fn plan_v3(
    replicas: &[ReplicaRef<'_>],
    req: &RestoreRequest,
    v05: bool,
) -> Result<Option<(String, RestorePlan)>, RestoreError> {
    let target = Target::from_flags(req.index, req.timestamp);
    if req.timestamp.is_some() && req.index.is_some_and(|n| n != plan::NO_INDEX) {
        return Err(RestoreError::IndexAndTimestamp);
    }
    let chosen = match (v05, replicas.first()) {
        (true, Some(&replica)) => choose_v05(replica, req, &target)
            .await?
            .map(|l| (replica, l)),
        _ => choose_v3(replicas, req, &target).await?,
    };
    let Some((replica, listing)) = chosen else {
        return Ok(None);
    };
    Ok(Some((
        replica.name.to_string(),
        plan::plan(&listing, &target)?,
    )))
}

/// The v0.3 layout of a replica that also holds LTX files, read as Litestream v0.5.17 reads it
/// there ([`plan::choose_generation_v05`]: the newest snapshot at or before `-timestamp` over
/// every generation, then that generation's WAL up to the timestamp). The plan and its checks
/// are the same as [`restore`]'s.
pub async fn restore_v05_fallback(
    replica: ReplicaRef<'_>,
    req: &RestoreRequest,
) -> Result<Outcome, RestoreError> {
    let target = Target::from_flags(req.index, req.timestamp);
    let Some(listing) = choose_v05(replica, req, &target).await? else {
        return no_match(req);
    };
    restore_listing(replica, &listing, &target, req).await
}

/// The generation Litestream v0.5.17 restores from in `replica`'s v0.3 layout
/// ([`plan::choose_generation_v05`]); `None`: no snapshot at or before the target.
async fn choose_v05(
    replica: ReplicaRef<'_>,
    req: &RestoreRequest,
    target: &Target,
) -> Result<Option<GenerationListing>, RestoreError> {
    let parallelism = req.exec.parallelism.max(1);
    let listings = select::list_generations(replica, None, parallelism).await?;
    Ok(plan::choose_generation_v05(&listings, target).cloned())
}

/// No generation matched: `-if-replica-exists` makes it a success.
fn no_match(req: &RestoreRequest) -> Result<Outcome, RestoreError> {
    if req.if_replica_exists {
        info!("no matching backups found");
        return Ok(Outcome::NoBackups);
    }
    Err(RestoreError::NoMatchingBackups)
}

/// The checks after the choice (in Litestream's order), the plan and its execution.
async fn restore_listing(
    replica: ReplicaRef<'_>,
    listing: &GenerationListing,
    target: &Target,
    req: &RestoreRequest,
) -> Result<Outcome, RestoreError> {
    if req.timestamp.is_some() && req.index.is_some_and(|n| n != plan::NO_INDEX) {
        return Err(RestoreError::IndexAndTimestamp);
    }
    if req.output.symlink_metadata().is_ok() {
        return Err(RestoreError::OutputExists(req.output.clone()));
    }
    let plan = plan::plan(listing, target)?;
    if let Some((at, next)) = plan::wal_gap(listing, &plan, target) {
        let (at, next) = (
            crate::gofmt::rfc3339_seconds(at),
            crate::gofmt::rfc3339_seconds(next),
        );
        warn!(
            generation = %plan.generation,
            index = plan.snapshot.index,
            "the replica keeps no WAL between {at} and {next}: this is the state at {at}"
        );
    }
    let span = tracing::info_span!("restore", replica = %replica.name);
    let summary = execute(replica.client, &plan, &req.output, &req.exec)
        .instrument(span)
        .await?;
    Ok(Outcome::Restored(summary))
}
