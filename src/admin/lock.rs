//! One mutating admin operation at a time per database: [`OpLock::try_begin`] either hands out
//! an [`OpGuard`] (released on drop, also when the operation fails or its task panics) or says
//! what runs and since when ([`Busy`], HTTP 409).
//!
//! What must stay true: the lock is never waited for — a second request fails at once, so a
//! client can never queue a restore behind another one without seeing it; the guard is owned
//! (`Arc` inside) so it can move into the task that does the work.
//!
//! Test hook: when the environment variable [`HOLD_ENV`] names a file that exists, every
//! operation, once it holds the lock, creates `<file>.held` and waits (polling, at most
//! [`HOLD_LIMIT`]) until the file is removed. Integration tests use it to keep an operation
//! running deterministically while they check the 409; it does nothing when unset.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

/// Environment variable of the test hook (see the module docs).
pub const HOLD_ENV: &str = "WALSTREAM_TEST_ADMIN_HOLD";
/// Longest wait of the test hook.
pub const HOLD_LIMIT: Duration = Duration::from_secs(120);

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

/// The test hook (see the module docs); returns at once unless [`HOLD_ENV`] names an existing
/// file.
pub async fn hold_for_tests() {
    let Some(hold) = std::env::var_os(HOLD_ENV).map(PathBuf::from) else {
        return;
    };
    if !hold.exists() {
        return;
    }
    let mut held = hold.clone().into_os_string();
    held.push(".held");
    let _ = std::fs::write(&held, b"");
    let end = Instant::now() + HOLD_LIMIT;
    while hold.exists() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(&held);
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
