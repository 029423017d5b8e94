//! Replica storage over `object_store`: the [`ReplicaClient`] lists, uploads, downloads and deletes
//! Litestream v0.3.13 replica objects (spec §1, §10) on file, S3, GCS and Azure Blob backends, and
//! lists, reads, writes and deletes Litestream v0.5 LTX files (`ltx_list.rs`: per-backend level
//! layout, v0.5.17's name filter and per-file timestamps; `ltx_write.rs`: uploads carrying those
//! timestamps).
//!
//! What must stay true:
//! - Keys come only from [`layout`]; listings return only names that parse there (foreign files,
//!   upper-case hex, `*.tmp`, staging files are skipped), sorted by position.
//! - `CreatedAt` is the storage timestamp Litestream uses (spec §1.6): file mtime (ns, read with
//!   `std::fs` like Litestream's `os.ReadDir`), S3 `LastModified` (1 s), GCS XML-listing
//!   `LastModified` (= `updated`, which equals `timeCreated` for objects never modified after
//!   upload, as replica objects are), Azure `Creation-Time` (our own List Blobs request,
//!   [`azure_list`], since `object_store` only exposes `Last-Modified`, which can be a second
//!   later).
//! - An explicit object-store path with a leading `/` (Litestream keeps it in the key, spec §1.1)
//!   cannot be represented by `object_store` paths (no empty first segment): client creation
//!   refuses it with [`StorageError::Config`].
//! - The file backend touches the file system only when used: creating a client creates nothing,
//!   listing a missing directory is empty, uploads create directories.
//! - Uploads are streamed (single PUT up to 5 MiB, 5 MiB multipart parts above) and are never
//!   visible half-written; every call is retried through [`retry::retry`] and counted in
//!   [`StorageStats`].
//! - Errors name the operation and object key; credentials never appear in [`ReplicaClient::describe`]
//!   or in errors produced here.
//! - [`ReplicaClient::database_roots`] (`databases.rs`) finds the per-database replica roots of a
//!   directory entry with one delimiter listing per directory above them.
//! - [`ReplicaClient::get_root_object`] / [`ReplicaClient::put_root_object`] (`root_object.rs`)
//!   read and write one small, never encrypted object at the replica root (the owner record);
//!   no listing parses its name.
//! - No SQLite knowledge and no reading of configuration environment variables here (cloud SDK
//!   default credential chains are used through the builders' `from_env`).

pub mod age;
mod azure_list;
mod backend;
mod client;
mod databases;
pub mod fault;
pub mod layout;
mod lazy;
mod listing;
mod local_modes;
mod local_read;
mod ltx_list;
mod ltx_write;
pub mod retry;
mod root_object;
mod stats;
mod upload;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::ObjectStore;

pub use age::{AgeError, AgeKeys};
pub use azure_list::{ListFormatError, ListStatusError};
pub use ltx_list::{HEAD_CONCURRENCY, LtxFileInfo, SNAPSHOT_LEVEL, Timestamps};
pub use ltx_write::{go_rfc3339_nano, time_of};
pub use retry::RetryPolicy;
pub use root_object::{MAX_ROOT_OBJECT_BYTES, RootPut};
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
    /// An object that cannot be read with the replica's age settings (spec §9).
    #[error("{key}: {source}")]
    Age { key: String, source: AgeError },
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
    inner: Arc<Parts>,
    /// Counters of every call, shared by the clones (a wrapped store starts fresh ones).
    stats: Arc<StorageStats>,
    policy: RetryPolicy,
    /// age keys: recipients encrypt uploads, identities decrypt downloads (spec §9).
    age: AgeKeys,
    /// Entries per Azure List Blobs page (`maxresults`); `None` = the service default (5000).
    list_page_size: Option<u32>,
    /// The database whose modes file-replica objects get (see [`local_modes`]).
    modes_from: Option<Arc<PathBuf>>,
}

/// How a client lists directories.
#[derive(Debug, Clone)]
enum Lister {
    /// `ObjectStore::list_with_delimiter` (S3, GCS, and any store given to the client).
    Store,
    /// `std::fs::read_dir` of `<replica dir>/<key>` (file backend).
    Local,
    /// List Blobs with `Creation-Time` (Azure).
    Azure(Arc<azure_list::AzureLister>),
}

/// Where and how a client stores: what [`ReplicaClient::from_parts`] is built from, shared by
/// its clones.
#[derive(Debug)]
struct Parts {
    store: Arc<dyn ObjectStore>,
    /// Key prefix given to [`layout`] (empty for the file backend, whose store is a prefix store
    /// at the replica directory).
    root: String,
    replica_type: &'static str,
    description: String,
    lister: Lister,
    /// Replica directory of the file backend (local listings, removing emptied generation
    /// directories).
    local_root: Option<PathBuf>,
}

impl ReplicaClient {
    /// Builds the client for a configured replica target. Nothing is created or contacted yet;
    /// an object-store path starting with `/` is refused ([`StorageError::Config`]).
    pub fn new(target: &crate::config::ReplicaTarget) -> Result<Self, StorageError> {
        let b = backend::build(target)?;
        let parts = Parts {
            store: b.store,
            root: b.root,
            replica_type: target.type_name(),
            description: b.description,
            lister: b.lister,
            local_root: b.local_root,
        };
        Ok(Self::from_parts(parts))
    }

    /// The client of a configured replica: its target plus its age keys (spec §9).
    pub fn for_replica(replica: &crate::config::ReplicaConfig) -> Result<Self, StorageError> {
        let keys = AgeKeys::from_config(&replica.age)
            .map_err(|e| StorageError::Config(format!("replica {:?}: {e}", replica.name)))?;
        Ok(Self::new(&replica.target)?.with_age(keys))
    }

    /// A client over any store (tests, fault injection). `root` is the key prefix.
    pub fn with_store(store: Arc<dyn ObjectStore>, root: &str, replica_type: &'static str) -> Self {
        let description = format!("{replica_type}:{store}/{root}");
        Self::from_parts(Parts {
            store,
            root: root.to_string(),
            replica_type,
            description,
            lister: Lister::Store,
            local_root: None,
        })
    }

    /// The same replica seen through `wrap(store)` (e.g. a [`fault::FaultInjectingStore`]), with
    /// fresh counters and the same retry policy. Listings then go through the wrapped store too
    /// (`ObjectStore::list_with_delimiter`, so Azure reports `Last-Modified` there).
    pub fn wrap_store(
        &self,
        wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Self {
        let i = &self.inner;
        let parts = Parts {
            store: wrap(Arc::clone(&i.store)),
            root: i.root.clone(),
            replica_type: i.replica_type,
            description: i.description.clone(),
            lister: Lister::Store,
            local_root: i.local_root.clone(),
        };
        let mut wrapped = Self::from_parts(parts)
            .with_retry_policy(self.policy.clone())
            .with_age(self.age.clone());
        wrapped.list_page_size = self.list_page_size;
        wrapped.modes_from = self.modes_from.clone();
        wrapped
    }

    fn from_parts(p: Parts) -> Self {
        Self {
            inner: Arc::new(p),
            stats: Arc::default(),
            policy: RetryPolicy::default(),
            age: AgeKeys::default(),
            list_page_size: None,
            modes_from: None,
        }
    }

    /// Limits Azure listings to `entries` per List Blobs request, so tests can exercise paging
    /// without thousands of blobs. Other backends ignore it.
    #[doc(hidden)]
    pub fn with_list_page_size(mut self, entries: u32) -> Self {
        self.list_page_size = Some(entries);
        self
    }

    /// Replaces the retry policy of this handle (clones made afterwards inherit it).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Replaces the age keys of this handle (clones made afterwards inherit them).
    pub fn with_age(mut self, keys: AgeKeys) -> Self {
        self.age = keys;
        self
    }

    /// File backend: objects written from now on get `db`'s file mode and their directories the
    /// mode of `db`'s directory, like Litestream's file replica. Other backends ignore it.
    pub fn with_modes_from(mut self, db: &std::path::Path) -> Self {
        self.modes_from = Some(Arc::new(db.to_path_buf()));
        self
    }

    pub fn age(&self) -> &AgeKeys {
        &self.age
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
        &self.stats
    }

    /// File backend: the absolute replica directory.
    pub(crate) fn local_root(&self) -> Option<&std::path::Path> {
        self.inner.local_root.as_deref()
    }
}

/// Deterministic pseudo-random bytes (xorshift) for tests, so chunk mix-ups cannot go unnoticed.
#[cfg(test)]
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}
