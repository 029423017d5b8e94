//! One replica of one database: WAL segment uploads, snapshots and retention (spec §4).
//!
//! What must stay true:
//! - the replica never opens the live database: it reads shadow WAL files and the snapshot file
//!   handle the db hands out (`Db::begin_snapshot`);
//! - one upload round at a time per replica (the position mutex serializes them); the in-memory
//!   position only advances after a segment is durably stored, and on any error it is cleared and
//!   recomputed from storage (spec §4.3), so positions never skip or repeat;
//! - objects are uploaded in position order and never rewritten (except snapshots of the same
//!   index, which Litestream also overwrites);
//! - retention never deletes what the oldest retained snapshot needs (see [`retention`]).
//!
//! Layout: [`plan`] (pure upload stepping), [`retention`] (pure retention planning), [`rate`]
//! (pacing and backoff), [`body`] (re-creatable upload bodies), `sync`/`snapshot`/`retain`
//! (storage operations), `validate` (restore-and-compare, with [`crate::crc64`]), `run` (the
//! background loops), [`status`]. A replica built with [`Replica::with_ltx`] writes Litestream
//! v0.5's LTX layout instead ([`ltx`]): `sync`, `snapshot` and `run` dispatch to it, the upload
//! loop is shared. [`owner`] keeps one writer per replica path across processes: every entry
//! point that writes or deletes replica objects asks it first.

pub mod body;
pub mod ltx;
pub mod owner;
pub mod plan;
pub mod rate;
mod retain;
pub mod retention;
mod run;
mod snapshot;
pub mod status;
mod sync;
#[cfg(test)]
pub(crate) mod test_fixture;
#[cfg(test)]
mod tests;
mod validate;

use std::sync::Arc;

use tokio::sync::{Mutex, watch};

use crate::config::ReplicaConfig;
use crate::db::{Db, DbError, DbState, Pos};
use crate::storage::{ReplicaClient, StorageError};

pub use plan::StepError;
pub use status::{ReplicaStatus, SnapshotMark, ValidationOutcome, ValidationResult};

/// Errors of one replica operation; the loops log them and retry.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("no snapshot available: generation={0}")]
    NoSnapshot(String),
    /// Retention kept finding nothing retained even after taking snapshots (a storage clock far
    /// behind ours); nothing was deleted.
    #[error("retention: no snapshot counts as retained even after taking one")]
    RetentionUnsettled,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("shadow wal {path}: {source}")]
    Shadow {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("generation {generation}: {source}")]
    Position {
        generation: String,
        source: StepError,
    },
    #[error("read segment {generation}/{index:08x}:{offset}: {source}")]
    ReadSegment {
        generation: String,
        index: u32,
        offset: u64,
        source: crate::lz4::Lz4Error,
    },
    #[error("snapshot file: {0}")]
    SnapshotFile(std::io::Error),
    /// The source failed `PRAGMA quick_check` before a new generation's first snapshot.
    #[error(
        "database {} fails quick_check ({detail}): not snapshotted, so the replica's latest restore point stays the last good one",
        path.display()
    )]
    Damaged {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("ltx: {0}")]
    Ltx(#[from] ltx::LtxWriteError),
    /// Another database owns the replica path (see [`owner`]): nothing was written.
    #[error("{0}")]
    OwnerConflict(String),
}

impl ReplicaError {
    /// True for a refusal by the owner record (logged once where it is decided).
    pub fn is_owner_conflict(&self) -> bool {
        matches!(self, ReplicaError::OwnerConflict(_))
    }
}

/// Background loops skip an owner refusal silently: it is logged once where it is decided.
pub(crate) trait FilterRefusal<T> {
    /// `Ok(None)` for [`ReplicaError::OwnerConflict`], the value or other errors unchanged.
    fn filter_refusal(self) -> Result<Option<T>, ReplicaError>;
}

impl<T> FilterRefusal<T> for Result<T, ReplicaError> {
    fn filter_refusal(self) -> Result<Option<T>, ReplicaError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_owner_conflict() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One replica of one database.
pub struct Replica {
    cfg: ReplicaConfig,
    db: Arc<Db>,
    db_state: watch::Receiver<DbState>,
    client: ReplicaClient,
    /// Last uploaded position; `None` = unknown, recompute from storage. Held for a whole round.
    pos: Mutex<Option<Pos>>,
    /// Serializes snapshots (sync's first-snapshot, the snapshotter and retention).
    snapshot_lock: Mutex<()>,
    /// Process-wide bound on snapshots running at once (shared by every replica of a run), so
    /// thousands of databases attaching together do not read and upload all their files at once.
    snapshot_permits: Option<Arc<tokio::sync::Semaphore>>,
    /// Set by a retention check: until when the next one cannot delete anything.
    retention_quiet: std::sync::Mutex<Option<retain::Quiet>>,
    status: watch::Sender<ReplicaStatus>,
    /// `db=` label for logs.
    db_label: String,
    /// Set for a replica writing the v0.5 (LTX) layout.
    ltx: Option<ltx::LtxWriter>,
    /// Whether this process may write the replica path ([`owner`]).
    owner: Mutex<owner::OwnerGate>,
    /// When this replica last finished a storage write (attempted or not) and of which
    /// generation, or when it was created: a snapshot of another generation waits until
    /// [`GENERATION_GAP`] after it.
    last_write: std::sync::Mutex<(std::time::Instant, Option<String>)>,
}

/// Storage stamps objects in whole seconds (S3's `LastModified`), and a latest restore takes the
/// generation updated last, the first listed on a tie (as Litestream). A new generation's first
/// object must therefore land in a later second than the previous generation's last one, or a
/// restart within the same second makes restore pick the older generation and lose what the new
/// one made durable (found by the crash suite on S3). A new generation's first snapshot waits
/// until this long after the replica's last write, or its creation (a process killed just before
/// this one started may have written up to then). A second plus a margin for request latency.
pub const GENERATION_GAP: std::time::Duration = std::time::Duration::from_millis(1100);

impl Replica {
    /// A replica of `db` writing through `client`. Starts nothing.
    pub fn new(db: Arc<Db>, cfg: ReplicaConfig, client: ReplicaClient) -> Arc<Self> {
        Arc::new(Self::build(db, cfg, client))
    }

    fn build(db: Arc<Db>, cfg: ReplicaConfig, client: ReplicaClient) -> Self {
        let status = ReplicaStatus {
            name: cfg.name.clone(),
            kind: cfg.target.type_name(),
            ..ReplicaStatus::default()
        };
        Self {
            db_state: db.subscribe(),
            db_label: db.path().display().to_string(),
            db,
            client,
            pos: Mutex::new(None),
            snapshot_lock: Mutex::new(()),
            snapshot_permits: None,
            retention_quiet: std::sync::Mutex::new(None),
            status: watch::channel(status).0,
            cfg,
            ltx: None,
            owner: Mutex::new(owner::OwnerGate::default()),
            last_write: std::sync::Mutex::new((std::time::Instant::now(), None)),
        }
    }

    /// Records that a storage write just ended (successfully or not: a failed request may still
    /// have been stored).
    fn mark_written(&self, generation: &str) {
        *crate::rt::lock(&self.last_write) = (std::time::Instant::now(), Some(generation.into()));
    }

    /// A replica writing Litestream v0.5's LTX layout with `settings` (levels, snapshots,
    /// retention); snapshots take a permit of `permits` first.
    pub fn with_ltx(
        db: Arc<Db>,
        cfg: ReplicaConfig,
        client: ReplicaClient,
        permits: Option<Arc<tokio::sync::Semaphore>>,
        settings: Arc<crate::config::V05Settings>,
    ) -> Arc<Self> {
        let meta = db.meta_path().to_path_buf();
        let mut replica = Self::build(db, cfg, client);
        replica.snapshot_permits = permits;
        replica.ltx = Some(ltx::LtxWriter::new(settings, &meta));
        Arc::new(replica)
    }

    /// True when this replica writes the v0.5 (LTX) layout.
    pub fn is_ltx(&self) -> bool {
        self.ltx.is_some()
    }

    /// The LTX writer's cursor (`None` for a v0.3 replica or before its first round).
    pub async fn ltx_cursor(&self) -> Option<ltx::Cursor> {
        match &self.ltx {
            Some(l) => l.cursor().await,
            None => None,
        }
    }

    /// A replica like [`Replica::new`] whose snapshots take a permit of `permits` first.
    pub fn with_snapshot_permits(
        db: Arc<Db>,
        cfg: ReplicaConfig,
        client: ReplicaClient,
        permits: Arc<tokio::sync::Semaphore>,
    ) -> Arc<Self> {
        let mut replica = Self::build(db, cfg, client);
        replica.snapshot_permits = Some(permits);
        Arc::new(replica)
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn config(&self) -> &ReplicaConfig {
        &self.cfg
    }

    pub fn client(&self) -> &ReplicaClient {
        &self.client
    }

    /// Status updates (last sync, position, lag, errors, latest snapshot).
    pub fn subscribe_status(&self) -> watch::Receiver<ReplicaStatus> {
        self.status.subscribe()
    }

    /// The current status.
    pub fn status(&self) -> ReplicaStatus {
        self.status.borrow().clone()
    }

    /// Last position known to be stored (`None` until the first round).
    pub async fn position(&self) -> Option<Pos> {
        self.pos.lock().await.clone()
    }

    fn update_status(&self, f: impl FnOnce(&mut ReplicaStatus)) {
        self.status.send_modify(f);
    }
}
