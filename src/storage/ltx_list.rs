//! Litestream v0.5 (LTX) objects of a replica (spec §1): where each level lives per backend,
//! listing a level the way v0.5.17 does, per-file storage timestamps, and opening one file.
//!
//! Layout: file, GCS and Azure keep level `L` in `<root>/ltx/<L>/` (decimal); S3 keeps it in
//! `<root>/<LLLL>/` (4 lowercase hex digits, no `ltx/`). Names are `MIN-MAX.ltx`, both TXIDs 16
//! lowercase hex digits; anything else in a level directory is skipped, as v0.5.17 does.
//!
//! What must stay true (the timestamp v0.5.17 gives each file, [`LtxFileInfo::created_at`]):
//! - file: the mtime (Litestream sets it to the LTX header time);
//! - S3: `LastModified` from the listing, or with [`Timestamps::Metadata`] (what v0.5.17's
//!   restore asks for when `-timestamp` is given) the user metadata `litestream-timestamp`,
//!   read with one HEAD per object, falling back to `LastModified` when it is missing;
//! - GCS: always the `litestream-timestamp` metadata (v0.5.17 reads it from its listing), else
//!   the listing time; Azure: always the `litestreamtimestamp` metadata, else the listing time.
//!   `object_store` listings carry no user metadata, so those come from one HEAD per object
//!   (at most [`HEAD_CONCURRENCY`] at once).
//! - Results are sorted by (min TXID, max TXID), which is v0.5.17's listing order.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{Attribute, GetOptions};

use super::client::parse_path;
use super::retry::{ANSWER_TIMEOUT, bounded, retry};
use super::{Op, ReplicaClient, StorageError, layout};
use crate::ltx;

/// The snapshot level.
pub const SNAPSHOT_LEVEL: u8 = 9;
/// HEAD requests in flight when reading per-object metadata.
pub const HEAD_CONCURRENCY: usize = 16;
/// Metadata key of the LTX timestamp on S3 and GCS.
pub(super) const META_TIMESTAMP: &str = "litestream-timestamp";
/// Metadata key on Azure (no hyphens allowed there).
pub(super) const META_TIMESTAMP_AZURE: &str = "litestreamtimestamp";

/// One LTX file of a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtxFileInfo {
    pub level: u8,
    pub min_txid: u64,
    pub max_txid: u64,
    /// Stored size in bytes.
    pub size: u64,
    /// The storage timestamp v0.5.17 uses (see the module rules).
    pub created_at: DateTime<Utc>,
}

impl LtxFileInfo {
    /// `MIN-MAX.ltx`.
    pub fn file_name(&self) -> String {
        ltx::file_name(self.min_txid, self.max_txid)
    }
}

/// Which timestamp an S3 listing reports (other backends ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamps {
    /// `LastModified` from the listing (v0.5.17's `ltx` command, latest and `-txid` restores).
    Listing,
    /// The `litestream-timestamp` metadata (v0.5.17's `-timestamp` restore).
    Metadata,
}

impl ReplicaClient {
    /// The directory key of `level`.
    pub fn ltx_level_dir(&self, level: u8) -> String {
        if self.replica_type() == "s3" {
            layout::join(&[self.root(), &format!("{level:04x}")])
        } else {
            layout::join(&[self.root(), "ltx", &level.to_string()])
        }
    }

    /// The object key of one LTX file.
    pub fn ltx_key(&self, level: u8, min_txid: u64, max_txid: u64) -> String {
        layout::join(&[
            &self.ltx_level_dir(level),
            &ltx::file_name(min_txid, max_txid),
        ])
    }

    /// The LTX files of `level`, sorted by (min, max) TXID.
    pub async fn ltx_files(
        &self,
        level: u8,
        timestamps: Timestamps,
    ) -> Result<Vec<LtxFileInfo>, StorageError> {
        let listing = self.list_dir(&self.ltx_level_dir(level)).await?;
        let mut out: Vec<LtxFileInfo> = listing
            .files
            .into_iter()
            .filter_map(|f| {
                let (min_txid, max_txid) = ltx::parse_file_name(&f.name)?;
                Some(LtxFileInfo {
                    level,
                    min_txid,
                    max_txid,
                    size: f.size,
                    created_at: f.created_at,
                })
            })
            .collect();
        out.sort_by_key(|f| (f.min_txid, f.max_txid));
        if let Some(key) = self.metadata_key(timestamps) {
            self.fill_metadata_times(&mut out, key).await?;
        }
        Ok(out)
    }

    /// True if any level 0..=9 holds an LTX file.
    pub async fn has_ltx_files(&self) -> Result<bool, StorageError> {
        for level in (0..=SNAPSHOT_LEVEL).rev() {
            if !self.ltx_files(level, Timestamps::Listing).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Streams the stored bytes of one LTX file (retried open, counted like every GET).
    pub async fn open_ltx(
        &self,
        info: &LtxFileInfo,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        self.open(self.ltx_key(info.level, info.min_txid, info.max_txid))
            .await
    }

    /// Which metadata key holds the timestamp for this backend, if it is to be read.
    fn metadata_key(&self, timestamps: Timestamps) -> Option<&'static str> {
        match self.replica_type() {
            "s3" if timestamps == Timestamps::Metadata => Some(META_TIMESTAMP),
            "gcs" => Some(META_TIMESTAMP),
            "abs" => Some(META_TIMESTAMP_AZURE),
            _ => None,
        }
    }

    async fn fill_metadata_times(
        &self,
        files: &mut [LtxFileInfo],
        meta_key: &'static str,
    ) -> Result<(), StorageError> {
        let keys: Vec<String> = files
            .iter()
            .map(|f| self.ltx_key(f.level, f.min_txid, f.max_txid))
            .collect();
        let times: Vec<Result<Option<DateTime<Utc>>, StorageError>> = futures::stream::iter(keys)
            .map(|key| async move { self.metadata_time(key, meta_key).await })
            .buffered(HEAD_CONCURRENCY)
            .collect()
            .await;
        for (f, t) in files.iter_mut().zip(times) {
            if let Some(t) = t? {
                f.created_at = t;
            }
        }
        Ok(())
    }

    /// The RFC 3339 timestamp in the object's user metadata `meta_key`, if present and valid.
    async fn metadata_time(
        &self,
        key: String,
        meta_key: &'static str,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let path = parse_path(&key)?;
        let store = self.inner.store.as_ref();
        let result = retry(&self.policy, self.stats(), Op::Get, &key, || {
            let opts = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            bounded("HEAD", ANSWER_TIMEOUT, store.get_opts(&path, opts))
        })
        .await?;
        self.stats().record_op(Op::Get);
        let value = result
            .attributes
            .get(&Attribute::Metadata(meta_key.into()))
            .map(|v| v.as_ref().to_string());
        Ok(value.and_then(|v| {
            DateTime::parse_from_rfc3339(&v)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    fn client(kind: &'static str) -> (ReplicaClient, Arc<InMemory>) {
        let store = Arc::new(InMemory::new());
        (ReplicaClient::with_store(store.clone(), "db", kind), store)
    }

    #[test]
    fn level_directories_per_backend() {
        let (s3, _) = client("s3");
        assert_eq!(s3.ltx_level_dir(9), "db/0009");
        assert_eq!(
            s3.ltx_key(0, 1, 2),
            "db/0000/0000000000000001-0000000000000002.ltx"
        );
        let (gcs, _) = client("gcs");
        assert_eq!(gcs.ltx_level_dir(9), "db/ltx/9");
        let (file, _) = client("file");
        assert_eq!(file.ltx_level_dir(0), "db/ltx/0");
    }

    #[tokio::test]
    async fn lists_only_exact_names_sorted_with_metadata_times() {
        let (s3, store) = client("s3");
        let names = [
            "0000000000000005-0000000000000007.ltx",
            "0000000000000001-0000000000000004.ltx",
            "0000000000000001-000000000000000A.ltx",
            "0000000000000008-0000000000000008.ltx.tmp",
            "junk",
        ];
        for name in names {
            let path = object_store::path::Path::from(format!("db/0001/{name}"));
            let mut attrs = object_store::Attributes::new();
            attrs.insert(
                Attribute::Metadata(META_TIMESTAMP.into()),
                "2026-01-02T03:04:05.678Z".into(),
            );
            let opts = object_store::PutOptions {
                attributes: attrs,
                ..Default::default()
            };
            store
                .put_opts(&path, PutPayload::from_static(b"x"), opts)
                .await
                .expect("put");
        }
        use object_store::ObjectStore;
        let listed = s3.ltx_files(1, Timestamps::Listing).await.expect("list");
        let ranges: Vec<(u64, u64)> = listed.iter().map(|f| (f.min_txid, f.max_txid)).collect();
        assert_eq!(ranges, vec![(1, 4), (5, 7)]);
        assert_ne!(listed[0].created_at.timestamp_millis(), 1_767_323_045_678);
        let meta = s3.ltx_files(1, Timestamps::Metadata).await.expect("list");
        assert_eq!(meta[0].created_at.timestamp_millis(), 1_767_323_045_678);
        assert!(s3.has_ltx_files().await.expect("has"));
        let (empty, _) = client("s3");
        assert!(!empty.has_ltx_files().await.expect("has"));
    }
}
