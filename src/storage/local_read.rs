//! Streaming of a local file returned by `object_store` (`GetResultPayload::File`) in large
//! chunks, read on the blocking pool.
//!
//! `object_store`'s own `into_stream` reads local files 8 KiB at a time with one blocking-pool
//! hop per chunk, which dominates the CPU cost of restoring from a file replica. Here one
//! blocking task reads [`CHUNK_SIZE`] pieces and hands them over a bounded channel.
//!
//! What must stay true:
//! - Exactly the bytes of `range` are yielded, in order; every chunk is at most [`CHUNK_SIZE`]
//!   bytes and at most [`QUEUED_CHUNKS`] chunks wait in the channel, so memory stays at a few MiB
//!   whatever the file size.
//! - A file shorter than `range` (truncated while being read) is an error, never a short stream.
//! - Read errors are `object_store::Error::Generic` whose source chain holds the `io::Error`
//!   and names the file, as `object_store`'s own local reads do, so the caller's classification
//!   (permanent/transient) is unchanged.
//! - Dropping the stream stops the reader at its next chunk; nothing is left running.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;

/// Bytes read per blocking call.
pub(super) const CHUNK_SIZE: usize = 1024 * 1024;
/// Chunks read ahead of the consumer.
const QUEUED_CHUNKS: usize = 2;

/// A failed read of a local replica object; the source is the underlying I/O error.
#[derive(Debug, thiserror::Error)]
#[error("reading {} at offset {offset}: {source}", path.display())]
pub(super) struct LocalReadError {
    path: PathBuf,
    offset: u64,
    #[source]
    source: io::Error,
}

/// Streams `range` of `file` (opened by `object_store` for `path`) in chunks of up to
/// [`CHUNK_SIZE`] bytes. The stream ends after the first error.
pub(super) fn chunked_file_stream(
    file: File,
    path: PathBuf,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    tokio::task::spawn_blocking(move || read_into(file, path, range, &tx));
    futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

/// The blocking reader: sends chunks until the range is done, an error was sent, or the
/// receiver is gone.
fn read_into(
    mut file: File,
    path: PathBuf,
    range: Range<u64>,
    tx: &mpsc::Sender<Result<Bytes, object_store::Error>>,
) {
    let mut offset = range.start;
    if let Err(source) = file.seek(SeekFrom::Start(offset)) {
        let _ = tx.blocking_send(Err(to_store_error(path, offset, source)));
        return;
    }
    while offset < range.end {
        let want = chunk_len(range.end - offset);
        let item = match read_chunk(&mut file, want) {
            Ok(chunk) => Ok(chunk),
            Err(source) => Err(to_store_error(path.clone(), offset, source)),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
        offset += want as u64;
    }
}

fn chunk_len(remaining: u64) -> usize {
    usize::try_from(remaining).map_or(CHUNK_SIZE, |r| r.min(CHUNK_SIZE))
}

/// Reads exactly `len` bytes (`UnexpectedEof` if the file ends first). The buffer is filled
/// straight from the file without being zeroed first.
fn read_chunk(file: &mut File, len: usize) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len);
    let limit = u64::try_from(len).map_err(io::Error::other)?;
    file.take(limit).read_to_end(&mut buf)?;
    if buf.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "failed to fill whole buffer",
        ));
    }
    Ok(Bytes::from(buf))
}

fn to_store_error(path: PathBuf, offset: u64, source: io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(LocalReadError {
            path,
            offset,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReplicaTarget;
    use crate::storage::{Op, ReplicaClient, pseudo_random};
    use futures::TryStreamExt;

    const GENERATION: &str = "0123456789abcdef";

    fn file_client(dir: &std::path::Path) -> ReplicaClient {
        let target = ReplicaTarget::File {
            path: dir.to_path_buf(),
        };
        ReplicaClient::new(&target).expect("file client")
    }

    #[tokio::test]
    async fn multi_chunk_snapshot_round_trips_through_open_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = file_client(dir.path());
        let data = Bytes::from(pseudo_random(CHUNK_SIZE * 7 / 2, 0x9e37_79b9_7f4a_7c15));
        let body = data.clone();
        let stored = client
            .put_snapshot(GENERATION, 3, || {
                futures::stream::iter([Ok::<_, io::Error>(body.clone())])
            })
            .await
            .expect("put");
        assert_eq!(stored, data.len() as u64);
        assert_eq!(client.stats().operations(Op::Get), 0);

        let stream = client.open_snapshot(GENERATION, 3).await.expect("open");
        let chunks: Vec<Bytes> = stream.try_collect().await.expect("read");
        assert_eq!(chunks.len(), 4, "3.5 MiB in 1 MiB chunks");
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_SIZE));
        assert_eq!(chunks.concat(), data.as_ref());

        assert_eq!(client.stats().operations(Op::Get), 1);
        assert_eq!(client.stats().bytes(Op::Get), data.len() as u64);
    }

    #[tokio::test]
    async fn missing_local_snapshot_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = file_client(dir.path());
        let err = client
            .open_snapshot(GENERATION, 9)
            .await
            .err()
            .expect("missing snapshot must fail");
        assert!(err.is_not_found(), "{err}");
    }

    #[tokio::test]
    async fn reads_exactly_the_requested_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("obj");
        let data = pseudo_random(CHUNK_SIZE + 100, 7);
        std::fs::write(&path, &data).expect("write");
        let file = File::open(&path).expect("open");
        let range = 50..(CHUNK_SIZE as u64 + 60);
        let got: Vec<Bytes> = chunked_file_stream(file, path, range.clone())
            .try_collect()
            .await
            .expect("read");
        assert_eq!(got.len(), 2);
        assert_eq!(got.concat(), &data[50..CHUNK_SIZE + 60]);
    }

    #[tokio::test]
    async fn file_shorter_than_range_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("short");
        std::fs::write(&path, pseudo_random(1000, 3)).expect("write");
        let file = File::open(&path).expect("open");
        let err = chunked_file_stream(file, path.clone(), 0..2000)
            .try_collect::<Vec<Bytes>>()
            .await
            .expect_err("truncated file must fail");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        let object_store::Error::Generic { source, .. } = &err else {
            panic!("unexpected error kind: {err:?}");
        };
        let read = source
            .downcast_ref::<LocalReadError>()
            .expect("LocalReadError");
        assert_eq!(read.source.kind(), io::ErrorKind::UnexpectedEof);
    }
}
