//! Async stream adapters over [`Encoder`] and [`Decoder`] with bounded buffering.
//!
//! What must stay true: at most one block is held per direction; an input chunk is never
//! expanded into more than one block of output per item; block compression (the CPU-heavy
//! step) runs on tokio's blocking pool so it does not stall the runtime. Both streams end after
//! the first error.

use std::io;
use std::pin::Pin;

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};

use super::{BLOCK_SIZE, Decoder, Encoder, Lz4Error};

/// Compresses a byte stream into one LZ4 frame (Litestream framing), yielding frame bytes as
/// each 4 MiB block completes. Must be polled inside a tokio runtime.
pub fn compress_stream<S>(input: S) -> impl Stream<Item = io::Result<Bytes>>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    let state = CompressState {
        input: Box::pin(input),
        encoder: Some(Encoder::new()),
        chunk: Bytes::new(),
    };
    futures::stream::unfold(state, |mut st| async move {
        match st.next_output().await {
            Ok(Some(out)) => Some((Ok(out), st)),
            Ok(None) => None,
            Err(e) => {
                st.encoder = None;
                Some((Err(e), st))
            }
        }
    })
}

struct CompressState<S> {
    input: Pin<Box<S>>,
    /// `None` once the frame was finished or an error was returned.
    encoder: Option<Encoder>,
    /// Unconsumed part of the current input chunk.
    chunk: Bytes,
}

impl<S: Stream<Item = io::Result<Bytes>>> CompressState<S> {
    /// Feeds input until some output is ready; `None` after the frame was finished.
    async fn next_output(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let Some(mut enc) = self.encoder.take() else {
                return Ok(None);
            };
            if self.chunk.is_empty() {
                match self.input.next().await {
                    Some(Ok(chunk)) => {
                        self.chunk = chunk;
                        self.encoder = Some(enc);
                        continue;
                    }
                    Some(Err(e)) => return Err(e),
                    None => return blocking(move || enc.finish()).await.map(Some),
                }
            }
            // Feed at most up to the next block boundary, so one call compresses ≤ 1 block.
            let take = (BLOCK_SIZE - enc.buffered()).min(self.chunk.len());
            let piece = self.chunk.split_to(take);
            let (enc, out) = if enc.buffered() + take == BLOCK_SIZE {
                blocking(move || {
                    let out = enc.write(&piece);
                    (enc, out)
                })
                .await?
            } else {
                let out = enc.write(&piece);
                (enc, out)
            };
            self.encoder = Some(enc);
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::rt::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("lz4: compression task failed: {e}")))
}

/// Decompresses a stream of LZ4 frame bytes, yielding each block (≤ 4 MiB) as soon as it and
/// its block checksum (if any) were read. A content-checksum, truncation or format error
/// arrives as the final item, so consumers must not treat the data as good before the stream
/// ended without an error.
pub fn decompress_stream<S>(input: S) -> impl Stream<Item = Result<Bytes, Lz4Error>>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    let state = DecompressState {
        input: Box::pin(input),
        decoder: Decoder::new(),
        chunk: Bytes::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        match st.next_output().await {
            Ok(Some(out)) => Some((Ok(out), st)),
            Ok(None) => None,
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
        }
    })
}

struct DecompressState<S> {
    input: Pin<Box<S>>,
    decoder: Decoder,
    chunk: Bytes,
    done: bool,
}

impl<S: Stream<Item = io::Result<Bytes>>> DecompressState<S> {
    async fn next_output(&mut self) -> Result<Option<Bytes>, Lz4Error> {
        loop {
            if !self.chunk.is_empty() {
                let (used, out) = self.decoder.feed(&self.chunk)?;
                self.chunk.advance(used);
                if out.is_some() {
                    return Ok(out);
                }
                continue;
            }
            match self.input.next().await {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(Lz4Error::Io(e)),
                None => {
                    self.done = true;
                    self.decoder.finish()?;
                    return Ok(None);
                }
            }
        }
    }
}
