//! `heartbeat-url` end to end: a real `walstream replicate` (file replicas,
//! `-heartbeat-interval 1s`) pinging a receiver written here (axum on a free loopback port) while
//! every database replicates, and holding the pings back while one database cannot reach its
//! replica, until the replica is repaired.
//!
//! What must stay true: the absence of pings is asserted over a counted number of held-back
//! checks (`walstream_heartbeat_suppressed_total`), not over a slept time; the URL's secret
//! token never appears in walstream's log.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;

use http_support::{Instance, tempdir};
use support::{DEADLINE, insert, open_app};

/// The secret part of the heartbeat URL (healthchecks.io puts a UUID there).
const TOKEN: &str = "hb-secret-7f3a9c51";
/// The flag that shortens the interval (Litestream's file key has a 1m floor).
const FLAGS: &[&str] = &["-heartbeat-interval", "1s"];
/// Checks at 250 ms (a quarter of the interval): 12 held-back checks span 3 intervals.
const HELD_CHECKS: f64 = 12.0;

/// One request the receiver got: method and path with query.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    method: String,
    uri: String,
}

/// A heartbeat endpoint on a free loopback port; answers 503 to the first `fail_first`
/// requests, then 200. Stops with the test (its runtime is dropped).
struct Receiver {
    _rt: tokio::runtime::Runtime,
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&hits);
        let app = Router::new().fallback(move |req: Request| {
            let seen = Arc::clone(&seen);
            async move {
                let mut hits = seen.lock().expect("hits");
                hits.push(Hit {
                    method: req.method().to_string(),
                    uri: req.uri().to_string(),
                });
                if hits.len() <= fail_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        });
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            _rt: rt,
            base: format!("http://127.0.0.1:{port}"),
            hits,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    /// `heartbeat-url` pointing here, with the token in the path and the query.
    fn url(&self) -> String {
        format!("{}/ping/{TOKEN}?rid={TOKEN}", self.base)
    }
}

/// A database entry with one file replica at `replica`.
fn db_entry(db: &Path, replica: &Path) -> String {
    format!(
        "  - path: \"{}\"\n    monitor-interval: 50ms\n    replicas:\n      - url: \"file://{}\"\n        sync-interval: 100ms\n",
        db.display(),
        replica.display()
    )
}

fn config(rx: &Receiver, entries: &str) -> String {
    format!(
        "addr: \"127.0.0.1:0\"\nheartbeat-url: \"{}\"\nheartbeat-interval: 1m\ndbs:\n{entries}",
        rx.url()
    )
}

/// Databases with one row each and a file replica each (`(database, replica folder)`), under
/// `walstream replicate` with [`FLAGS`] and a heartbeat to `rx`.
fn start(dir: &Path, rx: &Receiver, dbs: &[(&Path, &Path)]) -> Instance {
    let mut entries = String::new();
    for (db, replica) in dbs {
        insert(&open_app(db), 1);
        entries.push_str(&db_entry(db, replica));
    }
    Instance::start_with_flags(dir, &config(rx, &entries), FLAGS)
}

fn metric(ws: &Instance, name: &str, labels: &[(&str, &str)]) -> f64 {
    ws.metrics().value(name, labels).unwrap_or(0.0)
}

#[test]
fn pings_every_interval_while_every_database_replicates() {
    let (_keep, dir) = tempdir();
    let rx = Receiver::start(1);
    let (a, b) = (dir.join("a.db"), dir.join("b.db"));
    let (ra, rb) = (dir.join("replica-a"), dir.join("replica-b"));
    let mut ws = start(&dir, &rx, &[(&a, &ra), (&b, &rb)]);
    ws.proc
        .poll(DEADLINE, "three heartbeat pings", |_| {
            (rx.hits().len() >= 3).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    support::poll_until(DEADLINE, "two pings counted ok", || {
        metric(&ws, "walstream_heartbeat_pings_total", &[("result", "ok")]) >= 2.0
    });
    let want = Hit {
        method: "GET".into(),
        uri: format!("/ping/{TOKEN}?rid={TOKEN}"),
    };
    assert!(rx.hits().iter().all(|h| *h == want), "{:?}", rx.hits());
    // The 503 is one failure; the endpoint is not retried before the next interval.
    let failed = metric(
        &ws,
        "walstream_heartbeat_pings_total",
        &[("result", "failed")],
    );
    assert_eq!(failed, 1.0);

    let log = ws.proc.stop();
    let host = format!("url={}", rx.base);
    assert!(log.contains("starting heartbeat monitor"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("heartbeat ping failed") && l.contains(&host) && l.contains("503")),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
}

#[test]
fn no_ping_while_a_database_cannot_replicate_then_pings_resume() {
    let (_keep, dir) = tempdir();
    let rx = Receiver::start(0);
    let (good, bad) = (dir.join("good.db"), dir.join("bad.db"));
    // The bad replica's directory lies under a regular file: every upload fails (ENOTDIR), for
    // root too.
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, b"not a directory").expect("write blocker");
    let (good_replica, bad_replica) = (dir.join("replica-good"), blocker.join("replica"));
    let mut ws = start(&dir, &rx, &[(&good, &good_replica), (&bad, &bad_replica)]);
    let bad_shown = bad.display().to_string();
    ws.proc
        .poll(DEADLINE, "the suppression naming bad.db", |p| {
            p.log_text()
                .lines()
                .any(|l| l.contains("heartbeat ping suppressed") && l.contains(&bad_shown))
                .then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let held = metric(&ws, "walstream_heartbeat_suppressed_total", &[]);
    support::poll_until(DEADLINE, "three intervals of held-back checks", || {
        metric(&ws, "walstream_heartbeat_suppressed_total", &[]) >= held + HELD_CHECKS
    });
    assert_eq!(
        rx.hits(),
        Vec::new(),
        "pinged while bad.db could not replicate"
    );
    assert_eq!(
        metric(&ws, "walstream_heartbeat_pings_total", &[("result", "ok")]),
        0.0
    );
    let log = ws.proc.log_text();
    assert!(
        log.lines().any(|l| l.contains("heartbeat ping suppressed")
            && l.contains(&bad_shown)
            && l.contains("replica has not completed a sync yet")),
        "{log}"
    );

    // Repaired: the replica's next retry succeeds and the heartbeat resumes.
    std::fs::remove_file(&blocker).expect("remove blocker");
    std::fs::create_dir(&blocker).expect("mkdir blocker");
    ws.proc
        .poll(DEADLINE, "a ping after the repair", |_| {
            (!rx.hits().is_empty()).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let log = ws.proc.stop();
    assert!(log.contains("heartbeat resumed"), "{log}");
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
}
