//! The LTX writer against a real database (`Db`) and a file-backed `ReplicaClient`, with storage
//! faults injected: L0 files form one gap-free, overlap-free chain `1-1, 2-2, …` whose first
//! file is the only full image; a failed round neither skips nor repeats a TXID; a restart
//! continues the chain without a full image; compaction and L0 retention keep the replica
//! restorable. Every replica state is rebuilt from its files (newest page wins, truncated to the
//! last commit) and checked with `PRAGMA integrity_check` and against the source rows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use rusqlite::Connection;

use crate::config::V05Settings;
use crate::ltx::Reader;
use crate::replica::Replica;
use crate::replica::test_fixture::{DbFixture, fixture_wrapper};
use crate::storage::fault::{FaultInjectingStore, FaultKind, FaultOp};
use crate::storage::{LtxFileInfo, ReplicaClient, Timestamps};

// The shared fixture plus the LTX writer's helpers.
fixture_wrapper!(Fixture);

impl Fixture {
    async fn new() -> Fixture {
        Fixture(DbFixture::new("PRAGMA wal_autocheckpoint=0;").await)
    }

    fn replica(&self, client: ReplicaClient) -> Arc<Replica> {
        let settings = V05Settings {
            l0_retention: Duration::from_millis(1),
            ..V05Settings::default()
        };
        Replica::with_ltx(
            Arc::clone(&self.db),
            self.cfg.clone(),
            client,
            None,
            Arc::new(settings),
        )
    }

    /// `n` committed transactions, then one db sync tick (which may roll the WAL index).
    async fn write(&mut self, n: usize) {
        self.0.insert(n).await;
    }

    fn rows(&self) -> Vec<(i64, String)> {
        rows_of(&self.app)
    }

    async fn files(&self, level: u8) -> Vec<LtxFileInfo> {
        self.client
            .ltx_files(level, Timestamps::Listing)
            .await
            .expect("list")
    }

    /// Pages and commit size of one stored file.
    async fn read(&self, f: &LtxFileInfo) -> (u32, BTreeMap<u32, Vec<u8>>) {
        let chunks: Vec<bytes::Bytes> = self
            .client
            .open_ltx(f)
            .await
            .expect("open")
            .try_collect()
            .await
            .expect("read");
        let bytes = chunks.concat();
        let mut r = Reader::new(bytes.as_slice(), &f.file_name()).expect("header");
        let mut pages = BTreeMap::new();
        while let Some((pgno, data)) = r.next_page().expect("page") {
            pages.insert(pgno, data.to_vec());
        }
        let (h, _) = r.finish().expect("valid file");
        assert_eq!((h.min_txid, h.max_txid), (f.min_txid, f.max_txid));
        (h.commit, pages)
    }

    /// The database `files` (in order) rebuild, as rows after an integrity check.
    async fn rebuild(&self, files: &[LtxFileInfo]) -> Vec<(i64, String)> {
        let mut image: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let mut commit = 0;
        for f in files {
            let (c, pages) = self.read(f).await;
            image.extend(pages);
            commit = c;
        }
        image.retain(|&p, _| p <= commit);
        let out = self.dir.path().join(format!("rebuilt-{}.db", self.next_id));
        let bytes: Vec<u8> = (1..=commit)
            .flat_map(|p| image.get(&p).cloned().expect("every page present"))
            .collect();
        std::fs::write(&out, bytes).expect("write image");
        let c = Connection::open(&out).expect("open image");
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
        rows_of(&c)
    }
}

fn rows_of(c: &Connection) -> Vec<(i64, String)> {
    let mut st = c
        .prepare("SELECT id, v FROM t ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// L0 is `1-1, 2-2, …, n-n` with nothing missing or doubled.
fn assert_chain(l0: &[LtxFileInfo]) {
    for (i, f) in l0.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!((f.min_txid, f.max_txid), (n, n), "L0 chain: {l0:?}");
    }
}

#[tokio::test]
async fn failed_rounds_neither_skip_nor_repeat_a_txid_and_restart_continues() {
    let mut f = Fixture::new().await;
    let faults = FaultInjectingStore::new(f.client.object_store());
    let handle = faults.clone();
    let client = f.client.wrap_store(move |_| Arc::new(handle));
    let replica = f.replica(client.clone());
    f.write(3).await;
    replica.sync().await.expect("first round");
    for round in 0..6 {
        f.write(4).await;
        if round == 3 {
            // An application checkpoint: the shadow WAL moves to a new index.
            f.app
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .expect("checkpoint");
            f.write(2).await;
        }
        faults.fail_op(FaultOp::Put, 1000, FaultKind::Permanent);
        assert!(replica.sync().await.is_err(), "round {round} should fail");
        assert_eq!(
            replica.ltx_cursor().await,
            None,
            "cursor kept after failure"
        );
        faults.clear();
        let pos = replica.sync().await.expect("recovery");
        assert_eq!(pos, f.db.state().pos);
    }
    let l0 = f.files(0).await;
    assert_chain(&l0);
    assert_eq!(l0.len(), 7, "one L0 per successful round");
    assert_eq!(replica.status().ltx_txid, Some(7), "status shows the TXID");
    // Only the first is a full image: every later file holds just the pages that changed.
    let (commit, first) = f.read(&l0[0]).await;
    assert_eq!(first.len() as u32, commit, "TXID 1 is a full image");
    for later in &l0[1..] {
        let (commit, pages) = f.read(later).await;
        assert!(
            (pages.len() as u32) < commit,
            "{later:?} is not a full image"
        );
    }
    assert_eq!(f.rebuild(&l0).await, f.rows());
    let staging = f.db.meta_path().join(super::STAGING_DIR);
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging files left behind: {left:?}");

    // A restart (fresh cursor) continues the chain from the newest L0, without a full image,
    // and clears what a crash left in the staging directory.
    std::fs::create_dir_all(&staging).expect("staging dir");
    std::fs::write(staging.join("0-crashed.ltx"), b"partial").expect("stale file");
    let restarted = f.replica(client);
    f.write(3).await;
    restarted.sync().await.expect("after restart");
    let l0 = f.files(0).await;
    assert_chain(&l0);
    let (commit, pages) = f.read(l0.last().expect("l0")).await;
    assert!((pages.len() as u32) < commit, "no full image after restart");
    assert!(
        !staging.join("0-crashed.ltx").exists(),
        "stale staging file kept"
    );
    assert_eq!(f.rebuild(&l0).await, f.rows());
}

#[tokio::test]
async fn compaction_snapshot_and_l0_retention_keep_the_replica_restorable() {
    let mut f = Fixture::new().await;
    let replica = f.replica(f.client.clone());
    for _ in 0..5 {
        f.write(3).await;
        replica.sync().await.expect("round");
    }
    let l1 = replica
        .ltx_compact(1)
        .await
        .expect("compact")
        .expect("L1 file");
    assert_eq!((l1.min_txid, l1.max_txid), (1, 5));
    assert_eq!(f.rebuild(std::slice::from_ref(&l1)).await, f.rows());
    assert!(replica.ltx_compact(1).await.expect("again").is_none());
    // The merge carries the newest input's timestamp.
    let newest_l0 = f.files(0).await.into_iter().map(|x| x.created_at).max();
    assert_eq!(Some(l1.created_at), newest_l0);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let deleted = replica.ltx_retain_l0().await.expect("l0 retention");
    assert_eq!(deleted, 4, "compacted L0 files go, the newest stays");
    let l0 = f.files(0).await;
    assert_eq!(l0.iter().map(|x| x.max_txid).collect::<Vec<_>>(), vec![5]);

    f.write(2).await;
    replica.sync().await.expect("round");
    let snap = replica
        .ltx_snapshot()
        .await
        .expect("snapshot")
        .expect("taken");
    // Named after the TXID it holds: the newest L0 (the snapshot's checkpoint may add one).
    let newest = f.files(0).await.into_iter().map(|x| x.max_txid).max();
    assert_eq!((snap.min_txid, Some(snap.max_txid)), (1, newest));
    assert!(snap.max_txid >= 6);
    assert_eq!(f.rebuild(std::slice::from_ref(&snap)).await, f.rows());
    assert!(
        replica.ltx_snapshot().await.expect("again").is_none(),
        "nothing new"
    );
    // L1 + the remaining L0 also rebuild the latest state.
    let mut plan = vec![l1];
    plan.extend(f.files(0).await.into_iter().filter(|x| x.min_txid > 5));
    assert_eq!(f.rebuild(&plan).await, f.rows());
}

/// Once everything is compacted, snapshotted and retained, an idle database's jobs (compaction
/// of every level, snapshots, L0 retention, all on short intervals) make no storage request.
#[tokio::test]
async fn idle_database_makes_no_storage_requests() {
    let mut f = Fixture::new().await;
    let settings = V05Settings {
        levels: vec![Duration::from_millis(50), Duration::from_millis(100)],
        snapshot_interval: Duration::from_millis(200),
        l0_retention: Duration::from_millis(1),
        l0_retention_check_interval: Duration::from_millis(20),
        ..V05Settings::default()
    };
    let replica = Replica::with_ltx(
        Arc::clone(&f.db),
        f.cfg.clone(),
        f.client.clone(),
        None,
        Arc::new(settings),
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(Arc::clone(&replica).run(cancel.clone()));
    for _ in 0..3 {
        f.write(3).await;
    }
    // Settled: the newest TXID is in L2 and in a snapshot, and L0 holds only the newest file.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let txid = replica.ltx_cursor().await.map_or(0, |c| c.txid);
        let (l0, l2, l9) = (f.files(0).await, f.files(2).await, f.files(9).await);
        let top = |v: &[LtxFileInfo]| v.iter().map(|x| x.max_txid).max().unwrap_or(0);
        let settled = txid > 0
            && replica.ltx_cursor().await.and_then(|c| c.pos) == f.db.state().pos
            && top(&l2) == txid
            && top(&l9) == txid
            && l0.len() == 1;
        if settled {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ops = || {
        crate::storage::Op::ALL
            .iter()
            .map(|&op| f.client.stats().operations(op))
            .sum::<u64>()
    };
    // Our own listings above count too: measure from here, over several job intervals.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = ops();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ops(), before, "an idle database made storage requests");
    cancel.cancel();
    task.await.expect("replica task");
    assert_eq!(f.rebuild(&f.files(9).await[..]).await, f.rows());
}

/// A damaged database never becomes an LTX replica's full image or L9 snapshot: the first
/// round of a damaged file stores nothing, and damage found later refuses the snapshot while
/// the replica keeps restoring the good content.
#[tokio::test]
async fn a_damaged_database_is_never_imaged_or_snapshotted() {
    use crate::db::check::testkit::{damage, filled_database};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = filled_database(dir.path());
    damage(&path);
    let (_db, client, replica) =
        crate::replica::test_fixture::replica_of(dir.path(), &path, true).await;
    let err = replica.sync().await.expect_err("no full image of damage");
    assert!(
        matches!(err, crate::replica::ReplicaError::Damaged { .. }),
        "{err}"
    );
    assert!(replica.status().source_damaged.is_some());
    assert!(
        client
            .ltx_files(0, Timestamps::Listing)
            .await
            .expect("list")
            .is_empty()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = filled_database(dir.path());
    let (_db, client, replica) =
        crate::replica::test_fixture::replica_of(dir.path(), &path, true).await;
    replica.sync().await.expect("first round").expect("pos");
    damage(&path);
    let err = replica
        .ltx_snapshot()
        .await
        .expect_err("no snapshot of damage");
    assert!(
        matches!(err, crate::replica::ReplicaError::Damaged { .. }),
        "{err}"
    );
    assert!(replica.status().source_damaged.is_some());
    let snapshots = client
        .ltx_files(9, Timestamps::Listing)
        .await
        .expect("list");
    assert!(snapshots.is_empty(), "{snapshots:?}");
    let n =
        crate::replica::test_fixture::restored_rows(&client, &dir.path().join("restored.db")).await;
    assert_eq!(n, 500);
}
