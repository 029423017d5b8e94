//! `snapshot-tiers` in the retention plan, on a synthetic calendar: one snapshot a day at 06:00
//! UTC for 60 days (2026-10-09 .. 2026-12-07), each day a new WAL index with two segments,
//! checked at 2026-12-07 12:00 with a 3-day window.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snap(String, u32, SystemTime);
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seg(String, u32, u64);

impl SnapshotEntry for Snap {
    fn generation(&self) -> &str {
        &self.0
    }
    fn index(&self) -> u32 {
        self.1
    }
    fn created_at(&self) -> SystemTime {
        self.2
    }
}
impl SegmentEntry for Seg {
    fn generation(&self) -> &str {
        &self.0
    }
    fn index(&self) -> u32 {
        self.1
    }
}

const OLD: &str = "0000000000000001";
const NEW: &str = "0000000000000002";
const DAYS: u32 = 60;
const WINDOW: Duration = Duration::from_secs(3 * 86400);

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 9).expect("date")
}

/// Day `d` of the calendar (0 = 2026-10-09).
fn day(d: u32) -> NaiveDate {
    first_day() + Days::new(u64::from(d))
}

fn at(date: NaiveDate, hour: u32) -> SystemTime {
    let t = date.and_hms_opt(hour, 0, 0).expect("time").and_utc();
    SystemTime::from(t)
}

fn now() -> SystemTime {
    at(day(DAYS - 1), 12)
}

/// The daily snapshots and segments; days before `split` belong to generation `OLD`, the rest
/// to `NEW`. The WAL index is the day number.
fn calendar(split: u32) -> (Vec<String>, Vec<Snap>, Vec<Seg>) {
    let gen_of = |d: u32| if d < split { OLD } else { NEW };
    let mut gens: Vec<String> = [OLD, NEW]
        .iter()
        .filter(|g| (0..DAYS).any(|d| gen_of(d) == **g))
        .map(|g| g.to_string())
        .collect();
    gens.sort();
    let snaps = (0..DAYS)
        .map(|d| Snap(gen_of(d).to_string(), d, at(day(d), 6)))
        .collect();
    let segs = (0..DAYS)
        .flat_map(|d| [0, 4152].map(|off| Seg(gen_of(d).to_string(), d, off)))
        .collect();
    (gens, snaps, segs)
}

fn tiers(daily: u32, weekly: u32, monthly: u32) -> KeepPolicy {
    KeepPolicy {
        daily,
        weekly,
        monthly,
        ..KeepPolicy::default()
    }
}

fn deletions(
    (gens, snaps, segs): &(Vec<String>, Vec<Snap>, Vec<Seg>),
    policy: Option<&KeepPolicy>,
) -> Deletions<Snap, Seg> {
    match plan_retention(gens, snaps, segs, now(), WINDOW, None, policy) {
        RetentionPlan::Delete(d) => d,
        RetentionPlan::NeedSnapshot => panic!("unexpected NeedSnapshot"),
    }
}

/// The days (as dates) of the snapshots the plan keeps, oldest first.
fn kept_days(all: &[Snap], d: &Deletions<Snap, Seg>) -> Vec<String> {
    all.iter()
        .filter(|s| !d.generations.contains(&s.0) && !d.snapshots.contains(s))
        .map(|s| DateTime::<Utc>::from(s.2).format("%Y-%m-%d").to_string())
        .collect()
}

fn index_of(date: &str) -> u32 {
    (0..DAYS)
        .find(|&d| day(d).to_string() == date)
        .unwrap_or_else(|| panic!("{date} not in the calendar"))
}

/// The days kept with retention 3 days and keep-daily 7, keep-weekly 4, keep-monthly 2, checked
/// on 2026-12-07 12:00 (a Monday): the window (≥ 2026-12-04 12:00) 12-05 .. 12-07; keep-daily
/// 12-01 .. 12-07; keep-weekly (ISO) W50 12-07, W49 12-06, W48 11-29, W47 11-22; keep-monthly
/// 2026-12 12-07, 2026-11 11-30.
const KEPT_7_4_2: [&str; 10] = [
    "2026-11-22",
    "2026-11-29",
    "2026-11-30",
    "2026-12-01",
    "2026-12-02",
    "2026-12-03",
    "2026-12-04",
    "2026-12-05",
    "2026-12-06",
    "2026-12-07",
];

#[test]
fn daily_weekly_monthly_tiers_keep_exactly_the_expected_snapshots() {
    let cal = calendar(0);
    let d = deletions(&cal, Some(&tiers(7, 4, 2)));
    assert_eq!(kept_days(&cal.1, &d), KEPT_7_4_2);
    let m = index_of("2026-12-05");
    assert_eq!(d.bounds, vec![(NEW.to_string(), m)]);
    assert!(d.generations.is_empty() && d.tier_only.is_empty(), "{d:?}");
    // WAL is kept only from the window's bound, exactly as without tiers.
    let kept_wal: Vec<u32> = cal
        .2
        .iter()
        .filter(|s| !d.segments.contains(s))
        .map(|s| s.1)
        .collect();
    assert_eq!(kept_wal, [m, m, m + 1, m + 1, m + 2, m + 2]);
    // The snapshots kept only by a tier, with every reason.
    let reasons: Vec<(u32, Vec<String>)> =
        d.tier_kept.iter().map(|(s, r)| (s.1, r.clone())).collect();
    let expect =
        |date: &str, r: &[&str]| (index_of(date), r.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        reasons,
        vec![
            expect("2026-11-22", &["keep-weekly 2026-W47"]),
            expect("2026-11-29", &["keep-weekly 2026-W48"]),
            expect("2026-11-30", &["keep-monthly 2026-11"]),
            expect("2026-12-01", &["keep-daily 2026-12-01"]),
            expect("2026-12-02", &["keep-daily 2026-12-02"]),
            expect("2026-12-03", &["keep-daily 2026-12-03"]),
            expect("2026-12-04", &["keep-daily 2026-12-04"]),
        ]
    );
}

#[test]
fn without_tiers_the_window_alone_decides() {
    let cal = calendar(0);
    let d = deletions(&cal, None);
    assert_eq!(
        kept_days(&cal.1, &d),
        ["2026-12-05", "2026-12-06", "2026-12-07"]
    );
    assert!(d.tier_kept.is_empty() && d.tier_only.is_empty());
    let tiered = deletions(&cal, Some(&tiers(7, 4, 2)));
    assert_eq!(
        tiered.segments, d.segments,
        "tiers never change which WAL goes"
    );
}

#[test]
fn an_old_generation_kept_by_a_tier_loses_its_wal_and_other_snapshots() {
    // OLD holds 2026-10-09 .. 2026-11-15, NEW the rest; keep-monthly 3 keeps OLD's 10-31.
    let split = index_of("2026-11-16");
    let cal = calendar(split);
    let d = deletions(&cal, Some(&tiers(7, 4, 3)));
    let mut expected = vec!["2026-10-31"];
    expected.extend(KEPT_7_4_2);
    assert_eq!(kept_days(&cal.1, &d), expected);
    assert!(d.generations.is_empty(), "{d:?}");
    assert_eq!(d.tier_only, vec![OLD.to_string()]);
    assert_eq!(d.bounds, vec![(NEW.to_string(), index_of("2026-12-05"))]);
    let old_wal_kept = cal
        .2
        .iter()
        .filter(|s| s.0 == OLD && !d.segments.contains(s))
        .count();
    assert_eq!(old_wal_kept, 0, "a tier-only generation keeps no WAL");
    let old_snaps_deleted = d.snapshots.iter().filter(|s| s.0 == OLD).count();
    assert_eq!(old_snaps_deleted, split as usize - 1);
    // With keep-monthly 2, no tier keeps anything of OLD: it goes whole, as without tiers.
    let d = deletions(&cal, Some(&tiers(7, 4, 2)));
    assert_eq!(d.generations, vec![OLD.to_string()]);
    assert!(d.tier_only.is_empty());
    assert!(
        d.snapshots
            .iter()
            .chain(d.tier_kept.iter().map(|(s, _)| s))
            .all(|s| s.0 == NEW)
    );
}

#[test]
fn need_snapshot_looks_at_the_window_only() {
    // Nothing in the window: a snapshot is needed even though tiers keep old ones.
    let (gens, snaps, segs) = calendar(0);
    let old: Vec<Snap> = snaps
        .iter()
        .filter(|s| s.1 < index_of("2026-12-01"))
        .cloned()
        .collect();
    let p = plan_retention(
        &gens,
        &old,
        &segs,
        now(),
        WINDOW,
        None,
        Some(&tiers(7, 4, 2)),
    );
    assert_eq!(p, RetentionPlan::NeedSnapshot);
}

/// Property: with tiers, over pseudo-random listings, a tier-kept snapshot is never deleted,
/// WAL deletions equal the window plan's (plus all WAL of tier-only generations, which the
/// window plan deletes with their generation), and tiers only ever keep more.
#[test]
fn tiers_only_ever_keep_more_and_never_change_wal() {
    let gens = [OLD, NEW];
    let mut next = super::tests::pseudo_random(7);
    let hour = 3600u64;
    let base = at(first_day(), 0);
    let now = base + Duration::from_secs(40 * 24 * hour);
    for _ in 0..500 {
        let snaps: Vec<Snap> = (0..next(12))
            .map(|_| {
                let t = base + Duration::from_secs(next(40 * 24) * hour);
                Snap(gens[next(2) as usize].to_string(), next(10) as u32, t)
            })
            .collect();
        let segs: Vec<Seg> = (0..next(12))
            .map(|_| {
                Seg(
                    gens[next(2) as usize].to_string(),
                    next(10) as u32,
                    next(4) * 32,
                )
            })
            .collect();
        let g: Vec<String> = gens.iter().map(|g| g.to_string()).collect();
        let policy = KeepPolicy {
            last: next(3) as u32,
            hourly: next(3) as u32,
            daily: next(4) as u32,
            weekly: next(3) as u32,
            monthly: next(2) as u32,
            yearly: 0,
        };
        let plain = plan_retention(&g, &snaps, &segs, now, WINDOW, None, None);
        let tiered = plan_retention(&g, &snaps, &segs, now, WINDOW, None, Some(&policy));
        let (RetentionPlan::Delete(plain), RetentionPlan::Delete(tiered)) = (&plain, &tiered)
        else {
            assert_eq!(plain, RetentionPlan::NeedSnapshot);
            assert_eq!(tiered, RetentionPlan::NeedSnapshot);
            continue;
        };
        assert_eq!(plain.bounds, tiered.bounds);
        let gone = |d: &Deletions<Snap, Seg>, s: &Snap| {
            d.generations.contains(&s.0) || d.snapshots.contains(s)
        };
        for (s, reasons) in &tiered.tier_kept {
            assert!(
                !reasons.is_empty() && !gone(tiered, s) && gone(plain, s),
                "{s:?}"
            );
        }
        for s in &snaps {
            if gone(tiered, s) {
                assert!(gone(plain, s), "tiers deleted {s:?} the window keeps");
            } else if gone(plain, s) {
                assert!(
                    tiered.tier_kept.iter().any(|(k, _)| k == s),
                    "{s:?} kept without a tier"
                );
            }
        }
        for s in &segs {
            let by_plain = plain.generations.contains(&s.0) || plain.segments.contains(s);
            let by_tiered = tiered.generations.contains(&s.0) || tiered.segments.contains(s);
            assert_eq!(by_plain, by_tiered, "{s:?}");
        }
        for g in &tiered.tier_only {
            assert!(plain.generations.contains(g));
            assert!(tiered.tier_kept.iter().any(|(s, _)| &s.0 == g));
        }
    }
}
