//! Unit tests for restore planning: each case is a situation from spec §5.1–§5.2 whose answer
//! was taken from Litestream v0.3.13's code paths.

use super::*;
use chrono::TimeZone;

const G1: &str = "1111111111111111";
const G2: &str = "2222222222222222";

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .expect("valid time")
}

fn snap(generation: &str, index: u32, at: i64) -> SnapshotInfo {
    SnapshotInfo {
        generation: generation.to_string(),
        index,
        size: 100,
        created_at: t(at),
    }
}

fn seg(generation: &str, index: u32, offset: u64, at: i64) -> SegmentInfo {
    SegmentInfo {
        generation: generation.to_string(),
        index,
        offset,
        size: 10,
        created_at: t(at),
    }
}

fn listing(generation: &str, snaps: &[(u32, i64)], segs: &[(u32, u64, i64)]) -> GenerationListing {
    GenerationListing {
        generation: generation.to_string(),
        snapshots: snaps
            .iter()
            .map(|&(i, at)| snap(generation, i, at))
            .collect(),
        segments: segs
            .iter()
            .map(|&(i, o, at)| seg(generation, i, o, at))
            .collect(),
    }
}

/// A generation with snapshots at indices 0 and 2 and three indices of WAL.
fn sample() -> GenerationListing {
    listing(
        G1,
        &[(0, 0), (2, 20)],
        &[
            (0, 0, 1),
            (0, 4152, 5),
            (1, 0, 10),
            (1, 8272, 12),
            (2, 0, 20),
            (2, 4152, 25),
            (3, 0, 30),
        ],
    )
}

fn offsets(plan: &RestorePlan) -> Vec<(u32, Vec<u64>)> {
    plan.wal
        .iter()
        .map(|p| (p.index, p.segments.iter().map(|s| s.offset).collect()))
        .collect()
}

#[test]
fn bounds_cover_snapshots_and_segments() {
    let b = generation_bounds(&sample()).expect("bounds");
    assert_eq!((b.created_at, b.updated_at), (t(0), t(30)));
    assert_eq!(generation_bounds(&listing(G1, &[], &[])), None);
}

#[test]
fn latest_generation_is_greatest_updated_at() {
    let gens = [
        listing(G1, &[(0, 0)], &[(0, 0, 50)]),
        listing(G2, &[(0, 10)], &[(0, 0, 40)]),
    ];
    let (g, at) = choose_generation(&gens, None, &Target::Latest).expect("chosen");
    assert_eq!((g.generation.as_str(), at), (G1, t(50)));
}

#[test]
fn generation_tie_keeps_first_in_listing_order() {
    let gens = [
        listing(G1, &[(0, 0)], &[(0, 0, 50)]),
        listing(G2, &[(0, 10)], &[(0, 0, 50)]),
    ];
    let (g, _) = choose_generation(&gens, None, &Target::Latest).expect("chosen");
    assert_eq!(g.generation, G1);
}

#[test]
fn timestamp_must_lie_inside_generation_bounds() {
    let gens = [
        listing(G1, &[(0, 0)], &[(0, 0, 10)]),
        listing(G2, &[(0, 20)], &[(0, 0, 30)]),
    ];
    let pick = |secs| {
        choose_generation(&gens, None, &Target::Timestamp(t(secs)))
            .map(|(g, _)| g.generation.clone())
    };
    assert_eq!(pick(5).as_deref(), Some(G1));
    assert_eq!(pick(10).as_deref(), Some(G1));
    assert_eq!(pick(25).as_deref(), Some(G2));
    assert_eq!(pick(15), None, "between generations");
    assert_eq!(pick(31), None, "after the newest file");
    assert_eq!(pick(-1), None, "before the first file");
}

/// Litestream v0.5.17's v0.3 fallback (`RestoreV3`): the generation of the newest snapshot at or
/// before T, whatever its last write; between and after generations it still restores.
#[test]
fn v05_fallback_takes_the_newest_snapshot_before_t() {
    let gens = [
        listing(G1, &[(0, 0)], &[(0, 0, 10)]),
        listing(G2, &[(0, 20)], &[(0, 0, 30)]),
    ];
    let pick = |target: Target| choose_generation_v05(&gens, &target).map(|g| g.generation.clone());
    assert_eq!(pick(Target::Timestamp(t(5))).as_deref(), Some(G1));
    assert_eq!(
        pick(Target::Timestamp(t(15))).as_deref(),
        Some(G1),
        "between generations"
    );
    assert_eq!(
        pick(Target::Timestamp(t(20))).as_deref(),
        Some(G2),
        "at the snapshot"
    );
    assert_eq!(
        pick(Target::Timestamp(t(99))).as_deref(),
        Some(G2),
        "after the last write"
    );
    assert_eq!(
        pick(Target::Timestamp(t(-1))),
        None,
        "before every snapshot"
    );
    assert_eq!(pick(Target::Latest).as_deref(), Some(G2));
    // A generation whose segments are newer but whose snapshot is older loses (v0.3.13 would
    // take it: its updatedAt is the greatest).
    let gens = [
        listing(G1, &[(0, 0)], &[(0, 0, 50)]),
        listing(G2, &[(0, 10)], &[(0, 0, 40)]),
    ];
    assert_eq!(
        choose_generation_v05(&gens, &Target::Latest).map(|g| g.generation.as_str()),
        Some(G2)
    );
    assert_eq!(
        choose_generation(&gens, None, &Target::Latest).map(|(g, _)| g.generation.as_str()),
        Some(G1)
    );
}

#[test]
fn generation_filter_and_empty_generations() {
    let gens = [listing(G1, &[(0, 0)], &[(0, 0, 50)]), listing(G2, &[], &[])];
    assert!(choose_generation(&gens, Some(G2), &Target::Latest).is_none());
    assert!(choose_generation(&gens, Some("ffffffffffffffff"), &Target::Latest).is_none());
    let (g, _) = choose_generation(&gens, Some(G1), &Target::Latest).expect("chosen");
    assert_eq!(g.generation, G1);
}

#[test]
fn latest_uses_newest_snapshot_and_all_segments() {
    let p = plan(&sample(), &Target::Latest).expect("plan");
    assert_eq!(p.snapshot.index, 2);
    assert_eq!(offsets(&p), vec![(2, vec![0, 4152]), (3, vec![0])]);
    assert!(!p.snapshot_only);
    assert_eq!(p.max_index(), Some(3));
}

#[test]
fn latest_snapshot_is_by_created_at_not_index() {
    // An older index re-snapshotted later wins in latest mode (Go compares CreatedAt).
    let l = listing(G1, &[(0, 40), (2, 20)], &[(0, 0, 1), (1, 0, 2), (2, 0, 21)]);
    let p = plan(&l, &Target::Latest).expect("plan");
    assert_eq!(p.snapshot.index, 0);
    assert_eq!(offsets(&p), vec![(0, vec![0]), (1, vec![0]), (2, vec![0])]);
}

#[test]
fn snapshot_created_at_tie_keeps_lower_index() {
    let l = listing(
        G1,
        &[(3, 20), (1, 20)],
        &[(1, 0, 20), (2, 0, 20), (3, 0, 20)],
    );
    let p = plan(&l, &Target::Latest).expect("plan");
    assert_eq!(p.snapshot.index, 1);
    assert_eq!(p.wal.len(), 3);
}

#[test]
fn timestamp_picks_snapshot_and_cuts_segments() {
    let p = plan(&sample(), &Target::Timestamp(t(11))).expect("plan");
    assert_eq!(p.snapshot.index, 0);
    assert_eq!(offsets(&p), vec![(0, vec![0, 4152]), (1, vec![0])]);

    let p = plan(&sample(), &Target::Timestamp(t(22))).expect("plan");
    assert_eq!(p.snapshot.index, 2);
    assert_eq!(offsets(&p), vec![(2, vec![0])]);
}

#[test]
fn timestamp_before_any_snapshot_is_an_error() {
    let l = listing(G1, &[(0, 5)], &[(0, 0, 1)]);
    assert_eq!(
        plan(&l, &Target::Timestamp(t(2))),
        Err(PlanError::NoSnapshotForTimestamp)
    );
    assert_eq!(
        PlanError::NoSnapshotForTimestamp.to_string(),
        "cannot find snapshot index by timestamp: no snapshots available"
    );
}

#[test]
fn timestamp_stops_at_first_later_segment_even_if_later_ones_are_older() {
    // Go `break`s: a segment listed after a too-new one is not used even if its time fits.
    let l = listing(G1, &[(0, 0)], &[(0, 0, 1), (0, 4152, 9), (1, 0, 3)]);
    let p = plan(&l, &Target::Timestamp(t(5))).expect("plan");
    assert_eq!(offsets(&p), vec![(0, vec![0])]);
}

#[test]
fn timestamp_with_snapshot_newer_than_selected_segments_is_snapshot_then_nothing() {
    // Snapshot of index 2 taken before segment 2/0 was written: segments stop at index 1, so no
    // WAL is applied (indices below the snapshot are never replayed).
    let l = listing(G1, &[(0, 0), (2, 20)], &[(0, 0, 1), (1, 0, 10), (2, 0, 21)]);
    let p = plan(&l, &Target::Timestamp(t(20))).expect("plan");
    assert_eq!(p.snapshot.index, 2);
    assert!(p.wal.is_empty());
    assert!(!p.snapshot_only);
}

#[test]
fn index_picks_highest_snapshot_at_or_below() {
    let p = plan(&sample(), &Target::Index(1)).expect("plan");
    assert_eq!(p.snapshot.index, 0);
    assert_eq!(offsets(&p), vec![(0, vec![0, 4152]), (1, vec![0, 8272])]);

    let p = plan(&sample(), &Target::Index(2)).expect("plan");
    assert_eq!(p.snapshot.index, 2);
    assert_eq!(offsets(&p), vec![(2, vec![0, 4152])]);

    let p = plan(&sample(), &Target::Index(0x50)).expect("plan");
    assert_eq!(
        p.max_index(),
        Some(3),
        "an index past the end is not an error"
    );
}

#[test]
fn index_below_every_snapshot_is_an_error() {
    let l = listing(G1, &[(1, 0)], &[(1, 0, 1)]);
    assert_eq!(
        plan(&l, &Target::Index(0)),
        Err(PlanError::NoSnapshotForIndex)
    );
    assert_eq!(
        plan(&l, &Target::Index(-1)),
        Err(PlanError::NoSnapshotForIndex)
    );
}

#[test]
fn snapshot_only_when_no_segments() {
    let l = listing(G1, &[(0, 0)], &[]);
    let p = plan(&l, &Target::Latest).expect("plan");
    assert!(p.snapshot_only);
    assert!(p.wal.is_empty());
}

#[test]
fn missing_initial_segment_names_generation_index_offset() {
    let l = listing(G1, &[(0, 0)], &[(0, 0, 1), (1, 4152, 2)]);
    let err = plan(&l, &Target::Latest).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot find max wal index for restore: missing initial wal segment: generation={G1} index=00000001 offset=4152"
        )
    );
}

#[test]
fn missing_initial_segment_below_snapshot_index_still_fails() {
    // Litestream checks every listed segment, including those before the snapshot.
    let l = listing(G1, &[(2, 0)], &[(0, 4152, 1), (2, 0, 2)]);
    assert!(matches!(
        plan(&l, &Target::Latest),
        Err(PlanError::MissingInitialSegment { index: 0, .. })
    ));
}

#[test]
fn missing_index_in_applied_range() {
    let l = listing(G1, &[(0, 0)], &[(0, 0, 1), (2, 0, 2)]);
    let err = plan(&l, &Target::Latest).expect_err("must fail");
    assert_eq!(err.to_string(), format!("missing WAL index: {G1}/00000001"));
}

#[test]
fn duplicate_offsets_are_out_of_order() {
    let l = listing(G1, &[(0, 0)], &[(0, 0, 1), (0, 4152, 2), (0, 4152, 3)]);
    let err = plan(&l, &Target::Latest).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot find max wal index for restore: wal segments out of order: generation={G1} index=00000000 offsets=(4152,4152)"
        )
    );
}

#[test]
fn unsorted_input_is_sorted_first() {
    let mut l = sample();
    l.segments.reverse();
    l.snapshots.reverse();
    let p = plan(&l, &Target::Latest).expect("plan");
    assert_eq!(offsets(&p), vec![(2, vec![0, 4152]), (3, vec![0])]);
}

#[test]
fn target_from_flags_treats_max_int32_as_no_index() {
    assert_eq!(Target::from_flags(Some(NO_INDEX), None), Target::Latest);
    assert_eq!(Target::from_flags(Some(3), None), Target::Index(3));
    assert_eq!(
        Target::from_flags(None, Some(t(1))),
        Target::Timestamp(t(1))
    );
    assert_eq!(
        Target::from_flags(Some(3), Some(t(1))),
        Target::Timestamp(t(1))
    );
}

#[test]
fn download_size_counts_snapshot_and_selected_segments() {
    let p = plan(&sample(), &Target::Latest).expect("plan");
    assert_eq!(p.download_size(), 100 + 3 * 10);
}

/// A snapshot kept by `snapshot-tiers` (index 1, no WAL of its own) between a restore point at
/// `-timestamp` and the window (snapshot 5 and its WAL): the plan is Litestream's (snapshot 1
/// only) and `wal_gap` names the snapshot's time and the next object's.
#[test]
fn timestamp_between_tier_snapshots_is_a_snapshot_only_gap() {
    let l = listing(
        G1,
        &[(1, 0), (3, 100), (5, 200)],
        &[(5, 0, 200), (5, 4152, 210)],
    );
    let target = Target::Timestamp(t(50));
    let p = plan(&l, &target).expect("plan");
    assert_eq!((p.snapshot.index, p.snapshot_only), (1, true));
    assert_eq!(wal_gap(&l, &p, &target), Some((t(0), t(100))));
    let target = Target::Timestamp(t(150));
    let p = plan(&l, &target).expect("plan");
    assert_eq!(p.snapshot.index, 3);
    assert_eq!(wal_gap(&l, &p, &target), Some((t(100), t(200))));
    // At the snapshot's own time, after the window's WAL starts, or without a timestamp: no gap.
    for target in [
        Target::Timestamp(t(100)),
        Target::Timestamp(t(205)),
        Target::Latest,
    ] {
        let p = plan(&l, &target).expect("plan");
        assert_eq!(wal_gap(&l, &p, &target), None, "{target:?}");
    }
}

/// The usual v0.3 case: a timestamp between a snapshot and the first upload of its own index's
/// WAL is snapshot-only too, but that WAL continues from the snapshot: no gap to report.
#[test]
fn timestamp_before_the_snapshots_own_wal_is_no_gap() {
    let l = listing(G1, &[(0, 0)], &[(0, 0, 10), (0, 4152, 20)]);
    let target = Target::Timestamp(t(5));
    let p = plan(&l, &target).expect("plan");
    assert!(p.snapshot_only);
    assert_eq!(wal_gap(&l, &p, &target), None);
}
