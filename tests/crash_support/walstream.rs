//! The `walstream replicate` process under test: its config (one or more databases, each with its
//! own replica; varied per round), start-up and readiness, the HTTP calls the driver makes
//! (`sync`, `snapshot` of one database, `status`), SIGKILL and SIGTERM.
//!
//! Must stay true: every wait polls with a deadline; the process (the shared `common::Proc`) is
//! killed when its handle is dropped and dies with the driver (`PR_SET_PDEATHSIG`), so a failing
//! run leaves nothing behind.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

use super::rng::Rng;
use crate::common::Proc;
use crate::common::process::metrics_base;

/// Bearer token of the mutating endpoints.
pub const TOKEN: &str = "crash-suite-token";
/// The first database's file name (its id in the HTTP API).
pub const DB_ID: &str = "crash.db";

/// The file name (and HTTP API id) of database `index`: `crash.db`, then `crash-1.db`, ….
pub fn db_name(index: usize) -> String {
    if index == 0 {
        DB_ID.to_string()
    } else {
        format!("crash-{index}.db")
    }
}
/// Upper bound for start-up, readiness, a sync and a graceful stop.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Where the replica lives.
#[derive(Clone, Debug)]
pub enum Backend {
    File {
        dir: PathBuf,
    },
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
    },
}

impl Backend {
    /// The replica's keys, one per line, each indented by `indent` spaces.
    pub fn replica_yaml(&self, indent: usize) -> String {
        let lines = match self {
            Backend::File { dir } => vec![format!("url: \"file://{}\"", dir.display())],
            Backend::S3 {
                endpoint,
                bucket,
                prefix,
            } => vec![
                "type: s3".to_string(),
                format!("bucket: \"{bucket}\""),
                format!("path: \"{prefix}\""),
                format!("endpoint: \"{endpoint}\""),
                "region: us-east-1".to_string(),
                "force-path-style: true".to_string(),
                format!("access-key-id: \"{}\"", crate::common::S3_ACCESS_KEY_ID),
                format!(
                    "secret-access-key: \"{}\"",
                    crate::common::S3_SECRET_ACCESS_KEY
                ),
            ],
        };
        let pad = " ".repeat(indent);
        lines.iter().map(|l| format!("{pad}{l}\n")).collect()
    }
}

/// The config of one round for every `(database, replica)`: each database's tick, checkpoint
/// thresholds and replica intervals are drawn from `rng` (in list order), so rounds exercise
/// different pacing. LTX rounds use the v0.5 shape of [`super::ltx::config`].
pub fn config(dbs: &[(&Path, &Backend)], ltx: bool, rng: &mut Rng) -> String {
    if ltx {
        return super::ltx::config(dbs, rng);
    }
    let mut text = format!("addr: \"127.0.0.1:0\"\nhttp-token: \"{TOKEN}\"\ndbs:\n");
    for (db, backend) in dbs {
        text.push_str(&db_config(db, backend, rng));
    }
    text
}

/// One entry of the `dbs:` list.
fn db_config(db: &Path, backend: &Backend, rng: &mut Rng) -> String {
    let (pacing, sync) = db_pacing(rng);
    let snapshot = rng.pick(&[
        "",
        "        snapshot-interval: 2s\n",
        "        snapshot-interval: 30s\n",
    ]);
    format!(
        "  - path: \"{}\"\n{pacing}    replicas:\n      - name: r\n{}        sync-interval: {sync}\n{snapshot}",
        db.display(),
        backend.replica_yaml(8)
    )
}

/// A database's pacing drawn for one round: its keys after `path` (tick and application
/// checkpoint thresholds, 4-space indent) and its replica's `sync-interval`.
pub fn db_pacing(rng: &mut Rng) -> (String, &'static str) {
    let monitor = rng.pick(&["50ms", "200ms", "1s"]);
    let ckpt_interval = rng.pick(&["1s", "10s", "1m"]);
    let min_pages = rng.pick(&[16, 100, 1000]);
    let max_pages = rng.pick(&[2000, 10000]);
    let sync = rng.pick(&["10ms", "100ms", "1s"]);
    (
        format!(
            "    monitor-interval: {monitor}\n    checkpoint-interval: {ckpt_interval}\n    min-checkpoint-page-count: {min_pages}\n    max-checkpoint-page-count: {max_pages}\n"
        ),
        sync,
    )
}

/// A running `walstream replicate -config …` (the shared process wrapper) and its HTTP client.
pub struct Walstream {
    proc: Proc,
    base: String,
    client: Client,
}

impl Walstream {
    /// Starts walstream with `config_path`, logging to `log`, and waits for its HTTP address.
    pub fn start(config_path: &Path, log: &Path) -> Result<Walstream, String> {
        let mut cmd = Command::new(crate::common::walstream_bin());
        cmd.arg("replicate").arg("-config").arg(config_path);
        // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut proc = Proc::spawn("walstream", cmd, log);
        let client = Client::builder()
            .timeout(DEADLINE + Duration::from_secs(10))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let base = proc.poll(DEADLINE, "the `serving metrics on` log line", |p| {
            metrics_base(&p.log_text())
        })?;
        Ok(Walstream { proc, base, client })
    }

    /// Waits until `/readyz` answers 200 (attached, every replica synced at least once).
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let (client, url) = (self.client.clone(), format!("{}/readyz", self.base));
        self.proc.poll(DEADLINE, "/readyz to answer 200", |_| {
            let r = client.get(&url).send().ok()?;
            r.status().is_success().then_some(())
        })
    }

    /// Waits for readiness, or until the log shows `line` (`snapshot written`: a new
    /// generation's first snapshot at start-up; `write full-image l0`: the LTX writer's full
    /// image): `Ok(true)` when the line came first.
    pub fn wait_ready_or_log(&mut self, line: &str) -> Result<bool, String> {
        let (client, url) = (self.client.clone(), format!("{}/readyz", self.base));
        let needle = format!("msg=\"{line}\"");
        self.proc
            .poll(DEADLINE, &format!("/readyz or {line:?}"), |p| {
                if p.log_text().contains(&needle) {
                    return Some(true);
                }
                let r = client.get(&url).send().ok()?;
                r.status().is_success().then_some(false)
            })
    }

    /// `POST /api/v1/databases/{db}/{action}`: status code and body.
    pub fn post(&self, db: &str, action: &str) -> Result<(u16, String), String> {
        post(&self.client, &self.base, db, action)
    }

    /// A cheap handle for a `POST` from another thread.
    pub fn poster(&self) -> (Client, String) {
        (self.client.clone(), self.base.clone())
    }

    /// `GET /api/v1/status` as JSON.
    pub fn status(&self) -> Result<Value, String> {
        let r = self
            .client
            .get(format!("{}/api/v1/status", self.base))
            .send()
            .map_err(|e| format!("GET status: {e}"))?;
        r.json().map_err(|e| format!("status body: {e}"))
    }

    /// SIGKILL and reap.
    pub fn kill(self) {
        self.proc.kill9();
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(self) -> Result<ExitStatus, String> {
        self.proc.signal(libc::SIGTERM);
        self.proc.wait_within(DEADLINE).map(|(status, _)| status)
    }

    pub fn log_path(&self) -> PathBuf {
        self.proc.log_path().to_path_buf()
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Uploads started and not finished according to the log so far.
    pub fn in_flight(&self) -> InFlight {
        InFlight::from_log(&self.log_text())
    }

    /// Polls the log until `want` holds for the uploads in flight (at most `limit`).
    pub fn wait_in_flight(&self, limit: Duration, want: impl Fn(InFlight) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if want(self.in_flight()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }
}

/// Which uploads the log shows as started (`write snapshot`, `write wal segment`) without their
/// completion line (`snapshot written`, `wal segment written`). Read after a SIGKILL, it says
/// what the kill interrupted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    pub snapshot: bool,
    pub segment: bool,
    /// The last snapshot written has no segment written after it.
    pub bare_snapshot: bool,
}

impl InFlight {
    pub fn from_log(log: &str) -> InFlight {
        let mut f = InFlight::default();
        for line in log.lines() {
            if line.contains("msg=\"write snapshot\"") {
                f.snapshot = true;
            } else if line.contains("msg=\"snapshot written\"") {
                f.snapshot = false;
                f.bare_snapshot = true;
            } else if line.contains("msg=\"write wal segment\"") {
                f.segment = true;
            } else if line.contains("msg=\"wal segment written\"") {
                f.segment = false;
                f.bare_snapshot = false;
            }
        }
        f
    }
}

/// `POST {base}/api/v1/databases/{db}/{action}` with the token.
pub fn post(client: &Client, base: &str, db: &str, action: &str) -> Result<(u16, String), String> {
    let url = format!("{base}/api/v1/databases/{db}/{action}");
    let r = client
        .post(&url)
        .bearer_auth(TOKEN)
        .send()
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().unwrap_or_default()))
}
