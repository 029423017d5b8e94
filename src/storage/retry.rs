//! Retries of storage calls: one helper, [`retry`], with exponential backoff and jitter, and the
//! classification [`is_permanent`] of `object_store` errors.
//!
//! Invariants:
//! - Permanent errors (missing object, permission/authentication failures, HTTP 4xx other than
//!   408/429, invalid paths, unsupported operations) are never retried; everything else (HTTP 5xx,
//!   408, 429, connection/timeout errors, unknown generic errors) is retried up to
//!   [`RetryPolicy::max_attempts`].
//! - Each retry is counted once in [`StorageStats`].
//! - Every attempt of a request is bounded ([`bounded`]: uploads by their size in
//!   `storage::upload`, a GET's headers and an Azure listing page by [`ANSWER_TIMEOUT`], a
//!   listing by [`LISTING_TIMEOUT`], a DELETE batch by its size), so a hung request is
//!   abandoned and retried instead of waiting for the HTTP client's read timeout.
//! - `object_store`'s own request retries are kept small ([`inner_retry_config`]) so the two
//!   layers together stay within tens of seconds, not minutes.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use object_store::client::HttpError;
use object_store::{BackoffConfig, RetryConfig};

use super::azure_list::ListStatusError;
use super::stats::StorageStats;
use super::{Op, StorageError};

/// Longest wait for the answer to one small request: a GET's headers (the body then streams
/// under the HTTP client's read timeout), one page of an Azure listing, a DELETE batch's base.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one delimiter or recursive listing, which `object_store` pages through
/// internally (one request per 1,000 keys).
pub const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

/// Default number of attempts of one logical operation (1 try + 3 retries).
const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// First backoff; doubles per retry up to [`DEFAULT_MAX_BACKOFF`].
const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Cap of one backoff sleep.
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `object_store`'s per-request retries: two quick retries for blips inside one request (e.g. one
/// multipart part), so a failing part does not restart a whole upload, while the outer layer
/// handles longer outages.
const INNER_MAX_RETRIES: usize = 2;
const INNER_RETRY_TIMEOUT: Duration = Duration::from_secs(20);
const INNER_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const INNER_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How often and how fast to retry transient failures of one logical operation.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// A policy with millisecond backoff, for tests.
    pub fn fast(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
        }
    }

    /// Sleep before retry number `retry` (1-based): `initial * 2^(retry-1)`, capped, times a
    /// random factor in [0.5, 1.5).
    pub fn backoff(&self, retry: u32) -> Duration {
        let capped = crate::rt::backoff_delay(self.initial_backoff, self.max_backoff, retry);
        capped.mul_f64(rand::random_range(0.5..1.5))
    }
}

/// `object_store`'s own retry settings used by every cloud client we build.
pub fn inner_retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: INNER_INITIAL_BACKOFF,
            max_backoff: INNER_MAX_BACKOFF,
            base: 2.0,
        },
        max_retries: INNER_MAX_RETRIES,
        retry_timeout: INNER_RETRY_TIMEOUT,
    }
}

/// Failure of one attempt: either a store error (classified and maybe retried) or an error that
/// ends the operation at once (e.g. the upload body could not be read).
#[derive(Debug)]
pub enum AttemptError {
    Store(object_store::Error),
    Fatal(StorageError),
}

impl From<object_store::Error> for AttemptError {
    fn from(e: object_store::Error) -> Self {
        AttemptError::Store(e)
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or `policy.max_attempts` is reached.
/// `op` and `key` name the operation in the returned error.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    stats: &StorageStats,
    op: Op,
    key: &str,
    mut attempt: F,
) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let source = match attempt().await {
            Ok(v) => return Ok(v),
            Err(AttemptError::Fatal(e)) => return Err(stats.record_error(e)),
            Err(AttemptError::Store(e)) => e,
        };
        if is_permanent(&source) || attempts >= max_attempts {
            return Err(stats.record_error(classify(op, key, attempts, source)));
        }
        stats.record_retry();
        tracing::debug!(%op, key, attempts, error = %source, "retrying storage operation");
        tokio::time::sleep(policy.backoff(attempts)).await;
    }
}

/// `step` bounded by `limit`; running out of time is a transient error, so [`retry`] tries
/// again: a hung request costs `limit`, not the HTTP client's 60 s read timeout.
pub async fn bounded<T, E: Into<AttemptError>>(
    what: &'static str,
    limit: Duration,
    step: impl Future<Output = Result<T, E>>,
) -> Result<T, AttemptError> {
    match tokio::time::timeout(limit, step).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(timed_out(what, limit)),
    }
}

/// The transient error of a request abandoned after `limit`.
fn timed_out(what: &'static str, limit: Duration) -> AttemptError {
    AttemptError::Store(object_store::Error::Generic {
        store: "walstream",
        source: format!(
            "{what} not answered within {:.1}s (abandoned, retried)",
            limit.as_secs_f64()
        )
        .into(),
    })
}

/// Turns a store error into the matching [`StorageError`] (no retry decision involved).
pub fn classify(op: Op, key: &str, attempts: u32, source: object_store::Error) -> StorageError {
    let key = key.to_string();
    match source {
        object_store::Error::NotFound { .. } => StorageError::NotFound { key },
        source if is_permanent(&source) => StorageError::Permanent { op, key, source },
        source => StorageError::Transient {
            op,
            key,
            attempts,
            source,
        },
    }
}

/// True when retrying cannot help: the object is missing, access is refused, the request is
/// malformed (HTTP 4xx except 408/429) or the operation is unsupported.
pub fn is_permanent(err: &object_store::Error) -> bool {
    use object_store::Error as E;
    match err {
        E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. }
        | E::JoinError { .. } => true,
        E::Generic { source, .. } => generic_is_permanent(source.as_ref()),
        _ => false,
    }
}

/// Classifies the source of a `Generic` error by walking its chain. `object_store` keeps its HTTP
/// status error type private, so an HTTP status is recognised by its message
/// (`"... status code: 503 Service Unavailable ..."`); transport errors by [`HttpError`]; local
/// file errors by [`std::io::Error`]; our own Azure listing's statuses by [`ListStatusError`].
/// Anything unrecognised is treated as transient.
fn generic_is_permanent(source: &(dyn StdError + Send + Sync + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(source);
    while let Some(err) = current {
        if err.downcast_ref::<HttpError>().is_some() {
            return false;
        }
        if let Some(status) = err.downcast_ref::<ListStatusError>() {
            return status_is_permanent(status.status);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io_is_permanent(io);
        }
        let text = err.to_string();
        if let Some(status) = http_status_in(&text) {
            return status_is_permanent(status);
        }
        if text.contains("Received redirect without LOCATION") {
            return true;
        }
        current = err.source();
    }
    false
}

/// Extracts the status from `object_store`'s message "Server returned non-2xx status code: NNN".
fn http_status_in(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

fn status_is_permanent(status: u16) -> bool {
    !(status >= 500 || status == 408 || status == 429)
}

fn io_is_permanent(err: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        err.kind(),
        K::NotFound
            | K::PermissionDenied
            | K::InvalidInput
            | K::InvalidData
            | K::AlreadyExists
            | K::Unsupported
            | K::ReadOnlyFilesystem
            | K::IsADirectory
            | K::NotADirectory
            | K::InvalidFilename
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::client::HttpErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, thiserror::Error)]
    #[error(
        "Error performing GET http://x/y in 1ms - Server returned non-2xx status code: {0}: body"
    )]
    struct FakeStatus(&'static str);

    fn generic(source: Box<dyn StdError + Send + Sync>) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source,
        }
    }

    #[test]
    fn http_status_classification() {
        assert!(!is_permanent(&generic(Box::new(FakeStatus(
            "503 Service Unavailable"
        )))));
        assert!(!is_permanent(&generic(Box::new(FakeStatus(
            "500 Internal Server Error"
        )))));
        assert!(!is_permanent(&generic(Box::new(FakeStatus(
            "429 Too Many Requests"
        )))));
        assert!(!is_permanent(&generic(Box::new(FakeStatus(
            "408 Request Timeout"
        )))));
        assert!(is_permanent(&generic(Box::new(FakeStatus(
            "400 Bad Request"
        )))));
        assert!(is_permanent(&generic(Box::new(FakeStatus(
            "405 Method Not Allowed"
        )))));
        assert!(is_permanent(&generic(Box::new(FakeStatus(
            "301 Moved Permanently"
        )))));
    }

    #[test]
    fn azure_listing_status_classification() {
        let status = |status| ListStatusError {
            status,
            body: String::new(),
        };
        assert!(is_permanent(&generic(Box::new(status(403)))));
        assert!(is_permanent(&generic(Box::new(status(400)))));
        assert!(!is_permanent(&generic(Box::new(status(503)))));
        assert!(!is_permanent(&generic(Box::new(status(429)))));
    }

    #[test]
    fn transport_and_io_classification() {
        let http = HttpError::new(HttpErrorKind::Connect, std::io::Error::other("refused"));
        assert!(!is_permanent(&generic(Box::new(http))));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(is_permanent(&generic(Box::new(denied))));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!is_permanent(&generic(Box::new(reset))));
        assert!(!is_permanent(&generic("something odd".into())));
    }

    #[test]
    fn variant_classification() {
        let nf = object_store::Error::NotFound {
            path: "a".into(),
            source: "x".into(),
        };
        assert!(is_permanent(&nf));
        let pd = object_store::Error::PermissionDenied {
            path: "a".into(),
            source: "x".into(),
        };
        assert!(is_permanent(&pd));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
        };
        let first = p.backoff(1);
        assert!(first >= Duration::from_millis(50) && first < Duration::from_millis(150));
        let late = p.backoff(9);
        assert!(late >= Duration::from_millis(200) && late < Duration::from_millis(600));
    }

    fn transient() -> object_store::Error {
        generic(Box::new(FakeStatus("503 Service Unavailable")))
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds() {
        let stats = StorageStats::default();
        let calls = AtomicU32::new(0);
        let out = retry(&RetryPolicy::fast(5), &stats, Op::Get, "k", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(AttemptError::Store(transient())),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(stats.retries(), 2);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_names_key() {
        let stats = StorageStats::default();
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry(&RetryPolicy::fast(3), &stats, Op::Put, "a/b", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(AttemptError::Store(transient()))
        })
        .await;
        let err = out.expect_err("must fail");
        assert!(
            matches!(err, StorageError::Transient { attempts: 3, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("PUT a/b"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(stats.retries(), 2);
    }

    #[tokio::test]
    async fn permanent_is_not_retried() {
        let stats = StorageStats::default();
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry(&RetryPolicy::fast(5), &stats, Op::Get, "k", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(AttemptError::Store(object_store::Error::NotFound {
                path: "k".into(),
                source: "gone".into(),
            }))
        })
        .await;
        assert!(matches!(out, Err(StorageError::NotFound { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(stats.retries(), 0);
    }
}
