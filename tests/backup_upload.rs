//! Uploaded backups and the backups summary (issue 17 items 4 and 9) on the real binary:
//! - `POST …/backups/upload` of a good database file answers 201 with an `uploaded` record whose
//!   metadata is the file's; it is listed, downloads byte for byte, and a live restore from it
//!   gives the live database exactly its rows;
//! - a non-SQLite file, a truncated file and a damaged file are 400s, an oversized one a 413
//!   (declared by `Content-Length`, and streamed without one), no token a 401: after each the
//!   backups folder holds exactly what it held before (no temporary file, no record);
//! - `walstream backup upload` keeps a good file (created_by `cli`) and refuses a bad one
//!   leaving the folder unchanged;
//! - the `walstream_backup_*` metrics after backups of two kinds: count, bytes and newest
//!   timestamp per kind equal the records', the volume's free and total bytes are positive,
//!   and `/api/v1/status` shows the same values.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::DateTime;
use reqwest::blocking::{Body, Client};
use rusqlite::Connection;
use serde_json::Value;

use common::{DEADLINE, insert, open_app, poll_until, rows};
use http_support::*;

const TOKEN: &str = "upload-test-token-2d7e";
const DB: &str = "/api/v1/databases/app.db";
/// `max-upload-size` of the tests: the good files are a few pages, the oversized one more.
const LIMIT: u64 = 64 * 1024;

/// A database at `path` with the application's table `t` holding `ids` (and, with `pad`, a
/// blob table making it larger than [`LIMIT`]).
fn database(path: &Path, ids: std::ops::RangeInclusive<i64>, pad: bool) -> Vec<u8> {
    let c = open_app(path);
    for id in ids {
        insert(&c, id);
    }
    if pad {
        c.execute_batch("CREATE TABLE pad(b BLOB); INSERT INTO pad VALUES (zeroblob(200000));")
            .expect("pad");
    }
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    drop(c);
    std::fs::read(path).expect("read database file")
}

struct Server {
    _keep: tempfile::TempDir,
    dir: PathBuf,
    backups: PathBuf,
    app: Connection,
    ws: Instance,
    client: Client,
}

fn server() -> Server {
    let (keep, dir) = tempdir();
    let db = dir.join("app.db");
    let backups = dir.join("bk");
    let yaml = format!(
        "    backups:\n      path: \"{}\"\n      max-upload-size: {LIMIT}\n",
        backups.display()
    );
    let cfg = config(
        &db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &format!("{}{yaml}", file_replica(&dir.join("replica"), "100ms")),
    );
    let app = open_app(&db);
    for id in 1..=5 {
        insert(&app, id);
    }
    let ws = Instance::start(&dir, &cfg, &[]);
    poll_until(DEADLINE, "the database to attach", || {
        !ws.status()["databases"][0]["position"].is_null()
    });
    Server {
        _keep: keep,
        dir,
        backups,
        app,
        ws,
        client: Client::new(),
    }
}

impl Server {
    /// `POST …/backups/upload{query}` with `body`, the token when `token`.
    fn upload(&self, query: &str, body: Body, token: bool) -> Resp {
        let mut req = self
            .client
            .post(format!("{}{DB}/backups/upload{query}", self.ws.base))
            .header("Content-Type", "application/vnd.sqlite3")
            .body(body);
        if token {
            req = req.bearer_auth(TOKEN);
        }
        self.ws.send(req)
    }

    fn post(&self, path: &str, body: Value) -> Resp {
        let req = self.client.post(format!("{}{DB}{path}", self.ws.base));
        self.ws.send(req.bearer_auth(TOKEN).json(&body))
    }
}

#[test]
fn uploads_are_checked_kept_restorable_and_failures_leave_nothing() {
    let s = server();
    let good = database(&s.dir.join("good.db"), 100..=140, false);
    assert!(good.len() as u64 <= LIMIT, "{} bytes", good.len());

    let r = s.upload(
        "?name=laptop&label=source=laptop&label=ticket=OPS-9",
        Body::from(good.clone()),
        true,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rec = r.json();
    assert_eq!(rec["kind"], "uploaded");
    assert_eq!(rec["created_by"], "api");
    assert_eq!(rec["name"], "laptop");
    assert_eq!(rec["labels"]["ticket"], "OPS-9");
    assert_eq!(rec["size"], good.len() as u64);
    assert_eq!(rec["page_count"], good.len() as u64 / 4096);
    assert_eq!(rec["user_version"], 0);
    let id = rec["id"].as_str().expect("id").to_string();

    let listed = s.ws.get(&format!("{DB}/backups?kind=uploaded"));
    assert_eq!(
        listed.json()["backups"][0]["id"],
        id.as_str(),
        "{}",
        listed.body
    );
    let got = s
        .client
        .get(format!("{}{DB}/backups/{id}", s.ws.base))
        .bearer_auth(TOKEN)
        .send()
        .expect("download");
    assert_eq!(got.status().as_u16(), 200);
    assert!(
        got.bytes().expect("body").as_ref() == good.as_slice(),
        "downloaded bytes differ"
    );

    // The folder now: the upload and its record. Every refused upload must leave exactly this.
    let before = common::dir_names(&s.backups);
    // (`.lock` is the database's operation lock, kept by design.)
    assert_eq!(
        before,
        [
            ".lock".to_string(),
            format!("{id}.db"),
            format!("{id}.json")
        ]
    );
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 4096);
    let mut damaged = good.clone();
    for b in &mut damaged[4096..] {
        *b = 0xa5;
    }
    let big = database(&s.dir.join("big.db"), 1..=3, true);
    assert!(big.len() as u64 > LIMIT);
    let limit = format!("max-upload-size ({LIMIT} bytes)");
    let cases: Vec<(&str, Body, bool, u16, &str)> = vec![
        (
            "text",
            Body::from(b"id,name\n1,alice\n".repeat(300)),
            true,
            400,
            "not a SQLite database",
        ),
        (
            "truncated",
            Body::from(truncated),
            true,
            400,
            "truncated: the header counts",
        ),
        ("damaged", Body::from(damaged), true, 400, "damaged"),
        ("oversized", Body::from(big.clone()), true, 413, &limit),
        // No Content-Length: the limit is enforced while streaming.
        (
            "oversized, streamed",
            Body::new(std::io::Cursor::new(big)),
            true,
            413,
            &limit,
        ),
        ("no token", Body::from(good.clone()), false, 401, ""),
    ];
    for (what, body, token, status, said) in cases {
        let r = s.upload("", body, token);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert!(
            r.json()["error"].as_str().is_some_and(|e| e.contains(said)),
            "{what}: {}",
            r.body
        );
        assert_eq!(
            common::dir_names(&s.backups),
            before,
            "{what} left something behind"
        );
    }

    // A live restore from the upload: the live database holds exactly its rows.
    let expected = rows(&Connection::open(s.dir.join("good.db")).expect("open good"));
    let r = s.post(&format!("/backups/{id}/restore"), serde_json::json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rows(&s.app), expected);
    common::assert_restores_to(&s.dir.join("app.db"), &expected);
    s.ws.proc.stop();
}

/// `walstream backup upload -config CFG REST…`.
fn cli_upload(cfg: &Path, rest: &[&str]) -> Command {
    let mut cmd = Command::new(common::walstream_bin());
    cmd.args(["backup", "upload", "-config"])
        .arg(cfg)
        .args(rest);
    cmd
}

#[test]
fn backup_upload_command_keeps_a_good_file_and_refuses_a_bad_one() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    database(&db, 1..=3, false);
    let backups = dir.join("bk");
    let cfg = dir.join("walstream.yml");
    let yaml = format!(
        "dbs:\n  - path: \"{}\"\n    backups:\n      path: \"{}\"\n      max-upload-size: {LIMIT}\n",
        db.display(),
        backups.display()
    );
    std::fs::write(&cfg, yaml).expect("config");
    let good = dir.join("good.db");
    let bytes = database(&good, 7..=9, false);
    let (db_arg, good_arg) = (db.display().to_string(), good.display().to_string());
    let out = common::run(&mut cli_upload(
        &cfg,
        &["-name", "from-cli", "-label", "k=v", &db_arg, &good_arg],
    ));
    let id = common::printed_id(&common::stdout_text(&out));
    let record: Value =
        serde_json::from_slice(&std::fs::read(backups.join(format!("{id}.json"))).expect("record"))
            .expect("json");
    assert_eq!(
        (
            &record["kind"],
            &record["created_by"],
            &record["name"],
            &record["labels"]["k"]
        ),
        (
            &Value::from("uploaded"),
            &Value::from("cli"),
            &Value::from("from-cli"),
            &Value::from("v")
        )
    );
    assert!(std::fs::read(backups.join(format!("{id}.db"))).expect("copy") == bytes);
    let before = common::dir_names(&backups);
    let bad = dir.join("notes.txt");
    std::fs::write(&bad, "not a database, just notes\n".repeat(10)).expect("write");
    let bad_arg = bad.display().to_string();
    let out = common::run_expect_fail(&mut cli_upload(&cfg, &[&db_arg, &bad_arg]));
    let said = common::said(&out);
    assert!(
        said.contains("invalid upload: not a SQLite database"),
        "{said}"
    );
    assert_eq!(common::dir_names(&backups), before);
    assert!(
        common::run_expect_fail(&mut cli_upload(&cfg, &[&db_arg]))
            .status
            .code()
            != Some(0)
    );
}

/// Unix seconds of an RFC 3339 `created`.
fn unix(created: &Value) -> f64 {
    let t = DateTime::parse_from_rfc3339(created.as_str().expect("created")).expect("rfc3339");
    t.timestamp_millis() as f64 / 1000.0
}

#[test]
fn metrics_and_status_show_count_bytes_newest_and_volume_per_kind() {
    let s = server();
    let mut manual = Vec::new();
    for name in ["one", "two"] {
        let r = s.post("/backups", serde_json::json!({ "name": name }));
        assert_eq!(r.status, 201, "{}", r.body);
        manual.push(r.json());
    }
    let good = database(&s.dir.join("good.db"), 1..=10, false);
    let r = s.upload("", Body::from(good), true);
    assert_eq!(r.status, 201, "{}", r.body);
    let uploaded = r.json();
    let db = s.dir.join("app.db").display().to_string();
    let labels = |kind: &'static str| [("db", db.clone()), ("kind", kind.to_string())];
    let scrape = || {
        let m = s.ws.metrics();
        let l = labels("uploaded");
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        m.value("walstream_backup_count", &l).is_some().then_some(m)
    };
    let m = poll_until(DEADLINE, "backup metrics", scrape);
    let value = |name: &str, kind: &'static str| {
        let l = labels(kind);
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        m.must(name, &l)
    };
    let bytes: u64 = manual
        .iter()
        .map(|r| r["size"].as_u64().expect("size"))
        .sum();
    assert_eq!(value("walstream_backup_count", "manual"), 2.0);
    assert_eq!(value("walstream_backup_bytes", "manual"), bytes as f64);
    assert_eq!(
        value("walstream_backup_newest_timestamp_seconds", "manual"),
        unix(&manual[1]["created"])
    );
    assert_eq!(value("walstream_backup_count", "uploaded"), 1.0);
    assert_eq!(
        value("walstream_backup_bytes", "uploaded"),
        uploaded["size"].as_f64().expect("size")
    );
    assert_eq!(
        value("walstream_backup_newest_timestamp_seconds", "uploaded"),
        unix(&uploaded["created"])
    );
    assert!(
        m.of("walstream_backup_count").len() == 2,
        "kinds without backups have no series"
    );
    let free = m.must("walstream_backup_volume_free_bytes", &[("db", &db)]);
    let total = m.must("walstream_backup_volume_total_bytes", &[("db", &db)]);
    assert!(free > 0.0 && total >= free, "free {free}, total {total}");

    let st = s.ws.status();
    let b = &st["databases"][0]["backups"];
    assert_eq!(
        (&b["manual"]["count"], &b["manual"]["bytes"]),
        (&Value::from(2), &Value::from(bytes)),
        "{b}"
    );
    assert_eq!(unix(&b["manual"]["newest"]), unix(&manual[1]["created"]));
    assert_eq!(b["uploaded"]["bytes"], uploaded["size"]);
    assert_eq!(
        (&b["scheduled"]["count"], &b["scheduled"]["newest"]),
        (&Value::from(0), &Value::Null)
    );
    assert!(
        b["volume"]["total_bytes"].as_u64().is_some_and(|t| t > 0),
        "{b}"
    );

    // A delete shows at once.
    let id = manual[0]["id"].as_str().expect("id");
    let req = s.client.delete(format!("{}{DB}/backups/{id}", s.ws.base));
    assert_eq!(s.ws.send(req.bearer_auth(TOKEN)).status, 204);
    let st = s.ws.status();
    assert_eq!(st["databases"][0]["backups"]["manual"]["count"], 1);
    s.ws.proc.stop();
}
