//! The per-database loop of `replicate`: attach (waiting for the file, under the run's attach
//! limit), then sync on file events, re-attaching when the file is deleted or replaced.
//!
//! What must stay true: no thread and no timer tick per database while it is quiet — events
//! come from the run's one [`WatchHub`], and a quiet database only wakes for a two-`stat`
//! re-check every [`IDLE_RECHECK`] or when its time-based checkpoint falls due, on whole-second
//! ticks shared by every quiet database (one runtime wake-up serves all that fall due in that
//! second, however many databases there are); a database whose
//! watcher missed a change, or that keeps failing, polls at `monitor-interval` like Litestream;
//! nothing of a replaced file is synced into the old file's generation (the db detaches first).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::{DbHandle, IDLE_RECHECK};

/// Granularity of quiet databases' timers (re-check, time-based checkpoint, waiting for a file).
const WAKE_GRAIN: Duration = Duration::from_secs(1);
use crate::db::{DbError, WalWatcher, WatchHub};

/// What a run shares between its databases: the one file watcher and the start-up limits.
pub(super) struct RunCtx {
    pub hub: WatchHub,
    /// Bounds attaches (open + first sync) running at once.
    pub attach: Arc<Semaphore>,
    pub poll: Duration,
}

/// Attaches one database (waiting for its file), starts its replicas, then syncs it on every
/// change until cancelled. A database that is deleted or replaced while attached is detached and
/// attached again (a new generation); its replicas keep running and keep the old data.
pub(super) async fn db_task(
    h: Arc<DbHandle>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    ctx: Arc<RunCtx>,
) {
    let label = h.db.path().display().to_string();
    // Registered before the first attach, so no change after it goes unnoticed.
    let mut changes = h.db.watch_changes(&ctx.hub);
    loop {
        if !attach_when_present(&h, &cancel, &ctx, &mut changes).await {
            return;
        }
        if !h.replicas_started.swap(true, Ordering::AcqRel) {
            for r in &h.replicas {
                tracker.spawn(Arc::clone(r).run(cancel.child_token()));
            }
        }
        match monitor(&h, &cancel, &label, &mut changes).await {
            None => return,
            Some(DbError::Replaced { .. }) => {
                info!(db = %label, "database file replaced, attaching the new file (new generation)")
            }
            Some(_) => info!(db = %label, "database file removed, waiting for it to reappear"),
        }
    }
}

/// Opens the database and runs its first sync (under an attach permit), waiting while its file
/// does not exist: woken by the file watcher, or polled every [`Options::db_poll_interval`] when
/// the directory is not watched (every [`IDLE_RECHECK`] when it is). A database another
/// connection keeps locked (an application creating it) is tried again the same way. False when
/// cancelled or when the database cannot be used (logged).
async fn attach_when_present(
    h: &DbHandle,
    cancel: &CancellationToken,
    ctx: &RunCtx,
    changes: &mut WalWatcher,
) -> bool {
    let mut waiting_logged = false;
    let mut busy_logged = false;
    let wait = if changes.is_active() {
        ctx.poll.max(IDLE_RECHECK)
    } else {
        ctx.poll
    };
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => return false,
            p = Arc::clone(&ctx.attach).acquire_owned() => p,
        };
        let opened = h.db.open().await;
        if opened.is_ok() {
            // One sync first so the replicas start with a generation to work on.
            if let Err(e) = h.db.sync().await {
                error!(db = %h.db.path().display(), error = %e, "sync error");
            }
            return true;
        }
        drop(permit);
        match opened {
            Err(DbError::NotFound { .. }) => {
                if !waiting_logged {
                    info!(db = %h.db.path().display(), "waiting for database file");
                    waiting_logged = true;
                }
            }
            Err(e) if e.is_busy() => {
                if !busy_logged {
                    info!(db = %h.db.path().display(), error = %e, "database busy, trying again");
                    busy_logged = true;
                }
            }
            Err(e) => {
                error!(db = %h.db.path().display(), error = %e, "cannot open database");
                return false;
            }
            Ok(()) => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(coarse_deadline(wait)) => {}
        }
    }
}

/// The sync loop of one database, event-driven: a sync runs when the file watcher reports a
/// change (paced by [`db_sync_pace`]). Without events (or after the watcher missed one) it
/// polls every `monitor-interval`, like Litestream. With events, a timer only re-checks every
/// [`IDLE_RECHECK`] (two `stat` calls; a sync only if something changed that no event reported —
/// then the database falls back to polling) and wakes when the time-based checkpoint
/// (`checkpoint-interval`) falls due, so an idle database costs nearly nothing. A monitor
/// interval of 0 disables syncing (Litestream's semantics). Returns `None` when cancelled, or
/// the error that detached the database (its file was removed or replaced).
async fn monitor(
    h: &DbHandle,
    cancel: &CancellationToken,
    label: &str,
    changes: &mut WalWatcher,
) -> Option<DbError> {
    if h.monitor_interval.is_zero() {
        cancel.cancelled().await;
        return None;
    }
    let mut pace = crate::replica::rate::RateLimiter::new(h.sync_pace);
    let mut failing = false;
    let mut polling = !changes.is_active();
    let mut seen = (changes.events(), h.db.fingerprint());
    loop {
        let wake = if polling || failing {
            Instant::now() + h.monitor_interval
        } else {
            coarse_deadline(idle_wait(h, &seen.1))
        };
        let by_event = tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep_until(wake) => false,
            _ = changes.changed() => true,
        };
        if !by_event && !polling && !failing {
            let now = h.db.fingerprint();
            if now == seen.1 && !checkpoint_due(h, &now) {
                continue; // quiet: nothing written, nothing due
            }
            if now != seen.1 && !event_arrives(changes, seen.0).await {
                warn!(db = %label, "file watcher missed a change, polling at monitor-interval");
                polling = true;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = pace.acquire() => {}
        }
        let events_before = changes.events();
        let result = h.db.sync().await;
        seen = (events_before, h.db.fingerprint());
        match result {
            Ok(_) => {
                if failing {
                    info!(db = %label, "sync recovered");
                }
                failing = false;
            }
            Err(e @ (DbError::Replaced { .. } | DbError::NotFound { .. })) => return Some(e),
            Err(e) if !failing => {
                error!(db = %label, error = %e, "sync error");
                failing = true;
            }
            Err(e) => tracing::debug!(db = %label, error = %e, "sync error"),
        }
    }
}

/// `after` from now, rounded up to the next whole [`WAKE_GRAIN`] of the process clock. Quiet
/// databases' re-checks then fall into shared ticks: thousands of databases wake the runtime
/// about once a second in all, instead of each at its own instant (perf on 4,500 idle databases
/// showed the per-timer thread wake-ups as the largest idle cost).
fn coarse_deadline(after: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // A year is "never" for a timer and keeps the arithmetic far from overflow.
    let at = Instant::now() + after.min(Duration::from_secs(365 * 24 * 3600));
    let grain = WAKE_GRAIN.as_nanos();
    let since = at.duration_since(epoch).as_nanos();
    let rounded = since.div_ceil(grain) * grain;
    epoch + Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
}

/// How long an event-driven database may sleep: until the next re-check, or until its
/// time-based checkpoint falls due if that comes first.
fn idle_wait(h: &DbHandle, seen: &crate::db::Fingerprint) -> Duration {
    let recheck = h.monitor_interval.max(IDLE_RECHECK);
    match checkpoint_due_at(h, seen) {
        Some(at) => at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(recheck),
        None => recheck,
    }
}

/// When the time-based PASSIVE checkpoint (spec §3.5: database file unmodified for
/// `checkpoint-interval` while the shadow holds more than one frame) falls due, if it can.
fn checkpoint_due_at(h: &DbHandle, fp: &crate::db::Fingerprint) -> Option<SystemTime> {
    if h.checkpoint_interval.is_zero() {
        return None;
    }
    let more_than_one_frame = h.db.with_state(|st| {
        st.pos.as_ref().is_some_and(|pos| {
            st.page_size != 0 && pos.offset > crate::db::checkpoint::wal_size_for(st.page_size, 1)
        })
    });
    if !more_than_one_frame {
        return None;
    }
    // A hair past the interval: the policy wants the age strictly greater.
    Some(fp.db_modified()? + h.checkpoint_interval + Duration::from_millis(10))
}

fn checkpoint_due(h: &DbHandle, fp: &crate::db::Fingerprint) -> bool {
    checkpoint_due_at(h, fp).is_some_and(|at| at <= SystemTime::now())
}

/// True when an event arrived since `before`, waiting briefly for one still on its way from the
/// watcher thread (a change seen by `stat` can be a moment ahead of its event).
async fn event_arrives(changes: &WalWatcher, before: u64) -> bool {
    let _delivering = changes.deliver_events();
    for _ in 0..10 {
        if changes.events() != before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    changes.events() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn coarse_deadlines_share_whole_grains_and_never_come_early() {
        let mut seen = std::collections::HashSet::new();
        for ms in [0u64, 1, 250, 999, 1000, 1001, 30_000] {
            let after = Duration::from_millis(ms);
            let before = Instant::now() + after;
            let at = coarse_deadline(after);
            assert!(at >= before, "{ms} ms: woke early");
            assert!(
                at < Instant::now() + after + WAKE_GRAIN,
                "{ms} ms: more than a grain late"
            );
            seen.insert(at);
        }
        // Waits inside one grain end on the same tick: 0/1 ms and 250/999 ms cannot both lie
        // across a whole-second boundary, so the seven deadlines are not all distinct.
        assert!(seen.len() < 7, "{seen:?}");
        let far = coarse_deadline(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(364 * 24 * 3600));
    }
}
