//! The one process wrapper of the integration suites: a running `walstream` or `litestream` (any
//! subcommand that keeps running, `replicate` mostly) with its stdout and stderr in a log file,
//! started from arguments or a config, stopped by SIGTERM or SIGKILL; plus running a restore and
//! reading its result.
//!
//! Must stay true:
//! - every wait polls with a deadline ([`super::poll`]); a process that exits while a test waits
//!   for it fails the wait at once, with its log;
//! - a handle dropped without a stop (a failing test) kills and reaps its process, and while the
//!   test is panicking prints the tail of the log, so a failure shows what the process said;
//! - restores read by [`restore_with`] are integrity-checked ([`super::sqlite::restored_rows`]).

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::poll::{DEADLINE, POLL};
use super::sqlite::{Rows, restored_rows};

/// Log lines printed when a test panics with the process still held.
const TAIL_LINES: usize = 80;

/// A running process with its combined output in a log file; killed when dropped.
pub struct Proc {
    child: Child,
    /// The write end of the process's stdin: closed when the handle is dropped, so an `-exec`
    /// child blocked reading it ends with the test.
    _stdin: Option<ChildStdin>,
    log: PathBuf,
    name: String,
}

/// `walstream replicate ARGS` (file replicas: no extra environment).
pub fn walstream(dir: &Path, args: &[&str]) -> Proc {
    walstream_env(dir, args, &[])
}

/// `walstream replicate ARGS` with extra environment (a backend's credentials).
pub fn walstream_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Proc {
    Proc::start("walstream", &super::walstream_bin(), dir, args, env)
}

/// Writes `config` to `dir/walstream.yml` and starts `walstream replicate -config` on it.
pub fn walstream_config(dir: &Path, config: &str, env: &[(String, String)]) -> Proc {
    let path = dir.join("walstream.yml");
    std::fs::write(&path, config).expect("write config");
    walstream_env(dir, &["-config", &path.display().to_string()], env)
}

/// `litestream replicate ARGS` (v0.3.13) with extra environment.
pub fn litestream_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Proc {
    Proc::start("litestream", &super::litestream_bin(), dir, args, env)
}

impl Proc {
    /// `BIN replicate ARGS` with `env`, logging to a new `NAME-N.log` in `dir`.
    pub fn start(
        name: &str,
        bin: &Path,
        dir: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> Proc {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let mut cmd = Command::new(bin);
        if name == "litestream" {
            // Litestream v0.5's AWS SDK refuses a custom CA bundle; the test servers are plain
            // HTTP, so it needs none.
            cmd.env_remove("AWS_CA_BUNDLE");
        }
        cmd.arg("replicate")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(name, cmd, &dir.join(format!("{name}-{n}.log")))
    }

    /// Spawns `cmd` as is (arguments, environment), its stdout and stderr to `log`, its stdin a
    /// pipe held by the handle.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let out =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({cmd:?}): {e}"));
        let stdin = child.stdin.take();
        Proc {
            child,
            _stdin: stdin,
            log: log.to_path_buf(),
            name: name.to_string(),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({sig}) {}", self.name);
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Panics with the log when the process has ended.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited early ({status}); log:\n{}",
                self.name,
                self.log_text()
            );
        }
    }

    /// Polls `check` until it gives a value, failing with the log when the process exits first
    /// or `deadline` passes.
    pub fn poll<T>(
        &mut self,
        deadline: Duration,
        what: &str,
        check: impl FnMut(&mut Self) -> Option<T>,
    ) -> Result<T, String> {
        self.poll_every(POLL, deadline, what, check)
    }

    /// [`Proc::poll`] with its own period, for a check that is itself work (a probe restore) and
    /// must not run more often than that.
    pub fn poll_every<T>(
        &mut self,
        period: Duration,
        deadline: Duration,
        what: &str,
        mut check: impl FnMut(&mut Self) -> Option<T>,
    ) -> Result<T, String> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(v) = check(self) {
                return Ok(v);
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited ({status}) while waiting for {what}; log:\n{}",
                    self.name,
                    self.log_text()
                ));
            }
            if Instant::now() > end {
                return Err(format!(
                    "timed out after {deadline:?} waiting for {what}; {} log:\n{}",
                    self.name,
                    self.log_text()
                ));
            }
            std::thread::sleep(period);
        }
    }

    /// `http://HOST:PORT` of walstream's HTTP server, from its `serving metrics on` log line (text
    /// or JSON log format), polled until it appears.
    pub fn base_url(&mut self) -> String {
        self.poll(DEADLINE, "the `serving metrics on` log line", |p| {
            metrics_base(&p.log_text())
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(self) -> (ExitStatus, String) {
        self.wait_within(DEADLINE).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits at most `deadline` for the process to exit; on time-out kills it.
    pub fn wait_within(mut self, deadline: Duration) -> Result<(ExitStatus, String), String> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.exited() {
                return Ok((status, self.log_text()));
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                return Err(format!(
                    "{} did not exit in time; log:\n{}",
                    self.name,
                    self.log_text()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn terminate(self) -> (ExitStatus, String) {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// SIGTERM, then waits; the exit must be 0.
    pub fn stop(self) -> String {
        let name = self.name.clone();
        let (status, log) = self.terminate();
        assert!(status.success(), "{name} exit {status}; log:\n{log}");
        log
    }

    /// SIGTERM, then waits for exit 1 with Litestream v0.3.13's known shutdown race (its final
    /// checkpoint sees the cancelled context: `error closing db … context canceled`) or exit 0.
    /// The final sync happened before that close, so the replica is complete either way.
    pub fn stop_litestream(self) -> String {
        let (status, log) = self.terminate();
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

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap; returns the log.
    pub fn kill9(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
            eprintln!(
                "--- last {} lines of {} ({}) ---\n{}",
                tail.len(),
                self.name,
                self.log.display(),
                tail.join("\n")
            );
        }
    }
}

/// `http://HOST:PORT` from the first `serving metrics on … url=http://HOST:PORT/metrics` line.
pub fn metrics_base(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("serving metrics on"))?;
    let rest = &line[line.find("http://")?..];
    let url = rest.split(|c: char| c.is_whitespace() || c == '"').next()?;
    Some(url.trim_end_matches("/metrics").to_string())
}

/// Runs `BIN restore -o OUT SOURCE_ARGS…` with `env` (it must succeed), then returns the rows of
/// the integrity-checked output database.
pub fn restore_with(
    bin: &Path,
    env: &[(String, String)],
    source_args: &[&str],
    out: &Path,
) -> Rows {
    let mut cmd = Command::new(bin);
    cmd.args(["restore", "-o"])
        .arg(out)
        .args(source_args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        // Litestream v0.5's AWS SDK refuses a custom CA bundle together with its own HTTP
        // client; the test servers are plain HTTP, so no bundle is needed.
        .env_remove("AWS_CA_BUNDLE");
    super::run(&mut cmd);
    restored_rows(out)
}

/// Restores a file replica with the real Litestream v0.3.13: `litestream restore -o OUT
/// SOURCE_ARGS…`; returns the restored rows after checking integrity.
pub fn litestream_restore(source_args: &[&str], out: &Path) -> Rows {
    restore_with(&super::litestream_bin(), &[], source_args, out)
}
