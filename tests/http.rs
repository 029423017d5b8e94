//! End-to-end tests of the HTTP server of `walstream replicate` (the real binary, `addr` on a
//! free loopback port): `/metrics` parsed with a Prometheus text-format parser and checked
//! against the replica's files, readiness and lag through an S3 outage (our own moto instance,
//! stopped and restarted), `/api/v1/status` and `/restore-points` shapes, a `-timestamp` from
//! the restore points restoring with `walstream restore`, `POST …/sync` durability, bearer-token
//! cases, credentials never echoed, and `walstream status`.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline (`DEADLINE`).

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use http_support::prom::Scrape;
use http_support::*;
use support::{DEADLINE, assert_prefix, insert, open_app, poll_until, rows};

/// The token used by the tests that enable mutating endpoints.
const TOKEN: &str = "http-test-token-5f2c";

/// Every Litestream metric family with its type.
const LITESTREAM_FAMILIES: &[(&str, &str)] = &[
    ("litestream_db_size", "gauge"),
    ("litestream_wal_size", "gauge"),
    ("litestream_total_wal_bytes", "counter"),
    ("litestream_shadow_wal_index", "gauge"),
    ("litestream_shadow_wal_size", "gauge"),
    ("litestream_sync_count", "counter"),
    ("litestream_sync_error_count", "counter"),
    ("litestream_sync_seconds", "counter"),
    ("litestream_checkpoint_count", "counter"),
    ("litestream_checkpoint_error_count", "counter"),
    ("litestream_checkpoint_seconds", "counter"),
    ("litestream_replica_wal_bytes", "counter"),
    ("litestream_replica_wal_index", "gauge"),
    ("litestream_replica_wal_offset", "gauge"),
    ("litestream_replica_validation_total", "counter"),
    ("litestream_replica_operation_total", "counter"),
    ("litestream_replica_operation_bytes", "counter"),
];

/// [`config`] with [`TOKEN`] and one file replica at `replica` syncing every `sync`.
fn token_config(db: &Path, replica: &Path, sync: &str) -> String {
    config(
        db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &file_replica(replica, sync),
    )
}

#[test]
fn metrics_status_and_credentials_after_commits() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let (key, secret) = ("AKIA-HTTP-TEST-KEY", "s3cr3t-http-test-value");
    let prefix = common::unique_name("http-metrics");
    let replicas = file_replica(&replica, "100ms")
        + &s3_replica(
            &common::s3_endpoint(),
            &common::bucket(),
            &prefix,
            key,
            secret,
        );
    let top = format!("http-token: \"{TOKEN}\"\n");
    let app = open_app(&db);
    let ws = Instance::start(&dir, &config(&db, &top, &replicas), &[]);
    let last = write_until_checkpointed(&ws, &app, 1);
    let (scrape, st) = converge(&ws, &db, &replica);
    check_litestream_metrics(&scrape, &st, &db);
    check_status_shape(&st, &db, &replica);

    // walstream's own metrics move with more commits.
    let file = [("db", db.to_str().expect("utf-8")), ("name", "file")];
    let before = (
        scrape.must("walstream_replica_uploaded_bytes_total", &file),
        scrape.must("walstream_replica_last_sync_timestamp_seconds", &file),
        scrape.must("litestream_replica_wal_bytes", &file),
    );
    for id in last + 1..=last + 20 {
        insert(&app, id);
    }
    let (after, _) = converge(&ws, &db, &replica);
    assert!(after.must("walstream_replica_uploaded_bytes_total", &file) > before.0);
    assert!(after.must("walstream_replica_last_sync_timestamp_seconds", &file) > before.1);
    assert!(after.must("litestream_replica_wal_bytes", &file) > before.2);
    assert_eq!(after.must("walstream_replica_lag_seconds", &file), 0.0);
    assert_eq!(after.must("walstream_db_attached", &[file[0]]), 1.0);
    let put = [file[0], file[1], ("operation", "PUT")];
    assert!(after.must("walstream_replica_storage_operations_total", &put) >= 2.0);

    // `walstream status` prints the same state.
    let out =
        common::run(Command::new(common::walstream_bin()).args(["status", "-addr", &ws.base]));
    let text = common::stdout_text(&out);
    assert!(text.starts_with("database  path"), "{text}");
    assert!(text.contains("app.db    s3 "), "{text}");
    let out = common::run(
        Command::new(common::walstream_bin()).args(["status", "-json", "-addr", &ws.base]),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("status -json");
    assert_eq!(doc["databases"][0]["name"], "app.db");

    assert_no_secret(&ws, &[key, secret, TOKEN], &common::stdout_text(&out));
    ws.proc.stop();
}

/// Inserts rows from id `first` on until walstream has checkpointed (the database position is
/// past WAL index 0); returns the last id written.
fn write_until_checkpointed(ws: &Instance, app: &rusqlite::Connection, first: i64) -> i64 {
    let mut id = first - 1;
    // The first snapshot's own checkpoint usually moves a new generation to index 1 already;
    // index 2 needs a checkpoint after it, so the replica holds WAL of at least two indexes.
    poll_until(DEADLINE, "a walstream checkpoint (WAL index 2)", || {
        id += 1;
        insert(app, id);
        let st = ws.status();
        st["databases"][0]["position"]["index"].as_u64() >= Some(2)
    });
    id
}

/// Polls until the replicas caught up and the metrics agree with the files on disk; returns the
/// scrape and the status document of that moment.
fn converge(ws: &Instance, db: &Path, replica: &Path) -> (Scrape, Value) {
    let label = db.to_str().expect("utf-8");
    let mut mismatches = Vec::new();
    let found = common::poll::poll_within(DEADLINE, || {
        let st = ws.wait_caught_up();
        let s = ws.metrics();
        let pos = &st["databases"][0]["position"];
        let generation = pos["generation"].as_str().unwrap_or_default();
        let newest = newest_segment_end(replica);
        mismatches.clear();
        for name in ["file", "s3"] {
            let l = [("db", label), ("name", name)];
            let got = (
                s.value("litestream_replica_wal_index", &l),
                s.value("litestream_replica_wal_offset", &l),
            );
            let want = newest
                .as_ref()
                .map(|n| (Some(f64::from(n.1)), Some(n.2 as f64)));
            if Some(got) != want || newest.as_ref().map(|n| n.0.as_str()) != Some(generation) {
                mismatches.push(format!(
                    "{name}: metrics {got:?}, newest segment {newest:?}"
                ));
            }
        }
        let d = [("db", label)];
        let db_wal = PathBuf::from(format!("{label}-wal"));
        let pairs = [
            ("litestream_db_size", file_len(db)),
            ("litestream_wal_size", file_len(&db_wal)),
            ("litestream_shadow_wal_size", shadow_size(db, generation)),
            (
                "litestream_shadow_wal_index",
                pos["index"].as_f64().unwrap_or(-1.0),
            ),
        ];
        for (name, want) in pairs {
            if s.value(name, &d) != Some(want) {
                mismatches.push(format!("{name}: {:?} != {want}", s.value(name, &d)));
            }
        }
        mismatches.is_empty().then_some((s, st))
    });
    found.unwrap_or_else(|| panic!("metrics never matched the files: {mismatches:?}"))
}

fn check_litestream_metrics(s: &Scrape, st: &Value, db: &Path) {
    for (name, kind) in LITESTREAM_FAMILIES {
        assert_eq!(
            s.types.get(*name).map(String::as_str),
            Some(*kind),
            "{name}: {:?}",
            s.names()
        );
        assert!(!s.of(name).is_empty(), "{name} has no sample");
    }
    let label = db.to_str().expect("utf-8");
    let d = [("db", label)];
    assert!(s.must("litestream_sync_count", &d) > 0.0);
    assert_eq!(s.must("litestream_sync_error_count", &d), 0.0);
    assert!(s.must("litestream_sync_seconds", &d) > 0.0);
    assert!(s.must("litestream_total_wal_bytes", &d) > 0.0);
    // With min-checkpoint-page-count 8 walstream checkpointed, so the index moved.
    assert!(
        st["databases"][0]["position"]["index"].as_u64() >= Some(1),
        "{st:#}"
    );
    let passive = [("db", label), ("mode", "PASSIVE")];
    assert!(s.must("litestream_checkpoint_count", &passive) >= 1.0);
    assert_eq!(s.must("litestream_checkpoint_error_count", &passive), 0.0);
    assert!(s.must("litestream_checkpoint_seconds", &passive) > 0.0);
    assert_eq!(st["databases"][0]["last_checkpoint"]["mode"], "PASSIVE");
    for name in ["file", "s3"] {
        let r = [("db", label), ("name", name)];
        assert!(s.must("litestream_replica_wal_bytes", &r) > 0.0);
        for status in ["ok", "error"] {
            let v = [("db", label), ("name", name), ("status", status)];
            assert_eq!(s.must("litestream_replica_validation_total", &v), 0.0);
        }
    }
    let s3put = [("replica_type", "s3"), ("operation", "PUT")];
    assert!(s.must("litestream_replica_operation_total", &s3put) >= 2.0);
    assert!(s.must("litestream_replica_operation_bytes", &s3put) > 0.0);
    let s3list = [("replica_type", "s3"), ("operation", "LIST")];
    assert!(s.must("litestream_replica_operation_total", &s3list) >= 1.0);
    let types: Vec<&str> = s
        .of("litestream_replica_operation_total")
        .iter()
        .map(|x| x.labels["replica_type"].as_str())
        .collect();
    assert!(
        types.iter().all(|t| *t == "s3"),
        "file replicas are not counted: {types:?}"
    );
}

/// The documented `/api/v1/status` fields (docs/http-api.md).
fn check_status_shape(st: &Value, db: &Path, replica: &Path) {
    assert!(st["version"].is_string() && st["time"].is_string());
    let d = &st["databases"][0];
    assert_eq!(d["name"], "app.db");
    assert_eq!(d["path"], db.to_str().expect("utf-8"));
    assert_eq!(d["attached"], true);
    assert_eq!(d["size"].as_f64(), Some(file_len(db)));
    assert!(d["wal_size"].is_u64() && d["page_size"] == 4096);
    assert_eq!(d["generation"], d["position"]["generation"]);
    assert!(d["position"]["index"].is_u64() && d["position"]["offset"].is_u64());
    assert!(d["last_sync"].is_string());
    assert!(d["last_checkpoint"]["time"].is_string());
    assert!(d["last_error"].is_null() && d["failing_since"].is_null());
    let reps = d["replicas"].as_array().expect("replicas");
    assert_eq!(reps.len(), 2);
    let file = &reps[0];
    assert_eq!(
        (&file["name"], &file["type"]),
        (&Value::from("file"), &Value::from("file"))
    );
    assert_eq!(file["url"], format!("file://{}", replica.display()));
    assert!(file["last_sync"].is_string() && file["last_error"].is_null());
    assert_eq!(file["error_count"], 0);
    assert_eq!(file["failure_streak"], 0);
    assert_eq!(file["latest_snapshot"]["generation"], d["generation"]);
    assert!(
        file["latest_snapshot"]["index"].is_u64() && file["latest_snapshot"]["time"].is_string()
    );
    for key in ["oldest_restore_point", "restore_points_refreshed_at"] {
        assert!(file.get(key).is_some(), "missing {key}");
    }
    let s3 = &reps[1];
    assert_eq!(s3["type"], "s3");
    let url = s3["url"].as_str().expect("url");
    assert!(url.starts_with("s3://"), "{url}");
}

/// No response of any endpoint (nor `extra` text) contains any of `secrets`.
fn assert_no_secret(ws: &Instance, secrets: &[&str], extra: &str) {
    let mut bodies = vec![extra.to_string()];
    for path in [
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/v1/status",
        "/api/v1/databases/app.db/restore-points",
        "/api/v1/databases/nope/restore-points",
        "/nope",
    ] {
        let r = ws.get(path);
        bodies.push(format!("{:?} {}", r.headers, r.body));
    }
    for auth in [None, Some("Bearer wrong")] {
        let r = ws.post("/api/v1/databases/app.db/sync", auth);
        bodies.push(format!("{:?} {}", r.headers, r.body));
    }
    let r = ws.post(
        "/api/v1/databases/app.db/sync",
        Some(&format!("Bearer {TOKEN}")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    bodies.push(r.body);
    for body in &bodies {
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "a response contains {secret:?}: {body}"
            );
        }
    }
}

/// Our own moto (S3) server, which this test may stop and restart on the same port.
#[test]
fn s3_outage_fails_readiness_grows_lag_and_recovers_without_loss() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let mut moto = OwnMoto::start(dir.join("moto.log"));
    let bucket = "walstream-http-outage";
    create_bucket(&moto.endpoint(), bucket);
    let replicas = s3_replica(&moto.endpoint(), bucket, "db", "key", "secret");
    let cfg = config(&db, "readiness-max-lag: 1s\n", &replicas);
    let app = open_app(&db);
    let ws = Instance::start(&dir, &cfg, &[]);
    let mut id = 0;
    let mut write = || {
        id += 1;
        insert(&app, id);
    };
    write();
    poll_until(DEADLINE, "ready before the outage", || {
        ws.get("/readyz").status == 200
    });

    moto.stop();
    // While the application writes, the replica falls behind: 503 naming the replica.
    let mut body = Value::Null;
    poll_until(DEADLINE, "/readyz to fail", || {
        write();
        let r = ws.get("/readyz");
        body = r.json();
        r.status == 503
    });
    assert_eq!(body["ready"], false);
    let problem = &body["problems"][0];
    assert_eq!(
        (&problem["db"], &problem["replica"]),
        (&Value::from("app.db"), &Value::from("s3"))
    );
    assert!(
        problem["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("lag"),
        "{body:#}"
    );
    let l = [("db", db.to_str().expect("utf-8")), ("name", "s3")];
    let first = ws.metrics().must("walstream_replica_lag_seconds", &l);
    assert!(first > 1.0, "lag {first}");
    poll_until(DEADLINE, "the lag to grow", || {
        write();
        ws.metrics().must("walstream_replica_lag_seconds", &l) > first
    });
    // The failing upload round ends (after its storage retries) and reports its error.
    poll_until(DEADLINE, "the replica to report its error", || {
        write();
        ws.status()["databases"][0]["replicas"][0]["last_error"]["message"].is_string()
    });

    // The server comes back (empty: moto keeps nothing); walstream re-snapshots and catches up.
    moto.restart();
    create_bucket(&moto.endpoint(), bucket);
    write();
    let recovered = Instant::now() + Duration::from_secs(150);
    while ws.get("/readyz").status != 200 {
        assert!(
            Instant::now() < recovered,
            "never ready again: {}",
            ws.get("/readyz").body
        );
        std::thread::sleep(support::POLL);
    }
    ws.wait_caught_up();
    let s = ws.metrics();
    assert_eq!(s.must("walstream_replica_lag_seconds", &l), 0.0);
    assert!(s.must("walstream_replica_sync_errors_total", &l) >= 1.0);
    let transient = [l[0], l[1], ("kind", "transient")];
    assert!(s.must("walstream_replica_storage_errors_total", &transient) >= 1.0);

    // No data lost: every row, including those written during the outage, restores.
    ws.proc.stop();
    let cfg_path = dir.join("walstream.yml").display().to_string();
    let out = dir.join("restored.db");
    let restored = walstream_restore(
        &["-config", &cfg_path, db.to_str().expect("utf-8")],
        &[],
        &out,
    );
    assert_eq!(restored, rows(&app));
    moto.stop();
}

#[test]
fn restore_points_give_a_timestamp_that_restores() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let cfg = token_config(&db, &replica, "100ms");
    let app = open_app(&db);
    let ws = Instance::start(&dir, &cfg, &[]);
    write_until_checkpointed(&ws, &app, 1);
    let bearer = format!("Bearer {TOKEN}");
    let synced = ws.post("/api/v1/databases/app.db/sync", Some(&bearer));
    assert_eq!(synced.status, 200, "{}", synced.body);
    // Everything is stored now. A second sync (nothing new) asks for a listing that starts
    // after this instant: `refreshed_at` is when a listing started.
    let after_sync = SystemTime::now();
    let again = ws.post("/api/v1/databases/app.db/sync", Some(&bearer));
    assert_eq!(again.status, 200, "{}", again.body);

    // The refresher lists storage in the background; wait for a listing newer than the sync.
    let mut doc = Value::Null;
    poll_until(DEADLINE, "a fresh restore-point listing", || {
        let r = ws.get("/api/v1/databases/app.db/restore-points");
        assert_eq!(r.status, 200, "{}", r.body);
        doc = r.json();
        doc["replicas"][0]["refreshed_at"]
            .as_str()
            .is_some_and(|_| time(&doc["replicas"][0]["refreshed_at"]) > after_sync)
    });
    assert_eq!(doc["database"], "app.db");
    assert_eq!(doc["path"], db.to_str().expect("utf-8"));
    let rep = &doc["replicas"][0];
    assert_eq!(
        (&rep["name"], &rep["type"]),
        (&Value::from("file"), &Value::from("file"))
    );
    assert!(rep["error"].is_null());
    let gens = rep["generations"].as_array().expect("generations");
    assert_eq!(gens.len(), 1, "{doc:#}");
    let g = &gens[0];
    assert_eq!(g["generation"], ws.status()["databases"][0]["generation"]);
    assert_eq!(rep["oldest_restore_point"], g["restorable_from"]);
    assert_eq!(g["restorable_to"], g["updated_at"]);
    let snaps = g["snapshots"].as_array().expect("snapshots");
    // One generation, no snapshot-interval: exactly its first snapshot.
    assert_eq!(snaps.len(), 1, "{doc:#}");
    assert!(snaps[0]["size"].as_u64() > Some(0));
    assert_eq!(g["restorable_from"], snaps[0]["created_at"]);
    let wal = g["wal"].as_array().expect("wal spans");
    let indexes: Vec<u64> = wal.iter().filter_map(|w| w["index"].as_u64()).collect();
    assert!(indexes.windows(2).all(|w| w[1] == w[0] + 1), "{indexes:?}");
    assert!(
        indexes.len() >= 2,
        "checkpoints should have produced several indexes: {doc:#}"
    );
    for w in wal {
        assert_eq!(w["first_offset"], 0);
        assert!(w["segments"].as_u64() >= Some(1) && w["size"].as_u64() > Some(0));
        assert!(time(&w["first_created_at"]) <= time(&w["last_created_at"]));
    }

    // `restorable_to` restores everything; `restorable_from` restores a consistent prefix.
    let url = format!("file://{}", replica.display());
    let to = g["restorable_to"].as_str().expect("restorable_to");
    let out = dir.join("to.db");
    let all = walstream_restore(&["-timestamp", to, &url], &[], &out);
    assert_eq!(all, rows(&app));
    let from = g["restorable_from"].as_str().expect("restorable_from");
    let early_path = dir.join("from.db");
    common::run(
        Command::new(common::walstream_bin())
            .args(["restore", "-timestamp", from, "-o"])
            .arg(&early_path)
            .arg(&url),
    );
    let early = common::sqlite::checked(&early_path);
    let has_table: i64 = early
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 't'",
            [],
            |r| r.get(0),
        )
        .expect("sqlite_master");
    if has_table == 1 {
        assert_prefix(&rows(&early), &rows(&app));
    }

    let unknown = ws.get("/api/v1/databases/missing.db/restore-points");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("app.db")
    );
    ws.proc.stop();
}

#[test]
fn post_sync_returns_only_after_the_last_commit_is_in_the_replica() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    // With a one-hour sync interval only the first round uploads by itself.
    let cfg = token_config(&db, &replica, "1h");
    let app = open_app(&db);
    insert(&app, 1);
    let ws = Instance::start(&dir, &cfg, &[]);
    poll_until(DEADLINE, "the first upload", || {
        newest_segment_end(&replica).is_some()
    });
    for id in 2..=25 {
        insert(&app, id);
    }
    let r = ws.post(
        "/api/v1/databases/app.db/sync",
        Some(&format!("Bearer {TOKEN}")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Straight after the answer, without waiting: the replica holds every commit.
    let url = format!("file://{}", replica.display());
    let restored = walstream_restore(&[&url], &[], &dir.join("out.db"));
    assert_eq!(restored, rows(&app));
    let doc = r.json();
    assert_eq!(doc["database"], "app.db");
    let (generation, index, end) = newest_segment_end(&replica).expect("segments");
    assert_eq!(doc["position"]["generation"], generation.as_str());
    assert_eq!(
        (
            doc["position"]["index"].as_u64(),
            doc["position"]["offset"].as_u64()
        ),
        (Some(u64::from(index)), Some(end))
    );
    assert_eq!(doc["replicas"][0]["name"], "file");
    assert_eq!(doc["replicas"][0]["position"], doc["position"]);

    let snap = ws.post(
        "/api/v1/databases/app.db/snapshot",
        Some(&format!("Bearer {TOKEN}")),
    );
    assert_eq!(snap.status, 200, "{}", snap.body);
    let s = snap.json();
    assert_eq!(s["replicas"][0]["generation"], generation.as_str());
    let snapshot = replica
        .join("generations")
        .join(&generation)
        .join("snapshots")
        .join(format!(
            "{:08x}.snapshot.lz4",
            s["replicas"][0]["index"].as_u64().expect("index")
        ));
    assert!(snapshot.exists(), "{}", snapshot.display());
    ws.proc.stop();
}

/// The id of the backup `walstream backup create` (the command, no server) takes of `db`.
fn backup_with_the_command(dir: &Path, db: &Path) -> String {
    let out = common::run(Command::new(common::walstream_bin()).args([
        "backup",
        "create",
        "-config",
        &dir.join("walstream.yml").display().to_string(),
        &db.display().to_string(),
    ]));
    let text = common::stdout_text(&out);
    // Log lines (`time=… level=INFO …`) go to stdout too; the id leads the other line.
    let line = text.lines().find(|l| !l.starts_with("time="));
    let id = line.and_then(|l| l.split_whitespace().next());
    id.unwrap_or_else(|| panic!("no backup id in: {text}"))
        .to_string()
}

/// The endpoints that return database content (a backup's file, the replica's database).
fn data_endpoints(backup_id: &str) -> [String; 2] {
    [
        format!("/api/v1/databases/app.db/backups/{backup_id}"),
        "/api/v1/databases/app.db/replica/latest.db".to_string(),
    ]
}

#[test]
fn mutations_and_downloads_need_a_configured_token() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = open_app(&db);
    insert(&app, 1);
    let cfg = config(&db, "", &file_replica(&dir.join("replica"), "100ms"));
    let ws = Instance::start(&dir, &cfg, &[]);
    for path in [
        "/api/v1/databases/app.db/sync",
        "/api/v1/databases/app.db/snapshot",
    ] {
        let r = ws.post(path, Some("Bearer anything"));
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap_or_default()
                .contains("http-token"),
            "{}",
            r.body
        );
    }
    // Downloads are disabled like mutations, with or without a header, although the backup
    // exists, is listed (metadata stays readable) and the replica holds the database.
    let id = backup_with_the_command(&dir, &db);
    ws.wait_caught_up();
    let listed = ws.get("/api/v1/databases/app.db/backups");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()["backups"][0]["id"], id.as_str());
    for path in data_endpoints(&id) {
        for r in [ws.get(&path), ws.get_auth(&path, "anything")] {
            assert_eq!(r.status, 403, "{path}: {}", r.body);
            let text = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(
                text.starts_with("endpoints returning database content are disabled")
                    && text.contains("http-token"),
                "{path}: {text}"
            );
        }
    }
    assert_eq!(ws.get("/metrics").status, 200);
    assert_eq!(ws.get("/api/v1/status").status, 200);
    assert_eq!(ws.get("/healthz").status, 200);
    assert_eq!(ws.get("/nothing-here").status, 404);
    assert_eq!(ws.get("/api/v1/databases/app.db/sync").status, 405);
    ws.proc.stop();
}

#[test]
fn bearer_token_from_env_guards_mutations_and_protected_reads() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let _app = open_app(&db);
    let cfg = config(
        &db,
        "http-protect-reads: true\n",
        &file_replica(&dir.join("replica"), "100ms"),
    );
    let env = [("WALSTREAM_HTTP_TOKEN".to_string(), TOKEN.to_string())];
    let ws = Instance::start(&dir, &cfg, &env);
    poll_until(DEADLINE, "ready", || ws.get("/readyz").status == 200);
    let sync = "/api/v1/databases/app.db/sync";
    let missing = ws.post(sync, None);
    assert_eq!(missing.status, 401, "{}", missing.body);
    let challenge = missing.headers.get("www-authenticate").expect("challenge");
    assert!(challenge.to_str().unwrap_or_default().starts_with("Bearer"));
    assert_eq!(ws.post(sync, Some("Bearer wrong-token")).status, 403);
    assert_eq!(ws.post(sync, Some(&format!("Basic {TOKEN}"))).status, 401);
    assert_eq!(ws.post(sync, Some(&format!("Bearer {TOKEN}"))).status, 200);
    // Reads are protected too; probes never are.
    for path in [
        "/metrics",
        "/api/v1/status",
        "/api/v1/databases/app.db/restore-points",
    ] {
        assert_eq!(ws.get(path).status, 401, "{path}");
        assert_eq!(ws.get_auth(path, "wrong-token").status, 403, "{path}");
        assert_eq!(ws.get_auth(path, TOKEN).status, 200, "{path}");
    }
    assert_eq!(ws.get("/healthz").status, 200);
    assert_eq!(ws.get("/readyz").status, 200);
    ws.proc.stop();
}

#[test]
fn downloads_need_the_token_when_reads_are_open() {
    // The default: a token, `http-protect-reads: false`.
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let app = open_app(&db);
    insert(&app, 1);
    let ws = Instance::start(&dir, &token_config(&db, &dir.join("replica"), "100ms"), &[]);
    ws.wait_caught_up();
    let made = ws.post(
        "/api/v1/databases/app.db/backups",
        Some(&format!("Bearer {TOKEN}")),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["id"].as_str().expect("backup id").to_string();
    for path in data_endpoints(&id) {
        let missing = ws.get(&path);
        assert_eq!(missing.status, 401, "{path}: {}", missing.body);
        let challenge = missing.headers.get("www-authenticate").expect("challenge");
        assert!(challenge.to_str().unwrap_or_default().starts_with("Bearer"));
        assert!(!missing.body.contains("SQLite format 3"), "{path}");
        let basic = ws.send(
            reqwest::blocking::Client::new()
                .get(format!("{}{path}", ws.base))
                .header("Authorization", format!("Basic {TOKEN}")),
        );
        assert_eq!(basic.status, 401, "{path}: {}", basic.body);
        let wrong = ws.get_auth(&path, "wrong-token");
        assert_eq!(wrong.status, 403, "{path}: {}", wrong.body);
        assert_eq!(wrong.json()["error"], "invalid bearer token", "{path}");
        let right = ws.get_auth(&path, TOKEN);
        assert_eq!(right.status, 200, "{path}: {}", right.body);
        assert!(right.body.starts_with("SQLite format 3\0"), "{path}");
    }
    // Metadata stays open under the default config; probes never need the token.
    for path in [
        "/metrics",
        "/api/v1/status",
        "/api/v1/databases/app.db/restore-points",
        "/api/v1/databases/app.db/backups",
        "/healthz",
        "/readyz",
    ] {
        assert_eq!(ws.get(path).status, 200, "{path}");
    }
    ws.proc.stop();
}

/// The names of the databases of a status document.
fn names(doc: &Value) -> Vec<String> {
    doc["databases"]
        .as_array()
        .expect("databases")
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_string())
        .collect()
}

/// 400 with a one-line JSON error mentioning `want`.
fn assert_bad_request(ws: &Instance, path: &str, want: &str) {
    let r = ws.get(path);
    assert_eq!(r.status, 400, "{path}: {}", r.body);
    assert!(!r.body.trim_end().contains('\n'), "{path}: {}", r.body);
    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains(want), "{path}: {error}");
}

#[test]
fn status_pages_filters_and_validates_thirty_databases() {
    let (_keep, dir) = tempdir();
    // 10 databases exist (attached, replicating), 20 never appear (waiting).
    let dbs: Vec<PathBuf> = (0..30)
        .map(|i| {
            dir.join(format!(
                "{}-{i:02}.db",
                if i < 10 { "Live" } else { "idle" }
            ))
        })
        .collect();
    let apps: Vec<_> = dbs[..10].iter().map(|p| open_app(p)).collect();
    let cfg = fleet_config(&dbs, "metrics-db-labels: false\n", &dir.join("replicas"));
    let ws = Instance::start(&dir, &cfg, &[]);

    // Without parameters: every database, no paging fields (the document of before).
    let all = ws.status();
    assert_eq!(names(&all).len(), 30);
    assert!(all.get("page").is_none(), "{all:#}");

    // Pages of 7 in config order, followed through `next` until it is null.
    let mut path = "/api/v1/status?limit=7".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let doc = ws.get(&path).json();
        assert_eq!(doc["page"]["total"], 30, "{doc:#}");
        assert_eq!(doc["page"]["limit"], 7);
        assert!(names(&doc).len() <= 7);
        seen.extend(names(&doc));
        pages += 1;
        match doc["page"]["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    assert_eq!((pages, &seen), (5, &names(&all)));
    let past = ws.get("/api/v1/status?offset=30").json();
    assert_eq!(
        (names(&past).len(), &past["page"]["next"]),
        (0, &Value::Null)
    );

    // `q` is a case-insensitive substring of the id or the path.
    let q = ws.get("/api/v1/status?q=LIVE-0&limit=3").json();
    assert_eq!(q["page"]["total"], 10);
    assert_eq!(names(&q), ["Live-00.db", "Live-01.db", "Live-02.db"]);
    let next = q["page"]["next"].as_str().expect("next page");
    assert!(next.contains("q=live-0"), "{next}");
    let by_dir = ws.get(&format!(
        "/api/v1/status?q={}",
        dir.join("idle-2").display()
    ));
    assert_eq!(by_dir.json()["page"]["total"], 10, "{}", by_dir.body);

    // `state`: the 20 missing files wait; the 10 live ones become ok once replicated.
    let waiting = ws.get("/api/v1/status?state=waiting&limit=1000").json();
    assert_eq!(waiting["page"]["total"], 20);
    assert!(names(&waiting).iter().all(|n| n.starts_with("idle-")));
    poll_until(DEADLINE, "ten databases ok", || {
        ws.get("/api/v1/status?state=ok").json()["page"]["total"] == 10
    });
    let failing = ws.get("/api/v1/status?state=failing").json();
    assert_eq!(
        (failing["page"]["total"].as_u64(), names(&failing).len()),
        (Some(0), 0)
    );

    for (path, want) in [
        ("/api/v1/status?limit=0", "invalid limit"),
        ("/api/v1/status?limit=1001", "invalid limit"),
        ("/api/v1/status?limit=ten", "invalid limit"),
        ("/api/v1/status?offset=-1", "invalid offset"),
        ("/api/v1/status?state=sleeping", "invalid state"),
        ("/api/v1/status?sort=name", "unknown parameter"),
        ("/api/v1/status?limit=5&limit=6", "given twice"),
        (
            "/api/v1/databases/Live-00.db/restore-points?refresh=maybe",
            "invalid refresh",
        ),
    ] {
        assert_bad_request(&ws, path, want);
    }
    let long = format!("/api/v1/status?q={}", "x".repeat(257));
    assert_bad_request(&ws, &long, "invalid q");
    assert_eq!(
        ws.get(&format!("/api/v1/status?q={}", "x".repeat(256)))
            .status,
        200
    );

    // `metrics-db-labels: false`: no `db`/`name` label, sums over the databases.
    let s = ws.metrics();
    assert!(
        s.samples
            .iter()
            .all(|x| !x.labels.contains_key("db") && !x.labels.contains_key("name")),
        "{:#?}",
        s.samples
    );
    assert_eq!(s.must("walstream_db_attached", &[]), 10.0);
    // Sizes are those of the last sync tick: poll until a tick saw the current files.
    poll_until(
        DEADLINE,
        "litestream_db_size = the sum of the ten files",
        || {
            let size: f64 = dbs[..10].iter().map(|p| file_len(p)).sum();
            ws.metrics().value("litestream_db_size", &[]) == Some(size)
        },
    );
    assert!(
        s.must(
            "walstream_replica_storage_operations_total",
            &[("operation", "PUT")]
        ) >= 10.0
    );
    assert!(s.of("litestream_replica_wal_index").is_empty());
    drop(apps);
    ws.proc.stop();
}

#[test]
fn idle_database_costs_no_listing_and_a_write_shows_in_restore_points() {
    let (_keep, dir) = tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let app = open_app(&db);
    let ws = Instance::start(
        &dir,
        &config(&db, "", &file_replica(&replica, "100ms")),
        &[],
    );
    for id in 1..=5 {
        insert(&app, id);
    }
    ws.wait_caught_up();
    let points = "/api/v1/databases/app.db/restore-points";
    // A request on a stale cache waits for the listing it asks for.
    let mut doc = Value::Null;
    poll_until(
        DEADLINE,
        "a restore-point listing that is not stale",
        || {
            doc = ws.get(points).json();
            doc["replicas"][0]["stale"] == false
                && doc["replicas"][0]["generations"]
                    .as_array()
                    .is_some_and(|g| !g.is_empty())
        },
    );
    let segments = |doc: &Value| -> u64 {
        doc["replicas"][0]["generations"]
            .as_array()
            .expect("generations")
            .iter()
            .flat_map(|g| g["wal"].as_array().expect("wal").iter())
            .map(|w| w["segments"].as_u64().expect("segments"))
            .sum()
    };
    let before = segments(&doc);

    // Idle: however often clients read, nothing reaches storage.
    let start = ws.metrics();
    let window = Instant::now() + Duration::from_secs(3);
    while Instant::now() < window {
        assert_eq!(ws.get(points).json()["replicas"][0]["stale"], false);
        ws.status();
        ws.metrics();
        std::thread::sleep(Duration::from_millis(200));
    }
    let end = ws.metrics();
    for op in ["LIST", "GET"] {
        assert_eq!(
            storage_ops(&end, op),
            storage_ops(&start, op),
            "{op} while idle"
        );
    }

    // One write: the next request lists again and shows the new segment.
    let old = ws.status()["databases"][0]["position"].clone();
    insert(&app, 6);
    poll_until(DEADLINE, "walstream to see the write", || {
        ws.status()["databases"][0]["position"] != old
    });
    ws.wait_caught_up();
    let after = ws.get(points).json();
    assert_eq!(after["replicas"][0]["stale"], false, "{after:#}");
    assert!(segments(&after) > before, "{after:#}");
    assert!(storage_ops(&ws.metrics(), "LIST") > storage_ops(&end, "LIST"));
    let restored = dir.join("restored.db");
    let ts = after["replicas"][0]["generations"][0]["restorable_to"]
        .as_str()
        .expect("restorable_to")
        .to_string();
    let url = format!("file://{}", replica.display());
    let got = walstream_restore(&["-timestamp", &ts, &url], &[], &restored);
    // `walstream_restore` checks `PRAGMA integrity_check` of the result.
    assert_eq!(got, rows(&app));
    ws.proc.stop();
}
