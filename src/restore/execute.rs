//! Running a [`RestorePlan`]: parallel download and decompression, in-order apply on a blocking
//! thread, fsync, verification, atomic move into place.
//!
//! ```text
//! snapshot task ──blocks (≤2 in flight)─────────────────────┐
//!                                                           ├─▶ disk thread: OUT.tmp ← snapshot,
//! segment downloads (≤ parallelism, compressed)             │   then each index's frames
//!   ──▶ decode one at a time, in order ──(1 queued)─────────┘   (validated)
//!   ──▶ fsync ∥ integrity check ──▶ link OUT, unlink OUT.tmp
//! ```
//!
//! The final fsync and the integrity check run at the same time (the check reads the finished
//! file from the page cache while the disk catches up); the move into place waits for both, and
//! an fsync error wins over a verification error.
//!
//! What must stay true:
//! - The disk thread consumes the snapshot first and segments strictly in (index, offset)
//!   order; downloads run ahead by at most `parallelism` segments, so memory stays bounded by
//!   `parallelism × SPILL_THRESHOLD` stored bytes plus three decompressed segments
//!   (`DECODED_SPILL_THRESHOLD` each), a few snapshot blocks and at most `POOLED_BLOCKS` idle
//!   block buffers kept for reuse, never by database size.
//! - Any failure (download, decode, validation, verification, a panicked task) ends the
//!   restore with that error; the [`TempOutput`] guard then removes every temporary file and
//!   in-flight download tasks are aborted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc::{self, Receiver, Sender};
use tracing::info;

use crate::lz4::BlockPool;
use crate::storage::{ReplicaClient, SegmentInfo};

use super::apply::{IndexApplier, SnapshotSink};
use super::error::RestoreError;
use super::fetch::{
    FetchedSegment, RawSegment, decode_segment, decompressed, fetch_segment, snapshot_key,
};
use super::flush::Flusher;
use super::output::TempOutput;
use super::plan::RestorePlan;
use super::progress::{FinishOnDrop, Progress};
use super::task::{AbortOnDrop, join};
use super::verify::{IntegrityCheck, verify};

/// Default number of concurrent downloads (Litestream's `DefaultRestoreParallelism`).
pub const DEFAULT_PARALLELISM: usize = 8;
/// Decompressed snapshot blocks queued ahead of the disk thread.
const SNAPSHOT_QUEUE: usize = 2;
/// Idle decoded-block buffers kept for reuse: about what is in flight at once (the snapshot
/// queue, the block being written and the one being decoded; later the WAL phase's blocks).
const POOLED_BLOCKS: usize = 6;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Concurrent segment downloads (values below 1 mean 1, as in Litestream).
    pub parallelism: usize,
    pub integrity_check: IntegrityCheck,
    /// Show a progress bar if stderr is a terminal.
    pub progress: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            parallelism: DEFAULT_PARALLELISM,
            integrity_check: IntegrityCheck::Full,
            progress: false,
        }
    }
}

/// What a finished restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    pub generation: String,
    pub snapshot_index: u32,
    /// Highest WAL index applied.
    pub max_index: Option<u32>,
    /// WAL frames written.
    pub frames: u64,
    /// Size of the restored database file.
    pub db_size: u64,
}

/// Message from the snapshot task: a block, or the end of the snapshot.
type SnapshotMsg = Result<Option<Bytes>, RestoreError>;
type SegmentMsg = Result<FetchedSegment, RestoreError>;
type RawMsg = Result<RawSegment, RestoreError>;

/// Executes `plan` into `output` (which must not exist; checked again at the final move).
pub async fn execute(
    client: &ReplicaClient,
    plan: &RestorePlan,
    output: &Path,
    opts: &ExecOptions,
) -> Result<RestoreSummary, RestoreError> {
    let (guard, file) = TempOutput::create(output)?;
    let tmp = guard.tmp_path().to_path_buf();
    let progress = Progress::new(plan.download_size(), opts.progress);
    let clear_bar = FinishOnDrop(progress.clone());
    info!(generation = %plan.generation, index = plan.snapshot.index, path = %tmp.display(), "restoring snapshot");
    let written = download_and_apply(client, plan, output, &tmp, file, opts, &progress).await?;
    let (frames, db_size) = (written.frames, written.size);

    release_free_memory();
    progress.set_phase("verifying");
    let check = opts.integrity_check;
    let sync_path = tmp.clone();
    let synced = join(tokio::task::spawn_blocking(move || {
        written.sync(&sync_path)
    }));
    let verified = join(tokio::task::spawn_blocking(move || verify(&tmp, check)));
    let (synced, verified) = tokio::join!(synced, verified);
    synced?;
    verified?;
    drop(clear_bar);

    if plan.snapshot_only {
        info!("snapshot only, finalizing database");
    } else {
        info!("renaming database from temporary location");
    }
    join(tokio::task::spawn_blocking(move || guard.commit())).await?;
    Ok(RestoreSummary {
        generation: plan.generation.clone(),
        snapshot_index: plan.snapshot.index,
        max_index: plan.max_index(),
        frames,
        db_size,
    })
}

/// Hands freed buffers back to the system between phases (snapshot → WAL → check), so the peak
/// resident memory is the largest phase's rather than their sum (glibc keeps freed memory in
/// per-thread arenas, and the next phase allocates on other threads).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds unused.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Starts the download tasks and the disk thread; returns once every byte is written (not yet
/// fsynced). Download tasks are aborted when this returns.
async fn download_and_apply(
    client: &ReplicaClient,
    plan: &RestorePlan,
    output: &Path,
    tmp: &Path,
    file: File,
    opts: &ExecOptions,
    progress: &Progress,
) -> Result<Written, RestoreError> {
    let (snap_tx, snap_rx) = mpsc::channel(SNAPSHOT_QUEUE);
    let (raw_tx, raw_rx) = mpsc::channel(1);
    let (seg_tx, seg_rx) = mpsc::channel(1);
    let key = snapshot_key(client, &plan.generation, plan.snapshot.index);
    let pool = BlockPool::new(POOLED_BLOCKS);
    let snap_task = tokio::spawn(send_snapshot(
        client.clone(),
        plan.generation.clone(),
        plan.snapshot.index,
        key.clone(),
        progress.clone(),
        pool.clone(),
        snap_tx,
    ));
    let segments: Vec<SegmentInfo> = plan.wal.iter().flat_map(|p| p.segments.clone()).collect();
    let seg_task = tokio::spawn(send_segments(
        client.clone(),
        segments,
        output.to_path_buf(),
        opts.parallelism.max(1),
        progress.clone(),
        raw_tx,
    ));
    let decode_out = output.to_path_buf();
    let decoder =
        tokio::task::spawn_blocking(move || decode_segments(&decode_out, &pool, raw_rx, seg_tx));
    let (disk_plan, disk_tmp) = (plan.clone(), tmp.to_path_buf());
    let span = tracing::Span::current();
    let disk = tokio::task::spawn_blocking(move || {
        let _in_span = span.enter();
        write_database(file, &disk_tmp, &disk_plan, &key, snap_rx, seg_rx)
    });
    let written = join(disk).await;
    snap_task.abort();
    seg_task.abort();
    // Ends within one segment once its channels are closed; its errors already reached `disk`.
    let _ = decoder.await;
    written
}

async fn send_snapshot(
    client: ReplicaClient,
    generation: String,
    index: u32,
    key: String,
    progress: Progress,
    pool: BlockPool,
    tx: Sender<SnapshotMsg>,
) {
    let raw = match client.open_snapshot(&generation, index).await {
        Ok(raw) => raw,
        Err(e) => {
            let _ = tx
                .send(Err(RestoreError::Read {
                    key,
                    source: Box::new(e),
                }))
                .await;
            return;
        }
    };
    let mut blocks = std::pin::pin!(decompressed(raw, key, progress, pool));
    while let Some(block) = blocks.next().await {
        let failed = block.is_err();
        if tx.send(block.map(Some)).await.is_err() || failed {
            return; // the disk thread stopped, or it now has the error
        }
    }
    let _ = tx.send(Ok(None)).await;
}

async fn send_segments(
    client: ReplicaClient,
    segments: Vec<SegmentInfo>,
    output: PathBuf,
    parallelism: usize,
    progress: Progress,
    tx: Sender<RawMsg>,
) {
    let mut fetched = futures::stream::iter(segments)
        .map(|info| {
            let task = fetch_segment(client.clone(), info, output.clone(), progress.clone());
            AbortOnDrop(tokio::spawn(task))
        })
        .buffered(parallelism);
    while let Some(raw) = fetched.next().await {
        let failed = raw.is_err();
        if tx.send(raw).await.is_err() || failed {
            return;
        }
    }
}

/// The decode thread: decompresses downloaded segments one at a time, in order. One thread
/// (rather than a task per segment on the blocking pool) keeps its buffers in one allocator
/// arena, where each segment reuses the memory the previous one freed.
fn decode_segments(
    output: &Path,
    pool: &BlockPool,
    mut rx: Receiver<RawMsg>,
    tx: Sender<SegmentMsg>,
) {
    while let Some(raw) = rx.blocking_recv() {
        let seg = raw.and_then(|raw| decode_segment(raw, output, pool));
        let failed = seg.is_err();
        if tx.blocking_send(seg).is_err() || failed {
            return;
        }
    }
}

/// The complete (written, not yet durable) temporary database.
struct Written {
    file: File,
    flusher: Flusher,
    frames: u64,
    size: u64,
}

impl Written {
    /// Waits for the early syncs, then fsyncs the file.
    fn sync(self, path: &Path) -> Result<(), RestoreError> {
        self.flusher
            .finish()
            .map_err(|e| RestoreError::io("sync", path, e))?;
        self.file
            .sync_all()
            .map_err(|e| RestoreError::io("fsync", path, e))
    }
}

/// The disk thread: snapshot, then every index in order. The caller fsyncs.
fn write_database(
    file: File,
    path: &Path,
    plan: &RestorePlan,
    snapshot_key: &str,
    mut snap_rx: Receiver<SnapshotMsg>,
    mut seg_rx: Receiver<SegmentMsg>,
) -> Result<Written, RestoreError> {
    let mut flusher = Flusher::start(&file).map_err(|e| RestoreError::io("sync", path, e))?;
    let (frames, size) = write_all(
        &file,
        path,
        plan,
        snapshot_key,
        &mut snap_rx,
        &mut seg_rx,
        &mut flusher,
    )?;
    Ok(Written {
        file,
        flusher,
        frames,
        size,
    })
}

/// Writes the snapshot and every index; returns (frames, file size).
fn write_all(
    file: &File,
    path: &Path,
    plan: &RestorePlan,
    snapshot_key: &str,
    snap_rx: &mut Receiver<SnapshotMsg>,
    seg_rx: &mut Receiver<SegmentMsg>,
    flusher: &mut Flusher,
) -> Result<(u64, u64), RestoreError> {
    let mut sink = SnapshotSink::new(file, path, snapshot_key);
    loop {
        match snap_rx.blocking_recv() {
            Some(Ok(Some(block))) => {
                sink.write(&block)?;
                flusher.wrote(block.len() as u64);
            }
            Some(Ok(None)) => break,
            Some(Err(e)) => return Err(e),
            None => return Err(stopped(snapshot_key)),
        }
    }
    // The snapshot's own index replays from offset 0 (plans are contiguous from it).
    let index_replayed = plan
        .wal
        .first()
        .is_some_and(|w| w.index == plan.snapshot.index && !w.segments.is_empty());
    let db = sink.finish(index_replayed)?;
    let mut torn = db.torn;
    release_free_memory(); // the snapshot's blocks: the WAL phase does not reuse them
    let mut page_size = db.page_size;
    let mut frames = 0;
    if let (Some(first), Some(last)) = (plan.wal.first(), plan.wal.last()) {
        info!(generation = %plan.generation, index_min = first.index, index_max = last.index, "restoring wal files");
    }
    for index in &plan.wal {
        let started = Instant::now();
        let mut applier = IndexApplier::new(file, path, &plan.generation, index.index, page_size);
        if let Some(t) = torn.take() {
            applier.must_repair(t);
        }
        for _ in &index.segments {
            let seg = match seg_rx.blocking_recv() {
                Some(seg) => seg?,
                None => return Err(stopped("wal segments")),
            };
            applier.begin_segment(&seg.key, seg.info.offset)?;
            seg.body.for_each(&seg.key, |bytes| {
                flusher.wrote(bytes.len() as u64);
                applier.feed(bytes)
            })?;
        }
        let summary = applier.finish()?;
        page_size = Some(summary.page_size);
        frames += summary.frames;
        info!(generation = %plan.generation, index = index.index, elapsed = ?started.elapsed(), "applied wal");
    }
    let size = file
        .metadata()
        .map_err(|e| RestoreError::io("stat", path, e))?
        .len();
    Ok((frames, size))
}

fn stopped(what: &str) -> RestoreError {
    RestoreError::Task(format!("download of {what} stopped unexpectedly"))
}
