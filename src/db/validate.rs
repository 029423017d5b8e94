//! Validation support (spec §4.6): a RESTART checkpoint followed by a snapshot guard, so the
//! database file holds exactly the transactions of every shadow index below the guard's
//! position and nothing else.
//!
//! What must stay true: the tick, the checkpoint and the guard are taken under one hold of the
//! database's state mutex (no tick or other checkpoint can run in between); the guard is only
//! handed out when the checkpoint restarted the WAL (the shadow index advanced), which SQLite
//! allows only after every frame was copied into the database file — otherwise the file could
//! miss transactions of the previous index and a healthy replica would look corrupt.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{CheckpointMode, DbError, GuardToken, Pos, Shared, SnapshotGuard, SyncOutcome};

/// Outcome of [`super::Db::begin_restart_snapshot`].
pub enum RestartSnapshot {
    /// `guard.pos` is `(generation, index, 0)`: the file holds every index `< index`, none of
    /// `index`.
    Taken(SnapshotGuard),
    /// The checkpoint could not run or did not complete; why, for the error message.
    Skipped(&'static str),
}

impl Shared {
    pub(super) fn begin_restart_snapshot(
        &self,
        me: &Arc<Shared>,
    ) -> Result<RestartSnapshot, DbError> {
        self.attach()?;
        let mut slot = self.lock_attached();
        let att = slot.as_mut().ok_or_else(|| DbError::NotOpen {
            path: self.path.clone(),
        })?;
        let result = self.timed_tick(att);
        let before = self.publish(result)?.pos;
        if self.snapshot_running() {
            return Ok(RestartSnapshot::Skipped("a snapshot is running"));
        }
        let mode = CheckpointMode::Restart;
        let Some(adv) = self.checkpoint(att, &before.generation, mode)? else {
            return Ok(RestartSnapshot::Skipped("the write lock stayed busy"));
        };
        let after = Pos {
            generation: before.generation.clone(),
            index: adv.index,
            offset: adv.shadow_size,
        };
        self.publish(Ok(SyncOutcome {
            pos: after.clone(),
            changed: false,
            new_generation: None,
            checkpoint: Some(mode),
        }))?;
        if adv.index == before.index {
            return Ok(RestartSnapshot::Skipped(
                "the checkpoint did not complete (a reader holds the wal)",
            ));
        }
        self.guards.fetch_add(1, Ordering::AcqRel);
        let token = GuardToken(Arc::clone(me));
        let file = Arc::clone(&att.db_file);
        let size = file
            .metadata()
            .map_err(DbError::io(&self.path, "stat database"))?
            .len();
        Ok(RestartSnapshot::Taken(SnapshotGuard {
            pos: Pos { offset: 0, ..after },
            file,
            size,
            _active: token,
        }))
    }
}
