//! [`LazyStore`]: an `ObjectStore` whose real client is built by an async initializer on first
//! use. Used for S3 when neither a region nor an endpoint is configured: like Litestream, the
//! bucket's region is looked up (HeadBucket's `x-amz-bucket-region`) before the first request,
//! while `ReplicaClient::new` stays synchronous.
//!
//! What must stay true:
//! - The initializer runs until it succeeds once; a failure is returned to that call (and retried
//!   by the storage retry layer), never cached.
//! - Every `ObjectStore` method forwards to the initialized client unchanged.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use tokio::sync::OnceCell;

/// Builds the real store.
pub type InitFn =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn ObjectStore>>> + Send + Sync + 'static>;

/// See the module docs. Clones share the initialized client.
#[derive(Clone)]
pub struct LazyStore {
    label: String,
    init: InitFn,
    cell: Arc<OnceCell<Arc<dyn ObjectStore>>>,
}

impl LazyStore {
    /// `label` names the store in `Display` until it is initialized.
    pub fn new(label: impl Into<String>, init: InitFn) -> Self {
        Self {
            label: label.into(),
            init,
            cell: Arc::new(OnceCell::new()),
        }
    }

    async fn get(&self) -> Result<Arc<dyn ObjectStore>> {
        let store = self.cell.get_or_try_init(|| (self.init)()).await?;
        Ok(Arc::clone(store))
    }
}

impl fmt::Debug for LazyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyStore")
            .field("label", &self.label)
            .field("initialized", &self.cell.get().is_some())
            .finish()
    }
}

impl fmt::Display for LazyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell.get() {
            Some(store) => write!(f, "{store}"),
            None => write!(f, "Lazy({})", self.label),
        }
    }
}

#[async_trait]
impl ObjectStore for LazyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.get().await?.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.get().await?.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.get().await?.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.get().await?.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let this = self.clone();
        stream::once(async move { this.get().await.map(|s| s.delete_stream(locations)) })
            .try_flatten()
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.cloned();
        stream::once(async move { this.get().await.map(|s| s.list(prefix.as_ref())) })
            .try_flatten()
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let this = self.clone();
        let (prefix, offset) = (prefix.cloned(), offset.clone());
        stream::once(async move {
            this.get()
                .await
                .map(|s| s.list_with_offset(prefix.as_ref(), &offset))
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.get().await?.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.get().await?.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.get().await?.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn initializes_once_and_retries_failed_init() {
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let calls = Arc::new(AtomicU32::new(0));
        let init: InitFn = {
            let (memory, calls) = (Arc::clone(&memory), Arc::clone(&calls));
            Arc::new(move || {
                let (memory, n) = (Arc::clone(&memory), calls.fetch_add(1, Ordering::SeqCst));
                async move {
                    match n {
                        0 => Err(object_store::Error::Generic {
                            store: "test",
                            source: "region lookup failed".into(),
                        }),
                        _ => Ok(memory),
                    }
                }
                .boxed()
            })
        };
        let lazy = LazyStore::new("s3://b", init);
        assert_eq!(lazy.to_string(), "Lazy(s3://b)");
        let path = Path::from("a/b");
        assert!(
            lazy.put(&path, Bytes::from_static(b"x").into())
                .await
                .is_err()
        );
        lazy.put(&path, Bytes::from_static(b"x").into())
            .await
            .expect("second init works");
        let listed: Vec<ObjectMeta> = lazy.list(None).try_collect().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(
            memory.head(&path).await.is_ok(),
            "writes reach the real store"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "initialized once after success"
        );
    }
}
