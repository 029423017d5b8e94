//! Replica compatibility of `walstream replicate` with the real Litestream, on every backend
//! (file, S3/moto, Azure/azurite, GCS/fake-gcs-server):
//! - a database replicated by walstream through inserts, updates, deletes, a transaction larger
//!   than 4 MiB (several LZ4 blocks, multipart upload), enough writes to roll many WAL indexes, a
//!   restart (same generation), and a forced new generation (WAL reset while walstream is down)
//!   is restored by `litestream restore` v0.3.13 — and by v0.5.17 on the backends v0.5 reads v0.3
//!   replicas from (file, S3; spec §11) — to content equal to the source, with
//!   `PRAGMA integrity_check` = ok;
//! - `litestream generations|snapshots|wal` list walstream's replica exactly like walstream does
//!   (and, on the file backend, like the files on disk);
//! - hand-over both ways: Litestream → walstream and walstream → Litestream continue the same
//!   generation without a new snapshot, and the result restores to the source.
//!
//! Needs the servers and binaries of `scripts/test.sh` (`WALSTREAM_TEST_*`).

mod common;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use common::{Backend, litestream_bin, litestream5_bin, walstream_bin};
use support::workload::*;
use support::*;

/// One database replicated to one backend, with the config both tools read.
struct Case(Site);

impl std::ops::Deref for Case {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.0
    }
}

impl Case {
    fn new(backend: Backend) -> Case {
        Case(Site::new(backend, "replicate"))
    }

    /// The config for both tools: fast intervals, WAL indexes rolling every few writes.
    fn config(&self) -> String {
        let path = self.path().join("replicate.yml");
        if !path.exists() {
            let text = format!(
                "dbs:\n  - path: {}\n    monitor-interval: 50ms\n    min-checkpoint-page-count: 16\n    replicas:\n{}        sync-interval: 100ms\n",
                self.db().display(),
                self.replica_item()
            );
            std::fs::write(&path, text).expect("write config");
        }
        path.display().to_string()
    }

    fn walstream(&self) -> Proc {
        self.0.walstream(&self.config())
    }

    fn litestream(&self) -> Proc {
        self.0.litestream(&self.config())
    }

    /// `litestream restore` v0.3.13 through the config.
    fn restore3(&self, name: &str) -> Vec<(i64, String)> {
        let db = self.db().display().to_string();
        let out = self.path().join(name);
        let env = self.backend.env_for_litestream();
        restore_with(
            &litestream_bin(),
            &env,
            &["-config", &self.config(), &db],
            &out,
        )
    }

    /// `litestream restore` v0.3.13 into `restored.db` gives the source's content.
    fn assert_restore3_is_source(&self) {
        self.restore3("restored.db");
        assert_eq!(
            content(&self.path().join("restored.db")),
            content(&self.db())
        );
    }

    /// `litestream restore` v0.5.17 (v0.3 replicas: file and S3 clients only).
    fn restore5(&self, name: &str) -> Vec<(i64, String)> {
        let cfg = self.path().join("litestream5.yml");
        let replica = self.backend.replica_yaml(&self.prefix, &self.replica_dir());
        let indented: String = replica.lines().map(|l| format!("      {l}\n")).collect();
        let text = format!(
            "dbs:\n  - path: {}\n    replica:\n{indented}",
            self.db().display()
        );
        std::fs::write(&cfg, text).expect("write v0.5 config");
        let db = self.db().display().to_string();
        let out = self.path().join(name);
        let cfg = cfg.display().to_string();
        let env = self.backend.env_for_litestream();
        restore_with(&litestream5_bin(), &env, &["-config", &cfg, &db], &out)
    }

    /// stdout of `BIN <cmd> -config C DB` (a listing command); must succeed.
    fn listing(&self, bin: &Path, env: &[(String, String)], cmd: &str) -> String {
        let db = self.db().display().to_string();
        let out = common::run(
            Command::new(bin)
                .args([cmd, "-config", &self.config(), &db])
                .envs(env.iter().map(|(k, v)| (k, v))),
        );
        common::stdout_text(&out)
    }

    /// [`Site::wait_replicated`] through the config.
    fn wait_replicated(&self) {
        self.0.wait_replicated(&self.config())
    }

    fn litestream_listing(&self, cmd: &str) -> String {
        self.listing(&litestream_bin(), &self.backend.env_for_litestream(), cmd)
    }

    fn walstream_listing(&self, cmd: &str) -> String {
        self.listing(&walstream_bin(), &self.backend.env_for_walstream(), cmd)
    }
}

/// Table rows split into fields, header dropped.
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Runs the whole replication story; returns the number of `t` rows ever inserted.
fn replicate_story(case: &Case) {
    let c = app(&case.db());
    let ws = case.walstream();
    insert_range(&c, 1, 150);
    mixed_changes(&c, 1, 80);
    insert_range(&c, 150, 300);
    let log = ws.stop();
    assert!(log.contains("sync: new generation"), "{log}");

    // Restart: same generation, no new snapshot.
    let generations = table(&case.litestream_listing("generations"));
    let snapshots = case.litestream_listing("snapshots");
    let ws = case.walstream();
    insert_range(&c, 300, 400);
    let log = ws.stop();
    assert!(!log.contains("new generation"), "{log}");
    assert_eq!(
        table(&case.litestream_listing("generations")).len(),
        generations.len()
    );
    assert_eq!(
        case.litestream_listing("snapshots"),
        snapshots,
        "restart took a snapshot"
    );

    // Object stores list times in whole seconds, and Litestream v0.3.13's restore takes the
    // generation with the strictly greatest last write, the first in id order (random) on a
    // tie: the next generation's objects must not share a second with this one's last.
    next_second();

    // WAL reset while walstream is down: the next start must begin a new generation.
    let (busy, _, _): (i64, i64, i64) = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    assert_eq!(busy, 0);
    insert_range(&c, 400, 420);
    let ws = case.walstream();
    insert_range(&c, 420, 500);
    mixed_changes(&c, 2, 80);
    insert_range(&c, 500, 600);
    let log = ws.stop();
    assert!(log.contains("sync: new generation"), "{log}");
}

/// Waits (polling the clock, with the suite's deadline) until the wall clock is in a later
/// whole second than now.
fn next_second() {
    let second = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
    };
    let start = second(std::time::SystemTime::now());
    common::poll_until(DEADLINE, "the next whole second", || {
        second(std::time::SystemTime::now()) > start
    });
}

/// Drops the columns that may legitimately differ between the two tools' listings: `lag` of
/// `generations` (measured at different instants) and, on Azure, every timestamp — Litestream
/// reads a blob's `CreationTime` while object_store only exposes `Last-Modified`, which azurite
/// sets when a multipart (block list) upload commits, up to a second later.
fn comparable(case: &Case, cmd: &str, text: &str) -> Vec<Vec<String>> {
    let abs = case.backend == Backend::Abs;
    let drop: &[usize] = match (cmd, abs) {
        ("generations", false) => &[2],
        ("generations", true) => &[2, 3, 4],
        ("snapshots", true) => &[4],
        ("wal", true) => &[5],
        _ => &[],
    };
    table(text)
        .into_iter()
        .map(|r| {
            r.into_iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, f)| f)
                .collect()
        })
        .collect()
}

fn assert_listings_match(case: &Case) {
    for cmd in ["snapshots", "wal", "generations"] {
        let lt = case.litestream_listing(cmd);
        let ws = case.walstream_listing(cmd);
        if case.backend != Backend::Abs && cmd != "generations" {
            assert_eq!(lt, ws, "{cmd}");
        }
        assert_eq!(
            comparable(case, cmd, &lt),
            comparable(case, cmd, &ws),
            "{cmd}"
        );
    }
    assert_eq!(table(&case.litestream_listing("generations")).len(), 2);
    let wal = table(&case.litestream_listing("wal"));
    let indexes: std::collections::BTreeSet<(String, String)> =
        wal.iter().map(|r| (r[1].clone(), r[2].clone())).collect();
    assert!(wal.len() >= 20, "few segments: {wal:?}");
    assert!(indexes.len() >= 4, "WAL indexes did not roll: {indexes:?}");
    if case.backend == Backend::File {
        // Ground truth: one `wal` row per segment file, sizes equal.
        let mut files = Vec::new();
        for g in list(&case.replica_dir().join("generations")) {
            let dir = case.replica_dir().join("generations").join(&g).join("wal");
            for name in list(&dir) {
                let size = std::fs::metadata(dir.join(&name)).expect("stat").len();
                files.push((g.clone(), name, size));
            }
        }
        assert_eq!(files.len(), wal.len());
        for (row, (g, name, size)) in wal.iter().zip(&files) {
            let want = format!(
                "{:08x}_{:08x}.wal.lz4",
                row[2].parse::<u32>().expect("index"),
                row[3].parse::<u64>().expect("offset")
            );
            assert_eq!((&row[1], &want, &row[4]), (g, name, &size.to_string()));
        }
    }
}

fn compat(backend: Backend) {
    let case = Case::new(backend);
    replicate_story(&case);
    let source = content(&case.db());
    // ids 1..=599, minus the multiples of 5 up to 499 deleted by the two mixed_changes.
    assert_eq!(source.0.len(), 500, "source rows");
    let restored = case.restore3("restored3.db");
    assert_eq!(restored, source.0);
    assert_eq!(content(&case.path().join("restored3.db")), source);
    if matches!(backend, Backend::File | Backend::S3) {
        case.restore5("restored5.db");
        assert_eq!(content(&case.path().join("restored5.db")), source);
    }
    assert_listings_match(&case);
}

/// What the first tool of a hand-over replicates: ids 1..100 and a large transaction.
fn first_half(c: &rusqlite::Connection) {
    insert_range(c, 1, 100);
    mixed_changes(c, 1, 80);
}

/// Litestream writes first, walstream continues: same generation, no new snapshot.
fn handover_from_litestream(backend: Backend) {
    let case = Case::new(backend);
    let c = app(&case.db());
    let lt = case.litestream();
    first_half(&c);
    case.wait_replicated();
    lt.stop_litestream();
    let generations = case.litestream_listing("generations");
    let snapshots = case.litestream_listing("snapshots");
    assert_eq!(table(&generations).len(), 1);
    let ws = case.walstream();
    insert_range(&c, 100, 200);
    let log = ws.stop();
    assert!(!log.contains("new generation"), "{log}");
    assert!(!log.contains("write snapshot"), "{log}");
    assert_eq!(table(&case.litestream_listing("generations")).len(), 1);
    assert_eq!(case.litestream_listing("snapshots"), snapshots);
    case.assert_restore3_is_source();
}

/// walstream writes first, Litestream continues: same generation, no new snapshot.
fn handover_to_litestream(backend: Backend) {
    let case = Case::new(backend);
    let c = app(&case.db());
    let ws = case.walstream();
    first_half(&c);
    ws.stop();
    let snapshots = case.litestream_listing("snapshots");
    assert_eq!(table(&case.litestream_listing("generations")).len(), 1);
    let lt = case.litestream();
    insert_range(&c, 100, 200);
    case.wait_replicated();
    let log = lt.stop_litestream();
    assert!(!log.contains("new generation"), "{log}");
    assert_eq!(table(&case.litestream_listing("generations")).len(), 1);
    assert_eq!(case.litestream_listing("snapshots"), snapshots);
    case.assert_restore3_is_source();
}

crate::backend_tests! {
    compat_file: compat => File;
    compat_s3: compat => S3;
    compat_abs: compat => Abs;
    compat_gcs: compat => Gcs;
    handover_file: handover_from_litestream, handover_to_litestream => File;
    handover_s3: handover_from_litestream, handover_to_litestream => S3;
    handover_abs: handover_from_litestream, handover_to_litestream => Abs;
    handover_gcs: handover_from_litestream, handover_to_litestream => Gcs;
}
