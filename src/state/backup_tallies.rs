//! Keeps each database's backups summary ([`crate::admin::tally::Tally`]) in step with its
//! folder: one background task for the whole fleet (not one per database) that every
//! [`TICK`] refreshes the databases whose last refresh is [`REFRESH_EVERY`] old — a new
//! database is therefore listed within a tick of joining, the others cost one `stat` and one
//! `statvfs` per [`REFRESH_EVERY`].
//!
//! What must stay true: the file-system work runs on a blocking thread, one database after the
//! other (a fleet never lists its folders all at once); the task ends when the state is dropped
//! or shutdown starts; a failed refresh is logged at debug level and tried again at the next
//! refresh (the summary keeps its last values meanwhile). Changes made by walstream itself
//! reach the summary at once, without this task.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tracing::debug;

use super::{AppState, DbEntry};
use crate::admin::BackupStore;

/// How often the task looks for databases due for a refresh.
pub const TICK: Duration = Duration::from_secs(1);
/// Age of a summary's last refresh that makes it due: bounds how late a change made by another
/// process (`walstream backup …`) and the volume's free space show.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Refreshes the due summaries of `state`'s databases until the state is gone.
pub(super) async fn refresher(state: Weak<AppState>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = state.upgrade() else {
            return;
        };
        let now = SystemTime::now();
        let due: Vec<Arc<DbEntry>> = s
            .entries()
            .into_iter()
            .filter(|e| e.handle.backup_tally.refresh_due(now, REFRESH_EVERY))
            .collect();
        drop(s);
        if due.is_empty() {
            continue;
        }
        let refreshed = crate::rt::spawn_blocking(move || {
            for e in due {
                let h = &e.handle;
                let store = BackupStore::new(h.db.path(), &h.backups)
                    .with_tally(Arc::clone(&h.backup_tally));
                if let Err(err) = store.refresh_tally() {
                    debug!(db = %e.id, error = %err, "backups summary not refreshed");
                }
            }
        })
        .await;
        if refreshed.is_err() {
            debug!("backups summary refresh cancelled");
        }
    }
}
