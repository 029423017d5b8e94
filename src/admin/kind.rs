//! [`BackupKind`]: why a backup was taken — the kinds every listing, policy, summary and metric
//! is split by.
//!
//! What must stay true: the text forms (`manual`, `pre-restore`, `scheduled`, `uploaded`) are
//! those of records on disk, the API and the metrics' `kind` label; an unknown text is an
//! [`AdminError::Invalid`] of `kind` naming the known ones.

use serde::{Deserialize, Serialize};

use super::AdminError;

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    Manual,
    PreRestore,
    /// Taken by `replicate` on `backups.schedule`.
    Scheduled,
    /// A database file somebody uploaded (`POST …/backups/upload`, `walstream backup upload`).
    Uploaded,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Manual => "manual",
            BackupKind::PreRestore => "pre-restore",
            BackupKind::Scheduled => "scheduled",
            BackupKind::Uploaded => "uploaded",
        }
    }

    /// Every kind, in the order of listings and metrics.
    pub const ALL: [BackupKind; 4] = [
        BackupKind::Manual,
        BackupKind::PreRestore,
        BackupKind::Scheduled,
        BackupKind::Uploaded,
    ];
}

impl std::str::FromStr for BackupKind {
    type Err = AdminError;

    fn from_str(s: &str) -> Result<Self, AdminError> {
        match s {
            "manual" => Ok(BackupKind::Manual),
            "pre-restore" => Ok(BackupKind::PreRestore),
            "scheduled" => Ok(BackupKind::Scheduled),
            "uploaded" => Ok(BackupKind::Uploaded),
            _ => Err(AdminError::invalid(
                "kind",
                format!(
                    "{:?} must be manual, pre-restore, scheduled or uploaded",
                    s.chars().take(64).collect::<String>()
                ),
            )),
        }
    }
}
