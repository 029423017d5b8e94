//! Tests of directory entries (`dir`, `pattern`, `recursive`, `watch`): every refused
//! combination with its exact one-line message, the pattern rules of `DirConfig::matches`, and
//! the per-database configs `DirConfig::db_config` derives.

use std::path::{Path, PathBuf};

use super::*;

const SRC: &str = "/etc/litestream.yml";

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    parse_with_env(text, false, Some(Path::new(SRC)), &|_| None)
}

fn dir_entry(text: &str) -> DirConfig {
    let loaded = parse(text).unwrap_or_else(|e| panic!("expected valid config, got: {e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(loaded.config.dbs.is_empty());
    loaded
        .config
        .dirs
        .into_iter()
        .next()
        .expect("one dir entry")
}

#[test]
fn refused_combinations_name_file_entry_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "dbs:\n  - path: /d/a.db\n    dir: /d\n    pattern: '*.db'\n",
            "config /etc/litestream.yml: dbs[0] (/d/a.db): dir: cannot be used with \"path\": an entry is one database (\"path\") or a directory of databases (\"dir\")",
        ),
        (
            "dbs:\n  - dir: /d\n",
            "config /etc/litestream.yml: dbs[0] (dir /d): pattern: required with \"dir\" (e.g. pattern: \"*.db\")",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    pattern: '*.db'\n",
            "config /etc/litestream.yml: dbs[0] (/d/a.db): pattern: only allowed with \"dir\" (a directory of databases)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    recursive: true\n",
            "config /etc/litestream.yml: dbs[0] (/d/a.db): recursive: only allowed with \"dir\" (a directory of databases)",
        ),
        (
            "dbs:\n  - path: /d/a.db\n    watch: false\n",
            "config /etc/litestream.yml: dbs[0] (/d/a.db): watch: only allowed with \"dir\" (a directory of databases)",
        ),
        (
            "dbs:\n  - dir: /d\n    pattern: '[a'\n",
            "config /etc/litestream.yml: dbs[0] (dir /d): pattern: invalid pattern \"[a\": unclosed character class \"[\"",
        ),
        (
            "dbs:\n  - dir: /d\n    pattern: '*.db'\n    recursive: maybe\n",
            "config /etc/litestream.yml: dbs[0] (dir /d): recursive: invalid bool \"maybe\"",
        ),
        (
            "dbs:\n  - dir: /d\n    pattern: '*.db'\n  - dir: /x/../d/\n    pattern: '*.sqlite'\n",
            "config /etc/litestream.yml: dbs[1] (dir /d): duplicate directory (also dbs[0])",
        ),
        (
            "dbs:\n  - dir: /d\n    pattern: '*.db'\n    replicas:\n      - type: s3\n        path: x\n",
            "config /etc/litestream.yml: dbs[0] (dir /d): replicas[0] \"s3\": bucket required for s3 replica",
        ),
        (
            "dbs:\n  - {}\n",
            "config /etc/litestream.yml: dbs[0]: missing required key \"path\" (or \"dir\")",
        ),
    ];
    for (text, want) in cases {
        match parse(text) {
            Ok(c) => panic!("expected an error for:\n{text}\ngot {:?}", c.config),
            Err(e) => assert_eq!(e.to_string(), *want, "config text:\n{text}"),
        }
        assert!(!want.contains('\n'));
    }
}

#[test]
fn dir_entry_keys_and_defaults() {
    let d = dir_entry("dbs:\n  - dir: /data/tenants/\n    pattern: '*.db'\n");
    assert_eq!(d.dir, PathBuf::from("/data/tenants"));
    assert_eq!(d.pattern, "*.db");
    assert!(!d.recursive && !d.watch);
    assert_eq!(d.meta_base, None);
    let d = dir_entry(
        "dbs:\n  - dir: /data\n    pattern: '*.db'\n    recursive: true\n    watch: true\n    monitor-interval: 5s\n",
    );
    assert!(d.recursive && d.watch);
    assert_eq!(
        d.template.monitor_interval,
        std::time::Duration::from_secs(5)
    );
}

fn tenants(recursive: bool) -> DirConfig {
    let mut d = DirConfig::new(
        PathBuf::from("/data/t"),
        "*.db",
        DbConfig::with_defaults("/data/t"),
    )
    .expect("valid pattern");
    d.recursive = recursive;
    d
}

#[test]
fn matches_by_file_name_and_depth() {
    let flat = tenants(false);
    let deep = tenants(true);
    let cases: &[(&str, bool, bool)] = &[
        // (path, flat, recursive)
        ("/data/t/a.db", true, true),
        ("/data/t/x/a.db", false, true),
        ("/data/t/x/y/z/a.db", false, true),
        ("/data/t/a.sqlite", false, false),
        ("/data/t/a.db-wal", false, false),
        ("/data/t/a.db-shm", false, false),
        ("/data/t/a.db-journal", false, false),
        ("/data/t/.a.db-litestream/x.db", false, false),
        ("/data/t/x/.a.db-litestream/generations/y.db", false, false),
        ("/data/t/backups/a.db/20240101.db", false, false),
        ("/data/t/x/backups/a.db/1.db", false, false),
        // A tenant folder that happens to be called "backups" is still scanned.
        ("/data/t/backups/tenant/a.db", false, true),
        ("/data/t/backups/a.db", false, true),
        ("/data/t", false, false),
        ("/data/tx/a.db", false, false),
        ("/other/a.db", false, false),
    ];
    for (path, want_flat, want_deep) in cases {
        assert_eq!(flat.matches(Path::new(path)), *want_flat, "flat {path}");
        assert_eq!(
            deep.matches(Path::new(path)),
            *want_deep,
            "recursive {path}"
        );
    }
    assert!(deep.matches_relative("x/a.db"));
    assert!(!deep.matches_relative("x/../a.db"));
    assert!(!deep.matches_relative("/a.db"));
}

#[test]
fn derived_configs_of_file_and_object_replicas() {
    let d = dir_entry(
        r#"
dbs:
  - dir: /data/t
    pattern: "*.db"
    recursive: true
    checkpoint-interval: 2m
    backups:
      retain: 3
    replicas:
      - path: /backup/t
      - url: s3://bkt/fleet/
      - name: bare
        type: s3
        bucket: bkt2
      - type: gcs
        bucket: g
        path: a//b
      - type: abs
        bucket: c
        account-name: acct
        path: p
"#,
    );
    assert_eq!(
        d.db_config(Path::new("/data/other/a.db")).map(|c| c.path),
        None
    );
    assert!(d.db_config(Path::new("/data/t/a.db-wal")).is_none());

    let db = d
        .db_config(Path::new("/data/t/eu/acme/app.db"))
        .expect("matches");
    assert_eq!(db.path, PathBuf::from("/data/t/eu/acme/app.db"));
    assert_eq!(
        db.meta_path,
        PathBuf::from("/data/t/eu/acme/.app.db-litestream")
    );
    assert_eq!(
        db.backups.path,
        PathBuf::from("/data/t/eu/acme/backups/app.db")
    );
    assert_eq!(db.backups.retain, 3);
    assert_eq!(db.checkpoint_interval, std::time::Duration::from_secs(120));
    let names: Vec<&str> = db.replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["file", "s3", "bare", "gcs", "abs"]);
    let paths: Vec<String> = db
        .replicas
        .iter()
        .map(|r| match &r.target {
            ReplicaTarget::File { path } => path.display().to_string(),
            ReplicaTarget::S3(t) => format!("s3 {}:{}", t.bucket, t.path),
            ReplicaTarget::Gcs(t) => format!("gcs {}:{}", t.bucket, t.path),
            ReplicaTarget::Abs(t) => format!("abs {}:{}", t.bucket, t.path),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/backup/t/eu/acme/app.db",
            "s3 bkt:fleet/eu/acme/app.db",
            "s3 bkt2:eu/acme/app.db",
            "gcs g:a/b/eu/acme/app.db",
            "abs c:p/eu/acme/app.db",
        ]
    );
    // The template itself is untouched.
    assert_eq!(
        d.template.replicas[0].target,
        ReplicaTarget::File {
            path: PathBuf::from("/backup/t")
        }
    );
}

#[test]
fn meta_and_backups_bases_give_each_database_its_own_folder() {
    let d = dir_entry(
        "dbs:\n  - dir: /data/t\n    pattern: '*.db'\n    recursive: true\n    meta-path: /var/lib/ws\n    backups:\n      path: /var/backups/ws\n",
    );
    let a = d.db_config(Path::new("/data/t/a.db")).expect("a");
    let b = d.db_config(Path::new("/data/t/x/a.db")).expect("x/a");
    assert_eq!(a.meta_path, PathBuf::from("/var/lib/ws/.a.db-litestream"));
    assert_eq!(b.meta_path, PathBuf::from("/var/lib/ws/x/.a.db-litestream"));
    assert_eq!(a.backups.path, PathBuf::from("/var/backups/ws/a.db"));
    assert_eq!(b.backups.path, PathBuf::from("/var/backups/ws/x/a.db"));
}

#[test]
fn explicit_dbs_and_dirs_coexist() {
    let loaded = parse("dbs:\n  - path: /data/app.db\n  - dir: /data/t\n    pattern: '*.db'\n")
        .expect("valid");
    let c = loaded.config;
    assert_eq!(c.dbs.len(), 1);
    assert_eq!(c.dirs.len(), 1);
    assert!(c.dir_by_path(Path::new("/data/t/")).is_some());
    assert!(c.dir_by_path(Path::new("/data/app.db")).is_none());
}
