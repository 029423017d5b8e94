//! The periodic restore drill of one database (`backups.drill-interval`): one task per database
//! that has the key (none for the others), spawned beside its loop on the run's tracker under the
//! database's token. Every interval it runs [`crate::admin::drill::run`] — the first replica's
//! latest point and the newest backup restored into a work folder and checked — and keeps the
//! report on the database's handle, where the status API and the metrics read it.
//!
//! What must stay true: a drill only reads what it restores (no lock is taken: it changes
//! nothing); only the sleep is cancelled, a drill that started finishes before the final sync;
//! a failed part is logged as a warning with its error and kept in the report.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::DbHandle;
use crate::admin::BackupStore;
use crate::admin::drill::{self, DrillReplica, DrillReport};

/// Runs a drill of `h` every `interval` until `cancel` is cancelled.
pub(super) async fn run(h: Arc<DbHandle>, interval: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        drill_now(&h).await;
    }
}

/// Runs one drill of `h` now, keeps its report on the handle and returns it.
pub async fn drill_now(h: &DbHandle) -> DrillReport {
    let store = BackupStore::new(h.db.path(), &h.backups);
    let replica = h.replicas.first().map(|r| DrillReplica {
        name: r.name(),
        client: r.client(),
    });
    let report = drill::run(&store, replica).await;
    let db = h.db.path().display().to_string();
    for part in report.replica.iter().chain(&report.backup) {
        match &part.error {
            None => {
                info!(db = %db, source = %part.source, seconds = part.duration_seconds, "restore drill passed")
            }
            Some(e) => warn!(db = %db, source = %part.source, error = %e, "restore drill failed"),
        }
    }
    *crate::rt::lock(&h.drill) = Some(report.clone());
    report
}
