//! One upload attempt of a streamed body: a single PUT when the body is at most [`PART_SIZE`],
//! otherwise a multipart upload in [`PART_SIZE`] parts (Litestream's upload manager does the same
//! with 5 MiB parts, spec §10).
//!
//! What must stay true:
//! - Memory is bounded: at most one part being filled plus [`MAX_PARTS_IN_FLIGHT`] parts in flight.
//! - A failed multipart upload is aborted (best effort) so no half object becomes visible.
//! - A body read error ends the operation without retry ([`AttemptError::Fatal`]).

use std::io;
use std::pin::pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart};

use super::retry::AttemptError;
use super::{Op, StorageError};

/// Size of each multipart part, and the largest body sent as one PUT (5 MiB).
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploaded concurrently.
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Uploads `body` to `path`; returns the number of bytes stored.
pub(super) async fn upload<S>(
    store: &dyn ObjectStore,
    path: &Path,
    key: &str,
    body: S,
) -> Result<u64, AttemptError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let mut body = pin!(body);
    let mut head: Vec<Bytes> = Vec::new();
    let mut head_len = 0usize;
    while head_len <= PART_SIZE {
        match body.next().await {
            None => {
                let payload = PutPayload::from_iter(head);
                store.put_opts(path, payload, PutOptions::default()).await?;
                return Ok(head_len as u64);
            }
            Some(chunk) => {
                let chunk = chunk.map_err(|e| body_error(key, e))?;
                head_len += chunk.len();
                head.push(chunk);
            }
        }
    }
    let upload = store
        .put_multipart_opts(path, PutMultipartOptions::default())
        .await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut total = 0u64;
    for chunk in head {
        total += chunk.len() as u64;
        writer.put(chunk);
    }
    loop {
        if let Err(e) = writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
            abort(writer, key).await;
            return Err(e.into());
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
    writer.finish().await?;
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
