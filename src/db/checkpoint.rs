//! walstream's own checkpoints (spec §3.5): when to run one and how.
//!
//! Procedure (the fix the spec recommends for Litestream's race):
//! 1. take SQLite's write lock on the writer connection (`BEGIN IMMEDIATE`);
//! 2. final copy of pending frames to the shadow — nothing can be committed now;
//! 3. drop the long-running read transaction, checkpoint, re-take the read transaction —
//!    all while the write lock is still held;
//! 4. release the write lock, upsert `_litestream_seq` (the first write after a complete
//!    checkpoint restarts the WAL), then copy again: a changed header finishes the old shadow
//!    and starts shadow `index+1`.
//!
//! What must stay true: between the final copy and the WAL reset no frame can be committed
//! to the old WAL cycle, and the read transaction is re-taken before the write lock is
//! released, so a frame committed after step 4 can never be checkpointed away (and the WAL
//! reset) before walstream has copied it. Checkpoints are skipped while a snapshot guard lives.
//!
//! SQLite's RESTART/TRUNCATE modes need the write lock themselves, which this procedure holds
//! on another connection; they are therefore performed as PASSIVE checkpoints retried until
//! complete for up to the busy timeout (RESTART's wait for readers, with writers blocked), and
//! TRUNCATE additionally cuts the WAL file to the restarting transaction's frames via
//! `journal_size_limit = 0` on the upsert. Counters still use the policy's mode label.

use std::time::{Duration, Instant};

use tracing::debug;

use super::conn::{CheckpointResult, Conns};
use super::error::DbError;
use super::sync::Advanced;
use super::{Attached, Shared};
use crate::wal::{WAL_HEADER_SIZE, frame_size};

/// Litestream's fixed `TruncatePageN` (not configurable in v0.3.13).
pub const TRUNCATE_PAGE_COUNT: u64 = 500_000;

/// Longest pause between checkpoint attempts of a RESTART/TRUNCATE.
const RETRY_MAX_DELAY: Duration = Duration::from_millis(50);

/// Checkpoint mode, labelled like Litestream's metrics (`PASSIVE`, `RESTART`, `TRUNCATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointMode {
    Passive,
    Restart,
    Truncate,
}

impl CheckpointMode {
    pub const ALL: [CheckpointMode; 3] = [
        CheckpointMode::Passive,
        CheckpointMode::Restart,
        CheckpointMode::Truncate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointMode::Passive => "PASSIVE",
            CheckpointMode::Restart => "RESTART",
            CheckpointMode::Truncate => "TRUNCATE",
        }
    }
}

/// The thresholds of spec §3.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckpointPolicy {
    pub min_page_count: u64,
    /// 0 disables RESTART checkpoints.
    pub max_page_count: u64,
    /// 0 disables TRUNCATE checkpoints.
    pub truncate_page_count: u64,
    /// Zero disables the time-based PASSIVE checkpoint.
    pub interval: Duration,
}

/// Byte size of a WAL holding `pages` frames.
pub(crate) fn wal_size_for(page_size: u32, pages: u64) -> u64 {
    WAL_HEADER_SIZE as u64 + frame_size(page_size) * pages
}

impl CheckpointPolicy {
    /// First matching rule wins. `wal_size`: aligned real WAL size before the copy;
    /// `shadow_size`: aligned size of the current shadow after it; `db_age`: time since the
    /// database file was modified.
    pub fn decide(
        &self,
        page_size: u32,
        wal_size: u64,
        shadow_size: u64,
        db_age: Option<Duration>,
    ) -> Option<CheckpointMode> {
        let at = |pages| wal_size_for(page_size, pages);
        if self.truncate_page_count > 0 && wal_size >= at(self.truncate_page_count) {
            return Some(CheckpointMode::Truncate);
        }
        if self.max_page_count > 0 && shadow_size >= at(self.max_page_count) {
            return Some(CheckpointMode::Restart);
        }
        if shadow_size >= at(self.min_page_count) {
            return Some(CheckpointMode::Passive);
        }
        let idle = db_age.is_some_and(|age| age > self.interval);
        if !self.interval.is_zero() && idle && shadow_size > at(1) {
            return Some(CheckpointMode::Passive);
        }
        None
    }
}

impl Shared {
    /// Runs one checkpoint. `None` when skipped (snapshot running, or the write lock stayed
    /// busy); otherwise where the shadow stands afterwards.
    pub(crate) fn checkpoint(
        &self,
        att: &mut Attached,
        generation: &str,
        mode: CheckpointMode,
    ) -> Result<Option<Advanced>, DbError> {
        if self.snapshot_running() {
            return Ok(None);
        }
        let started = Instant::now();
        let result = self.checkpoint_locked(att, generation, mode);
        let elapsed = started.elapsed().as_secs_f64();
        self.with_stats(|s| {
            let c = s.checkpoint_mut(mode);
            c.count += 1;
            c.seconds += elapsed;
            if !matches!(result, Ok(Some(_))) {
                c.error_count += 1;
            } else {
                s.last_checkpoint = Some((std::time::SystemTime::now(), mode));
            }
        });
        result
    }

    fn checkpoint_locked(
        &self,
        att: &mut Attached,
        generation: &str,
        mode: CheckpointMode,
    ) -> Result<Option<Advanced>, DbError> {
        if !att.conns.begin_write_lock()? {
            debug!(db = %self.path.display(), mode = mode.as_str(),
                "checkpoint skipped: write lock busy");
            return Ok(None);
        }
        let under_lock = self.checkpoint_under_write_lock(att, generation, mode);
        let released = att.conns.end_write_lock();
        let result = under_lock?;
        released?;
        debug!(db = %self.path.display(), mode = mode.as_str(),
            result = %format!("{},{},{}", result.busy, result.log, result.checkpointed),
            "checkpoint");
        // Force the WAL restart now; whatever happens, pick up a restart (ours or the app's).
        let upserted = att.conns.upsert_seq(mode == CheckpointMode::Truncate);
        let adv = self.advance(att, generation)?;
        upserted?;
        Ok(Some(adv))
    }

    /// Steps 2–3: final copy, then checkpoint without our read mark, then re-take it.
    fn checkpoint_under_write_lock(
        &self,
        att: &mut Attached,
        generation: &str,
        mode: CheckpointMode,
    ) -> Result<CheckpointResult, DbError> {
        self.advance(att, generation)?;
        att.conns.release_read()?;
        let result = run_checkpoint(&att.conns, mode);
        let reacquired = att.conns.acquire_read();
        let result = result?;
        reacquired?;
        Ok(result)
    }
}

/// PASSIVE once, or (RESTART/TRUNCATE) until complete or the busy timeout passed.
fn run_checkpoint(conns: &Conns, mode: CheckpointMode) -> Result<CheckpointResult, DbError> {
    let deadline = Instant::now() + conns.busy_timeout();
    let mut delay = Duration::from_millis(1);
    loop {
        let result = conns.checkpoint_passive()?;
        if mode == CheckpointMode::Passive || result.complete() || Instant::now() >= deadline {
            return Ok(result);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(RETRY_MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: u32 = 4096;

    fn policy() -> CheckpointPolicy {
        CheckpointPolicy {
            min_page_count: 1000,
            max_page_count: 10_000,
            truncate_page_count: TRUNCATE_PAGE_COUNT,
            interval: Duration::from_secs(60),
        }
    }

    #[test]
    fn thresholds_first_match_wins() {
        let p = policy();
        let at = |n| wal_size_for(PS, n);
        let fresh = Some(Duration::from_secs(1));
        assert_eq!(p.decide(PS, at(999), at(999), fresh), None);
        assert_eq!(
            p.decide(PS, at(1000), at(1000), fresh),
            Some(CheckpointMode::Passive)
        );
        assert_eq!(
            p.decide(PS, at(10_000), at(10_000), fresh),
            Some(CheckpointMode::Restart)
        );
        // TRUNCATE looks at the real WAL size, even when the shadow is small.
        assert_eq!(
            p.decide(PS, at(500_000), at(1), fresh),
            Some(CheckpointMode::Truncate)
        );
        assert_eq!(p.decide(PS, at(499_999), at(1), fresh), None);
        let no_max = CheckpointPolicy {
            max_page_count: 0,
            ..p
        };
        assert_eq!(
            no_max.decide(PS, at(20_000), at(20_000), fresh),
            Some(CheckpointMode::Passive)
        );
    }

    #[test]
    fn interval_rule_needs_an_old_db_file_and_more_than_one_frame() {
        let p = policy();
        let at = |n| wal_size_for(PS, n);
        let old = Some(Duration::from_secs(61));
        assert_eq!(
            p.decide(PS, at(2), at(2), old),
            Some(CheckpointMode::Passive)
        );
        assert_eq!(p.decide(PS, at(1), at(1), old), None);
        assert_eq!(
            p.decide(PS, at(2), at(2), Some(Duration::from_secs(60))),
            None
        );
        assert_eq!(p.decide(PS, at(2), at(2), None), None);
        let off = CheckpointPolicy {
            interval: Duration::ZERO,
            ..p
        };
        assert_eq!(off.decide(PS, at(2), at(2), old), None);
    }

    #[test]
    fn labels() {
        let names: Vec<_> = CheckpointMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["PASSIVE", "RESTART", "TRUNCATE"]);
    }
}
