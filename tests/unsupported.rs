//! Settings walstream parses but does not implement yet are refused, never silently ignored:
//! a replica configured for age encryption must not be written in plain text (replicate) nor
//! reported as a corrupt LZ4 file (restore).

mod common;

use std::process::Command;

use common::{run_expect_fail, walstream_bin};

fn age_config(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("app.db");
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t (x);"))
        .expect("create db");
    let cfg = dir.join("walstream.yml");
    std::fs::write(
        &cfg,
        format!(
            "dbs:\n  - path: {}\n    replicas:\n      - path: {}\n        age:\n          recipients: [\"age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\"]\n",
            db.display(),
            dir.join("replica").display()
        ),
    )
    .expect("write config");
    cfg
}

#[test]
fn replicate_refuses_an_age_encrypted_replica_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = age_config(dir.path());
    let out = run_expect_fail(
        Command::new(walstream_bin())
            .args(["replicate", "-config"])
            .arg(&cfg),
    );
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("age encryption (age.identities / age.recipients) is not supported"),
        "{text}"
    );
    assert!(
        !dir.path().join("replica").exists(),
        "a replica was written"
    );
}

#[test]
fn restore_refuses_an_age_encrypted_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = age_config(dir.path());
    let out_db = dir.path().join("out.db");
    let out = run_expect_fail(
        Command::new(walstream_bin())
            .args(["restore", "-config"])
            .arg(&cfg)
            .arg("-o")
            .arg(&out_db)
            .arg(dir.path().join("app.db")),
    );
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("is not supported by walstream yet"), "{text}");
    assert!(!out_db.exists());
}
