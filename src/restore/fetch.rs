//! Downloading replica objects and decompressing them while they arrive.
//!
//! What must stay true:
//! - Memory per object in flight is bounded: a downloading segment keeps its stored (compressed)
//!   bytes in memory up to [`SPILL_THRESHOLD`], beyond that they go to an anonymous spill file
//!   beside the output. Segments are decompressed one at a time, in apply order
//!   ([`decode_segment`]), so only the few segments next in line are ever held decompressed
//!   (each up to [`DECODED_SPILL_THRESHOLD`] in memory, else spilled), however many downloads run
//!   in parallel. The snapshot is never buffered (its blocks are handed on one by one).
//! - A segment is decompressed and its LZ4 checksums verified completely before any of its bytes
//!   is handed on, so a corrupt object is reported as a decompression error, never as a WAL error.
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

use crate::lz4::{BlockPool, Decoder, Lz4Error};
use crate::storage::{ReplicaClient, SegmentInfo, StorageError, layout};

use super::error::RestoreError;
use super::output::spill_file;
use super::progress::Progress;

/// Stored bytes of one downloading segment kept in memory before spilling to disk.
pub const SPILL_THRESHOLD: usize = 4 << 20;
/// Decompressed bytes of one segment kept in memory before spilling to disk (at most three
/// decompressed segments exist at once: being decoded, queued, being applied).
pub const DECODED_SPILL_THRESHOLD: usize = 8 << 20;
/// Read size when replaying a spill file.
const SPILL_READ: usize = 1 << 20;

/// The decompressed content of one segment.
#[derive(Debug)]
pub enum Body {
    Memory(Vec<Bytes>),
    Spilled { file: File, len: u64 },
}

/// One downloaded segment, still compressed.
#[derive(Debug)]
pub struct RawSegment {
    pub info: SegmentInfo,
    pub key: String,
    pub body: Body,
}

/// One decompressed segment, ready to apply.
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

/// The decompressed blocks of one stored object, decoded as the compressed bytes arrive (full
/// blocks straight into buffers from `pool`).
pub fn decompressed(
    raw: BoxStream<'static, Result<Bytes, StorageError>>,
    key: String,
    progress: Progress,
    pool: BlockPool,
) -> impl Stream<Item = Result<Bytes, RestoreError>> + Send + 'static {
    let state = Decoding {
        raw,
        dec: Decoder::with_pool(pool),
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

/// Collects a segment in memory, spilling to an anonymous file past `limit` bytes.
struct SegmentSink<'a> {
    out: &'a Path,
    info: &'a SegmentInfo,
    key: &'a str,
    limit: usize,
    parts: Vec<Bytes>,
    held: usize,
    spill: Option<(File, u64)>,
}

impl<'a> SegmentSink<'a> {
    fn new(out: &'a Path, info: &'a SegmentInfo, key: &'a str, limit: usize) -> Self {
        SegmentSink {
            out,
            info,
            key,
            limit,
            parts: Vec::new(),
            held: 0,
            spill: None,
        }
    }

    /// Keeps `block` in memory if it fits; otherwise returns the blocks to write to the spill
    /// file (creating it on the first overflow).
    fn hold(&mut self, block: Bytes) -> Result<Vec<Bytes>, RestoreError> {
        if self.spill.is_none() && self.held + block.len() <= self.limit {
            self.held += block.len();
            self.parts.push(block);
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if self.spill.is_none() {
            let file = spill_file(self.out, self.info.index, self.info.offset)?;
            self.spill = Some((file, 0));
            out = std::mem::take(&mut self.parts);
        }
        out.push(block);
        Ok(out)
    }

    /// For async callers: spill writes run on the blocking pool.
    async fn accept(&mut self, block: Bytes) -> Result<(), RestoreError> {
        for part in self.hold(block)? {
            self.write_spill(part).await?;
        }
        Ok(())
    }

    /// For callers already on a blocking thread.
    fn accept_blocking(&mut self, block: Bytes) -> Result<(), RestoreError> {
        for part in self.hold(block)? {
            let Some((file, len)) = self.spill.as_mut() else {
                return Ok(());
            };
            file.write_all_at(&part, *len)
                .map_err(|e| RestoreError::io("write spill file for", self.key, e))?;
            *len += part.len() as u64;
        }
        Ok(())
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
        super::task::join(tokio::task::spawn_blocking(move || {
            handle
                .write_all_at(&block, at)
                .map_err(|e| RestoreError::io("write spill file for", key, e))
        }))
        .await
    }

    fn into_body(self) -> Body {
        match self.spill {
            Some((file, len)) => Body::Spilled { file, len },
            None => Body::Memory(self.parts),
        }
    }
}

/// Downloads one segment (still compressed), spilling past [`SPILL_THRESHOLD`] stored bytes.
pub async fn fetch_segment(
    client: ReplicaClient,
    info: SegmentInfo,
    out: PathBuf,
    progress: Progress,
) -> Result<RawSegment, RestoreError> {
    let key = segment_key(&client, &info);
    let read_err = |e: StorageError| RestoreError::Read {
        key: key.clone(),
        source: Box::new(e),
    };
    let mut raw = client
        .open_segment(&info.generation, info.index, info.offset)
        .await
        .map_err(read_err)?;
    let mut sink = SegmentSink::new(&out, &info, &key, SPILL_THRESHOLD);
    while let Some(chunk) = raw.next().await {
        let chunk = chunk.map_err(read_err)?;
        progress.add(chunk.len() as u64);
        sink.accept(chunk).await?;
    }
    let body = sink.into_body();
    Ok(RawSegment { info, key, body })
}

/// Decompresses a downloaded segment completely (blocking; every LZ4 checksum verified),
/// keeping up to [`DECODED_SPILL_THRESHOLD`] bytes in memory (full blocks in buffers from
/// `pool`).
pub fn decode_segment(
    raw: RawSegment,
    out: &Path,
    pool: &BlockPool,
) -> Result<FetchedSegment, RestoreError> {
    let RawSegment { info, key, body } = raw;
    let lz4_err = |e: Lz4Error| RestoreError::Decompress {
        key: key.clone(),
        source: Box::new(e),
    };
    let mut dec = Decoder::with_pool(pool.clone());
    let mut sink = SegmentSink::new(out, &info, &key, DECODED_SPILL_THRESHOLD);
    body.for_each(&key, |mut chunk| {
        while !chunk.is_empty() {
            let (used, block) = dec.feed(chunk).map_err(lz4_err)?;
            chunk = &chunk[used..];
            if let Some(block) = block {
                sink.accept_blocking(block)?;
            }
        }
        Ok(())
    })?;
    dec.finish().map_err(lz4_err)?;
    let body = sink.into_body();
    Ok(FetchedSegment { info, key, body })
}
