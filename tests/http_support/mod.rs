//! Helpers of the HTTP end-to-end tests (`tests/http.rs`): a running `walstream replicate` with
//! its HTTP client, config and replica snippets, reading a file replica and the shadow WAL, and an
//! S3 server (moto) of the test's own that it may stop and restart; `schema` validates answers
//! against the OpenAPI document (`tests/openapi.rs`).
//!
//! What must stay true: every wait polls with a deadline (never sleeps for readiness); processes
//! started here are stopped by their handle (also when a test fails).

#![allow(dead_code)]

pub mod prom;
pub mod schema;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use reqwest::blocking::Client;
use serde_json::Value;

pub use crate::common::tempdir;
use crate::common::{self, DEADLINE, Proc, poll_until, walstream_config};
use prom::{Scrape, parse_prometheus};

pub struct Instance {
    pub proc: Proc,
    pub base: String,
    client: Client,
}

pub struct Resp {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Instance {
    /// Writes `config` into `dir` and starts `walstream replicate -config` with `env`; waits for
    /// the `serving metrics on url=…` line.
    pub fn start(dir: &Path, config: &str, env: &[(String, String)]) -> Instance {
        Instance::serve(walstream_config(dir, config, env))
    }

    /// [`Instance::start`] with extra `replicate` flags after `-config`.
    pub fn start_with_flags(dir: &Path, config: &str, flags: &[&str]) -> Instance {
        let path = dir.join("walstream.yml");
        std::fs::write(&path, config).expect("write config");
        let shown = path.display().to_string();
        let args: Vec<&str> = ["-config", shown.as_str()]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        Instance::serve(common::walstream(dir, &args))
    }

    /// Waits for `proc`'s `serving metrics on url=…` line.
    fn serve(mut proc: Proc) -> Instance {
        let base = proc.base_url();
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Instance { proc, base, client }
    }

    pub fn send(&self, req: reqwest::blocking::RequestBuilder) -> Resp {
        let resp = req.send().expect("http request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().expect("response body");
        Resp {
            status,
            body,
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(format!("{}{path}", self.base)))
    }

    pub fn get_auth(&self, path: &str, token: &str) -> Resp {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req.bearer_auth(token))
    }

    pub fn post(&self, path: &str, auth: Option<&str>) -> Resp {
        let mut req = self.client.post(format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        self.send(req)
    }

    pub fn status(&self) -> Value {
        let r = self.get("/api/v1/status");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    pub fn metrics(&self) -> Scrape {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.body);
        let ct = r.headers.get("content-type").expect("content type");
        assert!(ct.to_str().unwrap_or_default().starts_with("text/plain"));
        parse_prometheus(&r.body)
    }

    /// Polls until every replica's stored position equals the database position.
    pub fn wait_caught_up(&self) -> Value {
        let mut last = Value::Null;
        let found = common::poll::poll_within(DEADLINE, || {
            let st = self.status();
            let db = &st["databases"][0];
            let caught_up = !db["position"].is_null()
                && db["replicas"]
                    .as_array()
                    .expect("replicas")
                    .iter()
                    .all(|r| r["position"] == db["position"] && r["lag_seconds"] == 0.0);
            if caught_up {
                return Some(st);
            }
            last = st;
            None
        });
        found.unwrap_or_else(|| panic!("replicas never caught up: {last:#}"))
    }
}

/// A config with `addr` on a free loopback port, one database with fast ticks and a small
/// checkpoint threshold (so checkpoints happen), and the given replica entries.
pub fn config(db: &Path, top_extra: &str, replicas: &str) -> String {
    format!(
        "addr: \"127.0.0.1:0\"\n{top_extra}dbs:\n  - path: \"{}\"\n    monitor-interval: 50ms\n    min-checkpoint-page-count: 8\n    replicas:\n{replicas}",
        db.display()
    )
}

/// A config with `addr` on a free loopback port and one database per path in `dbs`, each with a
/// file replica under `replicas/<file name>`.
pub fn fleet_config(dbs: &[PathBuf], top_extra: &str, replicas: &Path) -> String {
    let mut cfg = format!("addr: \"127.0.0.1:0\"\n{top_extra}dbs:\n");
    for db in dbs {
        let name = db.file_name().expect("file name").to_string_lossy();
        cfg.push_str(&format!(
            "  - path: \"{}\"\n    monitor-interval: 50ms\n    replicas:\n{}",
            db.display(),
            file_replica(&replicas.join(name.as_ref()), "100ms")
        ));
    }
    cfg
}

/// Sum of `walstream_replica_storage_operations_total` over every replica for `operation`.
pub fn storage_ops(s: &Scrape, operation: &str) -> f64 {
    s.of("walstream_replica_storage_operations_total")
        .iter()
        .filter(|x| x.labels.get("operation").map(String::as_str) == Some(operation))
        .map(|x| x.value)
        .sum()
}

pub fn file_replica(dir: &Path, sync_interval: &str) -> String {
    format!(
        "      - name: file\n        url: \"file://{}\"\n        sync-interval: {sync_interval}\n",
        dir.display()
    )
}

/// An S3 replica on `endpoint` with explicit keys (moto accepts any).
pub fn s3_replica(endpoint: &str, bucket: &str, prefix: &str, key: &str, secret: &str) -> String {
    format!(
        "      - name: s3\n        type: s3\n        bucket: \"{bucket}\"\n        path: \"{prefix}\"\n        endpoint: \"{endpoint}\"\n        region: us-east-1\n        force-path-style: true\n        access-key-id: \"{key}\"\n        secret-access-key: \"{secret}\"\n        sync-interval: 100ms\n"
    )
}

/// The newest segment of the newest generation of a file replica: (index, end offset), where
/// end = offset + decompressed length.
pub fn newest_segment_end(replica: &Path) -> Option<(String, u32, u64)> {
    let generation = crate::support::list(&replica.join("generations")).pop()?;
    let wal = replica.join("generations").join(&generation).join("wal");
    let newest = crate::support::list(&wal)
        .into_iter()
        .filter_map(|n| {
            let (i, o) = n.strip_suffix(".wal.lz4")?.split_once('_')?;
            Some((
                u32::from_str_radix(i, 16).ok()?,
                u64::from_str_radix(o, 16).ok()?,
                n,
            ))
        })
        .max()?;
    let bytes = std::fs::read(wal.join(&newest.2)).ok()?;
    let len = walstream::lz4::decompress(&bytes).ok()?.len() as u64;
    Some((generation, newest.0, newest.1 + len))
}

pub fn file_len(p: &Path) -> f64 {
    std::fs::metadata(p).map(|m| m.len() as f64).unwrap_or(0.0)
}

/// Sum of the shadow WAL file sizes of `generation`.
pub fn shadow_size(db: &Path, generation: &str) -> f64 {
    let dir = db
        .parent()
        .expect("parent")
        .join(format!(
            ".{}-litestream",
            db.file_name().expect("name").to_string_lossy()
        ))
        .join("generations")
        .join(generation)
        .join("wal");
    crate::support::list(&dir)
        .iter()
        .map(|n| file_len(&dir.join(n)))
        .sum()
}

/// Creates `bucket` on an S3 server (moto accepts an unsigned PUT).
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let resp = Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .expect("create bucket");
    assert!(
        resp.status().is_success(),
        "create bucket: {}",
        resp.status()
    );
}

/// An RFC 3339 string of a JSON document as a time.
pub fn time(v: &Value) -> SystemTime {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .map(SystemTime::from)
        .unwrap_or_else(|e| panic!("bad time {text}: {e}"))
}

pub fn walstream_restore(
    args: &[&str],
    env: &[(String, String)],
    out: &Path,
) -> Vec<(i64, String)> {
    common::restore_with(&common::walstream_bin(), env, args, out)
}

pub struct OwnMoto {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl OwnMoto {
    pub fn start(log: PathBuf) -> OwnMoto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut m = OwnMoto {
            child: None,
            port,
            log,
        };
        m.restart();
        m
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts moto on the same port (after [`OwnMoto::stop`]) and waits until it answers.
    pub fn restart(&mut self) {
        let bin = common::require_env("WALSTREAM_TEST_MOTO_SERVER");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("moto log");
        let err = out.try_clone().expect("clone log");
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start moto_server");
        self.child = Some(child);
        let url = format!("{}/moto-api/", self.endpoint());
        let client = Client::new();
        poll_until(DEADLINE, "our moto to answer", || {
            if let Some(c) = self.child.as_mut() {
                let exited = c.try_wait().expect("try_wait");
                assert!(
                    exited.is_none(),
                    "moto exited: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            client
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        self.stop();
    }
}
