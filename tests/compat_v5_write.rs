//! Compatibility of the replicas walstream writes in the Litestream v0.5 (LTX) layout with the
//! real `litestream restore` v0.5.17: walstream `replicate`, given a v0.5-shaped config (singular
//! `replica:`, short `levels`, a short snapshot interval and retention, a short `l0-retention`),
//! replicates inserts, updates, deletes, a transaction over 4 MiB, an application checkpoint and
//! a restart of walstream; then v0.5.17 must restore the source's final content (integrity
//! checked), and every `-txid` (a file boundary it lists) and `-timestamp` it restores must be a
//! state the source really had, never one committed after the timestamp, in TXID order; and
//! walstream's own restore must give the same content for each. The replica must show
//! compaction at L1 and L2, an L9 snapshot and retention having deleted files. Finally the real
//! `litestream replicate` v0.5.17 continues the same replica, then walstream continues after it,
//! and both restores still give the source's final content.
//!
//! Needs the test servers for S3/GCS/Azure and `WALSTREAM_TEST_LITESTREAM5`:
//! `bash scripts/test.sh -- cargo test --test compat_v5_write`.

mod common;
#[path = "replicate_support/mod.rs"]
mod support;
mod v5_support;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use common::{Backend, Proc, litestream5_bin, poll_until, unique_name};
use rusqlite::Connection;
use v5_support::{LtxRow, V5Replica, ls_restore, ltx_rows, remove_db, ws_restore};

/// Upper bound for the hand-over's replication to show up.
const DEADLINE: Duration = Duration::from_secs(60);

/// One source state: its content digest and when its commit started.
#[derive(Debug, Clone)]
struct State {
    digest: u64,
    before: SystemTime,
}

/// Digest of every row of `t` (after `PRAGMA integrity_check` returned `ok`).
fn digest(db: &Path) -> u64 {
    let c = Connection::open(db).expect("open db");
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok", "{}", db.display());
    let rows = support::rows(&c);
    let mut h = DefaultHasher::new();
    rows.hash(&mut h);
    h.finish()
}

/// The workload: returns every state the source went through, in order.
struct Source {
    app: Connection,
    path: PathBuf,
    states: Vec<State>,
    next_id: i64,
}

impl Source {
    fn open(path: &Path) -> Source {
        let app = support::open_app(path);
        let mut s = Source {
            app,
            path: path.to_path_buf(),
            states: Vec::new(),
            next_id: 1,
        };
        s.record(SystemTime::now());
        s
    }

    fn record(&mut self, before: SystemTime) {
        let digest = {
            let rows = support::rows(&self.app);
            let mut h = DefaultHasher::new();
            rows.hash(&mut h);
            h.finish()
        };
        self.states.push(State { digest, before });
    }

    /// Runs `sql` as one transaction and records the state it made.
    fn tx(&mut self, f: impl FnOnce(&Connection, &mut i64)) {
        let before = SystemTime::now();
        let tx = self.app.unchecked_transaction().expect("begin");
        f(&tx, &mut self.next_id);
        tx.commit().expect("commit");
        self.record(before);
    }

    fn inserts(&mut self, n: usize, spacing: Duration) {
        for _ in 0..n {
            self.tx(|c, id| {
                support::insert(c, *id);
                *id += 1;
            });
            std::thread::sleep(spacing);
        }
    }

    /// One transaction of more than 4 MiB.
    fn big_transaction(&mut self) {
        self.tx(|c, id| {
            for _ in 0..1200 {
                c.execute(
                    "INSERT INTO t(id, v) VALUES (?1, ?2)",
                    rusqlite::params![*id, format!("big-{id}-{}", "b".repeat(4000))],
                )
                .expect("insert big");
                *id += 1;
            }
        });
    }
}

/// A replica of `backend` under a fresh prefix, with the config both tools read.
fn setup(backend: Backend, dir: &Path) -> V5Replica {
    let prefix = unique_name("ws-ltx");
    let db_path = dir.join("app.db");
    let replica_dir = dir.join("replica");
    let yaml = backend
        .replica_yaml(&prefix, &replica_dir)
        .replace("type: \"gcs\"", "type: \"gs\"");
    let item: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
    let cfg = dir.join("litestream.yml");
    let text = format!(
        "levels:\n  - interval: 1s\n  - interval: 3s\nsnapshot:\n  interval: 4s\n  retention: 6s\n\
         l0-retention: 1s\nl0-retention-check-interval: 500ms\nverify-compaction: true\n\
         dbs:\n  - path: {db}\n    monitor-interval: 50ms\n    replica:\n{item}      sync-interval: 50ms\n",
        db = db_path.display()
    );
    std::fs::write(&cfg, text).expect("write config");
    V5Replica {
        backend,
        dir: dir.to_path_buf(),
        db_path,
        ls_config: cfg.clone(),
        ws_config: cfg,
        url: backend
            .replica_url(&prefix, &replica_dir)
            .map(|u| u.replacen("gcs://", "gs://", 1)),
        ls_env: backend.env_for_litestream(),
        ws_env: backend.env_for_walstream(),
        rows: 0,
        v3_done: None,
    }
}

fn start(r: &V5Replica) -> support::Proc {
    let cfg = r.ws_config.display().to_string();
    support::walstream_env(&r.dir, &["-config", &cfg], &r.ws_env)
}

/// Restores with both tools; both succeed with the same content, or both fail. Returns the
/// index of the source state restored.
fn restore_both(r: &V5Replica, states: &[State], label: &str, extra: &[&str]) -> Option<usize> {
    let (ls_out, ws_out) = (r.dir.join("ls-out.db"), r.dir.join("ws-out.db"));
    remove_db(&ls_out);
    remove_db(&ws_out);
    let ls = ls_restore(r, &ls_out, extra);
    let ws = ws_restore(r, &ws_out, extra);
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        ls.status.success(),
        ws.status.success(),
        "{label}: litestream {} / walstream {}",
        text(&ls),
        text(&ws)
    );
    if !ls.status.success() {
        eprintln!(
            "{label}: neither tool restores: litestream {} / walstream {}",
            text(&ls).trim(),
            text(&ws).trim()
        );
        return None;
    }
    let (a, b) = (digest(&ls_out), digest(&ws_out));
    assert_eq!(a, b, "{label}: both tools restore the same content");
    let found = states.iter().rposition(|s| s.digest == a);
    Some(found.unwrap_or_else(|| panic!("{label}: restored a state the source never had")))
}

/// Within each level the files follow each other exactly: each starts one past the previous
/// one's end (retention only removes a level's oldest files).
fn assert_no_gap_or_overlap(rows: &[LtxRow]) {
    for level in 0..9u8 {
        let mut files: Vec<(u64, u64)> = rows
            .iter()
            .filter(|r| r.level == level)
            .map(|r| {
                let n = |s: &str| u64::from_str_radix(s, 16).expect("hex txid");
                (n(&r.min_txid), n(&r.max_txid))
            })
            .collect();
        files.sort();
        for pair in files.windows(2) {
            assert_eq!(
                pair[1].0,
                pair[0].1 + 1,
                "level {level}: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
}

fn run(backend: Backend) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let r = setup(backend, &dir);
    let mut src = Source::open(&r.db_path);
    let spacing = Duration::from_millis(40);

    let ws = start(&r);
    src.inserts(40, spacing);
    src.tx(|c, _| {
        c.execute("UPDATE t SET v = v || '-upd' WHERE id % 3 = 0", [])
            .expect("update");
    });
    src.tx(|c, _| {
        c.execute("DELETE FROM t WHERE id % 5 = 0", [])
            .expect("delete");
    });
    src.big_transaction();
    src.inserts(20, spacing);
    src.app
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("application checkpoint");
    src.inserts(20, spacing);
    let log = ws.stop();
    assert_eq!(
        log.matches("write full-image l0").count(),
        1,
        "one full image (TXID 1): checkpoints and snapshots keep continuity:\n{log}"
    );

    // Writes while walstream is down, then a restart.
    src.inserts(5, Duration::ZERO);
    let ws = start(&r);
    src.inserts(60, spacing);
    src.tx(|c, _| {
        c.execute("DELETE FROM t WHERE id % 7 = 0", [])
            .expect("delete");
    });
    // Long enough for L2 compactions, a second snapshot and retention.
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        src.inserts(1, Duration::from_millis(100));
    }
    let log2 = ws.stop();
    assert!(
        log2.contains("ltx replica position recovered"),
        "restart recovers the position from the replica:\n{log2}"
    );
    assert!(
        log2.contains("continuous=true") && !log2.contains("write full-image l0"),
        "the restart continues from the newest L0 without a full image:\n{log2}"
    );

    // SIGKILL while replicating, then a restart: nothing lost, no gap or overlap.
    let ws = start(&r);
    src.inserts(30, Duration::from_millis(5));
    let killed_log = ws.kill9();
    assert!(killed_log.contains("replicating to"), "{killed_log}");
    let ws = start(&r);
    src.inserts(10, spacing);
    let log3 = ws.stop();

    // Latest: the final source state, by both tools.
    let last = src.states.len() - 1;
    assert_eq!(
        restore_both(&r, &src.states, "latest", &[]),
        Some(last),
        "latest restore is the source's final state"
    );
    assert_eq!(digest(&src.path), src.states[last].digest);

    // What the replica holds: compaction at L1 and L2, snapshots, retention having run.
    let rows = ltx_rows(&r, false);
    assert_no_gap_or_overlap(&rows);
    let levels: std::collections::BTreeSet<u8> = rows.iter().map(|r| r.level).collect();
    for level in [1, 2, 9] {
        assert!(levels.contains(&level), "level {level} present: {rows:?}");
    }
    let all_logs = format!("{log}{log2}{log3}");
    assert!(
        all_logs.contains("ltx retention deleted files"),
        "retention ran:\n{all_logs}"
    );
    assert!(all_logs.contains("ltx compaction"), "compaction ran");
    // verify-compaction re-listed every compacted level: no gap or overlap a restore needs.
    assert!(
        !all_logs.contains("post-compaction verification failed"),
        "{all_logs}"
    );

    // -txid at every listed file end: a real state, in TXID order (ends inside a compacted
    // range whose L0 files are gone cannot be reached; both tools must then refuse).
    let mut ends: Vec<&str> = rows.iter().map(|r| r.max_txid.as_str()).collect();
    ends.sort();
    ends.dedup();
    let mut prev = 0usize;
    let mut restored_txids = 0;
    for txid in &ends {
        let label = format!("-txid {txid}");
        if let Some(i) = restore_both(&r, &src.states, &label, &["-txid", txid]) {
            assert!(i >= prev, "{label}: state {i} before {prev}");
            prev = i;
            restored_txids += 1;
        }
    }
    assert!(restored_txids >= 2, "several -txid restores: {ends:?}");

    // -timestamp: never a state committed after T; later T, later or equal state. v0.5.17 refuses
    // a T after the newest file's timestamp ("timestamp does not exist"), so probes stop there.
    let stamps: Vec<SystemTime> = rows
        .iter()
        .map(|r| {
            let t = DateTime::parse_from_rfc3339(&r.timestamp).expect("timestamp");
            SystemTime::from(t.with_timezone(&Utc))
        })
        .collect();
    // Whole seconds: the oldest file is stored at or after its listed second.
    let first = *stamps.iter().min().expect("files") + Duration::from_secs(1);
    let end = *stamps.iter().max().expect("files");
    let span = end.duration_since(first).unwrap_or_default();
    let mut prev = 0usize;
    let mut restored_ts = 0;
    for k in 0..=12u32 {
        let t = first + span * k / 12;
        let ts = DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true);
        let label = format!("-timestamp {ts}");
        if let Some(i) = restore_both(&r, &src.states, &label, &["-timestamp", &ts]) {
            assert!(
                src.states[i].before < t,
                "{label}: state {i} committed after T"
            );
            assert!(i >= prev, "{label}: state {i} before {prev}");
            prev = i;
            restored_ts += 1;
        }
    }
    assert!(restored_ts >= 4, "several -timestamp restores");
    eprintln!("{restored_txids} -txid and {restored_ts} -timestamp restores agreed");

    hand_over(&r, &mut src, spacing);
}

/// Hand-over on one replica, walstream → v0.5.17 → walstream → v0.5.17, with the same config
/// file: no commit is lost and neither tool writes a full image, as neither does when it restarts
/// on its own state (v0.5.17 runs with debug logging: its `sync` lines say `snap=true` for one).
fn hand_over(r: &V5Replica, src: &mut Source, spacing: Duration) {
    let debug_cfg = r.dir.join("litestream-debug.yml");
    let text = std::fs::read_to_string(&r.ls_config).expect("config");
    std::fs::write(&debug_cfg, format!("{text}logging:\n  level: debug\n")).expect("write");
    for leg in 0..2 {
        let log = r.dir.join(format!("litestream5-{leg}.log"));
        let mut ls = Proc::litestream_config(&litestream5_bin(), &debug_cfg, &r.ls_env, &log);
        src.inserts(15, spacing);
        let want = src.states.len() - 1;
        let probe = r.dir.join("probe.db");
        poll_until(DEADLINE, "v0.5.17 to replicate the new rows", || {
            ls.assert_running();
            remove_db(&probe);
            let out = ls_restore(r, &probe, &[]);
            (out.status.success() && digest(&probe) == src.states[want].digest).then_some(())
        });
        let ls_log = ls.stop_litestream();
        assert!(
            ls_log.contains("msg=sync ") && !ls_log.contains("snap=true"),
            "v0.5.17 continues walstream's newest L0 without a full image:\n{ls_log}"
        );
        assert_eq!(
            restore_both(r, &src.states, "after v0.5.17", &[]),
            Some(want)
        );
        if leg == 1 {
            break;
        }

        let ws = start(r);
        src.inserts(15, spacing);
        let ws_log = ws.stop();
        assert!(
            ws_log.contains("ltx replica position recovered")
                && ws_log.contains("continuous=true")
                && !ws_log.contains("write full-image l0"),
            "walstream continues v0.5.17's newest L0 without a full image:\n{ws_log}"
        );
        let last = src.states.len() - 1;
        assert_eq!(
            restore_both(r, &src.states, "walstream after v0.5.17", &[]),
            Some(last)
        );
    }
}

#[test]
fn file_replica_restores_with_litestream_v0_5_17() {
    run(Backend::File);
}

#[test]
fn s3_replica_restores_with_litestream_v0_5_17() {
    run(Backend::S3);
}

#[test]
fn gcs_replica_restores_with_litestream_v0_5_17() {
    run(Backend::Gcs);
}

#[test]
fn azure_replica_restores_with_litestream_v0_5_17() {
    run(Backend::Abs);
}

/// Litestream v0.5.17 stopped after writing L0 files into its meta directory but before
/// uploading them (here: the replica's newest two L0 files are removed, as if never uploaded).
/// walstream uploads them, continues after them without a full image, and removes the stale
/// local directory; v0.5.17 then continues after walstream, again without a full image.
#[test]
fn litestream_local_l0_files_are_taken_over() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let r = setup(Backend::File, &dir);
    // Long level intervals: no compaction covers the files taken away below.
    let text = format!(
        "levels:\n  - interval: 1h\nsnapshot:\n  interval: 24h\n  retention: 24h\n\
         dbs:\n  - path: {}\n    monitor-interval: 50ms\n    replica:\n      type: file\n      \
         path: {}\n      sync-interval: 50ms\n",
        r.db_path.display(),
        dir.join("replica").display()
    );
    std::fs::write(&r.ls_config, &text).expect("config");
    let debug_cfg = dir.join("litestream-debug.yml");
    std::fs::write(&debug_cfg, format!("{text}logging:\n  level: debug\n")).expect("config");
    let spacing = Duration::from_millis(40);
    let mut src = Source::open(&r.db_path);

    let ls_run = |src: &mut Source, name: &str| {
        let log = dir.join(name);
        let ls = Proc::litestream_config(&litestream5_bin(), &debug_cfg, &r.ls_env, &log);
        src.inserts(20, spacing);
        let want = src.states.len() - 1;
        let probe = dir.join("probe.db");
        let mut ls = ls;
        poll_until(DEADLINE, "v0.5.17 to replicate the new rows", || {
            ls.assert_running();
            remove_db(&probe);
            let out = ls_restore(&r, &probe, &[]);
            (out.status.success() && digest(&probe) == src.states[want].digest).then_some(())
        });
        (ls.stop_litestream(), want)
    };
    let (first_log, stopped_at) = ls_run(&mut src, "litestream-0.log");
    assert!(
        first_log.contains("snap=true"),
        "v0.5.17 starts with a full image"
    );

    let l0 = dir.join("replica/ltx/0");
    let local = dir.join(".app.db-litestream/ltx/0");
    let mut names: Vec<String> = std::fs::read_dir(&l0)
        .expect("replica l0")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let taken: Vec<String> = names.split_off(names.len() - 2);
    for name in &taken {
        assert!(local.join(name).exists(), "v0.5.17 keeps {name} locally");
        std::fs::remove_file(l0.join(name)).expect("remove");
    }
    let newest_txid = taken[1].split('-').next().expect("name").to_string();

    let ws = start(&r);
    src.inserts(20, spacing);
    let ws_log = ws.stop();
    assert!(
        ws_log.contains("litestream v0.5 local state taken over")
            && ws_log.contains("uploaded=2")
            && ws_log.contains("continuous=true")
            && !ws_log.contains("write full-image l0"),
        "walstream uploads v0.5.17's two local files and continues after them:\n{ws_log}"
    );
    for name in &taken {
        assert!(l0.join(name).exists(), "{name} uploaded");
    }
    // Whether or not v0.5.17's start-up L9 snapshot already covered them, L0 has no gap.
    assert_no_gap_or_overlap(&ltx_rows(&r, false));
    assert!(
        !dir.join(".app.db-litestream/ltx").exists(),
        "the stale local directory is removed"
    );
    assert_eq!(
        restore_both(
            &r,
            &src.states,
            "-txid of the taken-over file",
            &["-txid", &newest_txid]
        ),
        Some(stopped_at),
        "the newest taken-over file ends where v0.5.17 stopped"
    );
    let last = src.states.len() - 1;
    assert_eq!(
        restore_both(&r, &src.states, "walstream after v0.5.17", &[]),
        Some(last)
    );

    let (ls_log, want) = ls_run(&mut src, "litestream-1.log");
    assert!(
        ls_log.contains("fetched latest L0 file from replica") && !ls_log.contains("snap=true"),
        "v0.5.17 continues walstream's newest L0 without a full image:\n{ls_log}"
    );
    assert_eq!(
        restore_both(&r, &src.states, "v0.5.17 after walstream", &[]),
        Some(want)
    );
}
