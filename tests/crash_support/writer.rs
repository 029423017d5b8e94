//! The application writer of the crash suite: a separate process (this test binary re-executed
//! with `--writer-child DB SEED PARENT_PID`) committing the workload of [`super::workload`] in
//! order, running the application checkpoints it asks for, and printing one line per event the
//! driver reacts to (`begin-big`, `commit-big`, `checkpoint`). [`Writer`] is the driver's handle.
//!
//! Must stay true: after a restart the writer continues at the committed `meta.seq + 1`, so the
//! database always equals the replay of `0..=meta.seq`; the child dies with the driver
//! (`PR_SET_PDEATHSIG`) and never outlives a failed test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::workload::{self, CHECKPOINT_MODES};

/// Pause between transactions: keeps the WAL growth at a pace the debug build replicates.
const PACE: Duration = Duration::from_millis(3);
/// Busy timeout of the writer's transactions (walstream briefly takes the write lock).
const WRITE_BUSY: Duration = Duration::from_secs(30);
/// Busy timeout of FULL/RESTART/TRUNCATE checkpoints, which wait for walstream's read lock.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(100);

/// Entry point of the child process; returns the exit code.
pub fn child_main(db: &Path, seed: u64, parent: i32) -> i32 {
    // SAFETY: prctl(2) with constant arguments; getppid(2) has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            return 3;
        }
    }
    match write_forever(db, seed) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("writer: {e}");
            2
        }
    }
}

fn write_forever(db: &Path, seed: u64) -> rusqlite::Result<()> {
    let mut conn = Connection::open(db)?;
    conn.busy_timeout(WRITE_BUSY)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    let mut seq = workload::committed_seq(&conn)?.map_or(0, |s| s + 1);
    println!("start {seq}");
    loop {
        let txn = workload::plan(seed, seq);
        let big = txn.big_bytes();
        if big > 0 {
            println!("begin-big {seq} {big}");
        }
        workload::apply(&mut conn, &txn)?;
        if big > 0 {
            println!("commit-big {seq} {big}");
        }
        if let Some(mode) = txn.checkpoint {
            checkpoint(&conn, seq, mode)?;
        }
        seq += 1;
        std::thread::sleep(PACE);
    }
}

fn checkpoint(conn: &Connection, seq: u64, mode: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(CHECKPOINT_BUSY)?;
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    let res = conn.query_row(&sql, [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    conn.busy_timeout(WRITE_BUSY)?;
    match res {
        Ok((busy, log, done)) => {
            println!("checkpoint {seq} {mode} busy={busy} log={log} done={done}")
        }
        Err(e) => println!("checkpoint {seq} {mode} error={e}"),
    }
    Ok(())
}

/// What the driver has seen of the writer's output.
#[derive(Debug, Default)]
pub struct Events {
    /// Large transactions committed: (seq, when the line was read).
    pub big_commits: Vec<(u64, Instant)>,
    /// A large transaction has begun and not yet committed.
    pub big_open: bool,
    /// Application checkpoints run, per mode (index into [`CHECKPOINT_MODES`]).
    pub checkpoints: [u64; 4],
}

/// The running writer process.
pub struct Writer {
    child: Child,
    pub events: Arc<Mutex<Events>>,
    reader: Option<std::thread::JoinHandle<()>>,
    log: PathBuf,
}

impl Writer {
    /// Starts the writer on `db`; its stderr goes to `log` (appended).
    pub fn start(db: &Path, seed: u64, log: &Path) -> Writer {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open writer log");
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .arg("--writer-child")
            .arg(db)
            .arg(seed.to_string())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn writer child");
        let out = child.stdout.take().expect("writer stdout");
        let events = Arc::new(Mutex::new(Events::default()));
        let ev = Arc::clone(&events);
        let reader = std::thread::spawn(move || read_events(out, &ev));
        Writer {
            child,
            events,
            reader: Some(reader),
            log: log.to_path_buf(),
        }
    }

    /// `None` while running, else a description of how it ended.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!(
                "writer exited ({status}); stderr: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )),
            Err(e) => Some(format!("writer wait failed: {e}")),
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_events(out: std::process::ChildStdout, events: &Mutex<Events>) {
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let seq = words.next().and_then(|w| w.parse::<u64>().ok());
        let mut ev = events.lock().expect("events lock");
        match (kind, seq) {
            ("begin-big", Some(_)) => ev.big_open = true,
            ("commit-big", Some(s)) => {
                ev.big_open = false;
                ev.big_commits.push((s, Instant::now()));
            }
            ("checkpoint", Some(_)) => {
                let mode = words.next().unwrap_or_default();
                if let Some(i) = CHECKPOINT_MODES.iter().position(|m| *m == mode) {
                    ev.checkpoints[i] += 1;
                }
            }
            _ => {}
        }
    }
}
