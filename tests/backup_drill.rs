//! Restore drills (issue 17 item 10) on the real binary: `POST …/drill` restores the replica's
//! latest point and the newest backup into a work folder, checks both and reports how long each
//! took, in its answer, in `/api/v1/status` and as metrics; a damaged backup makes the backup
//! part fail naming it (the replica part still passes); `backups.drill-interval` runs drills on
//! its own. Nothing is left in the backups folder but the backups and the operation lock.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use http_support::*;
use support::{DEADLINE, insert, open_app};

const TOKEN: &str = "drill-token-0b7c";
const DB: &str = "/api/v1/databases/app.db";

fn start(dir: &std::path::Path, backups_yaml: &str) -> Instance {
    let db = dir.join("app.db");
    let cfg = config(
        &db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &format!(
            "{}{backups_yaml}",
            file_replica(&dir.join("replica"), "100ms")
        ),
    );
    Instance::start(dir, &cfg, &[])
}

#[test]
fn a_drill_restores_replica_and_backup_and_reports_both() {
    let (_keep, dir) = tempdir();
    let app = open_app(&dir.join("app.db"));
    for id in 1..=50 {
        insert(&app, id);
    }
    let ws = start(&dir, "");
    ws.wait_caught_up();
    let bearer = format!("Bearer {TOKEN}");

    // No backup yet: the backup part is null, the replica part passes.
    assert_eq!(ws.post(&format!("{DB}/drill"), None).status, 401);
    let r = ws.post(&format!("{DB}/drill"), Some(&bearer));
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json();
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["backup"], serde_json::Value::Null, "{doc}");
    assert_eq!(doc["replica"]["source"], "file");
    assert_eq!(doc["replica"]["schema_matches_live"], true, "{doc}");

    // With a backup: both pass, status and metrics show it.
    let created = ws.post(&format!("{DB}/backups"), Some(&bearer));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_string();
    let r = ws.post(&format!("{DB}/drill"), Some(&bearer));
    let doc = r.json();
    assert_eq!(
        (doc["ok"].clone(), doc["backup"]["source"].clone()),
        (true.into(), id.clone().into()),
        "{doc}"
    );
    let status = ws.status();
    assert_eq!(status["databases"][0]["drill"]["ok"], true, "{status}");
    let m = ws.metrics();
    let db = dir.join("app.db").display().to_string();
    assert_eq!(
        m.value(
            "walstream_drill_failed",
            &[("db", &db), ("source", "backup")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.value(
            "walstream_drill_failed",
            &[("db", &db), ("source", "replica")]
        ),
        Some(0.0)
    );
    assert!(
        m.value(
            "walstream_drill_duration_seconds",
            &[("db", &db), ("source", "replica")]
        ) > Some(0.0)
    );

    // A damaged backup: the backup part fails naming it; the replica part still passes.
    let backups = dir.join("backups/app.db");
    let file = backups.join(format!("{id}.db"));
    let mut bytes = std::fs::read(&file).expect("read backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, bytes).expect("damage backup");
    let doc = ws.post(&format!("{DB}/drill"), Some(&bearer)).json();
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["replica"]["ok"], true, "{doc}");
    assert_eq!(doc["backup"]["ok"], false, "{doc}");
    let error = doc["backup"]["error"].as_str().expect("error");
    assert!(error.contains(&id) && error.contains("sha256"), "{error}");
    let m = ws.metrics();
    assert_eq!(
        m.value(
            "walstream_drill_failed",
            &[("db", &db), ("source", "backup")]
        ),
        Some(1.0)
    );
    // Only the backups and the lock: the drills' work folders are gone.
    assert_eq!(
        common::dir_names(&backups),
        [
            ".lock".to_string(),
            format!("{id}.db"),
            format!("{id}.json")
        ]
    );
    ws.proc.stop();
}

#[test]
fn drill_interval_runs_drills_on_its_own() {
    let (_keep, dir) = tempdir();
    let app = open_app(&dir.join("app.db"));
    insert(&app, 1);
    let ws = start(&dir, "    backups:\n      drill-interval: 1s\n");
    common::poll_until(DEADLINE, "a drill in the status", || {
        ws.status()["databases"][0]["drill"]["ok"] == true
    });
    ws.proc.stop();
}
