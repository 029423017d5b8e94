//! The LTX replica's background jobs beside the shared upload loop (spec §4.1): one compaction
//! loop per level and the snapshot loop, each firing once right after start and then at every
//! wall-clock multiple of its interval, and the L0 retention loop
//! (`l0-retention-check-interval`; also run after each L1 compaction).
//!
//! What must stay true: every loop ends promptly when its token is cancelled (a job in flight
//! is abandoned: it only deletes after storing, and a staged file left behind is overwritten by
//! the next job of the same name); failures are logged and retried on the next tick; nothing
//! runs before the database has a generation (an L0 needs the shadow WAL).

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::error;

use super::plan::next_boundary;
use crate::replica::{FilterRefusal, Replica};

impl Replica {
    /// Compaction, snapshot and L0 retention loops until `cancel` fires.
    pub(in crate::replica) async fn ltx_jobs(&self, cancel: CancellationToken) {
        let Ok(ltx) = self.ltx() else { return };
        let compactions = futures::future::join_all(
            ltx.levels()
                .map(|(level, every)| self.ltx_compaction_loop(level, every, cancel.clone())),
        );
        tokio::join!(
            compactions,
            self.ltx_snapshot_loop(cancel.clone()),
            self.ltx_l0_retention_loop(cancel),
        );
    }

    async fn ltx_compaction_loop(&self, level: u8, every: Duration, cancel: CancellationToken) {
        self.on_boundaries(every, &cancel, || async move {
            match self.ltx_compact(level).await.filter_refusal() {
                Ok(Some(Some(_))) if level == 1 => {
                    if let Err(e) = self.ltx_retain_l0().await.filter_refusal() {
                        error!(db = %self.db_label, replica = %self.name(), error = %e, "l0 retention error");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    error!(db = %self.db_label, replica = %self.name(), level, error = %e, "compaction error")
                }
            }
        })
        .await;
    }

    async fn ltx_snapshot_loop(&self, cancel: CancellationToken) {
        let Ok(ltx) = self.ltx() else { return };
        let every = ltx.settings.snapshot_interval;
        if every.is_zero() {
            return;
        }
        self.on_boundaries(every, &cancel, || async move {
            if let Err(e) = self.ltx_snapshot().await.filter_refusal() {
                error!(db = %self.db_label, replica = %self.name(), error = %e, "snapshotter error");
            }
            if let Err(e) = self.ltx_retain_snapshots().await.filter_refusal() {
                error!(db = %self.db_label, replica = %self.name(), error = %e, "retainer error");
            }
        })
        .await;
    }

    async fn ltx_l0_retention_loop(&self, cancel: CancellationToken) {
        let Ok(ltx) = self.ltx() else { return };
        let every = ltx
            .settings
            .l0_retention_check_interval
            .max(Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if self.db_state.borrow().generation.is_none() {
                continue;
            }
            if let Err(e) = self.ltx_retain_l0().await.filter_refusal() {
                error!(db = %self.db_label, replica = %self.name(), error = %e, "l0 retention error");
            }
        }
    }

    /// Runs `job` once the database has a generation, then at each wall-clock multiple of
    /// `every`, until `cancel`.
    async fn on_boundaries<F, Fut>(&self, every: Duration, cancel: &CancellationToken, mut job: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut changes = self.db_state.clone();
        while changes.borrow_and_update().generation.is_none() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = changes.changed() => if r.is_err() { return },
            }
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                () = job() => {}
            }
            let now = SystemTime::now();
            let wait = next_boundary(now, every)
                .duration_since(now)
                .unwrap_or_default();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
