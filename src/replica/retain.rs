//! Retention enforcement (spec §4.5): lists the replica, asks the pure planner
//! ([`super::retention::plan_retention`]) what may go, and deletes it.
//!
//! What must stay true: deletions happen only as planned; when no snapshot is retained a new one
//! is taken first and counted as retained; the generation this replica is writing into is never
//! deleted (if it has no retained snapshot, one is taken first — Litestream would delete it, which
//! only happens when another writer's generation is newer, and would break the live replica).

use std::time::{Duration, SystemTime};

use tracing::{debug, info};

use super::retention::{Deletions, RetentionPlan, SegmentEntry, SnapshotEntry, plan_retention};
use super::{Replica, ReplicaError};
use crate::rt::lock;
use crate::storage::{SegmentInfo, SnapshotInfo};

impl SnapshotEntry for SnapshotInfo {
    fn generation(&self) -> &str {
        &self.generation
    }
    fn index(&self) -> u32 {
        self.index
    }
    fn created_at(&self) -> SystemTime {
        self.created_at.into()
    }
}

impl SegmentEntry for SegmentInfo {
    fn generation(&self) -> &str {
        &self.generation
    }
    fn index(&self) -> u32 {
        self.index
    }
}

/// Until when a retention check cannot find anything new to delete, as long as the live
/// generation stays the same: retention deletes only around snapshots that fall out of the
/// window, and the earliest that can happen is when the oldest surviving snapshot's age reaches
/// `retention`. New segments and snapshots of the live generation change nothing before then;
/// a new generation (ours) does, so it ends the quiet period. Objects written by another process
/// are not seen until the quiet period ends (at most `retention`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quiet {
    until: SystemTime,
    generation: Option<String>,
}

impl Quiet {
    /// The quiet period after deleting `d` from a listing holding `snapshots`; `None` when no
    /// snapshot survives (the next check must list again).
    fn after(
        snapshots: &[SnapshotInfo],
        d: &Deletions<SnapshotInfo, SegmentInfo>,
        retention: Duration,
        generation: Option<String>,
    ) -> Option<Quiet> {
        let until = snapshots
            .iter()
            .filter(|s| !d.generations.contains(&s.generation))
            .filter(|s| {
                !d.snapshots
                    .iter()
                    .any(|x| x.generation == s.generation && x.index == s.index)
            })
            .map(|s| SystemTime::from(s.created_at) + retention)
            .min()?;
        Some(Quiet { until, generation })
    }

    fn holds(&self, now: SystemTime, live: &Option<String>) -> bool {
        now < self.until && &self.generation == live
    }
}

struct Listing {
    generations: Vec<String>,
    snapshots: Vec<SnapshotInfo>,
    segments: Vec<SegmentInfo>,
}

impl Replica {
    /// One retention check with the configured retention (no-op when retention is 0). Skipped
    /// without a storage request while its outcome cannot have changed since the last check
    /// (see [`Quiet`]).
    pub async fn enforce_retention(&self) -> Result<(), ReplicaError> {
        let retention = self.cfg.retention;
        if retention.is_zero() {
            return Ok(());
        }
        self.ensure_owner(false).await?;
        let live = self.db_state.borrow().generation.clone();
        if lock(&self.retention_quiet)
            .as_ref()
            .is_some_and(|q| q.holds(SystemTime::now(), &live))
        {
            debug!(db = %self.db_label, replica = %self.name(), "retention: nothing can have expired, not listed");
            return Ok(());
        }
        *lock(&self.retention_quiet) = None;
        let (deletions, quiet) = self.plan(retention).await?;
        self.delete(deletions).await?;
        *lock(&self.retention_quiet) = quiet;
        Ok(())
    }

    async fn plan(
        &self,
        retention: Duration,
    ) -> Result<(Deletions<SnapshotInfo, SegmentInfo>, Option<Quiet>), ReplicaError> {
        let live = self.db_state.borrow().generation.clone();
        let mut forced: Option<(String, u32)> = None;
        // At most two extra snapshots: one when nothing is retained, one for the live generation.
        for _ in 0..3 {
            let l = self.list_all().await?;
            let f = forced.as_ref().map(|(g, i)| (g.as_str(), *i));
            let plan = plan_retention(
                &l.generations,
                &l.snapshots,
                &l.segments,
                SystemTime::now(),
                retention,
                f,
                self.cfg.snapshot_tiers.as_ref(),
            );
            match plan {
                RetentionPlan::NeedSnapshot => forced = Some(self.snapshot().await?),
                RetentionPlan::Delete(d) => {
                    let live_doomed = live.as_ref().is_some_and(|g| d.generations.contains(g));
                    if !live_doomed {
                        let quiet = Quiet::after(&l.snapshots, &d, retention, live);
                        return Ok((d, quiet));
                    }
                    forced = Some(self.snapshot().await?);
                }
            }
        }
        Err(ReplicaError::RetentionUnsettled)
    }

    async fn list_all(&self) -> Result<Listing, ReplicaError> {
        let generations = self.client.generations().await?;
        let mut snapshots = Vec::new();
        let mut segments = Vec::new();
        for g in &generations {
            snapshots.extend(self.client.snapshots(g).await?);
            segments.extend(self.client.wal_segments(g).await?);
        }
        Ok(Listing {
            generations,
            snapshots,
            segments,
        })
    }

    async fn delete(&self, d: Deletions<SnapshotInfo, SegmentInfo>) -> Result<(), ReplicaError> {
        let (db, replica) = (&self.db_label, self.name());
        for g in &d.generations {
            self.client.delete_generation(g).await?;
            self.update_status(|s| s.retention_deletions += 1);
            info!(db = %db, replica = %replica, generation = %g, "generation deleted");
        }
        for (g, m) in &d.bounds {
            let snaps: Vec<SnapshotInfo> = d
                .snapshots
                .iter()
                .filter(|s| &s.generation == g)
                .cloned()
                .collect();
            if !snaps.is_empty() {
                self.client.delete_snapshots(&snaps).await?;
                self.update_status(|s| s.retention_deletions += 1);
                info!(db = %db, replica = %replica, generation = %g, index = m, "snapshot deleted");
            }
            let segs: Vec<SegmentInfo> = d
                .segments
                .iter()
                .filter(|s| &s.generation == g)
                .cloned()
                .collect();
            if !segs.is_empty() {
                self.client.delete_segments(&segs).await?;
                self.update_status(|s| s.retention_deletions += 1);
                info!(db = %db, replica = %replica, generation = %g, index = m, n = segs.len(), "wal segmented deleted before");
            }
        }
        Ok(())
    }
}
