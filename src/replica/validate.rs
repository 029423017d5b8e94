//! Validation (`validation-interval`, spec §4.6): restore the replica and compare it with the
//! live database file, like Litestream v0.3.13's `Replica.Validate`.
//!
//! Steps: under the database's state mutex, a RESTART checkpoint and a snapshot guard (see
//! `db::validate`; while a snapshot is running, retried every 500 ms for up to 10 s) give a position `P = (gen, index, 0)` whose database file holds exactly the
//! shadow indices `< P.index`; its CRC-64/ISO is streamed from the shared file handle while the
//! guard blocks walstream's checkpoints; then wait (≤ 10 s, polling every 500 ms) for the replica
//! to reach `P`; restore generation `P.gen` up to index `P.index − 1` into a private temporary
//! directory; stream the CRC-64 of the result and compare.
//!
//! An LTX replica takes the same steps with its own middle part (`ltx::validate`): the TXID that
//! holds exactly `P` instead of the index, restored with the LTX restore.
//!
//! What must stay true: memory stays bounded whatever the database size (both checksums are
//! streamed in fixed chunks, the restore is the bounded library restore); the temporary
//! directory is removed on every path, including cancellation; every validation, whatever its
//! outcome, is recorded in the replica status (last result and counters); the INFO `validator`
//! line keeps Litestream's fields (`status`, `db`, `replica` as 16 hex digits, `position`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::info;

use super::{Replica, ValidationOutcome, ValidationResult};
use crate::crc64;
use crate::db::{DbError, Pos, RestartSnapshot, SnapshotGuard};
use crate::restore::{self, ExecOptions, IntegrityCheck, ReplicaRef, RestoreError, RestoreRequest};
use crate::storage::layout::format_position;

/// Longest wait for the replica to reach the validated position (Litestream's 10 s).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between position checks while waiting (Litestream's 500 ms).
const WAIT_POLL: Duration = Duration::from_millis(500);

/// Why a validation did not end with matching checksums.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("cannot compute checksum: {0}")]
    Db(#[from] DbError),
    #[error("cannot compute checksum: restart checkpoint skipped: {0}")]
    CheckpointSkipped(&'static str),
    #[error("cannot compute checksum of {}: {source}", .path.display())]
    Checksum {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot wait for replica: replica wait exceeded timeout (replica at {current}, want {want})"
    )]
    WaitTimeout { want: String, current: String },
    #[error("cannot wait for replica: generation changed")]
    GenerationChanged,
    #[error("cannot create temporary validation directory {}: {source}", .path.display())]
    TempDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot restore: {0}")]
    Restore(#[from] RestoreError),
    /// Litestream's `ErrChecksumMismatch` wording.
    #[error("invalid replica, checksum mismatch")]
    Mismatch,
    /// An LTX replica's mismatch: the TXID restored and both checksums.
    #[error(
        "invalid replica, checksum mismatch at txid {}: db {db:016x}, replica {replica:016x}",
        crate::ltx::format_txid(*.txid)
    )]
    LtxMismatch { txid: u64, db: u64, replica: u64 },
    /// The LTX writer could not store the L0 that ends at the validated position.
    #[error("cannot store the validated position: {0}")]
    Writer(#[source] super::ReplicaError),
    /// The LTX writer has no stored position to build on (its next sync stores a full image).
    #[error("cannot store the validated position: the ltx replica has no position yet")]
    NoLtxPosition,
    #[error("validation task: {0}")]
    Task(String),
}

/// What one validation computed before it ended.
#[derive(Default)]
pub(super) struct Progress {
    pub pos: Option<Pos>,
    /// LTX replicas: the TXID that holds exactly `pos`.
    pub txid: Option<u64>,
    pub db_crc: Option<u64>,
    pub replica_crc: Option<u64>,
}

impl Replica {
    /// Runs one validation, logs it, records it in the status (and so in the metrics and the
    /// HTTP API) and returns it. The caller logs ERROR `validation error` unless it is `Ok`.
    pub async fn validate(&self) -> ValidationResult {
        let mut p = Progress::default();
        let result = match self.ltx {
            Some(_) => self.ltx_validate_steps(&mut p).await,
            None => self.validate_steps(&mut p).await,
        };
        if let (Some(pos), Some(db), Some(replica)) = (&p.pos, p.db_crc, p.replica_crc) {
            let status = if db == replica { "ok" } else { "mismatch" };
            let position = format_position(&pos.generation, pos.index, pos.offset);
            // Litestream's line repeats `db` and `replica` (scope, then the checksums); an LTX
            // replica's adds the TXID restored (a `None` field is left out).
            let txid = p.txid.map(crate::ltx::format_txid);
            info!(
                db = %self.db_label,
                replica = %self.name(),
                status,
                db = %format!("{db:016x}"),
                replica = %format!("{replica:016x}"),
                position = %position,
                txid = txid.as_deref(),
                "validator"
            );
        }
        let outcome = match &result {
            Ok(()) => ValidationOutcome::Ok,
            Err(ValidateError::Mismatch | ValidateError::LtxMismatch { .. }) => {
                ValidationOutcome::Mismatch
            }
            Err(_) => ValidationOutcome::Error,
        };
        let record = ValidationResult {
            at: SystemTime::now(),
            outcome,
            message: result.err().map(|e| e.to_string()),
            position: p.pos,
            txid: p.txid,
            db_checksum: p.db_crc,
            replica_checksum: p.replica_crc,
        };
        self.update_status(|s| {
            if outcome == ValidationOutcome::Ok {
                s.validations_ok += 1;
            } else {
                s.validations_failed += 1;
            }
            s.validation = Some(record.clone());
        });
        record
    }

    async fn validate_steps(&self, p: &mut Progress) -> Result<(), ValidateError> {
        let tmp = TempDir::create()?;
        let guard = self.restart_snapshot().await?;
        let pos = guard.pos.clone();
        p.pos = Some(pos.clone());
        let db_crc = self.db_checksum(guard).await?;
        p.db_crc = Some(db_crc);

        self.wait_for_replica(&pos).await?;
        let out = tmp.path().join("replica");
        self.restore_before(&pos, &out).await?;
        let replica_crc = file_checksum(out).await?;
        p.replica_crc = Some(replica_crc);
        if db_crc != replica_crc {
            return Err(ValidateError::Mismatch);
        }
        Ok(())
    }

    /// CRC-64/ISO of the database file as `guard` holds it, streamed from its handle; the guard
    /// (and so the hold on walstream's checkpoints) ends with it.
    pub(super) async fn db_checksum(&self, guard: SnapshotGuard) -> Result<u64, ValidateError> {
        let db_path = self.db.path().to_path_buf();
        blocking(move || {
            let crc = crc64::checksum_file_range(&guard.file, guard.size);
            drop(guard);
            crc.map_err(|source| ValidateError::Checksum {
                path: db_path,
                source,
            })
        })
        .await
    }

    /// The restart checkpoint and guard; while a snapshot (periodic or forced) holds the
    /// database, tries again every [`WAIT_POLL`] for at most [`WAIT_TIMEOUT`], so a validation
    /// that happens to fall on a snapshot is not reported as failed.
    pub(super) async fn restart_snapshot(&self) -> Result<SnapshotGuard, ValidateError> {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            match self.db.begin_restart_snapshot().await? {
                RestartSnapshot::Taken(guard) => return Ok(guard),
                RestartSnapshot::SnapshotRunning if Instant::now() + WAIT_POLL <= deadline => {
                    tokio::time::sleep(WAIT_POLL).await;
                }
                RestartSnapshot::SnapshotRunning => {
                    return Err(ValidateError::CheckpointSkipped(
                        "a snapshot was still running after 10 s",
                    ));
                }
                RestartSnapshot::Skipped(why) => return Err(ValidateError::CheckpointSkipped(why)),
            }
        }
    }

    /// Polls the stored position until it reaches `want` (same generation), for at most
    /// [`WAIT_TIMEOUT`]; the first check is immediate.
    async fn wait_for_replica(&self, want: &Pos) -> Result<(), ValidateError> {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let current = self.status.borrow().position.clone();
            if let Some(cur) = &current {
                if cur.generation != want.generation {
                    return Err(ValidateError::GenerationChanged);
                }
                if (cur.index, cur.offset) >= (want.index, want.offset) {
                    return Ok(());
                }
            }
            if Instant::now() + WAIT_POLL > deadline {
                let current = current.map_or_else(
                    || "none".to_string(),
                    |c| format_position(&c.generation, c.index, c.offset),
                );
                let want = format_position(&want.generation, want.index, want.offset);
                return Err(ValidateError::WaitTimeout { want, current });
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Restores generation `pos.generation` up to index `pos.index − 1` into `out`.
    async fn restore_before(&self, pos: &Pos, out: &Path) -> Result<(), ValidateError> {
        // `pos.index ≥ 1`: the restart checkpoint advanced the index.
        let index = i64::from(pos.index) - 1;
        let req = RestoreRequest {
            output: out.to_path_buf(),
            generation: Some(pos.generation.clone()),
            index: Some(index),
            timestamp: None,
            exec: ExecOptions {
                // The checksum comparison is the check; SQLite's would only add time.
                integrity_check: IntegrityCheck::None,
                progress: false,
                ..ExecOptions::default()
            },
            if_replica_exists: false,
        };
        let replicas = [ReplicaRef {
            name: self.name(),
            client: &self.client,
        }];
        restore::restore(&replicas, &req).await?;
        Ok(())
    }
}

/// CRC-64/ISO of the restored file at `out`, streamed.
pub(super) async fn file_checksum(out: PathBuf) -> Result<u64, ValidateError> {
    blocking(move || {
        std::fs::File::open(&out)
            .and_then(crc64::checksum_reader)
            .map_err(|source| ValidateError::Checksum { path: out, source })
    })
    .await
}

/// Runs blocking file work off the async threads ([`crate::rt::spawn_blocking`]).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ValidateError> + Send + 'static,
) -> Result<T, ValidateError> {
    crate::rt::spawn_blocking(f)
        .await
        .map_err(|e| ValidateError::Task(e.to_string()))?
}

/// A private directory under the system temporary directory (`TMPDIR`, as Litestream's
/// `os.TempDir`), removed with its contents when dropped.
pub(super) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(super) fn create() -> Result<TempDir, ValidateError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "walstream-validate-{}-{}-{nanos:09}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .map_err(|source| ValidateError::TempDir {
                path: path.clone(),
                source,
            })?;
        Ok(TempDir { path })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e,
                "cannot remove temporary validation directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_private_distinct_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let a = TempDir::create().expect("create a");
        let b = TempDir::create().expect("create b");
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(a.path().join("replica"), b"x").expect("write");
        let kept = a.path().to_path_buf();
        drop(a);
        assert!(!kept.exists());
    }

    #[test]
    fn mismatch_keeps_litestreams_wording() {
        assert_eq!(
            ValidateError::Mismatch.to_string(),
            "invalid replica, checksum mismatch"
        );
    }
}
