//! Helpers of the `replicate` end-to-end tests (`tests/replicate.rs`, `tests/compat_*.rs`, the
//! HTTP suites) on top of the shared support module (`tests/common`, re-exported here): a paced
//! background application writer, replica directory listings, the prefix check of a restore, and
//! the compatibility workload ([`workload`]).
//!
//! What must stay true: every wait is bounded by [`DEADLINE`] and polls (no sleeping for
//! readiness); every restore is checked with `PRAGMA integrity_check` (in `common::sqlite`).

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub mod workload;

pub use crate::common::process::litestream_restore;
pub use crate::common::{
    DEADLINE, POLL, Proc, insert, integrity, litestream_env, open_app, poll_until, restore_with,
    rows, walstream, walstream_env,
};

/// Sorted names in `dir` (empty when missing), temp files excluded.
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Background writer: one small transaction every few ms with ids 1, 2, 3, …
pub struct Writer {
    stop: Arc<AtomicBool>,
    last: Arc<AtomicI64>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: PathBuf, first_id: i64) -> Writer {
        Writer::paced(&db, first_id, Duration::from_millis(3))
    }

    /// One small transaction every `spacing` (paces the workload; not a wait for readiness).
    pub fn paced(db: &Path, first_id: i64, spacing: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(AtomicI64::new(first_id - 1));
        let (s, l, db) = (stop.clone(), last.clone(), db.to_path_buf());
        let handle = std::thread::spawn(move || {
            let c = open_app(&db);
            // Only the replicator checkpoints, so a restart finds the WAL it left and the
            // `-wal` size shows walstream's work.
            c.execute_batch("PRAGMA wal_autocheckpoint=0;")
                .expect("disable autocheckpoint");
            let mut id = first_id;
            while !s.load(Ordering::SeqCst) {
                insert(&c, id);
                l.store(id, Ordering::SeqCst);
                id += 1;
                std::thread::sleep(spacing);
            }
        });
        Writer {
            stop,
            last,
            handle: Some(handle),
        }
    }

    pub fn last(&self) -> i64 {
        self.last.load(Ordering::SeqCst)
    }

    /// Stops writing; returns the last committed id.
    pub fn finish(mut self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
        self.last()
    }
}

/// A writer dropped without `finish` (a failing test) stops at its next commit.
impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub fn assert_prefix(restored: &[(i64, String)], source: &[(i64, String)]) {
    assert!(restored.len() <= source.len());
    assert_eq!(
        restored,
        &source[..restored.len()],
        "restore is not a prefix of the source"
    );
}
