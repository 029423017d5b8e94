//! End-to-end test of the built-in admin page (`GET /`, `src/server/page.rs`) in a real browser:
//! `walstream replicate` with the HTTP server on a free port, a token and protected reads, a file
//! replica and a database with rows; then `node tests/browser/admin.mjs` drives headless
//! Chromium (playwright-core, Debian's /usr/bin/chromium; `scripts/install-browser.sh` installs
//! both) through entering the token, the headline (`degraded`: a second replica under a regular
//! file can never upload), the restore points, creating a backup with labels, pinning, filtering,
//! downloading, comparing it with the live database, exporting a table as CSV, restoring it
//! (through the schema guard's second confirmation: the live `user_version` changes after the
//! backup), point-in-time restores (a listed point, and a time picked between two known states),
//! undoing the last restore and the expire dry run. The database is changed here between the
//! steps, and every restore is checked here on the live database.
//!
//! What must stay true: a missing node, Chromium or playwright-core fails the test (never a
//! skip); every wait has a deadline; the browser process is killed if the test fails.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use http_support::{Instance, config, file_replica, tempdir};
use support::{DEADLINE, insert, open_app, poll_until, rows};

const TOKEN: &str = "admin-page-token-8c1d";
const BACKUP_NAME: &str = "before-cleanup";
/// The replica that cannot upload: its directory would be under a regular file.
const BROKEN_REPLICA: &str = "broken";
/// Bound on the whole browser run (Chromium start-up, every step, the restore).
const BROWSER_DEADLINE: Duration = Duration::from_secs(300);
const CHROMIUM: &str = "/usr/bin/chromium";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics (never skips) when the browser test's tools are missing.
fn require_browser_tools() {
    let hint = "run scripts/install-browser.sh (scripts/test.sh does)";
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: {hint}"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is not runnable ({node:?}): {hint}"
    );
    let pw = repo().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(pw.exists(), "{} is missing: {hint}", pw.display());
}

/// The browser driver: its process, stdin (the protocol's `continue`) and stdout lines.
struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    transcript: Vec<String>,
    end: Instant,
}

impl Driver {
    fn start(base: &str, out: &Path) -> Driver {
        let mut child = Command::new("node")
            .arg(repo().join("tests/browser/admin.mjs"))
            .current_dir(repo().join("tests/browser"))
            .env("WALSTREAM_URL", base)
            .env("WALSTREAM_TOKEN", TOKEN)
            .env("WALSTREAM_DB", "app.db")
            .env("WALSTREAM_BACKUP_NAME", BACKUP_NAME)
            .env("WALSTREAM_BROKEN_REPLICA", BROKEN_REPLICA)
            .env("WALSTREAM_OUT", out)
            .env("WALSTREAM_CHROMIUM", CHROMIUM)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node tests/browser/admin.mjs");
        let (tx, lines) = channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Driver {
            stdin: child.stdin.take(),
            child,
            lines,
            transcript: Vec::new(),
            end: Instant::now() + BROWSER_DEADLINE,
        }
    }

    /// The rest of the first line starting with `prefix`; panics with the transcript when the
    /// driver ends or the deadline passes first.
    fn expect_line(&mut self, prefix: &str) -> String {
        loop {
            let left = self.end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("[browser] {line}");
                    self.transcript.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("timed out before {prefix:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("the driver ended before {prefix:?}"))
                }
            }
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("driver stdin");
        writeln!(stdin, "{line}").expect("write to the driver");
        stdin.flush().expect("flush the driver's stdin");
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        panic!(
            "browser test: {why}\n--- transcript ---\n{}",
            self.transcript.join("\n")
        );
    }

    /// Waits for the driver's exit (bounded) and drains its output; panics unless it exit 0.
    fn finish(mut self) {
        drop(self.stdin.take());
        while let Ok(line) = self
            .lines
            .recv_timeout(self.end.saturating_duration_since(Instant::now()))
        {
            eprintln!("[browser] {line}");
            self.transcript.push(line);
        }
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the driver") {
                break status;
            }
            if Instant::now() > self.end {
                self.fail("the driver did not exit");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            self.fail(&format!("the driver exited with {status}"));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get_auth_status(ws: &Instance) -> serde_json::Value {
    let r = ws.get_auth("/api/v1/status", TOKEN);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Commits row `id` and waits until the first replica stores it; answers the server's time
/// once it has (a time after the commit's upload and before any later commit).
fn commit_replicated(ws: &Instance, app: &rusqlite::Connection, id: i64) -> String {
    let before = get_auth_status(ws)["databases"][0]["position"].clone();
    insert(app, id);
    poll_until(DEADLINE, "the first replica to store the commit", || {
        let st = get_auth_status(ws);
        let db = &st["databases"][0];
        (db["position"] != before && db["replicas"][0]["position"] == db["position"]).then_some(())
    });
    // The time must be later than the upload even when cut to the millisecond (the picker's
    // precision): read it a few milliseconds after the upload was seen.
    std::thread::sleep(Duration::from_millis(20));
    let st = get_auth_status(ws);
    let time = st["time"].as_str().expect("status time").to_string();
    std::thread::sleep(Duration::from_millis(20));
    time
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.len() > 1000,
        "{} has {} bytes",
        path.display(),
        bytes.len()
    );
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
}

#[test]
fn admin_page_creates_and_restores_a_backup_in_a_browser() {
    require_browser_tools();
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = open_app(&db);
    for id in 1..=20 {
        insert(&app, id);
    }
    let at_backup = rows(&app);
    // The second replica's directory would be under a regular file: every upload fails, while
    // the first replica (the one restores use) keeps working.
    std::fs::write(dir.join("blocker"), b"not a directory").expect("write blocker");
    let broken = format!(
        "      - name: {BROKEN_REPLICA}\n        url: \"file://{}\"\n        sync-interval: 100ms\n",
        dir.join("blocker/replica").display()
    );
    let cfg = config(
        &db,
        &format!("http-token: \"{TOKEN}\"\nhttp-protect-reads: true\n"),
        &format!("{}{broken}", file_replica(&dir.join("replica"), "100ms")),
    );
    let ws = Instance::start(&dir, &cfg, &[]);

    // The page itself needs no token even with protected reads; it holds no data.
    let page = ws.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(page.body.contains("/assets/app.js"));
    assert_eq!(ws.get("/api/v1/status").status, 401);
    poll_until(
        DEADLINE,
        "a snapshot in the replica (restore points)",
        || {
            let st = get_auth_status(&ws);
            let replicas = &st["databases"][0]["replicas"];
            !replicas[0]["oldest_restore_point"].is_null()
                && replicas[1]["failure_streak"].as_u64() > Some(0)
                && replicas[1]["last_sync"].is_null()
        },
    );

    let out = repo().join("target/admin-page");
    // Fresh each run: the screenshot and downloads of an earlier run must not count.
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("create target/admin-page");
    let shot = out.join("admin-page.png");
    let mut driver = Driver::start(&ws.base, &out);
    let id = driver.expect_line("backup-created ");

    // Changed after the backup: the restore must undo both. A new user_version (as a
    // migration would set) makes the schema guard ask before the restore goes ahead.
    app.execute("DELETE FROM t WHERE id <= 5", [])
        .expect("delete");
    insert(&app, 1000);
    app.execute("UPDATE t SET v = 'changed-10' WHERE id = 10", [])
        .expect("update");
    app.execute_batch("PRAGMA user_version = 7")
        .expect("user_version");
    assert_ne!(rows(&app), at_backup);
    driver.send("continue");
    driver.expect_line("backup-restored");
    // The application's connection stays valid and sees the restored content.
    let version: i64 = app
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(
        version, 0,
        "the forced restore did not bring back the backup's user_version"
    );
    assert_eq!(
        rows(&app),
        at_backup,
        "the live database is not the backup {id}"
    );

    // Changed again; the oldest restore point (the first snapshot) holds the first 20 rows.
    app.execute("DELETE FROM t", []).expect("delete all");
    insert(&app, 2000);
    driver.send("continue");
    driver.expect_line("point-restored");
    assert_eq!(
        rows(&app),
        at_backup,
        "not restored to the oldest restore point"
    );

    // Two known states, each stored in the replica, with a time between them to pick.
    let between = commit_replicated(&ws, &app, 3000);
    let state_a = rows(&app);
    commit_replicated(&ws, &app, 4000);
    let state_b = rows(&app);
    driver.send(&format!("pick {between}"));
    driver.expect_line("time-restored");
    assert_eq!(
        rows(&app),
        state_a,
        "the picked time {between} did not restore the state between the two commits"
    );
    driver.send("continue");
    driver.expect_line("undone");
    assert_eq!(
        rows(&app),
        state_b,
        "undo did not bring back the state before the last restore"
    );
    driver.send("continue");
    let printed = driver.expect_line("screenshot ");
    driver.finish();

    assert_eq!(PathBuf::from(&printed), shot);
    assert_png(&shot);
    eprintln!("admin page screenshot: {}", shot.display());

    let fresh = common::sqlite::checked(&db);
    assert_eq!(rows(&fresh), state_b);
    let list = ws.get_auth("/api/v1/databases/app.db/backups", TOKEN);
    assert_eq!(list.status, 200, "{}", list.body);
    let kinds: Vec<String> = list.json()["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| b["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(kinds.iter().any(|k| k == "pre-restore"), "{kinds:?}");
    ws.proc.stop();
}
