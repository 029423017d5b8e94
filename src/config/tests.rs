//! Config-level tests: every key of spec §7, defaults, explicit zeros, env expansion, warnings,
//! and the exact message of each invalid case. URL, duration, path and credential details are
//! tested beside their code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const SRC: &str = "/etc/litestream.yml";

fn test_env(name: &str) -> Option<String> {
    match name {
        "MYDIR" => Some("/data".into()),
        "BUCKET" => Some("env-bucket".into()),
        "LITESTREAM_ACCESS_KEY_ID" => Some("ls-key".into()),
        "LITESTREAM_SECRET_ACCESS_KEY" => Some("ls-secret".into()),
        "LITESTREAM_AZURE_ACCOUNT_KEY" => Some("ls-az".into()),
        "STORAGE_EMULATOR_HOST" => Some("http://127.0.0.1:4443".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    parse_with_env(text, true, Some(Path::new(SRC)), &test_env)
}

fn ok(text: &str) -> LoadedConfig {
    parse(text).unwrap_or_else(|e| panic!("expected valid config, got: {e}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error, got {:?}", c.config),
        Err(e) => e.to_string(),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn every_key_is_parsed() {
    let loaded = ok(r#"
addr: ":9090"
exec: "myapp -serve"
access-key-id: global-key
secret-access-key: global-secret
logging:
  level: WARNING
  type: json
  stderr: true
dbs:
  - path: /data/app.db
    meta-path: /var/lib/meta
    monitor-interval: 2s
    checkpoint-interval: 5m
    min-checkpoint-page-count: 50
    max-checkpoint-page-count: 500
    replicas:
      - type: s3
        name: primary
        bucket: bkt
        path: backups/app
        region: eu-west-1
        endpoint: http://127.0.0.1:9000
        force-path-style: false
        skip-verify: true
        access-key-id: r-key
        secret-access-key: r-secret
        retention: 72h
        retention-check-interval: 30m
        sync-interval: 10s
        snapshot-interval: 6h
        validation-interval: 12h
        age:
          identities: ["AGE-SECRET-KEY-1GQ9778VQXMMJVE8SK7J6VT8UJ4HDQAJUVSFCWCM02D8GEWQ72PVQ2Y5J33"]
          recipients: ["age1t7rxyev2z3rw82stdlrrepyc39nvn86l5078zqkf5uasdy86jp6svpy7pa"]
      - type: abs
        account-name: acct
        account-key: az-key
        bucket: container
        path: p
        endpoint: http://127.0.0.1:10000/acct
      - type: gcs
        bucket: gbkt
        path: g/p
      - type: file
        name: local
        path: /backups/app
"#);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.source.as_deref(), Some(Path::new(SRC)));
    assert_eq!(c.addr.as_deref(), Some(":9090"));
    assert_eq!(c.exec.as_deref(), Some("myapp -serve"));
    assert_eq!(
        c.logging,
        LoggingConfig {
            level: LogLevel::Warn,
            json: true,
            stderr: true
        }
    );
    let db = &c.dbs[0];
    assert_eq!(db.path, PathBuf::from("/data/app.db"));
    assert_eq!(db.meta_path, PathBuf::from("/var/lib/meta"));
    assert_eq!(db.monitor_interval, secs(2));
    assert_eq!(db.checkpoint_interval, secs(300));
    assert_eq!(
        (db.min_checkpoint_page_count, db.max_checkpoint_page_count),
        (50, 500)
    );
    let names: Vec<&str> = db.replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["primary", "abs", "gcs", "local"]);

    let r = &db.replicas[0];
    assert_eq!(
        r.target,
        ReplicaTarget::S3(S3Target {
            bucket: "bkt".into(),
            path: "backups/app".into(),
            region: Some("eu-west-1".into()),
            endpoint: Some("http://127.0.0.1:9000".into()),
            force_path_style: false,
            skip_verify: true,
            access_key_id: Some("r-key".into()),
            secret_access_key: Some("r-secret".into()),
        })
    );
    assert_eq!(r.retention, secs(72 * 3600));
    assert_eq!(r.retention_check_interval, secs(1800));
    assert_eq!(r.sync_interval, secs(10));
    assert_eq!(r.snapshot_interval, secs(6 * 3600));
    assert_eq!(r.validation_interval, secs(12 * 3600));
    assert_eq!(r.age.identities.len(), 1);
    assert!(r.age.recipients[0].starts_with("age1"));

    assert_eq!(
        db.replicas[1].target,
        ReplicaTarget::Abs(AbsTarget {
            account_name: Some("acct".into()),
            account_key: Some("az-key".into()),
            bucket: "container".into(),
            path: "p".into(),
            endpoint: Some("http://127.0.0.1:10000/acct".into()),
            emulator_url: None,
        })
    );
    assert_eq!(
        db.replicas[2].target,
        ReplicaTarget::Gcs(GcsTarget {
            bucket: "gbkt".into(),
            path: "g/p".into(),
            emulator_host: Some("http://127.0.0.1:4443".into()),
        })
    );
    assert_eq!(
        db.replicas[3].target,
        ReplicaTarget::File {
            path: "/backups/app".into()
        }
    );
}

#[test]
fn defaults_apply_to_absent_keys() {
    let c = ok("dbs:\n  - path: /data/app.db\n    replicas:\n      - path: /backups/app\n").config;
    assert_eq!((c.addr, c.exec), (None, None));
    assert_eq!(c.logging, LoggingConfig::default());
    let db = &c.dbs[0];
    assert_eq!(db.meta_path, PathBuf::from("/data/.app.db-litestream"));
    assert_eq!(db.monitor_interval, DEFAULT_MONITOR_INTERVAL);
    assert_eq!(db.monitor_interval, secs(1));
    assert_eq!(db.checkpoint_interval, secs(60));
    assert_eq!(
        (db.min_checkpoint_page_count, db.max_checkpoint_page_count),
        (1000, 10_000)
    );
    let r = &db.replicas[0];
    assert_eq!(r.name, "file");
    assert_eq!(r.sync_interval, secs(1));
    assert_eq!(r.snapshot_interval, Duration::ZERO);
    assert_eq!(r.retention, secs(86_400));
    assert_eq!(r.retention_check_interval, secs(3600));
    assert_eq!(r.validation_interval, Duration::ZERO);
    assert_eq!(r.age, AgeConfig::default());
}

#[test]
fn explicit_zero_replaces_default() {
    let c = ok(r#"
dbs:
  - path: /data/app.db
    monitor-interval: 0
    checkpoint-interval: 0s
    max-checkpoint-page-count: 0
    replicas:
      - path: /backups/app
        retention: 0
        retention-check-interval: 0s
        snapshot-interval: 0
        validation-interval: 0
"#)
    .config;
    let db = &c.dbs[0];
    assert_eq!(db.monitor_interval, Duration::ZERO);
    assert_eq!(db.checkpoint_interval, Duration::ZERO);
    assert_eq!(db.max_checkpoint_page_count, 0);
    let r = &db.replicas[0];
    assert_eq!(r.retention, Duration::ZERO);
    assert_eq!(r.retention_check_interval, Duration::ZERO);
}

#[test]
fn retention_check_is_clamped_and_negatives_disable() {
    let c = ok(r#"
dbs:
  - path: /data/app.db
    monitor-interval: -1s
    max-checkpoint-page-count: -5
    replicas:
      - path: /backups/a
        name: a
        retention: 10s
      - path: /backups/b
        name: b
        retention: -1h
        snapshot-interval: -2m
      - path: /backups/c
        name: c
        sync-interval: 5
"#)
    .config;
    let db = &c.dbs[0];
    assert_eq!(
        (db.monitor_interval, db.max_checkpoint_page_count),
        (Duration::ZERO, 0)
    );
    assert_eq!(db.replicas[0].retention_check_interval, secs(10));
    assert_eq!(db.replicas[1].retention, Duration::ZERO);
    assert_eq!(db.replicas[1].snapshot_interval, Duration::ZERO);
    // A bare integer is nanoseconds, as with Go's yaml.v2.
    assert_eq!(db.replicas[2].sync_interval, Duration::from_nanos(5));
}

#[test]
fn env_expansion_of_the_whole_text() {
    let text = "# bucket $BUCKET\ndbs:\n  - path: ${MYDIR}/app.db\n    replicas:\n      - url: s3://$BUCKET/$UNSET/x$$y\n";
    let db = &ok(text).config.dbs[0];
    assert_eq!(db.path, PathBuf::from("/data/app.db"));
    let ReplicaTarget::S3(t) = &db.replicas[0].target else {
        panic!("s3 expected")
    };
    assert_eq!((t.bucket.as_str(), t.path.as_str()), ("env-bucket", "xy"));
}

#[test]
fn expansion_reaches_comments() {
    // An unterminated `${` in a comment eats text, exactly as Go does before parsing.
    let text = "# see ${\ndbs: []\n";
    assert!(ok(text).config.dbs.is_empty());
    let text = "# cost: $\ndbs: []\n";
    assert!(ok(text).config.dbs.is_empty());
}

#[test]
fn no_expand_env_keeps_text_literal() {
    let text = "dbs:\n  - path: ${MYDIR}/a.db\n    replicas:\n      - path: /b/$$x\n";
    let loaded = parse_with_env(text, false, None, &test_env).expect("valid");
    let db = &loaded.config.dbs[0];
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(db.path, cwd.join("${MYDIR}/a.db"));
    assert_eq!(
        db.replicas[0].target,
        ReplicaTarget::File {
            path: "/b/$$x".into()
        }
    );
}

#[test]
fn credentials_flow_from_top_level_then_env() {
    let c = ok(r#"
access-key-id: g-key
secret-access-key: g-secret
dbs:
  - path: /a.db
    replicas:
      - url: s3://b1/p
dbs_unused: 1
"#)
    .config;
    let ReplicaTarget::S3(t) = &c.dbs[0].replicas[0].target else {
        panic!("s3")
    };
    assert_eq!(t.access_key_id.as_deref(), Some("g-key"));
    assert_eq!(t.secret_access_key.as_deref(), Some("g-secret"));

    let c = ok("dbs:\n  - path: /a.db\n    replicas:\n      - url: s3://b1/p\n      - url: abs://acct@c/p\n").config;
    let ReplicaTarget::S3(t) = &c.dbs[0].replicas[0].target else {
        panic!("s3")
    };
    assert_eq!(t.access_key_id.as_deref(), Some("ls-key"));
    assert_eq!(t.secret_access_key.as_deref(), Some("ls-secret"));
    let ReplicaTarget::Abs(a) = &c.dbs[0].replicas[1].target else {
        panic!("abs")
    };
    assert_eq!(a.account_key.as_deref(), Some("ls-az"));
    assert_eq!(a.account_name.as_deref(), Some("acct"));
}

#[test]
fn url_replicas_merge_with_region_endpoint_and_path_style() {
    let c = ok(r#"
dbs:
  - path: /a.db
    replicas:
      - url: s3://bkt.localhost:9000/db
        name: local
        region: eu-central-1
        force-path-style: false
      - url: s3://bkt/db
        name: aws
        endpoint: http://127.0.0.1:9000
      - url: gs://gbkt/x
      - url: file:///backups/x/../y/
"#)
    .config;
    let r = &c.dbs[0].replicas;
    let ReplicaTarget::S3(t) = &r[0].target else {
        panic!("s3")
    };
    assert_eq!(t.region.as_deref(), Some("eu-central-1"));
    assert_eq!(t.endpoint.as_deref(), Some("http://localhost:9000"));
    assert!(t.force_path_style, "provider pattern forces path style");
    let ReplicaTarget::S3(t) = &r[1].target else {
        panic!("s3")
    };
    assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(t.force_path_style, "an endpoint turns path style on");
    assert_eq!(r[2].name, "gcs");
    assert_eq!(
        r[3].target,
        ReplicaTarget::File {
            path: "/backups/y".into()
        }
    );
}

#[test]
fn unknown_keys_are_warnings() {
    let loaded = ok(r#"
adress: ":9090"
logging:
  colour: red
dbs:
  - path: /data/app.db
    monitor-intervall: 1s
    replicas:
      - path: /b
        sync-intervall: 1s
        age:
          identity: x
"#);
    assert_eq!(
        loaded.warnings,
        [
            "unknown key \"adress\" at top level",
            "unknown key \"colour\" in logging",
            "unknown key \"monitor-intervall\" in dbs[0] (db /data/app.db)",
            "unknown key \"sync-intervall\" in dbs[0].replicas[0] (db /data/app.db)",
            "unknown key \"identity\" in dbs[0].replicas[0].age (db /data/app.db)",
        ]
    );
}

#[test]
fn logging_levels() {
    let cases = [
        ("debug", LogLevel::Debug),
        ("Info", LogLevel::Info),
        ("WARN", LogLevel::Warn),
        ("warning", LogLevel::Warn),
        ("error", LogLevel::Error),
        ("trace", LogLevel::Info),
        ("", LogLevel::Info),
    ];
    for (text, want) in cases {
        assert_eq!(LogLevel::parse_lenient(text), want, "{text}");
        let c = ok(&format!("logging:\n  level: \"{text}\"\n")).config;
        assert_eq!(c.logging.level, want, "{text}");
    }
    assert!(!ok("logging:\n  type: text\n").config.logging.json);
}

#[test]
fn empty_documents_are_empty_configs() {
    for text in ["", "# only a comment\n", "dbs:\n", "dbs: []\n"] {
        let c = ok(text).config;
        assert!(c.dbs.is_empty(), "{text:?}");
    }
}

#[test]
fn invalid_cases_have_exact_messages() {
    let db = "dbs:\n  - path: /data/app.db\n    replicas:\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{db}      - path: /b\n      - url: s3://bkt/x\n        sync-interval: 1d\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[1] \"s3\": sync-interval: invalid duration \"1d\"",
        ),
        (
            format!("{db}      - url: ftp://host/x\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"ftp\": url: unknown replica url scheme \"ftp\" in ftp://host/x (supported: file, s3, gcs, abs)",
        ),
        (
            format!("{db}      - url: s3://bad host/x\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"s3\": url: invalid replica url s3://bad host/x: invalid character ' ' in host name",
        ),
        (
            format!("{db}      - url: sftp://u:pw@host/x\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"sftp\": sftp replicas are not supported by walstream: sftp://u@host/x",
        ),
        (
            format!("{db}      - type: sftp\n        host: h\n        user: u\n        path: /x\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"sftp\": sftp replicas are not supported by walstream: sftp://u@h/x",
        ),
        (
            format!("{db}      - bucket: foo\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": replica has neither \"url\" nor \"path\" (without \"type\" it is a file replica)",
        ),
        (
            format!("{db}      - {{}}\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": empty replica: set \"url\", or \"type\" with its settings",
        ),
        (
            format!("{db}      - type: file\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": file replica path required",
        ),
        (
            format!("{db}      - type: s3\n        path: x\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"s3\": bucket required for s3 replica",
        ),
        (
            format!("{db}      - url: s3://bkt/x\n        path: y\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"s3\": cannot specify url & path for s3 replica",
        ),
        (
            format!("{db}      - url: gcs://bkt/x\n        bucket: y\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"gcs\": cannot specify url & bucket for gcs replica",
        ),
        (
            format!("{db}      - url: file:///x\n        path: /y\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": cannot specify url & path for file replica",
        ),
        (
            format!("{db}      - path: s3://bkt/x\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": path: replica path cannot be a url, please use the 'url' field instead: s3://bkt/x",
        ),
        (
            format!("{db}      - url: /data/replica\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": url: replica url scheme required: /data/replica",
        ),
        (
            format!("{db}      - path: /a\n      - path: /b\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): duplicate replica name: \"file\"",
        ),
        (
            format!("{db}      - type: x\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"x\": type: unknown replica type in config: \"x\"",
        ),
        (
            "dbs:\n  - replicas: []\n".to_string(),
            "config /etc/litestream.yml: dbs[0]: missing required key \"path\" (or \"dir\")",
        ),
        (
            "dbs:\n  - path: /data/app.db\n    min-checkpoint-page-count: 0\n".to_string(),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): min-checkpoint-page-count: must be greater than 0, got 0",
        ),
        (
            "logging:\n  type: yaml\n".to_string(),
            "config /etc/litestream.yml: logging.type: unsupported log type \"yaml\" (expected \"text\" or \"json\")",
        ),
        (
            "addr: localhost\n".to_string(),
            "config /etc/litestream.yml: addr: must specify port for bind address: \"localhost\"",
        ),
        (
            "addr: \"localhost:\"\n".to_string(),
            "config /etc/litestream.yml: addr: must specify port for bind address: \"localhost:\"",
        ),
        (
            format!("{db}      - path: /b\n        skip-verify: maybe\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": skip-verify: invalid bool \"maybe\"",
        ),
        (
            "logging:\n  stderr: \"true\"\n".to_string(),
            "config /etc/litestream.yml: logging.stderr: invalid bool \"true\"",
        ),
        (
            format!("{db}      - path: /b\n        sync-interval: 0s\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": sync-interval: must be greater than 0",
        ),
        (
            format!("{db}      - path: /b\n        retention-check-interval: 0\n"),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": retention-check-interval: must be greater than 0 when retention is enabled",
        ),
        (
            format!(
                "{db}      - path: /b\n        age:\n          identities: [\"AGE-SECRET-KEY-1GQ9778VQXMMJVE8SK7J6VT8UJ4HDQAJUVSFCWCM02D8GEWQ72PVQ2Y5J33\", \"secret-not-a-key\"]\n"
            ),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": age.identities[1]: malformed age identity at line 1 (expected \"AGE-SECRET-KEY-1…\"): invalid Bech32 encoding",
        ),
        (
            format!(
                "{db}      - path: /b\n        age:\n          recipients: [\"# only a comment\"]\n"
            ),
            "config /etc/litestream.yml: dbs[0] (/data/app.db): replicas[0] \"file\": age.recipients[0]: no age recipient found",
        ),
        (
            "dbs:\n  - path: /a.db\n  - path: /x/../a.db\n".to_string(),
            "config /etc/litestream.yml: dbs[1] (/a.db): duplicate database path (also dbs[0])",
        ),
        (
            "dbs: /a.db\n".to_string(),
            "config /etc/litestream.yml: dbs: expected a list, found a string",
        ),
        (
            "dbs:\n  - path: /a.db\n    monitor-interval: [1s]\n".to_string(),
            "config /etc/litestream.yml: dbs[0] (/a.db): monitor-interval: invalid duration: found a list",
        ),
        (
            "- a\n".to_string(),
            "config /etc/litestream.yml: expected a mapping, found a list",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(&text), want, "config text:\n{text}");
    }
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let e =
        parse("dbs:\n  - path: /a.db\n    replicas:\n      - path: [/tmp/r\n").expect_err("bad");
    let ConfigError::Yaml { line, column, .. } = &e else {
        panic!("yaml error, got {e}")
    };
    assert!(*line >= 4, "line {line}");
    assert!(*column > 0);
    let text = e.to_string();
    assert!(
        text.starts_with("config /etc/litestream.yml: malformed YAML at line "),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");

    let e = parse("dbs:\n\t- path: x\n").expect_err("tab");
    assert!(e.to_string().contains("malformed YAML at line 2"), "{e}");
}

#[test]
fn load_reads_files_and_reports_missing_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.yml");
    let e = load(&missing, true).expect_err("missing");
    assert!(matches!(&e, ConfigError::NotFound(p) if *p == missing));
    assert_eq!(
        e.to_string(),
        format!("config file not found: {}", missing.display())
    );

    let file = dir.path().join("c.yml");
    std::fs::write(
        &file,
        "dbs:\n  - path: /data/app.db\n    replicas:\n      - path: /b\n",
    )
    .expect("write");
    let loaded = load(&file, false).expect("valid file");
    assert_eq!(loaded.config.source.as_deref(), Some(file.as_path()));
    assert_eq!(loaded.config.dbs.len(), 1);

    std::fs::write(&file, "addr: x\n").expect("write");
    let e = load(&file, false).expect_err("bad addr");
    assert!(
        e.to_string()
            .starts_with(&format!("config {}: addr: ", file.display())),
        "{e}"
    );
}

#[test]
fn config_path_resolution() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    };
    let exists = |p: &Path| p == Path::new("/etc/walstream.yml");
    let never = |_: &Path| false;
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            resolve_config_path(
                env(&[
                    ("WALSTREAM_CONFIG", "/w.yml"),
                    ("LITESTREAM_CONFIG", "/l.yml"),
                ]),
                exists,
            ),
            "/w.yml",
        ),
        (
            resolve_config_path(
                env(&[("WALSTREAM_CONFIG", ""), ("LITESTREAM_CONFIG", "/l.yml")]),
                exists,
            ),
            "/l.yml",
        ),
        (
            resolve_config_path(env(&[("LITESTREAM_CONFIG", "")]), exists),
            "/etc/walstream.yml",
        ),
        (resolve_config_path(env(&[]), never), "/etc/litestream.yml"),
    ];
    for (got, want) in cases {
        assert_eq!(got, PathBuf::from(want));
    }
}

#[test]
fn url_mode_replicas_and_configs() {
    let r = replica_from_url_with_env("s3://bkt/db", &test_env).expect("s3");
    assert_eq!(r.name, "s3");
    assert_eq!(r.sync_interval, DEFAULT_SYNC_INTERVAL);
    assert_eq!(r.retention, DEFAULT_RETENTION);
    let ReplicaTarget::S3(t) = &r.target else {
        panic!("s3")
    };
    assert_eq!(t.access_key_id.as_deref(), Some("ls-key"));
    let r = replica_from_url_with_env("gs://g/x", &test_env).expect("gcs");
    assert_eq!(r.name, "gcs");
    let ReplicaTarget::Gcs(t) = &r.target else {
        panic!("gcs")
    };
    assert_eq!(t.emulator_host.as_deref(), Some("http://127.0.0.1:4443"));

    let c = config_for_urls("/data/app.db", ["file:///b1", "s3://bkt/x"]).expect("two types");
    assert_eq!(c.dbs[0].path, PathBuf::from("/data/app.db"));
    assert_eq!(c.dbs[0].replicas.len(), 2);
    let e = config_for_urls("/data/app.db", ["file:///b1", "file:///b2"]).expect_err("dup");
    assert_eq!(e.to_string(), "duplicate replica name: \"file\"");
}

#[test]
fn db_lookup_normalises_paths() {
    let home = std::env::home_dir().expect("home");
    let text = format!(
        "dbs:\n  - path: ~/app.db\n  - path: {}/x/../b.db\n",
        home.display()
    );
    let c = ok(&text).config;
    assert!(c.db_by_path(&home.join("app.db")).is_some());
    assert!(c.db_by_path(Path::new("~/app.db")).is_some());
    assert_eq!(
        c.db_by_path(Path::new("~/b.db")).map(|d| d.path.clone()),
        Some(home.join("b.db"))
    );
    assert!(c.db_by_path(Path::new("/elsewhere/app.db")).is_none());
    assert_eq!(c.dbs[0].replica("nope").map(|r| r.name.clone()), None);
}

#[test]
fn example_configs_all_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config/ directory exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let loaded = parse_with_env(&text, true, Some(&path), &test_env)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            loaded.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            loaded.warnings
        );
        assert!(
            !loaded.config.dbs.is_empty(),
            "{} has databases",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 6, "expected the six example configs, found {seen}");
}

#[test]
fn http_keys_defaults_env_token_and_validation() {
    let c = ok("addr: \":9090\"\n").config;
    assert_eq!(c.http, HttpConfig::default());
    assert_eq!(c.http.readiness_max_lag, DEFAULT_READINESS_MAX_LAG);
    assert_eq!(c.http.readiness_max_lag, secs(60));
    assert_eq!(
        (c.http.token.as_deref(), c.http.protect_reads),
        (None, false)
    );

    let c = ok("readiness-max-lag: 5s\nhttp-token: s3cret\nhttp-protect-reads: true\n").config;
    assert_eq!(c.http.readiness_max_lag, secs(5));
    assert_eq!(c.http.token.as_deref(), Some("s3cret"));
    assert!(c.http.protect_reads);
    assert!(
        !format!("{:?}", c.http).contains("s3cret"),
        "Debug leaks the token"
    );

    // The environment supplies the token only when the key is absent or empty.
    let env = |name: &str| (name == HTTP_TOKEN_ENV).then(|| "from-env".to_string());
    let from_env = |text: &str| {
        parse_with_env(text, true, Some(Path::new(SRC)), &env)
            .expect("valid")
            .config
            .http
            .token
    };
    assert_eq!(from_env("addr: \":1\"\n").as_deref(), Some("from-env"));
    assert_eq!(from_env("http-token: \"\"\n").as_deref(), Some("from-env"));
    assert_eq!(from_env("http-token: mine\n").as_deref(), Some("mine"));

    assert_eq!(
        err("http-protect-reads: true\n"),
        "config /etc/litestream.yml: http-protect-reads: needs http-token (or WALSTREAM_HTTP_TOKEN) to be set"
    );
    assert!(err("readiness-max-lag: 1d\n").contains("readiness-max-lag"));
}

#[test]
fn cors_origins_are_validated_normalised_and_named_in_errors() {
    assert!(ok("addr: \":9090\"\n").config.http.cors_origins.is_empty());
    let c = ok(concat!(
        "http-cors-origins:\n",
        "  - https://Admin.Example.com\n",
        "  - http://localhost:3000\n",
        "  - https://admin.example.com:443\n",
    ))
    .config;
    assert_eq!(
        c.http.cors_origins,
        ["https://admin.example.com", "http://localhost:3000"]
    );
    // One string (what `${VAR}` gives): comma-separated.
    let c = ok("http-cors-origins: \"https://a.example, http://b.example:8080\"\n").config;
    assert_eq!(
        c.http.cors_origins,
        ["https://a.example", "http://b.example:8080"]
    );
    let cases = [
        (
            "http-cors-origins:\n  - https://a.example\n  - \"*\"\n",
            "http-cors-origins[1]: \"*\" is not accepted",
        ),
        (
            "http-cors-origins: \"*\"\n",
            "http-cors-origins: \"*\" is not accepted",
        ),
        (
            "http-cors-origins:\n  - https://a.example/admin\n",
            "http-cors-origins[0]: \"https://a.example/admin\" is not an origin: want scheme://host[:port] with scheme http or https and no path",
        ),
        (
            "http-cors-origins:\n  - a.example\n",
            "http-cors-origins[0]: \"a.example\" is not an origin",
        ),
        (
            "http-cors-origins:\n  - 3\n",
            "http-cors-origins[0]: expected a string, found a number",
        ),
        (
            "http-cors-origins: {a: b}\n",
            "http-cors-origins: expected a string",
        ),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(
            e.starts_with(&format!("config /etc/litestream.yml: {want}")),
            "{text}: {e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn backups_keys_defaults_validation_and_unknown_keys() {
    let loaded = ok(
        "dbs:\n  - path: /data/app.db\n  - path: /data/b.db\n    backups:\n      path: /bk/b\n      retain: 3\n      pre-restore-retain: 1\n      keep: 9\n",
    );
    let dbs = &loaded.config.dbs;
    assert_eq!(
        dbs[0].backups,
        BackupsConfig {
            path: PathBuf::from("/data/backups/app.db"),
            retain: DEFAULT_BACKUPS_RETAIN,
            pre_restore_retain: DEFAULT_PRE_RESTORE_RETAIN,
            retention: BackupRetention::default(),
            schedule: None,
            max_upload_size: DEFAULT_MAX_UPLOAD_SIZE,
            drill_interval: None,
        }
    );
    assert_eq!(
        (dbs[1].backups.path.as_path(), dbs[1].backups.retain),
        (Path::new("/bk/b"), 3)
    );
    assert_eq!(dbs[1].backups.pre_restore_retain, 1);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.starts_with("unknown key \"keep\" in dbs[1] (/data/b.db): backups")),
        "{:?}",
        loaded.warnings
    );
    for bad in ["retain: 0", "pre-restore-retain: -1", "retain: \"2\""] {
        let text = format!("dbs:\n  - path: /data/app.db\n    backups:\n      {bad}\n");
        let e = err(&text);
        assert!(e.contains("dbs[0] (/data/app.db): backups."), "{e}");
    }
}

#[test]
fn two_databases_never_share_a_replica_location() {
    let two = |first: &str, second: &str| {
        format!(
            "dbs:\n  - path: /data/a.db\n    replicas:\n{first}  - path: /data/b.db\n    replicas:\n{second}"
        )
    };
    let conflict = |location: &str, slot_a: &str, slot_b: &str| {
        format!(
            "config /etc/litestream.yml: dbs[1] (/data/b.db): {slot_b}: same replica location \
             {location} as dbs[0] (/data/a.db) {slot_a} (one writer per replica location)"
        )
    };
    let cases = [
        // File paths differing only by `./`, `..` and a trailing slash, as `path` and as URL.
        (
            "      - path: /backups/./shared/\n",
            "      - name: disk\n        url: file:///backups/x/../shared\n",
            conflict(
                "file:///backups/shared",
                "replicas[0] \"file\"",
                "replicas[0] \"disk\"",
            ),
        ),
        // S3: the same bucket and path, as URL and as keys (slashes cleaned).
        (
            "      - url: s3://bkt/db/app\n",
            "      - name: copy\n        type: s3\n        bucket: bkt\n        path: db//app/\n",
            conflict(
                "s3://bkt/db/app",
                "replicas[0] \"s3\"",
                "replicas[0] \"copy\"",
            ),
        ),
    ];
    for (first, second, want) in cases {
        assert_eq!(err(&two(first, second)), want);
    }
    // The endpoint is part of the location, shown without user info; any replica of the later
    // database is compared.
    let text = two(
        "      - type: s3\n        bucket: bkt\n        path: app\n        endpoint: http://k:pw@127.0.0.1:9000\n",
        "      - path: /backups/b\n      - name: again\n        url: s3://bkt/app?endpoint=http://127.0.0.1:9000\n",
    );
    let e = err(&text);
    let want = conflict(
        "s3://bkt/app?endpoint=127.0.0.1:9000",
        "replicas[0] \"s3\"",
        "replicas[1] \"again\"",
    );
    assert_eq!(e, want);
    assert!(!e.contains("pw"), "{e}");
}

#[test]
fn distinct_replica_locations_load() {
    let cases = [
        // Nested file paths share no object (`<path>/generations/…`).
        ("      - path: /backups\n", "      - path: /backups/b\n"),
        (
            "      - url: s3://bkt/app\n",
            "      - url: s3://other/app\n",
        ),
        (
            "      - url: s3://bkt/app\n",
            "      - url: s3://bkt/app2\n",
        ),
        ("      - url: s3://bkt/app\n", "      - url: gs://bkt/app\n"),
        (
            "      - url: s3://bkt/app\n",
            "      - url: s3://bkt/app?endpoint=http://127.0.0.1:9000\n",
        ),
    ];
    for (a, b) in cases {
        let text = format!(
            "dbs:\n  - path: /data/a.db\n    replicas:\n{a}  - path: /data/b.db\n    replicas:\n{b}"
        );
        assert_eq!(ok(&text).config.dbs.len(), 2, "{text}");
    }
    // Two replicas of one database may share a location (both upload the same generation,
    // e.g. one with working and one with wrong credentials): the rule is per database.
    let text = "dbs:\n  - path: /data/a.db\n    replicas:\n      - path: /backups/a\n      - name: twin\n        path: /backups/a/\n";
    assert_eq!(ok(text).config.dbs[0].replicas.len(), 2);
    // A directory entry's replicas are `<base>/<relative path>`: checked when a database is
    // discovered, not at load.
    let text = "dbs:\n  - path: /data/a.db\n    replicas:\n      - path: /backups/t/x.db\n  - dir: /data/t\n    pattern: \"*.db\"\n    replicas:\n      - path: /backups/t\n";
    assert_eq!(ok(text).config.dirs.len(), 1);
}

#[test]
fn backups_schedule_and_tiered_retention() {
    let loaded = ok(
        "dbs:\n  - path: /data/app.db\n    backups:\n      pre-restore-retain: 2\n      schedule:\n        interval: 6h\n        at: [\"23:30\", \"03:00\", \"03:00\"]\n        jitter: 30s\n        labels: {env: prod, tier: 1}\n      retention:\n        scheduled: {keep-last: 3, keep-daily: 7, keep-weekly: 4, keep-monthly: 3}\n        manual: {keep-last: 4, keep-yearly: 2}\n",
    );
    let b = &loaded.config.dbs[0].backups;
    let schedule = b.schedule.as_ref().expect("schedule");
    assert_eq!(schedule.interval, Some(Duration::from_secs(6 * 3600)));
    assert_eq!(schedule.at, vec![180, 23 * 60 + 30]);
    assert_eq!(schedule.jitter, Some(Duration::from_secs(30)));
    let labels: Vec<(&str, &str)> = schedule
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("env", "prod"), ("tier", "1")]);
    let scheduled = KeepPolicy {
        last: 3,
        daily: 7,
        weekly: 4,
        monthly: 3,
        ..KeepPolicy::default()
    };
    assert_eq!(b.scheduled_policy(), scheduled);
    let manual = KeepPolicy {
        last: 4,
        yearly: 2,
        ..KeepPolicy::default()
    };
    assert_eq!(b.manual_policy(), manual);
    assert_eq!(b.pre_restore_policy(), KeepPolicy::keep_last(2));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let plain = ok("dbs:\n  - path: /data/app.db\n");
    let b = &plain.config.dbs[0].backups;
    assert_eq!(b.schedule, None);
    assert_eq!(
        b.scheduled_policy(),
        KeepPolicy::keep_last(DEFAULT_SCHEDULED_KEEP_LAST)
    );
    assert_eq!(
        b.uploaded_policy(),
        KeepPolicy::keep_last(DEFAULT_UPLOADED_KEEP_LAST)
    );
    assert_eq!(b.max_upload_size, DEFAULT_MAX_UPLOAD_SIZE);
    let up = ok(
        "dbs:\n  - path: /data/app.db\n    backups:\n      max-upload-size: 64MiB\n      retention: {uploaded: {keep-last: 2}}\n",
    );
    let b = &up.config.dbs[0].backups;
    assert_eq!(b.max_upload_size, 64 << 20);
    assert_eq!(b.uploaded_policy(), KeepPolicy::keep_last(2));
    for (bad, said) in [
        (
            "max-upload-size: 512",
            "backups.max-upload-size: must be at least 1KiB",
        ),
        (
            "max-upload-size: 1 potato",
            "backups.max-upload-size: \"1 potato\" is not a size",
        ),
        (
            "schedule: {labels: {a: b}}",
            "backups.schedule: needs an interval",
        ),
        (
            "schedule: {interval: 500ms}",
            "backups.schedule.interval: must be at least 1s",
        ),
        (
            "schedule: {at: [\"3:00\"]}",
            "backups.schedule.at[0]: \"3:00\" is not a UTC time",
        ),
        (
            "schedule: {interval: 1h, jitter: -1s}",
            "backups.schedule.jitter: must not be negative",
        ),
        (
            "retention: {scheduled: {keep-daily: 0}}",
            "backups.retention.scheduled: keeps nothing",
        ),
        (
            "retention: {manual: {keep-last: -1}}",
            "backups.retention.manual.keep-last: must be in",
        ),
        (
            "{retain: 3, retention: {manual: {keep-last: 2}}}",
            "backups.retain: give either retain or retention.manual",
        ),
    ] {
        let text = if bad.starts_with('{') {
            format!("dbs:\n  - path: /data/app.db\n    backups: {bad}\n")
        } else {
            format!("dbs:\n  - path: /data/app.db\n    backups:\n      {bad}\n")
        };
        let e = err(&text);
        assert!(e.contains(said), "{bad}: {e}");
        assert!(e.contains("dbs[0] (/data/app.db): "), "{e}");
    }
}

#[test]
fn drill_interval_is_a_duration_of_at_least_a_second_or_off() {
    let loaded = ok(
        "dbs:\n  - path: /data/a.db\n    backups:\n      drill-interval: 6h\n  - path: /data/b.db\n    backups:\n      drill-interval: 0s\n",
    );
    let dbs = &loaded.config.dbs;
    assert_eq!(
        dbs[0].backups.drill_interval,
        Some(std::time::Duration::from_secs(6 * 3600))
    );
    assert_eq!(dbs[1].backups.drill_interval, None);
    let e = err("dbs:\n  - path: /data/a.db\n    backups:\n      drill-interval: 500ms\n");
    assert!(
        e.contains("drill-interval") && e.contains("at least 1s"),
        "{e}"
    );
}
