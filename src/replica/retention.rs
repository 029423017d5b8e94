//! Retention planning (spec §4.5), kept pure so it can be tested exhaustively.
//!
//! What must stay true:
//! - a snapshot is *retained* when `created_at >= now - retention`;
//! - when nothing is retained the plan asks for a new snapshot first ([`RetentionPlan::NeedSnapshot`])
//!   and the caller re-plans with that snapshot forced into the retained set;
//! - a generation without any retained snapshot is deleted whole; otherwise, with `m` = the smallest
//!   index among its retained snapshots, exactly the snapshots and WAL segments with index `< m` are
//!   deleted — so nothing the oldest retained snapshot needs (its own index onward) is ever planned
//!   for deletion;
//! - with `snapshot-tiers` (a [`KeepPolicy`]), the snapshots of all generations, newest first by
//!   `created_at`, get [`KeepPolicy::reasons`]; a snapshot a tier keeps is never deleted, even
//!   below `m` or in a generation without a retained snapshot. Such a generation is not deleted
//!   whole: its other snapshots and all its WAL go ([`Deletions::tier_only`]). WAL is deleted
//!   exactly as without tiers (a v0.3 snapshot is a whole database image: a tier-kept snapshot
//!   is a snapshot-only restore point and needs no WAL). `NeedSnapshot` looks at the window
//!   only. Without tiers the plan is exactly Litestream v0.3.13's;
//! - the plan never mentions an object that was not in its input.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::config::KeepPolicy;

/// What the planner needs to know about a stored snapshot.
pub trait SnapshotEntry: Clone {
    fn generation(&self) -> &str;
    fn index(&self) -> u32;
    fn created_at(&self) -> SystemTime;
}

/// What the planner needs to know about a stored WAL segment.
pub trait SegmentEntry: Clone {
    fn generation(&self) -> &str;
    fn index(&self) -> u32;
}

/// The outcome of one retention check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionPlan<S, W> {
    /// No snapshot is recent enough: take one, then plan again forcing it retained.
    NeedSnapshot,
    /// Objects to delete; an empty plan deletes nothing.
    Delete(Deletions<S, W>),
}

/// Deletions for one retention check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletions<S, W> {
    /// Generations without a retained snapshot: delete everything under them.
    pub generations: Vec<String>,
    /// Per surviving generation, the bound `m` (smallest retained snapshot index).
    pub bounds: Vec<(String, u32)>,
    /// Generations without a retained snapshot that a tier keeps a snapshot of: not deleted
    /// whole; their other snapshots and all their segments are listed below.
    pub tier_only: Vec<String>,
    /// Snapshots with index `< m` in surviving generations, and the snapshots a tier does not
    /// keep in `tier_only` generations.
    pub snapshots: Vec<S>,
    /// Segments with index `< m` in surviving generations, and every segment of `tier_only`
    /// generations.
    pub segments: Vec<W>,
    /// Snapshots kept only because a tier keeps them (the window would delete them), with the
    /// tier reasons (`keep-daily 2026-12-05`). Not a deletion.
    pub tier_kept: Vec<(S, Vec<String>)>,
}

impl<S, W> Deletions<S, W> {
    pub fn is_empty(&self) -> bool {
        self.generations.is_empty() && self.snapshots.is_empty() && self.segments.is_empty()
    }
}

/// Plans one retention check.
///
/// `generations` lists every generation on the replica (including ones holding no snapshot), the
/// slices list every snapshot and segment of every generation. `force_retained` names a snapshot
/// `(generation, index)` that counts as retained whatever its timestamp (the one just taken after
/// [`RetentionPlan::NeedSnapshot`]). `tiers` is the replica's `snapshot-tiers`.
pub fn plan_retention<S: SnapshotEntry, W: SegmentEntry>(
    generations: &[String],
    snapshots: &[S],
    segments: &[W],
    now: SystemTime,
    retention: Duration,
    force_retained: Option<(&str, u32)>,
    tiers: Option<&KeepPolicy>,
) -> RetentionPlan<S, W> {
    let cutoff = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut min_retained: BTreeMap<&str, u32> = BTreeMap::new();
    for s in snapshots {
        let forced = force_retained == Some((s.generation(), s.index()));
        if forced || s.created_at() >= cutoff {
            let m = min_retained.entry(s.generation()).or_insert(s.index());
            *m = (*m).min(s.index());
        }
    }
    if let Some((generation, index)) = force_retained {
        let m = min_retained.entry(generation).or_insert(index);
        *m = (*m).min(index);
    }
    if min_retained.is_empty() {
        return RetentionPlan::NeedSnapshot;
    }
    let tier_reasons = tiers.map_or_else(Vec::new, |t| tier_reasons(snapshots, t));
    let tier_kept = |i: usize| tier_reasons.get(i).is_some_and(|r| !r.is_empty());
    let all: BTreeSet<&str> = generations
        .iter()
        .map(String::as_str)
        .chain(snapshots.iter().map(|s| s.generation()))
        .chain(segments.iter().map(|s| s.generation()))
        .collect();
    let tier_only: BTreeSet<&str> = (0..snapshots.len())
        .filter(|&i| tier_kept(i))
        .filter_map(|i| snapshots.get(i).map(SnapshotEntry::generation))
        .filter(|g| !min_retained.contains_key(g))
        .collect();
    // The window's verdict: `None` for a generation that goes whole (listed under `generations`).
    let in_window = |generation: &str, index: u32| match min_retained.get(generation) {
        Some(&m) => Some(index >= m),
        None if tier_only.contains(generation) => Some(false),
        None => None,
    };
    let indexed = snapshots.iter().enumerate();
    RetentionPlan::Delete(Deletions {
        generations: all
            .iter()
            .filter(|g| !min_retained.contains_key(*g) && !tier_only.contains(*g))
            .map(|g| g.to_string())
            .collect(),
        bounds: min_retained
            .iter()
            .filter(|(g, _)| all.contains(*g))
            .map(|(g, m)| (g.to_string(), *m))
            .collect(),
        tier_only: tier_only.iter().map(|g| g.to_string()).collect(),
        snapshots: indexed
            .clone()
            .filter(|(i, s)| in_window(s.generation(), s.index()) == Some(false) && !tier_kept(*i))
            .map(|(_, s)| s.clone())
            .collect(),
        segments: segments
            .iter()
            .filter(|s| in_window(s.generation(), s.index()) == Some(false))
            .cloned()
            .collect(),
        tier_kept: indexed
            .filter(|(i, s)| tier_kept(*i) && in_window(s.generation(), s.index()) == Some(false))
            .filter_map(|(i, s)| Some((s.clone(), tier_reasons.get(i)?.clone())))
            .collect(),
    })
}

/// The tier reasons of every snapshot, in input order: the snapshots of all generations are
/// judged together, newest first by `created_at` (ties: the later generation, then the higher
/// index first).
fn tier_reasons<S: SnapshotEntry>(snapshots: &[S], tiers: &KeepPolicy) -> Vec<Vec<String>> {
    let mut order: Vec<usize> = (0..snapshots.len()).collect();
    let key = |i: &usize| {
        snapshots
            .get(*i)
            .map(|s| (s.created_at(), s.generation().to_string(), s.index()))
    };
    order.sort_by_key(|i| std::cmp::Reverse(key(i)));
    let times: Vec<DateTime<Utc>> = order
        .iter()
        .filter_map(|&i| {
            snapshots
                .get(i)
                .map(|s| DateTime::<Utc>::from(s.created_at()))
        })
        .collect();
    let mut out = vec![Vec::new(); snapshots.len()];
    for (i, reasons) in order.into_iter().zip(tiers.reasons(&times)) {
        if let Some(slot) = out.get_mut(i) {
            *slot = reasons;
        }
    }
    out
}

#[cfg(test)]
#[path = "retention_tiers_tests.rs"]
mod tiers_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Snap(&'static str, u32, u64);
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seg(&'static str, u32, u64);

    impl SnapshotEntry for Snap {
        fn generation(&self) -> &str {
            self.0
        }
        fn index(&self) -> u32 {
            self.1
        }
        fn created_at(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(self.2)
        }
    }
    impl SegmentEntry for Seg {
        fn generation(&self) -> &str {
            self.0
        }
        fn index(&self) -> u32 {
            self.1
        }
    }

    const G1: &str = "1111111111111111";
    const G2: &str = "2222222222222222";
    const RET: Duration = Duration::from_secs(100);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn plan(
        gens: &[&str],
        snaps: &[Snap],
        segs: &[Seg],
        now: u64,
        forced: Option<(&str, u32)>,
    ) -> RetentionPlan<Snap, Seg> {
        let gens: Vec<String> = gens.iter().map(|g| g.to_string()).collect();
        let p = plan_retention(&gens, snaps, segs, at(now), RET, forced, None);
        if let RetentionPlan::Delete(d) = &p {
            assert!(d.tier_only.is_empty() && d.tier_kept.is_empty(), "{d:?}");
        }
        p
    }

    fn deletions(p: RetentionPlan<Snap, Seg>) -> Deletions<Snap, Seg> {
        match p {
            RetentionPlan::Delete(d) => d,
            RetentionPlan::NeedSnapshot => panic!("unexpected NeedSnapshot"),
        }
    }

    #[test]
    fn nothing_retained_asks_for_snapshot() {
        let snaps = [Snap(G1, 0, 10), Snap(G1, 3, 50)];
        assert_eq!(
            plan(&[G1], &snaps, &[], 200, None),
            RetentionPlan::NeedSnapshot
        );
        assert_eq!(
            plan(&[G1], &[], &[], 200, None),
            RetentionPlan::NeedSnapshot
        );
    }

    #[test]
    fn boundary_is_inclusive() {
        // created exactly at now - retention is retained.
        let snaps = [Snap(G1, 2, 100)];
        let d = deletions(plan(&[G1], &snaps, &[Seg(G1, 1, 0)], 200, None));
        assert_eq!(d.bounds, vec![(G1.to_string(), 2)]);
        assert_eq!(d.segments, vec![Seg(G1, 1, 0)]);
    }

    #[test]
    fn deletes_below_smallest_retained_index() {
        let snaps = [
            Snap(G1, 0, 10),
            Snap(G1, 4, 120),
            Snap(G1, 7, 150),
            Snap(G1, 2, 90),
        ];
        let segs = [
            Seg(G1, 0, 0),
            Seg(G1, 3, 32),
            Seg(G1, 4, 0),
            Seg(G1, 4, 4152),
            Seg(G1, 9, 0),
        ];
        let d = deletions(plan(&[G1], &snaps, &segs, 200, None));
        assert!(d.generations.is_empty());
        assert_eq!(d.bounds, vec![(G1.to_string(), 4)]);
        assert_eq!(d.snapshots, vec![Snap(G1, 0, 10), Snap(G1, 2, 90)]);
        assert_eq!(d.segments, vec![Seg(G1, 0, 0), Seg(G1, 3, 32)]);
    }

    #[test]
    fn old_segments_of_retained_index_are_kept() {
        // Index 5 was re-snapshotted recently; its early segments are still needed.
        let snaps = [Snap(G1, 5, 190)];
        let segs = [Seg(G1, 5, 0), Seg(G1, 5, 8272)];
        let d = deletions(plan(&[G1], &snaps, &segs, 200, None));
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn generation_without_retained_snapshot_is_deleted_whole() {
        let snaps = [Snap(G1, 0, 10), Snap(G2, 1, 150)];
        let segs = [Seg(G1, 0, 0), Seg(G2, 1, 0)];
        let empty_gen = "3333333333333333";
        let d = deletions(plan(&[G1, G2, empty_gen], &snaps, &segs, 200, None));
        assert_eq!(d.generations, vec![G1.to_string(), empty_gen.to_string()]);
        assert_eq!(d.bounds, vec![(G2.to_string(), 1)]);
        // Objects of deleted generations are removed via the generation, not listed twice.
        assert!(d.snapshots.is_empty());
        assert!(d.segments.is_empty());
    }

    #[test]
    fn forced_snapshot_counts_as_retained() {
        // A snapshot just taken may carry a storage timestamp older than the cutoff (clock skew).
        let snaps = [Snap(G1, 0, 10), Snap(G1, 6, 20)];
        let segs = [Seg(G1, 0, 0), Seg(G1, 6, 0)];
        let d = deletions(plan(&[G1], &snaps, &segs, 500, Some((G1, 6))));
        assert_eq!(d.bounds, vec![(G1.to_string(), 6)]);
        assert_eq!(d.snapshots, vec![Snap(G1, 0, 10)]);
        assert_eq!(d.segments, vec![Seg(G1, 0, 0)]);
        // Forced but not yet visible in the listing: still protects its generation.
        let d = deletions(plan(&[G1], &snaps[..1], &segs, 500, Some((G1, 6))));
        assert!(d.generations.is_empty());
        assert_eq!(d.snapshots, vec![Snap(G1, 0, 10)]);
    }

    /// A deterministic pseudo-random source (an LCG from `seed`): `next(n)` is in `0..n`.
    pub(super) fn pseudo_random(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |n| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        }
    }

    /// Property: for pseudo-random inputs, nothing at or above the bound of a surviving
    /// generation is deleted, and everything below it is.
    #[test]
    fn never_deletes_what_oldest_retained_snapshot_needs() {
        let gens = [G1, G2];
        let mut next = pseudo_random(1);
        for _ in 0..500 {
            let snaps: Vec<Snap> = (0..next(6))
                .map(|_| Snap(gens[next(2) as usize], next(8) as u32, next(300)))
                .collect();
            let segs: Vec<Seg> = (0..next(10))
                .map(|_| Seg(gens[next(2) as usize], next(8) as u32, next(5) * 32))
                .collect();
            let p = plan(&gens, &snaps, &segs, 300, None);
            let RetentionPlan::Delete(d) = p else {
                assert!(snaps.iter().all(|s| s.2 < 200));
                continue;
            };
            for g in gens {
                let m = snaps
                    .iter()
                    .filter(|s| s.0 == g && s.2 >= 200)
                    .map(|s| s.1)
                    .min();
                match m {
                    None => assert!(d.generations.contains(&g.to_string())),
                    Some(m) => {
                        assert!(!d.generations.contains(&g.to_string()));
                        for s in snaps.iter().filter(|s| s.0 == g) {
                            assert_eq!(d.snapshots.contains(s), s.1 < m, "{s:?} m={m}");
                        }
                        for s in segs.iter().filter(|s| s.0 == g) {
                            assert_eq!(d.segments.contains(s), s.1 < m, "{s:?} m={m}");
                        }
                    }
                }
            }
        }
    }
}
