//! Running an LTX restore plan: download the planned files (the first streamed, the others
//! `parallelism` at a time; on the file backend every file is streamed in order, as reading ahead
//! only costs memory there), decode them in plan order on one blocking thread, write each page
//! at its place (latest file wins), truncate to the last file's commit, then the same fsync,
//! integrity check and atomic move as every restore ([`super::output`], [`super::verify`]).
//!
//! ```text
//! plan[0] (base) ──chunks (≤ FIRST_QUEUE)──────────────┐
//! plan[1..] ──downloads (≤ parallelism, memory ≤ SPILL │──▶ disk thread: decode + CRC, pwrite
//!             _THRESHOLD each, else spilled) ──────────┘     pages, coverage bitmap, truncate
//!   ──▶ fsync ∥ integrity check ──▶ link OUT, unlink OUT.tmp
//! ```
//!
//! What must stay true:
//! - The output equals v0.5.17's decode of the same plan: every page 1..commit from the newest
//!   file holding it, the lock page zero, page 1 verbatim, size commit × page size.
//! - Strict where v0.5.17 is strict, and where it is not: a file whose header TXIDs differ from
//!   its name, a page size that changes, a checksum-mode file (flags 0, refused by v0.5.17's
//!   restore too), a bad file checksum, a truncated file, or a page 1..commit in no planned file
//!   is an error naming the object; nothing appears at the output path.
//! - Memory is flat in database size: one page and one compressed page on the disk thread, a
//!   bitmap of one bit per page, [`STREAM_QUEUE`] chunks of the streamed files, and per parallel
//!   download at most [`SPILL_THRESHOLD`] bytes (more goes to an anonymous spill file beside the
//!   output).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use futures::StreamExt;
use tokio::sync::mpsc::{self, Receiver, Sender};
use tracing::info;

use crate::ltx::{self, Reader};
use crate::storage::{LtxFileInfo, ReplicaClient, StorageError};

use super::error::RestoreError;
use super::execute::ExecOptions;
use super::fetch::{Body, SPILL_THRESHOLD};
use super::flush::Flusher;
use super::output::{TempOutput, spill_file};
use super::progress::{FinishOnDrop, Progress};
use super::task::{AbortOnDrop, join};
use super::verify::verify;

/// Chunks of the streamed files queued ahead of the disk thread (1 MiB each on the file backend).
const STREAM_QUEUE: usize = 4;

/// What a finished LTX restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtxSummary {
    pub min_txid: u64,
    pub max_txid: u64,
    pub files: usize,
    pub db_size: u64,
}

/// A piece of a streamed file: its bytes, then `End` before the next file's.
enum Piece {
    Data(Bytes),
    End,
}

type ChunkMsg = Result<Piece, RestoreError>;
type FileMsg = Result<(String, Body), RestoreError>;

/// Restores `plan` (non-empty, in apply order) into `output`, which must not exist.
pub async fn execute_ltx(
    client: &ReplicaClient,
    plan: &[LtxFileInfo],
    output: &Path,
    opts: &ExecOptions,
) -> Result<LtxSummary, RestoreError> {
    let (Some(first), Some(last)) = (plan.first(), plan.last()) else {
        return Err(RestoreError::NoMatchingBackups);
    };
    let (guard, file) = TempOutput::create(output)?;
    let tmp = guard.tmp_path().to_path_buf();
    let total = plan.iter().map(|f| f.size).sum();
    let progress = Progress::new(total, opts.progress);
    let clear_bar = FinishOnDrop(progress.clone());
    info!(files = plan.len(), min_txid = %ltx::format_txid(first.min_txid), max_txid = %ltx::format_txid(last.max_txid), path = %tmp.display(), "restoring ltx files");
    let (file, flusher, db_size) =
        download_and_apply(client, plan, output, &tmp, file, opts, &progress).await?;

    progress.set_phase("verifying");
    let check = opts.integrity_check;
    let sync_path = tmp.clone();
    let synced = join(tokio::task::spawn_blocking(move || {
        flusher
            .finish()
            .and_then(|()| file.sync_all())
            .map_err(|e| RestoreError::io("fsync", &sync_path, e))
    }));
    let verified = join(tokio::task::spawn_blocking(move || verify(&tmp, check)));
    let (synced, verified) = tokio::join!(synced, verified);
    synced?;
    verified?;
    drop(clear_bar);
    info!("renaming database from temporary location");
    join(tokio::task::spawn_blocking(move || guard.commit())).await?;
    Ok(LtxSummary {
        min_txid: first.min_txid,
        max_txid: last.max_txid,
        files: plan.len(),
        db_size,
    })
}

async fn download_and_apply(
    client: &ReplicaClient,
    plan: &[LtxFileInfo],
    output: &Path,
    tmp: &Path,
    file: File,
    opts: &ExecOptions,
    progress: &Progress,
) -> Result<(File, Flusher, u64), RestoreError> {
    let streamed = if client.replica_type() == "file" {
        plan.len()
    } else {
        1
    };
    let (first_tx, first_rx) = mpsc::channel(STREAM_QUEUE);
    let (rest_tx, rest_rx) = mpsc::channel(1);
    let first_task = tokio::spawn(stream_files(
        client.clone(),
        plan[..streamed].to_vec(),
        progress.clone(),
        first_tx,
    ));
    let rest_task = tokio::spawn(send_rest(
        client.clone(),
        plan[streamed..].to_vec(),
        output.to_path_buf(),
        opts.parallelism.max(1),
        progress.clone(),
        rest_tx,
    ));
    let keys: Vec<String> = plan
        .iter()
        .map(|f| client.ltx_key(f.level, f.min_txid, f.max_txid))
        .collect();
    let (disk_plan, disk_tmp) = (plan.to_vec(), tmp.to_path_buf());
    let span = tracing::Span::current();
    let disk = tokio::task::spawn_blocking(move || {
        let _in_span = span.enter();
        let rx = Receivers {
            streamed,
            stream: first_rx,
            rest: rest_rx,
        };
        apply_all(file, &disk_tmp, &disk_plan, &keys, rx)
    });
    let done = join(disk).await;
    first_task.abort();
    rest_task.abort();
    done
}

/// Streams the stored bytes of `files`, one after the other, each followed by `End`.
async fn stream_files(
    client: ReplicaClient,
    files: Vec<LtxFileInfo>,
    progress: Progress,
    tx: Sender<ChunkMsg>,
) {
    for info in files {
        if !stream_one(&client, &info, &progress, &tx).await {
            return;
        }
    }
}

/// Streams one file; false if the disk thread stopped or the download failed (error sent).
async fn stream_one(
    client: &ReplicaClient,
    info: &LtxFileInfo,
    progress: &Progress,
    tx: &Sender<ChunkMsg>,
) -> bool {
    let key = client.ltx_key(info.level, info.min_txid, info.max_txid);
    let read_err = |e: StorageError| RestoreError::Read {
        key: key.clone(),
        source: Box::new(e),
    };
    let mut raw = match client.open_ltx(info).await {
        Ok(raw) => raw,
        Err(e) => {
            let _ = tx.send(Err(read_err(e))).await;
            return false;
        }
    };
    while let Some(chunk) = raw.next().await {
        let failed = chunk.is_err();
        if let Ok(c) = &chunk {
            progress.add(c.len() as u64);
        }
        if tx
            .send(chunk.map(Piece::Data).map_err(read_err))
            .await
            .is_err()
            || failed
        {
            return false;
        }
    }
    tx.send(Ok(Piece::End)).await.is_ok()
}

/// Downloads the other files, `parallelism` at a time, delivering them in plan order.
async fn send_rest(
    client: ReplicaClient,
    files: Vec<LtxFileInfo>,
    output: PathBuf,
    parallelism: usize,
    progress: Progress,
    tx: Sender<FileMsg>,
) {
    let mut fetched = futures::stream::iter(files)
        .map(|info| {
            let task = fetch_ltx(client.clone(), info, output.clone(), progress.clone());
            AbortOnDrop(tokio::spawn(task))
        })
        .buffered(parallelism);
    while let Some(res) = fetched.next().await {
        let failed = res.is_err();
        if tx.send(res).await.is_err() || failed {
            return;
        }
    }
}

/// Downloads one file: in memory up to [`SPILL_THRESHOLD`] bytes, then to a spill file.
async fn fetch_ltx(
    client: ReplicaClient,
    info: LtxFileInfo,
    out: PathBuf,
    progress: Progress,
) -> Result<(String, Body), RestoreError> {
    let key = client.ltx_key(info.level, info.min_txid, info.max_txid);
    let read_err = |e: StorageError| RestoreError::Read {
        key: key.clone(),
        source: Box::new(e),
    };
    let mut raw = client.open_ltx(&info).await.map_err(read_err)?;
    let mut parts: Vec<Bytes> = Vec::new();
    let mut held = 0usize;
    let mut spill: Option<(File, u64)> = None;
    while let Some(chunk) = raw.next().await {
        let chunk = chunk.map_err(read_err)?;
        progress.add(chunk.len() as u64);
        if spill.is_none() && held + chunk.len() <= SPILL_THRESHOLD {
            held += chunk.len();
            parts.push(chunk);
            continue;
        }
        let (f, len) = match spill.take() {
            Some(s) => s,
            None => {
                let f = spill_file(&out, u32::from(info.level), info.min_txid)?;
                parts.push(chunk.clone());
                let all = std::mem::take(&mut parts);
                let f = write_spill(f, all, 0, &key).await?;
                spill = Some((f, held as u64 + chunk.len() as u64));
                continue;
            }
        };
        let n = chunk.len() as u64;
        let f = write_spill(f, vec![chunk], len, &key).await?;
        spill = Some((f, len + n));
    }
    let body = match spill {
        Some((file, len)) => Body::Spilled { file, len },
        None => Body::Memory(parts),
    };
    Ok((key, body))
}

/// Appends `parts` to the spill file at `at` on the blocking pool.
async fn write_spill(
    file: File,
    parts: Vec<Bytes>,
    at: u64,
    key: &str,
) -> Result<File, RestoreError> {
    let key = key.to_string();
    join(tokio::task::spawn_blocking(move || {
        let mut at = at;
        for p in &parts {
            file.write_all_at(p, at)
                .map_err(|e| RestoreError::io("write spill file for", &key, e))?;
            at += p.len() as u64;
        }
        Ok(file)
    }))
    .await
}

/// Where the disk thread gets the files: the first `streamed` from `stream`, the rest as
/// downloaded bodies from `rest`.
struct Receivers {
    streamed: usize,
    stream: Receiver<ChunkMsg>,
    rest: Receiver<FileMsg>,
}

/// The disk thread: every file in order, then the final size and coverage check.
fn apply_all(
    file: File,
    path: &Path,
    plan: &[LtxFileInfo],
    keys: &[String],
    mut rx: Receivers,
) -> Result<(File, Flusher, u64), RestoreError> {
    let mut flusher = Flusher::start(&file).map_err(|e| RestoreError::io("sync", path, e))?;
    let mut db = PageWriter::new(&file, path);
    for (i, (info, key)) in plan.iter().zip(keys).enumerate() {
        if i < rx.streamed {
            let mut reader = PieceReader::new(&mut rx.stream);
            let res = db.apply(&mut reader, info, key, &mut flusher);
            if let Some(e) = reader.failed.take() {
                return Err(e);
            }
            res?;
            continue;
        }
        let (_, body) = match rx.rest.blocking_recv() {
            Some(msg) => msg?,
            None => return Err(stopped(key)),
        };
        let mut reader = BodyReader::new(&body, key);
        db.apply(&mut reader, info, key, &mut flusher)?;
    }
    let size = db.finish(&keys[0])?;
    Ok((file, flusher, size))
}

fn stopped(what: &str) -> RestoreError {
    RestoreError::Task(format!("download of {what} stopped unexpectedly"))
}

/// Writes decoded pages into the temporary database and tracks which pages were written.
struct PageWriter<'a> {
    file: &'a File,
    path: &'a Path,
    page_size: u32,
    commit: u32,
    written: Vec<u64>,
}

impl<'a> PageWriter<'a> {
    fn new(file: &'a File, path: &'a Path) -> Self {
        PageWriter {
            file,
            path,
            page_size: 0,
            commit: 0,
            written: Vec::new(),
        }
    }

    /// Decodes one whole file (pages, index, trailer, checksum) onto the database.
    fn apply(
        &mut self,
        r: impl Read,
        info: &LtxFileInfo,
        key: &str,
        flusher: &mut Flusher,
    ) -> Result<(), RestoreError> {
        let mut reader = Reader::new(r, key)?;
        self.check_header(reader.header(), info, key)?;
        let ps = u64::from(self.page_size);
        while let Some((pgno, page)) = reader.next_page()? {
            self.file
                .write_all_at(page, (u64::from(pgno) - 1) * ps)
                .map_err(|e| RestoreError::io("write", self.path, e))?;
            flusher.wrote(ps);
            self.mark(pgno);
        }
        let (header, _) = reader.finish()?;
        self.commit = header.commit;
        Ok(())
    }

    fn check_header(
        &mut self,
        h: &ltx::Header,
        info: &LtxFileInfo,
        key: &str,
    ) -> Result<(), RestoreError> {
        let bad = |detail: String| RestoreError::LtxFile {
            key: key.to_string(),
            detail,
        };
        if (h.min_txid, h.max_txid) != (info.min_txid, info.max_txid) {
            return Err(bad(format!(
                "header holds TXIDs {}-{}, not those of its name",
                ltx::format_txid(h.min_txid),
                ltx::format_txid(h.max_txid)
            )));
        }
        if !h.no_checksum() {
            return Err(bad(
                "checksum mode (flags 0) is not accepted; Litestream v0.5.17's restore refuses it too"
                    .to_string(),
            ));
        }
        if self.page_size != 0 && h.page_size != self.page_size {
            return Err(RestoreError::PageSize {
                key: key.to_string(),
                wal: h.page_size,
                db: self.page_size,
            });
        }
        self.page_size = h.page_size;
        Ok(())
    }

    fn mark(&mut self, pgno: u32) {
        let (word, bit) = ((pgno / 64) as usize, pgno % 64);
        if self.written.len() <= word {
            self.written.resize(word + 1, 0);
        }
        self.written[word] |= 1 << bit;
    }

    fn has(&self, pgno: u32) -> bool {
        let (word, bit) = ((pgno / 64) as usize, pgno % 64);
        self.written.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Truncates to the last commit and checks every page 1..commit (but the lock page) was
    /// written. Returns the database size.
    fn finish(&self, base_key: &str) -> Result<u64, RestoreError> {
        if self.commit == 0 {
            return Err(RestoreError::LtxFile {
                key: base_key.to_string(),
                detail: "the restored database would be empty (commit 0)".to_string(),
            });
        }
        let lock = ltx::lock_page(self.page_size);
        if let Some(missing) = (1..=self.commit).find(|&p| p != lock && !self.has(p)) {
            return Err(RestoreError::LtxMissingPage {
                pgno: missing,
                commit: self.commit,
                base: base_key.to_string(),
            });
        }
        let size = u64::from(self.commit) * u64::from(self.page_size);
        self.file
            .set_len(size)
            .map_err(|e| RestoreError::io("truncate", self.path, e))?;
        Ok(size)
    }
}

/// `Read` over one streamed file's pieces as they arrive (end of file at its `End`); a download
/// error is kept in `failed`.
struct PieceReader<'a> {
    rx: &'a mut Receiver<ChunkMsg>,
    cur: Bytes,
    ended: bool,
    failed: Option<RestoreError>,
}

impl<'a> PieceReader<'a> {
    fn new(rx: &'a mut Receiver<ChunkMsg>) -> Self {
        PieceReader {
            rx,
            cur: Bytes::new(),
            ended: false,
            failed: None,
        }
    }
}

impl Read for PieceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Piece::Data(chunk))) => self.cur = chunk,
                Some(Ok(Piece::End)) | None => self.ended = true,
                Some(Err(e)) => {
                    let msg = e.to_string();
                    self.failed = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// `Read` over a downloaded body (memory parts or a spill file).
struct BodyReader<'a> {
    body: &'a Body,
    part: usize,
    at: u64,
    key: &'a str,
}

impl<'a> BodyReader<'a> {
    fn new(body: &'a Body, key: &'a str) -> Self {
        BodyReader {
            body,
            part: 0,
            at: 0,
            key,
        }
    }
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.body {
            Body::Memory(parts) => {
                while let Some(p) = parts.get(self.part) {
                    let off = self.at as usize;
                    if off < p.len() {
                        let n = buf.len().min(p.len() - off);
                        buf[..n].copy_from_slice(&p[off..off + n]);
                        self.at += n as u64;
                        return Ok(n);
                    }
                    self.part += 1;
                    self.at = 0;
                }
                Ok(0)
            }
            Body::Spilled { file, len } => {
                let left = len.saturating_sub(self.at);
                let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                if n == 0 {
                    return Ok(0);
                }
                file.read_exact_at(&mut buf[..n], self.at).map_err(|e| {
                    io::Error::new(e.kind(), format!("read spill file for {}: {e}", self.key))
                })?;
                self.at += n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
#[path = "ltx_apply_tests.rs"]
mod tests;
