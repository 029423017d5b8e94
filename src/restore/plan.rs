//! Restore planning: which generation, which snapshot and which WAL segments a restore uses
//! (spec §5.1–§5.2). Pure functions over storage listings, no I/O.
//!
//! What must stay true:
//! - The choices are exactly Litestream v0.3.13's (`CalcRestoreTarget`, `SnapshotIndexAt`,
//!   `SnapshotIndexByIndex`, `walSegmentMap`), so both tools restore to the same point:
//!   strict "greater wins" comparisons with ties keeping the earlier candidate in listing order,
//!   segment selection that stops at the first segment past the timestamp/index.
//! - Litestream's listing checks keep their wording (`missing initial wal segment: …`,
//!   `wal segments out of order: …`, `missing WAL index: …`); stricter checks that need the
//!   segment contents (offset gaps, checksums) happen while applying, not here.
//! - Input segments are sorted by (index, offset) here, whatever order the caller passes.

use chrono::{DateTime, Utc};

use crate::storage::{SegmentInfo, SnapshotInfo};

/// `-index` value meaning "no index given" (Go's `math.MaxInt32` sentinel in v0.3.13).
pub const NO_INDEX: i64 = i32::MAX as i64;

/// The restore point asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Everything available.
    Latest,
    /// `-timestamp T`.
    Timestamp(DateTime<Utc>),
    /// `-index N` (hex on the command line; Go parses it as a signed 32-bit value).
    Index(i64),
}

impl Target {
    /// The target from the `-index`/`-timestamp` flags as Litestream reads them: an index equal
    /// to the `MaxInt32` sentinel means "no index". When both are given the timestamp drives
    /// the generation choice; the caller rejects the combination afterwards, as Litestream does.
    pub fn from_flags(index: Option<i64>, timestamp: Option<DateTime<Utc>>) -> Target {
        match (index, timestamp) {
            (_, Some(t)) => Target::Timestamp(t),
            (Some(n), None) if n != NO_INDEX => Target::Index(n),
            _ => Target::Latest,
        }
    }

    fn timestamp(&self) -> Option<DateTime<Utc>> {
        match self {
            Target::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    /// Highest WAL index to include (`NO_INDEX` unless `-index` was given).
    fn max_index(&self) -> i64 {
        match self {
            Target::Index(n) => *n,
            _ => NO_INDEX,
        }
    }
}

/// Everything stored for one generation of one replica.
#[derive(Debug, Clone, Default)]
pub struct GenerationListing {
    pub generation: String,
    pub snapshots: Vec<SnapshotInfo>,
    pub segments: Vec<SegmentInfo>,
}

/// `createdAt`/`updatedAt` of a generation: min/max `CreatedAt` over its snapshots and segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why no plan could be made (wording as Litestream's, which users and scripts see).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("cannot find snapshot index: no snapshots available")]
    NoSnapshotForIndex,
    #[error("cannot find snapshot index by timestamp: no snapshots available")]
    NoSnapshotForTimestamp,
    #[error(
        "cannot find max wal index for restore: missing initial wal segment: generation={generation} index={index:08x} offset={offset}"
    )]
    MissingInitialSegment {
        generation: String,
        index: u32,
        offset: u64,
    },
    #[error(
        "cannot find max wal index for restore: wal segments out of order: generation={generation} index={index:08x} offsets=({previous},{offset})"
    )]
    SegmentsOutOfOrder {
        generation: String,
        index: u32,
        previous: u64,
        offset: u64,
    },
    #[error("missing WAL index: {generation}/{index:08x}")]
    MissingIndex { generation: String, index: u32 },
}

/// The segments of one WAL index to apply, in offset order (first one at offset 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPlan {
    pub index: u32,
    pub segments: Vec<SegmentInfo>,
}

/// A complete restore: the snapshot, then every index from the snapshot's index up, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    pub generation: String,
    pub snapshot: SnapshotInfo,
    /// Contiguous indices `snapshot.index ..= max`; may be empty.
    pub wal: Vec<IndexPlan>,
    /// No segment at all was selected (Litestream logs `snapshot only, finalizing database`).
    pub snapshot_only: bool,
}

impl RestorePlan {
    /// Highest WAL index applied, if any.
    pub fn max_index(&self) -> Option<u32> {
        self.wal.last().map(|p| p.index)
    }

    /// Stored (compressed) bytes the restore downloads.
    pub fn download_size(&self) -> u64 {
        let segs: u64 = self
            .wal
            .iter()
            .flat_map(|p| &p.segments)
            .map(|s| s.size)
            .sum();
        self.snapshot.size + segs
    }
}

/// Min/max `CreatedAt` over the generation's files; `None` when it holds no file.
pub fn generation_bounds(listing: &GenerationListing) -> Option<Bounds> {
    let times = listing
        .snapshots
        .iter()
        .map(|s| s.created_at)
        .chain(listing.segments.iter().map(|s| s.created_at));
    times.fold(None, |acc, t| match acc {
        None => Some(Bounds {
            created_at: t,
            updated_at: t,
        }),
        Some(b) => Some(Bounds {
            created_at: b.created_at.min(t),
            updated_at: b.updated_at.max(t),
        }),
    })
}

/// Litestream's `CalcRestoreTarget` for one replica: among `listings` (in generation-id order)
/// that pass the `-generation` filter and, with `-timestamp T`, satisfy
/// `createdAt ≤ T ≤ updatedAt`, the one with the strictly greatest `updatedAt`.
pub fn choose_generation<'a>(
    listings: &'a [GenerationListing],
    generation: Option<&str>,
    target: &Target,
) -> Option<(&'a GenerationListing, DateTime<Utc>)> {
    let mut best: Option<(&GenerationListing, DateTime<Utc>)> = None;
    for listing in listings {
        if generation.is_some_and(|g| g != listing.generation) {
            continue;
        }
        let Some(bounds) = generation_bounds(listing) else {
            continue; // Go compares against the zero time: an empty generation never wins.
        };
        if let Some(t) = target.timestamp()
            && (t < bounds.created_at || t > bounds.updated_at)
        {
            continue;
        }
        if best.is_none_or(|(_, at)| bounds.updated_at > at) {
            best = Some((listing, bounds.updated_at));
        }
    }
    best
}

/// Litestream v0.5.17's choice when its restore falls back to the v0.3 layout
/// (`Replica.RestoreV3`): the generation of the newest snapshot over all generations (by
/// `CreatedAt`, at or before `-timestamp T` when given). Unlike [`choose_generation`] there is
/// no `T ≤ updatedAt` condition, so a time after the generation's last write restores all of
/// it. On equal times the later generation (in id order) wins.
pub fn choose_generation_v05<'a>(
    listings: &'a [GenerationListing],
    target: &Target,
) -> Option<&'a GenerationListing> {
    let limit = target.timestamp();
    let mut best: Option<(&GenerationListing, DateTime<Utc>)> = None;
    for listing in listings {
        for s in &listing.snapshots {
            if limit.is_some_and(|t| s.created_at > t) {
                continue;
            }
            if best.is_none_or(|(_, at)| s.created_at >= at) {
                best = Some((listing, s.created_at));
            }
        }
    }
    best.map(|(listing, _)| listing)
}

/// Builds the plan for the chosen generation (`SnapshotIndexAt`/`SnapshotIndexByIndex` +
/// `walSegmentMap` + the per-index presence check of `Replica.Restore`).
pub fn plan(listing: &GenerationListing, target: &Target) -> Result<RestorePlan, PlanError> {
    let snapshot = choose_snapshot(&listing.snapshots, target)?.clone();
    let selected = select_segments(&listing.generation, &listing.segments, target)?;
    let snapshot_only = selected.is_empty();
    let max = selected.last().map(|p| p.index);
    let mut wal = Vec::new();
    if let Some(max) = max {
        for index in snapshot.index..=max {
            match selected.iter().find(|p| p.index == index) {
                Some(p) => wal.push(p.clone()),
                None => {
                    return Err(PlanError::MissingIndex {
                        generation: listing.generation.clone(),
                        index,
                    });
                }
            }
        }
    }
    Ok(RestorePlan {
        generation: listing.generation.clone(),
        snapshot,
        wal,
        snapshot_only,
    })
}

/// The gap a `-timestamp T` restore falls into when the replica keeps no WAL after the chosen
/// snapshot: the plan is snapshot-only, the snapshot is older than `T`, the generation holds no
/// WAL of the snapshot's own index (so none continues from it: a snapshot kept by
/// `snapshot-tiers`, whose WAL retention deleted) and something later (WAL or a snapshot).
/// Returns the snapshot's time and the time of the generation's next object: the restore gives
/// the state at the first, which is earlier than `T`. It only describes the plan; the choice
/// stays Litestream's.
pub fn wal_gap(
    listing: &GenerationListing,
    plan: &RestorePlan,
    target: &Target,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let t = target.timestamp()?;
    let at = plan.snapshot.created_at;
    if !plan.snapshot_only || at >= t {
        return None;
    }
    if listing
        .segments
        .iter()
        .any(|s| s.index == plan.snapshot.index)
    {
        return None;
    }
    let next = listing
        .snapshots
        .iter()
        .map(|s| s.created_at)
        .chain(listing.segments.iter().map(|s| s.created_at))
        .filter(|&c| c > at)
        .min()?;
    Some((at, next))
}

/// Snapshot selection (spec §5.2). Snapshots are considered in index order, which is the listing
/// order of every backend (fixed-width hex names).
pub fn choose_snapshot<'a>(
    snapshots: &'a [SnapshotInfo],
    target: &Target,
) -> Result<&'a SnapshotInfo, PlanError> {
    let mut sorted: Vec<&SnapshotInfo> = snapshots.iter().collect();
    sorted.sort_by_key(|s| s.index);
    match target {
        Target::Index(n) => sorted
            .into_iter()
            .rfind(|s| i64::from(s.index) <= *n)
            .ok_or(PlanError::NoSnapshotForIndex),
        Target::Latest | Target::Timestamp(_) => {
            let limit = target.timestamp();
            let mut best: Option<&SnapshotInfo> = None;
            for s in sorted {
                if limit.is_some_and(|t| s.created_at > t) {
                    continue;
                }
                if best.is_none_or(|b| s.created_at > b.created_at) {
                    best = Some(s);
                }
            }
            best.ok_or(PlanError::NoSnapshotForTimestamp)
        }
    }
}

/// `walSegmentMap`: walk segments in (index, offset) order, stop at the first one past the
/// timestamp or index, check each index starts at offset 0 and offsets increase.
fn select_segments(
    generation: &str,
    segments: &[SegmentInfo],
    target: &Target,
) -> Result<Vec<IndexPlan>, PlanError> {
    let mut sorted: Vec<&SegmentInfo> = segments.iter().collect();
    sorted.sort_by_key(|s| (s.index, s.offset));
    let limit = target.timestamp();
    let max_index = target.max_index();
    let mut out: Vec<IndexPlan> = Vec::new();
    for seg in sorted {
        if limit.is_some_and(|t| seg.created_at > t) || i64::from(seg.index) > max_index {
            break;
        }
        match out.last_mut() {
            Some(p) if p.index == seg.index => {
                let previous = p.segments.last().map_or(0, |s| s.offset);
                if previous >= seg.offset {
                    return Err(PlanError::SegmentsOutOfOrder {
                        generation: generation.to_string(),
                        index: seg.index,
                        previous,
                        offset: seg.offset,
                    });
                }
                p.segments.push(seg.clone());
            }
            _ if seg.offset != 0 => {
                return Err(PlanError::MissingInitialSegment {
                    generation: generation.to_string(),
                    index: seg.index,
                    offset: seg.offset,
                });
            }
            _ => out.push(IndexPlan {
                index: seg.index,
                segments: vec![seg.clone()],
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
