//! Restore compatibility: on a replica written by the real Litestream v0.3.13 (two generations,
//! several WAL indexes, many segments), `walstream restore` must produce **byte-identical**
//! database files to `litestream restore` — for the latest point, two `-index` values, several
//! `-timestamp` values taken from the listed `CreatedAt` times (in both generations), the older
//! generation by `-generation`, the replica-URL form where the backend has one, and again after
//! the old generation was deleted the way retention deletes it. One test per backend.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::litestream::{LitestreamReplica, make_litestream_replica};
use common::{
    AZURITE_KEY, Backend, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, describe, gcs_proxy,
    litestream_bin, walstream_bin,
};
use walstream::config::ReplicaTarget;
use walstream::storage::ReplicaClient;

/// One listed object (a row of `wal` or `snapshots`): identity and listed time (RFC 3339, whole
/// seconds).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Obj {
    generation: String,
    index: u32,
    /// `None` for a snapshot.
    offset: Option<u64>,
    created: String,
}

struct Ctx {
    r: LitestreamReplica,
    out: PathBuf,
    n: usize,
}

impl Ctx {
    fn config_args(&self) -> [String; 2] {
        [
            "-config".to_string(),
            self.r.config_path.display().to_string(),
        ]
    }

    /// Both tools' `generations` tables, for failure messages.
    fn generations_of_both(&self) -> String {
        let mut args = vec!["generations".to_string()];
        args.extend(self.config_args());
        args.push(self.r.db_path.display().to_string());
        let lt = self.run(&litestream_bin(), &self.r.env, &args);
        let ws = self.run(&walstream_bin(), &self.r.walstream_env, &args);
        format!(
            "litestream generations:\n{}walstream generations:\n{}",
            String::from_utf8_lossy(&lt.stdout),
            String::from_utf8_lossy(&ws.stdout)
        )
    }

    fn run(&self, bin: &Path, env: &[(String, String)], args: &[String]) -> Output {
        Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()))
    }

    /// Restores with both tools (`args` go before the source argument) and compares the files.
    /// Returns the restored row count, or `None` when both tools refused the same way.
    fn compare(&mut self, args: &[&str], source: &str, with_config: bool) -> Option<i64> {
        self.n += 1;
        let lt_out = self.out.join(format!("lt-{}.db", self.n));
        let ws_out = self.out.join(format!("ws-{}.db", self.n));
        let build = |out: &Path| {
            let mut v: Vec<String> = Vec::new();
            if with_config {
                v.extend(self.config_args());
            }
            v.push("-o".into());
            v.push(out.display().to_string());
            v.extend(args.iter().map(|s| s.to_string()));
            v.push(source.to_string());
            let mut full = vec!["restore".to_string()];
            full.extend(v);
            full
        };
        let lt = self.run(&litestream_bin(), &self.r.env, &build(&lt_out));
        let ws = self.run(&walstream_bin(), &self.r.walstream_env, &build(&ws_out));
        let what = format!("restore {args:?} {source}");
        if !lt.status.success() {
            assert!(
                !ws.status.success(),
                "{what}: litestream failed but walstream succeeded\n{}\n{}",
                describe(&Command::new("litestream"), &lt),
                self.generations_of_both()
            );
            assert!(
                !ws_out.exists(),
                "{what}: failed walstream restore left a file"
            );
            return None;
        }
        assert!(
            ws.status.success(),
            "{what}: walstream failed\n{}",
            describe(&Command::new("walstream"), &ws)
        );
        let (a, b) = (read(&lt_out), read(&ws_out));
        assert!(
            a == b,
            "{what}: restored files differ ({} vs {} bytes)\n{}\n{}",
            a.len(),
            b.len(),
            describe(&Command::new("litestream"), &lt),
            describe(&Command::new("walstream"), &ws)
        );
        Some(common::sqlite::restored_count(&ws_out))
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// `wal` and `snapshots` listings of the config/DB form, by one tool.
fn objects(ctx: &Ctx, litestream: bool) -> Vec<Obj> {
    let (bin, env) = if litestream {
        (litestream_bin(), &ctx.r.env)
    } else {
        (walstream_bin(), &ctx.r.walstream_env)
    };
    let mut all = Vec::new();
    for cmd in ["wal", "snapshots"] {
        let mut args = vec![cmd.to_string()];
        args.extend(ctx.config_args());
        args.push(ctx.r.db_path.display().to_string());
        let out = ctx.run(&bin, env, &args);
        assert!(
            out.status.success(),
            "{cmd} listing failed: {}",
            describe(&Command::new(&bin), &out)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let offset = (cmd == "wal").then(|| f[3].parse().expect("decimal offset"));
            all.push(Obj {
                generation: f[1].to_string(),
                index: f[2].parse().expect("decimal index"),
                offset,
                created: f[f.len() - 1].to_string(),
            });
        }
    }
    all.sort();
    all
}

/// Identities of the objects listed at or before second `s`.
fn seen_by(objs: &[Obj], s: &str) -> BTreeSet<(String, u32, Option<u64>)> {
    objs.iter()
        .filter(|o| o.created.as_str() <= s)
        .map(|o| (o.generation.clone(), o.index, o.offset))
        .collect()
}

/// Generations ordered by their newest object (oldest first).
fn generations_by_age(objs: &[Obj]) -> Vec<String> {
    let gens: BTreeSet<&str> = objs.iter().map(|o| o.generation.as_str()).collect();
    let newest = |g: &str| {
        objs.iter()
            .filter(|o| o.generation == g)
            .map(|o| o.created.clone())
            .max()
            .unwrap_or_default()
    };
    let mut v: Vec<String> = gens.into_iter().map(str::to_string).collect();
    v.sort_by_key(|g| newest(g));
    v
}

/// Up to `n` times inside `generation`, evenly picked: the last nanosecond of each listed second
/// but the last one, where both tools' listings agree on which objects exist by then.
///
/// Storage times can be finer than the listed seconds, and the test servers do not show both
/// tools the same time property: the GCS test proxy reports whole seconds to walstream while
/// Litestream reads fractions from fake-gcs-server, and on Azure Litestream uses `Creation-Time`
/// while object_store reports `Last-Modified`, which azurite can set a second later. A time at
/// the end of a second on which both listings agree compares the tools, not the servers.
fn timestamps_inside(lt: &[Obj], ws: &[Obj], generation: &str, n: usize) -> Vec<String> {
    let seconds: BTreeSet<&str> = lt
        .iter()
        .filter(|o| o.generation == generation)
        .map(|o| o.created.as_str())
        .collect();
    let seconds: Vec<&str> = seconds.into_iter().collect();
    let inside: Vec<&str> = seconds[..seconds.len().saturating_sub(1)]
        .iter()
        .copied()
        .filter(|s| seen_by(lt, s) == seen_by(ws, s))
        .collect();
    let step = inside.len().div_ceil(n).max(1);
    inside
        .iter()
        .step_by(step)
        .map(|s| s.replace('Z', ".999999999Z"))
        .collect()
}

/// Deletes a whole generation, as retention does when it holds no retained snapshot.
fn delete_generation(r: &LitestreamReplica, backend: Backend, generation: &str) {
    let cfg = walstream::config::load(&r.config_path, true).expect("load config");
    let mut target = cfg.config.dbs[0].replicas[0].target.clone();
    match &mut target {
        ReplicaTarget::S3(s3) => {
            s3.access_key_id = Some(S3_ACCESS_KEY_ID.to_string());
            s3.secret_access_key = Some(S3_SECRET_ACCESS_KEY.to_string());
        }
        ReplicaTarget::Abs(abs) => abs.account_key = Some(AZURITE_KEY.to_string()),
        ReplicaTarget::Gcs(gcs) => gcs.emulator_host = Some(gcs_proxy()),
        ReplicaTarget::File { .. } => {}
    }
    assert_eq!(target.type_name(), backend.name());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = ReplicaClient::new(&target).expect("client");
        client
            .delete_generation(generation)
            .await
            .expect("delete generation");
    });
}

fn compare_backend(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = make_litestream_replica(backend, dir.path());
    let out = dir.path().join("restored");
    std::fs::create_dir_all(&out).expect("mkdir");
    let db = r.db_path.display().to_string();
    let url = r.replica_url.clone();
    let rows = r.rows;
    let mut ctx = Ctx { r, out, n: 0 };

    assert_eq!(
        ctx.compare(&[], &db, true),
        Some(rows),
        "latest holds every row"
    );
    if let Some(url) = &url {
        assert_eq!(ctx.compare(&[], url, false), Some(rows), "URL form");
    }

    let (lt_objs, ws_objs) = (objects(&ctx, true), objects(&ctx, false));
    let gens = generations_by_age(&lt_objs);
    assert!(gens.len() >= 2, "two generations expected: {gens:?}");
    let (old, new) = (&gens[0], &gens[gens.len() - 1]);
    let indexes: BTreeSet<u32> = lt_objs
        .iter()
        .filter(|o| &o.generation == new && o.offset.is_some())
        .map(|o| o.index)
        .collect();
    assert!(
        indexes.len() >= 2,
        "≥ 2 indexes in the newest generation: {indexes:?}"
    );
    let picks = [
        indexes.first().copied(),
        indexes.iter().nth(indexes.len() / 2).copied(),
    ];
    for index in picks.into_iter().flatten() {
        let hex = format!("{index:x}");
        assert!(
            ctx.compare(&["-index", &hex], &db, true).is_some(),
            "-index {hex}"
        );
    }

    let mut restored = 0;
    for g in [old, new] {
        for t in timestamps_inside(&lt_objs, &ws_objs, g, 3) {
            restored += usize::from(ctx.compare(&["-timestamp", &t], &db, true).is_some());
        }
    }
    assert!(
        restored >= 3,
        "at least three -timestamp restores succeeded ({restored})"
    );
    let old_rows = ctx
        .compare(&["-generation", old], &db, true)
        .expect("old generation");
    assert!(
        old_rows < rows,
        "the old generation ends before the new one"
    );

    delete_generation(&ctx.r, backend, old);
    assert_eq!(
        ctx.compare(&[], &db, true),
        Some(rows),
        "latest after retention"
    );
    for t in timestamps_inside(&lt_objs, &ws_objs, new, 2) {
        ctx.compare(&["-timestamp", &t], &db, true);
    }
    assert_eq!(
        ctx.compare(&["-generation", old], &db, true),
        None,
        "deleted generation"
    );
}

#[test]
fn restore_matches_litestream_on_file() {
    compare_backend(Backend::File);
}

#[test]
fn restore_matches_litestream_on_s3() {
    compare_backend(Backend::S3);
}

#[test]
fn restore_matches_litestream_on_abs() {
    compare_backend(Backend::Abs);
}

#[test]
fn restore_matches_litestream_on_gcs() {
    compare_backend(Backend::Gcs);
}
