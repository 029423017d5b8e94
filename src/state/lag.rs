//! Replication lag and database health, tracked from the watch channels (never by polling):
//! [`LagTracker`] remembers when each database position was first published and drops entries
//! once the replica's stored position covers them, so the lag is the age of the oldest commit
//! not yet durable in the replica; [`DbHealth`] remembers since when a database's sync fails.
//!
//! What must stay true:
//! - the lag is 0 exactly when every published position is covered by the replica's position;
//! - a replica position in a newer generation resolves every entry of older generations (their
//!   remaining data will never be uploaded: a new generation replaces them);
//! - memory is bounded ([`MAX_PENDING`]); when full, the two newest entries are merged keeping
//!   the older time, which can only over-report the lag, never under-report it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::db::{DbState, Pos};
use crate::replica::ReplicaStatus;
use crate::rt::lock;

/// Most positions remembered per replica (one per db change; ~1 h of 1 s changes).
pub const MAX_PENDING: usize = 4096;

/// Published database positions not yet covered by the replica, oldest first.
#[derive(Debug, Default)]
pub struct LagTracker {
    pending: VecDeque<(Pos, SystemTime)>,
    replica: Option<Pos>,
}

/// True when the replica position `r` includes everything up to `p`.
fn covers(r: &Pos, p: &Pos) -> bool {
    r.generation == p.generation && (r.index, r.offset) >= (p.index, p.offset)
}

impl LagTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The database published `pos` at `at`.
    pub fn db_advanced(&mut self, pos: &Pos, at: SystemTime) {
        if self.replica.as_ref().is_some_and(|r| covers(r, pos)) {
            return;
        }
        if self.pending.back().is_some_and(|(p, _)| p == pos) {
            return;
        }
        self.pending.push_back((pos.clone(), at));
        if self.pending.len() > MAX_PENDING {
            // Merge the two newest: the later position with the earlier time.
            if let Some((newest, _)) = self.pending.pop_back()
                && let Some(last) = self.pending.back_mut()
            {
                last.0 = newest;
            }
        }
    }

    /// The replica's stored position is now `pos`.
    pub fn replica_advanced(&mut self, pos: &Pos) {
        if let Some(first_same) = self
            .pending
            .iter()
            .position(|(p, _)| p.generation == pos.generation)
        {
            self.pending.drain(..first_same);
        }
        while self.pending.front().is_some_and(|(p, _)| covers(pos, p)) {
            self.pending.pop_front();
        }
        self.replica = Some(pos.clone());
    }

    /// When the oldest commit not yet in the replica was published (`None`: caught up).
    pub fn oldest_pending(&self) -> Option<SystemTime> {
        self.pending.front().map(|(_, t)| *t)
    }

    /// Age of the oldest commit not yet in the replica; zero when caught up.
    pub fn lag(&self, now: SystemTime) -> Duration {
        self.oldest_pending()
            .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::ZERO)
    }
}

/// Since when the database's sync tick keeps failing (`None`: healthy).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbHealth {
    pub failing_since: Option<SystemTime>,
}

impl DbHealth {
    /// Records the last published error state at `now`.
    pub fn observe(&mut self, failing: bool, now: SystemTime) {
        match (failing, self.failing_since) {
            (true, None) => self.failing_since = Some(now),
            (false, Some(_)) => self.failing_since = None,
            _ => {}
        }
    }
}

/// Feeds `tracker` from the database state and the replica status until either channel closes.
pub async fn track_replica(
    mut db: watch::Receiver<DbState>,
    mut status: watch::Receiver<ReplicaStatus>,
    tracker: Arc<Mutex<LagTracker>>,
) {
    let now = SystemTime::now();
    {
        let mut t = lock(&tracker);
        if let Some(p) = status.borrow_and_update().position.clone() {
            t.replica_advanced(&p);
        }
        if let Some(p) = db.borrow_and_update().pos.clone() {
            t.db_advanced(&p, now);
        }
    }
    loop {
        tokio::select! {
            r = db.changed() => {
                if r.is_err() { return; }
                let pos = db.borrow_and_update().pos.clone();
                if let Some(p) = pos {
                    lock(&tracker).db_advanced(&p, SystemTime::now());
                }
            }
            r = status.changed() => {
                if r.is_err() { return; }
                let pos = status.borrow_and_update().position.clone();
                if let Some(p) = pos {
                    lock(&tracker).replica_advanced(&p);
                }
            }
        }
    }
}

/// Feeds `health` from the database state until the channel closes.
pub async fn track_db(mut db: watch::Receiver<DbState>, health: Arc<Mutex<DbHealth>>) {
    loop {
        let failing = db.borrow_and_update().last_error.is_some();
        lock(&health).observe(failing, SystemTime::now());
        if db.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(g: &str, index: u32, offset: u64) -> Pos {
        Pos {
            generation: g.to_string(),
            index,
            offset,
        }
    }

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn lag_is_age_of_oldest_uncovered_position() {
        let mut t = LagTracker::new();
        assert_eq!(t.lag(at(100)), Duration::ZERO);
        t.db_advanced(&pos("a", 0, 100), at(10));
        t.db_advanced(&pos("a", 0, 200), at(20));
        t.db_advanced(&pos("a", 1, 32), at(30));
        assert_eq!(t.lag(at(50)), Duration::from_secs(40));
        t.replica_advanced(&pos("a", 0, 100));
        assert_eq!(t.lag(at(50)), Duration::from_secs(30));
        // Between two published positions: the later one is still pending.
        t.replica_advanced(&pos("a", 0, 150));
        assert_eq!(t.oldest_pending(), Some(at(20)));
        t.replica_advanced(&pos("a", 1, 32));
        assert_eq!(t.lag(at(50)), Duration::ZERO);
        // Positions the replica already holds never count.
        t.db_advanced(&pos("a", 0, 300), at(40));
        assert_eq!(t.lag(at(50)), Duration::ZERO);
        // A clock that went backwards reports 0, not a panic.
        t.db_advanced(&pos("a", 1, 64), at(60));
        assert_eq!(t.lag(at(50)), Duration::ZERO);
    }

    #[test]
    fn newer_replica_generation_resolves_older_entries() {
        let mut t = LagTracker::new();
        t.db_advanced(&pos("a", 0, 100), at(10));
        t.db_advanced(&pos("b", 0, 4152), at(20));
        // Still in generation a: b is pending, a is covered.
        t.replica_advanced(&pos("a", 0, 100));
        assert_eq!(t.oldest_pending(), Some(at(20)));
        // Replica in b but behind the published b position: only b's entry remains.
        let mut u = LagTracker::new();
        u.db_advanced(&pos("a", 0, 100), at(10));
        u.db_advanced(&pos("b", 0, 4152), at(20));
        u.replica_advanced(&pos("b", 0, 0));
        assert_eq!(u.oldest_pending(), Some(at(20)));
        u.replica_advanced(&pos("b", 0, 4152));
        assert_eq!(u.oldest_pending(), None);
    }

    #[test]
    fn never_synced_replica_lags_from_first_position() {
        let mut t = LagTracker::new();
        t.db_advanced(&pos("a", 0, 100), at(10));
        t.db_advanced(&pos("a", 0, 100), at(15));
        assert_eq!(t.lag(at(25)), Duration::from_secs(15));
    }

    #[test]
    fn memory_is_bounded_and_merging_keeps_the_oldest_time() {
        let mut t = LagTracker::new();
        for i in 0..(MAX_PENDING as u64 + 100) {
            t.db_advanced(&pos("a", 0, 32 + i), at(i));
        }
        assert_eq!(t.pending.len(), MAX_PENDING);
        assert_eq!(t.oldest_pending(), Some(at(0)));
        // The newest position is still tracked: covering it clears everything.
        t.replica_advanced(&pos("a", 0, 32 + MAX_PENDING as u64 + 99));
        assert_eq!(t.oldest_pending(), None);
    }

    #[test]
    fn db_health_remembers_first_failure() {
        let mut h = DbHealth::default();
        h.observe(false, at(1));
        assert_eq!(h.failing_since, None);
        h.observe(true, at(2));
        h.observe(true, at(3));
        assert_eq!(h.failing_since, Some(at(2)));
        h.observe(false, at(4));
        assert_eq!(h.failing_since, None);
    }
}
