//! Retention enforcement (spec §4.5): lists the replica, asks the pure planner
//! ([`super::retention::plan_retention`]) what may go, and deletes it.
//!
//! What must stay true: deletions happen only as planned; when no snapshot is retained a new one
//! is taken first and counted as retained; the generation this replica is writing into is never
//! deleted (if it has no retained snapshot, one is taken first — Litestream would delete it, which
//! only happens when another writer's generation is newer, and would break the live replica);
//! with `snapshot-tiers` the live generation is never left to tiers alone either (that would
//! delete all its WAL), and the quiet period also ends at this replica's next snapshot.

use std::time::{Duration, SystemTime};

use tracing::{debug, info};

use super::retention::{Deletions, RetentionPlan, SegmentEntry, SnapshotEntry, plan_retention};
use super::{Replica, ReplicaError, SnapshotMark};
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
///
/// With `snapshot-tiers`, a new snapshot can change the tiers' verdicts (it may push an old
/// snapshot out of the newest N periods), so the quiet period also ends when this replica has
/// written a snapshot since the check (its status' `latest_snapshot` mark changed), and `until`
/// comes from the snapshots the window keeps: the ones kept only by a tier are older than the
/// window, and the passing of time alone never changes a tier's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quiet {
    until: SystemTime,
    generation: Option<String>,
    /// With tiers: the replica's newest snapshot mark at the check.
    snapshot: Option<Option<SnapshotMark>>,
}

impl Quiet {
    /// The quiet period after deleting `d` from a listing holding `snapshots`; `None` when no
    /// snapshot survives in the window (the next check must list again). `snapshot` is the
    /// replica's newest snapshot mark when tiers are on (`None` without tiers).
    fn after(
        snapshots: &[SnapshotInfo],
        d: &Deletions<SnapshotInfo, SegmentInfo>,
        retention: Duration,
        generation: Option<String>,
        snapshot: Option<Option<SnapshotMark>>,
    ) -> Option<Quiet> {
        let same =
            |s: &SnapshotInfo, x: &SnapshotInfo| x.generation == s.generation && x.index == s.index;
        let until = snapshots
            .iter()
            .filter(|s| !d.generations.contains(&s.generation))
            .filter(|s| !d.snapshots.iter().any(|x| same(s, x)))
            .filter(|s| !d.tier_kept.iter().any(|(x, _)| same(s, x)))
            .map(|s| SystemTime::from(s.created_at) + retention)
            .min()?;
        Some(Quiet {
            until,
            generation,
            snapshot,
        })
    }

    fn holds(&self, now: SystemTime, live: &Option<String>, latest: &Option<SnapshotMark>) -> bool {
        now < self.until
            && &self.generation == live
            && self.snapshot.as_ref().is_none_or(|mark| mark == latest)
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
        let latest = self.status().latest_snapshot;
        if lock(&self.retention_quiet)
            .as_ref()
            .is_some_and(|q| q.holds(SystemTime::now(), &live, &latest))
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
        let tiers = self.cfg.snapshot_tiers.as_ref();
        for _ in 0..3 {
            // Read before listing: a snapshot written meanwhile changes the mark, so the next
            // check lists again.
            let mark = tiers.map(|_| self.status().latest_snapshot);
            let l = self.list_all().await?;
            let f = forced.as_ref().map(|(g, i)| (g.as_str(), *i));
            let plan = plan_retention(
                &l.generations,
                &l.snapshots,
                &l.segments,
                SystemTime::now(),
                retention,
                f,
                tiers,
            );
            match plan {
                RetentionPlan::NeedSnapshot => forced = Some(self.snapshot().await?),
                RetentionPlan::Delete(d) => {
                    // A generation kept only by a tier loses all its WAL: as bad for the live
                    // generation as being deleted whole.
                    let live_doomed = live
                        .as_ref()
                        .is_some_and(|g| d.generations.contains(g) || d.tier_only.contains(g));
                    if !live_doomed {
                        let quiet = Quiet::after(&l.snapshots, &d, retention, live, mark);
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
        for (s, reasons) in &d.tier_kept {
            debug!(db = %db, replica = %replica, generation = %s.generation, index = s.index, reasons = %reasons.join(", "), "snapshot kept by snapshot-tiers");
        }
        // Generations with a window bound `m`, then those kept only by a tier (no bound: all
        // their WAL and their other snapshots go).
        let surviving = d
            .bounds
            .iter()
            .map(|(g, m)| (g, Some(*m)))
            .chain(d.tier_only.iter().map(|g| (g, None)));
        for (g, m) in surviving {
            let snaps: Vec<SnapshotInfo> = d
                .snapshots
                .iter()
                .filter(|s| &s.generation == g)
                .cloned()
                .collect();
            if !snaps.is_empty() {
                self.client.delete_snapshots(&snaps).await?;
                self.update_status(|s| s.retention_deletions += 1);
                match m {
                    Some(m) => {
                        info!(db = %db, replica = %replica, generation = %g, index = m, "snapshot deleted")
                    }
                    None => {
                        info!(db = %db, replica = %replica, generation = %g, "snapshot deleted (generation kept by snapshot-tiers)")
                    }
                }
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
                match m {
                    Some(m) => {
                        info!(db = %db, replica = %replica, generation = %g, index = m, n = segs.len(), "wal segmented deleted before")
                    }
                    None => {
                        info!(db = %db, replica = %replica, generation = %g, n = segs.len(), "wal deleted (generation kept by snapshot-tiers)")
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    const G: &str = "0000000000000001";
    const DAY: Duration = Duration::from_secs(86400);

    fn snap(index: u32, created_at: SystemTime) -> SnapshotInfo {
        SnapshotInfo {
            generation: G.to_string(),
            index,
            size: 1,
            created_at: DateTime::<Utc>::from(created_at),
        }
    }

    fn mark(index: u32) -> Option<SnapshotMark> {
        Some(SnapshotMark {
            generation: G.to_string(),
            index,
            at: SystemTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn quiet_period_ends_with_the_window_and_with_tiers_at_a_new_snapshot() {
        let now = SystemTime::UNIX_EPOCH + 100 * DAY;
        let (old, recent) = (snap(1, now - 10 * DAY), snap(7, now - DAY));
        let mut d = Deletions {
            generations: Vec::new(),
            bounds: vec![(G.to_string(), 7)],
            tier_only: Vec::new(),
            snapshots: Vec::new(),
            segments: Vec::new(),
            tier_kept: vec![(old.clone(), vec!["keep-weekly 1970-W14".to_string()])],
        };
        let live = Some(G.to_string());
        let listing = [old.clone(), recent.clone()];
        // The tier-kept snapshot is older than the window: `until` comes from `recent`.
        let q = Quiet::after(&listing, &d, 3 * DAY, live.clone(), Some(mark(7)))
            .expect("a snapshot survives in the window");
        assert_eq!(q.until, now + 2 * DAY);
        assert!(q.holds(now, &live, &mark(7)));
        assert!(!q.holds(now, &live, &mark(8)), "a new snapshot ends it");
        assert!(!q.holds(now + 2 * DAY, &live, &mark(7)));
        assert!(!q.holds(now, &Some("0000000000000002".into()), &mark(7)));
        // Without tiers: the mark is not looked at, as before.
        d.tier_kept.clear();
        d.snapshots = vec![old];
        let q = Quiet::after(&listing, &d, 3 * DAY, live.clone(), None).expect("quiet");
        assert_eq!(q.until, now + 2 * DAY);
        assert!(q.holds(now, &live, &mark(8)));
        // Only tier-kept snapshots left outside the window: no quiet period.
        let d = Deletions {
            snapshots: vec![recent],
            tier_kept: vec![(listing[0].clone(), vec!["keep-last 1".to_string()])],
            ..d
        };
        assert_eq!(
            Quiet::after(&listing, &d, 3 * DAY, live, Some(mark(7))),
            None
        );
    }
}
