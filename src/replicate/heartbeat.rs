//! The heartbeat of `replicate` (Litestream v0.5's `heartbeat-url`, `heartbeat-interval`): an
//! HTTP GET of the configured URL at most once per interval, sent only while every database
//! replicates, so a dead-man's-switch monitor (healthchecks.io, Cronitor, Better Stack, Uptime
//! Kuma push monitors) alerts when replication stops or the process dies.
//!
//! Litestream v0.5's behaviour, kept: a check every [`CHECK_INTERVAL`] (15 s); a ping when the
//! last attempt is at least one interval old and every database is healthy; the attempt time is
//! recorded before the request, so a failing endpoint is tried once per interval, not at every
//! check; a request times out after 30 s ([`REQUEST_TIMEOUT`]); a status outside 2xx is a
//! failure; failures are logged and never stop replication. No databases: no ping.
//!
//! "Healthy" in walstream's terms (it uploads only when something changed, where v0.5 records a
//! successful sync every `sync-interval` even when idle; [`fleet_problem`]): every database is
//! attached and its last sync succeeded, and every replica has completed an upload round, has no
//! commit waiting for upload longer than the interval, and has not been failing for longer than
//! the interval. An idle, healthy database therefore keeps the heartbeat going without storage
//! requests.
//!
//! What must stay true: the task runs on the run's [`Lifecycle`] (background: it ends when
//! shutdown starts) and checks `is_stopping` right before each request, so no ping starts after
//! shutdown began; the URL may hold a secret and is never logged: lines carry its
//! `scheme://host[:port]` only and request errors are logged without their URL; every check
//! result is counted ([`HeartbeatStats`], shown as `walstream_heartbeat_*` metrics).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::{DbHandle, Fleet, Lifecycle};
use crate::config::HeartbeatUrl;
use crate::db::DbState;
use crate::gofmt::format_go_duration;
use crate::replica::ReplicaStatus;

/// How often the health of the databases is checked once a ping is due (Litestream v0.5's
/// `DefaultHeartbeatCheckInterval`); shorter for intervals under a minute (see [`check_every`]).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(15);
/// Longest a ping request may take (Litestream v0.5's `DefaultHeartbeatTimeout`); never more
/// than the interval.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the heartbeat sends where.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub url: HeartbeatUrl,
    pub interval: Duration,
}

/// Counters of the heartbeat since start (monotonic).
#[derive(Debug, Default)]
pub struct HeartbeatStats {
    sent: AtomicU64,
    failed: AtomicU64,
    suppressed: AtomicU64,
}

/// A copy of [`HeartbeatStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatCounts {
    /// Pings answered with a 2xx status.
    pub sent: u64,
    /// Pings that failed (no answer, time-out, a status outside 2xx).
    pub failed: u64,
    /// Checks at which a ping was due but some database was not healthy.
    pub suppressed: u64,
}

impl HeartbeatStats {
    pub fn counts(&self) -> HeartbeatCounts {
        HeartbeatCounts {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            suppressed: self.suppressed.load(Ordering::Relaxed),
        }
    }
}

/// Why the heartbeat is held back: the database, the replica when it is one, and what is wrong
/// (a fixed text, so a repeated problem is logged once) with the error text when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub db: PathBuf,
    pub replica: Option<String>,
    pub what: &'static str,
    pub error: Option<String>,
}

impl Problem {
    /// Same database, replica and kind of problem (the error text may differ).
    fn same(&self, other: &Problem) -> bool {
        (&self.db, &self.replica, self.what) == (&other.db, &other.replica, other.what)
    }
}

/// The first database (in fleet order) that keeps the heartbeat back, or a problem with an empty
/// path when there is no database at all; `None` when a ping may go.
pub fn fleet_problem(
    handles: &[Arc<DbHandle>],
    now: SystemTime,
    interval: Duration,
) -> Option<Problem> {
    if handles.is_empty() {
        return Some(Problem {
            db: PathBuf::new(),
            replica: None,
            what: "no databases",
            error: None,
        });
    }
    handles.iter().find_map(|h| {
        let replicas: Vec<ReplicaStatus> = h.replicas.iter().map(|r| r.status()).collect();
        let db = DbView {
            path: h.db.path().to_path_buf(),
            attached: h.is_open(),
            state: h.db.state(),
        };
        db_problem(&db, &replicas, now, interval)
    })
}

/// What [`db_problem`] looks at of a database.
#[derive(Debug, Clone)]
pub struct DbView {
    pub path: PathBuf,
    pub attached: bool,
    pub state: DbState,
}

/// Why the database `db` with replicas `replicas` keeps the heartbeat back at `now` (pure).
pub fn db_problem(
    db: &DbView,
    replicas: &[ReplicaStatus],
    now: SystemTime,
    interval: Duration,
) -> Option<Problem> {
    let problem = |replica: Option<&str>, what, error: Option<&str>| Problem {
        db: db.path.clone(),
        replica: replica.map(str::to_string),
        what,
        error: error.map(str::to_string),
    };
    if !db.attached {
        return Some(problem(None, "database not attached", None));
    }
    if let Some(e) = &db.state.last_error {
        return Some(problem(None, "database sync failing", Some(e)));
    }
    let older = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO) > interval;
    for r in replicas {
        let name = Some(r.name.as_str());
        let error = r.last_error.as_ref().map(|(_, e)| e.as_str());
        let Some(last_sync) = r.last_sync else {
            return Some(problem(name, "replica has not completed a sync yet", error));
        };
        if r.pending_since.is_some_and(older) {
            let what = "replica has commits waiting for upload longer than the heartbeat interval";
            return Some(problem(name, what, error.filter(|_| r.failure_streak > 0)));
        }
        if r.failure_streak > 0 && older(last_sync) {
            let what = "replica failing for longer than the heartbeat interval";
            return Some(problem(name, what, error));
        }
    }
    None
}

/// How often to re-check health while a ping is due: [`CHECK_INTERVAL`], or a quarter of a
/// shorter interval (at least 100 ms).
pub fn check_every(interval: Duration) -> Duration {
    CHECK_INTERVAL
        .min(interval / 4)
        .max(Duration::from_millis(100))
}

/// Runs the heartbeat until shutdown starts (spawn it on the run's lifecycle).
pub(super) async fn run(
    hb: Heartbeat,
    fleet: Arc<Fleet>,
    life: Lifecycle,
    stats: Arc<HeartbeatStats>,
) {
    let host = hb.url.host().to_string();
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT.min(hb.interval))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            error!(url = %host, error = %e, "heartbeat disabled: cannot build HTTP client");
            return;
        }
    };
    let shown = format_go_duration(hb.interval.as_nanos() as i128);
    info!(url = %host, interval = %shown, "starting heartbeat monitor");
    // The first check comes one check period after start, as Litestream's ticker does.
    tokio::select! {
        _ = life.stopping() => return,
        _ = tokio::time::sleep(check_every(hb.interval)) => {}
    }
    let mut last_attempt: Option<Instant> = None;
    let mut held: Option<Problem> = None;
    loop {
        if let Some(due) = last_attempt.map(|t| t + hb.interval) {
            tokio::select! {
                _ = life.stopping() => return,
                _ = tokio::time::sleep_until(due) => {}
            }
        }
        if let Some(p) = fleet_problem(&fleet.handles(), SystemTime::now(), hb.interval) {
            stats.suppressed.fetch_add(1, Ordering::Relaxed);
            log_suppressed(&host, &p, held.as_ref().is_some_and(|h| h.same(&p)));
            held = Some(p);
            tokio::select! {
                _ = life.stopping() => return,
                _ = tokio::time::sleep(check_every(hb.interval)) => {}
            }
            continue;
        }
        if held.take().is_some() {
            info!(url = %host, "heartbeat resumed: every database is healthy");
        }
        if life.is_stopping() {
            return;
        }
        // Recorded before the request, as Litestream does: a failing endpoint is tried once per
        // interval.
        last_attempt = Some(Instant::now());
        let result = tokio::select! {
            _ = life.stopping() => return,
            r = client.get(hb.url.as_str()).send() => r,
        };
        match result {
            Ok(resp) if resp.status().is_success() => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                debug!(url = %host, status = resp.status().as_u16(), "heartbeat ping sent");
            }
            Ok(resp) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                let status = resp.status().as_u16();
                warn!(url = %host, status, "heartbeat ping failed: unexpected status code");
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                warn!(url = %host, error = %crate::rt::http_error_text(e), "heartbeat ping failed");
            }
        }
    }
}

/// The first time a problem holds the heartbeat back it is logged at info, then at debug.
fn log_suppressed(host: &str, p: &Problem, repeated: bool) {
    let db = p.db.display().to_string();
    let replica = p.replica.as_deref().unwrap_or("");
    let error = p.error.as_deref().unwrap_or("");
    if repeated {
        debug!(url = %host, db, replica, reason = p.what, error, "heartbeat ping suppressed");
    } else {
        info!(url = %host, db, replica, reason = p.what, error, "heartbeat ping suppressed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn db(attached: bool, error: Option<&str>) -> DbView {
        DbView {
            path: PathBuf::from("/data/app.db"),
            attached,
            state: DbState {
                last_error: error.map(str::to_string),
                ..DbState::default()
            },
        }
    }

    fn synced(name: &str, last: u64) -> ReplicaStatus {
        ReplicaStatus {
            name: name.to_string(),
            last_sync: Some(at(last)),
            ..ReplicaStatus::default()
        }
    }

    fn what(p: Option<Problem>) -> Option<(Option<String>, &'static str)> {
        p.map(|p| (p.replica, p.what))
    }

    #[test]
    fn an_idle_caught_up_database_is_healthy_however_old_its_last_upload() {
        let replicas = [synced("file", 10), synced("s3", 20)];
        assert_eq!(
            db_problem(&db(true, None), &replicas, at(100_000), MIN),
            None
        );
    }

    #[test]
    fn detached_or_failing_databases_hold_the_heartbeat() {
        let replicas = [synced("file", 10)];
        let p = db_problem(&db(false, None), &replicas, at(20), MIN);
        assert_eq!(what(p), Some((None, "database not attached")));
        let p =
            db_problem(&db(true, Some("disk I/O error")), &replicas, at(20), MIN).expect("failing");
        assert_eq!(p.what, "database sync failing");
        assert_eq!(p.error.as_deref(), Some("disk I/O error"));
    }

    #[test]
    fn replicas_hold_it_until_synced_and_when_behind_or_failing_past_the_interval() {
        let d = db(true, None);
        let never = ReplicaStatus {
            name: "s3".into(),
            last_error: Some((at(5), "connection refused".into())),
            failure_streak: 3,
            ..ReplicaStatus::default()
        };
        let p = db_problem(&d, &[synced("file", 10), never], at(20), MIN).expect("held");
        assert_eq!(p.replica.as_deref(), Some("s3"));
        assert_eq!(p.what, "replica has not completed a sync yet");
        assert_eq!(p.error.as_deref(), Some("connection refused"));

        // Commits waiting: fine within the interval, held beyond it.
        let mut behind = synced("file", 100);
        behind.pending_since = Some(at(100));
        assert_eq!(db_problem(&d, &[behind.clone()], at(160), MIN), None);
        let p = db_problem(&d, &[behind], at(161), MIN);
        assert_eq!(
            what(p),
            Some((
                Some("file".into()),
                "replica has commits waiting for upload longer than the heartbeat interval"
            ))
        );

        // Failing rounds: fine while the last success is recent, held after.
        let mut failing = synced("file", 100);
        failing.failure_streak = 2;
        failing.last_error = Some((at(150), "timeout".into()));
        assert_eq!(db_problem(&d, &[failing.clone()], at(150), MIN), None);
        let p = db_problem(&d, &[failing], at(161), MIN).expect("held");
        assert_eq!(
            p.what,
            "replica failing for longer than the heartbeat interval"
        );
        assert_eq!(p.error.as_deref(), Some("timeout"));
    }

    #[test]
    fn no_databases_no_ping() {
        let p = fleet_problem(&[], at(1), MIN).expect("held");
        assert_eq!(p.what, "no databases");
    }

    #[test]
    fn checks_are_litestreams_fifteen_seconds_or_a_quarter_of_a_short_interval() {
        assert_eq!(check_every(Duration::from_secs(300)), CHECK_INTERVAL);
        assert_eq!(check_every(MIN), CHECK_INTERVAL);
        assert_eq!(
            check_every(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            check_every(Duration::from_millis(10)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_problem_repeats_whatever_its_error_text() {
        let a = Problem {
            db: "/d".into(),
            replica: Some("s3".into()),
            what: "x",
            error: Some("e1".into()),
        };
        let b = Problem {
            error: Some("e2".into()),
            ..a.clone()
        };
        assert!(a.same(&b));
        assert!(!a.same(&Problem {
            replica: None,
            ..a.clone()
        }));
    }
}
