//! `walstream backup compare` / `export` and their HTTP twins (`GET …/backups/compare`,
//! `GET …/backups/{id}/export`) on the real binary:
//! - a compare on known differences (a row changed, one deleted, one inserted, a table added, a
//!   `WITHOUT ROWID` table changed) reports exactly them, from the CLI without a server and from
//!   the API of a running sidecar;
//! - an export is byte for byte what SQLite's own shell prints (`sqlite3 -csv -header`) for the
//!   same table of the same file, for a backup and for the live database, through the CLI and
//!   streamed over HTTP for a table of several megabytes;
//! - bad input (a missing table, a bad id, no token) is a clear error and `-o` leaves no file.
//!
//! Needs the `sqlite3` shell (installed by `scripts/test.sh`). Pacing: nothing sleeps.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::Value;

use common::{run, run_expect_fail, stdout_text, walstream_bin};
use http_support::*;

const TOKEN: &str = "backup-data-token-3f9a";

/// Values the shell and walstream print alike: REALs with at most 15 significant digits (the
/// 3.40 shell prints 15, the bundled SQLite as many as a round trip needs), text needing every
/// kind of quoting, blobs (one with a NUL byte, which the shell cuts like a C string), NULLs.
const SEED: &str = "
    PRAGMA journal_mode = wal;
    CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n REAL, b BLOB);
    INSERT INTO t VALUES
        (1, 'one', 1.5, x'00ff'),
        (2, 'two, with a comma', 0.1, NULL),
        (3, 'say \"hi\"', 1e20, x'41'),
        (4, '', NULL, ''),
        (5, 'café', 3.0, NULL),
        (6, ' leading space', -0.000012345, NULL),
        (7, 'line
break', 123456789.123, NULL),
        (8, 'it''s', 42, NULL);
    CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    INSERT INTO kv VALUES ('a', 1), ('b', 2);
";

/// After the backup: row 2 changed, row 1 deleted, row 9 added, `kv.b` changed, table `u` added.
const CHANGES: &str = "
    UPDATE t SET v = 'TWO' WHERE id = 2;
    DELETE FROM t WHERE id = 1;
    INSERT INTO t VALUES (9, 'nine', 9.5, NULL);
    UPDATE kv SET v = 20 WHERE k = 'b';
    CREATE TABLE u(x);
";

fn seeded(dir: &Path) -> (PathBuf, Connection) {
    let db = dir.join("app.db");
    let c = Connection::open(&db).expect("open");
    c.execute_batch(SEED).expect("seed");
    (db, c)
}

fn walstream(args: &[&str]) -> Command {
    let mut cmd = Command::new(walstream_bin());
    cmd.args(args);
    cmd
}

/// What `sqlite3 -csv -header FILE 'SELECT * FROM table'` prints.
fn shell_csv(file: &Path, table: &str) -> Vec<u8> {
    let out = run(Command::new("sqlite3")
        .args(["-csv", "-header"])
        .arg(file)
        .arg(format!("SELECT * FROM \"{table}\"")));
    out.stdout
}

/// The id `walstream backup create` printed (the line with the tab-separated fields).
fn created_id(out: &std::process::Output) -> String {
    let text = stdout_text(out);
    let line = text
        .lines()
        .find(|l| l.contains('\t'))
        .unwrap_or_else(|| panic!("no backup line in {text}"));
    line.split('\t').next().expect("id").to_string()
}

/// `walstream replicate` of `db` with the token and a file replica, caught up, and the record
/// of a backup taken through the API.
fn serve_and_back_up(dir: &Path, db: &Path) -> (Instance, Value) {
    let cfg = config(
        db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &file_replica(&dir.join("replica"), "100ms"),
    );
    let ws = Instance::start(dir, &cfg, &[]);
    ws.wait_caught_up();
    let created = ws.post(
        "/api/v1/databases/app.db/backups",
        Some(&format!("Bearer {TOKEN}")),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let record = created.json();
    (ws, record)
}

/// Removes table `name` from a comparison's `tables` and returns it.
fn take_table(doc: &mut Value, name: &str) -> Value {
    let tables = doc["tables"].as_array_mut().expect("tables");
    let at = tables
        .iter()
        .position(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name}"));
    tables.remove(at)
}

/// Checks the comparison JSON of [`SEED`] → [`SEED`] + [`CHANGES`].
fn assert_known_differences(doc: &Value) {
    assert_eq!(doc["identical"], false, "{doc}");
    assert_eq!(doc["schema"]["added"][0]["name"], "u", "{doc}");
    let table = |name: &str| -> &Value {
        doc["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no table {name} in {doc}"))
    };
    let t = table("t");
    let counts = |t: &Value| {
        (
            t["rows_a"].clone(),
            t["rows_b"].clone(),
            t["added"].as_u64(),
            t["removed"].as_u64(),
            t["changed"].as_u64(),
        )
    };
    assert_eq!(
        counts(t),
        (8.into(), 8.into(), Some(1), Some(1), Some(1)),
        "{t}"
    );
    assert_eq!(
        counts(table("kv")),
        (2.into(), 2.into(), Some(0), Some(0), Some(1))
    );
    assert_eq!(table("u")["rows_a"], Value::Null);
    let rows: Vec<String> = doc["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| format!("{} {} {}", r["table"], r["change"], r["key"]))
        .collect();
    assert_eq!(
        rows,
        [
            "\"kv\" \"changed\" [\"b\"]",
            "\"t\" \"removed\" [1]",
            "\"t\" \"added\" [9]",
            "\"t\" \"changed\" [2]",
        ]
    );
    let changed = &doc["rows"][3];
    assert_eq!(changed["a"][1], "two, with a comma");
    assert_eq!(changed["b"][1], "TWO");
}

#[test]
fn cli_compares_and_exports_like_the_sqlite_shell() {
    let (_keep, dir) = tempdir();
    let (db, app) = seeded(&dir);
    let cfg = dir.join("walstream.yml");
    std::fs::write(&cfg, format!("dbs:\n  - path: \"{}\"\n", db.display())).expect("config");
    let cfg = cfg.display().to_string();
    let dbs = db.display().to_string();
    let id = created_id(&run(&mut walstream(&[
        "backup", "create", "-config", &cfg, &dbs,
    ])));
    app.execute_batch(CHANGES).expect("changes");

    let out = run(&mut walstream(&[
        "backup", "compare", "-json", "-config", &cfg, &dbs, &id, "live",
    ]));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("compare JSON");
    assert_known_differences(&doc);
    let human = stdout_text(&run(&mut walstream(&[
        "backup", "compare", "-config", &cfg, &dbs, &id, "live",
    ])));
    assert!(human.contains("schema + table u"), "{human}");
    assert!(
        human.contains("changed t [2] a=[2,\"two, with a comma\",0.1,null] b=[2,\"TWO\",0.1,null]"),
        "{human}"
    );
    let same = run(&mut walstream(&[
        "backup", "compare", "-json", "-config", &cfg, &dbs, &id, &id,
    ]));
    let same: Value = serde_json::from_slice(&same.stdout).expect("JSON");
    assert_eq!(same["identical"], true, "{same}");

    // Export: the backup's table to stdout, the live one to a file; both equal the shell's.
    let backup_file = dir.join("backups/app.db").join(format!("{id}.db"));
    for table in ["t", "kv"] {
        let out = run(&mut walstream(&[
            "backup", "export", "-table", table, "-config", &cfg, &dbs, &id,
        ]));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&shell_csv(&backup_file, table)),
            "{table}"
        );
    }
    let csv = dir.join("live.csv");
    let csv_arg = csv.display().to_string();
    run(&mut walstream(&[
        "backup", "export", "-table", "t", "-o", &csv_arg, "-config", &cfg, &dbs, "live",
    ]));
    assert_eq!(
        std::fs::read(&csv).expect("csv"),
        shell_csv(&db, "t"),
        "live export"
    );

    // Bad input: one line naming it, non-zero, and no file left by -o.
    let missing = dir.join("missing.csv");
    let missing_arg = missing.display().to_string();
    let out = run_expect_fail(&mut walstream(&[
        "backup",
        "export",
        "-table",
        "nope",
        "-o",
        &missing_arg,
        "-config",
        &cfg,
        &dbs,
        "live",
    ]));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("no table \\\"nope\\\"") || text.contains("no table \"nope\""),
        "{text}"
    );
    assert!(!missing.exists());
    assert!(!PathBuf::from(format!("{missing_arg}.tmp")).exists());
    let out = run_expect_fail(&mut walstream(&[
        "backup", "compare", "-config", &cfg, &dbs, "../x", "live",
    ]));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("invalid backup id"), "{text}");
    let out = run_expect_fail(&mut walstream(&[
        "backup",
        "compare",
        "-config",
        &cfg,
        &dbs,
        "20200101T000000Z-abcdef",
        "live",
    ]));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("not found"), "{text}");
}

#[test]
fn api_compares_and_streams_exports_behind_the_token() {
    let (_keep, dir) = tempdir();
    let (db, app) = seeded(&dir);
    // A table of several megabytes, so the export streams many chunks.
    app.execute_batch(
        "CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT, n INTEGER);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 40000)
         INSERT INTO big SELECT i, 'row ' || i || ', ' || hex(randomblob(40)), i * 7 FROM s;",
    )
    .expect("big table");
    let (ws, created) = serve_and_back_up(&dir, &db);
    let base = "/api/v1/databases/app.db/backups";
    let id = created["id"].as_str().expect("id").to_string();
    app.execute_batch(CHANGES).expect("changes");

    let compare = format!("{base}/compare?a={id}&b=live");
    assert_eq!(ws.get(&compare).status, 401);
    assert_eq!(ws.get_auth(&compare, "wrong").status, 403);
    let r = ws.get_auth(&compare, TOKEN);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut doc = r.json();
    // `big` is unchanged: same counts, nothing added, removed or changed.
    let big = take_table(&mut doc, "big");
    assert_eq!(
        (big["rows_a"].as_u64(), big["changed"].as_u64()),
        (Some(40000), Some(0))
    );
    assert_known_differences(&doc);

    // The same against the replica at a point in time that holds the changes (the newest
    // replica file's time, once a sync stored them): the point is restored, then compared.
    let synced = ws.post(
        "/api/v1/databases/app.db/sync",
        Some(&format!("Bearer {TOKEN}")),
    );
    assert_eq!(synced.status, 200, "{}", synced.body);
    let at = chrono::DateTime::<chrono::Utc>::from(newest_mtime(&dir.join("replica")))
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let r = ws.get_auth(&format!("{base}/compare?a={id}&b={at}"), TOKEN);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut doc = r.json();
    take_table(&mut doc, "big");
    assert_known_differences(&doc);
    let r = ws.get_auth(&format!("{base}/{at}/export?table=t"), TOKEN);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, String::from_utf8_lossy(&shell_csv(&db, "t")));

    for bad in [
        "?a=x.db&b=live",
        "?a=live",
        "?a=live&b=live&limit=0",
        "?a=live&b=live&x=1",
    ] {
        let r = ws.get_auth(&format!("{base}/compare{bad}"), TOKEN);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    // Streamed export of the backup's big table and of live's t, equal to the shell's output.
    let backup_file = dir.join("backups/app.db").join(format!("{id}.db"));
    let r = ws.get_auth(&format!("{base}/{id}/export?table=big"), TOKEN);
    assert_eq!(r.status, 200);
    let ct = r.headers.get("content-type").expect("content type");
    assert_eq!(ct, "text/csv; charset=utf-8");
    let disposition = r.headers.get("content-disposition").expect("disposition");
    assert_eq!(
        disposition.to_str().expect("ascii"),
        format!("attachment; filename=\"app-{id}-big.csv\"")
    );
    let want = shell_csv(&backup_file, "big");
    assert!(want.len() > 3 << 20, "big table is {} bytes", want.len());
    assert!(
        r.body.as_bytes() == want.as_slice(),
        "streamed export differs from sqlite3's"
    );
    let r = ws.get_auth(&format!("{base}/live/export?table=t"), TOKEN);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, String::from_utf8_lossy(&shell_csv(&db, "t")));
    assert_eq!(ws.get(&format!("{base}/live/export?table=t")).status, 401);
    let r = ws.get_auth(&format!("{base}/{id}/export?table=nope"), TOKEN);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("nope"), "{}", r.body);
    let r = ws.get_auth(&format!("{base}/{id}/export"), TOKEN);
    assert_eq!(r.status, 400, "{}", r.body);
    ws.proc.stop();
}

/// `?async=true` makes compare and export data jobs: 202 with a job whose record shows only
/// where the answer is; the answer itself (database content) needs the token at
/// `GET /api/v1/jobs/{id}/result`, and equals the synchronous answer.
#[test]
fn compare_and_export_run_as_data_jobs_whose_results_need_the_token() {
    let (_keep, dir) = tempdir();
    let (db, app) = seeded(&dir);
    let (ws, created) = serve_and_back_up(&dir, &db);
    let base = "/api/v1/databases/app.db/backups";
    let id = created["id"].as_str().expect("id").to_string();
    app.execute_batch(CHANGES).expect("changes");
    let bearer = format!("Bearer {TOKEN}");

    let start = |url: &str| -> Value {
        let r = ws.get_auth(url, TOKEN);
        assert_eq!(r.status, 202, "{url}: {}", r.body);
        let job = r.json();
        let location = r.headers.get("location").expect("location");
        assert_eq!(
            location.to_str().expect("ascii"),
            job["url"].as_str().expect("url")
        );
        job
    };
    let finished = |job: &Value| -> Value {
        let url = job["url"].as_str().expect("url").to_string();
        let mut doc = Value::Null;
        common::poll_until(Duration::from_secs(60), "the data job to end", || {
            doc = ws.get(&url).json();
            doc["state"] != "running"
        });
        doc
    };

    // Compare: the job ends with the result's URL, type and size, never the rows.
    let job = start(&format!("{base}/compare?a={id}&b=live&async=true"));
    assert_eq!(job["operation"], "compare");
    let done = finished(&job);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let result = &done["result"];
    assert_eq!(result["content_type"], "application/json");
    let url = result["url"].as_str().expect("result url").to_string();
    let shown = done.to_string();
    assert!(
        !shown.contains("nine") && !shown.contains("TWO"),
        "the job shows content: {done:#}"
    );
    assert_eq!(ws.get(&url).status, 401, "the result needs the token");
    assert_eq!(ws.get_auth(&url, "wrong").status, 403);
    let r = ws.get_auth(&url, TOKEN);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body.len() as u64,
        result["bytes"].as_u64().expect("bytes")
    );
    assert_known_differences(&r.json());
    let sync = ws.get_auth(&format!("{base}/compare?a={id}&b=live"), TOKEN);
    assert_eq!(
        r.json(),
        sync.json(),
        "the job's answer differs from the synchronous one"
    );
    // The jobs list shows it, without content.
    let list = ws.get("/api/v1/jobs");
    assert_eq!(list.status, 200);
    assert!(list.body.contains(job["id"].as_str().expect("id")));

    // Export: the CSV, byte for byte the shell's, with the download name.
    let job = start(&format!("{base}/live/export?table=t&async=true"));
    let done = finished(&job);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let url = done["result"]["url"].as_str().expect("url").to_string();
    let r = ws.get_auth(&url, TOKEN);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").expect("type"),
        "text/csv; charset=utf-8"
    );
    assert!(r.headers.get("content-disposition").is_some());
    assert_eq!(r.body, String::from_utf8_lossy(&shell_csv(&db, "t")));

    // A failing export is a failed job with the synchronous error, and no result.
    let job = start(&format!("{base}/{id}/export?table=nope&async=true"));
    let done = finished(&job);
    assert_eq!(done["state"], "failed", "{done:#}");
    assert_eq!(done["status"], 400);
    let r = ws.get_auth(
        &format!("{}/result", job["url"].as_str().expect("url")),
        TOKEN,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    // Unknown jobs and bad flags.
    assert_eq!(ws.get_auth("/api/v1/jobs/nope/result", TOKEN).status, 404);
    let r = ws.get_auth(&format!("{base}/compare?a={id}&b=live&async=maybe"), TOKEN);
    assert_eq!(r.status, 400, "{}", r.body);
    // Data jobs take no operation lock: a backup runs meanwhile.
    let r = ws.post(&format!("{base}?async=true"), Some(&bearer));
    assert_eq!(r.status, 202, "{}", r.body);
    ws.proc.stop();
}

/// The schema guard of live restores: a backup from before a migration (a new table and
/// `user_version`) is refused with 409 naming both versions and the differences, changing
/// nothing (no safety backup, rows and schema as they were); with `force` it is restored.
#[test]
fn schema_guard_refuses_an_older_schema_until_forced() {
    let (_keep, dir) = tempdir();
    let (db, app) = seeded(&dir);
    let (ws, created) = serve_and_back_up(&dir, &db);
    let base = "/api/v1/databases/app.db/backups";
    let bearer = format!("Bearer {TOKEN}");
    let id = created["id"].as_str().expect("id").to_string();
    // A time before the migration that the replica covers, on the clock file replicas stamp
    // their objects with (the file system's, which may lag the system clock by a tick): after
    // the replica's newest file, and strictly before anything the migration writes.
    let synced = ws.post("/api/v1/databases/app.db/sync", Some(&bearer));
    assert_eq!(synced.status, 200, "{}", synced.body);
    let at = fs_clock_after(&dir, newest_mtime(&dir.join("replica")));
    fs_clock_after(&dir, at);
    let at = chrono::DateTime::<chrono::Utc>::from(at)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    // The migration: a new table and user_version 2.
    app.execute_batch("CREATE TABLE audit(at TEXT); PRAGMA user_version = 2;")
        .expect("migrate");
    // In the replica too: a point in time must lie within the generation's files (Litestream's
    // rule), so the migration's segment must be there for `at` to be restorable.
    let synced = ws.post("/api/v1/databases/app.db/sync", Some(&bearer));
    assert_eq!(synced.status, 200, "{}", synced.body);
    let before = shell_csv(&db, "t");

    let restore = format!("{base}/{id}/restore");
    let r = ws.post(&restore, Some(&bearer));
    assert_eq!(r.status, 409, "{}", r.body);
    let doc = r.json();
    let conflict = &doc["schema_conflict"];
    assert_eq!(conflict["live"]["user_version"], 2, "{doc}");
    assert_eq!(conflict["restore"]["user_version"], 0, "{doc}");
    assert_eq!(
        conflict["differences"]["removed"][0]["name"], "audit",
        "{doc}"
    );
    let error = doc["error"].as_str().expect("error");
    assert!(error.contains("user_version 2 → 0"), "{error}");
    assert!(error.contains("removes table audit"), "{error}");
    // Nothing changed: same rows, the new table still there, no safety backup taken.
    assert_eq!(shell_csv(&db, "t"), before);
    let version: i64 = app
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, 2);
    let listed = ws.get_auth(base, TOKEN).json();
    assert_eq!(
        listed["backups"].as_array().expect("backups").len(),
        1,
        "{listed}"
    );

    let client = reqwest::blocking::Client::new();
    let replica_restore = |body: Value| {
        client
            .post(format!("{}/api/v1/databases/app.db/restore", ws.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .expect("restore request")
    };
    // The same for a point-in-time restore from the replica to before the migration.
    let r = replica_restore(serde_json::json!({ "timestamp": at }));
    let (code, body) = (r.status().as_u16(), r.text().expect("body"));
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("removes table audit"), "{body}");

    // Forced: restored, user_version and schema back to the backup's.
    let r = client
        .post(format!("{}{restore}", ws.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "force": true }))
        .send()
        .expect("forced restore");
    assert_eq!(r.status().as_u16(), 200);
    let version: i64 = app
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, 0);
    let audit: i64 = app
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )
        .expect("schema");
    assert_eq!(audit, 0);
    ws.proc.stop();
}

/// The newest modification time of the files under `dir`.
fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let e = e.expect("entry");
            let meta = e.metadata().expect("stat");
            if meta.is_dir() {
                todo.push(e.path());
            } else {
                newest = newest.max(meta.modified().expect("mtime"));
            }
        }
    }
    newest
}

/// The file system's clock (the mtime of a file written now) once it is past `after`.
fn fs_clock_after(dir: &Path, after: std::time::SystemTime) -> std::time::SystemTime {
    let probe = dir.join("clock-probe");
    let mut now = after;
    common::poll_until(
        support::DEADLINE,
        "the file system clock to move on",
        || {
            std::fs::write(&probe, b"tick").expect("write probe");
            now = std::fs::metadata(&probe)
                .expect("stat")
                .modified()
                .expect("mtime");
            now > after
        },
    );
    now
}
