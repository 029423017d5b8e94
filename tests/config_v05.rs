//! Litestream v0.5 config files through the real binary: the fixture
//! `tests/fixtures/litestream-v0.5.yml` (every v0.5 key) loads in walstream and in the real
//! Litestream v0.5.17; `replicate` refuses the keys it cannot honour with one line and writes
//! nothing (a singular `replica:` is accepted: walstream writes it in the LTX layout,
//! tests/compat_v5_write.rs); a key that makes a replica unreadable fails every command; and
//! `restore -config` with a singular `replica:` restores a v0.3 replica walstream wrote.
//!
//! Needs `WALSTREAM_TEST_LITESTREAM5` (set by `scripts/test.sh`) for the v0.5.17 check.

mod common;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{litestream5_bin, run, run_expect_fail, stdout_text, walstream_bin};
use support::{DEADLINE, insert, list, open_app, poll_until, rows};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/litestream-v0.5.yml"
);

/// A temp dir as `${DATA}` of the fixture, with the directory entry's folder.
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let (dir, data) = common::tempdir();
    std::fs::create_dir(data.join("tenants")).expect("tenants folder");
    (dir, data)
}

/// `walstream ARGS -config CFG` with `${DATA}` set (positional arguments go after).
fn walstream(args: &[&str], cfg: &Path, data: &Path) -> Command {
    let mut cmd = Command::new(walstream_bin());
    cmd.args(args)
        .arg("-config")
        .arg(cfg)
        .env("DATA", data)
        .env_remove("LOG_LEVEL");
    cmd
}

/// The one line of a failed run (stderr and stdout together).
fn one_line(out: &Output) -> String {
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim_end().lines().count(), 1, "not one line: {text}");
    text.trim_end().to_string()
}

#[test]
fn fixture_loads_in_walstream_and_in_litestream_v0_5_17() {
    let (_dir, data) = data_dir();
    let out = run(&mut walstream(&["databases"], Path::new(FIXTURE), &data));
    let table = stdout_text(&out);
    let app = data.join("app.db");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{} ", app.display())) && l.contains("file")),
        "{table}"
    );
    // Litestream v0.5.17 parses and validates the whole file and builds the database of `ltx`.
    // (Its `databases` cannot list a `dir:` entry with `meta-dir`: it builds every entry as a
    // single database and fails with "'meta-dir' can only be used with a directory".)
    let mut ls = Command::new(litestream5_bin());
    ls.args(["ltx", "-config", FIXTURE])
        .arg(&app)
        .env("DATA", &data)
        .env_remove("AWS_CA_BUNDLE");
    let out = run(&mut ls);
    assert!(stdout_text(&out).starts_with("level"), "{out:?}");
}

#[test]
fn replicate_refuses_the_fixture_and_writes_nothing() {
    let (_dir, data) = data_dir();
    let out = run_expect_fail(&mut walstream(&["replicate"], Path::new(FIXTURE), &data));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    // The first refused key in file order (the singular `replica:` itself is accepted).
    let want = format!("config {FIXTURE}: mcp-addr: ");
    assert!(
        last.contains("failed to run") && last.contains(&want.replace('"', "\\\"")),
        "{stderr}"
    );
    assert_eq!(list(&data), vec!["tenants".to_string()], "nothing written");
    assert!(list(&data.join("tenants")).is_empty());
}

/// A database and a config with `db_yaml` under its entry (indented by four spaces).
fn setup(data: &Path, db_yaml: &str) -> PathBuf {
    let db = data.join("app.db");
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t (x);"))
        .expect("create db");
    let cfg = data.join("litestream.yml");
    let text = format!("dbs:\n  - path: {}\n{db_yaml}", db.display());
    std::fs::write(&cfg, text).expect("write config");
    cfg
}

#[test]
fn replicate_refuses_each_unsupported_key_with_one_line_and_writes_nothing() {
    let cases = [
        (
            "    restore-if-db-not-exists: true\n    replicas:\n      - path: REPLICA\n",
            "restore-if-db-not-exists",
            "walstream replicate does not restore first",
        ),
        (
            "    replicas:\n      - path: REPLICA\nsocket:\n  enabled: true\n",
            "socket.enabled",
            "walstream has no control socket",
        ),
        (
            "    replicas:\n      - path: REPLICA\nmcp-addr: \"127.0.0.1:3001\"\n",
            "mcp-addr",
            "walstream has no MCP server",
        ),
    ];
    for (yaml, key, why) in cases {
        let (_dir, data) = data_dir();
        let replica = data.join("replica");
        let cfg = setup(
            &data,
            &yaml.replace("REPLICA", &replica.display().to_string()),
        );
        let before = list(&data);
        let line = one_line(&run_expect_fail(&mut walstream(
            &["replicate"],
            &cfg,
            &data,
        )));
        assert!(
            line.contains(&format!("config {}: ", cfg.display())),
            "{line}"
        );
        assert!(line.contains(&format!("{key}: {why}")), "{key}: {line}");
        assert_eq!(list(&data), before, "{key}: nothing written");
        // Read-side commands load the same file.
        run(&mut walstream(&["databases"], &cfg, &data));
    }
}

#[test]
fn unreadable_replica_settings_fail_every_command() {
    let (_dir, data) = data_dir();
    let yaml = "    replica:\n      url: s3://bucket/app\n      sse-customer-key: secret\n";
    let cfg = setup(&data, yaml);
    let before = list(&data);
    for (command, positional) in [
        ("replicate", None),
        ("databases", None),
        ("generations", Some("app.db")),
    ] {
        let mut cmd = walstream(&[command], &cfg, &data);
        cmd.current_dir(&data).args(positional);
        let line = one_line(&run_expect_fail(&mut cmd));
        assert!(
            line.contains("replica \\\"s3\\\": sse-customer-key: S3 server-side encryption with customer keys (SSE-C) is not supported by walstream"),
            "{command}: {line}"
        );
        assert!(!line.contains("secret\\\""), "{line}");
    }
    assert_eq!(list(&data), before);
}

#[test]
fn restore_reads_a_singular_replica_that_walstream_wrote() {
    let (_dir, data) = data_dir();
    let db = data.join("app.db");
    let replica = data.join("replica");
    let app = open_app(&db);
    for id in 1..=50 {
        insert(&app, id);
    }
    let url = format!("file://{}", replica.display());
    let ws = support::walstream(&data, &[db.to_str().expect("utf-8 path"), &url]);
    poll_until(DEADLINE, "a snapshot in the replica", || {
        list(&replica.join("generations")).first().is_some_and(|g| {
            !list(&replica.join("generations").join(g).join("snapshots")).is_empty()
        })
    });
    for id in 51..=120 {
        insert(&app, id);
    }
    ws.stop();

    let cfg = data.join("v05.yml");
    let text = format!(
        "dbs:\n  - path: {}\n    replica:\n      type: file\n      path: {}\n",
        db.display(),
        replica.display()
    );
    std::fs::write(&cfg, text).expect("write config");
    let out = data.join("restored.db");
    run(walstream(&["restore"], &cfg, &data)
        .arg("-o")
        .arg(&out)
        .arg(&db));
    let restored = common::sqlite::checked(&out);
    assert_eq!(rows(&restored), rows(&app));
    assert_eq!(rows(&restored).len(), 120);
    let out = run(walstream(&["generations"], &cfg, &data).arg(&db));
    assert!(stdout_text(&out).lines().count() >= 2, "{out:?}");
}

#[test]
fn replicate_takes_its_shutdown_deadline_from_shutdown_sync_timeout() {
    // An S3 endpoint that accepts connections and never answers: the final sync can only end at
    // the deadline, whose value the shutdown log line prints.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let (_dir, data) = data_dir();
    let db = data.join("app.db");
    let app = open_app(&db);
    insert(&app, 1);
    let cfg = data.join("v05.yml");
    let text = format!(
        "shutdown-sync-timeout: 2s\naccess-key-id: k\nsecret-access-key: s\nregion: us-east-1\n\
         dbs:\n  - path: {}\n    replicas:\n      - type: s3\n        bucket: b\n        path: app\n        endpoint: http://127.0.0.1:{port}\n",
        db.display()
    );
    std::fs::write(&cfg, text).expect("write config");
    let ws = support::walstream(&data, &["-config", cfg.to_str().expect("utf-8 path")]);
    let meta = data.join(".app.db-litestream");
    poll_until(DEADLINE, "the database attached", || {
        !list(&meta).is_empty()
    });
    insert(&app, 2);
    let start = std::time::Instant::now();
    ws.signal(libc::SIGTERM);
    let (_, log) = ws.wait();
    let waited = start.elapsed();
    assert!(
        log.contains("final sync did not finish before the shutdown deadline")
            && log.contains("timeout=2s"),
        "{log}"
    );
    assert!(
        waited < std::time::Duration::from_secs(20),
        "{waited:?}\n{log}"
    );
}
