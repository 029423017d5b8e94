//! [`Lifecycle`]: how the tasks started beside the replication loops — the HTTP server, the lag
//! trackers, the restore-point refreshers, the work of HTTP actions — live under the run's root
//! [`CancellationToken`] and [`TaskTracker`] instead of being detached.
//!
//! Shutdown order ([`super::run_with`]):
//! 1. `stopping` (the run's root token) is cancelled: the loops and every background task end at
//!    their next await, and no new work starts ([`Lifecycle::spawn_work`] answers `None`);
//! 2. the run's tracker is waited for (loops, background tasks, work already started), so no
//!    storage listing or upload of ours runs any more;
//! 3. the final sync;
//! 4. `finished` is cancelled: services ([`Lifecycle::spawn_service`], the HTTP server) shut down
//!    gracefully — requests in flight finish, `/healthz` answers until then — and their tracker
//!    is waited for, so nothing is left running when the run returns.
//!
//! What must stay true: background tasks and work go on the run's tracker (waited for before the
//! final sync); only services outlive it, and they must end soon after `finished` is cancelled.

use std::future::Future;

use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The run's cancellation and trackers as the services beside the loops see them.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// The run's root token: cancelled when shutdown starts.
    stopping: CancellationToken,
    /// The run's tracker, waited for before the final sync.
    tracker: TaskTracker,
    /// Cancelled after the final sync.
    finished: CancellationToken,
    /// Services, waited for after `finished` is cancelled.
    services: TaskTracker,
}

impl Lifecycle {
    pub(super) fn new(stopping: CancellationToken, tracker: TaskTracker) -> Self {
        Lifecycle {
            stopping,
            tracker,
            finished: CancellationToken::new(),
            services: TaskTracker::new(),
        }
    }

    /// A lifecycle of its own, never stopped (unit tests of the services).
    #[cfg(test)]
    pub fn detached() -> Self {
        Lifecycle::new(CancellationToken::new(), TaskTracker::new())
    }

    /// True once shutdown started.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Resolves when shutdown starts.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// Runs `task` on the run's tracker until it ends or shutdown starts (then it is dropped at
    /// its next await). The handle aborts it earlier (a database that left the fleet).
    pub fn spawn_background<F>(&self, task: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stopping.clone();
        self.tracker
            .spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = task => {}
                }
            })
            .abort_handle()
    }

    /// Runs `work` on the run's tracker unless shutdown has started (then the handle yields
    /// `None` and `work` never runs). Work that started is not cancelled: shutdown waits for it
    /// before the final sync, so it never reaches storage after the final sync.
    pub fn spawn_work<F>(&self, work: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let stop = self.stopping.clone();
        // The check runs inside the tracked task: spawned before the tracker's wait ended, it
        // is waited for; spawned after, the root token was cancelled before that wait began.
        self.tracker.spawn(async move {
            if stop.is_cancelled() {
                return None;
            }
            Some(work.await)
        })
    }

    /// Runs the service `run` builds until after the final sync: its token is cancelled then,
    /// and the service must end soon after (the run waits for it under a deadline).
    pub fn spawn_service<F>(&self, run: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.services.spawn(run(self.finished.clone()));
    }

    /// Step 4 of the shutdown: ends the services and waits for them until `deadline`; false
    /// when some were still running then.
    pub(super) async fn finish(&self, deadline: Instant) -> bool {
        self.finished.cancel();
        self.services.close();
        tokio::time::timeout_at(deadline, self.services.wait())
            .await
            .is_ok()
    }

    /// Tasks still running on both trackers.
    pub(super) fn running(&self) -> usize {
        self.tracker.len() + self.services.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn work_after_stopping_never_runs_and_services_outlive_the_loops() {
        let (root, tracker) = (CancellationToken::new(), TaskTracker::new());
        let life = Lifecycle::new(root.clone(), tracker.clone());
        let _bg = life.spawn_background(std::future::pending());
        let (tx, rx) = tokio::sync::oneshot::channel();
        life.spawn_service(|finished| async move {
            finished.cancelled().await;
            let _ = tx.send(());
        });
        root.cancel();
        tracker.close();
        tracker.wait().await;
        assert!(
            tracker.is_empty(),
            "the background task ended at the cancel"
        );
        assert_eq!(life.spawn_work(async { 1 }).await.expect("joined"), None);
        assert_eq!(life.running(), 1, "the service still runs");
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(life.finish(deadline).await);
        rx.await.expect("the service saw the end");
        assert_eq!(life.running(), 0);
    }
}
