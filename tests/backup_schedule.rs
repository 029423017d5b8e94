//! Scheduled backups, tiered retention, pins and expire (issue 17) on the real binary:
//! `walstream replicate` with `backups.schedule` across restarts (a run missed while down is
//! taken once, a recent one is not repeated), `walstream backup expire|pin|unpin` on records
//! whose times the test writes, and the HTTP routes (`…/backups/{id}/pin`, `…/backups/expire`)
//! with their token checks.
//!
//! Pacing: nothing sleeps; every wait polls with a deadline. "Not taken again" is checked after
//! the log says when the next run is due, which is printed only once that decision is made.

mod common;
#[path = "http_support/mod.rs"]
#[allow(unused_imports)]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Duration as Span, SecondsFormat, Utc};
use reqwest::Method;
use rusqlite::Connection;
use serde_json::{Value, json};

use common::{DEADLINE, Workspace, insert, open_app, poll_until, rows, walstream_config};
use http_support::{Instance, config, file_replica};

const TOKEN: &str = "schedule-test-token-5c1e";
const NEXT_RUN_LINE: &str = "next scheduled backup";

/// Every backup record in `folder` (files `<id>.json`), newest first.
fn records(folder: &Path) -> Vec<Value> {
    let mut out: Vec<Value> = match std::fs::read_dir(folder) {
        Err(_) => return Vec::new(),
        Ok(entries) => entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.ends_with(".json") && !name.starts_with('.')
            })
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).expect("read record");
                serde_json::from_str(&text).expect("record JSON")
            })
            .collect(),
    };
    out.sort_by(|a, b| b["created"].as_str().cmp(&a["created"].as_str()));
    out
}

fn scheduled(folder: &Path) -> Vec<Value> {
    let all = records(folder).into_iter();
    all.filter(|r| r["kind"] == "scheduled").collect()
}

/// Rewrites field `key` of backup `id`'s record.
fn edit_record(folder: &Path, id: &str, key: &str, value: Value) {
    let path = folder.join(format!("{id}.json"));
    let mut r: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("record JSON");
    r[key] = value;
    std::fs::write(&path, serde_json::to_vec_pretty(&r).expect("json")).expect("write record");
}

/// Copies backup `from` as a new backup `id` of `kind` created at `created`, not pinned.
fn plant(folder: &Path, from: &str, id: &str, kind: &str, created: &str) {
    std::fs::copy(
        folder.join(format!("{from}.db")),
        folder.join(format!("{id}.db")),
    )
    .expect("copy backup");
    let text = std::fs::read_to_string(folder.join(format!("{from}.json"))).expect("read");
    let mut r: Value = serde_json::from_str(&text).expect("record JSON");
    r["id"] = json!(id);
    r["name"] = json!(id);
    r["kind"] = json!(kind);
    r["created"] = json!(created);
    r["pinned"] = json!(false);
    let path = folder.join(format!("{id}.json"));
    std::fs::write(path, serde_json::to_vec_pretty(&r).expect("json")).expect("write record");
}

/// A workspace whose database holds rows `1..=rows`, and its backups folder `bk`.
fn workspace(rows: i64) -> (Workspace, PathBuf, Connection) {
    let ws = Workspace::new();
    let app = open_app(&ws.db());
    for id in 1..=rows {
        insert(&app, id);
    }
    let folder = ws.join("bk");
    (ws, folder, app)
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// The replicate config of `ws` with a file replica and `backups_yaml` (indented under the
/// database).
fn replicate_config(ws: &Workspace, top: &str, backups_yaml: &str) -> String {
    let replicas = file_replica(&ws.replica(), "100ms");
    config(&ws.db(), top, &format!("{replicas}{backups_yaml}"))
}

fn schedule_yaml(folder: &Path, interval: &str) -> String {
    format!(
        "    backups:\n      path: \"{}\"\n      schedule:\n        interval: {interval}\n        jitter: 100ms\n        labels: {{origin: timer}}\n      retention:\n        scheduled: {{keep-last: 50}}\n",
        folder.display()
    )
}

/// How many times the newest log of `dir`'s walstream said when the next run is due.
fn next_run_lines(proc: &common::Proc) -> usize {
    proc.log_text().matches(NEXT_RUN_LINE).count()
}

#[test]
fn a_schedule_survives_restarts_taking_a_missed_run_once_and_never_repeating_one() {
    let (ws, folder, app) = workspace(10);
    // A 2 s schedule: at least two runs (the first at start-up, the next an interval later).
    let p = walstream_config(
        &ws.path(),
        &replicate_config(&ws, "", &schedule_yaml(&folder, "2s")),
        &[],
    );
    poll_until(DEADLINE, "two scheduled backups", || {
        scheduled(&folder).len() >= 2
    });
    p.stop();
    let taken = scheduled(&folder);
    for r in &taken {
        assert_eq!(r["created_by"], "schedule", "{r}");
        assert_eq!(r["labels"], json!({"origin": "timer"}), "{r}");
        assert_eq!(r["pinned"], false, "{r}");
        let id = r["id"].as_str().expect("id");
        let copy = Connection::open(folder.join(format!("{id}.db"))).expect("open copy");
        assert_eq!(rows(&copy), rows(&app), "backup {id} holds the database");
    }

    // Restarted with 1h: the newest is seconds old, so nothing is due now.
    let cfg_hour = replicate_config(&ws, "", &schedule_yaml(&folder, "1h"));
    let p = walstream_config(&ws.path(), &cfg_hour, &[]);
    poll_until(DEADLINE, "the next run to be computed", || {
        next_run_lines(&p) >= 1
    });
    assert_eq!(
        ids(&scheduled(&folder)),
        ids(&taken),
        "a recent run was repeated"
    );
    p.stop();

    // Every scheduled backup made two hours older: the run missed while down is due at once,
    // exactly once.
    let two_hours_ago = Utc::now() - Span::hours(2);
    for (i, r) in taken.iter().enumerate() {
        let created = two_hours_ago - Span::seconds(i as i64);
        let text = created.to_rfc3339_opts(SecondsFormat::Millis, true);
        edit_record(
            &folder,
            r["id"].as_str().expect("id"),
            "created",
            json!(text),
        );
    }
    let p = walstream_config(&ws.path(), &cfg_hour, &[]);
    poll_until(DEADLINE, "the missed run", || {
        scheduled(&folder).len() == taken.len() + 1
    });
    // The second line is printed after the missed run was taken and the next one computed.
    poll_until(
        DEADLINE,
        "the run after the missed one to be computed",
        || next_run_lines(&p) >= 2,
    );
    let now = scheduled(&folder);
    assert_eq!(
        now.len(),
        taken.len() + 1,
        "the missed run was taken more than once"
    );
    let newest = &now[0];
    assert!(!ids(&taken).contains(&newest["id"].as_str().expect("id").to_string()));
    let created =
        chrono::DateTime::parse_from_rfc3339(newest["created"].as_str().expect("created"))
            .expect("time");
    assert!(created > two_hours_ago + Span::hours(1), "{newest}");
    p.stop();
}

/// `walstream backup SUB -config CFG ARGS…`.
fn backup(cfg: &str, sub: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::walstream_bin());
    cmd.args(["backup", sub, "-config", cfg]).args(args);
    cmd
}

#[test]
fn backup_expire_keeps_exactly_the_tiers_and_the_pinned_one() {
    let (ws, folder, _app) = workspace(1);
    let cfg = ws.write(
        "walstream.yml",
        &format!(
            "dbs:\n  - path: \"{}\"\n    backups:\n      path: \"{}\"\n      retention:\n        scheduled: {{keep-last: 1, keep-daily: 2, keep-weekly: 2}}\n",
            ws.db().display(),
            folder.display()
        ),
    );
    let db = ws.db().display().to_string();
    let out = common::stdout_text(&common::run(&mut backup(&cfg, "create", &[&db])));
    let manual = common::printed_id(&out);
    // Scheduled backups on a calendar: 12-05 twice, 12-04, 12-03, one in ISO week 48, two in 47.
    let planted = [
        ("20261205T100000Z-s1", "2026-12-05T10:00:00.000Z"),
        ("20261205T030000Z-s2", "2026-12-05T03:00:00.000Z"),
        ("20261204T030000Z-s3", "2026-12-04T03:00:00.000Z"),
        ("20261203T030000Z-s4", "2026-12-03T03:00:00.000Z"),
        ("20261126T030000Z-s5", "2026-11-26T03:00:00.000Z"),
        ("20261120T030000Z-s6", "2026-11-20T03:00:00.000Z"),
        ("20261119T030000Z-s7", "2026-11-19T03:00:00.000Z"),
    ];
    for (id, created) in planted {
        plant(&folder, &manual, id, "scheduled", created);
    }
    common::run(&mut backup(&cfg, "pin", &[&db, "20261120T030000Z-s6"]));
    let before = ids(&records(&folder));

    let dry = common::run(&mut backup(&cfg, "expire", &["-dry-run", "-json", &db]));
    let verdicts: Value = serde_json::from_str(&common::stdout_text(&dry)).expect("JSON");
    let shown: Vec<(String, bool, Vec<String>)> = verdicts
        .as_array()
        .expect("array")
        .iter()
        .filter(|v| v["kind"] == "scheduled")
        .map(|v| {
            let reasons = v["reasons"].as_array().expect("reasons");
            let reasons = reasons
                .iter()
                .map(|r| r.as_str().expect("text").to_string());
            (
                v["id"].as_str().expect("id").to_string(),
                v["keep"] == true,
                reasons.collect(),
            )
        })
        .collect();
    let want = |id: &str, keep: bool, reasons: &[&str]| {
        (
            id.to_string(),
            keep,
            reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        shown,
        vec![
            want(
                "20261205T100000Z-s1",
                true,
                &[
                    "keep-last 1",
                    "keep-daily 2026-12-05",
                    "keep-weekly 2026-W49"
                ]
            ),
            want("20261205T030000Z-s2", false, &[]),
            want("20261204T030000Z-s3", true, &["keep-daily 2026-12-04"]),
            want("20261203T030000Z-s4", false, &[]),
            want("20261126T030000Z-s5", true, &["keep-weekly 2026-W48"]),
            want("20261120T030000Z-s6", true, &["pinned"]),
            want("20261119T030000Z-s7", false, &[]),
        ]
    );
    let manual_verdict = verdicts
        .as_array()
        .expect("array")
        .iter()
        .find(|v| v["id"] == manual.as_str())
        .expect("the manual backup");
    assert_eq!(manual_verdict["reasons"], json!(["keep-last 1"]));
    assert_eq!(
        ids(&records(&folder)),
        before,
        "a dry run deleted something"
    );

    let table = common::stdout_text(&common::run(&mut backup(&cfg, "expire", &[&db])));
    assert!(
        table
            .lines()
            .any(|l| l.contains("20261205T030000Z-s2") && l.contains("expire")),
        "{table}"
    );
    let left = ids(&records(&folder));
    for gone in [
        "20261205T030000Z-s2",
        "20261203T030000Z-s4",
        "20261119T030000Z-s7",
    ] {
        assert!(
            !left.contains(&gone.to_string()),
            "{gone} still there: {left:?}"
        );
        assert!(
            !folder.join(format!("{gone}.db")).exists(),
            "{gone}.db left behind"
        );
    }
    assert_eq!(left.len(), before.len() - 3, "{left:?}");

    // The pinned one: listed as pinned, refused by delete until unpinned.
    let listed = common::stdout_text(&common::run(&mut backup(&cfg, "list", &[&db])));
    let line = listed
        .lines()
        .find(|l| l.contains("-s6"))
        .expect("s6 listed");
    let pinned_column: Vec<&str> = line.split_whitespace().take(5).collect();
    assert_eq!(pinned_column[4], "yes", "{listed}");
    let refused =
        common::run_expect_fail(&mut backup(&cfg, "delete", &[&db, "20261120T030000Z-s6"]));
    let said = common::said(&refused);
    assert!(
        said.contains("backup 20261120T030000Z-s6 is pinned; unpin it first"),
        "{said}"
    );
    common::run(&mut backup(&cfg, "unpin", &[&db, "20261120T030000Z-s6"]));
    common::run(&mut backup(&cfg, "delete", &[&db, "20261120T030000Z-s6"]));
    assert!(!ids(&records(&folder)).contains(&"20261120T030000Z-s6".to_string()));
}

struct Server {
    inst: Instance,
    client: reqwest::blocking::Client,
    folder: PathBuf,
    _ws: Workspace,
}

impl Server {
    fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> http_support::Resp {
        let url = format!("{}/api/v1/databases/app.db{path}", self.inst.base);
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.inst.send(req)
    }

    /// Pins (`POST …/pin`) or unpins (`DELETE …/pin`) backup `id`, which must answer 200 with
    /// the record saying so.
    fn set_pinned(&self, id: &str, pinned: bool) {
        let method = if pinned { Method::POST } else { Method::DELETE };
        let r = self.call(method, &format!("/backups/{id}/pin"), Some(TOKEN), None);
        assert_eq!(
            (r.status, &r.json()["pinned"]),
            (200, &json!(pinned)),
            "{}",
            r.body
        );
    }
}

#[test]
fn pins_and_expire_over_http() {
    let (ws, folder, _app) = workspace(1);
    let backups_yaml = format!(
        "    backups:\n      path: \"{}\"\n      retention:\n        manual: {{keep-last: 2}}\n",
        folder.display()
    );
    let cfg = replicate_config(&ws, &format!("http-token: \"{TOKEN}\"\n"), &backups_yaml);
    let inst = Instance::start(&ws.path(), &cfg, &[]);
    let s = Server {
        inst,
        client: reqwest::blocking::Client::new(),
        folder: folder.clone(),
        _ws: ws,
    };
    let created = s.call(
        Method::POST,
        "/backups",
        Some(TOKEN),
        Some(json!({"name": "keep-me"})),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_string();
    let pin = format!("/backups/{id}/pin");

    // Pinning is a mutation: no token 401, a wrong one 403, nothing changed.
    assert_eq!(s.call(Method::POST, &pin, None, None).status, 401);
    assert_eq!(s.call(Method::POST, &pin, Some("wrong"), None).status, 403);
    assert_eq!(s.call(Method::DELETE, &pin, None, None).status, 401);
    assert_eq!(
        s.call(Method::POST, "/backups/expire", None, None).status,
        401
    );
    assert_eq!(records(&s.folder)[0]["pinned"], false);
    s.set_pinned(&id, true);
    assert_eq!(
        s.call(Method::POST, "/backups/nope-1/pin", Some(TOKEN), None)
            .status,
        404
    );
    let r = s.call(Method::DELETE, &format!("/backups/{id}"), Some(TOKEN), None);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .expect("error")
            .contains("is pinned"),
        "{}",
        r.body
    );

    // Three older manual backups: keep-last 2 keeps two, the pinned one takes no place.
    let old = [
        ("20260103T000000Z-m3", "2026-01-03T00:00:00.000Z"),
        ("20260102T000000Z-m2", "2026-01-02T00:00:00.000Z"),
        ("20260101T000000Z-m1", "2026-01-01T00:00:00.000Z"),
    ];
    for (old_id, created) in old {
        plant(&s.folder, &id, old_id, "manual", created);
    }
    let dry = s.call(
        Method::POST,
        "/backups/expire",
        Some(TOKEN),
        Some(json!({"dry_run": true})),
    );
    assert_eq!(dry.status, 200, "{}", dry.body);
    let doc = dry.json();
    assert_eq!(
        (doc["database"].clone(), doc["dry_run"].clone()),
        (json!("app.db"), json!(true))
    );
    let verdicts: Vec<(String, bool, Value)> = doc["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|v| {
            (
                v["id"].as_str().expect("id").to_string(),
                v["keep"] == true,
                v["reasons"].clone(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (id.clone(), true, json!(["pinned"])),
            (old[0].0.to_string(), true, json!(["keep-last 1"])),
            (old[1].0.to_string(), true, json!(["keep-last 2"])),
            (old[2].0.to_string(), false, json!([])),
        ]
    );
    assert_eq!(records(&s.folder).len(), 4, "a dry run deleted something");
    let real = s.call(Method::POST, "/backups/expire", Some(TOKEN), None);
    assert_eq!(
        (real.status, real.json()["dry_run"].clone()),
        (200, json!(false)),
        "{}",
        real.body
    );
    let left = ids(&records(&s.folder));
    assert_eq!(
        left,
        vec![id.clone(), old[0].0.to_string(), old[1].0.to_string()]
    );

    s.set_pinned(&id, false);
    let r = s.call(Method::DELETE, &format!("/backups/{id}"), Some(TOKEN), None);
    assert_eq!(r.status, 204, "{}", r.body);
    s.inst.proc.stop();
}
