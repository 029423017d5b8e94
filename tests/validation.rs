//! End-to-end tests of `validation-interval` (spec §4.6) with the real binary and a file replica:
//! a healthy replica validates `ok`; a replica whose snapshot page content was altered (LZ4
//! re-encoded, so it still restores) is a `mismatch`; a replica whose WAL segment page content was
//! altered (re-encoded too) fails the restore's frame checksum chain, an `error`. Each outcome is
//! checked in the `validator` log line, `litestream_replica_validation_total` and
//! `/api/v1/status`. A healthy S3 replica (moto, via `scripts/test.sh`) validates `ok` too. The
//! validator's temporary directory (under the process's `TMPDIR`) must be
//! empty again after each validation.
//!
//! LTX (Litestream v0.5 layout) replicas, on a file replica and on S3: validations stay `ok`
//! while an application writes (with compaction, snapshots and retention running every few
//! hundred ms on the file replica); a page altered in every stored file that holds it (re-encoded
//! with a valid checksum, so it still restores) is a `mismatch` naming the TXID and both
//! checksums; a damaged L0 (one byte flipped) is an `error` naming the file.
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

use common::Backend;
use http_support::{Instance, config, file_replica, s3_replica, tempdir};
use support::{DEADLINE, Writer, insert, list, open_app, poll_until};

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

    assert_restore_error(&ws, &db, "file", &name);
    // The failed restore left nothing behind either.
    poll_until(DEADLINE, "an empty TMPDIR", || list(&tmp).is_empty());
}

/// Waits for a validation `error` whose restore failed on the object `object`: in the status,
/// the counter of replica `name` and the ERROR line.
fn assert_restore_error(ws: &Instance, db: &Path, name: &str, object: &str) {
    let v = wait_validation(ws, "error");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("cannot restore: ") && message.contains(object),
        "{v}"
    );
    assert!(v["replica_checksum"].is_null(), "{v}");
    let (_, error) = counters(ws, db, name);
    assert!(error >= 1.0, "error={error}");
    let log = ws.proc.log_text();
    assert!(
        log.contains(r#"msg="validation error""#)
            && log.contains("cannot restore: ")
            && log.contains(object),
        "{log}"
    );
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

// ---- LTX (Litestream v0.5 layout) replicas ----

/// v0.5 settings for the cases that edit stored files: no compaction level and one L9 snapshot
/// (at start), so the files edited are the ones every later restore reads.
const LTX_QUIET: &str = "levels: []\nsnapshot:\n  interval: 24h\n";

/// v0.5 settings with every job running every few hundred ms (compaction into L1 and L2,
/// snapshots, both retentions), so validations meet them.
const LTX_BUSY: &str = "levels:\n  - interval: 500ms\n  - interval: 1s\nsnapshot:\n  interval: 1s\n  \
     retention: 2s\nl0-retention: 300ms\nl0-retention-check-interval: 200ms\n";

/// A config with one database whose singular `replica:` (LTX layout) is `backend`, validated
/// every 300 ms.
fn ltx_config(db: &Path, top: &str, backend: Backend, prefix: &str, file_dir: &Path) -> String {
    let item: String = backend
        .replica_yaml(prefix, file_dir)
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    format!(
        "addr: \"127.0.0.1:0\"\n{top}dbs:\n  - path: \"{}\"\n    monitor-interval: 50ms\n    \
         min-checkpoint-page-count: 8\n    replica:\n{item}      sync-interval: 100ms\n      \
         validation-interval: 300ms\n",
        db.display()
    )
}

/// Starts `walstream replicate` on an LTX file replica in `replica` with `TMPDIR` = `dir/tmp`.
fn start_ltx(dir: &Path, db: &Path, replica: &Path, top: &str) -> (Instance, PathBuf) {
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).expect("create TMPDIR");
    let env = [("TMPDIR".to_string(), tmp.display().to_string())];
    let cfg = ltx_config(db, top, Backend::File, "", replica);
    (Instance::start(dir, &cfg, &env), tmp)
}

/// `(file name, max TXID)` of the files of one level of a file replica.
fn ltx_files(replica: &Path, level: u8) -> Vec<(String, u64)> {
    list(&replica.join("ltx").join(level.to_string()))
        .into_iter()
        .filter_map(|n| {
            let (_, max) = walstream::ltx::parse_file_name(&n)?;
            Some((n, max))
        })
        .collect()
}

/// The pages of an LTX file and its header.
fn decode_ltx(bytes: &[u8]) -> (walstream::ltx::Header, Vec<(u32, Vec<u8>)>) {
    let mut r = walstream::ltx::Reader::new(bytes, "edited").expect("ltx header");
    let header = *r.header();
    let mut pages = Vec::new();
    while let Some((pgno, data)) = r.next_page().expect("ltx page") {
        pages.push((pgno, data.to_vec()));
    }
    r.finish().expect("a valid ltx file");
    (header, pages)
}

/// The validation's `txid` and the mismatch message naming it and both checksums.
fn assert_ltx_mismatch(v: &Value) -> String {
    let txid = v["txid"].as_str().unwrap_or_default().to_string();
    assert!(walstream::ltx::parse_txid(&txid).is_some(), "{v}");
    let (db, rep) = (hex16(&v["db_checksum"]), hex16(&v["replica_checksum"]));
    assert_ne!(db, rep);
    let want = format!("invalid replica, checksum mismatch at txid {txid}: db {db}, replica {rep}");
    assert_eq!(v["message"], want.as_str(), "{v}");
    txid
}

/// The replica's name as `/metrics` labels it (a singular `replica:` is named after its type).
fn replica_name(ws: &Instance) -> String {
    let st = ws.status();
    st["databases"][0]["replicas"][0]["name"]
        .as_str()
        .expect("replica name")
        .to_string()
}

/// Waits for `n` more `ok` validations than `after` while the caller's writer runs; no
/// validation may fail meanwhile.
fn wait_ok_validations(ws: &Instance, after: u64, n: u64) -> Value {
    let mut last = Value::Null;
    poll_until(DEADLINE, &format!("{n} ok validations"), || {
        last = ws.status()["databases"][0]["replicas"][0]["validation"].clone();
        assert_eq!(last["error_count"].as_u64().unwrap_or(0), 0, "{last}");
        last["ok_count"].as_u64().unwrap_or(0) >= after + n
    });
    last
}

#[test]
fn ltx_replica_validates_ok_while_the_application_writes_and_jobs_run() {
    let (_keep, dir) = tempdir();
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    drop(app_with_blob(&db));
    let (ws, tmp) = start_ltx(&dir, &db, &replica, LTX_BUSY);
    let writer = Writer::paced(&db, 1, std::time::Duration::from_millis(5));
    let v = wait_ok_validations(&ws, 0, 3);
    // Jobs ran between the validations: compacted levels and a snapshot exist.
    poll_until(DEADLINE, "compaction into L2 and an L9 snapshot", || {
        !ltx_files(&replica, 2).is_empty() && !ltx_files(&replica, 9).is_empty()
    });
    let first = v["ok_count"].as_u64().unwrap_or(0);
    let v = wait_ok_validations(&ws, first, 3);
    let written = writer.finish();
    assert!(written > 0);

    assert_eq!(hex16(&v["db_checksum"]), hex16(&v["replica_checksum"]));
    assert!(v["message"].is_null(), "{v}");
    assert_eq!(v["position"]["offset"], 0);
    let txid = v["txid"].as_str().and_then(walstream::ltx::parse_txid);
    assert!(txid.is_some_and(|t| t > 1), "{v}");
    let name = replica_name(&ws);
    let (ok, error) = counters(&ws, &db, &name);
    assert!(ok >= 6.0, "ok={ok}");
    assert_eq!(error, 0.0);
    let log = ws.proc.log_text();
    let line = Regex::new(&format!(
        r"msg=validator db=\S+ replica={name} status=ok db=[0-9a-f]{{16}} replica=[0-9a-f]{{16}} position=[0-9a-f]{{16}}/[0-9a-f]{{8}}:0 txid=[0-9a-f]{{16}}",
    ))
    .expect("regex");
    assert!(line.is_match(&log), "{log}");
    assert!(!log.contains("validation error"), "{log}");
    poll_until(DEADLINE, "an empty TMPDIR", || list(&tmp).is_empty());
}

#[test]
fn altered_page_in_stored_ltx_files_is_a_mismatch_naming_the_txid() {
    let (_keep, dir) = tempdir();
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let app = app_with_blob(&db);
    let (ws, _tmp) = start_ltx(&dir, &db, &replica, LTX_QUIET);
    for id in 1..=20 {
        insert(&app, id);
    }
    wait_validation(&ws, "ok");
    // The snapshot taken at start: every later restore starts from it.
    poll_until(DEADLINE, "the L9 snapshot", || {
        !ltx_files(&replica, 9).is_empty()
    });

    // One byte of the blob in every stored file holding its first page (the snapshot and the
    // first L0, a full image), re-encoded: the files stay valid and restore.
    let run = vec![BLOB_BYTE; 2048];
    let blob_at = |d: &[u8]| d.windows(run.len()).position(|w| w == run.as_slice());
    let mut target: Option<(u32, usize)> = None;
    let mut edited = 0;
    for level in [9, 0] {
        for (name, _) in ltx_files(&replica, level) {
            let path = replica.join("ltx").join(level.to_string()).join(&name);
            let bytes = std::fs::read(&path).expect("read ltx");
            let (header, mut pages) = decode_ltx(&bytes);
            let (pgno, at) = *target.get_or_insert_with(|| {
                pages
                    .iter()
                    .find_map(|(p, d)| Some((*p, blob_at(d)?)))
                    .expect("the first file edited holds the blob")
            });
            let Some((_, page)) = pages.iter_mut().find(|(p, _)| *p == pgno) else {
                continue;
            };
            assert_eq!(
                blob_at(page),
                Some(at),
                "page {pgno} of {name} holds the blob"
            );
            page[at + 1000] ^= 0x01;
            let refs: Vec<(u32, &[u8])> = pages.iter().map(|(p, d)| (*p, d.as_slice())).collect();
            let encoded = walstream::ltx::writer::encode_to_vec(header, &refs).expect("encode");
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime");
            let tmp = path.with_extension("edit");
            std::fs::write(&tmp, encoded).expect("write ltx");
            std::fs::File::options()
                .write(true)
                .open(&tmp)
                .and_then(|f| f.set_modified(mtime))
                .expect("keep mtime (it is the ltx timestamp)");
            std::fs::rename(&tmp, &path).expect("replace ltx");
            edited += 1;
        }
    }
    assert!(edited >= 1, "no stored file holds the blob");
    insert(&app, 21);

    let v = wait_validation(&ws, "mismatch");
    let txid = assert_ltx_mismatch(&v);
    assert!(v["error_count"].as_u64() >= Some(1), "{v}");
    let (_, error) = counters(&ws, &db, &replica_name(&ws));
    assert!(error >= 1.0, "error={error}");
    let log = ws.proc.log_text();
    assert!(
        log.contains("status=mismatch") && log.contains(&format!("txid={txid}")),
        "no validator mismatch line: {log}"
    );
    assert!(
        log.contains(r#"msg="validation error""#)
            && log.contains("invalid replica, checksum mismatch at txid"),
        "{log}"
    );
}

/// The newest L0 once it is above every other level (so every later restore reads it).
fn newest_l0_above_the_snapshot(replica: &Path, app: &Connection, next_id: &mut i64) -> String {
    let mut found = None;
    poll_until(DEADLINE, "an L0 above the L9 snapshot", || {
        insert(app, *next_id);
        *next_id += 1;
        let top9 = ltx_files(replica, 9).iter().map(|f| f.1).max();
        found = ltx_files(replica, 0)
            .into_iter()
            .max_by_key(|f| f.1)
            .filter(|f| top9.is_some_and(|t| f.1 > t));
        found.is_some()
    });
    found.expect("polled until found").0
}

#[test]
fn damaged_stored_ltx_l0_is_an_error_naming_the_file() {
    let (_keep, dir) = tempdir();
    let (db, replica) = (dir.join("app.db"), dir.join("replica"));
    let app = app_with_blob(&db);
    let (ws, tmp) = start_ltx(&dir, &db, &replica, LTX_QUIET);
    let mut next_id = 1;
    wait_validation(&ws, "ok");
    let name = newest_l0_above_the_snapshot(&replica, &app, &mut next_id);
    let path = replica.join("ltx/0").join(&name);
    let mut bytes = std::fs::read(&path).expect("read l0");
    let at = walstream::ltx::HEADER_SIZE + 20;
    bytes[at] ^= 0xff;
    std::fs::write(&path, bytes).expect("damage l0");
    insert(&app, next_id);

    assert_restore_error(&ws, &db, &replica_name(&ws), &name);
    poll_until(DEADLINE, "an empty TMPDIR", || list(&tmp).is_empty());
}

#[test]
fn s3_ltx_replica_validates_ok_while_writing_and_reports_a_damaged_l0() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = app_with_blob(&db);
    let prefix = common::unique_name("validation-ltx");
    let cfg = ltx_config(&db, LTX_QUIET, Backend::S3, &prefix, &dir);
    let ws = Instance::start(&dir, &cfg, &Backend::S3.env_for_walstream());
    let writer = Writer::paced(&db, 1, std::time::Duration::from_millis(5));
    let v = wait_ok_validations(&ws, 0, 3);
    let mut next_id = writer.finish() + 1;
    assert_eq!(hex16(&v["db_checksum"]), hex16(&v["replica_checksum"]));
    assert!(
        v["txid"]
            .as_str()
            .and_then(walstream::ltx::parse_txid)
            .is_some(),
        "{v}"
    );
    let name = replica_name(&ws);
    let (ok, error) = counters(&ws, &db, &name);
    assert!(ok >= 3.0, "ok={ok}");
    assert_eq!(error, 0.0);

    // Damage the newest L0 above the snapshot (v0.5's S3 layout: `<prefix>/0000/…`).
    let store = common::moto_store();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let names = |level: &str| -> Vec<(String, u64)> {
        use futures::TryStreamExt;
        let dir = object_store::path::Path::from(format!("{prefix}/{level}"));
        let metas: Vec<_> = rt
            .block_on(object_store::ObjectStore::list(&store, Some(&dir)).try_collect())
            .expect("list moto");
        metas
            .iter()
            .filter_map(|m| {
                let n = m.location.filename()?.to_string();
                let (_, max) = walstream::ltx::parse_file_name(&n)?;
                Some((n, max))
            })
            .collect()
    };
    let mut found = None;
    poll_until(DEADLINE, "an L0 above the L9 snapshot", || {
        insert(&app, next_id);
        next_id += 1;
        let top9 = names("0009").iter().map(|f| f.1).max();
        found = names("0000")
            .into_iter()
            .max_by_key(|f| f.1)
            .filter(|f| top9.is_some_and(|t| f.1 > t));
        found.is_some()
    });
    let file = found.expect("polled until found").0;
    let key = object_store::path::Path::from(format!("{prefix}/0000/{file}"));
    let mut bytes = rt
        .block_on(async {
            object_store::ObjectStoreExt::get(&store, &key)
                .await?
                .bytes()
                .await
        })
        .expect("get l0")
        .to_vec();
    bytes[walstream::ltx::HEADER_SIZE + 20] ^= 0xff;
    rt.block_on(object_store::ObjectStoreExt::put(
        &store,
        &key,
        bytes.into(),
    ))
    .expect("put damaged l0");
    insert(&app, next_id);

    assert_restore_error(&ws, &db, &name, &file);
}
