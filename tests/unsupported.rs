//! Litestream v0.3.13 settings walstream does not honour are refused with one clear line that
//! names the setting (and the config file), never silently ignored: sftp replicas (by `type`, by
//! `url`, and as a command-line URL) and object-store `path`s with a leading `/` (which Litestream
//! keeps in its object keys). A refused `replicate` writes nothing.
//!
//! The README section "Litestream v0.3.13 compatibility: every config key and flag" lists every
//! key and flag with its state; each "refused" row has a test here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{run_expect_fail, walstream_bin};

/// A database and a config whose only replica is `replica_yaml` (indented as a list item).
fn setup(dir: &Path, replica_yaml: &str) -> PathBuf {
    let db = dir.join("app.db");
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t (x);"))
        .expect("create db");
    let cfg = dir.join("walstream.yml");
    let text = format!(
        "dbs:\n  - path: {}\n    replicas:\n{replica_yaml}",
        db.display()
    );
    std::fs::write(&cfg, text).expect("write config");
    cfg
}

/// Combined output of a failed run; asserts it is a single line.
fn one_line(out: &Output) -> String {
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim_end().lines().count(), 1, "not one line: {text}");
    text
}

fn walstream(args: &[&str], cfg: Option<&Path>) -> Output {
    let mut cmd = Command::new(walstream_bin());
    cmd.args(args);
    if let Some(cfg) = cfg {
        cmd.arg("-config").arg(cfg);
    }
    run_expect_fail(&mut cmd)
}

#[test]
fn sftp_replica_by_type_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let remote = dir.path().join("remote");
    let yaml = format!(
        "      - type: sftp\n        host: 127.0.0.1\n        user: u\n        path: {}\n",
        remote.display()
    );
    let cfg = setup(dir.path(), &yaml);
    for cmd in ["replicate", "databases"] {
        let text = one_line(&walstream(&[cmd], Some(&cfg)));
        assert!(text.contains(&cfg.display().to_string()), "{text}");
        assert!(text.contains("replicas[0]"), "{text}");
        assert!(
            text.contains("sftp replicas are not supported by walstream"),
            "{text}"
        );
    }
    assert!(!remote.exists());
    assert!(
        !dir.path().join(".app.db-litestream").exists(),
        "replicate started"
    );
}

#[test]
fn sftp_replica_by_url_is_refused_without_echoing_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(
        dir.path(),
        "      - url: sftp://u:hunter2-secret@127.0.0.1:2222/backups\n",
    );
    let text = one_line(&walstream(&["replicate"], Some(&cfg)));
    assert!(text.contains("sftp replicas are not supported"), "{text}");
    assert!(text.contains(&cfg.display().to_string()), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");
}

#[test]
fn sftp_urls_on_the_command_line_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("app.db");
    let url = "sftp://u@127.0.0.1/backups";
    let out_db = dir.path().join("out.db");
    let cases: Vec<Vec<String>> = vec![
        vec!["generations".into(), url.into()],
        vec!["snapshots".into(), url.into()],
        vec!["wal".into(), url.into()],
        vec![
            "restore".into(),
            "-o".into(),
            out_db.display().to_string(),
            url.into(),
        ],
        vec!["replicate".into(), db.display().to_string(), url.into()],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = one_line(&walstream(&args, None));
        assert!(
            text.contains("sftp replicas are not supported by walstream"),
            "{args:?}: {text}"
        );
    }
    assert!(!out_db.exists());
    assert!(!db.exists());
}

#[test]
fn object_store_paths_with_a_leading_slash_are_refused_naming_the_key() {
    let replicas = [
        (
            "s3",
            "      - type: s3\n        bucket: bkt\n        path: /backups/app\n        endpoint: http://127.0.0.1:9\n",
        ),
        (
            "gcs",
            "      - type: gcs\n        bucket: bkt\n        path: /backups/app\n",
        ),
        (
            "abs",
            "      - type: abs\n        account-name: acct\n        bucket: ctr\n        path: /backups/app\n",
        ),
    ];
    for (kind, yaml) in replicas {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = setup(dir.path(), yaml);
        for cmd in ["databases", "replicate"] {
            let text = one_line(&walstream(&[cmd], Some(&cfg)));
            assert!(text.contains(&cfg.display().to_string()), "{text}");
            assert!(text.contains("replicas[0]"), "{text}");
            // The log line escapes the quotes around the path.
            let want = format!("path: {kind} replica path \\\"/backups/app\\\" starts with");
            assert!(text.contains(&want), "{kind} {cmd}: {text}");
            assert!(text.contains("remove the leading slash"), "{text}");
        }
        assert!(!dir.path().join(".app.db-litestream").exists());
    }
}
