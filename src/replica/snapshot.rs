//! Snapshots (spec §4.4): the whole DB file, read through the db's consistent snapshot handle,
//! streamed through LZ4 into `snapshots/<index>.snapshot.lz4`.
//!
//! What must stay true: the db's snapshot guard (which blocks walstream's checkpoints and holds
//! the read transaction) lives until the upload finished, so the bytes read stay consistent; the
//! file is streamed in chunks (memory a few MiB whatever the DB size); only one snapshot of a
//! replica runs at a time; a database failing `PRAGMA quick_check` is never snapshotted
//! (`check_source`, v0.3 here and LTX in `ltx::jobs`/`ltx::sync`); a new generation's first
//! snapshot is written at least [`super::GENERATION_GAP`] after this replica's last write (or
//! creation) when storage holds another generation.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tracing::{debug, info};

use super::body::{Source, range_stream};
use super::{Replica, ReplicaError, SnapshotMark};
use crate::storage::layout::format_position;

impl Replica {
    /// Before the first write of `generation` by this replica: waits until
    /// [`super::GENERATION_GAP`] after its last write (or creation) when storage holds other
    /// generations and none of `generation`, so the new one's objects are stamped a later second
    /// than the previous one's.
    async fn separate_generation(&self, generation: &str) -> Result<(), ReplicaError> {
        let (since, last) = crate::rt::lock(&self.last_write).clone();
        if last.as_deref() == Some(generation) {
            return Ok(());
        }
        let wait = (since + super::GENERATION_GAP).saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Ok(());
        }
        let generations = self.client.generations().await?;
        let stored = generations.iter().any(|g| g == generation);
        if stored || generations.is_empty() {
            return Ok(()); // a resumed generation, or the first one
        }
        debug!(db = %self.db_label, replica = %self.name(), generation, wait = ?wait, "new generation waits for a later storage second");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Takes a snapshot now; returns its `(generation, index)`.
    /// An LTX replica takes an L9 snapshot and returns `("ltx", 0)`: it has no generation or
    /// index (its TXID is in [`Replica::ltx_cursor`]).
    pub async fn snapshot(&self) -> Result<(String, u32), ReplicaError> {
        self.ensure_owner(false).await?;
        if self.ltx.is_some() {
            self.ltx_snapshot().await?;
            return Ok(("ltx".to_string(), 0));
        }
        self.check_source().await?;
        let _one_at_a_time = self.snapshot_lock.lock().await;
        let _permit = match &self.snapshot_permits {
            Some(p) => Some(p.acquire().await.map_err(|_| {
                ReplicaError::SnapshotFile(std::io::Error::other("snapshot limiter closed"))
            })?),
            None => None,
        };
        let generation = self
            .db_state
            .borrow()
            .pos
            .as_ref()
            .map(|p| p.generation.clone());
        if let Some(generation) = generation {
            self.separate_generation(&generation).await?;
        }
        let guard = self.db.begin_snapshot().await?;
        let pos = guard.pos.clone();
        let size = guard.size;
        let file = Arc::clone(&guard.file);
        let position = format_position(&pos.generation, pos.index, pos.offset);
        info!(db = %self.db_label, replica = %self.name(), position = %position, "write snapshot");
        let started = Instant::now();
        let make_body = move || {
            crate::lz4::compress_stream(range_stream(Source::File(file.clone()), 0, size)).boxed()
        };
        let stored = self
            .client
            .put_snapshot(&pos.generation, pos.index, make_body)
            .await;
        self.mark_written(&pos.generation);
        drop(guard);
        let stored = stored?;
        info!(
            db = %self.db_label,
            replica = %self.name(),
            position = %position,
            elapsed = %crate::gofmt::format_go_duration(started.elapsed().as_nanos() as i128),
            sz = stored,
            "snapshot written"
        );
        self.update_status(|s| {
            s.latest_snapshot = Some(SnapshotMark {
                generation: pos.generation.clone(),
                index: pos.index,
                at: SystemTime::now(),
            })
        });
        Ok((pos.generation, pos.index))
    }
}

/// Delay before the first periodic snapshot: `interval − age of the newest snapshot`, at least 0;
/// the full interval when there is no snapshot.
pub fn first_snapshot_delay(
    interval: Duration,
    newest: Option<SystemTime>,
    now: SystemTime,
) -> Duration {
    match newest {
        None => interval,
        Some(at) => {
            let age = now.duration_since(at).unwrap_or(Duration::ZERO);
            interval.saturating_sub(age)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_delay_adjusts_to_newest_snapshot_age() {
        let h = Duration::from_secs(3600);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100_000);
        assert_eq!(first_snapshot_delay(h, None, now), h);
        let ten_min_ago = now - Duration::from_secs(600);
        assert_eq!(
            first_snapshot_delay(h, Some(ten_min_ago), now),
            Duration::from_secs(3000)
        );
        assert_eq!(
            first_snapshot_delay(h, Some(now - 2 * h), now),
            Duration::ZERO
        );
        // A storage clock ahead of ours counts as age 0.
        let future = now + Duration::from_secs(5);
        assert_eq!(first_snapshot_delay(h, Some(future), now), h);
    }
}
