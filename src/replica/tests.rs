//! Replica tests against a real database (`Db`) and a real file-backed `ReplicaClient`, with
//! storage faults injected: upload rounds produce contiguous segments, resume from storage finds
//! the exact position, and a failed round neither skips nor repeats bytes.

use std::sync::Arc;

use futures::TryStreamExt;

use super::Replica;
use crate::db::Pos;
use crate::replica::test_fixture::{DbFixture, fixture_wrapper};
use crate::storage::ReplicaClient;
use crate::storage::fault::{FaultInjectingStore, FaultKind, FaultOp};

// The shared fixture plus the v0.3 writer's helpers.
fixture_wrapper!(Fixture);

impl Fixture {
    async fn new() -> Fixture {
        Fixture(DbFixture::new("").await)
    }

    fn replica(&self, client: ReplicaClient) -> Arc<Replica> {
        Replica::new(Arc::clone(&self.db), self.cfg.clone(), client)
    }

    /// `n` committed transactions, then one db sync tick (which may roll the WAL index).
    async fn write(&mut self, n: usize) -> Pos {
        self.0.insert(n).await.pos
    }

    /// Every segment of `generation` with its decompressed length, in order.
    async fn segments(&self, generation: &str) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        for s in self.client.wal_segments(generation).await.expect("list") {
            let bytes: Vec<bytes::Bytes> = self
                .client
                .open_segment(generation, s.index, s.offset)
                .await
                .expect("open segment")
                .try_collect()
                .await
                .expect("read segment");
            let data = crate::lz4::decompress(&bytes.concat()).expect("lz4");
            out.push((s.index, s.offset, data.len() as u64));
        }
        out
    }
}

/// Segments of one generation tile each index from offset 0 with no gap or overlap, and end at
/// `end` (the last index's length).
fn assert_contiguous(segments: &[(u32, u64, u64)], end: &Pos) {
    let mut expect: Option<(u32, u64)> = None;
    for &(index, offset, len) in segments {
        match expect {
            Some((i, o)) if i == index => assert_eq!(offset, o, "gap/overlap at {index:08x}"),
            _ => assert_eq!(offset, 0, "index {index:08x} does not start at 0"),
        }
        expect = Some((index, offset + len));
    }
    assert_eq!(expect, Some((end.index, end.offset)), "{segments:?}");
}

#[tokio::test]
async fn rounds_upload_contiguous_segments_and_resume_finds_the_end() {
    let mut f = Fixture::new().await;
    let replica = f.replica(f.client.clone());
    f.write(3).await;
    for _ in 0..6 {
        let pos = replica.sync().await.expect("round").expect("position");
        // The db's position now, not the one `write` saw: the generation's first snapshot
        // checkpoints and restarts the WAL (see `Db::begin_snapshot`).
        assert_eq!(Some(pos), f.db.state().pos);
        f.write(5).await;
    }
    let end = replica.sync().await.expect("round").expect("position");
    assert_eq!(Some(end.clone()), f.db.state().pos);
    assert!(end.index >= 2, "expected several WAL indexes, got {end:?}");
    let segments = f.segments(&end.generation).await;
    assert_contiguous(&segments, &end);
    // A fresh replica (a restart) finds the same position from storage alone.
    let restarted = f.replica(f.client.clone());
    assert_eq!(
        restarted.resume(&end.generation).await.expect("resume"),
        end
    );
    assert_eq!(restarted.sync().await.expect("round"), Some(end.clone()));
    assert_eq!(
        f.segments(&end.generation).await,
        segments,
        "restart re-uploaded"
    );
    let snapshots = f
        .client
        .snapshots(&end.generation)
        .await
        .expect("snapshots");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
}

#[tokio::test]
async fn failed_round_clears_position_and_never_skips_or_repeats() {
    let mut f = Fixture::new().await;
    let faults = FaultInjectingStore::new(f.client.object_store());
    let handle = faults.clone();
    let client = f.client.wrap_store(move |_| Arc::new(handle));
    let replica = f.replica(client);
    f.write(2).await;
    replica.sync().await.expect("first round");
    for round in 0..5 {
        let end = f.write(4).await;
        // Odd rounds let one upload through first (partial progress when the round spans two
        // WAL indexes), even rounds fail from the first upload; retries fail too.
        faults.fail_op_after(FaultOp::Put, round % 2, 1000, FaultKind::Permanent);
        let result = replica.sync().await;
        if round % 2 == 0 || result.is_err() {
            assert!(result.is_err(), "round {round} should fail");
            assert_eq!(
                replica.position().await,
                None,
                "position kept after failure"
            );
        }
        faults.clear();
        assert_eq!(replica.sync().await.expect("recovery"), Some(end.clone()));
    }
    let end = f.db.state().pos.expect("db position");
    assert_contiguous(&f.segments(&end.generation).await, &end);
}

#[tokio::test]
async fn failed_listing_on_resume_is_reported_then_recovers() {
    let mut f = Fixture::new().await;
    let faults = FaultInjectingStore::new(f.client.object_store());
    let handle = faults.clone();
    let client = f.client.wrap_store(move |_| Arc::new(handle));
    let replica = f.replica(client);
    f.write(3).await;
    faults.fail_op(FaultOp::List, 1000, FaultKind::Permanent);
    assert!(replica.sync().await.is_err());
    faults.clear();
    let end = replica.sync().await.expect("round").expect("position");
    assert_eq!(Some(end.clone()), f.db.state().pos);
    assert_contiguous(&f.segments(&end.generation).await, &end);
}

#[tokio::test]
async fn retention_lists_storage_only_when_something_can_have_expired() {
    let mut f = Fixture::new().await;
    f.cfg.retention = std::time::Duration::from_millis(1500);
    let replica = f.replica(f.client.clone());
    f.write(3).await;
    replica
        .sync()
        .await
        .expect("first round (snapshot + segments)");
    let client = f.client.clone();
    let lists = || client.stats().operations(crate::storage::Op::List);
    replica.enforce_retention().await.expect("first check");
    let after_first = lists();
    assert!(after_first > 0, "the first check lists the replica");
    f.write(2).await;
    replica.sync().await.expect("more segments");
    let before_second = lists();
    replica.enforce_retention().await.expect("second check");
    assert_eq!(
        lists(),
        before_second,
        "no listing while the only snapshot is inside the window"
    );
    let generation = f.db.state().generation.expect("generation");
    let first = client.snapshots(&generation).await.expect("snapshots");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    replica.enforce_retention().await.expect("third check");
    assert!(
        lists() > before_second,
        "the snapshot aged out: listed again"
    );
    let now = client.snapshots(&generation).await.expect("snapshots");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(now.len(), 1, "{now:?}");
    assert!(
        now[0].index > first[0].index,
        "retention replaced the snapshot that left the window: {first:?} -> {now:?}"
    );
}

/// With `snapshot-tiers`, a snapshot this replica writes can change the tiers' verdicts: the
/// next check lists again although nothing left the window. Without tiers it does not.
#[tokio::test]
async fn with_tiers_a_new_snapshot_ends_the_quiet_period() {
    for tiers in [None, Some(crate::config::KeepPolicy::keep_last(1))] {
        let mut f = Fixture::new().await;
        f.cfg.retention = std::time::Duration::from_secs(3600);
        f.cfg.snapshot_tiers = tiers;
        let replica = f.replica(f.client.clone());
        f.write(3).await;
        replica.sync().await.expect("first round");
        let client = f.client.clone();
        let lists = || client.stats().operations(crate::storage::Op::List);
        replica.enforce_retention().await.expect("first check");
        let before = lists();
        replica.enforce_retention().await.expect("quiet check");
        assert_eq!(lists(), before, "{tiers:?}: nothing new, not listed");
        f.write(2).await;
        replica.snapshot().await.expect("snapshot");
        let before = lists();
        replica
            .enforce_retention()
            .await
            .expect("check after a snapshot");
        assert_eq!(lists() > before, tiers.is_some(), "{tiers:?}");
    }
}

/// The shadow WAL a replica still needs is gone (another writer — the LTX one after a switch of
/// layouts — consumed it): the next round takes a snapshot at the current index, continues the
/// generation from there, and a restore gives every row.
#[tokio::test]
async fn lost_shadow_wal_is_covered_by_a_new_snapshot() {
    let mut f = Fixture::new().await;
    let replica = f.replica(f.client.clone());
    f.write(3).await;
    let at = replica.sync().await.expect("round").expect("position");
    // Without this replica's floor (a new process that has not synced yet) the db rolls its
    // WAL index and drops the shadow file the stored position points into.
    let mut local = f.write(5).await;
    while local.index == at.index {
        local = f.write(20).await;
    }
    std::fs::remove_file(f.db.shadow_wal_path(&at.generation, at.index)).expect("remove shadow");
    let restarted = f.replica(f.client.clone());
    let end = restarted
        .sync()
        .await
        .expect("recovering round")
        .expect("pos");
    assert_eq!(Some(end.clone()), f.db.state().pos);
    let snapshots = f.client.snapshots(&end.generation).await.expect("list");
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    assert!(
        snapshots.iter().any(|s| s.index > at.index),
        "{snapshots:?}"
    );
    // A restart finds the end from storage alone.
    let again = f.replica(f.client.clone());
    assert_eq!(again.resume(&end.generation).await.expect("resume"), end);

    let out = f.dir.path().join("restored.db");
    let restored = crate::replica::test_fixture::restored_rows(&f.client, &out).await;
    let app: i64 = f
        .app
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count");
    assert_eq!(restored, app);
}

/// A damaged database file never becomes a new generation's first snapshot: the round fails
/// with the check's finding and storage holds nothing of it.
#[tokio::test]
async fn damaged_source_is_not_snapshotted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = crate::db::check::testkit::filled_database(dir.path());
    crate::db::check::testkit::damage(&path);

    let (_db, client, replica) =
        crate::replica::test_fixture::replica_of(dir.path(), &path, false).await;
    let err = replica
        .sync()
        .await
        .expect_err("a damaged source must not be snapshotted");
    assert!(
        matches!(err, crate::replica::ReplicaError::Damaged { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("fails quick_check"), "{err}");
    let generations = client.generations().await.expect("list");
    for g in &generations {
        assert!(client.snapshots(g).await.expect("snapshots").is_empty());
    }
}

/// Damage found after the generation started: the periodic (or requested) snapshot is refused,
/// the status says so until a check passes, and the replica's latest point stays the last good
/// one.
#[tokio::test]
async fn a_database_damaged_later_is_not_snapshotted_and_latest_stays_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = crate::db::check::testkit::filled_database(dir.path());
    let (_db, client, replica) =
        crate::replica::test_fixture::replica_of(dir.path(), &path, false).await;
    let start = replica.sync().await.expect("first round").expect("pos");
    let good = std::fs::read(&path).expect("read good bytes");
    assert_eq!(replica.status().source_damaged, None);

    crate::db::check::testkit::damage(&path);
    let err = replica
        .snapshot()
        .await
        .expect_err("a damaged database must not be snapshotted");
    assert!(
        matches!(err, crate::replica::ReplicaError::Damaged { .. }),
        "{err}"
    );
    let finding = replica
        .status()
        .source_damaged
        .expect("status names the damage");
    assert!(finding.contains("app.db"), "{finding}");
    let snapshots = client.snapshots(&start.generation).await.expect("list");
    assert_eq!(
        snapshots.len(),
        1,
        "only the good first snapshot: {snapshots:?}"
    );

    // Latest restores the good content.
    let n =
        crate::replica::test_fixture::restored_rows(&client, &dir.path().join("restored.db")).await;
    assert_eq!(n, 500);

    // Repaired: the next snapshot goes ahead and the status clears.
    std::fs::write(&path, good).expect("repair");
    replica
        .snapshot()
        .await
        .expect("snapshot of the repaired database");
    assert_eq!(replica.status().source_damaged, None);
}

/// A validation that falls on a running snapshot waits for it to end instead of being reported
/// as failed (with `snapshot-interval` and `validation-interval` both set they meet regularly).
#[tokio::test]
async fn validation_waits_for_a_running_snapshot() {
    let mut f = Fixture::new().await;
    let replica = f.replica(f.client.clone());
    f.write(3).await;
    replica.sync().await.expect("round");
    let guard = f.db.begin_snapshot().await.expect("snapshot guard");
    let validation = {
        let r = Arc::clone(&replica);
        tokio::spawn(async move { r.validate().await })
    };
    // The validation finds the snapshot running (its first attempt is immediate) …
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    drop(guard);
    // … and, once it is done, needs the replica to reach the restarted index: keep syncing.
    while !validation.is_finished() {
        replica.sync().await.expect("round");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let result = validation.await.expect("validation task");
    assert_eq!(
        result.outcome,
        super::ValidationOutcome::Ok,
        "{:?}",
        result.message
    );
}

/// Storage stamps whole seconds (S3's `LastModified`) and a latest restore takes the generation
/// updated last, the first listed on a tie: a new generation (a restart that lost its position)
/// is stored in a later second than everything of the previous one, so a restart within the
/// same second cannot make restore pick the older generation (found by the crash suite on S3).
#[tokio::test]
async fn new_generation_is_stamped_a_later_second_than_the_previous_one() {
    let mut f = Fixture::new().await;
    let first = f.replica(f.client.clone());
    f.write(3).await;
    let old = first.sync().await.expect("round").expect("position");
    // A new process whose generation is gone: close, forget it, reopen.
    f.db.close().await.expect("close");
    let path = f.dir.path().join("app.db");
    std::fs::remove_file(f.dir.path().join(".app.db-litestream/generation")).expect("forget");
    let db = crate::db::Db::new(&crate::config::DbConfig::with_defaults(&path));
    db.open().await.expect("reopen");
    f.app
        .execute("INSERT INTO t(v) VALUES ('after the restart')", [])
        .expect("insert");
    db.sync().await.expect("db sync");
    let second = Replica::new(Arc::clone(&db), f.cfg.clone(), f.client.clone());
    let new = second.sync().await.expect("round").expect("position");
    assert_ne!(new.generation, old.generation);

    let bounds = |g: &str| {
        let g = g.to_string();
        let client = f.client.clone();
        async move {
            let mut times: Vec<_> = client
                .snapshots(&g)
                .await
                .expect("snapshots")
                .iter()
                .map(|s| s.created_at)
                .collect();
            let segs = client.wal_segments(&g).await.expect("segments");
            times.extend(segs.iter().map(|s| s.created_at));
            let lo = times.iter().min().copied().expect("objects");
            let hi = times.iter().max().copied().expect("objects");
            (lo, hi)
        }
    };
    let (_, old_last) = bounds(&old.generation).await;
    let (new_first, _) = bounds(&new.generation).await;
    assert!(
        new_first.timestamp() > old_last.timestamp(),
        "new generation's first object at {new_first}, old generation's last at {old_last}"
    );
}
