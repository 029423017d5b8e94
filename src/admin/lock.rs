//! One mutating admin operation at a time per database: [`OpLock::try_begin`] either hands out
//! an [`OpGuard`] (released on drop, also when the operation fails or its task panics) or says
//! what runs and since when ([`Busy`], HTTP 409).
//!
//! What must stay true: the lock is never waited for — a second request fails at once, so a
//! client can never queue a restore behind another one without seeing it; the guard is owned
//! (`Arc` inside) so it can move into the task that does the work.

use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};

/// The per-database operation lock.
#[derive(Debug)]
pub struct OpLock {
    db: String,
    running: Mutex<Option<Running>>,
}

#[derive(Debug, Clone)]
struct Running {
    op: &'static str,
    started: String,
}

/// Another operation holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("another operation is running on {database}: {running} (started {started})")]
pub struct Busy {
    pub database: String,
    pub running: String,
    pub started: String,
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct OpGuard {
    lock: Arc<OpLock>,
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        *crate::rt::lock(&self.lock.running) = None;
    }
}

impl OpLock {
    /// The lock of the database called `db` in messages.
    pub fn new(db: &str) -> Arc<OpLock> {
        Arc::new(OpLock {
            db: db.to_string(),
            running: Mutex::new(None),
        })
    }

    /// Takes the lock for `op` (`backup`, `restore`, `delete`) or says what holds it.
    pub fn try_begin(self: &Arc<Self>, op: &'static str) -> Result<OpGuard, Busy> {
        let mut slot = crate::rt::lock(&self.running);
        if let Some(r) = slot.as_ref() {
            return Err(Busy {
                database: self.db.clone(),
                running: r.op.to_string(),
                started: r.started.clone(),
            });
        }
        *slot = Some(Running {
            op,
            started: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        Ok(OpGuard {
            lock: Arc::clone(self),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_operation_is_refused_until_the_first_ends() {
        let lock = OpLock::new("app.db");
        let guard = lock.try_begin("restore").expect("free");
        let busy = lock.try_begin("backup").expect_err("held");
        assert_eq!(busy.database, "app.db");
        assert_eq!(busy.running, "restore");
        assert!(
            busy.to_string()
                .starts_with("another operation is running on app.db: restore (started ")
        );
        drop(guard);
        lock.try_begin("backup").expect("free again");
    }
}
