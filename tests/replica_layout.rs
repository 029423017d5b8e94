//! The per-replica `layout` key (walstream): `layout: ltx` on a `replicas:` item makes
//! `replicate` write the Litestream v0.5 (LTX) layout, `layout: v0.3` on a singular `replica:`
//! the v0.3 layout; `walstream restore` reads either back to the source's content. A bad value
//! and mixed layouts on one database are one-line config errors naming the key.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use common::{run_expect_fail, walstream_bin};
use http_support::*;
use support::{insert, open_app, rows};

/// Replicates ten rows with `replica_yaml` (the whole `replicas:`/`replica:` part); returns
/// the top-level entries of the replica folder.
fn replicate(dir: &Path, replica_yaml: &str) -> Vec<String> {
    let db = dir.join("app.db");
    let app = open_app(&db);
    for id in 1..=10 {
        insert(&app, id);
    }
    let cfg = format!(
        "addr: \"127.0.0.1:0\"\ndbs:\n  - path: \"{}\"\n    monitor-interval: 50ms\n{replica_yaml}",
        db.display()
    );
    let ws = Instance::start(dir, &cfg, &[]);
    ws.wait_caught_up();
    check_restore_points(&ws, replica_yaml.contains("layout: ltx"));
    ws.proc.stop();
    let out = dir.join("restored.db");
    let restored = walstream_restore(
        &[&format!("file://{}", dir.join("replica").display())],
        &[],
        &out,
    );
    assert_eq!(restored, rows(&app));
    let mut names: Vec<String> = std::fs::read_dir(dir.join("replica"))
        .expect("replica")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `GET …/restore-points`: an LTX replica shows its levels (L0 from TXID 1, the L9 snapshot
/// taken at start) and a restorable window; a v0.3 replica its generation and `ltx: null`.
fn check_restore_points(ws: &Instance, ltx: bool) {
    let url = "/api/v1/databases/app.db/restore-points?refresh=true";
    let mut doc = serde_json::Value::Null;
    common::poll_until(std::time::Duration::from_secs(30), "restore points", || {
        doc = ws.get(url).json();
        let r = &doc["replicas"][0];
        if ltx {
            r["ltx"]["levels"].as_array().is_some_and(|l| l.len() >= 2)
        } else {
            r["generations"].as_array().is_some_and(|g| !g.is_empty())
        }
    });
    let r = &doc["replicas"][0];
    if !ltx {
        assert!(r["ltx"].is_null(), "{r:#}");
        return;
    }
    let levels = r["ltx"]["levels"].as_array().expect("levels");
    let l0 = &levels[0];
    assert_eq!(
        (l0["level"].as_u64(), l0["min_txid"].as_str()),
        (Some(0), Some("0000000000000001")),
        "{r:#}"
    );
    let l9 = levels.last().expect("a level");
    assert_eq!(l9["level"], 9, "{r:#}");
    assert_eq!(
        r["ltx"]["snapshots"].as_array().map(Vec::len),
        Some(1),
        "{r:#}"
    );
    let from = r["ltx"]["restorable_from"].as_str().expect("from");
    let to = r["ltx"]["restorable_to"].as_str().expect("to");
    assert!(from <= to, "{r:#}");
    assert_eq!(r["oldest_restore_point"].as_str(), Some(from), "{r:#}");
}

#[test]
fn layout_chooses_what_replicate_writes() {
    let (_keep, dir) = tempdir();
    let replica = dir.join("replica");
    let list_ltx = format!(
        "    replicas:\n      - path: \"{}\"\n        sync-interval: 100ms\n        layout: ltx\n",
        replica.display()
    );
    assert_eq!(replicate(&dir, &list_ltx), ["ltx", "walstream-owner.json"]);

    let (_keep2, dir2) = tempdir();
    let single_v3 = format!(
        "    replica:\n      path: \"{}\"\n      sync-interval: 100ms\n      layout: v0.3\n",
        dir2.join("replica").display()
    );
    assert_eq!(
        replicate(&dir2, &single_v3),
        ["generations", "walstream-owner.json"]
    );
}

#[test]
fn bad_and_mixed_layouts_are_config_errors() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    for (yaml, want) in [
        (
            "    replicas:\n      - path: /tmp/r1\n        layout: v4\n",
            "is not a layout: use v0.3 (generations/) or ltx",
        ),
        (
            "    replicas:\n      - path: /tmp/r1\n        layout: ltx\n      - path: /tmp/r2\n",
            "must write the same layout",
        ),
    ] {
        let cfg = dir.join("bad.yml");
        std::fs::write(
            &cfg,
            format!("dbs:\n  - path: \"{}\"\n{yaml}", db.display()),
        )
        .expect("cfg");
        let out = run_expect_fail(
            Command::new(walstream_bin())
                .args(["replicate", "-config"])
                .arg(&cfg),
        );
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(want), "{want:?} not in {text}");
    }
}
