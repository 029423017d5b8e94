//! [`FaultInjectingStore`]: an `ObjectStore` wrapper that fails chosen calls with realistic
//! transient or permanent errors, for the storage conformance suite and the fault suites.
//!
//! What must stay true:
//! - A call consumes a matching rule only when the rule's `skip` budget is spent; rules are
//!   checked in the order they were added; calls that match no rule go to the inner store.
//! - Injected transient errors look like what `object_store` returns for a dropped connection
//!   (`Generic` over an [`HttpError`] of kind `Interrupted`), permanent ones like an HTTP 403
//!   (`PermissionDenied`), so the retry classification is exercised exactly as in production.
//! - Clones share the rules and counters (keep one clone to steer the one inside a client).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// What kind of error to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Dropped connection: retried by the storage layer.
    Transient,
    /// HTTP 403-like refusal: never retried.
    Permanent,
}

/// Which calls a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// Every call below.
    Any,
    /// `put_opts`, `put_multipart_opts` (initiation), `copy_opts`, `rename_opts`.
    Put,
    /// A multipart part upload or the completion of a multipart upload.
    PutPart,
    /// `get_opts`, `get_ranges` (and so `head`).
    Get,
    /// `list`, `list_with_offset`, `list_with_delimiter`.
    List,
    /// `delete_stream` (one call per batch).
    Delete,
}

impl FaultOp {
    const COUNTED: [FaultOp; 5] = [
        FaultOp::Put,
        FaultOp::PutPart,
        FaultOp::Get,
        FaultOp::List,
        FaultOp::Delete,
    ];

    fn slot(self) -> usize {
        match self {
            FaultOp::Any | FaultOp::Put => 0,
            FaultOp::PutPart => 1,
            FaultOp::Get => 2,
            FaultOp::List => 3,
            FaultOp::Delete => 4,
        }
    }
}

#[derive(Debug)]
struct Rule {
    op: FaultOp,
    skip: usize,
    remaining: usize,
    kind: FaultKind,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    calls: [u64; 5],
    injected: u64,
}

/// Wraps a store and fails selected calls (see the module docs).
#[derive(Debug, Clone)]
pub struct FaultInjectingStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<State>>,
}

impl FaultInjectingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    /// Fails the next `n` calls of any kind.
    pub fn fail_next(&self, n: usize, kind: FaultKind) {
        self.fail_op_after(FaultOp::Any, 0, n, kind);
    }

    /// Fails the next `n` calls of kind `op`.
    pub fn fail_op(&self, op: FaultOp, n: usize, kind: FaultKind) {
        self.fail_op_after(op, 0, n, kind);
    }

    /// Lets `skip` calls of kind `op` through, then fails the following `n`.
    pub fn fail_op_after(&self, op: FaultOp, skip: usize, n: usize, kind: FaultKind) {
        self.lock().rules.push(Rule {
            op,
            skip,
            remaining: n,
            kind,
        });
    }

    /// Removes all pending rules.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Number of errors injected so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    /// Calls seen of kind `op` (failed or not); `Any` sums all kinds.
    pub fn calls(&self, op: FaultOp) -> u64 {
        let st = self.lock();
        match op {
            FaultOp::Any => FaultOp::COUNTED.iter().map(|o| st.calls[o.slot()]).sum(),
            op => st.calls[op.slot()],
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        crate::rt::lock(&self.state)
    }

    /// Records a call of kind `op` and returns the error to inject, if any.
    fn check(&self, op: FaultOp, location: &str) -> Option<object_store::Error> {
        let mut st = self.lock();
        st.calls[op.slot()] += 1;
        let rule = st
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && (r.op == FaultOp::Any || r.op == op))?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.remaining -= 1;
        let kind = rule.kind;
        st.rules.retain(|r| r.remaining > 0);
        st.injected += 1;
        Some(injected_error(kind, location))
    }
}

/// The error a [`FaultKind`] stands for.
pub fn injected_error(kind: FaultKind, location: &str) -> object_store::Error {
    match kind {
        FaultKind::Transient => object_store::Error::Generic {
            store: "FaultInjectingStore",
            source: Box::new(HttpError::new(
                HttpErrorKind::Interrupted,
                InjectedFault("connection reset by peer"),
            )),
        },
        FaultKind::Permanent => object_store::Error::PermissionDenied {
            path: location.to_string(),
            source: Box::new(InjectedFault("403 Forbidden")),
        },
    }
}

/// Marker source of injected errors.
#[derive(Debug, thiserror::Error)]
#[error("injected fault: {0}")]
pub struct InjectedFault(&'static str);

impl fmt::Display for FaultInjectingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultInjecting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultInjectingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if let Some(e) = self.check(FaultOp::Put, location.as_ref()) {
            return Err(e);
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        if let Some(e) = self.check(FaultOp::Put, location.as_ref()) {
            return Err(e);
        }
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner: upload,
            faults: self.clone(),
            location: location.to_string(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if let Some(e) = self.check(FaultOp::Get, location.as_ref()) {
            return Err(e);
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if let Some(e) = self.check(FaultOp::Get, location.as_ref()) {
            return Err(e);
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        match self.check(FaultOp::Delete, "") {
            Some(e) => stream::once(async move { Err(e) }).boxed(),
            None => self.inner.delete_stream(locations),
        }
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        match self.check(FaultOp::List, prefix.map_or("", |p| p.as_ref())) {
            Some(e) => stream::once(async move { Err(e) }).boxed(),
            None => self.inner.list(prefix),
        }
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        match self.check(FaultOp::List, prefix.map_or("", |p| p.as_ref())) {
            Some(e) => stream::once(async move { Err(e) }).boxed(),
            None => self.inner.list_with_offset(prefix, offset),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        if let Some(e) = self.check(FaultOp::List, prefix.map_or("", |p| p.as_ref())) {
            return Err(e);
        }
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        if let Some(e) = self.check(FaultOp::Put, to.as_ref()) {
            return Err(e);
        }
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        if let Some(e) = self.check(FaultOp::Put, to.as_ref()) {
            return Err(e);
        }
        self.inner.rename_opts(from, to, options).await
    }
}

/// A multipart upload whose parts and completion go through the fault rules (`PutPart`).
#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    faults: FaultInjectingStore,
    location: String,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        match self.faults.check(FaultOp::PutPart, &self.location) {
            Some(e) => Box::pin(async move { Err(e) }),
            None => self.inner.put_part(data),
        }
    }

    async fn complete(&mut self) -> Result<PutResult> {
        if let Some(e) = self.faults.check(FaultOp::PutPart, &self.location) {
            return Err(e);
        }
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::retry::is_permanent;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn fails_selected_calls_then_passes_through() {
        let store = FaultInjectingStore::new(Arc::new(InMemory::new()));
        let path = Path::from("a/b");
        store.fail_op_after(FaultOp::Put, 1, 2, FaultKind::Transient);
        store
            .put(&path, Bytes::from_static(b"1").into())
            .await
            .expect("first put passes");
        let e = store
            .put(&path, Bytes::from_static(b"2").into())
            .await
            .expect_err("2nd fails");
        assert!(!is_permanent(&e), "{e}");
        assert!(
            store
                .put(&path, Bytes::from_static(b"3").into())
                .await
                .is_err()
        );
        store
            .put(&path, Bytes::from_static(b"4").into())
            .await
            .expect("rule used up");
        assert!(store.get(&path).await.is_ok(), "gets were never targeted");
        assert_eq!(store.injected(), 2);
        assert_eq!(store.calls(FaultOp::Put), 4);
        assert_eq!(store.calls(FaultOp::Get), 1);
    }

    #[tokio::test]
    async fn permanent_fault_is_permanent() {
        let store = FaultInjectingStore::new(Arc::new(InMemory::new()));
        store.fail_next(1, FaultKind::Permanent);
        let e = store.list_with_delimiter(None).await.expect_err("injected");
        assert!(is_permanent(&e), "{e}");
        assert!(store.list_with_delimiter(None).await.is_ok());
    }
}
