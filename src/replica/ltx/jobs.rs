//! Compaction (L(k-1) → Lk), L9 snapshots and retention of an LTX replica (spec §4), each a
//! storage round built on the pure plans of [`super::plan`].
//!
//! What must stay true: a compaction's inputs are downloaded and merged locally and the output
//! stored before anything is deleted (inputs are only deleted later by retention, and only once
//! a higher level or snapshot holds them); a snapshot holds the database exactly at the TXID it
//! is named after (an L0 up to the snapshot guard's position is stored first); retention follows
//! [`plan::snapshot_retention`] and [`plan::l0_retention`] and does nothing when
//! `retention.enabled` is false; `verify-compaction` re-lists the level after each compaction and
//! only warns and counts; v0.3 generations left from a move to LTX go only by
//! [`plan::retired_v3_generations`] (older than `snapshot.retention`, an L9 snapshot kept).

use std::path::PathBuf;
use std::time::SystemTime;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use super::LtxWriteError;
use super::plan::{self, compaction_inputs, merged_timestamp};
use super::stage;
use super::sync::{join_error, next_timestamp, plan_error};
use crate::replica::{Replica, ReplicaError};
use crate::storage::{LtxFileInfo, SNAPSHOT_LEVEL, Timestamps};

impl Replica {
    /// Merges the files of `level - 1` not yet in `level` into one file at `level`. Returns the
    /// stored file, `None` when there was nothing to compact.
    pub async fn ltx_compact(&self, level: u8) -> Result<Option<LtxFileInfo>, ReplicaError> {
        let ltx = self.ltx()?;
        self.ensure_owner(false).await?;
        let _one = ltx.jobs.lock().await;
        if crate::rt::lock(&ltx.known).compacted(level) {
            return Ok(None);
        }
        let lower = self
            .client
            .ltx_files(level - 1, Timestamps::Metadata)
            .await?;
        let upper = self.client.ltx_files(level, Timestamps::Listing).await?;
        let upper_max = upper.iter().map(|f| f.max_txid).max().unwrap_or(0);
        {
            let mut known = crate::rt::lock(&ltx.known);
            known.level_max[usize::from(level)] = Some(upper_max);
            let lower_max = lower.iter().map(|f| f.max_txid).max().unwrap_or(0);
            known.saw(level - 1, lower_max);
        }
        let Some(inputs) = compaction_inputs(&lower, upper_max).map_err(|e| plan_error(&e))? else {
            return Ok(None);
        };
        let (min, max) = (inputs[0].min_txid, inputs[inputs.len() - 1].max_txid);
        let ts = merged_timestamp(&inputs).timestamp_millis();
        let paths = self.ltx_download(&inputs).await?;
        let out = self.staging_path(level, (min, max));
        let merged = {
            let (out, paths) = (out.clone(), paths.clone());
            crate::rt::spawn_blocking(move || stage::stage_merge(&out, (min, max), ts, &paths))
                .await
                .map_err(join_error)
        };
        for p in &paths {
            let _ = tokio::fs::remove_file(p).await;
        }
        let (header, size) = merged??;
        let info = self.ltx_upload(level, &header, &out, size).await?;
        info!(db = %self.db_label, replica = %self.name(), level, file = %info.file_name(), inputs = inputs.len(), "ltx compaction");
        if ltx.settings.verify_compaction {
            self.ltx_verify_level(level).await?;
        }
        Ok(Some(info))
    }

    /// `verify-compaction`: lists `level` again and checks its files follow each other
    /// ([`plan::verify_level`]); a finding is a warning and a count, as in v0.5.17, not an error.
    async fn ltx_verify_level(&self, level: u8) -> Result<(), ReplicaError> {
        let files = self.client.ltx_files(level, Timestamps::Listing).await?;
        let snaps = self
            .client
            .ltx_files(SNAPSHOT_LEVEL, Timestamps::Listing)
            .await?;
        let floor = snaps.iter().map(|s| s.max_txid).min();
        if let Err(finding) = plan::verify_level(&files, floor) {
            warn!(db = %self.db_label, replica = %self.name(), level, error = %finding, "post-compaction verification failed");
            self.update_status(|s| s.compaction_verify_errors += 1);
        }
        Ok(())
    }

    /// Downloads `files` into staging files (in order).
    async fn ltx_download(&self, files: &[LtxFileInfo]) -> Result<Vec<PathBuf>, ReplicaError> {
        let dir = self.ltx()?.staging.clone();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| download_error(&dir, e))?;
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let path = dir.join(format!("in-{}-{}", f.level, f.file_name()));
            let result = self.ltx_download_one(f, &path).await;
            out.push(path);
            if let Err(e) = result {
                for p in &out {
                    let _ = tokio::fs::remove_file(p).await;
                }
                return Err(e);
            }
        }
        Ok(out)
    }

    async fn ltx_download_one(
        &self,
        f: &LtxFileInfo,
        path: &std::path::Path,
    ) -> Result<(), ReplicaError> {
        let mut stream = self.client.open_ltx(f).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| download_error(path, e))?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?)
                .await
                .map_err(|e| download_error(path, e))?;
        }
        file.flush().await.map_err(|e| download_error(path, e))
    }

    /// Takes an L9 snapshot `1-<TXID>` of the database now (first storing the L0 that brings the
    /// replica to the snapshot's position). `None` when the newest snapshot already covers the
    /// current TXID.
    pub async fn ltx_snapshot(&self) -> Result<Option<LtxFileInfo>, ReplicaError> {
        let ltx = self.ltx()?;
        self.ensure_owner(false).await?;
        let _one = self.snapshot_lock.lock().await;
        let _permit = match &self.snapshot_permits {
            Some(p) => Some(p.acquire().await.map_err(|_| {
                ReplicaError::SnapshotFile(std::io::Error::other("snapshot limiter closed"))
            })?),
            None => None,
        };
        let cursor = ltx.cursor.lock().await;
        // Nothing committed since the newest snapshot: skip without taking the snapshot guard
        // (its checkpoint would itself add a TXID, so an idle database would never be skipped).
        let known = crate::rt::lock(&ltx.known).level_max[usize::from(SNAPSHOT_LEVEL)];
        let newest_snapshot = match known {
            Some(m) => Some(m).filter(|&m| m > 0),
            None => {
                let listed = self
                    .client
                    .ltx_files(SNAPSHOT_LEVEL, Timestamps::Listing)
                    .await?
                    .iter()
                    .map(|s| s.max_txid)
                    .max();
                crate::rt::lock(&ltx.known).saw(SNAPSHOT_LEVEL, listed.unwrap_or(0));
                listed
            }
        };
        let local = self.db_state.borrow().pos.clone();
        if let Some(cur) = cursor.as_ref()
            && local.is_some()
            && cur.pos == local
            && newest_snapshot.is_some_and(|n| n >= cur.txid)
        {
            return Ok(None);
        }
        // The check reads the whole database: syncs go on meanwhile (the cursor is free).
        drop(cursor);
        self.check_source().await?;
        let mut cursor = ltx.cursor.lock().await;
        let guard = self.db.begin_snapshot().await?;
        let mut cur = match cursor.take() {
            Some(c) => c,
            None => self.ltx_recover(&guard.pos).await?,
        };
        let advanced = self.ltx_advance(&mut cur, &guard.pos, Some(&guard)).await;
        let txid = cur.txid;
        *cursor = advanced.is_ok().then_some(cur);
        advanced?;
        if newest_snapshot.is_some_and(|n| n >= txid) {
            return Ok(None);
        }
        let ts = next_timestamp(0);
        let (header, size) = self
            .ltx_stage_image(&guard, (1, txid), ts, SNAPSHOT_LEVEL)
            .await?;
        let pos = guard.pos.clone();
        drop(guard);
        drop(cursor);
        let out = self.staging_path(SNAPSHOT_LEVEL, (1, txid));
        let info = self.ltx_upload(SNAPSHOT_LEVEL, &header, &out, size).await?;
        info!(db = %self.db_label, replica = %self.name(), file = %info.file_name(), size, "ltx snapshot written");
        // The shadow position the snapshot was read at (status shows shadow positions).
        self.update_status(|s| {
            s.latest_snapshot = Some(crate::replica::SnapshotMark {
                generation: pos.generation.clone(),
                index: pos.index,
                at: SystemTime::now(),
            })
        });
        Ok(Some(info))
    }

    /// Snapshot retention (§4.4): old snapshots, then compaction-level files below the floor.
    /// Returns how many files were deleted.
    pub async fn ltx_retain_snapshots(&self) -> Result<usize, ReplicaError> {
        let ltx = self.ltx()?;
        if !ltx.settings.retention_enabled {
            return Ok(0);
        }
        self.ensure_owner(false).await?;
        let _one = ltx.jobs.lock().await;
        {
            let known = crate::rt::lock(&ltx.known);
            let newest = known.level_max[usize::from(SNAPSHOT_LEVEL)];
            if let Some((at, until)) = known.snapshots_quiet
                && Some(at) == newest
                && until.is_none_or(|u| SystemTime::now() < u)
            {
                return Ok(0);
            }
        }
        let snaps = self
            .client
            .ltx_files(SNAPSHOT_LEVEL, Timestamps::Metadata)
            .await?;
        let mut levels = Vec::new();
        for (level, _) in ltx.levels() {
            levels.push(self.client.ltx_files(level, Timestamps::Listing).await?);
        }
        let doomed = plan::snapshot_retention(
            &snaps,
            &levels,
            ltx.settings.snapshot_retention,
            SystemTime::now(),
        );
        let mut deleted = self.ltx_delete(&doomed).await?;
        let has_snapshot = snaps.iter().any(|s| !doomed.contains(s));
        deleted += self.ltx_retire_v3(has_snapshot).await?;
        // Until another snapshot is written, nothing can go before the oldest kept snapshot
        // other than the newest ages out (the floor only moves when a snapshot goes).
        let newest = snaps.iter().map(|f| f.max_txid).max();
        let until = snaps
            .iter()
            .filter(|f| Some(f.max_txid) != newest && !doomed.contains(f))
            .map(|f| SystemTime::from(f.created_at) + ltx.settings.snapshot_retention)
            .min();
        let mut known = crate::rt::lock(&ltx.known);
        known.saw(SNAPSHOT_LEVEL, newest.unwrap_or(0));
        known.snapshots_quiet = newest.map(|n| (n, until));
        Ok(deleted)
    }

    /// After a move from the v0.3 layout: deletes the v0.3 generations whose newest object is
    /// older than `snapshot.retention` ([`plan::retired_v3_generations`]); Litestream v0.5 leaves
    /// them forever. Lists `generations/` only until it is found empty.
    async fn ltx_retire_v3(&self, has_snapshot: bool) -> Result<usize, ReplicaError> {
        let ltx = self.ltx()?;
        if crate::rt::lock(&ltx.known).v3_gone {
            return Ok(0);
        }
        let generations = self.client.generations().await?;
        let mut newest = Vec::with_capacity(generations.len());
        for g in generations {
            let snaps = self.client.snapshots(&g).await?;
            let segments = self.client.wal_segments(&g).await?;
            let at = snaps
                .iter()
                .map(|s| s.created_at)
                .chain(segments.iter().map(|s| s.created_at))
                .max();
            newest.push((g, at));
        }
        let doomed = plan::retired_v3_generations(
            &newest,
            has_snapshot,
            ltx.settings.snapshot_retention,
            SystemTime::now(),
        );
        for g in &doomed {
            self.client.delete_generation(g).await?;
            self.update_status(|s| s.retention_deletions += 1);
            info!(db = %self.db_label, replica = %self.name(), generation = %g, "v0.3 generation deleted by ltx retention");
        }
        crate::rt::lock(&ltx.known).v3_gone = doomed.len() == newest.len();
        Ok(doomed.len())
    }

    /// L0 retention (§4.4): L0 files already in L1 and older than `l0-retention`.
    pub async fn ltx_retain_l0(&self) -> Result<usize, ReplicaError> {
        let ltx = self.ltx()?;
        let settings = &ltx.settings;
        if !settings.retention_enabled
            || settings.levels.is_empty()
            || settings.l0_retention.is_zero()
        {
            return Ok(0);
        }
        self.ensure_owner(false).await?;
        let _one = ltx.jobs.lock().await;
        {
            let known = crate::rt::lock(&ltx.known);
            if known.l0_settled_at.is_some() && known.l0_settled_at == known.level_max[1] {
                return Ok(0);
            }
        }
        let l0 = self.client.ltx_files(0, Timestamps::Metadata).await?;
        let l1 = self.client.ltx_files(1, Timestamps::Listing).await?;
        let l1_max = l1.iter().map(|f| f.max_txid).max();
        let doomed = plan::l0_retention(&l0, l1_max, settings.l0_retention, SystemTime::now());
        let deleted = self.ltx_delete(&doomed).await?;
        // Settled when no compacted L0 but the newest remains: until L1 grows again, nothing
        // can become deletable, so later checks need no listing.
        let in_l1 = |f: &LtxFileInfo| l1_max.is_some_and(|m| f.max_txid <= m);
        let compacted = l0.iter().filter(|f| in_l1(f)).count();
        let newest_stays = usize::from(l0.last().is_some_and(in_l1));
        let mut known = crate::rt::lock(&ltx.known);
        known.saw(1, l1_max.unwrap_or(0));
        known.l0_settled_at = l1_max.filter(|_| deleted + newest_stays >= compacted);
        Ok(deleted)
    }

    async fn ltx_delete(&self, doomed: &[LtxFileInfo]) -> Result<usize, ReplicaError> {
        if doomed.is_empty() {
            return Ok(0);
        }
        self.client.delete_ltx(doomed).await?;
        info!(db = %self.db_label, replica = %self.name(), files = doomed.len(), "ltx retention deleted files");
        self.update_status(|s| s.retention_deletions += 1);
        Ok(doomed.len())
    }
}

fn download_error(path: &std::path::Path, source: std::io::Error) -> ReplicaError {
    ReplicaError::Ltx(LtxWriteError::Download {
        name: path.display().to_string(),
        source,
    })
}
