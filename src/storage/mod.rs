//! Replica storage over `object_store`: the [`ReplicaClient`] lists, uploads, downloads and deletes
//! Litestream v0.3.13 replica objects (spec §1, §10) on file, S3, GCS and Azure Blob backends.
//!
//! What must stay true:
//! - Keys come only from [`layout`]; listings return only names that parse there (foreign files,
//!   upper-case hex, `*.tmp`, staging files are skipped), sorted by position.
//! - `CreatedAt` is the storage timestamp of the object (`ObjectMeta::last_modified`, spec §1.6):
//!   file mtime (ns), S3 `LastModified` (1 s), GCS XML-listing `LastModified` (= the object
//!   generation's creation unless its metadata is later patched), Azure `Last-Modified`.
//!   Litestream uses Azure's `Creation-Time`, which `object_store` does not expose; the two differ
//!   only for an overwritten snapshot if the service keeps `Creation-Time` across overwrites
//!   (azurite does not: both are the overwrite time). We then report the overwrite time, which is
//!   when the stored content was actually taken.
//! - An explicit config path with a leading `/` cannot be represented by `object_store` paths:
//!   the leading `/` is dropped from object keys (Litestream keeps it, spec §1.1).
//! - Uploads are streamed (single PUT up to 5 MiB, 5 MiB multipart parts above) and are never
//!   visible half-written; every call is retried through [`retry::retry`] and counted in
//!   [`StorageStats`].
//! - Errors name the operation and object key; credentials never appear in [`ReplicaClient::describe`]
//!   or in errors produced here.
//! - No SQLite knowledge and no reading of configuration environment variables here (cloud SDK
//!   default credential chains are used through the builders' `from_env`).

mod backend;
mod client;
pub mod fault;
pub mod layout;
mod lazy;
pub mod retry;
mod stats;
mod upload;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::ObjectStore;

pub use retry::RetryPolicy;
pub use stats::{ErrorClass, StorageStats};
pub use upload::PART_SIZE;

/// The storage operation kinds Litestream counts (metric label `operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Put,
    List,
    Delete,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Get, Op::Put, Op::List, Op::Delete];

    /// Litestream's label value: `GET`, `PUT`, `LIST`, `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "GET",
            Op::Put => "PUT",
            Op::List => "LIST",
            Op::Delete => "DELETE",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One snapshot object: `<root>/generations/<generation>/snapshots/<index>.snapshot.lz4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub generation: String,
    pub index: u32,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    pub created_at: DateTime<Utc>,
}

/// One WAL segment object: `<root>/generations/<generation>/wal/<index>_<offset>.wal.lz4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub generation: String,
    pub index: u32,
    pub offset: u64,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    pub created_at: DateTime<Utc>,
}

/// Errors of the storage layer. The `Display` text names the operation and the object key and
/// includes the underlying cause.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found: {key}")]
    NotFound { key: String },
    /// Retrying cannot help (access denied, bad request, unsupported...).
    #[error("{op} {key}: {source}")]
    Permanent {
        op: Op,
        key: String,
        source: object_store::Error,
    },
    /// Still failing after all attempts of the retry policy.
    #[error("{op} {key} failed after {attempts} attempt(s): {source}")]
    Transient {
        op: Op,
        key: String,
        attempts: u32,
        source: object_store::Error,
    },
    #[error("storage configuration: {0}")]
    Config(String),
    /// Local I/O: reading an upload body, or cleaning a file replica directory.
    #[error("{op} {key}: {source}")]
    Io {
        op: Op,
        key: String,
        source: std::io::Error,
    },
    #[error("invalid object key {key:?}: {source}")]
    InvalidKey {
        key: String,
        source: object_store::path::Error,
    },
    #[error("invalid generation id {generation:?}")]
    InvalidGeneration { generation: String },
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// True for failures that may succeed later (the caller may try again on its next tick).
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Transient { .. })
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            StorageError::NotFound { .. } => ErrorClass::NotFound,
            StorageError::Permanent { .. } => ErrorClass::Permanent,
            StorageError::Transient { .. } => ErrorClass::Transient,
            _ => ErrorClass::Other,
        }
    }
}

/// Client of one replica location. Cheap to clone; clones share the store and the counters.
#[derive(Clone, Debug)]
pub struct ReplicaClient {
    inner: Arc<Inner>,
    policy: RetryPolicy,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    /// Key prefix given to [`layout`] (empty for the file backend, whose store is rooted at the
    /// replica directory).
    root: String,
    replica_type: &'static str,
    description: String,
    /// Replica directory of the file backend, for removing emptied generation directories.
    local_root: Option<PathBuf>,
    stats: StorageStats,
}

impl ReplicaClient {
    /// Builds the client for a configured replica target (creates a file replica's directory).
    pub fn new(target: &crate::config::ReplicaTarget) -> Result<Self, StorageError> {
        let b = backend::build(target)?;
        Ok(Self::from_parts(
            b.store,
            b.root,
            target.type_name(),
            b.description,
            b.local_root,
        ))
    }

    /// A client over any store (tests, fault injection). `root` is the key prefix.
    pub fn with_store(store: Arc<dyn ObjectStore>, root: &str, replica_type: &'static str) -> Self {
        let description = format!("{replica_type}:{store}/{root}");
        Self::from_parts(store, root.to_string(), replica_type, description, None)
    }

    /// The same replica seen through `wrap(store)` (e.g. a [`fault::FaultInjectingStore`]), with
    /// fresh counters and the same retry policy.
    pub fn wrap_store(
        &self,
        wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Self {
        let i = &self.inner;
        let store = wrap(Arc::clone(&i.store));
        Self::from_parts(
            store,
            i.root.clone(),
            i.replica_type,
            i.description.clone(),
            i.local_root.clone(),
        )
        .with_retry_policy(self.policy.clone())
    }

    fn from_parts(
        store: Arc<dyn ObjectStore>,
        root: String,
        replica_type: &'static str,
        description: String,
        local_root: Option<PathBuf>,
    ) -> Self {
        let inner = Inner {
            store,
            root,
            replica_type,
            description,
            local_root,
            stats: StorageStats::default(),
        };
        Self {
            inner: Arc::new(inner),
            policy: RetryPolicy::default(),
        }
    }

    /// Replaces the retry policy of this handle (clones made afterwards inherit it).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// `file`, `s3`, `gcs` or `abs` (Litestream's `replica_type` metric label).
    pub fn replica_type(&self) -> &'static str {
        self.inner.replica_type
    }

    /// URL-like description for logs, e.g. `s3://bucket/path` — never includes credentials.
    pub fn describe(&self) -> String {
        self.inner.description.clone()
    }

    /// The key prefix under which `generations/` lives.
    pub fn root(&self) -> &str {
        &self.inner.root
    }

    /// The underlying store (for tests that inspect objects directly).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner.store)
    }

    pub fn stats(&self) -> &StorageStats {
        &self.inner.stats
    }
}
