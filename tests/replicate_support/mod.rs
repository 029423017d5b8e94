//! Helpers shared by the `replicate` end-to-end tests (`tests/replicate.rs`,
//! `tests/compat_replicate.rs`): a handle on a running walstream/litestream process with its log,
//! an application database writer, polling with a deadline, and restore checks.
//!
//! What must stay true: every wait is bounded by [`DEADLINE`] and polls (no sleeping for
//! readiness); every restore is checked with `PRAGMA integrity_check`; processes are killed when
//! their handle is dropped so a failing test leaves nothing running.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Upper bound for anything the tests wait for.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const POLL: Duration = Duration::from_millis(50);

/// A running `walstream replicate` or `litestream replicate` with its combined output in a log
/// file.
pub struct Proc {
    child: Child,
    /// The write end of the process's stdin: closed when the handle is dropped, so an `-exec`
    /// child blocked reading it ends with the test.
    _stdin: Option<std::process::ChildStdin>,
    log: PathBuf,
    name: &'static str,
}

pub mod workload;

/// `walstream replicate ARGS` (file replicas: no extra environment).
pub fn walstream(dir: &Path, args: &[&str]) -> Proc {
    walstream_env(dir, args, &[])
}

/// `walstream replicate ARGS` with extra environment (a backend's credentials).
pub fn walstream_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Proc {
    let bin = crate::common::walstream_bin();
    Proc::start("walstream", &bin, dir, args, env)
}

/// `litestream replicate ARGS` (v0.3.13) with extra environment.
pub fn litestream_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Proc {
    let bin = crate::common::litestream_bin();
    Proc::start("litestream", &bin, dir, args, env)
}

impl Proc {
    pub fn start(
        name: &'static str,
        bin: &Path,
        dir: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> Proc {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("{name}-{n}.log"));
        let out = std::fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log handle");
        let mut child = Command::new(bin)
            .arg("replicate")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        Proc {
            child,
            _stdin: stdin,
            log,
            name,
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we spawned.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, self.log_text());
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit in time; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then waits for exit 1 with Litestream v0.3.13's known shutdown race (its final
    /// checkpoint sees the cancelled context: `error closing db … context canceled`) or exit 0.
    /// The final sync happened before that close, so the replica is complete either way.
    pub fn stop_litestream(self) -> String {
        self.signal(libc::SIGTERM);
        let (status, log) = self.wait();
        let close_race = status.code() == Some(1)
            && log.contains("litestream shut down")
            && log.contains("error closing db")
            && log.contains("context canceled");
        assert!(
            status.success() || close_race,
            "litestream exit {status}; log:\n{log}"
        );
        log
    }

    /// SIGTERM, then waits; the exit must be 0.
    pub fn stop(self) -> String {
        let name = self.name;
        self.signal(libc::SIGTERM);
        let (status, log) = self.wait();
        assert!(status.success(), "{name} exit {status}; log:\n{log}");
        log
    }

    pub fn kill9(mut self) -> String {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        self.log_text()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sorted names in `dir` (empty when missing), temp files excluded.
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

pub fn open_app(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open app db");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mode: String = c
        .query_row("PRAGMA journal_mode=wal", [], |r| r.get(0))
        .expect("wal mode");
    assert_eq!(mode, "wal");
    c.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);")
        .expect("create table");
    c
}

pub fn insert(c: &Connection, id: i64) {
    c.execute(
        "INSERT INTO t(id, v) VALUES (?1, ?2)",
        rusqlite::params![
            id,
            format!("row-{id}-{}", "x".repeat((id % 7 * 100) as usize))
        ],
    )
    .expect("insert");
}

/// All rows of `t`, ordered.
pub fn rows(c: &Connection) -> Vec<(i64, String)> {
    let mut st = c
        .prepare("SELECT id, v FROM t ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Restores a file replica with the real Litestream v0.3.13: `litestream restore -o OUT
/// SOURCE_ARGS…`; returns the restored rows after checking integrity.
pub fn litestream_restore(source_args: &[&str], out: &Path) -> Vec<(i64, String)> {
    restore_with(&crate::common::litestream_bin(), &[], source_args, out)
}

/// Runs `BIN restore -o OUT SOURCE_ARGS…`, then checks and reads the output database.
pub fn restore_with(
    bin: &Path,
    env: &[(String, String)],
    source_args: &[&str],
    out: &Path,
) -> Vec<(i64, String)> {
    let res = Command::new(bin)
        .args(["restore", "-o"])
        .arg(out)
        .args(source_args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        // Litestream v0.5's AWS SDK refuses a custom CA bundle together with its own HTTP
        // client; the test servers are plain HTTP, so no bundle is needed.
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .expect("run restore");
    assert!(
        res.status.success(),
        "{} restore {source_args:?} failed: {}{}",
        bin.display(),
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let c = Connection::open(out).expect("open restored");
    assert_eq!(integrity(&c), "ok");
    rows(&c)
}

/// `PRAGMA integrity_check` result.
pub fn integrity(c: &Connection) -> String {
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// Background writer: one small transaction every few ms with ids 1, 2, 3, …
pub struct Writer {
    stop: Arc<AtomicBool>,
    last: Arc<AtomicI64>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: PathBuf, first_id: i64) -> Writer {
        Writer::paced(&db, first_id, Duration::from_millis(3))
    }

    /// One small transaction every `spacing` (paces the workload; not a wait for readiness).
    pub fn paced(db: &Path, first_id: i64, spacing: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(AtomicI64::new(first_id - 1));
        let (s, l, db) = (stop.clone(), last.clone(), db.to_path_buf());
        let handle = std::thread::spawn(move || {
            let c = open_app(&db);
            // Only the replicator checkpoints, so a restart finds the WAL it left and the
            // `-wal` size shows walstream's work.
            c.execute_batch("PRAGMA wal_autocheckpoint=0;")
                .expect("disable autocheckpoint");
            let mut id = first_id;
            while !s.load(Ordering::SeqCst) {
                insert(&c, id);
                l.store(id, Ordering::SeqCst);
                id += 1;
                std::thread::sleep(spacing);
            }
        });
        Writer {
            stop,
            last,
            handle: Some(handle),
        }
    }

    pub fn last(&self) -> i64 {
        self.last.load(Ordering::SeqCst)
    }

    /// Stops writing; returns the last committed id.
    pub fn finish(mut self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
        self.last()
    }
}

/// A writer dropped without `finish` (a failing test) stops at its next commit.
impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub fn assert_prefix(restored: &[(i64, String)], source: &[(i64, String)]) {
    assert!(restored.len() <= source.len());
    assert_eq!(
        restored,
        &source[..restored.len()],
        "restore is not a prefix of the source"
    );
}
