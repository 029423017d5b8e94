//! Pure planning of the LTX writer (spec §3, §4): which shadow WAL bytes one L0 file covers and
//! which page versions it keeps, which files a compaction merges, which files retention
//! deletes, and when a level is due. No I/O here.
//!
//! What must stay true:
//! - An L0 keeps, per page, the last frame written for it in its range; pages above the last
//!   commit's database size and the lock page are dropped; a range without a commit frame
//!   yields no file.
//! - Compaction inputs are contiguous (each min ≤ previous max + 1 and each max above the
//!   previous max), start right after the target level's newest file, and the output's
//!   timestamp is the newest input's, never older (no `-timestamp` overshoot, §5.4).
//! - Retention keeps the newest file of every level and the newest snapshot, never deletes an
//!   L0 that is not yet in L1, and deletes L0 files oldest first, stopping at the first that
//!   must stay (no holes).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::db::Pos;
use crate::ltx::lock_page;
use crate::storage::LtxFileInfo;
use crate::wal::WAL_HEADER_SIZE;

/// Where one frame lives: shadow WAL index and the byte offset of its 24-byte frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLoc {
    pub index: u32,
    pub offset: u64,
}

/// The newest frame of each page in a run of frames, and the database size at its last commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagePlan {
    pub pages: BTreeMap<u32, FrameLoc>,
    /// Database size in pages at the last commit frame seen (0: none seen).
    pub commit: u32,
}

impl PagePlan {
    /// Records a frame (later frames replace earlier ones of the same page).
    pub fn add_frame(&mut self, pgno: u32, commit: u32, loc: FrameLoc) {
        self.pages.insert(pgno, loc);
        if commit != 0 {
            self.commit = commit;
        }
    }

    /// Drops pages above the commit size and the lock page.
    pub fn finish(mut self, page_size: u32) -> PagePlan {
        let lock = lock_page(page_size);
        let commit = self.commit;
        self.pages.retain(|&p, _| p <= commit && p != lock);
        self
    }
}

/// One byte range `[start, end)` of one shadow WAL index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowRange {
    pub index: u32,
    pub start: u64,
    pub end: u64,
}

/// The shadow ranges from `from` to `to` (same generation). `len_of(index)` is the length of
/// the shadow file of an earlier, complete index (`None`: gone). Empty when `to` is not past
/// `from` (a position read before a snapshot moved the cursor on). `None` when the generation
/// differs or a needed file is gone: continuity is lost and a full image is needed.
pub fn shadow_ranges(
    from: &Pos,
    to: &Pos,
    mut len_of: impl FnMut(u32) -> Option<u64>,
) -> Option<Vec<ShadowRange>> {
    if from.generation != to.generation {
        return None;
    }
    if (to.index, to.offset) <= (from.index, from.offset) {
        return Some(Vec::new());
    }
    let header = WAL_HEADER_SIZE as u64;
    let mut out = Vec::new();
    for index in from.index..=to.index {
        let start = if index == from.index {
            from.offset.max(header)
        } else {
            header
        };
        let end = if index == to.index {
            to.offset
        } else {
            len_of(index)?
        };
        if end > start {
            out.push(ShadowRange { index, start, end });
        }
    }
    Some(out)
}

/// The L0 header's WAL fields for a run ending at `to`: (offset, size) within `to`'s index, so
/// that offset + size is the end position (offset ≥ 32, §7.3).
pub fn wal_fields(ranges: &[ShadowRange], to: &Pos) -> (i64, i64) {
    let header = WAL_HEADER_SIZE as u64;
    let start = ranges
        .iter()
        .find(|r| r.index == to.index)
        .map_or(header, |r| r.start)
        .max(header);
    let end = to.offset.max(start);
    (start as i64, (end - start) as i64)
}

/// The files of `lower` a compaction into a level whose newest file ends at `upper_max` merges
/// (`None` when there is nothing to do), checked for contiguity.
pub fn compaction_inputs(
    lower: &[LtxFileInfo],
    upper_max: u64,
) -> Result<Option<Vec<LtxFileInfo>>, String> {
    let inputs: Vec<LtxFileInfo> = lower
        .iter()
        .filter(|f| f.min_txid > upper_max)
        .cloned()
        .collect();
    if inputs.is_empty() {
        return Ok(None);
    }
    check_contiguous(&inputs)?;
    Ok(Some(inputs))
}

/// Each file starts at most one past the previous one's end and ends after it.
pub fn check_contiguous(files: &[LtxFileInfo]) -> Result<(), String> {
    for pair in files.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.min_txid > a.max_txid + 1 || b.max_txid <= a.max_txid {
            return Err(format!(
                "level {}: {} does not follow {}",
                b.level,
                b.file_name(),
                a.file_name()
            ));
        }
    }
    Ok(())
}

/// The storage timestamp of a merge: the newest input's (so every transaction in the output was
/// synced no later than it).
pub fn merged_timestamp(inputs: &[LtxFileInfo]) -> DateTime<Utc> {
    inputs
        .iter()
        .map(|f| f.created_at)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The most recent wall-clock multiple of `interval` at or before `now` (Go's `Truncate`, which
/// counts from year 1: the same instants for every interval that divides a day, as 30s, 5m, 1h
/// and 24h do).
pub fn last_boundary(now: SystemTime, interval: Duration) -> SystemTime {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let step = interval.as_nanos().max(1);
    let floored = since.as_nanos() / step * step;
    SystemTime::UNIX_EPOCH + Duration::from_nanos(floored as u64)
}

/// The next wall-clock multiple of `interval` strictly after `now`.
pub fn next_boundary(now: SystemTime, interval: Duration) -> SystemTime {
    last_boundary(now, interval) + interval.max(Duration::from_nanos(1))
}

/// What snapshot retention deletes (§4.4): snapshots older than `retention` except the newest,
/// then on each compaction level the files ending below the floor (the newest deleted
/// snapshot's max TXID), except each level's newest file.
pub fn snapshot_retention(
    snapshots: &[LtxFileInfo],
    levels: &[Vec<LtxFileInfo>],
    retention: Duration,
    now: SystemTime,
) -> Vec<LtxFileInfo> {
    let cutoff = DateTime::<Utc>::from(now.checked_sub(retention).unwrap_or(now));
    let Some(newest) = snapshots.iter().max_by_key(|s| s.max_txid) else {
        return Vec::new();
    };
    let doomed: Vec<LtxFileInfo> = snapshots
        .iter()
        .filter(|s| s.created_at < cutoff && s.max_txid != newest.max_txid)
        .cloned()
        .collect();
    let Some(floor) = doomed.iter().map(|s| s.max_txid).max() else {
        return Vec::new();
    };
    let mut out = doomed;
    for files in levels {
        let keep = files.iter().map(|f| f.max_txid).max();
        out.extend(
            files
                .iter()
                .filter(|f| f.max_txid < floor && Some(f.max_txid) != keep)
                .cloned(),
        );
    }
    out
}

/// `verify-compaction` (v0.5.17's post-compaction check): the files of one level follow each
/// other exactly (next min = previous max + 1). Unlike v0.5.17, a gap whose missing TXIDs are all
/// at or below `snapshot_floor` (the oldest kept L9 snapshot's max TXID: no restore needs them)
/// is not reported, since snapshot retention leaves those by design. `files` in TXID order.
pub fn verify_level(files: &[LtxFileInfo], snapshot_floor: Option<u64>) -> Result<(), String> {
    for pair in files.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        let want = prev.max_txid + 1;
        if next.min_txid < want {
            return Err(format!(
                "TXID overlap: {} then {}",
                prev.file_name(),
                next.file_name()
            ));
        }
        if next.min_txid > want && snapshot_floor.is_none_or(|f| next.min_txid > f + 1) {
            return Err(format!(
                "TXID gap: {} then {}",
                prev.file_name(),
                next.file_name()
            ));
        }
    }
    Ok(())
}

/// The v0.3 generations (each with the time of its newest snapshot or WAL segment, `None` when it
/// holds neither) that LTX snapshot retention removes after a move from the v0.3 layout: those
/// whose newest object is older than `retention`, and only while the LTX levels keep a snapshot
/// (`has_snapshot`), so the latest restore never depends on them.
pub fn retired_v3_generations(
    generations: &[(String, Option<DateTime<Utc>>)],
    has_snapshot: bool,
    retention: Duration,
    now: SystemTime,
) -> Vec<String> {
    if !has_snapshot {
        return Vec::new();
    }
    let cutoff = DateTime::<Utc>::from(now.checked_sub(retention).unwrap_or(now));
    generations
        .iter()
        .filter(|(_, newest)| newest.is_none_or(|t| t < cutoff))
        .map(|(g, _)| g.clone())
        .collect()
}

/// What L0 retention deletes (§4.4): oldest first, files already in L1 (`max ≤ l1_max`) and
/// older than `retention`, stopping at the first that must stay; never the newest L0.
pub fn l0_retention(
    l0: &[LtxFileInfo],
    l1_max: Option<u64>,
    retention: Duration,
    now: SystemTime,
) -> Vec<LtxFileInfo> {
    let (Some(l1_max), false) = (l1_max, retention.is_zero()) else {
        return Vec::new();
    };
    let cutoff = DateTime::<Utc>::from(now.checked_sub(retention).unwrap_or(now));
    let mut out = Vec::new();
    for f in l0.iter().take(l0.len().saturating_sub(1)) {
        if f.max_txid > l1_max || f.created_at >= cutoff {
            break;
        }
        out.push(f.clone());
    }
    out
}
