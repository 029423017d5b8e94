//! Retention enforcement (spec §4.5): lists the replica, asks the pure planner
//! ([`super::retention::plan_retention`]) what may go, and deletes it.
//!
//! What must stay true: deletions happen only as planned; when no snapshot is retained a new one
//! is taken first and counted as retained; the generation this replica is writing into is never
//! deleted (if it has no retained snapshot, one is taken first — Litestream would delete it, which
//! only happens when another writer's generation is newer, and would break the live replica).

use std::time::{Duration, SystemTime};

use tracing::info;

use super::retention::{Deletions, RetentionPlan, SegmentEntry, SnapshotEntry, plan_retention};
use super::{Replica, ReplicaError};
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

struct Listing {
    generations: Vec<String>,
    snapshots: Vec<SnapshotInfo>,
    segments: Vec<SegmentInfo>,
}

impl Replica {
    /// One retention check with the configured retention (no-op when retention is 0).
    pub async fn enforce_retention(&self) -> Result<(), ReplicaError> {
        let retention = self.cfg.retention;
        if retention.is_zero() {
            return Ok(());
        }
        let deletions = self.plan(retention).await?;
        self.delete(deletions).await
    }

    async fn plan(
        &self,
        retention: Duration,
    ) -> Result<Deletions<SnapshotInfo, SegmentInfo>, ReplicaError> {
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
            );
            match plan {
                RetentionPlan::NeedSnapshot => forced = Some(self.snapshot().await?),
                RetentionPlan::Delete(d) => {
                    let live_doomed = live.as_ref().is_some_and(|g| d.generations.contains(g));
                    if !live_doomed {
                        return Ok(d);
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
