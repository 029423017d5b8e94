//! One upload attempt of a streamed body: a single PUT when the body is at most one part,
//! otherwise a multipart upload. Object stores get [`Parts::REMOTE`] (5 MiB parts, two in
//! flight: Litestream's upload manager also uses 5 MiB parts, spec §10); a file replica, whose
//! "parts" are just writes into a staging file, gets [`Parts::LOCAL`] (1 MiB, one at a time),
//! so a snapshot of a large database costs a few MiB of memory instead of twenty.
//!
//! What must stay true:
//! - Memory is bounded: at most one part being filled plus `in_flight` parts in flight.
//! - A failed multipart upload is aborted (best effort) so no half object becomes visible.
//! - A body read error ends the operation without retry ([`AttemptError::Fatal`]).
//! - Every request step is bounded by [`step_timeout`] of the bytes it sends: a base for the
//!   round trip plus those bytes at a floor rate, so a hung small PUT is abandoned (and retried)
//!   after about 10 s, not after the HTTP client's 60 s read timeout.

use std::io;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{
    Attributes, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};

use super::retry::AttemptError;
use super::{Op, StorageError};

/// Round-trip allowance of every upload request step.
const STEP_BASE: Duration = Duration::from_secs(10);
/// The slowest transfer rate an upload step is allowed before it is abandoned (bytes/s).
const MIN_RATE: f64 = 256.0 * 1024.0;

/// The time an upload step sending `bytes` may take: [`STEP_BASE`] + `bytes` at [`MIN_RATE`]
/// (a single small PUT: ~10 s; a 5 MiB part: 30 s; two 5 MiB parts in flight: 50 s).
pub fn step_timeout(bytes: usize) -> Duration {
    STEP_BASE + Duration::from_secs_f64(bytes as f64 / MIN_RATE)
}

async fn bounded<T>(
    limit: Duration,
    step: impl std::future::Future<Output = object_store::Result<T>>,
) -> Result<T, AttemptError> {
    super::retry::bounded("upload step", limit, step).await
}

/// Part size on object stores (the largest body sent there as one PUT).
pub const PART_SIZE: usize = Parts::REMOTE.size;

/// Size of each multipart part (also the largest body sent as one PUT) and how many parts are
/// uploaded concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Parts {
    pub size: usize,
    pub in_flight: usize,
}

impl Parts {
    /// Object stores: S3's minimum part size, two parts in flight.
    pub const REMOTE: Parts = Parts {
        size: 5 * 1024 * 1024,
        in_flight: 2,
    };
    /// Local file replicas: each part is one positional write into the staging file.
    pub const LOCAL: Parts = Parts {
        size: 1024 * 1024,
        in_flight: 1,
    };
}

/// Uploads `body` to `path` with the user metadata in `attributes` (empty for v0.3 objects);
/// returns the number of bytes stored.
pub(super) async fn upload<S>(
    store: &dyn ObjectStore,
    path: &Path,
    key: &str,
    body: S,
    parts: Parts,
    attributes: &Attributes,
) -> Result<u64, AttemptError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let mut body = pin!(body);
    let mut head: Vec<Bytes> = Vec::new();
    let mut head_len = 0usize;
    while head_len <= parts.size {
        match body.next().await {
            None => {
                let payload = PutPayload::from_iter(head);
                let opts = PutOptions {
                    attributes: attributes.clone(),
                    ..PutOptions::default()
                };
                bounded(step_timeout(head_len), store.put_opts(path, payload, opts)).await?;
                return Ok(head_len as u64);
            }
            Some(chunk) => {
                let chunk = chunk.map_err(|e| body_error(key, e))?;
                head_len += chunk.len();
                head.push(chunk);
            }
        }
    }
    let opts = PutMultipartOptions {
        attributes: attributes.clone(),
        ..PutMultipartOptions::default()
    };
    let upload = bounded(step_timeout(0), store.put_multipart_opts(path, opts)).await?;
    let window = step_timeout(parts.size * parts.in_flight);
    let mut writer = WriteMultipart::new_with_chunk_size(upload, parts.size);
    let mut total = 0u64;
    for chunk in head {
        total += chunk.len() as u64;
        writer.put(chunk);
    }
    loop {
        if let Err(e) = bounded(window, writer.wait_for_capacity(parts.in_flight)).await {
            abort(writer, key).await;
            return Err(e);
        }
        match body.next().await {
            None => break,
            Some(Ok(chunk)) => {
                total += chunk.len() as u64;
                writer.put(chunk);
            }
            Some(Err(e)) => {
                abort(writer, key).await;
                return Err(body_error(key, e));
            }
        }
    }
    // A `finish` that runs out of time cannot abort the upload any more (it owns the writer):
    // its parts stay with the store until its multipart-upload expiry, never as an object.
    bounded(window, writer.finish()).await?;
    Ok(total)
}

async fn abort(writer: WriteMultipart, key: &str) {
    if let Err(e) = writer.abort().await {
        tracing::warn!(key, error = %e, "aborting multipart upload failed");
    }
}

fn body_error(key: &str, source: io::Error) -> AttemptError {
    AttemptError::Fatal(StorageError::Io {
        op: Op::Put,
        key: key.to_string(),
        source,
    })
}
