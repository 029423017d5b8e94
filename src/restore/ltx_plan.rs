//! Restore plan for a Litestream v0.5 (LTX) replica, built exactly as v0.5.17's
//! `CalcRestorePlan` builds it (spec §5.1), plus walstream's stricter checks.
//!
//! The plan: the last L9 snapshot that passes the filters (max ≤ `-txid`, stored time strictly
//! before `-timestamp`), then repeatedly, over levels 8..0, the best file that extends the
//! restored range (min ≤ cur+1 < max+1, passing the same filters): highest max, then lowest min,
//! then higher level, then older timestamp.
//!
//! What must stay true:
//! - Same files, in the same order, as v0.5.17 for every replica it restores.
//! - Where v0.5.17 would restore silently short, walstream refuses with an error naming the
//!   object: an eligible file that starts past the restored range while TXIDs before it are in
//!   no file at all (a lost file — v0.5.17 only checks gaps without `-txid`/`-timestamp`, and
//!   with `-timestamp` restores short without a word), and two files of one level 0..8 whose ranges
//!   overlap (compaction never writes those).
//! - `-txid` must be reached exactly, as in v0.5.17.

use chrono::{DateTime, Utc};

use crate::storage::{LtxFileInfo, SNAPSHOT_LEVEL};

/// The listings of levels 0..=9 (index = level), each sorted by (min, max).
pub type Levels = Vec<Vec<LtxFileInfo>>;

/// What to restore to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LtxTarget {
    /// `-txid` (0 or `None` = latest).
    pub txid: Option<u64>,
    /// `-timestamp`: only files stored strictly before it.
    pub timestamp: Option<DateTime<Utc>>,
}

/// Why no plan could be made. `key_of` names objects as `level/MIN-MAX.ltx`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LtxPlanError {
    /// v0.5.17's message for `ErrTxNotAvailable`.
    #[error("no matching backup files available")]
    NotAvailable,
    #[error(
        "non-contiguous ltx files: have up to {have:016x} but level {level} file {name} starts at {next:016x}"
    )]
    Gap {
        have: u64,
        level: u8,
        name: String,
        next: u64,
    },
    #[error("overlapping ltx files in level {level}: {first} and {second}")]
    Overlap {
        level: u8,
        first: String,
        second: String,
    },
}

impl LtxTarget {
    fn passes(&self, f: &LtxFileInfo) -> bool {
        let txid_ok = self.txid.is_none_or(|t| f.max_txid <= t);
        let ts_ok = self.timestamp.is_none_or(|t| f.created_at < t);
        txid_ok && ts_ok
    }

    fn reached(&self, cur: u64) -> bool {
        self.txid.is_some_and(|t| cur >= t)
    }
}

/// v0.5.17's tie-break: true if `next` is a better choice than `curr`.
fn better(curr: &LtxFileInfo, next: &LtxFileInfo) -> bool {
    if next.max_txid != curr.max_txid {
        return next.max_txid > curr.max_txid;
    }
    if next.min_txid != curr.min_txid {
        return next.min_txid < curr.min_txid;
    }
    if next.level != curr.level {
        return next.level > curr.level;
    }
    next.created_at < curr.created_at
}

/// Builds the plan from the listings of levels 0..=9.
pub fn plan(levels: &Levels, target: &LtxTarget) -> Result<Vec<LtxFileInfo>, LtxPlanError> {
    let target = LtxTarget {
        txid: target.txid.filter(|&t| t != 0),
        ..*target
    };
    check_overlaps(levels)?;
    let empty = Vec::new();
    let level = |l: u8| levels.get(usize::from(l)).unwrap_or(&empty);
    let mut out: Vec<LtxFileInfo> = Vec::new();
    if let Some(snap) = level(SNAPSHOT_LEVEL).iter().rfind(|f| target.passes(f)) {
        out.push(snap.clone());
    }
    let mut cur = out.last().map_or(0, |f| f.max_txid);
    while !target.reached(cur) {
        let next = (0..SNAPSHOT_LEVEL)
            .rev()
            .flat_map(|l| level(l).iter())
            .filter(|f| f.min_txid <= cur + 1 && f.max_txid > cur && target.passes(f))
            .fold(None::<&LtxFileInfo>, |best, f| match best {
                Some(b) if !better(b, f) => Some(b),
                _ => Some(f),
            });
        let Some(next) = next else { break };
        cur = next.max_txid;
        out.push(next.clone());
    }
    if out.is_empty() {
        return Err(LtxPlanError::NotAvailable);
    }
    if target.txid.is_some_and(|t| cur < t) {
        return Err(LtxPlanError::NotAvailable);
    }
    check_gap(levels, &target, cur).map(|()| out)
}

/// An eligible file that starts past the restored range, with TXIDs before it that no file of
/// any level holds, means the replica lost files. (TXIDs held only by a file that fails the
/// filters — a compaction stamped after `-timestamp` — are not lost: v0.5.17 then restores the
/// newest state it can reach, and so does walstream.)
fn check_gap(levels: &Levels, target: &LtxTarget, cur: u64) -> Result<(), LtxPlanError> {
    let gap = levels
        .iter()
        .take(usize::from(SNAPSHOT_LEVEL))
        .flatten()
        .find(|f| {
            f.min_txid > cur + 1 && target.passes(f) && !covered(levels, cur + 1, f.min_txid - 1)
        });
    match gap {
        Some(f) => Err(LtxPlanError::Gap {
            have: cur,
            level: f.level,
            name: f.file_name(),
            next: f.min_txid,
        }),
        None => Ok(()),
    }
}

/// True if every TXID in `from..=to` is in some file of some level.
fn covered(levels: &Levels, from: u64, to: u64) -> bool {
    let mut files: Vec<&LtxFileInfo> = levels.iter().flatten().collect();
    files.sort_by_key(|f| f.min_txid);
    let mut need = from;
    for f in files {
        if f.min_txid > need {
            break;
        }
        need = need.max(f.max_txid.saturating_add(1));
        if need > to {
            return true;
        }
    }
    need > to
}

/// Files of one level 0..8 never overlap (snapshots at level 9 all start at TXID 1).
fn check_overlaps(levels: &Levels) -> Result<(), LtxPlanError> {
    for files in levels.iter().take(usize::from(SNAPSHOT_LEVEL)) {
        for pair in files.windows(2) {
            if pair[1].min_txid <= pair[0].max_txid {
                return Err(LtxPlanError::Overlap {
                    level: pair[0].level,
                    first: pair[0].file_name(),
                    second: pair[1].file_name(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn f(level: u8, min: u64, max: u64, secs: i64) -> LtxFileInfo {
        LtxFileInfo {
            level,
            min_txid: min,
            max_txid: max,
            size: 100,
            created_at: Utc.timestamp_opt(secs, 0).single().expect("time"),
        }
    }

    fn levels(files: &[LtxFileInfo]) -> Levels {
        let mut out: Levels = vec![Vec::new(); 10];
        for file in files {
            out[usize::from(file.level)].push(file.clone());
        }
        for l in &mut out {
            l.sort_by_key(|f| (f.min_txid, f.max_txid));
        }
        out
    }

    fn names(plan: &[LtxFileInfo]) -> Vec<(u8, u64, u64)> {
        plan.iter()
            .map(|f| (f.level, f.min_txid, f.max_txid))
            .collect()
    }

    /// The shape of a real replica: snapshots, L2 and L1 overlapping them, L0 tail.
    fn replica() -> Levels {
        levels(&[
            f(9, 1, 0x09, 109),
            f(9, 1, 0x22, 134),
            f(2, 1, 1, 101),
            f(2, 2, 0x13, 119),
            f(2, 0x14, 0x22, 134),
            f(2, 0x23, 0x31, 149),
            f(1, 0x23, 0x29, 141),
            f(1, 0x2a, 0x31, 149),
            f(1, 0x32, 0x38, 156),
            f(0, 0x37, 0x37, 155),
            f(0, 0x38, 0x38, 156),
            f(0, 0x39, 0x39, 157),
            f(0, 0x3a, 0x3a, 158),
        ])
    }

    #[test]
    fn latest_takes_snapshot_then_highest_levels() {
        let p = plan(&replica(), &LtxTarget::default()).expect("plan");
        assert_eq!(
            names(&p),
            vec![
                (9, 1, 0x22),
                (2, 0x23, 0x31),
                (1, 0x32, 0x38),
                (0, 0x39, 0x39),
                (0, 0x3a, 0x3a)
            ]
        );
    }

    #[test]
    fn txid_must_be_reached_exactly() {
        let t = |txid| LtxTarget {
            txid: Some(txid),
            ..Default::default()
        };
        let planned = |txid| names(&plan(&replica(), &t(txid)).expect("plan"));
        assert_eq!(planned(0x31), vec![(9, 1, 0x22), (2, 0x23, 0x31)]);
        assert_eq!(planned(0x29), vec![(9, 1, 0x22), (1, 0x23, 0x29)]);
        assert_eq!(planned(9), vec![(9, 1, 9)]);
        assert_eq!(
            plan(&replica(), &t(0x10)),
            Err(LtxPlanError::NotAvailable),
            "L2 2-0x13 overshoots 0x10"
        );
        assert_eq!(plan(&replica(), &t(0x2b)), Err(LtxPlanError::NotAvailable));
    }

    #[test]
    fn timestamp_is_strictly_before() {
        let at = |s| LtxTarget {
            timestamp: Some(Utc.timestamp_opt(s, 0).single().expect("t")),
            ..Default::default()
        };
        let p = plan(&replica(), &at(149)).expect("plan");
        assert_eq!(names(&p), vec![(9, 1, 0x22), (1, 0x23, 0x29)]);
        let p = plan(&replica(), &at(150)).expect("plan");
        assert_eq!(names(&p), vec![(9, 1, 0x22), (2, 0x23, 0x31)]);
        assert_eq!(plan(&replica(), &at(101)), Err(LtxPlanError::NotAvailable));
    }

    #[test]
    fn no_base_gap_and_overlap() {
        let no_base = levels(&[f(0, 2, 2, 1), f(0, 3, 3, 2)]);
        assert_eq!(
            plan(&no_base, &LtxTarget::default()),
            Err(LtxPlanError::NotAvailable)
        );
        let gap = levels(&[f(0, 1, 1, 1), f(0, 3, 3, 2)]);
        let err = plan(&gap, &LtxTarget::default()).expect_err("gap");
        assert!(
            err.to_string()
                .contains("0000000000000003-0000000000000003.ltx"),
            "{err}"
        );
        let ts = LtxTarget {
            timestamp: Some(Utc.timestamp_opt(10, 0).single().expect("t")),
            ..Default::default()
        };
        assert!(
            matches!(plan(&gap, &ts), Err(LtxPlanError::Gap { .. })),
            "v0.5.17 restores 1 silently"
        );
        // TXIDs 2-3 exist only in a compaction stamped after T: the newest reachable state.
        let late = levels(&[f(0, 1, 1, 1), f(1, 2, 4, 20), f(0, 4, 4, 5)]);
        let p = plan(&late, &ts).expect("resolution limit, not damage");
        assert_eq!(names(&p), vec![(0, 1, 1)]);
        let overlap = levels(&[f(0, 1, 2, 1), f(0, 2, 3, 2)]);
        assert!(matches!(
            plan(&overlap, &LtxTarget::default()),
            Err(LtxPlanError::Overlap { .. })
        ));
    }
}
