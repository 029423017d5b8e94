//! Tiered retention of backups (issue 17), restic/borg style: [`plan`] is the pure verdict of
//! every backup — keep or expire, and why — and [`BackupStore::apply_retention`] /
//! [`BackupStore::expire`] carry it out.
//!
//! Rules, per kind (one kind's policy never touches another kind's backups):
//! - a pinned backup is kept ("pinned") and takes no part in the rules below, so pinning an old
//!   backup never costs a newer one its place;
//! - among the other backups, newest first, the newest `keep-last` are kept ("keep-last N",
//!   N = its rank); for each tier (hourly, daily, weekly = ISO week, monthly, yearly; UTC) the
//!   newest backup of each of the newest `keep-<tier>` periods that have a backup is kept
//!   ("keep-daily 2026-12-05");
//! - a backup whose `created` cannot be read is kept ("created time unreadable"): a damaged
//!   record must never make retention delete something;
//! - everything else expires. A verdict lists every reason that keeps a backup.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use tracing::info;

use super::AdminError;
use super::backups::{BackupKind, BackupRecord, BackupStore, Policies};

/// What retention decides about one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub id: String,
    pub name: String,
    pub kind: BackupKind,
    pub created: String,
    pub pinned: bool,
    /// False: the backup expires.
    pub keep: bool,
    /// Why it is kept (empty when it expires).
    pub reasons: Vec<String>,
}

/// The tiers after keep-last, with their names and period keys.
/// The period a time falls in, as text (`2026-12-05`, `2026-W49`, …).
type PeriodKey = fn(&DateTime<Utc>) -> String;

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

/// The verdict of every record, newest first (by `created`, then id, like a listing).
pub fn plan(records: &[BackupRecord], policies: &Policies) -> Vec<Verdict> {
    let mut sorted: Vec<&BackupRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (&b.created, &b.id).cmp(&(&a.created, &a.id)));
    let mut verdicts: Vec<Verdict> = sorted.iter().map(|r| verdict(r)).collect();
    for kind in BackupKind::ALL {
        let counts = policies.of(kind).counts();
        let mut last_rank = 0u32;
        // Per tier: the periods seen so far (newest first) and the last one.
        let mut periods: [(u32, Option<String>); 5] = Default::default();
        for (v, r) in verdicts.iter_mut().zip(&sorted) {
            if r.kind != kind || r.pinned {
                continue;
            }
            let Ok(time) = DateTime::parse_from_rfc3339(&r.created) else {
                continue;
            };
            let time = time.with_timezone(&Utc);
            last_rank += 1;
            if last_rank <= counts[0] {
                v.reasons.push(format!("keep-last {last_rank}"));
            }
            for (i, (name, key_of)) in TIERS.iter().enumerate() {
                let (seen, last) = &mut periods[i];
                let key = key_of(&time);
                if last.as_ref() == Some(&key) {
                    continue;
                }
                *seen += 1;
                if *seen <= counts[i + 1] {
                    v.reasons.push(format!("{name} {key}"));
                }
                *last = Some(key);
            }
            v.keep = !v.reasons.is_empty();
        }
    }
    verdicts
}

/// The starting verdict: pinned and unreadable-time backups are kept, the rest expire until a
/// rule keeps them.
fn verdict(r: &BackupRecord) -> Verdict {
    let mut reasons = Vec::new();
    if r.pinned {
        reasons.push("pinned".to_string());
    } else if DateTime::parse_from_rfc3339(&r.created).is_err() {
        reasons.push("created time unreadable".to_string());
    }
    Verdict {
        id: r.id.clone(),
        name: r.name.clone(),
        kind: r.kind,
        created: r.created.clone(),
        pinned: r.pinned,
        keep: !reasons.is_empty(),
        reasons,
    }
}

impl BackupStore {
    /// Deletes the backups of `kind` its policy expires; returns their ids.
    pub fn apply_retention(&self, kind: BackupKind) -> Result<Vec<String>, AdminError> {
        let records: Vec<BackupRecord> = self
            .list()?
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect();
        let doomed = plan(&records, self.policies())
            .into_iter()
            .filter(|v| !v.keep);
        let mut removed = Vec::new();
        for v in doomed {
            self.delete(&v.id)?;
            info!(db = %self.db_path().display(), id = %v.id, kind = kind.as_str(), "backup removed by retention");
            removed.push(v.id);
        }
        Ok(removed)
    }

    /// The verdict of every backup under every kind's policy; unless `dry_run`, the expired ones
    /// are deleted (a failed delete stops there with its error).
    pub fn expire(&self, dry_run: bool) -> Result<Vec<Verdict>, AdminError> {
        let verdicts = plan(&self.list()?, self.policies());
        if !dry_run {
            for v in verdicts.iter().filter(|v| !v.keep) {
                self.delete(&v.id)?;
                info!(db = %self.db_path().display(), id = %v.id, kind = v.kind.as_str(), "backup expired");
            }
        }
        Ok(verdicts)
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
