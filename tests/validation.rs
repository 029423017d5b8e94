//! End-to-end tests of `validation-interval` (spec §4.6) with the real binary and a file replica:
//! a healthy replica validates `ok`; a replica whose snapshot page content was altered (LZ4
//! re-encoded, so it still restores) is a `mismatch`; a replica whose WAL segment page content was
//! altered (re-encoded too) fails the restore's frame checksum chain, an `error`. Each outcome is
//! checked in the `validator` log line, `litestream_replica_validation_total` and
//! `/api/v1/status`. A healthy S3 replica (moto, via `scripts/test.sh`) validates `ok` too. The
//! validator's temporary directory (under the process's `TMPDIR`) must be
//! empty again after each validation.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use regex::Regex;
use rusqlite::Connection;
use serde_json::Value;

use http_support::{Instance, config, file_replica, s3_replica, tempdir};
use support::{DEADLINE, insert, list, open_app, poll_until};

/// The byte value of the large blob written before replication starts.
const BLOB_BYTE: u8 = 0xAB;

/// A database with table `t` and one 64 KiB blob (overflow pages nobody rewrites later), fully
/// checkpointed into the database file so the first snapshot holds it.
fn app_with_blob(db: &Path) -> Connection {
    let c = open_app(db);
    c.execute_batch("CREATE TABLE big(b BLOB NOT NULL);")
        .expect("create big");
    c.execute("INSERT INTO big(b) VALUES (?1)", [vec![BLOB_BYTE; 65_536]])
        .expect("insert blob");
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    c
}

/// Starts `walstream replicate` with a file replica validated every 300 ms; the process's
/// `TMPDIR` is `tmp` (returned empty).
fn start(dir: &Path, db: &Path, replica: &Path) -> (Instance, PathBuf) {
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).expect("create TMPDIR");
    let replicas = file_replica(replica, "100ms") + "        validation-interval: 300ms\n";
    let env = [("TMPDIR".to_string(), tmp.display().to_string())];
    let ws = Instance::start(dir, &config(db, "", &replicas), &env);
    (ws, tmp)
}

/// The validation object of the only replica, once its status is `want`.
fn wait_validation(ws: &Instance, want: &str) -> Value {
    let mut last = Value::Null;
    poll_until(
        DEADLINE,
        &format!("a validation with status {want}"),
        || {
            last = ws.status()["databases"][0]["replicas"][0]["validation"].clone();
            last["status"] == want
        },
    );
    last
}

/// `(ok, error)` of `litestream_replica_validation_total` for replica `name`.
fn counters(ws: &Instance, db: &Path, name: &str) -> (f64, f64) {
    let scrape = ws.metrics();
    let db = db.to_str().expect("utf-8");
    let at = |status| {
        scrape.must(
            "litestream_replica_validation_total",
            &[("db", db), ("name", name), ("status", status)],
        )
    };
    (at("ok"), at("error"))
}

/// The generation directory of a file replica, once one exists.
fn generation_dir(replica: &Path) -> PathBuf {
    let gens = replica.join("generations");
    poll_until(DEADLINE, "a generation in the replica", || {
        !list(&gens).is_empty()
    });
    gens.join(list(&gens).remove(0))
}

/// Decompresses `path`, lets `edit` change the content, re-encodes it and moves it into place.
fn reencode(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let stored = std::fs::read(path).expect("read object");
    let mut plain = walstream::lz4::decompress(&stored).expect("valid lz4");
    let before = plain.clone();
    edit(&mut plain);
    assert_ne!(before, plain, "the edit changed nothing");
    let tmp = path.with_extension("edit");
    std::fs::write(&tmp, walstream::lz4::compress(&plain)).expect("write object");
    std::fs::rename(&tmp, path).expect("replace object");
}

fn hex16(v: &Value) -> String {
    let s = v.as_str().unwrap_or_default().to_string();
    assert!(
        s.len() == 16 && s.chars().all(|c| c.is_ascii_hexdigit()),
        "{v}"
    );
    s
}

#[test]
fn healthy_replica_validates_ok_and_cleans_up() {
    let (_keep, dir) = tempdir();
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let app = app_with_blob(&db);
    let (ws, tmp) = start(&dir, &db, &replica);
    for id in 1..=50 {
        insert(&app, id);
    }
    let v = wait_validation(&ws, "ok");
    assert!(v["message"].is_null(), "{v}");
    assert_eq!(hex16(&v["db_checksum"]), hex16(&v["replica_checksum"]));
    assert!(v["position"]["index"].as_u64() >= Some(1), "{v}");
    assert_eq!(v["position"]["offset"], 0);
    assert!(v["ok_count"].as_u64() >= Some(1), "{v}");

    // Commits between validations keep validating ok.
    for id in 51..=100 {
        insert(&app, id);
    }
    let first_ok = v["ok_count"].as_u64().unwrap_or_default();
    poll_until(DEADLINE, "another ok validation after more commits", || {
        let v = &ws.status()["databases"][0]["replicas"][0]["validation"];
        v["status"] == "ok" && v["ok_count"].as_u64() > Some(first_ok)
    });
    let (ok, error) = counters(&ws, &db, "file");
    assert!(ok >= 2.0, "ok={ok}");
    assert_eq!(error, 0.0);

    let log = ws.proc.log_text();
    let line = Regex::new(
        r"msg=validator db=\S+ replica=file status=ok db=[0-9a-f]{16} replica=[0-9a-f]{16} position=[0-9a-f]{16}/[0-9a-f]{8}:0",
    )
    .expect("regex");
    assert!(line.is_match(&log), "{log}");
    assert!(!log.contains("validation error"), "{log}");
    // Nothing is left in TMPDIR once no validation is running.
    poll_until(DEADLINE, "an empty TMPDIR", || list(&tmp).is_empty());
}

/// The generation's first snapshot once it is stored and readable. Its index is 0, or 1 when
/// the snapshot's own checkpoint restarted the WAL (see `Db::begin_snapshot`).
fn first_snapshot(replica: &Path) -> PathBuf {
    let dir = generation_dir(replica).join("snapshots");
    let mut found = None;
    poll_until(DEADLINE, "the first snapshot", || {
        found = list(&dir).into_iter().min().map(|n| dir.join(n));
        found
            .as_ref()
            .is_some_and(|p| std::fs::read(p).is_ok_and(|b| walstream::lz4::decompress(&b).is_ok()))
    });
    found.expect("polled until found")
}

#[test]
fn altered_snapshot_content_is_a_mismatch() {
    let (_keep, dir) = tempdir();
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let app = app_with_blob(&db);
    let (ws, _tmp) = start(&dir, &db, &replica);
    let snap = first_snapshot(&replica);
    // One byte in the middle of the blob's overflow pages: the file still restores.
    reencode(&snap, |plain| {
        let run = vec![BLOB_BYTE; 2048];
        let at = plain
            .windows(run.len())
            .position(|w| w == run.as_slice())
            .expect("the blob is in the snapshot");
        plain[at + 1000] ^= 0x01;
    });
    insert(&app, 1);

    let v = wait_validation(&ws, "mismatch");
    assert_eq!(v["message"], "invalid replica, checksum mismatch");
    assert_ne!(hex16(&v["db_checksum"]), hex16(&v["replica_checksum"]));
    assert!(v["error_count"].as_u64() >= Some(1), "{v}");
    let (_, error) = counters(&ws, &db, "file");
    assert!(error >= 1.0, "error={error}");
    let log = ws.proc.log_text();
    assert!(
        log.contains("status=mismatch"),
        "no validator mismatch line: {log}"
    );
    assert!(
        log.contains(r#"msg="validation error""#)
            && log.contains(r#"error="invalid replica, checksum mismatch""#),
        "{log}"
    );
}

#[test]
fn altered_wal_segment_content_is_an_error() {
    let (_keep, dir) = tempdir();
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let app = app_with_blob(&db);
    let (ws, tmp) = start(&dir, &db, &replica);
    for id in 1..=20 {
        insert(&app, id);
    }
    // The first segment that restore applies: offset 0 of the first snapshot's index.
    let index = first_snapshot(&replica)
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".snapshot.lz4"))
        .expect("snapshot name")
        .to_string();
    let name = format!("{index}_00000000.wal.lz4");
    let segment = generation_dir(&replica).join("wal").join(&name);
    poll_until(
        DEADLINE,
        "the snapshot index's first segment with frames",
        || {
            std::fs::read(&segment)
                .ok()
                .and_then(|b| walstream::lz4::decompress(&b).ok())
                .is_some_and(|p| p.len() > 32 + 24)
        },
    );
    // A byte of the first frame's page data: the frame checksum chain no longer matches.
    reencode(&segment, |plain| plain[32 + 24 + 100] ^= 0x01);
    insert(&app, 21);

    let v = wait_validation(&ws, "error");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("cannot restore: ") && message.contains(&name),
        "{v}"
    );
    assert!(v["replica_checksum"].is_null(), "{v}");
    let (_, error) = counters(&ws, &db, "file");
    assert!(error >= 1.0, "error={error}");
    let log = ws.proc.log_text();
    assert!(
        log.contains(r#"msg="validation error""#) && log.contains("cannot restore: "),
        "{log}"
    );
    // The failed restore left nothing behind either.
    poll_until(DEADLINE, "an empty TMPDIR", || list(&tmp).is_empty());
}

#[test]
fn healthy_s3_replica_validates_ok() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = app_with_blob(&db);
    let prefix = common::unique_name("validation");
    let endpoint = common::s3_endpoint();
    let replicas = s3_replica(&endpoint, &common::bucket(), &prefix, "key", "secret")
        + "        validation-interval: 300ms\n";
    let ws = Instance::start(&dir, &config(&db, "", &replicas), &[]);
    for id in 1..=50 {
        insert(&app, id);
    }
    let v = wait_validation(&ws, "ok");
    assert_eq!(hex16(&v["db_checksum"]), hex16(&v["replica_checksum"]));
    let (ok, error) = counters(&ws, &db, "s3");
    assert!(ok >= 1.0, "ok={ok}");
    assert_eq!(error, 0.0);
}
