//! Moving a database's replica from the Litestream v0.3 layout to LTX with walstream (issue:
//! "Moving from Litestream v0.3 to v0.5 with walstream" in the README): walstream replicates
//! with a v0.3-shaped config (`replicas:` list), stops, and is restarted on the same replica
//! path with a v0.5-shaped config (singular `replica:`), which writes LTX. Then:
//! - the latest restore, with walstream and with the real `litestream restore` v0.5.17, gives
//!   every row (the LTX files are newer than the v0.3 generation);
//! - a `-timestamp` between the two runs restores, with both tools, exactly the rows the v0.3
//!   generation held (it is still there and still chosen for times before the first LTX file);
//! - moving back to the v0.3 config continues the v0.3 layout, and both tools restore every row;
//! - the v0.3 generation is still listed by `walstream generations`;
//! - back on LTX with a short `snapshot.retention`, LTX retention deletes the v0.3 generation
//!   once its newest object is older than that, and both tools still restore every row.
//!
//! File and S3 only: the backends on which v0.5.17 reads the v0.3 layout at all.
//! Needs the test servers and `WALSTREAM_TEST_LITESTREAM5`:
//! `bash scripts/test.sh -- cargo test --test compat_v5_migrate`.

mod common;
mod v5_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use common::sqlite::{Rows, assert_restores_to, insert, open_app, rows};
use common::{Backend, poll_until, unique_name, walstream_bin};
use v5_support::{V5Replica, ls_restore, remove_db, ws_restore};

/// Upper bound for a run's rows to reach the replica.
const DEADLINE: Duration = Duration::from_secs(60);

/// Rows per run.
const ROWS: i64 = 40;

/// The same database and replica, once with a v0.3-shaped and once with a v0.5-shaped config.
struct Setup {
    v3: V5Replica,
    ltx: V5Replica,
}

fn setup(backend: Backend, dir: &Path) -> Setup {
    let prefix = unique_name("ws-migrate");
    let db_path = dir.join("app.db");
    let replica_dir = dir.join("replica");
    let list_item = backend.replica_list_item(&prefix, &replica_dir, 6);
    let v3_text = format!(
        "dbs:\n  - path: {db}\n    monitor-interval: 50ms\n    replicas:\n{list_item}        sync-interval: 50ms\n",
        db = db_path.display()
    );
    let yaml = backend.replica_yaml(&prefix, &replica_dir);
    let item: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
    let ltx_text = format!(
        "levels:\n  - interval: 1s\nsnapshot:\n  interval: 1h\n  retention: 2h\n\
         dbs:\n  - path: {db}\n    monitor-interval: 50ms\n    replica:\n{item}      sync-interval: 50ms\n",
        db = db_path.display()
    );
    let (v3_cfg, ltx_cfg) = (dir.join("v3.yml"), dir.join("ltx.yml"));
    std::fs::write(&v3_cfg, v3_text).expect("write v3 config");
    std::fs::write(&ltx_cfg, ltx_text).expect("write ltx config");
    let replica = |cfg: &Path| V5Replica {
        backend,
        dir: dir.to_path_buf(),
        db_path: db_path.clone(),
        ls_config: cfg.to_path_buf(),
        ws_config: cfg.to_path_buf(),
        url: backend.replica_url(&prefix, &replica_dir),
        ls_env: backend.env_for_litestream(),
        ws_env: backend.env_for_walstream(),
        rows: 0,
        v3_done: None,
    };
    Setup {
        v3: replica(&v3_cfg),
        ltx: replica(&ltx_cfg),
    }
}

/// Runs `walstream replicate` on `r`'s config while `ROWS` rows are inserted after `first`,
/// until walstream's own restore gives every row; then stops it (SIGTERM, exit 0).
fn replicate_rows(r: &V5Replica, app: &rusqlite::Connection, first: i64) -> Rows {
    let cfg = r.ws_config.display().to_string();
    let proc = common::process::walstream_env(&r.dir, &["-config", &cfg], &r.ws_env);
    for id in first..first + ROWS {
        insert(app, id);
        std::thread::sleep(Duration::from_millis(20));
    }
    let want = rows(app);
    let probe = r.dir.join("probe.db");
    poll_until(DEADLINE, "every row in the replica", || {
        remove_db(&probe);
        ws_restore(r, &probe, &[]).status.success() && common::sqlite::restored_rows(&probe) == want
    });
    remove_db(&probe);
    proc.stop();
    want
}

/// Restores `r` with both tools (`extra` flags) and checks both give exactly `expected`.
fn assert_both_restore(r: &V5Replica, extra: &[&str], expected: &Rows, label: &str) {
    for (tool, out) in [("walstream", "ws-out.db"), ("litestream", "ls-out.db")] {
        let out = r.dir.join(out);
        remove_db(&out);
        let res = if tool == "walstream" {
            ws_restore(r, &out, extra)
        } else {
            ls_restore(r, &out, extra)
        };
        assert!(
            res.status.success(),
            "{label}: {tool} restore {extra:?} failed: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        assert_restores_to(&out, expected);
        remove_db(&out);
    }
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn run(backend: Backend) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = std::fs::canonicalize(tmp.path()).expect("canonical");
    let s = setup(backend, &dir);
    let app = open_app(&s.v3.db_path);

    let v3_rows = replicate_rows(&s.v3, &app, 1);
    // Object stores keep whole-second timestamps: the switch time lies in a second of its own.
    std::thread::sleep(Duration::from_millis(1100));
    let switch = rfc3339(SystemTime::now());
    std::thread::sleep(Duration::from_millis(1100));
    let all_rows = replicate_rows(&s.ltx, &app, 1 + ROWS);
    assert_eq!(all_rows.len() as i64, 2 * ROWS);

    assert_both_restore(&s.ltx, &[], &all_rows, "latest");
    assert_both_restore(
        &s.ltx,
        &["-timestamp", &switch],
        &v3_rows,
        "before the switch",
    );

    // Moving back: the v0.3 writer continues its generation (the LTX run consumed the shadow
    // WAL it stopped in, so it first stores a snapshot at the current index).
    let back_rows = replicate_rows(&s.v3, &app, 1 + 2 * ROWS);
    assert_both_restore(&s.v3, &[], &back_rows, "after moving back");

    let out = common::run(&mut cmd_generations(&s.v3));
    let listing = common::stdout_text(&out);
    assert!(
        listing.lines().count() >= 2,
        "the v0.3 generation is still listed:\n{listing}"
    );

    // Back on LTX with a short snapshot retention: once the v0.3 generation's newest object is
    // older than it, LTX retention deletes the generation (Litestream v0.5 would keep it).
    let short = dir.join("ltx-short.yml");
    let text = std::fs::read_to_string(&s.ltx.ws_config).expect("config");
    let text = text.replace(
        "  interval: 1h\n  retention: 2h\n",
        "  interval: 1s\n  retention: 2s\n",
    );
    assert!(text.contains("retention: 2s"), "{text}");
    std::fs::write(&short, text).expect("write config");
    std::thread::sleep(Duration::from_millis(2100));
    let cfg = short.display().to_string();
    let mut proc = common::process::walstream_env(&dir, &["-config", &cfg], &s.ltx.ws_env);
    for id in 1 + 3 * ROWS..1 + 3 * ROWS + 10 {
        insert(&app, id);
        std::thread::sleep(Duration::from_millis(20));
    }
    proc.poll(
        DEADLINE,
        "ltx retention to delete the v0.3 generation",
        |p| {
            p.log_text()
                .contains("v0.3 generation deleted by ltx retention")
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let log = proc.stop();
    let out = cmd_generations(&s.v3).output().expect("run generations");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && text.contains("no v0.3 generations"),
        "no v0.3 generation is left:\n{text}\n{log}"
    );
    let final_rows = rows(&app);
    assert_both_restore(
        &s.ltx,
        &[],
        &final_rows,
        "after the v0.3 generation is gone",
    );
}

fn cmd_generations(r: &V5Replica) -> Command {
    let mut cmd = Command::new(walstream_bin());
    cmd.arg("generations")
        .args(["-config", &r.ws_config.display().to_string()])
        .arg(&r.db_path)
        .envs(r.ws_env.iter().map(|(k, v)| (k, v)));
    cmd
}

#[test]
fn file_replica_moves_from_v0_3_to_ltx() {
    run(Backend::File);
}

#[test]
fn s3_replica_moves_from_v0_3_to_ltx() {
    run(Backend::S3);
}
