//! End-to-end tests of the admin API (issue 6) on the real binary: `walstream replicate` with
//! its HTTP server on a free loopback port and a file replica. Manual backups (create, list,
//! download, delete, retention), traversal attempts, the 409 of concurrent operations (a live
//! restore held deterministically by an application transaction that keeps the database's write
//! lock, so its copy waits on SQLite's busy handling), a live restore while another
//! connection writes in a loop, the safety backup, a point-in-time restore from the replica,
//! the replica download, and — after a live restore — restores of the replica by
//! `walstream restore` and by the real Litestream v0.3.13 (`WALSTREAM_TEST_LITESTREAM`).
//! The `walstream backup` command is tested at the end.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use reqwest::blocking::Client;
use rusqlite::Connection;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::said;
use http_support::*;
use support::{DEADLINE, insert, integrity, open_app, rows};

/// The shared poller (`common::poll_until`) with the suite's deadline.
fn poll_until(what: &str, ready: impl FnMut() -> bool) {
    common::poll_until(DEADLINE, what, ready)
}

const TOKEN: &str = "admin-test-token-81b3";
const DB: &str = "/api/v1/databases/app.db";

/// A running server with a file replica, the token and `backups_yaml` under the database.
struct Setup {
    _keep: tempfile::TempDir,
    dir: PathBuf,
    db: PathBuf,
    replica: PathBuf,
    app: Connection,
    ws: Instance,
    client: Client,
}

fn setup(backups_yaml: &str, env: &[(String, String)]) -> Setup {
    let (keep, dir) = tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let cfg = config(
        &db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &format!("{}{backups_yaml}", file_replica(&replica, "100ms")),
    );
    let app = open_app(&db);
    app.execute_batch("CREATE TABLE IF NOT EXISTS w(id INTEGER PRIMARY KEY, v INTEGER);")
        .expect("create w");
    for id in 1..=20 {
        insert(&app, id);
    }
    let ws = Instance::start(&dir, &cfg, env);
    // Backups record walstream's position: wait until the database has one.
    poll_until("the database to attach", || {
        !ws.status()["databases"][0]["position"].is_null()
    });
    Setup {
        _keep: keep,
        dir,
        db,
        replica,
        app,
        ws,
        client: Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client"),
    }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.ws.base)
    }

    fn post_json(&self, path: &str, body: Value) -> Resp {
        let req = self
            .client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body);
        self.ws.send(req)
    }

    fn post(&self, path: &str) -> Resp {
        self.ws
            .send(self.client.post(self.url(path)).bearer_auth(TOKEN))
    }

    fn delete(&self, path: &str) -> Resp {
        self.ws
            .send(self.client.delete(self.url(path)).bearer_auth(TOKEN))
    }

    /// A download (downloads always need the token).
    fn bytes(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let req = self.client.get(self.url(path)).bearer_auth(TOKEN);
        let resp = req.send().expect("get");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().expect("body").to_vec())
    }

    fn create(&self, name: &str) -> Value {
        let r = self.post_json(&format!("{DB}/backups"), json!({ "name": name }));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()
    }

    fn list(&self) -> Vec<Value> {
        let r = self.ws.get(&format!("{DB}/backups"));
        assert_eq!(r.status, 200, "{}", r.body);
        let doc = r.json();
        assert_eq!(doc["database"], "app.db");
        doc["backups"].as_array().expect("backups").clone()
    }

    fn sync(&self) {
        let r = self.post(&format!("{DB}/sync"));
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Writes `bytes` to a file in the test folder and returns its rows and integrity.
    fn open_bytes(&self, name: &str, bytes: &[u8]) -> Connection {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).expect("write download");
        common::sqlite::checked(&path)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn table_exists(c: &Connection, name: &str) -> bool {
    c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .expect("sqlite_master")
        == 1
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|b| b["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn backups_create_list_download_delete_and_keep_exactly_n() {
    let s = setup(
        "    backups:\n      retain: 3\n      pre-restore-retain: 1\n",
        &[],
    );
    // Token layer: no token → 401; reads need none.
    let anon = s.ws.post(&format!("{DB}/backups"), None);
    assert_eq!(anon.status, 401, "{}", anon.body);
    assert!(s.list().is_empty());

    let first = s.post_json(
        &format!("{DB}/backups"),
        json!({"name": "before-migration", "description": "first one"}),
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let rec = first.json();
    let id = rec["id"].as_str().expect("id").to_string();
    assert_eq!(rec["name"], "before-migration");
    assert_eq!(rec["description"], "first one");
    assert_eq!(rec["kind"], "manual");
    assert_eq!(rec["download_url"], format!("{DB}/backups/{id}"));
    assert!(rec["source"]["generation"].as_str().is_some(), "{rec}");
    time(&rec["created"]);
    // An empty body is fine: the name defaults to the id.
    let bare = s.post(&format!("{DB}/backups"));
    assert_eq!(bare.status, 201, "{}", bare.body);
    assert_eq!(bare.json()["name"], bare.json()["id"]);

    let (status, headers, bytes) = s.bytes(&format!("{DB}/backups/{id}"));
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/vnd.sqlite3");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"app-{id}.db\"").as_str()
    );
    assert_eq!(bytes.len() as u64, rec["size"].as_u64().expect("size"));
    assert_eq!(sha256_hex(&bytes), rec["sha256"]);
    let copy = s.open_bytes("download.db", &bytes);
    assert_eq!(rows(&copy), rows(&s.app));

    // Retention: after five manual backups exactly the newest three remain, newest first.
    let mut made = vec![
        id.clone(),
        bare.json()["id"].as_str().expect("id").to_string(),
    ];
    for n in 0..3 {
        made.push(
            s.create(&format!("n{n}"))["id"]
                .as_str()
                .expect("id")
                .into(),
        );
    }
    let listed = s.list();
    assert_eq!(
        ids(&listed),
        made[2..].iter().rev().cloned().collect::<Vec<_>>()
    );
    assert!(listed.iter().all(|b| b["kind"] == "manual"));
    let gone = s.bytes(&format!("{DB}/backups/{id}"));
    assert_eq!(gone.0, 404);

    let victim = &made[3];
    assert_eq!(s.delete(&format!("{DB}/backups/{victim}")).status, 204);
    assert_eq!(s.delete(&format!("{DB}/backups/{victim}")).status, 404);
    assert!(!ids(&s.list()).contains(victim));

    // Bad bodies and names are 400; unknown databases and backups 404.
    for body in [
        json!({"name": ".."}),
        json!({"name": "a/b"}),
        json!({"nme": "x"}),
    ] {
        let r = s.post_json(&format!("{DB}/backups"), body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.json()["error"].as_str().is_some());
    }
    let r = s.ws.send(
        s.client
            .post(s.url(&format!("{DB}/backups")))
            .bearer_auth(TOKEN)
            .body("{not json"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(s.ws.get("/api/v1/databases/nope.db/backups").status, 404);
    assert_eq!(s.list().len(), 2);
    s.ws.proc.stop();
}

/// Sends one raw HTTP/1.1 request (paths exactly as given, no client-side normalisation);
/// returns the status code.
fn raw_status(base: &str, method: &str, path: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("read");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn traversal_attempts_and_bad_ids_are_rejected() {
    let s = setup("", &[]);
    let id = s.create("keep")["id"].as_str().expect("id").to_string();
    let secret = s.dir.join("secret.db");
    std::fs::write(&secret, b"not for download").expect("write");
    let bad_ids = [
        "..",
        "..%2F..%2Fsecret.db",
        "%2E%2E",
        "a%2Fb",
        "bad.id",
        "%00",
        &"x".repeat(65),
    ];
    for bad in bad_ids {
        for (method, suffix) in [("GET", ""), ("DELETE", ""), ("POST", "/restore")] {
            let path = format!("{DB}/backups/{bad}{suffix}");
            let code = raw_status(&s.ws.base, method, &path);
            assert_eq!(code, 400, "{method} {path}");
        }
    }
    // Extra path segments match no route at all.
    for path in ["a/b", "../../secret.db", "x/../secret.db"] {
        let full = format!("{DB}/backups/{path}");
        let code = raw_status(&s.ws.base, "GET", &full);
        assert!(code == 400 || code == 404, "GET {full}: {code}");
        let code = raw_status(&s.ws.base, "DELETE", &full);
        assert!(code == 400 || code == 404, "DELETE {full}: {code}");
    }
    assert!(secret.exists() && s.db.exists());
    assert_eq!(ids(&s.list()), [id]);
    s.ws.proc.stop();
}

#[test]
fn a_second_operation_while_one_runs_is_409() {
    let s = setup("", &[]);
    let first = s.create("first")["id"].as_str().expect("id").to_string();
    // The application holds the write lock: the restore gets as far as its copy into the live
    // database (after its safety backup) and waits there, holding the operation lock.
    s.app
        .execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    let (base, url) = (
        s.ws.base.clone(),
        s.url(&format!("{DB}/backups/{first}/restore")),
    );
    let restore: JoinHandle<(u16, String)> = std::thread::spawn(move || {
        let resp = Client::builder()
            .timeout(Duration::from_secs(180))
            .build()
            .expect("client")
            .post(url)
            .bearer_auth(TOKEN)
            .send()
            .expect("restore request");
        let _ = base;
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    });
    poll_until("the restore to wait for the write lock", || {
        s.list().iter().any(|b| b["kind"] == "pre-restore")
    });

    for (what, r) in [
        ("backup", s.post(&format!("{DB}/backups"))),
        ("delete", s.delete(&format!("{DB}/backups/{first}"))),
        ("restore", s.post(&format!("{DB}/backups/{first}/restore"))),
        (
            "replica restore",
            s.post_json(&format!("{DB}/restore"), json!({})),
        ),
    ] {
        assert_eq!(r.status, 409, "{what}: {}", r.body);
        let doc = r.json();
        assert_eq!(doc["running"], "restore", "{doc}");
        assert_eq!(doc["database"], "app.db");
        let text = doc["error"].as_str().expect("error");
        assert!(
            text.starts_with("another operation is running on app.db: restore (started "),
            "{text}"
        );
    }
    // Reads are not blocked by the lock: the backup and the restore's safety backup.
    assert_eq!(s.list().len(), 2);
    assert!(
        !restore.is_finished(),
        "the restore ended while the write lock was held"
    );
    s.app
        .execute_batch("ROLLBACK")
        .expect("release the write lock");
    let (status, body) = restore.join().expect("restore thread");
    assert_eq!(status, 200, "{body}");
    // The lock is free again.
    s.create("after");
    s.ws.proc.stop();
}

/// An application connection writing into `w` in a loop; busy answers are retried and counted,
/// any other error is kept.
struct LoopWriter {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    handle: JoinHandle<(Connection, u64, Vec<String>)>,
}

impl LoopWriter {
    fn start(db: &Path) -> LoopWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let (st, cm, db) = (stop.clone(), commits.clone(), db.to_path_buf());
        let handle = std::thread::spawn(move || {
            let c = Connection::open(&db).expect("open writer");
            c.busy_timeout(Duration::from_millis(50)).expect("timeout");
            let (mut busy, mut errors) = (0u64, Vec::new());
            let mut v = 0i64;
            while !st.load(Ordering::SeqCst) && errors.is_empty() {
                v += 1;
                match c.execute("INSERT INTO w(v) VALUES (?1)", [v]) {
                    Ok(_) => {
                        cm.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e)
                        if matches!(
                            e.sqlite_error_code(),
                            Some(rusqlite::ErrorCode::DatabaseBusy)
                                | Some(rusqlite::ErrorCode::DatabaseLocked)
                        ) =>
                    {
                        busy += 1
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (c, busy, errors)
        });
        LoopWriter {
            stop,
            commits,
            handle,
        }
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    fn finish(self) -> (Connection, u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("writer thread")
    }
}

#[test]
fn live_restore_while_another_connection_writes() {
    let s = setup("", &[]);
    let backup = s.create("twenty-rows");
    let bid = backup["id"].as_str().expect("id").to_string();
    // Later changes the restore must undo: more rows and a new table.
    for id in 21..=60 {
        insert(&s.app, id);
    }
    s.app
        .execute_batch("CREATE TABLE later(x); INSERT INTO later VALUES (1);")
        .expect("later");
    let before_restore = rows(&s.app);

    let writer = LoopWriter::start(&s.db);
    poll_until("the writer to commit", || writer.commits() >= 20);
    // Dropping `later` is a schema change: the guard refuses it until asked with force.
    let r = s.post(&format!("{DB}/backups/{bid}/restore"));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json()["schema_conflict"]["differences"]["removed"][0]["name"],
        "later"
    );
    let r = s.post_json(
        &format!("{DB}/backups/{bid}/restore"),
        json!({ "force": true }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json();
    assert_eq!(doc["database"], "app.db");
    assert_eq!(doc["restored_from"], json!({"backup": bid}));
    assert_eq!(doc["integrity"], "ok");
    assert!(doc["duration_seconds"].as_f64().is_some());
    let safety = &doc["safety_backup"];
    assert_eq!(safety["kind"], "pre-restore");
    let after = writer.commits();
    poll_until("the writer to go on after the restore", || {
        writer.commits() >= after + 20
    });
    let (wc, busy, errors) = writer.finish();
    assert!(
        errors.is_empty(),
        "writer errors (busy retries: {busy}): {errors:?}"
    );
    // The writer's own connection, open all along, sees the restored content.
    let restored: Vec<(i64, String)> = rows(&wc);
    assert_eq!(restored.len(), 20);
    assert!(!table_exists(&wc, "later"));
    assert_eq!(integrity(&wc), "ok");
    assert_eq!(rows(&s.app), restored);

    // The safety backup holds the state right before the restore…
    let sid = safety["id"].as_str().expect("id");
    let (status, _, bytes) = s.bytes(&format!("{DB}/backups/{sid}"));
    assert_eq!(status, 200);
    let pre = s.open_bytes("safety.db", &bytes);
    assert_eq!(rows(&pre), before_restore);
    assert!(table_exists(&pre, "later"));
    // …and restoring it brings that state back (bringing `later` back is a schema change too).
    let back = s.post_json(
        &format!("{DB}/backups/{sid}/restore"),
        json!({ "force": true }),
    );
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(rows(&s.app), before_restore);
    assert!(table_exists(&s.app, "later"));
    let kinds: Vec<Value> = s.list().iter().map(|b| b["kind"].clone()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "pre-restore").count(), 2);
    s.ws.proc.stop();
}

#[test]
fn after_a_live_restore_the_replica_restores_to_the_restored_content() {
    let s = setup("", &[]);
    let bid = s.create("twenty")["id"].as_str().expect("id").to_string();
    for id in 21..=80 {
        insert(&s.app, id);
    }
    s.sync();
    let r = s.post(&format!("{DB}/backups/{bid}/restore"));
    assert_eq!(r.status, 200, "{}", r.body);
    insert(&s.app, 1000);
    s.sync();
    let live = rows(&s.app);
    assert_eq!(live.len(), 21);
    let url = format!("file://{}", s.replica.display());
    let ours = walstream_restore(&[&url], &[], &s.dir.join("ours.db"));
    assert_eq!(ours, live);
    let theirs = support::litestream_restore(&[&url], &s.dir.join("theirs.db"));
    assert_eq!(theirs, live);
    // The replica download endpoint gives the same content, verified, as an attachment.
    let (status, headers, bytes) = s.bytes(&format!("{DB}/replica/latest.db"));
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"app-latest.db\""
    );
    assert_eq!(rows(&s.open_bytes("latest.db", &bytes)), live);
    assert!(
        support::list(&s.dir.join("backups").join("app.db"))
            .iter()
            .all(|n| !n.starts_with('.') || n == ".lock"),
        "temporary files left in the backups folder (only the operation lock may be hidden)"
    );
    s.ws.proc.stop();
}

/// The newest `restorable_to` of a listing that started after `after`.
fn restorable_to(s: &Setup, after: SystemTime) -> String {
    let mut doc = Value::Null;
    poll_until("a fresh restore-point listing", || {
        let r = s.ws.get(&format!("{DB}/restore-points"));
        doc = r.json();
        let fresh = doc["replicas"][0]["refreshed_at"]
            .as_str()
            .is_some_and(|_| time(&doc["replicas"][0]["refreshed_at"]) > after);
        fresh
            && doc["replicas"][0]["generations"]
                .as_array()
                .is_some_and(|g| !g.is_empty())
    });
    let gens = doc["replicas"][0]["generations"]
        .as_array()
        .expect("generations");
    gens.last().expect("generation")["restorable_to"]
        .as_str()
        .expect("restorable_to")
        .to_string()
}

#[test]
fn restore_from_the_replica_at_a_timestamp_and_download_it() {
    let s = setup("", &[]);
    s.sync();
    let synced = SystemTime::now();
    s.sync();
    let at = restorable_to(&s, synced);
    let then = rows(&s.app);
    poll_until("the clock to pass the restore point", || {
        SystemTime::now() > time(&Value::from(at.clone())) + Duration::from_millis(20)
    });
    for id in 21..=40 {
        insert(&s.app, id);
    }
    s.sync();

    // Download at the timestamp: exactly the first twenty rows; the live database is untouched.
    let (status, _, bytes) = s.bytes(&format!("{DB}/replica/latest.db?timestamp={at}"));
    assert_eq!(status, 200);
    assert_eq!(rows(&s.open_bytes("at.db", &bytes)), then);
    assert_eq!(rows(&s.app).len(), 40);
    let bad = s.bytes(&format!("{DB}/replica/latest.db?timestamp=yesterday"));
    assert_eq!(bad.0, 400);

    let r = s.post_json(&format!("{DB}/restore"), json!({ "timestamp": at }));
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json();
    let from = &doc["restored_from"];
    assert_eq!(from["replica"], format!("file://{}", s.replica.display()));
    assert_eq!(from["timestamp"], at.as_str());
    assert_eq!(rows(&s.app), then);
    assert_eq!(integrity(&s.app), "ok");
    // Latest (no body) brings back the newest replicated state: the restore itself.
    let r = s.post(&format!("{DB}/restore"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rows(&s.app), then);
    let bad = s.post_json(
        &format!("{DB}/restore"),
        json!({ "timestamp": "2020-13-01" }),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let old = s.post_json(
        &format!("{DB}/restore"),
        json!({ "timestamp": "2001-01-01T00:00:00Z" }),
    );
    assert_eq!(old.status, 404, "{}", old.body);
    assert_eq!(
        rows(&s.app),
        then,
        "a failed restore leaves the database alone"
    );
    s.ws.proc.stop();
}

/// `walstream backup SUB -config CFG REST…`.
fn backup_cmd(cfg: &str, sub: &str, rest: &[&str]) -> Command {
    let mut cmd = Command::new(common::walstream_bin());
    cmd.args(["backup", sub, "-config", cfg]).args(rest);
    cmd
}

#[test]
fn backup_command_creates_lists_and_deletes_without_a_server() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let store = dir.join("bk");
    let cfg = dir.join("walstream.yml");
    std::fs::write(
        &cfg,
        format!(
            "dbs:\n  - path: \"{}\"\n    backups:\n      path: \"{}\"\n      retain: 2\n",
            db.display(),
            store.display()
        ),
    )
    .expect("config");
    let app = open_app(&db);
    for id in 1..=5 {
        insert(&app, id);
    }
    let cfg_arg = cfg.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let (sub, rest) = args.split_first().expect("subcommand");
        common::stdout_text(&common::run(&mut backup_cmd(cfg_arg, sub, rest)))
    };
    let dbarg = db.to_str().expect("utf-8");
    let made: Vec<String> = (0..3)
        .map(|n| common::printed_id(&run(&["create", "-name", &format!("cli-{n}"), dbarg])))
        .collect();
    let listed = run(&["list", dbarg]);
    let mut lines = listed.lines();
    assert!(lines.next().expect("header").starts_with("id"), "{listed}");
    let shown: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(shown, [made[2].as_str(), made[1].as_str()], "{listed}");
    let copy = Connection::open(store.join(format!("{}.db", made[2]))).expect("open");
    assert_eq!(rows(&copy), rows(&app));
    run(&["delete", dbarg, &made[2]]);
    assert!(
        run(&["list", dbarg])
            .lines()
            .skip(1)
            .all(|l| !l.contains(&made[2]))
    );
    let bad = common::run_expect_fail(&mut backup_cmd(cfg_arg, "delete", &[dbarg, "../x"]));
    let said = said(&bad);
    assert!(said.contains("invalid backup id"), "{said}");
}

/// The ids of `GET …/backups` + `query` (which must answer 200).
fn listed_ids(s: &Setup, query: &str) -> Vec<String> {
    let r = s.ws.get(&format!("{DB}/backups{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    ids(r.json()["backups"].as_array().expect("backups"))
}

#[test]
fn labels_metadata_and_list_filters_over_http() {
    let s = setup("", &[]);
    s.app
        .execute_batch("PRAGMA user_version = 31;")
        .expect("user_version");
    let create = |labels: Value| {
        let r = s.post_json(&format!("{DB}/backups"), json!({ "labels": labels }));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()
    };
    let a = create(json!({"env": "prod", "team": "db"}));
    let b = create(json!({"env": "prod"}));
    let c = create(json!({"env": "dev", "team": "db"}));
    assert_eq!(a["labels"], json!({"env": "prod", "team": "db"}));
    assert_eq!(a["created_by"], "api");
    assert_eq!(a["user_version"], 31);
    assert_eq!(a["page_size"], 4096);
    let pages = a["page_count"].as_u64().expect("page_count");
    assert_eq!(pages * 4096, a["size"].as_u64().expect("size"));
    let sha = a["schema_sha256"].as_str().expect("schema_sha256");
    assert_eq!(sha.len(), 64, "{a}");
    assert_eq!(b["schema_sha256"], sha, "same schema, same fingerprint");
    let id = |v: &Value| v["id"].as_str().expect("id").to_string();
    // A restore takes a pre-restore backup (no labels, created by the restore).
    let r = s.post(&format!("{DB}/backups/{}/restore", id(&b)));
    assert_eq!(r.status, 200, "{}", r.body);
    let pre = r.json()["safety_backup"].clone();
    assert_eq!(pre["created_by"], "restore");
    assert_eq!(pre["kind"], "pre-restore");

    assert_eq!(listed_ids(&s, ""), [id(&pre), id(&c), id(&b), id(&a)]);
    assert_eq!(listed_ids(&s, "?label=env=prod"), [id(&b), id(&a)]);
    assert_eq!(listed_ids(&s, "?label=env%3Dprod&label=team=db"), [id(&a)]);
    assert_eq!(listed_ids(&s, "?kind=pre-restore"), [id(&pre)]);
    assert_eq!(listed_ids(&s, "?kind=manual&limit=2"), [id(&c), id(&b)]);
    assert!(listed_ids(&s, "?label=env=qa").is_empty());

    // Bad labels on create and bad filters are 400s naming what is wrong; nothing is created.
    for (labels, says) in [
        (json!({"Env": "x"}), "invalid label: key \\\"Env\\\""),
        (json!({"note": "a\u{7}b"}), "value of \\\"note\\\""),
        (json!({"k": "v".repeat(257)}), "longer than 256 bytes"),
    ] {
        let r = s.post_json(&format!("{DB}/backups"), json!({ "labels": labels }));
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(says), "{says}: {}", r.body);
    }
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = s.post_json(&format!("{DB}/backups"), json!({ "labels": many }));
    assert_eq!(r.status, 400, "{}", r.body);
    for (query, says) in [
        ("?limit=0", "invalid limit"),
        ("?limit=1001", "invalid limit"),
        ("?limit=x", "invalid limit"),
        ("?kind=auto", "invalid kind"),
        ("?label=novalue", "invalid label"),
        ("?label=BAD=1", "invalid label"),
        ("?limit=1&limit=2", "\\\"limit\\\" given twice"),
        ("?sort=asc", "unknown parameter \\\"sort\\\""),
    ] {
        let r = s.ws.get(&format!("{DB}/backups{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body.contains(says), "{query}: {}", r.body);
    }
    assert_eq!(s.list().len(), 4);
    s.ws.proc.stop();
}

#[test]
fn backup_command_labels_filters_and_json() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let cfg = dir.join("walstream.yml");
    std::fs::write(&cfg, format!("dbs:\n  - path: \"{}\"\n", db.display())).expect("config");
    let app = open_app(&db);
    app.execute_batch("PRAGMA user_version = 9;")
        .expect("user_version");
    insert(&app, 1);
    let cfg_arg = cfg.to_str().expect("utf-8");
    let dbarg = db.to_str().expect("utf-8");
    let backup = |args: &[&str]| backup_cmd(cfg_arg, args[0], &args[1..]);
    let run = |args: &[&str]| common::stdout_text(&common::run(&mut backup(args)));
    let create = |labels: &[&str]| {
        let mut args = vec!["create"];
        for l in labels {
            args.extend(["-label", l]);
        }
        args.push(dbarg);
        common::printed_id(&run(&args))
    };
    let a = create(&["env=prod", "ticket=OPS-1=x"]);
    let b = create(&["env=dev"]);
    let c = create(&["env=prod"]);
    let json_ids = |filters: &[&str]| -> Vec<Value> {
        let mut args = vec!["list", "-json"];
        args.extend(filters);
        args.push(dbarg);
        let out = run(&args);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        v.as_array().expect("array").clone()
    };
    let all = json_ids(&[]);
    assert_eq!(ids(&all), [c.as_str(), b.as_str(), a.as_str()]);
    let oldest = &all[2];
    assert_eq!(
        oldest["labels"],
        json!({"env": "prod", "ticket": "OPS-1=x"})
    );
    assert_eq!(oldest["created_by"], "cli");
    assert_eq!(oldest["kind"], "manual");
    assert_eq!(oldest["user_version"], 9);
    assert!(
        oldest["schema_sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );
    assert!(oldest.get("download_url").is_none(), "{oldest}");
    assert_eq!(
        ids(&json_ids(&["-label", "env=prod"])),
        [c.as_str(), a.as_str()]
    );
    assert_eq!(
        ids(&json_ids(&[
            "-label",
            "env=prod",
            "-label",
            "ticket=OPS-1=x"
        ])),
        [a.as_str()]
    );
    assert_eq!(ids(&json_ids(&["-limit", "1"])), [c.as_str()]);
    assert!(json_ids(&["-kind", "pre-restore"]).is_empty());
    assert_eq!(json_ids(&["-kind", "manual"]).len(), 3);
    // The table shows the labels.
    let table = run(&["list", "-label", "env=dev", dbarg]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].ends_with("labels"), "{table}");
    assert!(
        rows[1].starts_with(&b) && rows[1].ends_with("env=dev"),
        "{table}"
    );
    // Bad labels and filters fail with one line naming them (the logger escapes quotes), and
    // create nothing.
    for (args, says) in [
        (
            vec!["create", "-label", "Env=x", dbarg],
            r#"invalid label: key \"Env\""#,
        ),
        (
            vec!["create", "-label", "novalue", dbarg],
            r#"\"novalue\" must be key=value"#,
        ),
        (
            vec!["list", "-limit", "0", dbarg],
            r#"invalid limit: \"0\""#,
        ),
        (
            vec!["list", "-kind", "auto", dbarg],
            r#"invalid kind: \"auto\""#,
        ),
    ] {
        let said = said(&common::run_expect_fail(&mut backup(&args)));
        assert!(said.contains(says), "{args:?}: {said}");
    }
    assert_eq!(json_ids(&[]).len(), 3);
}
