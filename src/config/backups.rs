//! `dbs[].backups` (walstream only): the folder of a database's backups, the retention policy of
//! each kind (`retain`, `pre-restore-retain`, `retention.<kind>` with keep-last/hourly/daily/
//! weekly/monthly/yearly), the optional `schedule` of `scheduled` backups and the largest
//! uploaded file (`max-upload-size`, bytes or `512MiB`-style text), and how often `replicate`
//! runs a restore drill (`drill-interval`, a Go duration; 0 or absent: never).
//!
//! What must stay true:
//! - `retain` and `pre-restore-retain` keep their meaning (keep-last-N of `manual` and
//!   `pre-restore`); giving one of them and `retention.<the same kind>` is an error, so a file
//!   never says two things about one kind;
//! - a policy that would keep nothing (every keep-* 0) is refused: expiring every backup of a
//!   kind is what `backup delete` is for;
//! - `max-upload-size` is at least 1 KiB (a SQLite file is at least one page);
//! - a schedule has an `interval` (≥ 1 s) or at least one `at` time (`HH:MM`, UTC) or both;
//!   its labels are checked by the admin layer's label rules when `replicate` starts it;
//! - [`KeepPolicy::reasons`] is the one tier verdict (keep-last, then the newest item of each of
//!   the newest N UTC hours/days/ISO weeks/months/years): backups and a replica's
//!   `snapshot-tiers` both use it, and it depends only on the items' times, never on the clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde_yaml::Value;

use super::ConfigError;
use super::defaults::{
    DEFAULT_BACKUPS_RETAIN, DEFAULT_MAX_UPLOAD_SIZE, DEFAULT_PRE_RESTORE_RETAIN,
    DEFAULT_SCHEDULED_KEEP_LAST, DEFAULT_UPLOADED_KEEP_LAST,
};
use super::node::Section;
use super::paths::normalize_db_path;

/// `dbs[].backups` (walstream only): where backups are kept, how many of each kind survive
/// retention and when scheduled backups are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupsConfig {
    /// Folder of the backups; defaults to `<db dir>/backups/<db file name>`.
    pub path: PathBuf,
    /// Keep-last-N of `manual` backups (≥ 1), unless `retention.manual` is given.
    pub retain: usize,
    /// Keep-last-N of `pre-restore` safety backups (≥ 1), unless `retention.pre-restore` is
    /// given.
    pub pre_restore_retain: usize,
    /// `retention.<kind>` policies given in the file.
    pub retention: BackupRetention,
    /// `schedule`: when `replicate` takes `scheduled` backups (none by default).
    pub schedule: Option<BackupSchedule>,
    /// `max-upload-size`: largest uploaded database file, in bytes.
    pub max_upload_size: u64,
    /// `drill-interval`: how often `replicate` runs a restore drill (`None`: never).
    pub drill_interval: Option<Duration>,
}

/// How many backups of one kind survive, restic/borg style: the newest `last` ones, plus the
/// newest backup of each of the newest `hourly`/`daily`/`weekly`/`monthly`/`yearly` UTC periods
/// that have a backup (ISO weeks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

/// The YAML keys of a [`KeepPolicy`], in its field order.
pub const KEEP_KEYS: &[&str] = &[
    "keep-last",
    "keep-hourly",
    "keep-daily",
    "keep-weekly",
    "keep-monthly",
    "keep-yearly",
];

impl KeepPolicy {
    /// Keep the newest `n`, nothing else.
    pub fn keep_last(n: usize) -> KeepPolicy {
        KeepPolicy {
            last: u32::try_from(n).unwrap_or(u32::MAX),
            ..KeepPolicy::default()
        }
    }

    /// True when every keep-* is 0.
    pub fn keeps_nothing(&self) -> bool {
        *self == KeepPolicy::default()
    }

    /// The fields in [`KEEP_KEYS`] order.
    pub fn counts(&self) -> [u32; 6] {
        [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ]
    }

    /// Why each item is kept, for items given newest first by their times: the newest `last`
    /// get "keep-last N" (N = rank), and for each tier the newest item of each of the newest
    /// `keep-<tier>` UTC periods that have one gets "keep-daily 2026-12-05" (weeks are ISO
    /// weeks). An empty list: no rule keeps the item. Backups (`admin::retention`) and a v0.3
    /// replica's `snapshot-tiers` (`replica::retention`) share this one verdict.
    pub fn reasons(&self, newest_first: &[DateTime<Utc>]) -> Vec<Vec<String>> {
        let counts = self.counts();
        // Per tier: the periods seen so far (newest first) and the last one.
        let mut periods: [(u32, Option<String>); 5] = Default::default();
        let mut out = Vec::with_capacity(newest_first.len());
        for (rank, time) in (1u32..).zip(newest_first) {
            let mut reasons = Vec::new();
            if rank <= counts[0] {
                reasons.push(format!("keep-last {rank}"));
            }
            for (i, (name, key_of)) in TIERS.iter().enumerate() {
                let (seen, last) = &mut periods[i];
                let key = key_of(time);
                if last.as_ref() == Some(&key) {
                    continue;
                }
                *seen += 1;
                if *seen <= counts[i + 1] {
                    reasons.push(format!("{name} {key}"));
                }
                *last = Some(key);
            }
            out.push(reasons);
        }
        out
    }
}

/// The period a time falls in, as text (`2026-12-05`, `2026-W49`, …).
type PeriodKey = fn(&DateTime<Utc>) -> String;

/// The tiers after keep-last, with their names and period keys.
const TIERS: [(&str, PeriodKey); 5] = [
    ("keep-hourly", |t| t.format("%Y-%m-%dT%H").to_string()),
    ("keep-daily", |t| t.format("%Y-%m-%d").to_string()),
    ("keep-weekly", |t| {
        let w = t.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    }),
    ("keep-monthly", |t| t.format("%Y-%m").to_string()),
    ("keep-yearly", |t| t.format("%Y").to_string()),
];

/// `retention:` per kind; `None` where the file gives no policy for that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupRetention {
    pub manual: Option<KeepPolicy>,
    pub pre_restore: Option<KeepPolicy>,
    pub scheduled: Option<KeepPolicy>,
    pub uploaded: Option<KeepPolicy>,
}

/// `schedule:` of scheduled backups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSchedule {
    /// A backup when the newest scheduled one is this old.
    pub interval: Option<Duration>,
    /// Calendar times of day, UTC, as minutes after midnight (sorted, unique).
    pub at: Vec<u32>,
    /// Largest per-database offset spreading a fleet's runs; `None`: the admin layer's default.
    pub jitter: Option<Duration>,
    /// Labels of every scheduled backup.
    pub labels: BTreeMap<String, String>,
}

impl BackupsConfig {
    /// The defaults for the database at `db_path` (already normalised).
    pub fn for_db(db_path: &Path) -> BackupsConfig {
        BackupsConfig {
            path: default_backups_path(db_path),
            retain: DEFAULT_BACKUPS_RETAIN,
            pre_restore_retain: DEFAULT_PRE_RESTORE_RETAIN,
            retention: BackupRetention::default(),
            schedule: None,
            max_upload_size: DEFAULT_MAX_UPLOAD_SIZE,
            drill_interval: None,
        }
    }

    /// The policy of `manual` backups: `retention.manual`, else keep-last `retain`.
    pub fn manual_policy(&self) -> KeepPolicy {
        (self.retention.manual).unwrap_or(KeepPolicy::keep_last(self.retain))
    }

    /// The policy of `pre-restore` backups: `retention.pre-restore`, else keep-last
    /// `pre-restore-retain`.
    pub fn pre_restore_policy(&self) -> KeepPolicy {
        (self.retention.pre_restore).unwrap_or(KeepPolicy::keep_last(self.pre_restore_retain))
    }

    /// The policy of `scheduled` backups: `retention.scheduled`, else keep-last
    /// [`DEFAULT_SCHEDULED_KEEP_LAST`].
    pub fn scheduled_policy(&self) -> KeepPolicy {
        (self.retention.scheduled).unwrap_or(KeepPolicy::keep_last(DEFAULT_SCHEDULED_KEEP_LAST))
    }

    /// The policy of `uploaded` backups: `retention.uploaded`, else keep-last
    /// [`DEFAULT_UPLOADED_KEEP_LAST`].
    pub fn uploaded_policy(&self) -> KeepPolicy {
        (self.retention.uploaded).unwrap_or(KeepPolicy::keep_last(DEFAULT_UPLOADED_KEEP_LAST))
    }
}

/// `<db dir>/backups/<db file name>`.
pub fn default_backups_path(db_path: &Path) -> PathBuf {
    let dir = db_path.parent().unwrap_or_else(|| Path::new("/"));
    let name = db_path
        .file_name()
        .unwrap_or_else(|| std::ffi::OsStr::new("db"));
    dir.join("backups").join(name)
}

const BACKUPS_KEYS: &[&str] = &[
    "path",
    "retain",
    "pre-restore-retain",
    "retention",
    "schedule",
    "max-upload-size",
    "drill-interval",
];
const RETENTION_KEYS: &[&str] = &["manual", "pre-restore", "scheduled", "uploaded"];
const SCHEDULE_KEYS: &[&str] = &["interval", "at", "jitter", "labels"];

/// `dbs[].backups`: `path` (absolute after `~` expansion), `retain` and `pre-restore-retain`
/// (each ≥ 1), `retention` and `schedule`.
pub(super) fn build_backups(
    s: &Section<'_>,
    db_path: &Path,
    warnings: &mut Vec<String>,
) -> Result<BackupsConfig, ConfigError> {
    s.warn_unknown(BACKUPS_KEYS, &format!("in {}", s.location), warnings);
    let mut b = BackupsConfig::for_db(db_path);
    if let Some(p) = s.non_empty("path")? {
        b.path = normalize_db_path(&p).map_err(|e| s.err("path", e.to_string()))?;
    }
    for (key, slot) in [
        ("retain", &mut b.retain),
        ("pre-restore-retain", &mut b.pre_restore_retain),
    ] {
        if let Some(v) = s.int(key)? {
            *slot = usize::try_from(v)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| s.err(key, format!("must be at least 1, got {v}")))?;
        }
    }
    let r = s.child("retention")?;
    r.warn_unknown(RETENTION_KEYS, &format!("in {}", r.location), warnings);
    b.retention = BackupRetention {
        manual: keep_policy(&r.child("manual")?, warnings)?,
        pre_restore: keep_policy(&r.child("pre-restore")?, warnings)?,
        scheduled: keep_policy(&r.child("scheduled")?, warnings)?,
        uploaded: keep_policy(&r.child("uploaded")?, warnings)?,
    };
    for (short, kind, given) in [
        ("retain", "manual", b.retention.manual.is_some()),
        (
            "pre-restore-retain",
            "pre-restore",
            b.retention.pre_restore.is_some(),
        ),
    ] {
        if given && s.value(short).is_some() {
            return Err(s.err(
                short,
                format!("give either {short} or retention.{kind}, not both"),
            ));
        }
    }
    let schedule = s.child("schedule")?;
    if !schedule.is_empty() {
        b.schedule = Some(build_schedule(&schedule, warnings)?);
    }
    if let Some(size) = byte_size(s, "max-upload-size")? {
        if size < MIN_MAX_UPLOAD_SIZE {
            return Err(s.err(
                "max-upload-size",
                format!("must be at least 1KiB, got {size}"),
            ));
        }
        b.max_upload_size = size;
    }
    if let Some(nanos) = s.duration("drill-interval")? {
        if nanos != 0 && nanos < 1_000_000_000 {
            return Err(s.err("drill-interval", "must be 0 (off) or at least 1s"));
        }
        b.drill_interval = (nanos > 0).then(|| Duration::from_nanos(nanos as u64));
    }
    Ok(b)
}

/// Least `max-upload-size`.
const MIN_MAX_UPLOAD_SIZE: u64 = 1024;

/// A size in bytes: an integer, or text with a unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`, or the
/// decimal `KB`, `MB`, `GB`, `TB`).
fn byte_size(s: &Section<'_>, key: &str) -> Result<Option<u64>, ConfigError> {
    let bad = |v: &str| {
        s.err(
            key,
            format!("{v:?} is not a size (e.g. 1073741824, 512MiB, 1GiB)"),
        )
    };
    if let Some(Value::Number(_)) = s.value(key) {
        let n = s.int(key)?.unwrap_or(0);
        return u64::try_from(n).map(Some).map_err(|_| bad(&n.to_string()));
    }
    let Some(text) = s.non_empty(key)? else {
        return Ok(None);
    };
    parse_byte_size(&text).map(Some).ok_or_else(|| bad(&text))
}

/// `512MiB` → 536870912 (see [`byte_size`]); `None` for anything else or an overflow.
fn parse_byte_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// One keep-* mapping (`retention.<kind>`, a replica's `snapshot-tiers`); `None` when absent.
pub(super) fn keep_policy(
    s: &Section<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<KeepPolicy>, ConfigError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.warn_unknown(KEEP_KEYS, &format!("in {}", s.location), warnings);
    let mut counts = [0u32; 6];
    for (key, slot) in KEEP_KEYS.iter().zip(counts.iter_mut()) {
        if let Some(v) = s.int(key)? {
            *slot = u32::try_from(v)
                .map_err(|_| s.err(key, format!("must be in 0..={}, got {v}", u32::MAX)))?;
        }
    }
    let [last, hourly, daily, weekly, monthly, yearly] = counts;
    let policy = KeepPolicy {
        last,
        hourly,
        daily,
        weekly,
        monthly,
        yearly,
    };
    if policy.keeps_nothing() {
        return Err(s.err_here(format!(
            "keeps nothing: give at least one of {} (≥ 1)",
            KEEP_KEYS.join(", ")
        )));
    }
    Ok(Some(policy))
}

/// Least `schedule.interval`.
const MIN_SCHEDULE_INTERVAL: Duration = Duration::from_secs(1);

fn build_schedule(
    s: &Section<'_>,
    warnings: &mut Vec<String>,
) -> Result<BackupSchedule, ConfigError> {
    s.warn_unknown(SCHEDULE_KEYS, &format!("in {}", s.location), warnings);
    let duration = |key: &str| -> Result<Option<Duration>, ConfigError> {
        match s.duration(key)? {
            None => Ok(None),
            Some(n) => u64::try_from(n)
                .map(|n| Some(Duration::from_nanos(n)))
                .map_err(|_| s.err(key, "must not be negative")),
        }
    };
    let interval = duration("interval")?;
    if interval.is_some_and(|i| i < MIN_SCHEDULE_INTERVAL) {
        return Err(s.err("interval", "must be at least 1s"));
    }
    let mut at = Vec::new();
    for (i, text) in s.string_list("at")?.iter().enumerate() {
        let minute = parse_time_of_day(text).ok_or_else(|| {
            s.err(
                &format!("at[{i}]"),
                format!("{text:?} is not a UTC time of day HH:MM (00:00..23:59)"),
            )
        })?;
        at.push(minute);
    }
    at.sort_unstable();
    at.dedup();
    if interval.is_none() && at.is_empty() {
        return Err(s.err_here("needs an interval (e.g. 6h) or at least one at time (HH:MM)"));
    }
    Ok(BackupSchedule {
        interval,
        at,
        jitter: duration("jitter")?,
        labels: s.string_map("labels")?,
    })
}

/// `HH:MM` (two digits each) as minutes after midnight.
fn parse_time_of_day(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let two = |t: &str| {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten()
    };
    let (h, m) = (two(h)?, two(m)?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_byte_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_byte_size("2048"), Some(2048));
        assert_eq!(parse_byte_size("3MB"), Some(3_000_000));
        for bad in ["", "GiB", "1.5GiB", "-1", "1gb", "99999999999TiB"] {
            assert_eq!(parse_byte_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn reasons_rank_and_periods_newest_first() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        let times = [
            t("2026-12-07T10:00:00Z"), // a Monday: ISO week 50
            t("2026-12-07T09:00:00Z"),
            t("2026-12-06T23:00:00Z"),
            t("2026-11-30T12:00:00Z"),
            t("2025-12-31T12:00:00Z"),
        ];
        let policy = KeepPolicy {
            last: 1,
            daily: 2,
            weekly: 2,
            yearly: 2,
            ..KeepPolicy::default()
        };
        let reasons = policy.reasons(&times);
        let expected: [&[&str]; 5] = [
            &[
                "keep-last 1",
                "keep-daily 2026-12-07",
                "keep-weekly 2026-W50",
                "keep-yearly 2026",
            ],
            &[],
            &["keep-daily 2026-12-06", "keep-weekly 2026-W49"],
            &[],
            &["keep-yearly 2025"],
        ];
        assert_eq!(
            reasons,
            expected.map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        );
        assert!(
            KeepPolicy::default()
                .reasons(&times)
                .iter()
                .all(Vec::is_empty)
        );
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("00:00"), Some(0));
        assert_eq!(parse_time_of_day("23:59"), Some(23 * 60 + 59));
        for bad in [
            "24:00", "3:00", "03:60", "03-00", "0300", "03:00:00", "+3:00", "",
        ] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
    }
}
