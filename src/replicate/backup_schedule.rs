//! The scheduled backups of one database (`backups.schedule`): one task per database that has a
//! schedule (none for the others), spawned beside its loop on the run's tracker under the
//! database's token. It sleeps until [`schedule::next_run`] says the next backup is due, takes
//! it (kind `scheduled`, created by `schedule`, the schedule's labels) under the database's
//! operation lock, applies the `scheduled` retention, and computes the next time again.
//!
//! What must stay true:
//! - the next run follows from the newest `scheduled` backup on disk, so a restart takes a
//!   missed run once and never repeats a run that happened;
//! - the lock is never waited on: when another operation holds it the run is postponed by
//!   [`BUSY_RETRY`] and logged, like a failed backup is retried after [`FAILURE_RETRY`];
//! - only the sleeps are cancelled: a backup that started is finished (the run's tracker waits
//!   for it before the final sync), so shutdown never leaves a half-written copy behind;
//! - a run is taken only once the wall clock reached its time, so its `created` is never before
//!   the slot it was taken for (else the same slot would look missed and be taken twice).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::DbHandle;
use crate::admin::backups::NewBackup;
use crate::admin::schedule::{jitter_for, next_run};
use crate::admin::{AdminError, BackupFilter, BackupKind, BackupStore, CreatedBy, blocking};
use crate::config::BackupSchedule;

/// Wait before trying again while another admin operation holds the database's lock.
pub const BUSY_RETRY: Duration = Duration::from_secs(10);
/// Wait before trying again after a scheduled backup failed (the database file missing, a full
/// disk): long enough not to flood the log, short enough to catch up soon after a fix.
pub const FAILURE_RETRY: Duration = Duration::from_secs(60);

/// Takes the scheduled backups of `h` until `cancel` is cancelled.
pub(super) async fn run(h: Arc<DbHandle>, schedule: BackupSchedule, cancel: CancellationToken) {
    let store = BackupStore::new(h.db.path(), &h.backups).with_tally(Arc::clone(&h.backup_tally));
    let label = h.db.path().display().to_string();
    let jitter = jitter_for(h.db.path(), &schedule);
    loop {
        let newest = match newest_scheduled(&store).await {
            Ok(n) => n,
            Err(e) => {
                warn!(db = %label, error = %e, "scheduled backups: cannot list the backups folder");
                if !sleep(&cancel, FAILURE_RETRY).await {
                    return;
                }
                continue;
            }
        };
        let due = next_run(Utc::now(), &schedule, newest, jitter);
        info!(
            db = %label,
            next = %due.to_rfc3339_opts(SecondsFormat::Millis, true),
            newest = %newest.map_or("none".into(), |t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            "next scheduled backup"
        );
        if !sleep_until(&cancel, due).await {
            return;
        }
        if !take(&h, &store, &schedule, &cancel, &label).await {
            return;
        }
    }
}

/// `created` of the newest `scheduled` backup (records with an unreadable time are skipped).
async fn newest_scheduled(store: &BackupStore) -> Result<Option<DateTime<Utc>>, AdminError> {
    let store = store.clone();
    let filter = BackupFilter {
        kind: Some(BackupKind::Scheduled),
        ..BackupFilter::default()
    };
    let records = blocking(move || store.list_filtered(&filter)).await?;
    Ok(records
        .iter()
        .filter_map(|r| DateTime::parse_from_rfc3339(&r.created).ok())
        .map(|t| t.with_timezone(&Utc))
        .max())
}

/// Takes one scheduled backup, retrying while the lock is busy or the backup fails; false when
/// cancelled first.
async fn take(
    h: &DbHandle,
    store: &BackupStore,
    schedule: &BackupSchedule,
    cancel: &CancellationToken,
    label: &str,
) -> bool {
    loop {
        let guard = match h.ops.try_begin("scheduled backup") {
            Ok(g) => g,
            Err(busy) => {
                info!(db = %label, error = %busy, "scheduled backup postponed");
                if !sleep(cancel, BUSY_RETRY).await {
                    return false;
                }
                continue;
            }
        };
        let (store, labels) = (store.clone(), schedule.labels.clone());
        let source = h.db.state().pos.map(Into::into);
        let made = blocking(move || {
            store.create(NewBackup {
                kind: BackupKind::Scheduled,
                name: None,
                description: None,
                source,
                labels,
                created_by: CreatedBy::Schedule,
            })
        })
        .await;
        drop(guard);
        match made {
            Ok(_) => return true,
            Err(e) => {
                warn!(db = %label, error = %e, "scheduled backup failed; retrying");
                if !sleep(cancel, FAILURE_RETRY).await {
                    return false;
                }
            }
        }
    }
}

/// Sleeps until the wall clock shows `due`; false when cancelled first.
async fn sleep_until(cancel: &CancellationToken, due: DateTime<Utc>) -> bool {
    loop {
        let left = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return true;
        }
        if !sleep(cancel, left).await {
            return false;
        }
    }
}

/// Sleeps `d`; false when cancelled first.
async fn sleep(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
