//! The `backups` object of each database in `/api/v1/status`: count, bytes and newest backup of
//! each kind, and the free and total bytes of the backups folder's volume — the same values as
//! the `walstream_backup_*` metrics, from the same in-memory summary (`admin::tally`).
//!
//! What must stay true: every kind is always present (count 0, `newest` null), so the shape
//! never depends on what exists; `volume` is null while the folder does not exist; the whole
//! object is null until the folder was first listed (unknown is not zero).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::admin::BackupKind;
use crate::state::BackupSummary;

/// `databases[].backups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupsDoc {
    pub manual: KindDoc,
    #[serde(rename = "pre-restore")]
    pub pre_restore: KindDoc,
    pub scheduled: KindDoc,
    pub uploaded: KindDoc,
    pub volume: Option<VolumeDoc>,
}

/// Backups of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindDoc {
    pub count: u64,
    pub bytes: u64,
    /// `created` of the newest one (`null`: none).
    pub newest: Option<String>,
}

/// Space of the volume the backups folder is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDoc {
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// When it was read (`statvfs`).
    pub checked_at: String,
}

impl BackupsDoc {
    /// The document of `s`, times written by `time` (the API's RFC 3339 form).
    pub fn from_summary(s: &BackupSummary, time: fn(SystemTime) -> String) -> BackupsDoc {
        let kind = |k: BackupKind| {
            s.kinds
                .iter()
                .find(|x| x.kind == k)
                .map(|x| KindDoc {
                    count: x.count,
                    bytes: x.bytes,
                    newest: x.newest.map(time),
                })
                .unwrap_or_default()
        };
        BackupsDoc {
            manual: kind(BackupKind::Manual),
            pre_restore: kind(BackupKind::PreRestore),
            scheduled: kind(BackupKind::Scheduled),
            uploaded: kind(BackupKind::Uploaded),
            volume: s.volume.map(|v| VolumeDoc {
                free_bytes: v.free_bytes,
                total_bytes: v.total_bytes,
                checked_at: time(v.checked_at),
            }),
        }
    }
}
