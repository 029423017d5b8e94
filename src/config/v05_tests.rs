//! Tests of Litestream v0.5's keys: the fixture `tests/fixtures/litestream-v0.5.yml` (every v0.5
//! key, written as a v0.5 user would) with each value it maps to, the singular `replica:`, the
//! refusals `replicate` reports (one per refused key), the load errors (one per key whose value
//! Litestream rejects or whose replica walstream could not read), and the top-level defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const SRC: &str = "/etc/litestream.yml";
const FIXTURE: &str = include_str!("../../tests/fixtures/litestream-v0.5.yml");

fn env(name: &str) -> Option<String> {
    match name {
        "DATA" => Some("/data".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    parse_with_env(text, true, Some(Path::new(SRC)), &env)
}

fn ok(text: &str) -> LoadedConfig {
    parse(text).unwrap_or_else(|e| panic!("expected valid config, got: {e}\n{text}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error for:\n{text}\ngot {:?}", c.config),
        Err(e) => e.to_string(),
    }
}

/// The line `replicate` fails with.
fn refusal(text: &str) -> String {
    let loaded = ok(text);
    match loaded.config.check_replicate() {
        Ok(()) => panic!("expected a refusal for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn fixture_loads_with_every_key_mapped() {
    let loaded = ok(FIXTURE);
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let db = &c.dbs[0];
    assert_eq!(db.busy_timeout, secs(5));
    assert_eq!(db.truncate_page_count, 121_359);
    assert_eq!(c.addr.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(c.exec.as_deref(), Some("true"));
    assert!(c.logging.stderr);
    assert_eq!(
        c.v05,
        V05Settings {
            levels: vec![secs(30), secs(300), secs(3600)],
            snapshot_interval: secs(12 * 3600),
            snapshot_retention: secs(72 * 3600),
            l0_retention: secs(600),
            l0_retention_check_interval: secs(30),
            retention_enabled: true,
            verify_compaction: true,
            shutdown_sync_timeout: secs(10),
            shutdown_sync_interval: Duration::from_millis(250),
            heartbeat_url: Some(
                HeartbeatUrl::parse("https://hc-ping.com/00000000-0000-0000-0000-000000000000")
                    .expect("valid")
            ),
            heartbeat_interval: secs(300),
        }
    );

    let db = &c.dbs[0];
    assert_eq!(db.path, PathBuf::from("/data/app.db"));
    assert_eq!(db.meta_path, PathBuf::from("/data/.app.db-litestream"));
    assert!(db.v05_replica);
    assert_eq!(db.replicas.len(), 1);
    let r = &db.replicas[0];
    assert_eq!(r.name, "file");
    assert_eq!(
        r.target,
        ReplicaTarget::File {
            path: "/data/replica/app".into()
        }
    );
    assert_eq!(r.sync_interval, secs(1), "the replica's own value wins");
    assert_eq!(r.snapshot_interval, secs(12 * 3600), "snapshot.interval");
    assert_eq!(r.retention, secs(72 * 3600), "snapshot.retention");

    let dir = &c.dirs[0];
    assert!(dir.recursive && dir.watch && dir.template.v05_replica);
    assert_eq!(dir.meta_dir, Some(PathBuf::from("/data/meta")));
    let tenant = dir
        .db_config(Path::new("/data/tenants/eu/acme.db"))
        .expect("a database of the entry");
    assert_eq!(
        tenant.meta_path,
        PathBuf::from("/data/meta/eu/acme.db-litestream")
    );
    let s3 = &tenant.replicas[0];
    assert_eq!(s3.sync_interval, secs(2), "top-level sync-interval");
    let ReplicaTarget::S3(t) = &s3.target else {
        panic!("s3 target: {:?}", s3.target)
    };
    assert_eq!(t.bucket, "tenants-bucket");
    assert_eq!(t.path, "tenants/eu/acme.db");
    assert_eq!(t.region.as_deref(), Some("eu-west-1"));
    assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(t.force_path_style);
    assert_eq!(t.access_key_id.as_deref(), Some("AKIAEXAMPLE"));

    let refused: Vec<(&str, &str)> = c
        .refusals
        .iter()
        .map(|r| (r.location.as_str(), r.key.as_str()))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("mcp-addr", "mcp-addr"),
            ("socket.enabled", "enabled"),
            ("validation.interval", "interval"),
            (
                "dbs[0] (/data/app.db): restore-if-db-not-exists",
                "restore-if-db-not-exists"
            ),
            (
                "dbs[1] (dir /data/tenants): replica \"s3\": sse-kms-key-id",
                "sse-kms-key-id"
            ),
            (
                "dbs[1] (dir /data/tenants): replica \"s3\": storage-class",
                "storage-class"
            ),
        ]
    );
}

#[test]
fn singular_replica_is_read_like_a_list_item_and_accepted_by_replicate() {
    let loaded =
        ok("dbs:\n  - path: /d/a.db\n    replica:\n      url: s3://b/x\n      sync-interval: 3s\n");
    let db = &loaded.config.dbs[0];
    assert!(db.v05_replica);
    let listed = ok(
        "dbs:\n  - path: /d/a.db\n    replicas:\n      - url: s3://b/x\n        sync-interval: 3s\n",
    );
    assert!(!listed.config.dbs[0].v05_replica);
    assert!(listed.config.check_replicate().is_ok());
    let (a, b) = (&db.replicas[0], &listed.config.dbs[0].replicas[0]);
    assert_eq!(
        (&a.name, &a.target, a.sync_interval),
        (&b.name, &b.target, b.sync_interval)
    );
    // `replicate` writes it in the LTX layout.
    assert!(loaded.config.check_replicate().is_ok());
    // Other refused keys are still reported.
    let both = "mcp-addr: \":3001\"\ndbs:\n  - path: /d/a.db\n    replica:\n      path: /r\n";
    assert!(refusal(both).contains("mcp-addr"));
    // Errors inside it name the singular key.
    assert_eq!(
        err("dbs:\n  - path: /d/a.db\n    replica:\n      type: s3\n"),
        "config /etc/litestream.yml: dbs[0] (/d/a.db): replica \"s3\": bucket required for s3 replica"
    );
}

#[test]
fn each_refused_key_is_one_line_naming_file_entry_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "mcp-addr: \":3001\"\n",
            "config /etc/litestream.yml: mcp-addr: walstream has no MCP server; remove the key (walstream's HTTP API under \"addr\" serves status and restore points)",
        ),
        (
            "socket:\n  enabled: true\n",
            "config /etc/litestream.yml: socket.enabled: walstream has no control socket (sync, register, start, stop); remove the socket section or set enabled: false (walstream's HTTP API under \"addr\" with \"http-token\" offers sync and status)",
        ),
        (
            "validation:\n  interval: 1h\n",
            "config /etc/litestream.yml: validation.interval: walstream does not run Litestream v0.5's listing check; remove the key, or set a replica's \"validation-interval\" for walstream's restore-and-compare validation (a full restore each time)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    restore-if-db-not-exists: true\n    replicas:\n      - path: /r\n",
            "config /etc/litestream.yml: dbs[0] (/d/a.db): restore-if-db-not-exists: walstream replicate does not restore first; run \"walstream restore -if-db-not-exists -if-replica-exists DB_PATH\" (or a directory entry's DIR) before replicate, e.g. in an init container, and remove the key",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    replicas:\n      - url: s3://b/x\n        storage-class: GLACIER_IR\n",
            "config /etc/litestream.yml: dbs[0] (/d/a.db): replicas[0] \"s3\": storage-class: walstream uploads with the bucket's default storage class; remove the key (a bucket lifecycle rule can move objects to another class)",
        ),
        (
            "sse-kms-key-id: alias/x\ndbs:\n  - path: /d/a.db\n    replicas:\n      - url: s3://b/x\n",
            "config /etc/litestream.yml: sse-kms-key-id: walstream does not ask S3 for SSE-KMS with this key, so uploads would get the bucket's default encryption; make the key the bucket's default encryption and remove this key (reading works either way)",
        ),
        (
            "storage-class: STANDARD_IA\n",
            "config /etc/litestream.yml: storage-class: walstream uploads with the bucket's default storage class; remove the key (a bucket lifecycle rule can move objects to another class)",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(refusal(text), *want, "{text}");
        assert!(!want.contains('\n'));
    }
    // Turned off, or on a replica type it does not apply to: nothing to refuse.
    for text in [
        "socket:\n  enabled: false\n  path: /run/ls.sock\n  permissions: 0600\n",
        "validation:\n  interval: 0s\n",
        "dbs:\n  - path: /d/a.db\n    restore-if-db-not-exists: false\n",
        "dbs:\n  - path: /d/a.db\n    replicas:\n      - path: /r\n        storage-class: X\n",
        "heartbeat-interval: 2m\n",
        "heartbeat-url: https://hc.example/ping\nheartbeat-interval: 1m\n",
    ] {
        let loaded = ok(text);
        assert!(loaded.config.check_replicate().is_ok(), "{text}");
        assert!(loaded.warnings.is_empty(), "{text}: {:?}", loaded.warnings);
    }
}

#[test]
fn invalid_v05_values_are_config_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "levels:\n  - interval: 0s\n",
            "levels[0]: interval: compaction interval must be greater than 0",
        ),
        (
            "levels:\n  - {}\n",
            "levels[0]: interval: compaction interval must be greater than 0",
        ),
        (
            "snapshot:\n  interval: 0s\n",
            "snapshot.interval: snapshot interval must be greater than 0",
        ),
        (
            "snapshot:\n  retention: -1h\n",
            "snapshot.retention: snapshot retention must be greater than 0",
        ),
        (
            "l0-retention: -1s\n",
            "l0-retention: l0 retention must not be negative",
        ),
        (
            "l0-retention-check-interval: 0s\n",
            "l0-retention-check-interval: l0 retention check interval must be greater than 0",
        ),
        (
            "shutdown-sync-timeout: -1s\n",
            "shutdown-sync-timeout: shutdown-sync-timeout must be >= 0",
        ),
        (
            "shutdown-sync-interval: 0s\n",
            "shutdown-sync-interval: shutdown sync interval must be greater than 0",
        ),
        (
            "heartbeat-url: ftp://x\n",
            "heartbeat-url: heartbeat URL must be a valid HTTP or HTTPS URL",
        ),
        (
            "heartbeat-url: \"https://?secret-token\"\n",
            "heartbeat-url: heartbeat URL must be a valid HTTP or HTTPS URL",
        ),
        (
            "heartbeat-interval: 59s\n",
            "heartbeat-interval: heartbeat interval must be at least 1 minute",
        ),
        (
            "heartbeat-interval: -5m\n",
            "heartbeat-interval: heartbeat interval must be at least 1 minute",
        ),
        (
            "heartbeat-interval: 30s\n",
            "heartbeat-interval: heartbeat interval must be at least 1 minute",
        ),
        (
            "retention:\n  enabled: sometimes\n",
            "retention.enabled: invalid bool \"sometimes\"",
        ),
        (
            "verify-compaction: 1\n",
            "verify-compaction: invalid bool: found a number",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    snapshot:\n      interval: 1h\n  - path: /d/b.db\n    snapshot:\n      interval: 2h\n",
            "dbs[1] (/d/b.db): snapshot.interval: conflicting database snapshot intervals: dbs[0] has 1h0m0s, this one has 2h0m0s (one value holds for every database)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    meta-dir: /m\n",
            "dbs[0] (/d/a.db): meta-dir: only allowed with \"dir\" (a directory of databases)",
        ),
        (
            "dbs:\n  - dir: /d\n    pattern: '*.db'\n    meta-dir: /m\n    meta-path: /p\n",
            "dbs[0] (dir /d): meta-dir: cannot be used with \"meta-path\"",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    replica:\n      path: /r\n    replicas:\n      - path: /s\n",
            "dbs[0] (/d/a.db): replica: cannot be used with \"replicas\" on one database (as in Litestream v0.5)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    max-sync-wal-bytes: -1\n",
            "dbs[0] (/d/a.db): max-sync-wal-bytes: must not be negative",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    truncate-page-n: \"x\"\n",
            "dbs[0] (/d/a.db): truncate-page-n: invalid integer \"x\"",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    busy-timeout: 1d\n",
            "dbs[0] (/d/a.db): busy-timeout: invalid duration \"1d\"",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    busy-timeout: 0s\n",
            "dbs[0] (/d/a.db): busy-timeout: must be greater than 0",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    truncate-page-n: -1\n",
            "dbs[0] (/d/a.db): truncate-page-n: must not be negative, got -1",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), format!("config {SRC}: {want}"), "{text}");
    }
}

#[test]
fn unreadable_replicas_are_refused_for_every_command() {
    let cases: &[(&str, &str)] = &[
        (
            "dbs:\n  - path: /d/a.db\n    replica:\n      url: s3://b/x\n      sse-customer-key: k\n",
            "dbs[0] (/d/a.db): replica \"s3\": sse-customer-key: S3 server-side encryption with customer keys (SSE-C) is not supported by walstream: every read and write of the replica needs the key; use age encryption (\"age:\") or the bucket's default encryption",
        ),
        (
            "sse-customer-algorithm: AES256\n",
            "sse-customer-algorithm: S3 server-side encryption with customer keys (SSE-C) is not supported by walstream: every read and write of the replica needs the key; use age encryption (\"age:\") or the bucket's default encryption",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    replica:\n      url: abs://acct@c/x\n      sas-token: sv=1\n",
            "dbs[0] (/d/a.db): replica \"abs\": sas-token: Azure SAS tokens are not supported by walstream; use \"account-key\" (or LITESTREAM_AZURE_ACCOUNT_KEY, or a managed identity)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    replica:\n      type: webdav\n      webdav-url: http://x\n",
            "dbs[0] (/d/a.db): replica \"webdav\": webdav replicas are not supported by walstream (supported: file, s3, gcs, abs)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    replica:\n      url: nats://host/bucket\n",
            "dbs[0] (/d/a.db): replica \"nats\": nats replicas are not supported by walstream (supported: file, s3, gcs, abs)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    replica:\n      type: oss\n      bucket: b\n",
            "dbs[0] (/d/a.db): replica \"oss\": oss replicas are not supported by walstream (supported: file, s3, gcs, abs)",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), format!("config {SRC}: {want}"), "{text}");
    }
}

#[test]
fn top_level_replica_settings_fill_what_replicas_leave_unset() {
    let c = ok(concat!(
        "bucket: shared\nregion: r1\nsync-interval: 5s\nskip-verify: true\nvalidation-interval: 1h\n",
        "dbs:\n  - path: /d/a.db\n    replica:\n      type: s3\n      path: a\n",
        "  - path: /d/b.db\n    replicas:\n      - type: s3\n        bucket: own\n        region: r2\n",
        "        sync-interval: 1s\n        skip-verify: false\n",
    ))
    .config;
    let target = |i: usize| match &c.dbs[i].replicas[0].target {
        ReplicaTarget::S3(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (target(0).bucket.as_str(), target(0).region.as_deref()),
        ("shared", Some("r1"))
    );
    assert_eq!(
        (target(1).bucket.as_str(), target(1).region.as_deref()),
        ("own", Some("r2"))
    );
    assert!(
        target(0).skip_verify && target(1).skip_verify,
        "skip-verify: true wins, as in Go"
    );
    assert_eq!(c.dbs[0].replicas[0].sync_interval, secs(5));
    assert_eq!(c.dbs[1].replicas[0].sync_interval, secs(1));
    assert_eq!(c.dbs[0].replicas[0].validation_interval, secs(3600));
    // `type: gs` is v0.5's name of the GCS type.
    let gs = ok(
        "dbs:\n  - path: /d/a.db\n    replica:\n      type: gs\n      bucket: g\n      path: p\n",
    );
    assert_eq!(gs.config.dbs[0].replicas[0].target.type_name(), "gcs");
}

#[test]
fn snapshot_and_retention_settings_set_the_replicas_snapshots_and_retention() {
    // A per-database value becomes everyone's when the file sets none (Litestream's rule).
    let c = ok(concat!(
        "dbs:\n  - path: /d/a.db\n    replicas: [{path: /ra}]\n",
        "  - path: /d/b.db\n    snapshot: {interval: 6h, retention: 48h}\n",
        "    replicas: [{path: /rb, retention: 1h}]\n",
    ))
    .config;
    let a = &c.dbs[0].replicas[0];
    assert_eq!(
        (a.snapshot_interval, a.retention),
        (secs(6 * 3600), secs(48 * 3600))
    );
    let b = &c.dbs[1].replicas[0];
    assert_eq!(
        (b.snapshot_interval, b.retention),
        (secs(6 * 3600), secs(3600)),
        "own retention wins"
    );
    assert_eq!(
        b.retention_check_interval,
        secs(3600),
        "clamped to the retention"
    );
    // The top-level value beats the per-database one.
    let c = ok("snapshot: {interval: 1h}\ndbs:\n  - path: /d/a.db\n    snapshot: {interval: 6h}\n    replicas: [{path: /ra}]\n").config;
    assert_eq!(c.dbs[0].replicas[0].snapshot_interval, secs(3600));
    // retention.enabled: false keeps every remote file.
    let c = ok("retention: {enabled: false}\nsnapshot: {retention: 1h}\ndbs:\n  - path: /d/a.db\n    replicas: [{path: /ra, retention: 2h}]\n").config;
    assert_eq!(c.dbs[0].replicas[0].retention, Duration::ZERO);
    // Without v0.5 keys, v0.3's defaults stay (no periodic snapshots, 24h retention).
    let c = ok("dbs:\n  - path: /d/a.db\n    replicas: [{path: /ra}]\n").config;
    let r = &c.dbs[0].replicas[0];
    assert_eq!(
        (r.snapshot_interval, r.retention),
        (Duration::ZERO, secs(24 * 3600))
    );
    assert_eq!(c.v05, V05Settings::default());
}

#[test]
fn log_level_env_and_pid_expansion() {
    let lookup = |name: &str| (name == "LOG_LEVEL").then(|| "debug".to_string());
    let loaded = parse_with_env("logging: {level: error}\n", true, None, &lookup).expect("valid");
    assert_eq!(loaded.config.logging.level, LogLevel::Debug);
    let loaded =
        parse_with_env("dbs:\n  - path: /tmp/$PID.db\n", true, None, &|_| None).expect("valid");
    assert_eq!(
        loaded.config.dbs[0].path,
        PathBuf::from(format!("/tmp/{}.db", std::process::id()))
    );
}

#[test]
fn s3_url_query_parameters_are_replica_keys() {
    let loaded = ok(concat!(
        "dbs:\n  - path: /d/a.db\n    replica:\n",
        "      url: s3://b/p?endpoint=localhost:9000&region=q&storageClass=GLACIER&colour=red\n",
        "      region: mine\n",
    ));
    let r = &loaded.config.dbs[0].replicas[0];
    let ReplicaTarget::S3(t) = &r.target else {
        panic!("{:?}", r.target)
    };
    assert_eq!(t.endpoint.as_deref(), Some("http://localhost:9000"));
    assert!(t.force_path_style, "an endpoint means path style");
    assert_eq!(t.region.as_deref(), Some("mine"), "the key beats the URL");
    assert_eq!((t.bucket.as_str(), t.path.as_str()), ("b", "p"));
    assert_eq!(
        loaded.warnings,
        vec!["unknown query parameter \"colour\" in the url of dbs[0].replica (db /d/a.db)"]
    );
    let keys: Vec<&str> = loaded
        .config
        .refusals
        .iter()
        .map(|r| r.key.as_str())
        .collect();
    assert_eq!(keys, vec!["storage-class"]);
    assert_eq!(
        err(
            "dbs:\n  - path: /d/a.db\n    replicas:\n      - url: s3://b/p?sseCustomerKey=c2VjcmV0\n"
        ),
        "config /etc/litestream.yml: dbs[0] (/d/a.db): replicas[0] \"s3\": sse-customer-key: S3 server-side encryption with customer keys (SSE-C) is not supported by walstream: every read and write of the replica needs the key; use age encryption (\"age:\") or the bucket's default encryption"
    );
    assert_eq!(
        err("dbs:\n  - path: /d/a.db\n    replicas:\n      - url: s3://b/p?partSize=big\n"),
        "config /etc/litestream.yml: dbs[0] (/d/a.db): replicas[0] \"s3\": url: invalid replica url s3://b/p: invalid value for query parameter \"partSize\": \"big\" (must be a positive integer)"
    );
}

#[test]
fn s3_url_query_on_the_command_line() {
    let r = replica_from_url_with_env("s3://b/p?endpoint=10.0.0.5:9000&region=r1", &|_| None)
        .expect("valid url");
    let ReplicaTarget::S3(t) = &r.target else {
        panic!("{:?}", r.target)
    };
    assert_eq!(t.endpoint.as_deref(), Some("http://10.0.0.5:9000"));
    assert_eq!(t.region.as_deref(), Some("r1"));
    assert!(t.force_path_style);
    let e = replica_from_url_with_env("s3://b/p?sseCustomerKey=secret", &|_| None)
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "invalid replica url s3://b/p: query parameter for \"sse-customer-key\" is not supported by walstream (see the README's Litestream v0.5 key table)"
    );
    assert!(!e.to_string().contains("secret"));
}
