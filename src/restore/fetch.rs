//! Downloading replica objects and decompressing them while they arrive.
//!
//! What must stay true:
//! - Memory per object in flight is bounded: a segment's decompressed bytes are kept in memory up
//!   to [`SPILL_THRESHOLD`], beyond that they go to an anonymous spill file beside the output;
//!   the snapshot is never buffered (its blocks are handed on one by one).
//! - Every error names the object key: storage failures as [`RestoreError::Read`], LZ4 problems
//!   (bad magic, corrupt block, content-checksum mismatch, truncated frame) as
//!   [`RestoreError::Decompress`].
//! - Progress counts stored (compressed) bytes as they arrive.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::lz4::{Decoder, Lz4Error};
use crate::storage::{ReplicaClient, SegmentInfo, StorageError, layout};

use super::error::RestoreError;
use super::output::spill_file;
use super::progress::Progress;

/// Decompressed bytes of one segment kept in memory before spilling to disk.
pub const SPILL_THRESHOLD: usize = 4 << 20;
/// Read size when replaying a spill file.
const SPILL_READ: usize = 1 << 20;

/// The decompressed content of one segment.
#[derive(Debug)]
pub enum Body {
    Memory(Vec<Bytes>),
    Spilled { file: File, len: u64 },
}

/// One downloaded segment, ready to apply.
#[derive(Debug)]
pub struct FetchedSegment {
    pub info: SegmentInfo,
    pub key: String,
    pub body: Body,
}

impl Body {
    /// Hands the bytes to `f` in order, in pieces of at most [`SPILL_READ`] for spill files.
    pub fn for_each(
        &self,
        key: &str,
        mut f: impl FnMut(&[u8]) -> Result<(), RestoreError>,
    ) -> Result<(), RestoreError> {
        match self {
            Body::Memory(parts) => parts.iter().try_for_each(|p| f(p)),
            Body::Spilled { file, len } => {
                let mut buf = vec![0u8; SPILL_READ];
                let mut at = 0u64;
                while at < *len {
                    let n = usize::try_from(*len - at).map_or(SPILL_READ, |r| r.min(SPILL_READ));
                    file.read_exact_at(&mut buf[..n], at)
                        .map_err(|e| RestoreError::io("read spill file for", key, e))?;
                    f(&buf[..n])?;
                    at += n as u64;
                }
                Ok(())
            }
        }
    }
}

/// Object key of a segment, as named in errors.
pub fn segment_key(client: &ReplicaClient, s: &SegmentInfo) -> String {
    layout::segment_key(client.root(), &s.generation, s.index, s.offset)
}

/// Object key of a snapshot, as named in errors.
pub fn snapshot_key(client: &ReplicaClient, generation: &str, index: u32) -> String {
    layout::snapshot_key(client.root(), generation, index)
}

/// The decompressed blocks of one stored object, decoded as the compressed bytes arrive.
pub fn decompressed(
    raw: BoxStream<'static, Result<Bytes, StorageError>>,
    key: String,
    progress: Progress,
) -> impl Stream<Item = Result<Bytes, RestoreError>> + Send + 'static {
    let state = Decoding {
        raw,
        dec: Decoder::new(),
        chunk: Bytes::new(),
        done: false,
        key,
        progress,
    };
    futures::stream::try_unfold(state, |mut st| async move {
        loop {
            if !st.chunk.is_empty() {
                let (used, block) = st.dec.feed(&st.chunk).map_err(|e| st.lz4_err(e))?;
                st.chunk.advance(used);
                match block {
                    Some(block) => return Ok(Some((block, st))),
                    None => continue,
                }
            }
            if st.done {
                return Ok(None);
            }
            match st.raw.next().await {
                Some(Ok(chunk)) => {
                    st.progress.add(chunk.len() as u64);
                    st.chunk = chunk;
                }
                Some(Err(e)) => return Err(st.read_err(e)),
                None => {
                    st.dec.finish().map_err(|e| st.lz4_err(e))?;
                    st.done = true;
                }
            }
        }
    })
}

struct Decoding {
    raw: BoxStream<'static, Result<Bytes, StorageError>>,
    dec: Decoder,
    chunk: Bytes,
    done: bool,
    key: String,
    progress: Progress,
}

impl Decoding {
    fn read_err(&self, e: StorageError) -> RestoreError {
        RestoreError::Read {
            key: self.key.clone(),
            source: Box::new(e),
        }
    }

    fn lz4_err(&self, e: Lz4Error) -> RestoreError {
        RestoreError::Decompress {
            key: self.key.clone(),
            source: Box::new(e),
        }
    }
}

/// Collects a segment in memory, spilling to an anonymous file past the threshold.
struct SegmentSink<'a> {
    out: &'a Path,
    info: &'a SegmentInfo,
    key: &'a str,
    parts: Vec<Bytes>,
    held: usize,
    spill: Option<(File, u64)>,
}

impl SegmentSink<'_> {
    async fn accept(&mut self, block: Bytes) -> Result<(), RestoreError> {
        if self.spill.is_none() && self.held + block.len() <= SPILL_THRESHOLD {
            self.held += block.len();
            self.parts.push(block);
            return Ok(());
        }
        if self.spill.is_none() {
            let file = spill_file(self.out, self.info.index, self.info.offset)?;
            self.spill = Some((file, 0));
            for part in std::mem::take(&mut self.parts) {
                self.write_spill(part).await?;
            }
        }
        self.write_spill(block).await
    }

    async fn write_spill(&mut self, block: Bytes) -> Result<(), RestoreError> {
        let Some((file, len)) = self.spill.as_mut() else {
            return Ok(());
        };
        let handle = file
            .try_clone()
            .map_err(|e| RestoreError::io("clone spill file for", self.key, e))?;
        let at = *len;
        *len += block.len() as u64;
        let key = self.key.to_string();
        tokio::task::spawn_blocking(move || {
            handle
                .write_all_at(&block, at)
                .map_err(|e| RestoreError::io("write spill file for", key, e))
        })
        .await
        .map_err(|e| RestoreError::Task(e.to_string()))?
    }

    fn into_body(self) -> Body {
        match self.spill {
            Some((file, len)) => Body::Spilled { file, len },
            None => Body::Memory(self.parts),
        }
    }
}

/// Downloads and decompresses one segment.
pub async fn fetch_segment(
    client: ReplicaClient,
    info: SegmentInfo,
    out: PathBuf,
    progress: Progress,
) -> Result<FetchedSegment, RestoreError> {
    let key = segment_key(&client, &info);
    let raw = client
        .open_segment(&info.generation, info.index, info.offset)
        .await
        .map_err(|e| RestoreError::Read {
            key: key.clone(),
            source: Box::new(e),
        })?;
    let mut blocks = std::pin::pin!(decompressed(raw, key.clone(), progress));
    let mut sink = SegmentSink {
        out: &out,
        info: &info,
        key: &key,
        parts: Vec::new(),
        held: 0,
        spill: None,
    };
    while let Some(block) = blocks.next().await {
        sink.accept(block?).await?;
    }
    let body = sink.into_body();
    Ok(FetchedSegment { info, key, body })
}
