//! Unit tests of the LTX apply path on an in-memory store: hand-built files (the ltx test
//! encoder) restored into a temporary directory — the result, and every refusal that only the
//! apply step can see (page size change, header/name mismatch, pages missing from the plan,
//! checksum-mode files), each naming the object and leaving nothing at the output path.

use std::sync::Arc;

use chrono::Utc;
use object_store::memory::InMemory;
use object_store::{ObjectStoreExt, PutPayload};

use super::*;
use crate::ltx::testkit::{encode, header};
use crate::restore::IntegrityCheck;

/// Recognisable page bytes (page 1 starts with SQLite's magic); the tests run without the
/// integrity check, which would need a real database.
fn page(pgno: u32, page_size: u32) -> Vec<u8> {
    let mut p = vec![(pgno % 251) as u8; page_size as usize];
    if pgno == 1 {
        p[..16].copy_from_slice(b"SQLite format 3\0");
    }
    p
}

struct Fixture {
    client: ReplicaClient,
    store: Arc<InMemory>,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let store = Arc::new(InMemory::new());
    let client = ReplicaClient::with_store(store.clone(), "db", "s3");
    let dir = tempfile::tempdir().expect("tempdir");
    Fixture { client, store, dir }
}

impl Fixture {
    /// Stores an LTX file at `level` named `min-max` holding `pages`.
    async fn put(&self, level: u8, h: ltx::Header, name: (u64, u64), pages: &[u32]) -> LtxFileInfo {
        let body: Vec<(u32, Vec<u8>)> = pages.iter().map(|&p| (p, page(p, h.page_size))).collect();
        let bytes = encode(&h, &body, false);
        let key = self.client.ltx_key(level, name.0, name.1);
        let path = object_store::path::Path::from(key);
        let size = bytes.len() as u64;
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .expect("put");
        LtxFileInfo {
            level,
            min_txid: name.0,
            max_txid: name.1,
            size,
            created_at: Utc::now(),
        }
    }

    async fn restore(&self, plan: &[LtxFileInfo]) -> Result<LtxSummary, RestoreError> {
        let opts = ExecOptions {
            integrity_check: IntegrityCheck::None,
            ..ExecOptions::default()
        };
        execute_ltx(&self.client, plan, &self.out(), &opts).await
    }

    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("out.db")
    }

    fn assert_nothing_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.dir.path()).expect("ls").collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_files_win_and_the_last_commit_sets_the_size() {
    let f = fixture();
    let snap = f
        .put(9, header(1, 1, 4, 512, 0), (1, 1), &[1, 2, 3, 4])
        .await;
    let grow = f.put(0, header(2, 2, 5, 512, 0), (2, 2), &[2, 5]).await;
    let shrink = f.put(0, header(3, 3, 3, 512, 0), (3, 3), &[3]).await;
    let sum = f.restore(&[snap, grow, shrink]).await.expect("restore");
    assert_eq!(
        (sum.min_txid, sum.max_txid, sum.files, sum.db_size),
        (1, 3, 3, 3 * 512)
    );
    let db = std::fs::read(f.out()).expect("read");
    let expect: Vec<u8> = [1, 2, 3].iter().flat_map(|&p| page(p, 512)).collect();
    assert_eq!(db, expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refusals_name_the_object() {
    let f = fixture();
    let snap = f.put(9, header(1, 1, 2, 512, 0), (1, 1), &[1, 2]).await;
    let other_size = f.put(0, header(2, 2, 2, 1024, 0), (2, 2), &[2]).await;
    let err = f
        .restore(&[snap.clone(), other_size])
        .await
        .expect_err("page size");
    assert!(matches!(err, RestoreError::PageSize { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("db/0000/0000000000000002-0000000000000002.ltx"),
        "{err}"
    );
    f.assert_nothing_left();

    let renamed = f.put(0, header(3, 3, 2, 512, 0), (2, 2), &[2]).await;
    let err = f.restore(&[snap.clone(), renamed]).await.expect_err("name");
    assert!(err.to_string().contains("not those of its name"), "{err}");
    f.assert_nothing_left();

    let checksummed = ltx::Header {
        flags: 0,
        pre_apply_checksum: ltx::CHECKSUM_FLAG | 7,
        ..header(2, 2, 2, 512, 0)
    };
    let checksummed = f.put(0, checksummed, (2, 2), &[2]).await;
    let err = f
        .restore(&[snap.clone(), checksummed])
        .await
        .expect_err("flags 0");
    assert!(err.to_string().contains("checksum mode"), "{err}");
    f.assert_nothing_left();

    let short_base = f.put(1, header(1, 1, 3, 512, 0), (1, 1), &[1, 3]).await;
    let err = f.restore(&[short_base]).await.expect_err("missing page");
    assert!(
        matches!(err, RestoreError::LtxMissingPage { pgno: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("db/0001/0000000000000001-0000000000000001.ltx"),
        "{err}"
    );
    f.assert_nothing_left();
}
