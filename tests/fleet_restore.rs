//! Bulk restore of a directory entry (`walstream restore -config CFG [-o OUTDIR] DIR`) on the
//! real binary, on the file backend and on S3 (moto):
//! - several databases in nested folders, each with its own content, are replicated by
//!   `walstream replicate` from explicit `dbs[]` entries whose replica paths are the ones a
//!   directory entry derives (`<replica>/<rel>`, `<prefix>/<rel>`); then the source directory
//!   is deleted;
//! - the bulk restore finds them by listing the replica, restores each to `OUTDIR/<rel>` (or
//!   `DIR/<rel>`) equal to its own source with `PRAGMA integrity_check` = ok, skips a replicated
//!   database outside the pattern (and below the top level when not recursive), skips existing
//!   outputs with `-if-db-not-exists`, and with one database's replica damaged restores the
//!   others, prints that database's error line and exits non-zero without leaving a file;
//! - a bad directory entry fails the command with one line naming file, entry and key, and
//!   writes nothing.
//!
//! Needs the servers of `scripts/test.sh` for S3 (`WALSTREAM_TEST_*`).

mod common;
#[path = "replicate_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};

use common::{Backend, walstream_bin};
use support::workload::{Content, Site, app, content};
use support::*;
use walstream::config::{ReplicaTarget, S3Target};
use walstream::storage::ReplicaClient;

/// Databases matching `*.db` (recursive), at three depths.
const DBS: [&str; 3] = ["a.db", "eu/b.db", "eu/acme/c.db"];
/// Replicated too, but outside the pattern: never restored.
const OUTSIDE: &str = "notes.sqlite";

struct Fleet {
    site: Site,
    sources: BTreeMap<&'static str, Content>,
}

impl std::ops::Deref for Fleet {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl Fleet {
    fn new(backend: Backend) -> Fleet {
        Fleet {
            site: Site::new(backend, "fleet"),
            sources: BTreeMap::new(),
        }
    }

    fn root(&self) -> PathBuf {
        self.site.path()
    }

    /// The directory of the directory entry.
    fn data(&self) -> PathBuf {
        self.root().join("data")
    }

    fn replica_root(&self) -> PathBuf {
        self.root().join("replica")
    }

    /// The replica list item for `rel` ("" = the entry's base location).
    fn replica_item(&self, rel: &str) -> String {
        let prefix = match rel {
            "" => self.prefix.clone(),
            rel => format!("{}/{rel}", self.prefix),
        };
        let file_dir = match rel {
            "" => self.replica_root(),
            rel => self.replica_root().join(rel),
        };
        self.backend.replica_list_item(&prefix, &file_dir, 6)
    }

    /// Explicit entries, one per database, with the replica paths a directory entry derives.
    fn explicit_config(&self) -> String {
        let mut text = String::from("dbs:\n");
        for rel in DBS.iter().chain([&OUTSIDE]) {
            text += &format!(
                "  - path: {}\n    monitor-interval: 50ms\n    replicas:\n{}        sync-interval: 100ms\n",
                self.data().join(rel).display(),
                self.replica_item(rel)
            );
        }
        self.write("explicit.yml", &text)
    }

    /// One directory entry over [`Self::data`].
    fn dir_config(&self, name: &str, recursive: bool) -> String {
        let text = format!(
            "dbs:\n  - dir: {}\n    pattern: \"*.db\"\n    recursive: {recursive}\n    replicas:\n{}",
            self.data().display(),
            self.replica_item("")
        );
        self.write(name, &text)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.root().join(name);
        std::fs::write(&path, text).expect("write config");
        path.display().to_string()
    }

    /// Creates every database with content of its own (different row counts and ids).
    fn create_sources(&mut self) {
        for (i, rel) in DBS.iter().chain([&OUTSIDE]).enumerate() {
            let path = self.data().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            let c = app(&path);
            let first = (i as i64 + 1) * 1000;
            for id in first..first + 20 + 7 * i as i64 {
                insert(&c, id);
            }
            drop(c);
            self.sources.insert(rel, content(&path));
        }
    }

    /// Replicates every database until each restores (single-database restore) to its source,
    /// then stops walstream.
    fn replicate(&self) {
        let config = self.explicit_config();
        let env = self.backend.env_for_walstream();
        let proc = walstream_env(&self.root(), &["-config", &config], &env);
        for (n, (rel, want)) in self.sources.iter().enumerate() {
            let probe = self.root().join(format!("probe-{n}.db"));
            let db = self.data().join(rel).display().to_string();
            poll_until(DEADLINE, &format!("{rel} to be replicated"), || {
                let _ = std::fs::remove_file(&probe);
                let ok = Command::new(walstream_bin())
                    .args([
                        "restore",
                        "-integrity-check",
                        "none",
                        "-config",
                        &config,
                        "-o",
                    ])
                    .arg(&probe)
                    .arg(&db)
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .output()
                    .expect("run restore")
                    .status
                    .success();
                ok && content(&probe) == *want
            });
        }
        proc.stop();
    }

    /// `walstream restore -config CONFIG ARGS… DATA` (must exit as `success` says).
    fn bulk(&self, config: &str, args: &[&str], success: bool) -> Output {
        let mut cmd = Command::new(walstream_bin());
        cmd.args(["restore", "-config", config])
            .args(args)
            .arg(self.data())
            .envs(self.backend.env_for_walstream());
        match success {
            true => common::run(&mut cmd),
            false => common::run_expect_fail(&mut cmd),
        }
    }

    /// Every database of `rels` restored under `out` equals its own source.
    fn assert_restored(&self, out: &Path, rels: &[&str]) {
        for rel in rels {
            let got = content(&out.join(rel));
            assert_eq!(got, self.sources[rel], "{rel} restored to its own content");
        }
    }

    /// The client of `rel`'s replica, built like the derived config's.
    fn client(&self, rel: &str) -> ReplicaClient {
        let target = match self.backend {
            Backend::File => ReplicaTarget::File {
                path: self.replica_root().join(rel),
            },
            Backend::S3 => ReplicaTarget::S3(S3Target {
                bucket: common::bucket(),
                path: format!("{}/{rel}", self.prefix),
                region: Some(common::S3_REGION.to_string()),
                endpoint: Some(common::s3_endpoint()),
                force_path_style: true,
                skip_verify: false,
                access_key_id: Some(common::S3_ACCESS_KEY_ID.to_string()),
                secret_access_key: Some(common::S3_SECRET_ACCESS_KEY.to_string()),
            }),
            other => panic!("no damage helper for {other:?}"),
        };
        ReplicaClient::new(&target).expect("client")
    }

    /// Overwrites every snapshot object of `rel`'s replica with bytes that are not LZ4.
    fn damage_snapshots(&self, rel: &str) {
        let client = self.client(rel);
        let store = client.object_store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let prefix = object_store::path::Path::parse(client.root()).expect("prefix");
            let metas: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .expect("list replica");
            let snapshots: Vec<_> = metas
                .into_iter()
                .filter(|m| m.location.as_ref().ends_with(".snapshot.lz4"))
                .collect();
            assert!(!snapshots.is_empty(), "{rel} has snapshots");
            for m in snapshots {
                store
                    .put(&m.location, PutPayload::from_static(b"not an lz4 frame"))
                    .await
                    .expect("overwrite snapshot");
            }
        });
    }
}

/// The per-database summary lines of stdout (the restores' own log lines are interleaved),
/// sorted (databases finish in any order).
fn lines(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = common::stdout_text(out)
        .lines()
        .filter(|l| {
            ["restored ", "skipped ", "failed "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Every file below `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                found.push(rel.display().to_string());
            }
        }
    }
    found.sort();
    found
}

fn story(backend: Backend) {
    let mut f = Fleet::new(backend);
    f.create_sources();
    f.replicate();
    std::fs::remove_dir_all(f.data()).expect("delete the source directory");
    let deep = f.dir_config("dir.yml", true);

    // -o OUTDIR: every database matching the pattern, none outside it.
    let out = f.root().join("out");
    let run = f.bulk(&deep, &["-o", &out.display().to_string()], true);
    let got = lines(&run);
    assert_eq!(got.len(), DBS.len(), "{got:?}");
    let mut sorted_dbs = DBS;
    sorted_dbs.sort();
    for (line, rel) in got.iter().zip(sorted_dbs) {
        let want = format!("restored {} (generation ", out.join(rel).display());
        assert!(line.starts_with(&want), "{line:?} vs {want:?}");
    }
    f.assert_restored(&out, &DBS);
    assert_eq!(files_under(&out), sorted_dbs, "nothing else written");

    // Without -o: back into DIR; again with -if-db-not-exists: all skipped.
    f.bulk(&deep, &["-parallelism", "1"], true);
    f.assert_restored(&f.data(), &DBS);
    let run = f.bulk(&deep, &["-if-db-not-exists"], true);
    let want: Vec<String> = sorted_dbs
        .iter()
        .map(|rel| {
            let path = f.data().join(rel);
            format!("skipped {} (database already exists)", path.display())
        })
        .collect();
    assert_eq!(lines(&run), want);
    // Without it, every existing output is a failure (and left untouched).
    let run = f.bulk(&deep, &[], false);
    let failed = lines(&run);
    assert_eq!(failed.len(), DBS.len());
    assert!(
        failed.iter().all(|l| l.starts_with("failed ")),
        "{failed:?}"
    );
    f.assert_restored(&f.data(), &DBS);

    // Not recursive: only the top-level database.
    let flat = f.dir_config("flat.yml", false);
    let out_flat = f.root().join("out-flat");
    f.bulk(&flat, &["-o", &out_flat.display().to_string()], true);
    assert_eq!(files_under(&out_flat), ["a.db"]);
    f.assert_restored(&out_flat, &["a.db"]);

    // One damaged replica: the others restore, its line says why, the exit is non-zero.
    f.damage_snapshots("eu/b.db");
    let out_bad = f.root().join("out-bad");
    let run = f.bulk(&deep, &["-o", &out_bad.display().to_string()], false);
    let got = lines(&run);
    let bad = out_bad.join("eu/b.db");
    let failed: Vec<&String> = got.iter().filter(|l| l.starts_with("failed ")).collect();
    assert_eq!(failed.len(), 1, "{got:?}");
    assert!(
        failed[0].starts_with(&format!("failed {}: ", bad.display()))
            && failed[0].contains("snapshot"),
        "{got:?}"
    );
    assert_eq!(got.iter().filter(|l| l.starts_with("restored ")).count(), 2);
    f.assert_restored(&out_bad, &["a.db", "eu/acme/c.db"]);
    assert_eq!(
        files_under(&out_bad),
        ["a.db", "eu/acme/c.db"],
        "no partial file"
    );
    // The configured logger (stdout by default, as in Litestream) reports the command's failure.
    let log = common::stdout_text(&run);
    let failure: Vec<&str> = log.lines().filter(|l| l.contains("level=ERROR")).collect();
    assert_eq!(failure.len(), 1, "{log}");
    assert!(
        failure[0].contains("1 of 3 databases failed to restore"),
        "{log}"
    );
}

#[test]
fn fleet_restore_file() {
    story(Backend::File);
}

#[test]
fn fleet_restore_s3() {
    story(Backend::S3);
}

#[test]
fn bad_directory_entries_fail_with_one_line_and_write_nothing() {
    let (_dir, root) = common::tempdir();
    let data = root.join("data");
    let cfg = root.join("bad.yml");
    let shown = cfg.display();
    let d = data.display();
    let cases: Vec<(String, String)> = vec![
        (
            format!("dbs:\n  - dir: {d}\n    replicas:\n      - path: /r\n"),
            format!(
                "config {shown}: dbs[0] (dir {d}): pattern: required with \"dir\" (e.g. pattern: \"*.db\")"
            ),
        ),
        (
            format!("dbs:\n  - dir: {d}\n    pattern: \"[x\"\n"),
            format!(
                "config {shown}: dbs[0] (dir {d}): pattern: invalid pattern \"[x\": unclosed character class \"[\""
            ),
        ),
        (
            format!("dbs:\n  - dir: {d}\n    path: {d}/a.db\n    pattern: \"*.db\"\n"),
            format!(
                "config {shown}: dbs[0] ({d}/a.db): dir: cannot be used with \"path\": an entry is one database (\"path\") or a directory of databases (\"dir\")"
            ),
        ),
        (
            format!("dbs:\n  - path: {d}/a.db\n    watch: true\n"),
            format!(
                "config {shown}: dbs[0] ({d}/a.db): watch: only allowed with \"dir\" (a directory of databases)"
            ),
        ),
        // A singular `replica:` is read by restore and written in the LTX layout by replicate
        // (tests/compat_v5_write.rs).
    ];
    let out = root.join("out");
    for (text, want) in cases {
        std::fs::write(&cfg, &text).expect("write config");
        for command in ["restore", "replicate"] {
            let mut cmd = Command::new(walstream_bin());
            cmd.args([command, "-config"]).arg(&cfg);
            if command == "restore" {
                cmd.arg("-o").arg(&out).arg(&data);
            }
            let run = common::run_expect_fail(cmd.env_remove("LITESTREAM_CONFIG"));
            let stderr = String::from_utf8_lossy(&run.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{command}: one line:\n{stderr}");
            let quoted = want.replace('"', "\\\"");
            assert!(
                lines[0].ends_with(&format!("ERROR failed to run error=\"{quoted}\"")),
                "{command}:\n{}\nwant {want}",
                lines[0]
            );
            assert_eq!(
                std::fs::read_dir(&root).expect("list").count(),
                1,
                "{command} wrote nothing but the config"
            );
        }
    }
}
