//! Restore points of every replica, listed from storage by a background refresher and kept in
//! memory, so HTTP handlers never wait for storage: generations with their time range, their
//! snapshots, and the span (offsets, times, stored bytes) each WAL index covers; for a replica
//! writing the LTX layout also its levels (files, bytes, TXID range, times) and L9 snapshots
//! ([`LtxPoints`], by listing times: file mtimes, object-store `LastModified`).
//!
//! What must stay true:
//! - times are the storage `CreatedAt` of the objects (spec §1.6), the same values `restore
//!   -timestamp` compares against, so any time in `[restorable_from, restorable_to]` of a
//!   generation restores (spec §5.1, §5.2);
//! - a failed listing keeps the previous result and records the error beside it;
//! - an idle replica costs no storage request and no wake-up: the refresher sleeps on the
//!   replica status channels and its trigger, never on a timer, and lists a replica only when
//!   what the listing depends on ([`Inputs`]: stored position, newest snapshot, retention
//!   deletions) changed since its last listing — eagerly (at most every [`MIN_INTERVAL`]) when
//!   the summary shown by `/api/v1/status` and `/metrics` can change (new snapshot, generation
//!   or retention deletion), lazily when a client asks for the restore points (at most every
//!   [`DEMAND_MIN_INTERVAL`]), and at once when asked for explicitly (after a `POST …/sync` or
//!   `…/snapshot`, or `?refresh=true`). Objects written or deleted by another process are only
//!   seen after one of these;
//! - at most [`LISTING_CONCURRENCY`] listings run at a time over all databases (start-up of a
//!   large fleet).

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::{BoxFuture, select_all};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::db::Pos;
use crate::replica::{Replica, ReplicaStatus, SnapshotMark};
use crate::storage::{
    LtxFileInfo, ReplicaClient, SegmentInfo, SnapshotInfo, StorageError, Timestamps,
};

/// Least time between two refreshes triggered by replica activity. Each refresh costs
/// `1 + 2 × generations` listings per replica.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Least time between two refreshes asked for by clients reading the restore points.
pub const DEMAND_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Most listings running at once over all databases.
pub const LISTING_CONCURRENCY: usize = 8;

/// One snapshot object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPoint {
    pub index: u32,
    /// Stored (compressed) bytes.
    pub size: u64,
    pub created_at: SystemTime,
}

/// The WAL segments of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalSpan {
    pub index: u32,
    pub segments: usize,
    /// Offset of the first and of the last segment (uncompressed WAL bytes).
    pub first_offset: u64,
    pub last_offset: u64,
    /// Stored (compressed) bytes of all segments.
    pub size: u64,
    pub first_created_at: SystemTime,
    pub last_created_at: SystemTime,
}

/// One generation of a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationPoints {
    pub generation: String,
    /// Earliest / latest `CreatedAt` over snapshots and segments (Litestream's bounds).
    pub created_at: Option<SystemTime>,
    pub updated_at: Option<SystemTime>,
    pub snapshots: Vec<SnapshotPoint>,
    pub wal: Vec<WalSpan>,
}

impl GenerationPoints {
    /// Earliest time a `-timestamp` restore of this generation can use (its oldest snapshot).
    pub fn restorable_from(&self) -> Option<SystemTime> {
        self.snapshots.iter().map(|s| s.created_at).min()
    }

    /// Latest time a `-timestamp` restore can use (= `updated_at`) when there is a snapshot.
    pub fn restorable_to(&self) -> Option<SystemTime> {
        self.restorable_from().and(self.updated_at)
    }

    pub fn latest_snapshot(&self) -> Option<&SnapshotPoint> {
        self.snapshots.iter().max_by_key(|s| s.created_at)
    }
}

/// Summarises one generation's listings (`snapshots` and `segments` in any order).
pub fn summarize(
    generation: &str,
    snapshots: &[SnapshotInfo],
    segments: &[SegmentInfo],
) -> GenerationPoints {
    let mut snaps: Vec<SnapshotPoint> = snapshots
        .iter()
        .map(|s| SnapshotPoint {
            index: s.index,
            size: s.size,
            created_at: s.created_at.into(),
        })
        .collect();
    snaps.sort_by_key(|s| s.index);
    let mut segs: Vec<&SegmentInfo> = segments.iter().collect();
    segs.sort_by_key(|s| (s.index, s.offset));
    let mut wal: Vec<WalSpan> = Vec::new();
    for s in segs {
        let t: SystemTime = s.created_at.into();
        match wal.last_mut() {
            Some(span) if span.index == s.index => {
                span.segments += 1;
                span.last_offset = s.offset;
                span.size += s.size;
                span.first_created_at = span.first_created_at.min(t);
                span.last_created_at = span.last_created_at.max(t);
            }
            _ => wal.push(WalSpan {
                index: s.index,
                segments: 1,
                first_offset: s.offset,
                last_offset: s.offset,
                size: s.size,
                first_created_at: t,
                last_created_at: t,
            }),
        }
    }
    let times = snaps.iter().map(|s| s.created_at).chain(
        wal.iter()
            .flat_map(|w| [w.first_created_at, w.last_created_at]),
    );
    let (created_at, updated_at) = times.fold((None, None), |(lo, hi), t| {
        (
            Some(lo.map_or(t, |l: SystemTime| l.min(t))),
            Some(hi.map_or(t, |h: SystemTime| h.max(t))),
        )
    });
    GenerationPoints {
        generation: generation.to_string(),
        created_at,
        updated_at,
        snapshots: snaps,
        wal,
    }
}

/// One LTX level of a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtxLevelPoints {
    pub level: u8,
    pub files: usize,
    /// Stored bytes of all its files.
    pub size: u64,
    pub min_txid: u64,
    pub max_txid: u64,
    pub oldest: SystemTime,
    pub newest: SystemTime,
}

/// One L9 snapshot: the database at `max_txid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtxSnapshotPoint {
    pub max_txid: u64,
    pub size: u64,
    pub created_at: SystemTime,
}

/// The LTX layout of a replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LtxPoints {
    /// Levels holding files, lowest first.
    pub levels: Vec<LtxLevelPoints>,
    /// L9 snapshots, oldest first.
    pub snapshots: Vec<LtxSnapshotPoint>,
}

impl LtxPoints {
    /// Summarises the files of every level.
    pub fn of(files: &[LtxFileInfo]) -> LtxPoints {
        let mut points = LtxPoints::default();
        for f in files {
            let t: SystemTime = f.created_at.into();
            match points.levels.iter_mut().find(|l| l.level == f.level) {
                Some(l) => {
                    l.files += 1;
                    l.size += f.size;
                    l.min_txid = l.min_txid.min(f.min_txid);
                    l.max_txid = l.max_txid.max(f.max_txid);
                    l.oldest = l.oldest.min(t);
                    l.newest = l.newest.max(t);
                }
                None => points.levels.push(LtxLevelPoints {
                    level: f.level,
                    files: 1,
                    size: f.size,
                    min_txid: f.min_txid,
                    max_txid: f.max_txid,
                    oldest: t,
                    newest: t,
                }),
            }
            if f.level == crate::storage::SNAPSHOT_LEVEL {
                points.snapshots.push(LtxSnapshotPoint {
                    max_txid: f.max_txid,
                    size: f.size,
                    created_at: t,
                });
            }
        }
        points.levels.sort_by_key(|l| l.level);
        points.snapshots.sort_by_key(|s| (s.created_at, s.max_txid));
        points
    }

    /// The earliest time a `-timestamp` restore can use: the oldest snapshot, or the oldest
    /// file of a level whose files still start at TXID 1 (nothing compacted away yet).
    pub fn restorable_from(&self) -> Option<SystemTime> {
        let from_start = self
            .levels
            .iter()
            .filter(|l| l.min_txid == 1)
            .map(|l| l.oldest);
        let snapshots = self.snapshots.iter().map(|s| s.created_at);
        from_start.chain(snapshots).min()
    }

    /// The newest time any file was stored: a later `-timestamp` restores the latest state.
    pub fn restorable_to(&self) -> Option<SystemTime> {
        self.levels.iter().map(|l| l.newest).max()
    }
}

/// Lists every level of an LTX replica.
pub async fn list_ltx(client: &ReplicaClient) -> Result<LtxPoints, StorageError> {
    let mut files = Vec::new();
    for level in 0..=crate::storage::SNAPSHOT_LEVEL {
        files.extend(client.ltx_files(level, Timestamps::Listing).await?);
    }
    Ok(LtxPoints::of(&files))
}

/// What the cache holds for one replica.
#[derive(Debug, Clone, Default)]
pub struct ReplicaPoints {
    /// When the last successful listing started (`None`: never): every object stored before
    /// this instant is in [`ReplicaPoints::generations`].
    pub refreshed_at: Option<SystemTime>,
    pub generations: Vec<GenerationPoints>,
    /// The LTX layout of a replica that writes it (`None` for v0.3-layout replicas).
    pub ltx: Option<LtxPoints>,
    /// The last listing error and when it happened (cleared by a successful listing).
    pub error: Option<(SystemTime, String)>,
    /// The replica's [`Inputs`] when the last successful listing started.
    pub inputs: Option<Inputs>,
}

impl ReplicaPoints {
    /// The oldest time any generation can be restored to.
    pub fn oldest_restore_point(&self) -> Option<SystemTime> {
        let ltx = self.ltx.as_ref().and_then(LtxPoints::restorable_from);
        self.generations
            .iter()
            .filter_map(|g| g.restorable_from())
            .chain(ltx)
            .min()
    }

    /// The newest snapshot over all generations: (generation, snapshot).
    pub fn latest_snapshot(&self) -> Option<(&str, &SnapshotPoint)> {
        self.generations
            .iter()
            .filter_map(|g| g.latest_snapshot().map(|s| (g.generation.as_str(), s)))
            .max_by_key(|(_, s)| s.created_at)
    }
}

/// The shared cache slot of one replica.
pub type PointsSlot = Arc<RwLock<Arc<ReplicaPoints>>>;

/// Reads the current cache content (never waits for storage).
pub fn read(slot: &PointsSlot) -> Arc<ReplicaPoints> {
    Arc::clone(&crate::rt::read(slot))
}

fn store(slot: &PointsSlot, value: ReplicaPoints) {
    *crate::rt::write(slot) = Arc::new(value);
}

/// What one replica's listing depends on, as far as this process sees it: the stored position,
/// the newest snapshot and the number of retention deletions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub position: Option<Pos>,
    pub snapshot: Option<SnapshotMark>,
    pub retention_deletions: u64,
}

impl Inputs {
    pub fn of(status: &ReplicaStatus) -> Self {
        Inputs {
            position: status.position.clone(),
            snapshot: status.latest_snapshot.clone(),
            retention_deletions: status.retention_deletions,
        }
    }

    /// True when the summary (oldest restore point, newest snapshot) may differ between the
    /// listings of `self` and `other`: another generation, snapshot or retention deletion.
    fn summary_differs(&self, other: &Inputs) -> bool {
        let generation = |i: &Inputs| i.position.as_ref().map(|p| p.generation.clone());
        generation(self) != generation(other)
            || self.snapshot != other.snapshot
            || self.retention_deletions != other.retention_deletions
    }
}

/// True when the replica stored or deleted something since `points` was listed.
pub fn is_stale(points: &ReplicaPoints, status: &ReplicaStatus) -> bool {
    points.inputs.as_ref() != Some(&Inputs::of(status))
}

/// Lists every generation of one replica.
pub async fn list(client: &ReplicaClient) -> Result<Vec<GenerationPoints>, StorageError> {
    let mut out = Vec::new();
    for generation in client.generations().await? {
        let snapshots = client.snapshots(&generation).await?;
        let segments = client.wal_segments(&generation).await?;
        out.push(summarize(&generation, &snapshots, &segments));
    }
    Ok(out)
}

/// Refreshes one replica's slot (keeping the old listing on error).
async fn refresh_one(replica: &Replica, slot: &PointsSlot, limit: &Semaphore) {
    // A closed semaphore never happens (it lives as long as the server); list anyway.
    let _permit = limit.acquire().await.ok();
    let inputs = Inputs::of(&replica.status());
    let started = SystemTime::now();
    let result = async {
        let generations = list(replica.client()).await?;
        let ltx = match replica.is_ltx() {
            true => Some(list_ltx(replica.client()).await?),
            false => None,
        };
        Ok::<_, StorageError>((generations, ltx))
    }
    .await;
    let previous = read(slot);
    let next = match result {
        Ok((generations, ltx)) => ReplicaPoints {
            refreshed_at: Some(started),
            generations,
            ltx,
            error: None,
            inputs: Some(inputs),
        },
        Err(e) => {
            tracing::debug!(replica = %replica.name(), error = %e, "restore points listing failed");
            ReplicaPoints {
                error: Some((SystemTime::now(), e.to_string())),
                ..(*previous).clone()
            }
        }
    };
    store(slot, next);
}

/// Which replicas a refresh pass lists; a wider scope includes the narrower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// Replicas whose summary may have changed.
    Summary,
    /// Replicas that stored or deleted anything since their listing.
    Stale,
    /// Every replica.
    All,
}

/// The trigger of one database's refresher, shared with the handlers.
#[derive(Debug)]
pub struct Refresh {
    force: Notify,
    demand: Notify,
    passes: watch::Sender<u64>,
}

impl Default for Refresh {
    fn default() -> Self {
        Refresh {
            force: Notify::new(),
            demand: Notify::new(),
            passes: watch::channel(0).0,
        }
    }
}

impl Refresh {
    /// Lists every replica now (after a `POST …/sync` or `…/snapshot`, or `?refresh=true`).
    pub fn force(&self) {
        self.force.notify_one();
    }

    /// A client wants the restore points: list the stale replicas soon.
    pub fn demand(&self) {
        self.demand.notify_one();
    }

    /// Completed passes; `changed()` resolves after the next one.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.passes.subscribe()
    }
}

/// A pass planned for later: its scope and when it may start.
type Due = Option<(Scope, Instant)>;

fn plan(due: Due, scope: Scope, at: Instant) -> Due {
    Some(match due {
        Some((s, t)) => (s.max(scope), t.min(at)),
        None => (scope, at),
    })
}

/// Keeps the slots of one database's replicas fresh (see the header for when it lists). Ends
/// when every replica's status channel closed.
pub async fn refresher(
    replicas: Vec<(Arc<Replica>, PointsSlot)>,
    refresh: Arc<Refresh>,
    limit: Arc<Semaphore>,
) {
    let mut statuses: Vec<watch::Receiver<ReplicaStatus>> =
        replicas.iter().map(|(r, _)| r.subscribe_status()).collect();
    // Nothing is known at start: the summary of every replica is missing.
    let mut due: Due = Some((Scope::Summary, Instant::now()));
    let mut last_pass = Instant::now();
    loop {
        let wake_at = due.map(|(_, at)| at);
        let sleep = async move {
            match wake_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = refresh.force.notified() => due = plan(due, Scope::All, Instant::now()),
            _ = refresh.demand.notified() => {
                due = plan(due, Scope::Stale, last_pass + DEMAND_MIN_INTERVAL);
            }
            open = any_changed(&mut statuses) => {
                if !open {
                    return;
                }
                if summary_stale(&replicas) {
                    due = plan(due, Scope::Summary, last_pass + MIN_INTERVAL);
                }
            }
            _ = sleep => {
                let scope = due.take().map_or(Scope::Summary, |(s, _)| s);
                pass(&replicas, scope, &limit).await;
                last_pass = Instant::now();
                refresh.passes.send_modify(|n| *n += 1);
            }
        }
    }
}

fn summary_stale(replicas: &[(Arc<Replica>, PointsSlot)]) -> bool {
    replicas
        .iter()
        .any(|(r, slot)| needs(Scope::Summary, r, slot))
}

fn needs(scope: Scope, replica: &Replica, slot: &PointsSlot) -> bool {
    let points = read(slot);
    let now = Inputs::of(&replica.status());
    match (scope, &points.inputs) {
        (Scope::All, _) | (_, None) => true,
        (Scope::Stale, Some(listed)) => *listed != now,
        (Scope::Summary, Some(listed)) => listed.summary_differs(&now),
    }
}

async fn pass(replicas: &[(Arc<Replica>, PointsSlot)], scope: Scope, limit: &Semaphore) {
    for (replica, slot) in replicas {
        if needs(scope, replica, slot) {
            refresh_one(replica, slot, limit).await;
        }
    }
}

/// Resolves when any status changes (true) or every channel closed (false).
async fn any_changed(statuses: &mut [watch::Receiver<ReplicaStatus>]) -> bool {
    if statuses.is_empty() {
        return std::future::pending().await;
    }
    let futures: Vec<BoxFuture<'_, bool>> = statuses
        .iter_mut()
        .map(|s| async move { s.changed().await.is_ok() }.boxed())
        .collect();
    let (changed, _, _) = select_all(futures).await;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid time")
    }

    fn snap(index: u32, s: i64) -> SnapshotInfo {
        SnapshotInfo {
            generation: "g".into(),
            index,
            size: 100,
            created_at: t(s),
        }
    }

    fn seg(index: u32, offset: u64, s: i64) -> SegmentInfo {
        SegmentInfo {
            generation: "g".into(),
            index,
            offset,
            size: 10,
            created_at: t(s),
        }
    }

    #[test]
    fn summary_groups_segments_by_index_with_bounds() {
        let g = summarize(
            "g",
            &[snap(1, 50), snap(0, 5)],
            &[
                seg(1, 0, 50),
                seg(0, 4152, 20),
                seg(0, 0, 5),
                seg(0, 8272, 40),
            ],
        );
        assert_eq!(
            g.snapshots.iter().map(|s| s.index).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(g.wal.len(), 2);
        let w0 = &g.wal[0];
        assert_eq!(
            (
                w0.index,
                w0.segments,
                w0.first_offset,
                w0.last_offset,
                w0.size
            ),
            (0, 3, 0, 8272, 30)
        );
        assert_eq!(
            (w0.first_created_at, w0.last_created_at),
            (t(5).into(), t(40).into())
        );
        assert_eq!(g.wal[1].segments, 1);
        assert_eq!(g.created_at, Some(t(5).into()));
        assert_eq!(g.updated_at, Some(t(50).into()));
        assert_eq!(g.restorable_from(), Some(t(5).into()));
        assert_eq!(g.restorable_to(), Some(t(50).into()));
        assert_eq!(g.latest_snapshot().map(|s| s.index), Some(1));
    }

    #[test]
    fn generation_without_snapshot_is_not_restorable() {
        let g = summarize("g", &[], &[seg(0, 0, 5)]);
        assert_eq!(g.updated_at, Some(t(5).into()));
        assert_eq!((g.restorable_from(), g.restorable_to()), (None, None));
        let empty = summarize("g", &[], &[]);
        assert_eq!((empty.created_at, empty.updated_at), (None, None));
    }

    fn ltx_file(level: u8, (min, max): (u64, u64), s: i64) -> LtxFileInfo {
        LtxFileInfo {
            level,
            min_txid: min,
            max_txid: max,
            size: 100 * max,
            created_at: t(s),
        }
    }

    #[test]
    fn ltx_points_summarise_levels_snapshots_and_the_restorable_window() {
        // L0 after retention (3..=6), one L1 (1..=4, still from TXID 1), two snapshots.
        let files = [
            ltx_file(0, (5, 5), 50),
            ltx_file(0, (6, 6), 60),
            ltx_file(0, (3, 3), 30),
            ltx_file(0, (4, 4), 40),
            ltx_file(1, (1, 4), 41),
            ltx_file(9, (1, 2), 25),
            ltx_file(9, (1, 6), 61),
        ];
        let p = LtxPoints::of(&files);
        let levels: Vec<(u8, usize, u64, u64)> = p
            .levels
            .iter()
            .map(|l| (l.level, l.files, l.min_txid, l.max_txid))
            .collect();
        assert_eq!(levels, [(0, 4, 3, 6), (1, 1, 1, 4), (9, 2, 1, 6)]);
        assert_eq!(p.levels[0].size, 100 * (5 + 6 + 3 + 4));
        assert_eq!(
            (p.levels[0].oldest, p.levels[0].newest),
            (t(30).into(), t(60).into())
        );
        let snaps: Vec<u64> = p.snapshots.iter().map(|s| s.max_txid).collect();
        assert_eq!(snaps, [2, 6]);
        // The oldest snapshot (25) is older than L1's first file (41), which starts at 1.
        assert_eq!(p.restorable_from(), Some(t(25).into()));
        assert_eq!(p.restorable_to(), Some(t(61).into()));
        let r = ReplicaPoints {
            ltx: Some(p),
            ..ReplicaPoints::default()
        };
        assert_eq!(r.oldest_restore_point(), Some(t(25).into()));
        assert_eq!(LtxPoints::default().restorable_from(), None);
    }

    #[test]
    fn replica_points_pick_oldest_restore_point_and_newest_snapshot() {
        let a = summarize("a", &[snap(0, 10)], &[seg(0, 0, 12)]);
        let mut b = summarize("b", &[snap(3, 30), snap(4, 20)], &[]);
        b.generation = "b".into();
        let p = ReplicaPoints {
            refreshed_at: None,
            generations: vec![a, b],
            ltx: None,
            error: None,
            inputs: None,
        };
        assert_eq!(p.oldest_restore_point(), Some(t(10).into()));
        let (generation, s) = p.latest_snapshot().expect("a snapshot");
        assert_eq!((generation, s.index), ("b", 3));
        assert_eq!(ReplicaPoints::default().oldest_restore_point(), None);
    }

    fn pos(generation: &str, offset: u64) -> Pos {
        Pos {
            generation: generation.into(),
            index: 1,
            offset,
        }
    }

    #[test]
    fn only_a_new_generation_snapshot_or_deletion_changes_the_summary() {
        let listed = Inputs {
            position: Some(pos("a", 100)),
            snapshot: None,
            retention_deletions: 0,
        };
        let more_wal = Inputs {
            position: Some(pos("a", 4252)),
            ..listed.clone()
        };
        assert!(!listed.summary_differs(&more_wal));
        let status = ReplicaStatus {
            position: more_wal.position.clone(),
            ..ReplicaStatus::default()
        };
        let points = ReplicaPoints {
            inputs: Some(listed.clone()),
            ..ReplicaPoints::default()
        };
        // Stale for a reader of the restore points, but no eager listing.
        assert!(is_stale(&points, &status));
        let new_generation = Inputs {
            position: Some(pos("b", 0)),
            ..listed.clone()
        };
        let deleted = Inputs {
            retention_deletions: 1,
            ..listed.clone()
        };
        let snapshot = Inputs {
            snapshot: Some(SnapshotMark {
                generation: "a".into(),
                index: 1,
                at: t(9).into(),
            }),
            ..listed.clone()
        };
        for changed in [new_generation, deleted, snapshot] {
            assert!(listed.summary_differs(&changed), "{changed:?}");
        }
        assert!(is_stale(
            &ReplicaPoints::default(),
            &ReplicaStatus::default()
        ));
    }

    #[test]
    fn planned_passes_merge_to_the_widest_scope_and_earliest_time() {
        let now = Instant::now();
        let later = now + MIN_INTERVAL;
        let due = plan(None, Scope::Summary, later);
        assert_eq!(due, Some((Scope::Summary, later)));
        let due = plan(due, Scope::Stale, now + DEMAND_MIN_INTERVAL);
        assert_eq!(due, Some((Scope::Stale, now + DEMAND_MIN_INTERVAL)));
        assert_eq!(plan(due, Scope::All, now), Some((Scope::All, now)));
    }
}
