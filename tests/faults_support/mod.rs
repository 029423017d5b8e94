//! Helpers of the storage-fault suite (`tests/storage_faults.rs`): the fault proxy
//! ([`proxy`]), walstream configs that reach moto through it (and restore configs that reach moto
//! directly), a paced application writer, and an inspection of the S3 replica's objects (one
//! generation, WAL segments contiguous with no overlap or duplicate).
//!
//! What must stay true: every wait polls with a deadline; the replica is inspected on moto
//! directly (never through the proxy), so a check cannot be faulted; restores are checked with
//! `PRAGMA integrity_check` (by `support::restore_with`).

#![allow(dead_code)]

pub mod http1;
pub mod proxy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::common::{self, Backend};
use crate::support::restore_with;

/// Token of the mutating endpoints in the suite's configs.
pub const TOKEN: &str = "storage-faults-token-7d1e";

/// Knobs of one walstream config.
pub struct Settings {
    pub sync_interval: &'static str,
    pub readiness_max_lag: &'static str,
    pub min_checkpoint_pages: u64,
    pub max_checkpoint_pages: u64,
    /// The replica writes the LTX layout (`layout: ltx`), compacting into L1 every 2 s and
    /// dropping compacted L0 files after 3 s, so compaction and retention run under the faults.
    pub ltx: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sync_interval: "100ms",
            readiness_max_lag: "2s",
            min_checkpoint_pages: 16,
            max_checkpoint_pages: 64,
            ltx: false,
        }
    }
}

/// A `walstream replicate` config: HTTP server on a free port with [`TOKEN`], database `db`
/// with fast ticks, one S3 replica named `s3` at `endpoint` (the proxy or moto) under `prefix`.
/// Credentials come from the environment ([`env`]).
pub fn config(db: &Path, endpoint: &str, prefix: &str, s: &Settings) -> String {
    let (levels, layout) = if s.ltx {
        (
            "levels:\n  - interval: 2s\nl0-retention: 3s\nl0-retention-check-interval: 1s\n",
            "        layout: ltx\n",
        )
    } else {
        ("", "")
    };
    format!(
        "{levels}addr: \"127.0.0.1:0\"\nhttp-token: \"{TOKEN}\"\nreadiness-max-lag: {lag}\ndbs:\n  \
         - path: \"{db}\"\n    monitor-interval: 50ms\n    min-checkpoint-page-count: {min}\n    \
         max-checkpoint-page-count: {max}\n    replicas:\n      - name: s3\n        type: s3\n        \
         bucket: \"{bucket}\"\n        path: \"{prefix}\"\n        endpoint: \"{endpoint}\"\n        \
         region: us-east-1\n        force-path-style: true\n        sync-interval: {sync}\n{layout}",
        lag = s.readiness_max_lag,
        db = db.display(),
        min = s.min_checkpoint_pages,
        max = s.max_checkpoint_pages,
        bucket = common::bucket(),
        sync = s.sync_interval,
    )
}

/// The replica's credentials for both walstream and Litestream (moto accepts any).
pub fn env() -> Vec<(String, String)> {
    Backend::S3.env_for_walstream()
}

/// Restores `db`'s replica under `prefix` from moto directly, with walstream and with the real
/// Litestream (v0.3.13, or v0.5.17 for an LTX replica); returns both restored row sets (each
/// already integrity-checked).
pub fn restore_both(dir: &Path, db: &Path, prefix: &str, ltx: bool) -> [Vec<(i64, String)>; 2] {
    let cfg = direct_config(dir, db, prefix, ltx);
    let args = [
        "-config",
        cfg.to_str().expect("utf-8"),
        db.to_str().expect("utf-8"),
    ];
    let peer = if ltx {
        common::litestream5_bin()
    } else {
        common::litestream_bin()
    };
    let ours = restore_with(&common::walstream_bin(), &env(), &args, &dir.join("ws.db"));
    let theirs = restore_with(&peer, &env(), &args, &dir.join("ls.db"));
    [ours, theirs]
}

/// `dir/direct.yml`: the suite's config pointing at moto directly instead of the proxy.
pub fn direct_config(dir: &Path, db: &Path, prefix: &str, ltx: bool) -> PathBuf {
    let cfg = dir.join("direct.yml");
    let settings = Settings {
        ltx,
        ..Settings::default()
    };
    let direct = config(db, &common::s3_endpoint(), prefix, &settings);
    std::fs::write(&cfg, direct).expect("write direct config");
    cfg
}

/// Asserts that every compaction level of the LTX replica (L0..L8, as `walstream ltx -level all
/// -json` lists them) is a gap-free, overlap-free run of TXID ranges, and that L0 reaches the
/// highest TXID; returns the number of files per level.
pub fn assert_clean_ltx_levels(dir: &Path, db: &Path, prefix: &str) -> BTreeMap<u64, usize> {
    let cfg = direct_config(dir, db, prefix, true);
    let out = std::process::Command::new(common::walstream_bin())
        .args(["ltx", "-level", "all", "-json", "-config"])
        .arg(&cfg)
        .arg(db)
        .envs(env())
        .output()
        .expect("run walstream ltx");
    assert!(out.status.success(), "walstream ltx failed: {out:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("ltx -json");
    let mut levels: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for r in &rows {
        let txid = |k: &str| {
            let text = r[k].as_str().unwrap_or_else(|| panic!("{k} in {r}"));
            u64::from_str_radix(text, 16).unwrap_or_else(|e| panic!("{k} {text}: {e}"))
        };
        let level = r["level"]
            .as_u64()
            .unwrap_or_else(|| panic!("level in {r}"));
        levels
            .entry(level)
            .or_default()
            .push((txid("min_txid"), txid("max_txid")));
    }
    assert!(!rows.is_empty(), "no LTX file in the replica");
    let mut counts = BTreeMap::new();
    for (level, files) in &mut levels {
        files.sort();
        counts.insert(*level, files.len());
        if *level == 9 {
            continue; // snapshots all start at TXID 1
        }
        for pair in files.windows(2) {
            assert_eq!(
                pair[1].0,
                pair[0].1 + 1,
                "L{level}: {:?} then {:?}: a gap or an overlap",
                pair[0],
                pair[1]
            );
        }
    }
    let highest = levels.values().flatten().map(|f| f.1).max();
    let l0_top = levels.get(&0).and_then(|f| f.last()).map(|f| f.1);
    assert_eq!(
        l0_top, highest,
        "L0 does not reach the highest TXID: {levels:?}"
    );
    counts
}

/// Whether moto holds an LTX file of `level` under `prefix` (S3 layout: `<prefix>/<LLLL>/`).
pub fn has_ltx_level(prefix: &str, level: u8) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let root = object_store::path::Path::from(format!("{prefix}/{level:04x}"));
    rt.block_on(async {
        let listed: Vec<_> = common::moto_store()
            .list(Some(&root))
            .try_collect()
            .await
            .expect("list level");
        listed.iter().any(|m| m.location.as_ref().ends_with(".ltx"))
    })
}

/// The size of the application's `-wal` file (0 when absent).
pub fn wal_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// One WAL segment object: index, offset and decompressed length.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    pub index: u32,
    pub offset: u64,
    pub len: u64,
}

/// What a generation holds in storage.
#[derive(Debug, Default)]
pub struct Generation {
    pub snapshots: Vec<u32>,
    pub segments: Vec<Segment>,
}

/// Lists the replica under `prefix` on moto directly and decompresses every WAL segment to learn
/// its length.
pub fn inspect_replica(prefix: &str) -> BTreeMap<String, Generation> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(inspect(prefix))
}

async fn inspect(prefix: &str) -> BTreeMap<String, Generation> {
    let store = common::moto_store();
    let root = object_store::path::Path::from(format!("{prefix}/generations"));
    let objects: Vec<_> = store
        .list(Some(&root))
        .try_collect()
        .await
        .expect("list replica");
    let mut gens: BTreeMap<String, Generation> = BTreeMap::new();
    for meta in objects {
        let key = meta.location.to_string();
        let rest = key
            .strip_prefix(&format!("{root}/"))
            .unwrap_or_else(|| panic!("key outside the replica: {key}"));
        let parts: Vec<&str> = rest.split('/').collect();
        let [generation, kind, name] = parts[..] else {
            panic!("unexpected key {key}");
        };
        let g = gens.entry(generation.to_string()).or_default();
        if kind == "snapshots" {
            let index = name.strip_suffix(".snapshot.lz4").expect("snapshot name");
            g.snapshots
                .push(u32::from_str_radix(index, 16).expect("snapshot index"));
            continue;
        }
        assert_eq!(kind, "wal", "unexpected key {key}");
        let (index, offset) = name
            .strip_suffix(".wal.lz4")
            .and_then(|n| n.split_once('_'))
            .unwrap_or_else(|| panic!("bad segment name {key}"));
        let bytes = store
            .get(&meta.location)
            .await
            .expect("get segment")
            .bytes()
            .await
            .expect("segment body");
        let data = walstream::lz4::decompress(&bytes)
            .unwrap_or_else(|e| panic!("segment {key} does not decompress: {e}"));
        g.segments.push(Segment {
            index: u32::from_str_radix(index, 16).expect("index"),
            offset: u64::from_str_radix(offset, 16).expect("offset"),
            len: data.len() as u64,
        });
    }
    for g in gens.values_mut() {
        g.snapshots.sort();
        g.segments.sort();
    }
    gens
}

/// Asserts the replica holds exactly one generation, named `generation`, with a snapshot, and
/// that in every WAL index its segments start at 0 and follow each other exactly (no gap, no
/// overlap, no duplicate), with indexes consecutive. Returns the number of segments.
pub fn assert_one_clean_generation(prefix: &str, generation: &str) -> usize {
    let gens = inspect_replica(prefix);
    let names: Vec<&String> = gens.keys().collect();
    assert_eq!(names, [generation], "generations in the replica");
    let g = &gens[generation];
    assert!(!g.snapshots.is_empty(), "no snapshot in {generation}");
    let mut expected_index = g.segments.first().map(|s| s.index).unwrap_or(0);
    let mut end = 0;
    for (i, s) in g.segments.iter().enumerate() {
        if i > 0 && s.index != g.segments[i - 1].index {
            expected_index += 1;
            end = 0;
        }
        assert_eq!(
            s.index, expected_index,
            "WAL indexes not consecutive: {s:?}"
        );
        assert!(s.len > 0, "empty segment {s:?}");
        assert_eq!(
            s.offset, end,
            "segment {s:?} does not start where the previous one ended ({end}): gap or overlap"
        );
        end = s.offset + s.len;
    }
    g.segments.len()
}
