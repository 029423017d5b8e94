//! Secrets never leak, and files walstream creates are no more readable than the database.
//!
//! Secrets: a running `walstream replicate` with working and failing S3 (moto) and Azure
//! (azurite) replicas and an HTTP token; every output is collected — its log, the HTTP answers
//! (`/api/v1/status`, `/metrics`, the admin page and backups JSON, error answers to wrong
//! tokens), and the stdout/stderr of failing `restore`/`generations`/`snapshots`/`wal` runs
//! (config and URL forms) — and none may contain a secret key or the token.
//!
//! Modes: with the database 0640 in a 0750 directory, the shadow WAL files and the file
//! replica's objects are 0640 and their directories 0750 (Litestream: "files get the database
//! file's mode"); a restored database is 0600 in 0700 directories, like Litestream's restore.
//!
//! Needs the test servers (scripts/test.sh): moto and azurite.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{AZURITE_ACCOUNT, AZURITE_KEY};
use http_support::{Instance, create_bucket, tempdir};
use support::{DEADLINE, insert, open_app};

const S3_KEY_ID: &str = "AKIAWALSTREAMSECTEST";
const S3_SECRET: &str = "wsSecret+S3/7f3a9c1e5b2d4f60a8b";
const TOKEN: &str = "wsToken-http-4e8d2b6a0c9f1735";
/// A well-formed (base64) but wrong Azure key.
const WRONG_AZURE_KEY: &str = "d3NXcm9uZ0F6dXJlS2V5LWZvci13YWxzdHJlYW0tdGVzdHMtMTIzNDU2Nzg5MA==";

fn secrets() -> [(&'static str, &'static str); 4] {
    [
        ("S3 secret key", S3_SECRET),
        ("HTTP token", TOKEN),
        ("Azure account key", AZURITE_KEY),
        ("wrong Azure key", WRONG_AZURE_KEY),
    ]
}

/// Panics naming the output and the secret if any secret occurs in `text`.
fn assert_no_secret(source: &str, text: &str) {
    for (what, secret) in secrets() {
        assert!(!text.contains(secret), "{what} leaked in {source}:\n{text}");
    }
}

fn s3_replica(name: &str, bucket: &str, endpoint: &str, prefix: &str) -> String {
    format!(
        "      - name: {name}\n        type: s3\n        bucket: \"{bucket}\"\n        \
         path: \"{prefix}\"\n        endpoint: \"{endpoint}\"\n        region: us-east-1\n        \
         force-path-style: true\n        access-key-id: \"{S3_KEY_ID}\"\n        \
         secret-access-key: \"{S3_SECRET}\"\n        sync-interval: 100ms\n"
    )
}

fn abs_replica(name: &str, key: &str, prefix: &str) -> String {
    format!(
        "      - name: {name}\n        type: abs\n        account-name: {AZURITE_ACCOUNT}\n        \
         account-key: \"{key}\"\n        bucket: \"{}\"\n        path: \"{prefix}\"\n        \
         endpoint: \"{}/{AZURITE_ACCOUNT}\"\n        sync-interval: 100ms\n",
        common::bucket(),
        common::azurite_url()
    )
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    db: std::path::PathBuf,
    config: std::path::PathBuf,
    text: String,
}

fn setup() -> Setup {
    let (tmp, dir) = tempdir();
    let db = dir.join("app.db");
    let endpoint = common::s3_endpoint();
    let bucket = common::bucket();
    create_bucket(&endpoint, &bucket);
    let prefix = common::unique_name("security");
    let missing = common::unique_name("no-such-bucket");
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let replicas = [
        s3_replica("s3-good", &bucket, &endpoint, &prefix),
        s3_replica("s3-no-bucket", &missing, &endpoint, &prefix),
        s3_replica("s3-dead-endpoint", &bucket, &dead, &prefix),
        abs_replica("abs-good", AZURITE_KEY, &prefix),
        abs_replica("abs-wrong-key", WRONG_AZURE_KEY, &prefix),
    ]
    .concat();
    let text = format!(
        "addr: \"127.0.0.1:0\"\nhttp-token: \"{TOKEN}\"\ndbs:\n  - path: \"{}\"\n    \
         monitor-interval: 50ms\n    replicas:\n{replicas}",
        db.display()
    );
    let config = dir.join("walstream.yml");
    Setup {
        _tmp: tmp,
        dir,
        db,
        config,
        text,
    }
}

/// Replica `name` of the first database in a status document.
fn replica<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["databases"][0]["replicas"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("replica {name} in {status}"))
}

/// Runs a walstream command that must fail; returns its stdout and stderr.
fn failing(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(common::walstream_bin())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("LITESTREAM_CONFIG")
        .env_remove("WALSTREAM_CONFIG")
        .output()
        .expect("run walstream");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{args:?} should fail:\n{text}");
    text
}

/// Every HTTP answer worth reading, with a label each.
fn http_outputs(inst: &Instance) -> Vec<(String, String)> {
    let mut outs = Vec::new();
    for path in [
        "/api/v1/status",
        "/metrics",
        "/",
        "/assets/app.js",
        "/api/v1/databases/app.db/backups",
    ] {
        outs.push((format!("GET {path}"), inst.get_auth(path, TOKEN).body));
    }
    let wrong = inst.get_auth("/api/v1/status", "not-the-token");
    outs.push(("GET status, wrong token".into(), wrong.body));
    let denied = inst.post(
        "/api/v1/databases/app.db/sync",
        Some("Bearer not-the-token"),
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    outs.push(("POST sync, wrong token".into(), denied.body));
    let missing = inst.post("/api/v1/databases/app.db/sync", None);
    outs.push(("POST sync, no token".into(), missing.body));
    let bearer = format!("Bearer {TOKEN}");
    let synced = inst.post("/api/v1/databases/app.db/sync", Some(&bearer));
    // 502: the failing replicas cannot sync; the answer names their errors.
    assert_eq!(synced.status, 502, "{}", synced.body);
    outs.push(("POST sync".into(), synced.body));
    outs
}

#[test]
fn secrets_never_appear_in_logs_http_answers_or_errors() {
    let s = setup();
    fs::write(&s.config, &s.text).expect("write config");
    let app = open_app(&s.db);
    for id in 1..=20 {
        insert(&app, id);
    }
    let inst = Instance::start(&s.dir, &s.text, &[]);
    support::poll_until(DEADLINE, "good replicas synced, bad ones failed", || {
        let status = inst.get_auth("/api/v1/status", TOKEN).json();
        let db_pos = &status["databases"][0]["position"];
        let good = ["s3-good", "abs-good"]
            .iter()
            .all(|n| !db_pos.is_null() && &replica(&status, n)["position"] == db_pos);
        let bad = ["s3-no-bucket", "s3-dead-endpoint", "abs-wrong-key"]
            .iter()
            .all(|n| !replica(&status, n)["last_error"].is_null());
        good && bad
    });
    let mut outputs = http_outputs(&inst);
    let status = inst.get_auth("/api/v1/status", TOKEN).json();
    for name in ["s3-no-bucket", "s3-dead-endpoint", "abs-wrong-key"] {
        let err = replica(&status, name)["last_error"].to_string();
        assert!(err.len() > 20, "{name}: {err}");
    }
    outputs.push(("replicate log".into(), inst.proc.stop()));

    let cfg = s.config.display().to_string();
    let db = s.db.display().to_string();
    let out = s.dir.join("restored.db").display().to_string();
    for replica in ["s3-no-bucket", "s3-dead-endpoint", "abs-wrong-key"] {
        let args = [
            "restore", "-config", &cfg, "-replica", replica, "-o", &out, &db,
        ];
        outputs.push((format!("restore {replica}"), failing(&args, &[])));
        for cmd in ["snapshots", "wal", "generations"] {
            let args = [cmd, "-config", &cfg, "-replica", replica, &db];
            let text = Command::new(common::walstream_bin())
                .args(args)
                .output()
                .map(|o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .expect("run walstream");
            outputs.push((format!("{cmd} {replica}"), text));
        }
    }
    let port = common::s3_endpoint()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let url = format!(
        "s3://{}.localhost:{port}/x",
        common::unique_name("nobucket")
    );
    let env = [
        ("LITESTREAM_ACCESS_KEY_ID", S3_KEY_ID),
        ("LITESTREAM_SECRET_ACCESS_KEY", S3_SECRET),
    ];
    outputs.push((
        "restore URL, missing bucket".into(),
        failing(&["restore", "-o", &out, &url], &env),
    ));
    assert!(!Path::new(&out).exists());
    for (source, text) in &outputs {
        assert_no_secret(source, text);
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry under `root` as (path, mode).
fn modes_under(root: &Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        out.push((p.clone(), mode(&p)));
        if p.is_dir() {
            for e in fs::read_dir(&p).expect("read dir") {
                stack.push(e.expect("entry").path());
            }
        }
    }
    out
}

#[test]
fn created_files_are_no_more_readable_than_the_database() {
    let (_tmp, dir) = tempdir();
    let data = dir.join("data");
    fs::create_dir(&data).expect("mkdir");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o750)).expect("chmod dir");
    let db = data.join("app.db");
    let app = open_app(&db);
    fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).expect("chmod db");
    for id in 1..=10 {
        insert(&app, id);
    }
    let replica = dir.join("replica");
    let url = format!("file://{}", replica.display());
    let proc = support::walstream(&dir, &[&db.display().to_string(), &url]);
    support::poll_until(DEADLINE, "a segment in the replica", || {
        http_support::newest_segment_end(&replica).is_some()
    });
    proc.stop();
    let meta = data.join(".app.db-litestream");
    let shadow = modes_under(&meta);
    assert!(shadow.len() >= 5, "{shadow:?}");
    for (path, m) in &shadow {
        let want = if path.is_dir() { 0o750 } else { 0o640 };
        assert_eq!(*m, want, "{} has mode {m:o}", path.display());
    }
    // The file replica's objects and the directories walstream made for them, like Litestream's
    // (the replica root itself belongs to the operator).
    let objects: Vec<_> = modes_under(&replica)
        .into_iter()
        .filter(|(p, _)| p != &replica)
        .collect();
    assert!(objects.len() >= 6, "{objects:?}");
    for (path, m) in &objects {
        let want = if path.is_dir() { 0o750 } else { 0o640 };
        assert_eq!(*m, want, "{} has mode {m:o}", path.display());
    }
    let out = dir.join("restore/sub/restored.db");
    http_support::walstream_restore(&[&url], &[], &out);
    assert_eq!(mode(&out), 0o600);
    assert_eq!(mode(&dir.join("restore/sub")), 0o700);
    assert_eq!(mode(&dir.join("restore")), 0o700);
}
