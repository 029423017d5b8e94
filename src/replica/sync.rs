//! One upload round (spec §4.2) and position recovery from storage (spec §4.3).
//!
//! What must stay true: each segment covers exactly `[position, end)` of one shadow WAL index and
//! is named after its start; the position advances only after `put_segment` succeeded; any error
//! clears the position so the next round recomputes it from what storage really holds.

use std::time::{Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use tracing::{debug, info, warn};

use super::body::{Source, range_stream};
use super::plan::{IndexOffset, Step, StepError, next_step};
use crate::db::check::{SourceCheck, quick_check};

/// Longest `PRAGMA quick_check` before a snapshot or full image (about 1 GiB of a healthy
/// database takes a few seconds; README "Damage at the source").
pub const SOURCE_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
use super::{Replica, ReplicaError, SnapshotMark};
use crate::db::Pos;
use crate::storage::layout::format_position;

impl Replica {
    /// Uploads everything the db has published that the replica lacks. Takes the first snapshot
    /// of a generation when storage has none. An LTX replica stores one L0 file instead. Returns the position reached (`None`: the db has no
    /// generation yet).
    pub async fn sync(&self) -> Result<Option<Pos>, ReplicaError> {
        if self.db_state.borrow().pos.is_none() {
            return Ok(None);
        }
        // Something to write: this process must own the replica path (a refused one asks again).
        self.ensure_owner(true).await?;
        if self.ltx.is_some() {
            return self.ltx_sync().await;
        }
        let local = self.db_state.borrow().pos.clone();
        let Some(local) = local else {
            return Ok(None);
        };
        let started = SystemTime::now();
        let mut guard = self.pos.lock().await;
        let result = self.sync_locked(&mut guard, &local).await;
        match &result {
            Ok(()) => {
                if let Some(p) = guard.as_ref() {
                    self.db.set_replica_floor(self.name(), p.index);
                }
                let pos = guard.clone();
                let caught_up = self.db_state.borrow().pos == pos;
                self.update_status(|s| {
                    s.position = pos;
                    s.last_sync = Some(SystemTime::now());
                    // What is still pending was published after this round read the db state.
                    s.pending_since = (!caught_up).then_some(started);
                });
            }
            Err(_) => *guard = None,
        }
        result.map(|()| guard.clone())
    }

    async fn sync_locked(&self, pos: &mut Option<Pos>, local: &Pos) -> Result<(), ReplicaError> {
        let mut local = local.clone();
        if pos.as_ref().map(|p| &p.generation) != Some(&local.generation) {
            *pos = None;
            self.ensure_snapshot(&local.generation).await?;
            *pos = Some(self.resume(&local.generation).await?);
            self.refresh_local(&mut local);
        }
        let page_size = self.db.page_size();
        let mut recovered = false;
        while let Some(current) = pos.clone() {
            let shadow_len = if current.index < local.index {
                self.shadow_len(&current).await?
            } else {
                None
            };
            let from = IndexOffset {
                index: current.index,
                offset: current.offset,
            };
            let to = IndexOffset {
                index: local.index,
                offset: local.offset,
            };
            let step = match next_step(from, to, shadow_len, page_size) {
                Ok(step) => step,
                Err(
                    source @ (StepError::MissingShadow { .. } | StepError::ShadowShorter { .. }),
                ) if !recovered => {
                    // The WAL this replica still needs is gone locally (another writer, such as
                    // the LTX one, consumed it): a snapshot at the current index covers it.
                    warn!(db = %self.db_label, replica = %self.name(), generation = %current.generation, error = %source, "shadow wal gone; taking a snapshot to continue the generation");
                    recovered = true;
                    let (generation, index) = self.snapshot().await?;
                    if generation != current.generation {
                        return Ok(()); // a new generation began: the next round starts it
                    }
                    *pos = Some(Pos {
                        generation,
                        index,
                        offset: 0,
                    });
                    self.refresh_local(&mut local);
                    continue;
                }
                Err(source) => {
                    return Err(ReplicaError::Position {
                        generation: current.generation.clone(),
                        source,
                    });
                }
            };
            match step {
                Step::Done => break,
                Step::Advance => {
                    *pos = Some(Pos {
                        index: current.index + 1,
                        offset: 0,
                        ..current
                    })
                }
                Step::Upload { end } => {
                    self.upload_segment(&current, end).await?;
                    *pos = Some(Pos {
                        offset: end,
                        ..current
                    });
                }
            }
        }
        Ok(())
    }

    /// Taking a snapshot may have checkpointed and restarted the WAL (see `Db::begin_snapshot`),
    /// moving the db past the position read before it: the db's position now, if still in the
    /// same generation.
    fn refresh_local(&self, local: &mut Pos) {
        let now = self.db_state.borrow().pos.clone();
        if let Some(now) = now.filter(|p| p.generation == local.generation) {
            *local = now;
        }
    }

    /// Length of the shadow WAL file at `pos` (`None` if missing).
    async fn shadow_len(&self, pos: &Pos) -> Result<Option<u64>, ReplicaError> {
        let path = self.db.shadow_wal_path(&pos.generation, pos.index);
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ReplicaError::Shadow { path, source }),
        }
    }

    /// Streams `[pos.offset, end)` of the shadow WAL through LZ4 into one segment object.
    async fn upload_segment(&self, pos: &Pos, end: u64) -> Result<(), ReplicaError> {
        let position = format_position(&pos.generation, pos.index, pos.offset);
        info!(db = %self.db_label, replica = %self.name(), position = %position, "write wal segment");
        let started = Instant::now();
        let path = self.db.shadow_wal_path(&pos.generation, pos.index);
        let start = pos.offset;
        let make_body = move || {
            crate::lz4::compress_stream(range_stream(Source::Path(path.clone()), start, end))
                .boxed()
        };
        let put = self
            .client
            .put_segment(&pos.generation, pos.index, pos.offset, make_body)
            .await;
        self.mark_written(&pos.generation);
        put?;
        let size = end - pos.offset;
        self.update_status(|s| s.wal_bytes += size);
        info!(
            db = %self.db_label,
            replica = %self.name(),
            position = %position,
            elapsed = %crate::gofmt::format_go_duration(started.elapsed().as_nanos() as i128),
            sz = size,
            "wal segment written"
        );
        Ok(())
    }

    /// Takes a snapshot when storage holds none for `generation` (spec §4.2 step 1).
    async fn ensure_snapshot(&self, generation: &str) -> Result<(), ReplicaError> {
        if self.client.snapshots(generation).await?.is_empty() {
            debug!(db = %self.db_label, replica = %self.name(), generation, "no snapshot in generation");
            self.snapshot().await?;
        }
        Ok(())
    }

    /// A snapshot never stores a damaged file: `PRAGMA quick_check` of the source (bounded by
    /// [`SOURCE_CHECK_LIMIT`]) before every snapshot and full image, so damage never becomes
    /// the replica's latest restore point. The finding is kept in the status
    /// (`source_damaged`) until a check passes. A check that runs out of time lets the
    /// snapshot go ahead (with a warning): nothing is known against it.
    pub(super) async fn check_source(&self) -> Result<(), ReplicaError> {
        let path = self.db.path().to_path_buf();
        let probe = path.clone();
        let found = crate::rt::spawn_blocking(move || quick_check(&probe, SOURCE_CHECK_LIMIT))
            .await
            .map_err(|e| ReplicaError::SnapshotFile(std::io::Error::other(e)))?;
        if let SourceCheck::Damaged(detail) = &found {
            let text = format!("{}: {detail}", path.display());
            self.update_status(|s| s.source_damaged = Some(text));
        } else {
            self.update_status(|s| s.source_damaged = None);
        }
        match found {
            SourceCheck::Ok => Ok(()),
            SourceCheck::OutOfTime => {
                warn!(db = %self.db_label, replica = %self.name(), limit = ?SOURCE_CHECK_LIMIT, "quick_check did not finish in time; snapshotting unchecked");
                Ok(())
            }
            SourceCheck::Damaged(detail) => Err(ReplicaError::Damaged { path, detail }),
        }
    }

    /// The position storage holds for `generation` (spec §4.3): after the highest segment, or at
    /// the highest snapshot's index when there is no segment.
    pub async fn resume(&self, generation: &str) -> Result<Pos, ReplicaError> {
        let snapshot = self
            .client
            .snapshots(generation)
            .await?
            .into_iter()
            .max_by_key(|s| s.index)
            .ok_or_else(|| ReplicaError::NoSnapshot(generation.to_string()))?;
        self.update_status(|s| {
            if s.latest_snapshot.is_none() {
                s.latest_snapshot = Some(SnapshotMark {
                    generation: generation.to_string(),
                    index: snapshot.index,
                    at: snapshot.created_at.into(),
                });
            }
        });
        let last = self
            .client
            .wal_segments(generation)
            .await?
            .into_iter()
            .max_by_key(|s| (s.index, s.offset));
        let Some(seg) = last else {
            return Ok(Pos {
                generation: generation.to_string(),
                index: snapshot.index,
                offset: 0,
            });
        };
        let len = self.segment_len(generation, seg.index, seg.offset).await?;
        Ok(Pos {
            generation: generation.to_string(),
            index: seg.index,
            offset: seg.offset + len,
        })
    }

    /// Uncompressed length of one stored segment (downloaded and decompressed as a stream).
    async fn segment_len(
        &self,
        generation: &str,
        index: u32,
        offset: u64,
    ) -> Result<u64, ReplicaError> {
        let stream = self
            .client
            .open_segment(generation, index, offset)
            .await?
            .map_err(std::io::Error::other);
        crate::lz4::decompress_stream(stream)
            .try_fold(0u64, |n, chunk| async move { Ok(n + chunk.len() as u64) })
            .await
            .map_err(|source| ReplicaError::ReadSegment {
                generation: generation.to_string(),
                index,
                offset,
                source,
            })
    }
}
