//! Jobs and the cross-process operation lock (issue 17 item 8) on the real binary:
//! - `?async=true` answers 202 with the job and its `Location`; `GET /api/v1/jobs/{id}` shows it
//!   running (with its phase) and then `succeeded` with exactly the answer the synchronous
//!   request gives; a failed operation's job is `failed` with the error answer;
//! - while a restore runs (held at its copy by the application's write transaction), a second
//!   operation is 409 naming the running job, and `walstream backup create` run by hand is
//!   refused naming the sidecar's process;
//! - a sidecar SIGKILLed in the middle of that restore leaves no stuck lock: `walstream backup
//!   create` and a restarted sidecar both proceed, and nothing is cleared by hand.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use common::{run, run_expect_fail, walstream_bin};
use http_support::*;
use support::{DEADLINE, insert, open_app};

const TOKEN: &str = "jobs-token-6a2e";
const DB: &str = "/api/v1/databases/app.db";

struct Site {
    _keep: tempfile::TempDir,
    dir: std::path::PathBuf,
    db: std::path::PathBuf,
    app: rusqlite::Connection,
    cfg: String,
}

fn site() -> Site {
    let (keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = open_app(&db);
    for id in 1..=20 {
        insert(&app, id);
    }
    let cfg = config(
        &db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &file_replica(&dir.join("replica"), "100ms"),
    );
    Site {
        _keep: keep,
        dir,
        db,
        app,
        cfg,
    }
}

fn send(ws: &Instance, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
    let client = reqwest::blocking::Client::new();
    let mut req = client
        .request(method, format!("{}{path}", ws.base))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    ws.send(req)
}

fn post(ws: &Instance, path: &str, body: Value) -> Resp {
    send(ws, reqwest::Method::POST, path, Some(body))
}

/// Polls the job until `done` says so; returns its last document.
fn poll_job(ws: &Instance, url: &str, what: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    common::poll_until(DEADLINE, what, || {
        let r = ws.get(url);
        assert_eq!(r.status, 200, "{}", r.body);
        last = r.json();
        done(&last)
    });
    last
}

/// `walstream backup create` by hand on the site's database.
fn cli_backup(site: &Site) -> Command {
    let cfg = site.dir.join("cli.yml");
    std::fs::write(&cfg, format!("dbs:\n  - path: \"{}\"\n", site.db.display())).expect("cfg");
    let mut cmd = Command::new(walstream_bin());
    cmd.args(["backup", "create", "-config"])
        .arg(&cfg)
        .arg(&site.db);
    cmd
}

/// Starts a restore of backup `id` as a job while the application holds the write lock, and
/// waits until it is held at its copy; returns the job's URL.
fn held_restore(ws: &Instance, app: &rusqlite::Connection, id: &str) -> String {
    app.execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    let r = post(
        ws,
        &format!("{DB}/backups/{id}/restore?async=true"),
        json!({}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let url = r.json()["url"].as_str().expect("url").to_string();
    assert_eq!(r.headers["location"].to_str().expect("location"), url);
    poll_job(ws, &url, "the restore to wait at its copy", |j| {
        j["phase"] == "copying"
    });
    url
}

fn rows(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open");
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn async_operations_are_jobs_with_the_synchronous_answer() {
    let s = site();
    let ws = Instance::start(&s.dir, &s.cfg, &[]);
    ws.wait_caught_up();

    let r = post(
        &ws,
        &format!("{DB}/backups?async=true"),
        json!({"name": "first"}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let accepted = r.json();
    assert_eq!(accepted["operation"], "backup");
    assert_eq!(accepted["database"], "app.db");
    let url = accepted["url"].as_str().expect("url").to_string();
    let done = poll_job(&ws, &url, "the backup job to end", |j| {
        j["state"] != "running"
    });
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["status"], 201);
    let record = &done["result"];
    assert_eq!(record["name"], "first");
    // The job's result is the record the list shows (and the synchronous call answers).
    let listed = ws.get_auth(&format!("{DB}/backups"), TOKEN).json();
    assert_eq!(&listed["backups"][0], record, "{listed}");
    let sync = post(&ws, &format!("{DB}/backups"), json!({"name": "second"}));
    assert_eq!(sync.status, 201, "{}", sync.body);

    // A failing operation: its job is `failed` with the error answer.
    let r = send(
        &ws,
        reqwest::Method::DELETE,
        &format!("{DB}/backups/20200101T000000Z-abcdef?async=true"),
        None,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let url = r.json()["url"].as_str().expect("url").to_string();
    let failed = poll_job(&ws, &url, "the delete job to end", |j| {
        j["state"] != "running"
    });
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["status"], 404);
    assert!(
        failed["error"]["error"]
            .as_str()
            .expect("error")
            .contains("not found")
    );

    // The list, newest first; unknown jobs and bad `async` values.
    let jobs = ws.get("/api/v1/jobs").json();
    let ops: Vec<&str> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["operation"].as_str().expect("op"))
        .collect();
    assert_eq!(ops, ["delete", "backup", "backup"], "{jobs}");
    assert_eq!(ws.get("/api/v1/jobs/nope").status, 404);
    let r = post(&ws, &format!("{DB}/backups?async=yes"), json!({}));
    assert_eq!(r.status, 400, "{}", r.body);
    ws.proc.stop();
}

#[test]
fn a_running_job_refuses_others_here_and_in_other_processes_and_a_kill_leaves_no_lock() {
    let s = site();
    let ws = Instance::start(&s.dir, &s.cfg, &[]);
    ws.wait_caught_up();
    let created = post(&ws, &format!("{DB}/backups"), json!({}));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_string();
    for n in 21..=30 {
        insert(&s.app, n);
    }

    let job_url = held_restore(&ws, &s.app, &id);
    let job_id = job_url.rsplit('/').next().expect("id").to_string();
    let running = ws.get(&job_url).json();
    assert_eq!(running["state"], "running", "{running}");
    // In this process: 409 naming the job.
    let r = post(&ws, &format!("{DB}/backups"), json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["job"], job_id.as_str(), "{}", r.body);
    // In another process: refused, naming the sidecar's process.
    let out = run_expect_fail(&mut cli_backup(&s));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let pid = ws.proc.pid();
    assert!(
        text.contains(&format!("restore (walstream replicate, pid {pid})")),
        "{text}"
    );

    // SIGKILL the sidecar mid-restore: no stuck lock anywhere.
    let Instance { proc, .. } = ws;
    proc.kill9();
    s.app
        .execute_batch("ROLLBACK")
        .expect("release the write lock");
    assert_eq!(rows(&s.db), 30, "the killed restore changed the database");
    let lock_text = std::fs::read_to_string(s.dir.join("backups/app.db/.lock")).expect("lock");
    assert!(lock_text.contains("\"op\":\"restore\""), "{lock_text}");
    run(&mut cli_backup(&s));
    let ws = Instance::start(&s.dir, &s.cfg, &[]);
    ws.wait_caught_up();
    let r = post(&ws, &format!("{DB}/backups/{id}/restore"), json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rows(&s.db), 20);
    ws.proc.stop();
}
