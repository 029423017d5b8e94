//! Writing and deleting Litestream v0.5 (LTX) files of a replica (spec §1, §7.2): each file goes
//! to its level's key (the same keys [`super::ltx_list`] lists) and carries its storage
//! timestamp where v0.5.17 reads it.
//!
//! What must stay true:
//! - The storage timestamp equals the LTX header timestamp: file backend = the file's mtime (set
//!   after the upload's rename, as Litestream does); S3 and GCS = user metadata
//!   `litestream-timestamp`; Azure = `litestreamtimestamp`; the value is UTC RFC 3339 in Go's
//!   `RFC3339Nano` form (fraction with trailing zeros dropped, none when whole seconds).
//! - Uploads go through the same retried, counted, never-half-visible path as v0.3 objects; LTX
//!   objects are never age-encrypted (v0.5 has no client-side encryption: refused here).
//! - Deleting a missing file is not an error.

use std::io;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;
use object_store::{Attribute, Attributes};

use super::ltx_list::{META_TIMESTAMP, META_TIMESTAMP_AZURE};
use super::{LtxFileInfo, Op, ReplicaClient, StorageError};

impl ReplicaClient {
    /// Stores one LTX file at `level` named `min-max.ltx` with storage timestamp `timestamp_ms`
    /// (the header's). `make_body` is called once per attempt. Returns what a listing will show.
    pub async fn put_ltx<F, S>(
        &self,
        level: u8,
        min_txid: u64,
        max_txid: u64,
        timestamp_ms: i64,
        make_body: F,
    ) -> Result<LtxFileInfo, StorageError>
    where
        F: Fn() -> S,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let key = self.ltx_key(level, min_txid, max_txid);
        if self.age().encrypts() {
            return Err(StorageError::Config(format!(
                "{key}: LTX files are never encrypted (Litestream v0.5 has no age support)"
            )));
        }
        let created_at = time_of(timestamp_ms);
        let attributes = self.timestamp_attributes(&created_at);
        let size = self
            .put_object_with(key.clone(), &attributes, make_body)
            .await?;
        self.set_local_mtime(&key, created_at).await?;
        Ok(LtxFileInfo {
            level,
            min_txid,
            max_txid,
            size,
            created_at,
        })
    }

    /// Deletes LTX files (missing ones are fine), oldest TXIDs first and one at a time where
    /// the backend has no batch request: a deletion cut short (a crash, an outage) leaves each
    /// level's newest files, never a hole between kept files.
    pub async fn delete_ltx(&self, files: &[LtxFileInfo]) -> Result<(), StorageError> {
        let mut files = files.to_vec();
        files.sort_by_key(|f| (f.max_txid, f.min_txid, f.level));
        let keys: Vec<String> = files
            .iter()
            .map(|f| self.ltx_key(f.level, f.min_txid, f.max_txid))
            .collect();
        self.delete_keys_in_order(keys).await
    }

    /// The metadata carrying the timestamp on this backend (none on the file backend).
    fn timestamp_attributes(&self, at: &DateTime<Utc>) -> Attributes {
        let mut attrs = Attributes::new();
        let key = match self.replica_type() {
            "abs" => META_TIMESTAMP_AZURE,
            "file" => return attrs,
            _ => META_TIMESTAMP,
        };
        attrs.insert(Attribute::Metadata(key.into()), go_rfc3339_nano(at).into());
        attrs
    }

    /// File backend: the stored file's mtime becomes `at`.
    async fn set_local_mtime(&self, key: &str, at: DateTime<Utc>) -> Result<(), StorageError> {
        let Some(root) = self.local_root() else {
            return Ok(());
        };
        let path = root.join(key);
        let when = SystemTime::from(at);
        let res = crate::rt::spawn_blocking(move || {
            std::fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(when)
        })
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join)));
        res.map_err(|source| {
            self.stats().record_error(StorageError::Io {
                op: Op::Put,
                key: key.to_string(),
                source,
            })
        })
    }
}

/// `ms` since the Unix epoch as a UTC time (negative values clamp to the epoch).
pub fn time_of(ms: i64) -> DateTime<Utc> {
    let since = Duration::from_millis(ms.max(0) as u64);
    DateTime::<Utc>::from(SystemTime::UNIX_EPOCH + since)
}

/// Go's `time.RFC3339Nano` of a UTC time: `2026-11-22T03:27:42.869Z`, `…:42.86Z`, `…:42Z`.
pub fn go_rfc3339_nano(at: &DateTime<Utc>) -> String {
    let secs = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = at.timestamp_subsec_nanos();
    if nanos == 0 {
        return format!("{secs}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{secs}.{}Z", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Timestamps;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    fn body(
        bytes: &'static [u8],
    ) -> impl Fn() -> futures::stream::Iter<std::vec::IntoIter<io::Result<Bytes>>> {
        move || futures::stream::iter(vec![Ok(Bytes::from_static(bytes))])
    }

    #[test]
    fn timestamps_in_go_form() {
        assert_eq!(
            go_rfc3339_nano(&time_of(1_795_318_062_869)),
            "2026-11-22T03:27:42.869Z"
        );
        assert_eq!(
            go_rfc3339_nano(&time_of(1_795_318_062_860)),
            "2026-11-22T03:27:42.86Z"
        );
        assert_eq!(
            go_rfc3339_nano(&time_of(1_795_318_062_000)),
            "2026-11-22T03:27:42Z"
        );
    }

    #[tokio::test]
    async fn metadata_timestamps_list_back_per_backend() {
        for kind in ["s3", "gcs", "abs"] {
            let store = Arc::new(InMemory::new());
            let client = ReplicaClient::with_store(store, "db", kind);
            let info = client
                .put_ltx(1, 2, 5, 1_795_318_062_869, body(b"ltx"))
                .await
                .expect("put");
            assert_eq!(info.size, 3);
            let listed = client
                .ltx_files(1, Timestamps::Metadata)
                .await
                .expect("list");
            assert_eq!(listed, vec![info.clone()], "{kind}");
            client
                .delete_ltx(std::slice::from_ref(&info))
                .await
                .expect("delete");
            client.delete_ltx(&[info]).await.expect("delete again");
            assert!(
                client
                    .ltx_files(1, Timestamps::Listing)
                    .await
                    .expect("list")
                    .is_empty()
            );
        }
    }

    #[tokio::test]
    async fn file_backend_sets_the_mtime() {
        let tmp = tempfile::tempdir().expect("tmp");
        let target = crate::config::ReplicaTarget::File {
            path: tmp.path().join("replica"),
        };
        let client = ReplicaClient::new(&target).expect("client");
        let info = client
            .put_ltx(0, 1, 1, 1_795_318_062_869, body(b"x"))
            .await
            .expect("put");
        let path = tmp
            .path()
            .join("replica/ltx/0/0000000000000001-0000000000000001.ltx");
        let mtime = std::fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        assert_eq!(DateTime::<Utc>::from(mtime), info.created_at);
        let listed = client
            .ltx_files(0, Timestamps::Listing)
            .await
            .expect("list");
        assert_eq!(listed, vec![info]);
    }
}
