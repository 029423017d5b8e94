//! When the next scheduled backup of a database is due (`backups.schedule`), as pure functions
//! of the time, the schedule, the newest `scheduled` backup and a per-database jitter; the
//! loop that waits and takes the backups is `replicate::backup_schedule`.
//!
//! What must stay true:
//! - no state besides the backups themselves: the next run follows from the newest scheduled
//!   backup's `created`, so a restart neither repeats a run nor forgets one;
//! - a run missed while walstream was down (or the first run ever) is due once, at
//!   `now + jitter`: after it, the newest backup is recent and the next run is in the future;
//! - `interval`: due at `newest + interval`; `at`: the first `HH:MM` (UTC) + jitter strictly
//!   after the newest backup; both given: whichever comes first;
//! - jitter is a deterministic function of the database path, below [`max_jitter`] (a tenth of
//!   the interval and at most [`DEFAULT_MAX_JITTER`] unless `jitter:` says otherwise; never more
//!   than half the interval, never more than [`AT_JITTER_CAP`] with `at` times), so a fleet
//!   started together spreads its backups instead of taking them all in the same second.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::config::BackupSchedule;

/// Largest default jitter: a fleet's backups spread over five minutes.
pub const DEFAULT_MAX_JITTER: Duration = Duration::from_secs(5 * 60);
/// Largest jitter with `at` times (the backup stays within the hour it was asked for).
pub const AT_JITTER_CAP: Duration = Duration::from_secs(60 * 60);

/// The bound of the per-database jitter of `s` (the jitter is below it; zero: none).
pub fn max_jitter(s: &BackupSchedule) -> Duration {
    let mut max = s.jitter.unwrap_or(DEFAULT_MAX_JITTER);
    if let Some(i) = s.interval {
        max = max.min(i / 2);
        if s.jitter.is_none() {
            max = max.min(i / 10);
        }
    }
    if !s.at.is_empty() {
        max = max.min(AT_JITTER_CAP);
    }
    max
}

/// The jitter of the database at `db_path`: a hash of the path, below [`max_jitter`], whole
/// milliseconds.
pub fn jitter_for(db_path: &Path, s: &BackupSchedule) -> Duration {
    let bound = u64::try_from(max_jitter(s).as_millis()).unwrap_or(u64::MAX);
    if bound == 0 {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(db_path.as_os_str().as_encoded_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % bound)
}

/// When the next scheduled backup is due, given the newest existing one.
pub fn next_run(
    now: DateTime<Utc>,
    s: &BackupSchedule,
    newest: Option<DateTime<Utc>>,
    jitter: Duration,
) -> DateTime<Utc> {
    let jitter = TimeDelta::from_std(jitter).unwrap_or(TimeDelta::zero());
    let Some(newest) = newest else {
        return now + jitter;
    };
    let by_interval = s
        .interval
        .and_then(|i| TimeDelta::from_std(i).ok())
        .and_then(|i| newest.checked_add_signed(i));
    let by_calendar = first_slot_after(newest, &s.at, jitter);
    let due = match (by_interval, by_calendar) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(DateTime::<Utc>::MAX_UTC),
    };
    if due <= now { now + jitter } else { due }
}

/// The first `day + minute + jitter` (a minute of `at`) strictly after `after`.
fn first_slot_after(after: DateTime<Utc>, at: &[u32], jitter: TimeDelta) -> Option<DateTime<Utc>> {
    let first_day = after.date_naive().checked_sub_days(Days::new(1))?;
    (0..3)
        .filter_map(|d| first_day.checked_add_days(Days::new(d)))
        .flat_map(|day| {
            at.iter().filter_map(move |&m| {
                let time = NaiveTime::from_num_seconds_from_midnight_opt(m * 60, 0)?;
                Some(day.and_time(time).and_utc() + jitter)
            })
        })
        .filter(|&t| t > after)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn every(secs: u64) -> BackupSchedule {
        BackupSchedule {
            interval: Some(Duration::from_secs(secs)),
            ..BackupSchedule::default()
        }
    }

    fn at(times: &[u32]) -> BackupSchedule {
        BackupSchedule {
            at: times.to_vec(),
            ..BackupSchedule::default()
        }
    }

    const J: Duration = Duration::from_secs(90);

    #[test]
    fn interval_follows_the_newest_backup() {
        let s = every(6 * 3600);
        let now = t("2026-12-05T10:00:00Z");
        let newest = t("2026-12-05T07:30:00Z");
        assert_eq!(
            next_run(now, &s, Some(newest), J),
            t("2026-12-05T13:30:00Z")
        );
        // The jitter spreads only the first and missed runs; afterwards the phase stays.
        assert_eq!(
            next_run(now, &s, Some(newest), Duration::ZERO),
            t("2026-12-05T13:30:00Z")
        );
    }

    #[test]
    fn first_run_and_missed_runs_are_due_once_after_the_jitter() {
        let s = every(3600);
        let now = t("2026-12-05T10:00:00Z");
        assert_eq!(next_run(now, &s, None, J), t("2026-12-05T10:01:30Z"));
        // Down for a day: one run at start-up, not 24.
        let missed = next_run(now, &s, Some(t("2026-12-04T09:00:00Z")), J);
        assert_eq!(missed, t("2026-12-05T10:01:30Z"));
        // Once it is taken (created at `missed`), the next one is an interval later.
        let after = next_run(missed, &s, Some(missed), J);
        assert_eq!(after, t("2026-12-05T11:01:30Z"));
        // Exactly due counts as missed, with the jitter.
        let due = next_run(now, &s, Some(t("2026-12-05T09:00:00Z")), J);
        assert_eq!(due, t("2026-12-05T10:01:30Z"));
    }

    #[test]
    fn calendar_times_across_midnight() {
        let s = at(&[3 * 60, 23 * 60 + 30]);
        // Taken at 23:31:30 yesterday (23:30 + jitter); next: 03:00 + jitter today.
        let newest = t("2026-12-04T23:31:30.250Z");
        let now = t("2026-12-05T00:10:00Z");
        assert_eq!(
            next_run(now, &s, Some(newest), J),
            t("2026-12-05T03:01:30Z")
        );
        // Taken at 03:01:30; next: 23:30 + jitter the same day.
        let newest = t("2026-12-05T03:01:30.010Z");
        let now = t("2026-12-05T03:02:00Z");
        assert_eq!(
            next_run(now, &s, Some(newest), J),
            t("2026-12-05T23:31:30Z")
        );
        // Taken at 23:31:30; next: 03:00 + jitter tomorrow, across midnight (and a month).
        let newest = t("2026-12-31T23:31:30.010Z");
        let now = t("2026-12-31T23:40:00Z");
        assert_eq!(
            next_run(now, &s, Some(newest), J),
            t("2027-01-01T03:01:30Z")
        );
        // A 23:30 slot with a jitter that carries it past midnight.
        let late = at(&[23 * 60 + 59]);
        let newest = t("2026-12-04T23:59:00Z");
        let now = t("2026-12-05T00:00:00Z");
        assert_eq!(
            next_run(now, &late, Some(newest), J),
            t("2026-12-05T00:00:30Z")
        );
    }

    #[test]
    fn calendar_time_missed_while_down_is_taken_once() {
        let s = at(&[3 * 60]);
        let newest = t("2026-12-03T03:01:30Z");
        let now = t("2026-12-05T12:00:00Z");
        let due = next_run(now, &s, Some(newest), J);
        assert_eq!(due, t("2026-12-05T12:01:30Z"));
        assert_eq!(next_run(due, &s, Some(due), J), t("2026-12-06T03:01:30Z"));
    }

    #[test]
    fn interval_and_calendar_times_whichever_comes_first() {
        let s = BackupSchedule {
            interval: Some(Duration::from_secs(12 * 3600)),
            at: vec![6 * 60],
            ..BackupSchedule::default()
        };
        let now = t("2026-12-05T01:00:00Z");
        let newest = t("2026-12-05T00:00:00Z");
        assert_eq!(
            next_run(now, &s, Some(newest), Duration::ZERO),
            t("2026-12-05T06:00:00Z")
        );
        let newest = t("2026-12-05T06:00:00Z");
        let now = t("2026-12-05T07:00:00Z");
        assert_eq!(
            next_run(now, &s, Some(newest), Duration::ZERO),
            t("2026-12-05T18:00:00Z")
        );
    }

    #[test]
    fn jitter_is_deterministic_per_path_and_bounded() {
        let s = every(3600);
        assert_eq!(max_jitter(&s), Duration::from_secs(300));
        assert_eq!(max_jitter(&every(60)), Duration::from_secs(6));
        let a = jitter_for(Path::new("/data/a.db"), &s);
        assert_eq!(a, jitter_for(Path::new("/data/a.db"), &s));
        let spread: std::collections::BTreeSet<Duration> = (0..50)
            .map(|i| jitter_for(Path::new(&format!("/data/{i}.db")), &s))
            .collect();
        assert!(spread.len() > 40, "{spread:?}");
        assert!(spread.iter().all(|&j| j < Duration::from_secs(300)));
        let none = BackupSchedule {
            jitter: Some(Duration::ZERO),
            ..every(3600)
        };
        assert_eq!(jitter_for(Path::new("/data/a.db"), &none), Duration::ZERO);
        let wide = BackupSchedule {
            jitter: Some(Duration::from_secs(3 * 3600)),
            at: vec![0],
            ..BackupSchedule::default()
        };
        assert_eq!(max_jitter(&wide), AT_JITTER_CAP);
        let half = BackupSchedule {
            jitter: Some(Duration::from_secs(3600)),
            ..every(600)
        };
        assert_eq!(max_jitter(&half), Duration::from_secs(300));
    }
}
