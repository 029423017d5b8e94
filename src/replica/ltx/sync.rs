//! L0 files (spec §3): one per sync, holding the pages the shadow WAL gained since the last
//! stored TXID, or a full image when continuity is lost; and recovery of the cursor from the
//! replica's own files.
//!
//! What must stay true: the cursor moves only after `put_ltx` succeeded; a full image is read
//! under the database's snapshot guard (no checkpoint by walstream while its pages are read);
//! the shadow files read are at or above the replica's reported floor, so they are not cleaned
//! away underneath.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use tracing::{debug, info};

use super::plan::{PagePlan, ShadowRange, shadow_ranges, wal_fields};
use super::stage::{self, StageError};
use super::{Cursor, LtxWriteError, LtxWriter};
use crate::db::{Pos, SnapshotGuard};
use crate::ltx::{FLAG_NO_CHECKSUM, Header};
use crate::replica::body::{Source, range_stream};
use crate::replica::{Replica, ReplicaError};
use crate::storage::{LtxFileInfo, SNAPSHOT_LEVEL, Timestamps};
use crate::wal::WAL_HEADER_SIZE;

impl From<StageError> for ReplicaError {
    fn from(e: StageError) -> Self {
        ReplicaError::Ltx(LtxWriteError::Stage(e))
    }
}

impl Replica {
    pub(in crate::replica) fn ltx(&self) -> Result<&LtxWriter, ReplicaError> {
        self.ltx
            .as_ref()
            .ok_or_else(|| ReplicaError::Ltx(LtxWriteError::Plan("not an LTX replica".into())))
    }

    /// One LTX sync: an L0 file for everything the db published since the last stored TXID.
    pub(in crate::replica) async fn ltx_sync(&self) -> Result<Option<Pos>, ReplicaError> {
        let ltx = self.ltx()?;
        let started = SystemTime::now();
        let mut guard = ltx.cursor.lock().await;
        // Read under the lock: a snapshot holding it may have moved the cursor past an older read.
        let Some(local) = self.db_state.borrow().pos.clone() else {
            return Ok(None);
        };
        let result = self.ltx_sync_locked(&mut guard, &local).await;
        match &result {
            Ok(()) => self.ltx_synced(guard.as_ref(), started),
            Err(_) => *guard = None,
        }
        result.map(|()| guard.as_ref().and_then(|c| c.pos.clone()))
    }

    async fn ltx_sync_locked(
        &self,
        cursor: &mut Option<Cursor>,
        local: &Pos,
    ) -> Result<(), ReplicaError> {
        let mut cur = match cursor.take() {
            Some(c) => c,
            None => self.ltx_recover(local).await?,
        };
        let result = self.ltx_advance(&mut cur, local, None).await;
        *cursor = Some(cur);
        result
    }

    /// Status and shadow floor after a successful round.
    pub(super) fn ltx_synced(&self, cur: Option<&Cursor>, started: SystemTime) {
        let pos = cur.and_then(|c| c.pos.clone());
        if let Some(p) = &pos {
            self.db.set_replica_floor(self.name(), p.index);
        }
        let caught_up = self.db_state.borrow().pos == pos;
        let txid = cur.map(|c| c.txid).filter(|&t| t > 0);
        self.update_status(|s| {
            s.position = pos;
            s.ltx_txid = txid;
            s.last_sync = Some(SystemTime::now());
            s.pending_since = (!caught_up).then_some(started);
        });
    }

    /// Stores the L0 that brings `cur` to `to`: a delta when the shadow files since `cur.pos`
    /// are all there, else a full image (read under `guard`, or a guard taken here; the image
    /// then ends where that guard stands, which may be past `to`).
    pub(super) async fn ltx_advance(
        &self,
        cur: &mut Cursor,
        to: &Pos,
        guard: Option<&SnapshotGuard>,
    ) -> Result<(), ReplicaError> {
        if cur.pos.as_ref() == Some(to) {
            return Ok(());
        }
        if let Some(from) = cur.pos.clone()
            && self.ltx_delta(cur, &from, to).await?
        {
            return Ok(());
        }
        match guard {
            Some(g) => self.ltx_full_image(cur, g).await,
            None => {
                // A full image reads the whole database: bounded like snapshots.
                let _permit = match &self.snapshot_permits {
                    Some(p) => Some(
                        p.acquire()
                            .await
                            .map_err(|_| plan_error("snapshot limiter closed"))?,
                    ),
                    None => None,
                };
                self.check_source().await?;
                let g = self.db.begin_snapshot().await?;
                self.ltx_full_image(cur, &g).await
            }
        }
    }

    /// The L0 of the shadow frames from `from` to `to`, prepared in one blocking call (ranges,
    /// frame scan, salts and encoding through one open of each shadow file) and stored. False
    /// when continuity is lost (a shadow file gone, another generation): a full image is needed.
    async fn ltx_delta(
        &self,
        cur: &mut Cursor,
        from: &Pos,
        to: &Pos,
    ) -> Result<bool, ReplicaError> {
        let page_size = self.db.page_size();
        let shadow = self.shadow_namer(&to.generation);
        let (txid, prev_ts) = (cur.txid + 1, cur.ts_ms);
        let out = self.staging_path(0, (txid, txid));
        let prepared = {
            let (from, to, out) = (from.clone(), to.clone(), out.clone());
            crate::rt::spawn_blocking(move || {
                prepare_delta(&from, &to, page_size, (txid, prev_ts), &out, &*shadow)
            })
            .await
            .map_err(join_error)??
        };
        let (header, body, consumed) = match prepared {
            Delta::Lost => return Ok(false),
            Delta::Empty => {
                // Only WAL headers, or `to` is behind the cursor: nothing to store.
                if cur.pos.as_ref().is_some_and(|p| pos_key(to) > pos_key(p)) {
                    cur.pos = Some(to.clone());
                }
                return Ok(true);
            }
            Delta::NoFrames => {
                cur.pos = Some(to.clone());
                return Ok(true);
            }
            Delta::Ready {
                header,
                body,
                consumed,
            } => (header, body, consumed),
        };
        match body {
            stage::Encoded::Memory(bytes) => {
                let bytes = bytes::Bytes::from(bytes);
                let size = bytes.len() as u64;
                let make_body = move || futures::stream::iter([Ok(bytes.clone())]).boxed();
                self.ltx_put(0, &header, make_body, size).await?;
            }
            stage::Encoded::File(size) => {
                self.ltx_upload(0, &header, &out, size).await?;
            }
        }
        self.update_status(|s| s.wal_bytes += consumed);
        *cur = Cursor {
            txid: header.max_txid,
            pos: Some(to.clone()),
            ts_ms: header.timestamp_ms,
        };
        Ok(true)
    }

    /// A full-image L0 at the guard's position.
    async fn ltx_full_image(
        &self,
        cur: &mut Cursor,
        guard: &SnapshotGuard,
    ) -> Result<(), ReplicaError> {
        let txid = cur.txid + 1;
        info!(db = %self.db_label, replica = %self.name(), txid = %crate::ltx::format_txid(txid), "write full-image l0");
        let (header, staged) = self
            .ltx_stage_image(guard, (txid, txid), next_timestamp(cur.ts_ms), 0)
            .await?;
        let out = self.staging_path(0, (txid, txid));
        self.ltx_upload(0, &header, &out, staged).await?;
        *cur = Cursor {
            txid,
            pos: Some(guard.pos.clone()),
            ts_ms: header.timestamp_ms,
        };
        Ok(())
    }

    /// Stages a full image of the database at `guard.pos` named `min-max` for `level`.
    pub(super) async fn ltx_stage_image(
        &self,
        guard: &SnapshotGuard,
        (min_txid, max_txid): (u64, u64),
        ts_ms: i64,
        level: u8,
    ) -> Result<(Header, u64), ReplicaError> {
        let page_size = self.db.page_size();
        let pos = guard.pos.clone();
        let shadow = self.shadow_namer(&pos.generation);
        let file = Arc::clone(&guard.file);
        let file_pages = (guard.size / u64::from(page_size)) as u32;
        let header_size = WAL_HEADER_SIZE as u64;
        let ranges = vec![ShadowRange {
            index: pos.index,
            start: header_size,
            end: pos.offset,
        }];
        let mut header = Header {
            flags: FLAG_NO_CHECKSUM,
            page_size,
            min_txid,
            max_txid,
            timestamp_ms: ts_ms,
            ..Header::default()
        };
        let out_dir = self.ltx()?.staging.clone();
        let (header, staged) = crate::rt::spawn_blocking(move || {
            let mut plan = PagePlan::default();
            stage::scan_frames(&mut plan, &ranges, page_size, &*shadow)?;
            let plan = match plan.commit {
                0 => PagePlan {
                    commit: file_pages,
                    ..plan
                },
                _ => plan,
            }
            .finish(page_size);
            header.commit = plan.commit;
            if level == 0 && pos.offset >= header_size {
                let salts = stage::shadow_salts(&shadow(pos.index))?;
                header.wal_offset = header_size as i64;
                header.wal_size = (pos.offset - header_size) as i64;
                (header.wal_salt1, header.wal_salt2) = salts;
            }
            let out = staging_file(&out_dir, level, (min_txid, max_txid));
            let size = stage::stage_image(&out, header, &plan, &*shadow, &file)?;
            Ok::<_, StageError>((header, size))
        })
        .await
        .map_err(join_error)??;
        Ok((header, staged))
    }

    /// Uploads a staged file to `level` (timestamp = the header's), then removes it.
    pub(super) async fn ltx_upload(
        &self,
        level: u8,
        header: &Header,
        staged: &std::path::Path,
        size: u64,
    ) -> Result<LtxFileInfo, ReplicaError> {
        let body = staged.to_path_buf();
        let make_body = move || range_stream(Source::Path(body.clone()), 0, size).boxed();
        let result = self.ltx_put(level, header, make_body, size).await;
        let _ = tokio::fs::remove_file(staged).await;
        result
    }

    /// Stores the LTX file `make_body` yields (`size` bytes) in `level`, timestamp = the
    /// header's.
    async fn ltx_put<F>(
        &self,
        level: u8,
        header: &Header,
        make_body: F,
        size: u64,
    ) -> Result<LtxFileInfo, ReplicaError>
    where
        F: Fn() -> futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
    {
        let info = self
            .client
            .put_ltx(
                level,
                header.min_txid,
                header.max_txid,
                header.timestamp_ms,
                make_body,
            )
            .await?;
        if let Ok(ltx) = self.ltx() {
            crate::rt::lock(&ltx.known).saw(level, info.max_txid);
        }
        debug!(db = %self.db_label, replica = %self.name(), level, file = %info.file_name(), size, "ltx file written");
        Ok(info)
    }

    /// Where a file of `level` named `min-max` is staged.
    pub(super) fn staging_path(&self, level: u8, range: (u64, u64)) -> PathBuf {
        let dir = self
            .ltx
            .as_ref()
            .map(|l| l.staging.clone())
            .unwrap_or_default();
        staging_file(&dir, level, range)
    }

    fn shadow_namer(&self, generation: &str) -> Arc<dyn Fn(u32) -> PathBuf + Send + Sync> {
        let db = Arc::clone(&self.db);
        let generation = generation.to_string();
        Arc::new(move |i| db.shadow_wal_path(&generation, i))
    }

    /// The cursor from the replica's files: the highest TXID over every level, and the shadow
    /// position it covers when the newest L0's WAL fields match a shadow file of `local`'s
    /// generation (else `None`: the next L0 is a full image). L0 files Litestream v0.5 left
    /// locally past the replica are uploaded first (`adopt`).
    pub(super) async fn ltx_recover(&self, local: &Pos) -> Result<Cursor, ReplicaError> {
        self.ltx_clear_staging().await?;
        let mut newest: Option<LtxFileInfo> = None;
        let mut newest_l0: Option<LtxFileInfo> = None;
        for level in 0..=SNAPSHOT_LEVEL {
            let files = self.client.ltx_files(level, Timestamps::Listing).await?;
            for f in files {
                if newest.as_ref().is_none_or(|n| f.max_txid > n.max_txid) {
                    newest = Some(f.clone());
                }
                if level == 0 && newest_l0.as_ref().is_none_or(|n| f.max_txid > n.max_txid) {
                    newest_l0 = Some(f);
                }
            }
        }
        // Litestream uploads missing L0 files from its local ones after the replica's newest L0
        // (an L9 snapshot, read from the database, may already be past it).
        let l0_max = newest_l0.as_ref().map_or(0, |f| f.max_txid);
        if let Some(last) = self.ltx_adopt_litestream_local(l0_max).await?.pop() {
            if newest.as_ref().is_none_or(|n| last.max_txid >= n.max_txid) {
                newest = Some(last.clone());
            }
            newest_l0 = Some(last);
        }
        let Some(newest) = newest else {
            return Ok(Cursor {
                txid: 0,
                pos: None,
                ts_ms: 0,
            });
        };
        let mut cur = Cursor {
            txid: newest.max_txid,
            pos: None,
            ts_ms: newest.created_at.timestamp_millis(),
        };
        if let Some(l0) = newest_l0.filter(|f| f.max_txid == newest.max_txid) {
            let header = self.ltx_read_header(&l0).await?;
            cur.ts_ms = cur.ts_ms.max(header.timestamp_ms);
            cur.pos = self.ltx_matching_shadow(&header, local).await;
        }
        info!(db = %self.db_label, replica = %self.name(), txid = %crate::ltx::format_txid(cur.txid), continuous = cur.pos.is_some(), "ltx replica position recovered");
        Ok(cur)
    }

    /// Removes staging files a crash or an abandoned job left behind. Called with the cursor
    /// held; takes the jobs lock, so no sync, snapshot, compaction or retention is staging.
    async fn ltx_clear_staging(&self) -> Result<(), ReplicaError> {
        let ltx = self.ltx()?;
        let _jobs = ltx.jobs.lock().await;
        match tokio::fs::remove_dir_all(&ltx.staging).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ReplicaError::SnapshotFile(e))
            }
            _ => Ok(()),
        }
    }

    /// The header of a stored LTX file (only its first bytes are read).
    async fn ltx_read_header(&self, info: &LtxFileInfo) -> Result<Header, ReplicaError> {
        let mut stream = self.client.open_ltx(info).await?;
        let mut buf = Vec::with_capacity(crate::ltx::HEADER_SIZE);
        while buf.len() < crate::ltx::HEADER_SIZE {
            match stream.next().await {
                Some(chunk) => buf.extend_from_slice(&chunk?),
                None => break,
            }
        }
        let mut bytes = [0u8; crate::ltx::HEADER_SIZE];
        let head = buf
            .get(..crate::ltx::HEADER_SIZE)
            .ok_or_else(|| plan_error(&format!("{}: shorter than a header", info.file_name())))?;
        bytes.copy_from_slice(head);
        Header::parse(&bytes).map_err(|k| plan_error(&format!("{}: {k}", info.file_name())))
    }

    /// The shadow position where `header` (an L0) ended, if a shadow file of `local`'s generation
    /// at or below `local.index` has its salts and is long enough.
    async fn ltx_matching_shadow(&self, header: &Header, local: &Pos) -> Option<Pos> {
        let end = u64::try_from(header.wal_offset + header.wal_size).ok()?;
        if header.wal_offset < WAL_HEADER_SIZE as i64 {
            return None;
        }
        let salts = (header.wal_salt1, header.wal_salt2);
        let shadow = self.shadow_namer(&local.generation);
        let local = local.clone();
        crate::rt::spawn_blocking(move || {
            for index in (0..=local.index).rev() {
                let path = shadow(index);
                let Ok(meta) = std::fs::metadata(&path) else {
                    return None;
                };
                let len = if index == local.index {
                    local.offset
                } else {
                    meta.len()
                };
                if stage::shadow_salts(&path).ok() == Some(salts) && end <= len {
                    return Some(Pos {
                        generation: local.generation.clone(),
                        index,
                        offset: end,
                    });
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

fn pos_key(p: &Pos) -> (u32, u64) {
    (p.index, p.offset)
}

/// `<staging>/<level>-<MIN>-<MAX>.ltx`.
fn staging_file(dir: &std::path::Path, level: u8, (min, max): (u64, u64)) -> PathBuf {
    dir.join(format!("{level}-{}", crate::ltx::file_name(min, max)))
}

/// Now in ms, but never before `prev` (timestamps are monotonic in TXID order).
pub(super) fn next_timestamp(prev: i64) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    now.max(prev)
}

pub(super) fn plan_error(msg: &str) -> ReplicaError {
    ReplicaError::Ltx(LtxWriteError::Plan(msg.to_string()))
}

pub(super) fn join_error(e: crate::rt::BlockingCancelled) -> ReplicaError {
    ReplicaError::SnapshotFile(std::io::Error::other(e))
}

/// What one sync's shadow frames make: nothing (no range past the cursor, or ranges without
/// frames), an L0 ready to store, or lost continuity.
enum Delta {
    Lost,
    Empty,
    NoFrames,
    Ready {
        header: Header,
        body: stage::Encoded,
        /// Shadow bytes the L0 covers.
        consumed: u64,
    },
}

/// The L0 `txid` (timestamp not before `prev_ts`) of the shadow frames from `from` to `to`,
/// encoded in memory or staged at `out` (blocking).
fn prepare_delta(
    from: &Pos,
    to: &Pos,
    page_size: u32,
    (txid, prev_ts): (u64, i64),
    out: &std::path::Path,
    shadow: &dyn Fn(u32) -> PathBuf,
) -> Result<Delta, ReplicaError> {
    let ranges = shadow_ranges(from, to, |i| {
        std::fs::metadata(shadow(i)).ok().map(|m| m.len())
    });
    let Some(ranges) = ranges else {
        return Ok(Delta::Lost);
    };
    if ranges.is_empty() {
        return Ok(Delta::Empty);
    }
    let mut files = stage::ShadowFiles::new(shadow);
    let mut plan = PagePlan::default();
    stage::scan_frames_in(&mut plan, &ranges, page_size, &mut files)?;
    let plan = plan.finish(page_size);
    if plan.pages.is_empty() && plan.commit == 0 {
        return Ok(Delta::NoFrames);
    }
    if plan.commit == 0 {
        return Err(plan_error("shadow WAL range without a commit frame"));
    }
    let salts = files.salts(to.index)?;
    let (wal_offset, wal_size) = wal_fields(&ranges, to);
    let header = Header {
        flags: FLAG_NO_CHECKSUM,
        page_size,
        commit: plan.commit,
        min_txid: txid,
        max_txid: txid,
        timestamp_ms: next_timestamp(prev_ts),
        wal_offset,
        wal_size,
        wal_salt1: salts.0,
        wal_salt2: salts.1,
        ..Header::default()
    };
    let body = stage::encode_delta(out, header, &plan, &mut files)?;
    let consumed = ranges.iter().map(|r| r.end - r.start).sum();
    Ok(Delta::Ready {
        header,
        body,
        consumed,
    })
}
