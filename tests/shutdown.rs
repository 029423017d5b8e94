//! Shutdown of `walstream replicate` with its HTTP server busy (issue 18): SIGTERM while clients
//! force restore-point listings, ask for syncs and poll `/healthz` must end with exit 0, the HTTP
//! server stopped only after the final sync, no storage listing after shutdown started, no
//! storage request at all after the final sync, and no task left running.
//!
//! How it is proven: the binary logs (at debug level) its replica clients' storage counters —
//! every request, success or error, and the listings among them — when its loops and background
//! tasks have stopped (`loops stopped`), after the final sync (`final sync done`) and after the
//! HTTP server has drained (`services stopped`, with the tasks still tracked). The test compares
//! those counters: a refresher or an action still running after shutdown started makes them
//! grow. The replica is then restored and checked against the database.
//!
//! Also: a `POST …/sync` answered 504 goes on, and its late result is logged.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use http_support::*;
use support::{Writer, assert_prefix, insert, open_app, poll_until, rows};

const TOKEN: &str = "shutdown-test-token-5e1f";
const DB: &str = "/api/v1/databases/app.db";
/// Longest accepted time from SIGTERM to exit (the final sync of a small database).
const PROMPT_EXIT: Duration = Duration::from_secs(15);

/// A client repeating one request until the server no longer answers; counts the answers by
/// status.
struct Hammer {
    answered: Arc<AtomicU64>,
    handle: JoinHandle<BTreeMap<u16, u64>>,
}

impl Hammer {
    fn start(method: reqwest::Method, url: String, token: Option<&'static str>) -> Hammer {
        let answered = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&answered);
        let handle = std::thread::spawn(move || {
            let client = Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let mut statuses = BTreeMap::new();
            loop {
                let mut req = client.request(method.clone(), &url);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                // A refused or reset connection: the server is gone.
                let Ok(resp) = req.send() else {
                    return statuses;
                };
                let status = resp.status().as_u16();
                if resp.bytes().is_err() {
                    return statuses;
                }
                *statuses.entry(status).or_insert(0) += 1;
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Hammer { answered, handle }
    }

    fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    fn finish(self) -> BTreeMap<u16, u64> {
        self.handle.join().expect("client thread")
    }
}

/// The fields of the first debug line whose message is `msg`, and its line number.
fn line_fields(log: &str, msg: &str) -> (usize, BTreeMap<String, String>) {
    let needle = format!("msg=\"{msg}\"");
    let (i, line) = log
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {msg:?} line in the log:\n{log}"));
    let fields = line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    (i, fields)
}

fn number(fields: &BTreeMap<String, String>, key: &str) -> u64 {
    fields
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in {fields:?}"))
}

#[test]
fn sigterm_during_requests_and_a_refresh_stops_everything_after_the_final_sync() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let top = format!("http-token: \"{TOKEN}\"\nlogging:\n  level: debug\n");
    let cfg = config(&db, &top, &file_replica(&replica, "100ms"));
    let app = open_app(&db);
    for id in 1..=50 {
        insert(&app, id);
    }
    let ws = Instance::start(&dir, &cfg, &[]);
    ws.wait_caught_up();

    let url = |path: &str| format!("{}{path}", ws.base);
    let refresh = Hammer::start(
        reqwest::Method::GET,
        url(&format!("{DB}/restore-points?refresh=true")),
        None,
    );
    let syncs = Hammer::start(
        reqwest::Method::POST,
        url(&format!("{DB}/sync")),
        Some(TOKEN),
    );
    let health = Hammer::start(reqwest::Method::GET, url("/healthz"), None);
    // Commits keep arriving until the process is gone, so every sync (the final one and any
    // that slipped in after it) has something to upload.
    let writer = Writer::start(db.clone(), 51);
    poll_until(
        common::DEADLINE,
        "the clients to be answered a few times",
        || refresh.answered() >= 5 && syncs.answered() >= 3 && health.answered() >= 5,
    );
    let before_signal = rows(&app);

    ws.proc.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let (status, log) = ws.proc.wait();
    let took = signalled.elapsed();
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(took < PROMPT_EXIT, "exit took {took:?}; log:\n{log}");

    // Every answer was a success or, once shutdown started, a refusal; never an error.
    let (refresh, syncs, health) = (refresh.finish(), syncs.finish(), health.finish());
    for (what, statuses) in [("refresh", &refresh), ("sync", &syncs)] {
        assert!(
            statuses.keys().all(|s| *s == 200 || *s == 503),
            "{what}: {statuses:?}"
        );
    }
    assert_eq!(health.keys().collect::<Vec<_>>(), [&200], "{health:?}");

    // Order: loops stopped → final sync → HTTP server stopped → services stopped → exit line.
    let (stopped_at, stopped) = line_fields(&log, "loops stopped");
    let (synced_at, synced) = line_fields(&log, "final sync done");
    let (server_at, _) = line_fields(&log, "http server stopped");
    let (services_at, services) = line_fields(&log, "services stopped");
    let (down_at, _) = line_fields(&log, "walstream shut down");
    assert!(
        stopped_at < synced_at && synced_at < server_at && server_at < services_at,
        "shutdown out of order:\n{log}"
    );
    assert!(services_at < down_at, "{log}");
    // No listing after shutdown started (the final sync lists nothing), no request at all
    // after the final sync, nothing left running.
    let lists = number(&stopped, "storage_lists");
    assert!(
        lists > 0,
        "the refresher listed before the signal: {stopped:?}"
    );
    assert_eq!(number(&synced, "storage_lists"), lists, "{log}");
    assert_eq!(number(&services, "storage_lists"), lists, "{log}");
    assert_eq!(
        number(&services, "storage_requests"),
        number(&synced, "storage_requests"),
        "storage requests after the final sync:\n{log}"
    );
    assert_eq!(number(&services, "tasks_left"), 0, "{log}");

    // The final sync holds every commit made before the signal (and perhaps a few more).
    writer.finish();
    let out = dir.join("restored.db");
    let restored = walstream_restore(&[&format!("file://{}", replica.display())], &[], &out);
    assert!(
        restored.len() >= before_signal.len(),
        "{} < {}",
        restored.len(),
        before_signal.len()
    );
    assert_prefix(&restored, &rows(&app));
}

#[test]
fn a_sync_finishing_after_its_504_is_logged() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let top = format!("http-token: \"{TOKEN}\"\n");
    // The replica's own loop uploads once an hour: the request's sync does the upload.
    let cfg = config(&db, &top, &file_replica(&replica, "1h"));
    let app = open_app(&db);
    insert(&app, 1);
    let ws = Instance::start(&dir, &cfg, &[]);
    poll_until(common::DEADLINE, "the database to attach", || {
        !ws.status()["databases"][0]["position"].is_null()
    });
    // Several MiB of WAL: its upload cannot finish within a millisecond.
    app.execute_batch("BEGIN").expect("begin");
    for id in 2..=3000 {
        insert(&app, id);
        app.execute(
            "UPDATE t SET v = v || ?1 WHERE id = ?2",
            rusqlite::params!["y".repeat(2000), id],
        )
        .expect("grow row");
    }
    app.execute_batch("COMMIT").expect("commit");
    let expected = rows(&app);

    let r = ws.post(
        &format!("{DB}/sync?timeout=1ms"),
        Some(&format!("Bearer {TOKEN}")),
    );
    assert_eq!(r.status, 504, "{}", r.body);
    let doc = r.json();
    assert_eq!(doc["database"], "app.db");
    assert_eq!(doc["error"], "not finished within 1ms; still running");
    poll_until(common::DEADLINE, "the late result in the log", || {
        ws.proc
            .log_text()
            .contains("action finished after its request timed out")
    });
    let log = ws.proc.stop();
    let line = log
        .lines()
        .find(|l| l.contains("action finished after its request timed out"))
        .expect("late line");
    assert!(
        line.contains("db=app.db") && line.contains("action=sync"),
        "{line}"
    );
    let out = dir.join("restored.db");
    let restored = walstream_restore(&[&format!("file://{}", replica.display())], &[], &out);
    assert_eq!(restored, expected);
}
