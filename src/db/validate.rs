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

use super::{CheckpointMode, Checkpointed, DbError, Pos, Shared, SnapshotGuard};

/// Outcome of [`super::Db::begin_restart_snapshot`].
pub enum RestartSnapshot {
    /// `guard.pos` is `(generation, index, 0)`: the file holds every index `< index`, none of
    /// `index`.
    Taken(SnapshotGuard),
    /// A snapshot holds the database; trying again once it is done may succeed.
    SnapshotRunning,
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
        let (att, before) = self.tick_attached(&mut slot)?;
        if self.snapshot_running() {
            return Ok(RestartSnapshot::SnapshotRunning);
        }
        let Checkpointed::Restarted(after) =
            self.restarting_checkpoint(att, &before, CheckpointMode::Restart)?
        else {
            return Ok(RestartSnapshot::Skipped(
                "the checkpoint did not complete (the write lock stayed busy or a reader holds the wal)",
            ));
        };
        let guard = self.guard(me, att, Pos { offset: 0, ..after })?;
        Ok(RestartSnapshot::Taken(guard))
    }
}
