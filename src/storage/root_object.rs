//! One small object at the replica root, beside `generations/` and `ltx/` (such as walstream's
//! owner record, `replica::owner`): a whole-body GET with a size limit and a PUT that can refuse
//! to overwrite.
//!
//! What must stay true:
//! - the name is one plain path segment that no replica listing parses (never `generations`,
//!   `ltx` or anything with a `/`), so Litestream and walstream's listings ignore the object;
//! - root objects are never age-encrypted (they are metadata, not database content), so any
//!   reader can explain a refusal without the replica's keys;
//! - a GET reads at most [`MAX_ROOT_OBJECT_BYTES`] (checked against the object's size before the
//!   body is read), a missing object is `Ok(None)`;
//! - a create-only PUT uses the store's conditional create (`If-None-Match: *` on S3 and Azure,
//!   `ifGenerationMatch=0` on GCS, a hard link on the file backend); a store that does not
//!   implement it gets a plain PUT instead.

use bytes::Bytes;
use object_store::{GetOptions, ObjectStore, PutMode, PutOptions, PutPayload};

use super::client::parse_path;
use super::retry::{ANSWER_TIMEOUT, AttemptError, bounded, retry};
use super::{Op, ReplicaClient, StorageError, layout};

/// The largest root object a GET accepts.
pub const MAX_ROOT_OBJECT_BYTES: u64 = 64 * 1024;

/// What a PUT of a root object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootPut {
    /// The object now holds the body.
    Stored,
    /// Create-only and the object already existed: nothing was written.
    Exists,
}

impl ReplicaClient {
    /// The body of root object `name`, `None` when it does not exist.
    pub async fn get_root_object(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        let key = self.root_key(name)?;
        let path = parse_path(&key)?;
        let store = self.object_store();
        let result = retry(self.retry_policy(), self.stats(), Op::Get, &key, || {
            bounded("GET", ANSWER_TIMEOUT, async {
                let got = store.get_opts(&path, GetOptions::default()).await?;
                if got.meta.size > MAX_ROOT_OBJECT_BYTES {
                    let size = got.meta.size;
                    return Err(AttemptError::Fatal(too_large(&key, size)));
                }
                Ok(got.bytes().await?)
            })
        })
        .await;
        match result {
            Ok(body) => {
                self.stats().record_op(Op::Get);
                self.stats().record_bytes(Op::Get, body.len() as u64);
                Ok(Some(body))
            }
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `body` as root object `name`; with `create_only`, only when it does not exist yet
    /// ([`RootPut::Exists`] otherwise, nothing written).
    pub async fn put_root_object(
        &self,
        name: &str,
        body: Bytes,
        create_only: bool,
    ) -> Result<RootPut, StorageError> {
        let key = self.root_key(name)?;
        let path = parse_path(&key)?;
        let size = body.len() as u64;
        let limit = super::upload::step_timeout(body.len());
        let outcome = retry(self.retry_policy(), self.stats(), Op::Put, &key, || {
            bounded(
                "PUT",
                limit,
                self.put_root_attempt(&path, &body, create_only),
            )
        })
        .await?;
        if outcome == RootPut::Stored {
            self.stats().record_op(Op::Put);
            self.stats().record_bytes(Op::Put, size);
            self.apply_local_modes(&key);
        }
        Ok(outcome)
    }

    /// One attempt of [`Self::put_root_object`]'s PUT.
    async fn put_root_attempt(
        &self,
        path: &object_store::path::Path,
        body: &Bytes,
        create_only: bool,
    ) -> Result<RootPut, AttemptError> {
        let store = self.object_store();
        let payload = PutPayload::from(body.clone());
        if !create_only {
            store.put_opts(path, payload, PutOptions::default()).await?;
            return Ok(RootPut::Stored);
        }
        let opts = PutOptions::from(PutMode::Create);
        match store.put_opts(path, payload, opts).await {
            Ok(_) => Ok(RootPut::Stored),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(RootPut::Exists),
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => {
                let payload = PutPayload::from(body.clone());
                store.put_opts(path, payload, PutOptions::default()).await?;
                Ok(RootPut::Stored)
            }
            Err(e) => Err(AttemptError::Store(e)),
        }
    }

    /// `<root>/<name>` for a plain object name that no listing parses.
    fn root_key(&self, name: &str) -> Result<String, StorageError> {
        let plain = !name.is_empty()
            && !name.contains('/')
            && name != "."
            && name != ".."
            && name != layout::GENERATIONS
            && name != "ltx";
        if !plain {
            return Err(StorageError::Config(format!(
                "root object name {name:?} is not a plain file name"
            )));
        }
        Ok(layout::join(&[self.root(), name]))
    }
}

fn too_large(key: &str, size: u64) -> StorageError {
    StorageError::Io {
        op: Op::Get,
        key: key.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("object is {size} bytes, more than the {MAX_ROOT_OBJECT_BYTES} bytes allowed"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;
    use crate::config::ReplicaTarget;

    fn memory(root: &str) -> ReplicaClient {
        ReplicaClient::with_store(Arc::new(InMemory::new()), root, "s3")
    }

    #[tokio::test]
    async fn missing_then_created_once_then_overwritten() {
        let c = memory("app/db");
        assert_eq!(c.get_root_object("owner.json").await.expect("get"), None);
        let put = |b: &'static [u8], create| {
            c.put_root_object("owner.json", Bytes::from_static(b), create)
        };
        assert_eq!(put(b"one", true).await.expect("create"), RootPut::Stored);
        assert_eq!(put(b"two", true).await.expect("exists"), RootPut::Exists);
        let got = c.get_root_object("owner.json").await.expect("get");
        assert_eq!(got.as_deref(), Some(&b"one"[..]));
        assert_eq!(
            put(b"three", false).await.expect("overwrite"),
            RootPut::Stored
        );
        let got = c.get_root_object("owner.json").await.expect("get");
        assert_eq!(got.as_deref(), Some(&b"three"[..]));
        let key = object_store::path::Path::from("app/db/owner.json");
        assert!(
            c.object_store().head(&key).await.is_ok(),
            "stored at the root"
        );
    }

    #[tokio::test]
    async fn an_oversized_object_is_refused_before_its_body_is_read() {
        let c = memory("");
        let big = Bytes::from(vec![b'x'; MAX_ROOT_OBJECT_BYTES as usize + 1]);
        c.put_root_object("owner.json", big, false)
            .await
            .expect("put");
        let err = c
            .get_root_object("owner.json")
            .await
            .expect_err("too large");
        assert!(
            err.to_string().contains("more than the 65536 bytes"),
            "{err}"
        );
        assert!(err.to_string().contains("owner.json"), "{err}");
    }

    #[tokio::test]
    async fn names_that_a_listing_could_parse_are_refused() {
        let c = memory("x");
        for name in ["", "generations", "ltx", "a/b", ".."] {
            assert!(c.get_root_object(name).await.is_err(), "{name:?}");
        }
    }

    #[tokio::test]
    async fn file_replica_creates_once_and_generations_stay_the_only_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replica = dir.path().join("replica");
        let c = ReplicaClient::new(&ReplicaTarget::File {
            path: replica.clone(),
        })
        .expect("client");
        assert_eq!(c.get_root_object("owner.json").await.expect("get"), None);
        assert!(!replica.exists(), "a read creates nothing");
        let body = Bytes::from_static(b"{}");
        assert_eq!(
            c.put_root_object("owner.json", body.clone(), true)
                .await
                .expect("put"),
            RootPut::Stored
        );
        assert_eq!(
            c.put_root_object("owner.json", body, true)
                .await
                .expect("put"),
            RootPut::Exists
        );
        assert!(replica.join("owner.json").is_file());
        assert!(c.generations().await.expect("generations").is_empty());
        assert!(c.database_roots(None).await.expect("roots").is_empty());
    }
}
