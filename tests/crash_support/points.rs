//! Which `-timestamp` targets a replica can restore consistently, from its listing.
//!
//! A snapshot is the raw database file, which the application's own checkpoints may be writing
//! while walstream reads it; only replaying the snapshot's WAL index from offset 0 up to the
//! snapshot's position makes it whole (spec §1.5). The replica format does not record that
//! position, and in a new generation those segments are uploaded after the snapshot. So a target
//! between a snapshot's upload and the next segment upload of its index (or a later one) may
//! select a torn image (`walstream restore` then fails its integrity check). Targets are drawn
//! only from the windows after that segment.
//!
//! Must stay true: a window never starts before the first segment stored strictly after its
//! snapshot; it ends before the next snapshot (which owns later targets).

use chrono::{DateTime, Utc};
use walstream::storage::{SegmentInfo, SnapshotInfo};

/// `[lo, hi]`: any target in it restores from one snapshot plus at least one later segment.
pub type Window = (DateTime<Utc>, DateTime<Utc>);

/// The consistent target windows of one generation.
pub fn windows(snapshots: &[SnapshotInfo], segments: &[SegmentInfo]) -> Vec<Window> {
    let Some(updated) = snapshots
        .iter()
        .map(|s| s.created_at)
        .chain(segments.iter().map(|s| s.created_at))
        .max()
    else {
        return Vec::new();
    };
    let mut snaps: Vec<&SnapshotInfo> = snapshots.iter().collect();
    snaps.sort_by_key(|s| s.created_at);
    let mut out = Vec::new();
    for (i, s) in snaps.iter().enumerate() {
        let lo = segments
            .iter()
            .filter(|g| g.index >= s.index && g.created_at > s.created_at)
            .map(|g| g.created_at)
            .min();
        let hi = match snaps[i + 1..].iter().find(|n| n.created_at > s.created_at) {
            Some(next) => next.created_at - chrono::Duration::nanoseconds(1),
            None => updated,
        };
        if let Some(lo) = lo
            && lo <= hi
        {
            out.push((lo, hi));
        }
    }
    out
}
