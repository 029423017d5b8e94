//! The [`ReplicaClient`] operations: listing generations/snapshots/segments, uploading, opening
//! and deleting replica objects.
//!
//! What must stay true:
//! - Generation ids passed in are validated before any key is built from them.
//! - Listings use one delimiter listing per directory (like Litestream; Azure: one request per
//!   page, following `NextMarker`) and keep only names the layout parses; results are sorted by
//!   (index, offset). Reads and listings never create anything (a mistyped file replica path
//!   lists as empty); only uploads create directories.
//! - Deleting a missing object is not an error (deletes are idempotent).
//! - Uploads are encrypted and downloads decrypted by [`age`] with the client's keys (spec §9);
//!   PUT/GET byte counts are of the stored (encrypted) bytes, like Litestream's.
//! - Downloads count one GET and the bytes yielded; local files (file backend) are streamed in
//!   1 MiB chunks by [`local_read`], remote bodies as the store delivers them.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{Attributes, GetOptions, GetResultPayload, ObjectMeta};

use super::azure_list::AzureLister;
use super::listing::{self, DirListing, ListedFile};
use super::local_read;
use super::retry::{ANSWER_TIMEOUT, LISTING_TIMEOUT, bounded, classify, retry};
use super::{
    Lister, Op, ReplicaClient, SegmentInfo, SnapshotInfo, StorageError, age, layout, upload,
};

/// Keys per delete request (S3 DeleteObjects accepts at most 1000, like Litestream's batches).
const DELETE_BATCH: usize = 1000;

impl ReplicaClient {
    /// Generation ids present in the replica (directories/prefixes named `^[0-9a-f]{16}$`), sorted.
    pub async fn generations(&self) -> Result<Vec<String>, StorageError> {
        let listing = self.list_dir(&layout::generations_dir(self.root())).await?;
        let mut ids: Vec<String> = listing
            .dirs
            .into_iter()
            .filter(|name| layout::parse_generation(name).is_some())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Snapshots of `generation`, sorted by index.
    pub async fn snapshots(&self, generation: &str) -> Result<Vec<SnapshotInfo>, StorageError> {
        let dir = layout::snapshots_dir(self.root(), generation);
        let parse = |f: ListedFile| {
            Some(SnapshotInfo {
                generation: generation.to_string(),
                index: layout::parse_snapshot_name(&f.name)?,
                size: f.size,
                created_at: f.created_at,
            })
        };
        self.generation_files(generation, &dir, parse, |s| s.index)
            .await
    }

    /// WAL segments of `generation`, sorted by (index, offset).
    pub async fn wal_segments(&self, generation: &str) -> Result<Vec<SegmentInfo>, StorageError> {
        let dir = layout::wal_dir(self.root(), generation);
        let parse = |f: ListedFile| {
            let (index, offset) = layout::parse_segment_name(&f.name)?;
            Some(SegmentInfo {
                generation: generation.to_string(),
                index,
                offset,
                size: f.size,
                created_at: f.created_at,
            })
        };
        self.generation_files(generation, &dir, parse, |s| (s.index, s.offset))
            .await
    }

    /// The files of directory `dir` of `generation` that `parse` names, sorted by `key`.
    async fn generation_files<T, K: Ord>(
        &self,
        generation: &str,
        dir: &str,
        parse: impl Fn(ListedFile) -> Option<T>,
        key: impl Fn(&T) -> K,
    ) -> Result<Vec<T>, StorageError> {
        check_generation(generation)?;
        let listing = self.list_dir(dir).await?;
        let mut out: Vec<T> = listing.files.into_iter().filter_map(parse).collect();
        out.sort_by_key(key);
        Ok(out)
    }

    /// Uploads a snapshot (body already LZ4-framed; encrypted here when the client has age
    /// recipients). `make_body` is called once per attempt. Returns the stored size in bytes.
    pub async fn put_snapshot<F, S>(
        &self,
        generation: &str,
        index: u32,
        make_body: F,
    ) -> Result<u64, StorageError>
    where
        F: Fn() -> S,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        check_generation(generation)?;
        let key = layout::snapshot_key(self.root(), generation, index);
        self.put_object(key, make_body).await
    }

    /// Uploads a WAL segment (body already LZ4-framed). Same contract as [`Self::put_snapshot`].
    pub async fn put_segment<F, S>(
        &self,
        generation: &str,
        index: u32,
        offset: u64,
        make_body: F,
    ) -> Result<u64, StorageError>
    where
        F: Fn() -> S,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        check_generation(generation)?;
        let key = layout::segment_key(self.root(), generation, index, offset);
        self.put_object(key, make_body).await
    }

    /// Streams a snapshot's stored (compressed) bytes, decrypted when age identities are
    /// configured. Age refusals ([`StorageError::Age`]) are reported here, before any body byte.
    pub async fn open_snapshot(
        &self,
        generation: &str,
        index: u32,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        check_generation(generation)?;
        self.open(layout::snapshot_key(self.root(), generation, index))
            .await
    }

    /// Streams a WAL segment's stored (compressed) bytes; same age rules as [`Self::open_snapshot`].
    pub async fn open_segment(
        &self,
        generation: &str,
        index: u32,
        offset: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        check_generation(generation)?;
        self.open(layout::segment_key(self.root(), generation, index, offset))
            .await
    }

    /// Deletes every object under `<root>/generations/<generation>/` (foreign ones too, like
    /// Litestream) and, on the file backend, the generation directory itself.
    pub async fn delete_generation(&self, generation: &str) -> Result<(), StorageError> {
        check_generation(generation)?;
        let dir = layout::generation_dir(self.root(), generation);
        let keys = self.list_all(&dir).await?;
        self.delete_keys(keys).await?;
        self.remove_local_dir(&dir).await
    }

    pub async fn delete_snapshots(&self, items: &[SnapshotInfo]) -> Result<(), StorageError> {
        let mut keys = Vec::with_capacity(items.len());
        for s in items {
            check_generation(&s.generation)?;
            keys.push(layout::snapshot_key(self.root(), &s.generation, s.index));
        }
        self.delete_keys(keys).await
    }

    pub async fn delete_segments(&self, items: &[SegmentInfo]) -> Result<(), StorageError> {
        let mut keys = Vec::with_capacity(items.len());
        for s in items {
            check_generation(&s.generation)?;
            keys.push(layout::segment_key(
                self.root(),
                &s.generation,
                s.index,
                s.offset,
            ));
        }
        self.delete_keys(keys).await
    }

    async fn put_object<F, S>(&self, key: String, make_body: F) -> Result<u64, StorageError>
    where
        F: Fn() -> S,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        self.put_object_with(key, &Attributes::new(), make_body)
            .await
    }

    /// [`Self::put_object`] with user metadata (`attributes`; the file backend takes none).
    pub(super) async fn put_object_with<F, S>(
        &self,
        key: String,
        attributes: &Attributes,
        make_body: F,
    ) -> Result<u64, StorageError>
    where
        F: Fn() -> S,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let path = parse_path(&key)?;
        let store = self.inner.store.as_ref();
        let parts = match self.inner.local_root {
            Some(_) => upload::Parts::LOCAL,
            None => upload::Parts::REMOTE,
        };
        let size = retry(&self.policy, self.stats(), Op::Put, &key, || {
            let body = age::encrypt_body(make_body().boxed(), &self.age);
            upload::upload(store, &path, &key, body, parts, attributes)
        })
        .await?;
        self.stats().record_op(Op::Put);
        self.stats().record_bytes(Op::Put, size);
        self.apply_local_modes(&key);
        Ok(size)
    }

    /// File backend with [`Self::with_modes_from`]: gives the object at `key` (and its new
    /// directories) the database's modes; a failure is logged, not returned.
    pub(super) fn apply_local_modes(&self, key: &str) {
        if let (Some(root), Some(db)) = (&self.inner.local_root, &self.modes_from)
            && let Err(e) = super::local_modes::apply(root, key, db)
        {
            tracing::warn!(key = %key, error = %e, "cannot give the object the database's mode");
        }
    }

    pub(super) async fn open(
        &self,
        key: String,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let path = parse_path(&key)?;
        let shown = key.clone();
        let store = self.inner.store.as_ref();
        let result = retry(&self.policy, self.stats(), Op::Get, &key, || {
            bounded(
                "GET",
                ANSWER_TIMEOUT,
                store.get_opts(&path, GetOptions::default()),
            )
        })
        .await?;
        self.stats().record_op(Op::Get);
        let stats = std::sync::Arc::clone(&self.stats);
        let raw = match result.payload {
            GetResultPayload::File(file, local) => {
                local_read::chunked_file_stream(file, local, result.range)
            }
            GetResultPayload::Stream(stream) => stream,
        };
        let body = raw.map(move |chunk| match chunk {
            Ok(bytes) => {
                stats.record_bytes(Op::Get, bytes.len() as u64);
                Ok(bytes)
            }
            Err(e) => Err(stats.record_error(classify(Op::Get, &key, 1, e))),
        });
        age::decrypt_body(body.boxed(), &shown, &self.age).await
    }

    /// One delimiter listing of `dir_key` (no recursion), by the client's [`Lister`].
    pub(super) async fn list_dir(&self, dir_key: &str) -> Result<DirListing, StorageError> {
        match &self.inner.lister {
            Lister::Store => self.list_dir_store(dir_key).await,
            Lister::Local => self.list_dir_local(dir_key).await,
            Lister::Azure(azure) => self.list_dir_azure(azure, dir_key).await,
        }
    }

    async fn list_dir_store(&self, dir_key: &str) -> Result<DirListing, StorageError> {
        let path = parse_path(dir_key)?;
        let store = self.inner.store.as_ref();
        let listing = retry(&self.policy, self.stats(), Op::List, dir_key, || {
            bounded(
                "LIST",
                LISTING_TIMEOUT,
                store.list_with_delimiter(Some(&path)),
            )
        })
        .await?;
        self.stats().record_op(Op::List);
        Ok(DirListing::from_store(listing))
    }

    /// File backend: lists `<replica dir>/<dir_key>`. Local errors are not retried; they name
    /// the full path.
    async fn list_dir_local(&self, dir_key: &str) -> Result<DirListing, StorageError> {
        let Some(local_root) = &self.inner.local_root else {
            return self.list_dir_store(dir_key).await;
        };
        let dir = local_root.join(dir_key);
        let shown = dir.display().to_string();
        let res = crate::rt::spawn_blocking(move || listing::list_local(&dir)).await;
        let source = match res {
            Ok(Ok(listing)) => {
                self.stats().record_op(Op::List);
                return Ok(listing);
            }
            Ok(Err(e)) => e,
            Err(join) => io::Error::other(join),
        };
        let err = StorageError::Io {
            op: Op::List,
            key: shown,
            source,
        };
        Err(self.stats().record_error(err))
    }

    /// Azure: one List Blobs request per page, each retried and counted (like Litestream, which
    /// counts every page it requests).
    async fn list_dir_azure(
        &self,
        azure: &AzureLister,
        dir_key: &str,
    ) -> Result<DirListing, StorageError> {
        let mut listing = DirListing::default();
        let mut marker: Option<String> = None;
        loop {
            let page = retry(&self.policy, self.stats(), Op::List, dir_key, || {
                let page = azure.list_page(dir_key, marker.as_deref(), self.list_page_size);
                bounded("LIST page", ANSWER_TIMEOUT, page)
            })
            .await?;
            self.stats().record_op(Op::List);
            listing.append(page.listing);
            match page.next_marker {
                Some(next) => marker = Some(next),
                None => return Ok(listing),
            }
        }
    }

    /// Every object key under `dir_key`, recursively.
    async fn list_all(&self, dir_key: &str) -> Result<Vec<Path>, StorageError> {
        let path = parse_path(dir_key)?;
        let store = self.inner.store.as_ref();
        let metas: Vec<ObjectMeta> = retry(&self.policy, self.stats(), Op::List, dir_key, || {
            bounded(
                "LIST",
                LISTING_TIMEOUT,
                store.list(Some(&path)).try_collect(),
            )
        })
        .await?;
        self.stats().record_op(Op::List);
        Ok(metas.into_iter().map(|m| m.location).collect())
    }

    pub(super) async fn delete_keys(
        &self,
        keys: Vec<impl Into<KeyOrPath>>,
    ) -> Result<(), StorageError> {
        let paths = keys
            .into_iter()
            .map(|k| k.into().into_path())
            .collect::<Result<Vec<Path>, StorageError>>()?;
        for batch in paths.chunks(DELETE_BATCH) {
            self.delete_batch(batch).await?;
        }
        Ok(())
    }

    /// Like [`Self::delete_keys`], but a key is deleted only after every key before it: on S3
    /// one batch request per [`DELETE_BATCH`] keys, elsewhere (where a batch is deleted several
    /// keys at a time) one key after the other. A deletion cut short leaves a suffix of `keys`.
    pub(super) async fn delete_keys_in_order(
        &self,
        keys: Vec<impl Into<KeyOrPath>>,
    ) -> Result<(), StorageError> {
        if self.replica_type() == "s3" {
            return self.delete_keys(keys).await;
        }
        for key in keys {
            let path = key.into().into_path()?;
            self.delete_batch(std::slice::from_ref(&path)).await?;
        }
        Ok(())
    }

    async fn delete_batch(&self, batch: &[Path]) -> Result<(), StorageError> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let label = match batch.len() {
            1 => first.to_string(),
            n => format!("{first} (+{} more)", n - 1),
        };
        let store = self.inner.store.as_ref();
        // A batch is one request on S3 and up to one per key elsewhere: 10 ms per key on top.
        let limit = ANSWER_TIMEOUT + Duration::from_millis(10) * batch.len() as u32;
        retry(&self.policy, self.stats(), Op::Delete, &label, || {
            let input = stream::iter(batch.iter().cloned().map(Ok).collect::<Vec<_>>()).boxed();
            bounded("DELETE", limit, async move {
                let mut results = store.delete_stream(input);
                while let Some(res) = results.next().await {
                    match res {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        })
        .await?;
        self.stats().record_op(Op::Delete);
        Ok(())
    }

    /// File backend only: removes `<replica dir>/<dir_key>` with whatever is left in it
    /// (staging files, foreign files, empty subdirectories), like Litestream's `os.RemoveAll`.
    async fn remove_local_dir(&self, dir_key: &str) -> Result<(), StorageError> {
        let Some(local_root) = &self.inner.local_root else {
            return Ok(());
        };
        let dir = local_root.join(dir_key);
        let res = crate::rt::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Ok(Err(source)) => Err(self.local_error(dir_key, source)),
            Err(join) => Err(self.local_error(dir_key, io::Error::other(join))),
        }
    }

    fn local_error(&self, key: &str, source: io::Error) -> StorageError {
        let err = StorageError::Io {
            op: Op::Delete,
            key: key.to_string(),
            source,
        };
        self.stats().record_error(err)
    }
}

/// Keys are either built strings (validated here) or paths returned by a listing.
pub(super) enum KeyOrPath {
    Key(String),
    Path(Path),
}

impl KeyOrPath {
    fn into_path(self) -> Result<Path, StorageError> {
        match self {
            KeyOrPath::Key(k) => parse_path(&k),
            KeyOrPath::Path(p) => Ok(p),
        }
    }
}

impl From<String> for KeyOrPath {
    fn from(k: String) -> Self {
        KeyOrPath::Key(k)
    }
}

impl From<Path> for KeyOrPath {
    fn from(p: Path) -> Self {
        KeyOrPath::Path(p)
    }
}

fn check_generation(generation: &str) -> Result<(), StorageError> {
    match layout::parse_generation(generation) {
        Some(_) => Ok(()),
        None => Err(StorageError::InvalidGeneration {
            generation: generation.to_string(),
        }),
    }
}

/// Converts a layout key into an object path. A leading `/` would be dropped, which is why client
/// creation refuses object-store roots that start with `/`.
pub(super) fn parse_path(key: &str) -> Result<Path, StorageError> {
    Path::parse(key).map_err(|source| StorageError::InvalidKey {
        key: key.to_string(),
        source,
    })
}
