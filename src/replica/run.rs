//! The replica's background loops: uploads (woken by db changes, paced by `sync-interval`,
//! backing off on failure), the snapshotter (`snapshot-interval`), the retainer
//! (`retention-check-interval`) and the validator (`validation-interval`).
//!
//! What must stay true: every loop ends promptly when its token is cancelled (an upload round in
//! flight is finished first, so no segment is written twice; snapshots and retention in flight
//! are abandoned); the orchestrator's final sync runs afterwards without the token; a failure
//! streak is logged once (ERROR `monitor error`, Litestream's wording) and counted in the status
//! on every failure; while failing, retries follow the backoff, not db changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::rate::RateLimiter;
use super::snapshot::first_snapshot_delay;
use super::{FilterRefusal, Replica, ValidationOutcome};
use crate::rt::Backoff;

/// First retry after a failed round; doubles up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest wait between retries of a failing replica.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

impl Replica {
    /// Runs the upload, snapshot, retention and validation loops until `cancel` fires (an LTX
    /// replica: the upload loop, its compaction, snapshot and retention loops, and the same
    /// validation loop).
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        if self.ltx.is_some() {
            tokio::join!(
                self.sync_loop(cancel.clone()),
                self.ltx_jobs(cancel.clone()),
                self.validation_loop(cancel),
            );
            return;
        }
        tokio::join!(
            self.sync_loop(cancel.clone()),
            self.snapshot_loop(cancel.clone()),
            self.retention_loop(cancel.clone()),
            self.validation_loop(cancel),
        );
    }

    async fn sync_loop(&self, cancel: CancellationToken) {
        let mut changes = self.db_state.clone();
        let mut rate = RateLimiter::new(self.cfg.sync_interval);
        let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX);
        let mut retry_at: Option<Instant> = None;
        let mut first = true;
        loop {
            if !first && !self.wait_for_work(&mut changes, retry_at, &cancel).await {
                return;
            }
            let woke = Instant::now();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = rate.acquire() => {}
            }
            // The database's own syncs are paced by the same interval; when they fall just
            // after this loop's rounds, the rate limit holds each round back until what the db
            // published is nearly an interval old (measured: lag p50 1.5 s at sync-interval 1s
            // instead of 0.5 s). Then bring the shadow WAL up to this moment first. Errors are
            // the monitor's to report.
            if !first
                && woke.elapsed() >= self.cfg.sync_interval / 2
                && let Err(e) = self.db.sync_attached().await
            {
                debug!(db = %self.db_label, replica = %self.name(), error = %e, "db sync before round");
            }
            first = false;
            changes.borrow_and_update();
            // A round in flight is finished, not abandoned: abandoning it after the object was
            // stored but before the position moved would make the final sync rewrite it.
            match self.sync().await {
                Ok(_) => {
                    retry_at = None;
                    let failures = backoff.succeed();
                    if failures > 0 {
                        info!(db = %self.db_label, replica = %self.name(), failures, "sync recovered");
                    }
                    self.update_status(|s| s.failure_streak = 0);
                }
                Err(e) => {
                    let (wait, first_failure) = backoff.fail();
                    retry_at = Some(Instant::now() + wait);
                    // Litestream's wording for a failed replica round; an owner refusal was
                    // logged where it was decided.
                    if first_failure && !e.is_owner_conflict() {
                        error!(db = %self.db_label, replica = %self.name(), error = %e, "monitor error");
                    } else {
                        debug!(db = %self.db_label, replica = %self.name(), error = %e, "monitor error");
                    }
                    let text = e.to_string();
                    self.update_status(|s| {
                        s.last_error = Some((SystemTime::now(), text));
                        s.error_count += 1;
                        s.failure_streak = backoff.failures();
                    });
                }
            }
        }
    }

    /// Waits for a db change (or, while failing, for the retry time). False when cancelled or the
    /// db went away.
    async fn wait_for_work(
        &self,
        changes: &mut tokio::sync::watch::Receiver<crate::db::DbState>,
        retry_at: Option<Instant>,
        cancel: &CancellationToken,
    ) -> bool {
        if let Some(at) = retry_at {
            return tokio::select! {
                _ = cancel.cancelled() => false,
                _ = tokio::time::sleep_until(at) => true,
            };
        }
        loop {
            let changed = tokio::select! {
                _ = cancel.cancelled() => return false,
                r = changes.changed() => r.is_ok(),
            };
            if !changed {
                return false;
            }
            let local = changes.borrow().pos.clone();
            let status = self.status.borrow().position.clone();
            if local.is_some() && local != status {
                let seen = SystemTime::now();
                self.update_status(|s| {
                    s.pending_since.get_or_insert(seen);
                });
                return true;
            }
        }
    }

    async fn snapshot_loop(&self, cancel: CancellationToken) {
        let interval = self.cfg.snapshot_interval;
        if interval.is_zero() {
            return;
        }
        let mut delay = interval;
        let live = self.db_state.borrow().generation.clone();
        if let Some(generation) = live {
            match self.client.snapshots(&generation).await {
                Ok(snaps) => {
                    if let Some(newest) = snaps.iter().map(|s| s.created_at).max() {
                        delay =
                            first_snapshot_delay(interval, Some(newest.into()), SystemTime::now());
                        let previous = newest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                        let next = crate::gofmt::format_go_duration(delay.as_nanos() as i128);
                        info!(db = %self.db_label, replica = %self.name(), previous = %previous, next = %next, "snapshot interval adjusted");
                    }
                }
                Err(e) => {
                    error!(db = %self.db_label, replica = %self.name(), error = %e, "snapshotter cannot determine latest snapshot")
                }
            }
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = interval;
            if self.db_state.borrow().generation.is_none() {
                continue;
            }
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.snapshot() => r,
            };
            if let Err(e) = result.filter_refusal() {
                error!(db = %self.db_label, replica = %self.name(), error = %e, "snapshotter error");
            }
        }
    }

    async fn retention_loop(&self, cancel: CancellationToken) {
        let retention = self.cfg.retention;
        if retention.is_zero() {
            return;
        }
        let every = self
            .cfg
            .retention_check_interval
            .min(retention)
            .max(Duration::from_millis(1));
        self.every_tick(&cancel, every, || async move {
            if let Err(e) = self.enforce_retention().await.filter_refusal() {
                error!(db = %self.db_label, replica = %self.name(), error = %e, "retainer error");
            }
        })
        .await;
    }

    /// Every `validation-interval` (first one an interval after start, like Go's ticker):
    /// [`Replica::validate`]; a failed validation is logged as ERROR `validation error`.
    async fn validation_loop(&self, cancel: CancellationToken) {
        let every = self.cfg.validation_interval;
        if every.is_zero() {
            return;
        }
        self.every_tick(&cancel, every, || async move {
            if self.owner_refused() {
                return; // the replica holds another database's data
            }
            let result = self.validate().await;
            if let Some(e) = result
                .message
                .filter(|_| result.outcome != ValidationOutcome::Ok)
            {
                error!(db = %self.db_label, replica = %self.name(), error = %e, "validation error");
            }
        })
        .await;
    }

    /// Runs `round` every `every` (the first one an interval after start, like Go's ticker;
    /// missed ticks are delayed) while the db has a generation, until `cancel`, which also ends
    /// a running round.
    async fn every_tick<F, Fut>(&self, cancel: &CancellationToken, every: Duration, mut round: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if self.db_state.borrow().generation.is_none() {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                () = round() => {}
            }
        }
    }
}
