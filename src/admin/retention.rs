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
//!
//! The keep-last and tier reasons come from [`KeepPolicy::reasons`](crate::config::KeepPolicy::reasons),
//! which a v0.3 replica's `snapshot-tiers` shares.

use chrono::{DateTime, Utc};
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

/// The verdict of every record, newest first (by `created`, then id, like a listing).
pub fn plan(records: &[BackupRecord], policies: &Policies) -> Vec<Verdict> {
    let mut sorted: Vec<&BackupRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (&b.created, &b.id).cmp(&(&a.created, &a.id)));
    let mut verdicts: Vec<Verdict> = sorted.iter().map(|r| verdict(r)).collect();
    for kind in BackupKind::ALL {
        // The backups the kind's rules judge, newest first: not pinned, with a readable time.
        let (slots, times): (Vec<usize>, Vec<DateTime<Utc>>) = sorted
            .iter()
            .enumerate()
            .filter(|(_, r)| r.kind == kind && !r.pinned)
            .filter_map(|(i, r)| {
                let time = DateTime::parse_from_rfc3339(&r.created).ok()?;
                Some((i, time.with_timezone(&Utc)))
            })
            .unzip();
        let reasons = policies.of(kind).reasons(&times);
        for (i, reasons) in slots.into_iter().zip(reasons) {
            if let Some(v) = verdicts.get_mut(i) {
                v.reasons.extend(reasons);
                v.keep = !v.reasons.is_empty();
            }
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
