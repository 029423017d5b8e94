//! One mutating admin operation at a time per database, within the process and across
//! processes: [`OpLock::try_begin`] either hands out an [`OpGuard`] (released on drop, also when
//! the operation fails or its task panics) or says what runs, since when, and in which job or
//! process ([`Busy`], HTTP 409).
//!
//! Across processes (the sidecar's HTTP API and schedule, `walstream backup …` run by hand) the
//! lock is an exclusive `flock` (`File::try_lock`) on `<backups folder>/.lock`, whose content says who holds it
//! (operation, start, pid, program). The kernel releases a `flock` when its holder exits, however
//! it exits: a SIGKILLed process never leaves a stuck lock, nothing ever needs clearing by hand,
//! and stale text in the file is simply overwritten by the next holder.
//!
//! What must stay true: the lock is never waited for — a second request fails at once, so a
//! client can never queue a restore behind another one without seeing it; the guard is owned
//! (`Arc` inside, the lock file's handle inside) so it can move into the task that does the
//! work; the in-process slot is taken before the file lock and given back if the file lock is
//! held elsewhere.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::BackupStore;

/// The per-database operation lock.
#[derive(Debug)]
pub struct OpLock {
    db: String,
    /// The backups folder whose `.lock` file is the cross-process lock (`None`: in-process only).
    store: Option<BackupStore>,
    running: Mutex<Option<Running>>,
}

#[derive(Debug, Clone)]
struct Running {
    op: &'static str,
    started: String,
    job: Option<String>,
}

/// Another operation holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("another operation is running on {database}: {running} (started {started})")]
pub struct Busy {
    pub database: String,
    /// The operation, and for another process which one (`restore (walstream replicate, pid 7)`).
    pub running: String,
    pub started: String,
    /// The HTTP job running it, when this process runs it as one.
    pub job: Option<String>,
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct OpGuard {
    lock: Arc<OpLock>,
    /// The locked `.lock` file (closing it releases the `flock`).
    _file: Option<File>,
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        *crate::rt::lock(&self.lock.running) = None;
    }
}

/// What the `.lock` file says about its holder.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    op: String,
    started: String,
    pid: u32,
    program: String,
}

impl OpLock {
    /// The lock of the database called `db` in messages; with `store`, also across processes.
    pub fn new(db: &str, store: Option<BackupStore>) -> Arc<OpLock> {
        Arc::new(OpLock {
            db: db.to_string(),
            store,
            running: Mutex::new(None),
        })
    }

    /// Takes the lock for `op` (`backup`, `restore`, `delete`, …) or says what holds it.
    pub fn try_begin(self: &Arc<Self>, op: &'static str) -> Result<OpGuard, Busy> {
        self.try_begin_job(op, None)
    }

    /// [`OpLock::try_begin`] on behalf of the HTTP job `job` (named in the 409 of others).
    pub fn try_begin_job(
        self: &Arc<Self>,
        op: &'static str,
        job: Option<String>,
    ) -> Result<OpGuard, Busy> {
        let started = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        {
            let mut slot = crate::rt::lock(&self.running);
            if let Some(r) = slot.as_ref() {
                return Err(Busy {
                    database: self.db.clone(),
                    running: r.op.to_string(),
                    started: r.started.clone(),
                    job: r.job.clone(),
                });
            }
            *slot = Some(Running {
                op,
                started: started.clone(),
                job,
            });
        }
        let file = match self.lock_file(op, &started) {
            Ok(file) => file,
            Err(busy) => {
                *crate::rt::lock(&self.running) = None;
                return Err(busy);
            }
        };
        Ok(OpGuard {
            lock: Arc::clone(self),
            _file: file,
        })
    }

    /// Takes the `flock` of the backups folder's `.lock` and writes who holds it. A folder or
    /// file that cannot be opened is logged and the lock is in-process only (the operation
    /// itself will then fail on the same folder with a clear error).
    fn lock_file(&self, op: &str, started: &str) -> Result<Option<File>, Busy> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let path = store.dir().join(".lock");
        let opened = store
            .ensure_dir()
            .map_err(|e| e.to_string())
            .and_then(|()| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| format!("open {}: {e}", path.display()))
            });
        let mut file = match opened {
            Ok(f) => f,
            Err(e) => {
                warn!(db = %self.db, error = %e, "no cross-process operation lock");
                return Ok(None);
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(self.held_elsewhere(&mut file)),
            Err(std::fs::TryLockError::Error(e)) => {
                warn!(db = %self.db, error = %e, path = %path.display(), "no cross-process operation lock");
                return Ok(None);
            }
        }
        let holder = Holder {
            op: op.to_string(),
            started: started.to_string(),
            pid: std::process::id(),
            program: program(),
        };
        let text = serde_json::to_string(&holder).unwrap_or_default();
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()));
        if let Err(e) = written {
            warn!(db = %self.db, error = %e, path = %path.display(), "cannot record the lock holder");
        }
        Ok(Some(file))
    }

    /// The [`Busy`] of a lock file another process holds, from what it wrote in it.
    fn held_elsewhere(&self, file: &mut File) -> Busy {
        let mut text = String::new();
        let holder = file
            .read_to_string(&mut text)
            .ok()
            .and_then(|_| serde_json::from_str::<Holder>(&text).ok());
        match holder {
            Some(h) => Busy {
                database: self.db.clone(),
                running: format!("{} ({}, pid {})", h.op, h.program, h.pid),
                started: h.started,
                job: None,
            },
            None => Busy {
                database: self.db.clone(),
                running: "an operation of another process".into(),
                started: "unknown".into(),
                job: None,
            },
        }
    }
}

/// `walstream <command>` of this process, for lock holders.
fn program() -> String {
    let args: Vec<String> = std::env::args().skip(1).take(2).collect();
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .take_while(|a| !a.starts_with('-') && !a.contains('/'))
        .collect();
    format!("walstream {}", words.join(" "))
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_operation_is_refused_until_the_first_ends() {
        let lock = OpLock::new("app.db", None);
        let guard = lock
            .try_begin_job("restore", Some("j-1".into()))
            .expect("free");
        let busy = lock.try_begin("backup").expect_err("held");
        assert_eq!(busy.database, "app.db");
        assert_eq!(busy.running, "restore");
        assert_eq!(busy.job.as_deref(), Some("j-1"));
        assert!(
            busy.to_string()
                .starts_with("another operation is running on app.db: restore (started ")
        );
        drop(guard);
        lock.try_begin("backup").expect("free again");
    }

    #[test]
    fn the_lock_file_excludes_a_second_holder_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        std::fs::write(&db, b"").unwrap();
        let cfg = crate::config::BackupsConfig::for_db(&db);
        let store = BackupStore::new(&db, &cfg);
        // Two locks on one folder stand for two processes (flock is per open file).
        let one = OpLock::new("app.db", Some(store.clone()));
        let two = OpLock::new("app.db", Some(store.clone()));
        let guard = one.try_begin("restore").expect("free");
        let busy = two.try_begin("backup").expect_err("held by the other");
        assert!(busy.running.starts_with("restore (walstream"), "{busy:?}");
        assert!(
            busy.running
                .contains(&format!("pid {}", std::process::id()))
        );
        assert!(busy.job.is_none());
        // The refused lock left its own in-process slot free.
        drop(guard);
        let again = two.try_begin("backup").expect("free after the drop");
        drop(again);
        let text = std::fs::read_to_string(store.dir().join(".lock")).unwrap();
        assert!(text.contains("\"op\":\"backup\""), "{text}");
    }
}
