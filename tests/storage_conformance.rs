//! Storage conformance: one set of checks of `storage::ReplicaClient` behaviour, run against every
//! backend — file (temp dir), S3 (moto), Azure Blob (azurite) and GCS (fake-gcs-server behind
//! scripts/gcs_proxy.py). Server addresses come from the `WALSTREAM_TEST_*` variables exported by
//! `scripts/test.sh`; a missing variable fails the test (never skips).
//!
//! Each test works under its own unique prefix in the shared bucket, so tests run in parallel and
//! repeated runs never see each other's objects. Checks: round trips, sorted listings that ignore
//! foreign names, deletes, a streamed 20 MiB multipart upload, storage timestamps, NotFound, retry
//! of transient faults (and none of permanent ones), and that failed uploads leave nothing.
//! Backend-specific checks follow: file replica paths that are missing (nothing is created by
//! reads) or regular files (only their operations fail, naming the path); object-store paths with
//! a leading `/` (refused); Azure listings that report `Creation-Time` and follow pages; GCS
//! listings that report `timeCreated` to the millisecond (spec §1.6).

mod common;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use common::Backend;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use tempfile::TempDir;
use walstream::config::{AbsTarget, GcsTarget, ReplicaTarget, S3Target};
use walstream::storage::fault::{FaultInjectingStore, FaultKind, FaultOp};
use walstream::storage::{
    ErrorClass, Op, PART_SIZE, ReplicaClient, RetryPolicy, SegmentInfo, SnapshotInfo, StorageError,
    layout,
};

const GEN_A: &str = "0123456789abcdef";
const GEN_B: &str = "fedcba9876543210";
const MIB: usize = 1024 * 1024;

/// One test's replica: a client under a unique prefix (or temp dir for `file`).
struct Fixture {
    backend: Backend,
    client: ReplicaClient,
    /// Replica directory of the file backend.
    local_dir: Option<PathBuf>,
    _tmp: Option<TempDir>,
}

impl Fixture {
    fn new(backend: Backend, test: &str) -> Self {
        let (target, tmp, local_dir) = target_for(backend, test);
        let client = ReplicaClient::new(&target)
            .unwrap_or_else(|e| panic!("build {backend:?} client: {e}"))
            .with_retry_policy(RetryPolicy::fast(4));
        Fixture {
            backend,
            client,
            local_dir,
            _tmp: tmp,
        }
    }

    /// Writes a raw object at `<root>/<rel>` behind the client's back.
    async fn put_raw(&self, rel: &str, data: &'static [u8]) {
        let key = format!("{}/{rel}", self.client.root());
        let path = ObjPath::parse(&key).expect("valid raw key");
        self.client
            .object_store()
            .put(&path, Bytes::from_static(data).into())
            .await
            .unwrap_or_else(|e| panic!("raw put {key}: {e}"));
    }

    /// A second client on the same replica whose store fails as told by the returned handle.
    fn with_faults(&self) -> (ReplicaClient, FaultInjectingStore) {
        let faults = FaultInjectingStore::new(self.client.object_store());
        let handle = faults.clone();
        (self.client.wrap_store(move |_| Arc::new(faults)), handle)
    }
}

fn target_for(backend: Backend, test: &str) -> (ReplicaTarget, Option<TempDir>, Option<PathBuf>) {
    let prefix = format!("conformance/{}", common::unique_name(test));
    match backend {
        Backend::File => {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join("replica");
            (
                ReplicaTarget::File { path: dir.clone() },
                Some(tmp),
                Some(dir),
            )
        }
        Backend::S3 => {
            let t = S3Target {
                bucket: common::bucket(),
                path: prefix,
                endpoint: Some(common::s3_endpoint()),
                access_key_id: Some(common::S3_ACCESS_KEY_ID.into()),
                secret_access_key: Some(common::S3_SECRET_ACCESS_KEY.into()),
                ..Default::default()
            };
            (ReplicaTarget::S3(t), None, None)
        }
        Backend::Abs => {
            let url = common::azurite_url();
            let t = AbsTarget {
                account_name: Some(common::AZURITE_ACCOUNT.into()),
                account_key: Some(common::AZURITE_KEY.into()),
                bucket: common::bucket(),
                path: prefix,
                endpoint: Some(format!(
                    "{}/{}",
                    url.trim_end_matches('/'),
                    common::AZURITE_ACCOUNT
                )),
                emulator_url: None,
            };
            (ReplicaTarget::Abs(t), None, None)
        }
        Backend::Gcs => {
            let t = GcsTarget {
                bucket: common::bucket(),
                path: prefix,
                emulator_host: Some(common::gcs_proxy()),
            };
            (ReplicaTarget::Gcs(t), None, None)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// `data` as a stream of chunks of at most `chunk` bytes.
fn chunked(data: Vec<u8>, chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let chunks: Vec<io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

/// `len` deterministic, incompressible bytes generated on the fly in 64 KiB chunks.
fn generated(seed: u64, len: usize) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    const CHUNK: usize = 64 * 1024;
    stream::unfold((seed | 1, 0usize), move |(mut s, done)| async move {
        if done >= len {
            return None;
        }
        let n = CHUNK.min(len - done);
        let mut buf = Vec::with_capacity(n + 8);
        while buf.len() < n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            buf.extend_from_slice(&s.to_le_bytes());
        }
        buf.truncate(n);
        Some((Ok(Bytes::from(buf)), (s, done + n)))
    })
}

async fn collect_body(mut s: impl Stream<Item = io::Result<Bytes>> + Unpin) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.expect("generated body"));
    }
    out
}

async fn read_all(mut s: BoxStream<'static, Result<Bytes, StorageError>>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("read body: {e}")));
    }
    out
}

fn small(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag))
        .collect()
}

async fn put_snap(c: &ReplicaClient, generation: &str, index: u32, data: Vec<u8>) -> u64 {
    c.put_snapshot(generation, index, || chunked(data.clone(), 1000))
        .await
        .unwrap_or_else(|e| panic!("put snapshot {generation}/{index}: {e}"))
}

async fn put_seg(c: &ReplicaClient, generation: &str, index: u32, offset: u64, data: Vec<u8>) {
    c.put_segment(generation, index, offset, || chunked(data.clone(), 1000))
        .await
        .unwrap_or_else(|e| panic!("put segment {generation}/{index}/{offset}: {e}"));
}

fn positions(segs: &[SegmentInfo]) -> Vec<(u32, u64)> {
    segs.iter().map(|s| (s.index, s.offset)).collect()
}

fn indices(snaps: &[SnapshotInfo]) -> Vec<u32> {
    snaps.iter().map(|s| s.index).collect()
}

// ---------------------------------------------------------------------------------------------
// The checks (each takes a fresh fixture)

mod checks {
    use super::*;

    pub async fn round_trip(fx: &Fixture) {
        let c = &fx.client;
        let snap = small(1, 3000);
        let seg = small(2, 4128);
        assert_eq!(put_snap(c, GEN_A, 0, snap.clone()).await, 3000);
        put_seg(c, GEN_A, 0, 0, seg.clone()).await;
        assert!(read_all(c.open_snapshot(GEN_A, 0).await.expect("open snapshot")).await == snap);
        let got = read_all(c.open_segment(GEN_A, 0, 0).await.expect("open segment")).await;
        assert!(got == seg, "segment bytes differ");

        // A later snapshot of the same index overwrites the object (spec §1.5).
        let snap2 = small(3, 2500);
        put_snap(c, GEN_A, 0, snap2.clone()).await;
        assert!(read_all(c.open_snapshot(GEN_A, 0).await.expect("reopen")).await == snap2);
        let listed = c.snapshots(GEN_A).await.expect("list snapshots");
        assert_eq!(indices(&listed), vec![0]);
        assert_eq!(listed[0].size, 2500);
        assert_eq!(listed[0].generation, GEN_A);

        let st = c.stats();
        assert_eq!(st.operations(Op::Put), 3);
        assert_eq!(st.bytes(Op::Put), 3000 + 4128 + 2500);
        assert_eq!(st.operations(Op::Get), 3);
        assert_eq!(st.bytes(Op::Get), 3000 + 4128 + 2500);
        assert!(st.operations(Op::List) >= 1);
        assert_eq!(st.retries(), 0);
    }

    pub async fn listing_sorted_and_filtered(fx: &Fixture) {
        let c = &fx.client;
        assert!(c.generations().await.expect("empty listing").is_empty());
        for index in [2, 0, 1] {
            put_snap(c, GEN_B, index, small(index as u8, 100)).await;
        }
        put_snap(c, GEN_A, 5, small(9, 10)).await;
        for (index, offset) in [(1, 0), (0, 0x20), (0, 0), (0, 0x1038)] {
            put_seg(c, GEN_B, index, offset, small(offset as u8, 50)).await;
        }
        for rel in foreign_names() {
            fx.put_raw(rel, b"foreign").await;
        }
        if let Some(dir) = &fx.local_dir {
            // A leftover staging file of an interrupted write must stay invisible.
            let staging = dir.join(format!(
                "generations/{GEN_B}/snapshots/00000009.snapshot.lz4#1"
            ));
            std::fs::write(staging, b"partial").expect("write staging file");
        }

        assert_eq!(
            c.generations().await.expect("generations"),
            vec![GEN_A, GEN_B]
        );
        assert_eq!(
            indices(&c.snapshots(GEN_B).await.expect("snapshots")),
            vec![0, 1, 2]
        );
        let segs = c.wal_segments(GEN_B).await.expect("segments");
        assert_eq!(
            positions(&segs),
            vec![(0, 0), (0, 0x20), (0, 0x1038), (1, 0)]
        );
        assert!(segs.iter().all(|s| s.size == 50 && s.generation == GEN_B));
        assert_eq!(
            indices(&c.snapshots(GEN_A).await.expect("snapshots A")),
            vec![5]
        );
        assert!(c.wal_segments(GEN_A).await.expect("segments A").is_empty());
        assert!(matches!(
            c.snapshots("not-a-generation").await,
            Err(StorageError::InvalidGeneration { .. })
        ));
    }

    /// Names Litestream skips (spec §1.1), relative to the replica root.
    fn foreign_names() -> Vec<&'static str> {
        vec![
            "generations/0123456789ABCDEF/snapshots/00000000.snapshot.lz4",
            "generations/0123456789abcde/snapshots/00000000.snapshot.lz4",
            "generations/0123456789abcdef0/wal/00000000_00000000.wal.lz4",
            "generations/0123456789abcdef.tmp/snapshots/00000000.snapshot.lz4",
            // A file (not a directory/prefix) named like a generation.
            "generations/aaaaaaaaaaaaaaaa",
            "generations/stray.txt",
            "generations/fedcba9876543210/snapshots/00000003.snapshot.lz4.tmp",
            "generations/fedcba9876543210/snapshots/0000000A.snapshot.lz4",
            "generations/fedcba9876543210/snapshots/0000004.snapshot.lz4",
            "generations/fedcba9876543210/snapshots/notes.txt",
            "generations/fedcba9876543210/wal/00000000_00000000.wal.lz4.tmp",
            "generations/fedcba9876543210/wal/0000000A_00000000.wal.lz4",
            "generations/fedcba9876543210/wal/00000000_0000000.wal.lz4",
            "generations/fedcba9876543210/wal/00000002/00000002_00000000.wal.lz4",
            "generations/fedcba9876543210/wal/00000003.snapshot.lz4",
        ]
    }

    pub async fn deletes(fx: &Fixture) {
        let c = &fx.client;
        for index in 0..3 {
            put_snap(c, GEN_A, index, small(1, 64)).await;
            put_seg(c, GEN_A, index, 0, small(2, 64)).await;
        }
        put_snap(c, GEN_B, 0, small(3, 64)).await;
        fx.put_raw(&format!("generations/{GEN_A}/wal/foreign.tmp"), b"x")
            .await;

        let snaps = c.snapshots(GEN_A).await.expect("snapshots");
        c.delete_snapshots(&snaps[..2])
            .await
            .expect("delete snapshots");
        assert_eq!(
            indices(&c.snapshots(GEN_A).await.expect("after delete")),
            vec![2]
        );
        c.delete_snapshots(&snaps[..2])
            .await
            .expect("deleting again is not an error");

        let segs = c.wal_segments(GEN_A).await.expect("segments");
        c.delete_segments(&segs[..1])
            .await
            .expect("delete segments");
        assert_eq!(
            positions(&c.wal_segments(GEN_A).await.expect("segs")),
            vec![(1, 0), (2, 0)]
        );

        c.delete_generation(GEN_A).await.expect("delete generation");
        assert_eq!(c.generations().await.expect("generations"), vec![GEN_B]);
        assert!(c.snapshots(GEN_A).await.expect("gone").is_empty());
        assert!(c.wal_segments(GEN_A).await.expect("gone").is_empty());
        assert_eq!(indices(&c.snapshots(GEN_B).await.expect("kept")), vec![0]);
        if let Some(dir) = &fx.local_dir {
            assert!(
                !dir.join("generations").join(GEN_A).exists(),
                "generation dir removed"
            );
        }
        c.delete_generation(GEN_A)
            .await
            .expect("deleting a missing generation is fine");
        assert!(c.stats().operations(Op::Delete) >= 3);
    }

    pub async fn multipart_20mib(fx: &Fixture) {
        let c = &fx.client;
        let len = 20 * MIB;
        let calls = AtomicUsize::new(0);
        let stored = c
            .put_snapshot(GEN_A, 1, || {
                calls.fetch_add(1, Ordering::SeqCst);
                generated(42, len)
            })
            .await
            .unwrap_or_else(|e| panic!("20 MiB upload: {e}"));
        assert_eq!(stored, len as u64);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let listed = c.snapshots(GEN_A).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].size, len as u64);
        let got = read_all(c.open_snapshot(GEN_A, 1).await.expect("open")).await;
        let want = collect_body(Box::pin(generated(42, len))).await;
        assert!(
            got.len() == want.len() && got == want,
            "20 MiB body differs"
        );

        // Exactly one part's worth goes up as a single PUT.
        let single = c
            .put_snapshot(GEN_A, 2, || generated(7, PART_SIZE))
            .await
            .expect("5 MiB");
        assert_eq!(single, PART_SIZE as u64);
        if fx.backend == Backend::S3 {
            assert_eq!(
                etag(c, 1).await.rsplit('-').next(),
                Some("4"),
                "4 parts of 5 MiB"
            );
            assert!(!etag(c, 2).await.contains('-'), "5 MiB is a single PUT");
        }
    }

    async fn etag(c: &ReplicaClient, index: u32) -> String {
        let key = layout::snapshot_key(c.root(), GEN_A, index);
        let meta = c
            .object_store()
            .head(&ObjPath::parse(&key).expect("key"))
            .await;
        let tag = meta.expect("head").e_tag.expect("S3 returns an ETag");
        tag.trim_matches('"').to_string()
    }

    /// LTX files (Litestream v0.5 layout) written through the client list back at their level
    /// with the header timestamp as storage time, on every backend, whichever timestamp source
    /// the listing uses (mtime, `litestream-timestamp`, `litestreamtimestamp`), and a multipart
    /// LTX upload carries it too.
    pub async fn ltx_put_list_delete(fx: &Fixture) {
        let c = &fx.client;
        // 2025-11-22T03:27:42.869Z and one whole second: both precisions must survive.
        let stamps = [1_763_782_062_869i64, 1_763_782_063_000];
        let a = c
            .put_ltx(0, 1, 1, stamps[0], || chunked(small(7, 300), 100))
            .await
            .expect("put L0");
        let b = c
            .put_ltx(0, 2, 2, stamps[1], || {
                chunked(small(8, PART_SIZE + 10), MIB)
            })
            .await
            .expect("put multipart L0");
        let l9 = c
            .put_ltx(9, 1, 2, stamps[1], || chunked(small(9, 50), 50))
            .await
            .expect("put L9");
        for ts in [
            walstream::storage::Timestamps::Metadata,
            walstream::storage::Timestamps::Listing,
        ] {
            let l0 = c.ltx_files(0, ts).await.expect("list L0");
            let sizes: Vec<u64> = l0.iter().map(|f| f.size).collect();
            assert_eq!(sizes, vec![300, (PART_SIZE + 10) as u64]);
            if ts == walstream::storage::Timestamps::Metadata || fx.backend != Backend::S3 {
                assert_eq!(l0, vec![a.clone(), b.clone()], "{:?} {ts:?}", fx.backend);
            }
        }
        let got = read_all(c.open_ltx(&a).await.expect("open")).await;
        assert!(got == small(7, 300));
        c.delete_ltx(&[a.clone(), l9.clone()])
            .await
            .expect("delete");
        c.delete_ltx(&[a]).await.expect("delete again");
        let left = c
            .ltx_files(0, walstream::storage::Timestamps::Metadata)
            .await
            .expect("list");
        assert_eq!(left, vec![b]);
        assert!(
            c.ltx_files(9, walstream::storage::Timestamps::Metadata)
                .await
                .expect("L9")
                .is_empty()
        );
    }

    pub async fn created_times(fx: &Fixture) {
        let c = &fx.client;
        let before = Utc::now();
        for offset in 0..4u64 {
            put_seg(c, GEN_A, 0, offset * 0x20, small(offset as u8, 32)).await;
        }
        put_snap(c, GEN_A, 0, small(1, 32)).await;
        let after = Utc::now();
        let segs = c.wal_segments(GEN_A).await.expect("segments");
        let snaps = c.snapshots(GEN_A).await.expect("snapshots");
        let mut times: Vec<DateTime<Utc>> = segs.iter().map(|s| s.created_at).collect();
        times.push(snaps[0].created_at);
        for pair in times.windows(2) {
            assert!(
                pair[0] <= pair[1],
                "created times decrease in upload order: {times:?}"
            );
        }
        // Storage clocks are local; S3/azurite round down to whole seconds.
        let slack = ChronoDuration::seconds(60);
        for t in &times {
            assert!(
                *t >= before - slack && *t <= after + slack,
                "{t} not near {before}..{after}"
            );
        }
    }

    pub async fn not_found(fx: &Fixture) {
        let c = &fx.client;
        match c.open_snapshot(GEN_A, 7).await {
            Err(StorageError::NotFound { key }) => {
                assert!(
                    key.ends_with(&format!("{GEN_A}/snapshots/00000007.snapshot.lz4")),
                    "{key}"
                )
            }
            Err(e) => panic!("expected NotFound, got {e:?}"),
            Ok(_) => panic!("expected NotFound, got a body"),
        }
        let err = c
            .open_segment(GEN_A, 0, 0)
            .await
            .err()
            .expect("missing segment");
        assert!(err.is_not_found(), "{err:?}");
        assert!(
            c.snapshots(GEN_A)
                .await
                .expect("empty generation lists fine")
                .is_empty()
        );
        assert_eq!(c.stats().errors(ErrorClass::NotFound), 2);
        assert_eq!(c.stats().retries(), 0, "NotFound is not retried");
    }

    pub async fn retries_transient_faults(fx: &Fixture) {
        let (c, faults) = fx.with_faults();
        faults.fail_next(2, FaultKind::Transient);
        put_snap(&c, GEN_A, 0, small(1, 100)).await;
        assert_eq!(faults.injected(), 2);
        assert_eq!(c.stats().retries(), 2);
        assert_eq!(c.stats().operations(Op::Put), 1);

        faults.fail_op(FaultOp::List, 2, FaultKind::Transient);
        assert_eq!(
            c.generations().await.expect("list after 2 faults"),
            vec![GEN_A]
        );
        faults.fail_op(FaultOp::Get, 1, FaultKind::Transient);
        assert!(read_all(c.open_snapshot(GEN_A, 0).await.expect("get")).await == small(1, 100));
        assert_eq!(c.stats().retries(), 5);
        assert_eq!(
            fx.client.stats().retries(),
            0,
            "the unwrapped client is separate"
        );

        // A failed part restarts the whole upload with a fresh body.
        faults.fail_op(FaultOp::PutPart, 1, FaultKind::Transient);
        let calls = AtomicUsize::new(0);
        let len = PART_SIZE + MIB;
        let stored = c
            .put_segment(GEN_A, 0, 0, || {
                calls.fetch_add(1, Ordering::SeqCst);
                generated(5, len)
            })
            .await
            .unwrap_or_else(|e| panic!("multipart after part fault: {e}"));
        assert_eq!(stored, len as u64);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "body recreated for the retry"
        );
        let got = read_all(c.open_segment(GEN_A, 0, 0).await.expect("open")).await;
        assert!(got == collect_body(Box::pin(generated(5, len))).await);
    }

    pub async fn permanent_fault_not_retried(fx: &Fixture) {
        let (c, faults) = fx.with_faults();
        faults.fail_next(1, FaultKind::Permanent);
        let err = c
            .put_snapshot(GEN_A, 3, || chunked(small(1, 10), 10))
            .await
            .expect_err("permanent fault surfaces");
        assert!(
            matches!(err, StorageError::Permanent { op: Op::Put, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("00000003.snapshot.lz4"), "{err}");
        assert_eq!(faults.calls(FaultOp::Put), 1);
        assert_eq!(c.stats().retries(), 0);
        assert_eq!(c.stats().errors(ErrorClass::Permanent), 1);

        faults.fail_op(FaultOp::Get, 10, FaultKind::Transient);
        let c = c.with_retry_policy(RetryPolicy::fast(3));
        c.generations()
            .await
            .expect("listing is not affected by Get faults");
        let err = c.open_snapshot(GEN_A, 3).await.err().expect("gives up");
        assert!(
            matches!(err, StorageError::Transient { attempts: 3, .. }),
            "{err:?}"
        );
        assert_eq!(faults.calls(FaultOp::Get), 3);
        assert!(
            c.snapshots(GEN_A).await.expect("list").is_empty(),
            "nothing was stored"
        );
    }

    pub async fn failed_body_leaves_nothing(fx: &Fixture) {
        let c = &fx.client;
        for len in [1000, PART_SIZE + MIB] {
            let calls = AtomicUsize::new(0);
            let err = c
                .put_snapshot(GEN_A, 4, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let broken = stream::once(async { Err(io::Error::other("disk read failed")) });
                    generated(3, len).chain(broken)
                })
                .await
                .expect_err("body error fails the upload");
            assert!(
                matches!(err, StorageError::Io { op: Op::Put, .. }),
                "{err:?}"
            );
            assert_eq!(
                calls.load(Ordering::SeqCst),
                1,
                "a body error is not retried"
            );
        }
        assert!(
            c.snapshots(GEN_A).await.expect("list").is_empty(),
            "no partial object"
        );
        assert!(
            c.open_snapshot(GEN_A, 4)
                .await
                .err()
                .expect("absent")
                .is_not_found()
        );
    }

    pub async fn describe_hides_credentials(fx: &Fixture) {
        let d = fx.client.describe();
        let expected_scheme = match fx.backend {
            Backend::File => "file://",
            Backend::S3 => "s3://",
            Backend::Abs => "abs://",
            Backend::Gcs => "gcs://",
        };
        assert!(d.starts_with(expected_scheme), "{d}");
        assert!(!d.contains(common::S3_SECRET_ACCESS_KEY), "{d}");
        assert!(!d.contains(common::AZURITE_KEY), "{d}");
        if fx.backend != Backend::File {
            assert!(d.contains(fx.client.root()), "{d}");
        }
        assert_eq!(fx.client.replica_type(), fx.backend.name());
    }
}

macro_rules! conformance_suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;
            conformance_suite!(@checks $backend;
                round_trip, listing_sorted_and_filtered, deletes, multipart_20mib, created_times,
                not_found, retries_transient_faults, permanent_fault_not_retried,
                failed_body_leaves_nothing, describe_hides_credentials, ltx_put_list_delete);
        }
    };
    (@checks $backend:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fx = Fixture::new($backend, stringify!($check));
                checks::$check(&fx).await;
            }
        )*
    };
}

conformance_suite!(file, Backend::File);
conformance_suite!(s3, Backend::S3);
conformance_suite!(abs, Backend::Abs);
conformance_suite!(gcs, Backend::Gcs);

// Backend-specific checks live beside this file (not a test target of their own).
#[path = "storage_conformance/backend_specific.rs"]
mod backend_specific;
