//! The restore's own task handling: a worker's panic or cancellation becomes
//! [`RestoreError::Task`] (a restore reports a failed worker as an error and leaves nothing
//! behind instead of unwinding through the caller), and a download task is aborted when the
//! restore that spawned it gives up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

use super::error::RestoreError;

/// Waits for a restore task; its panic or cancellation is a [`RestoreError::Task`].
pub(super) async fn join<T>(h: JoinHandle<Result<T, RestoreError>>) -> Result<T, RestoreError> {
    h.await.map_err(|e| RestoreError::Task(e.to_string()))?
}

/// A spawned task that is aborted when dropped (so a failed restore stops its downloads).
pub(super) struct AbortOnDrop<T>(pub(super) JoinHandle<Result<T, RestoreError>>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, RestoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|e| RestoreError::Task(e.to_string()))
                .and_then(|r| r)
        })
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
