//! One writer per replica path across processes (the owner record `walstream-owner.json`), with
//! the real binary on loopback servers: a first `walstream replicate` writes database A to a
//! replica path and claims it; a second one with a different database B on the same path is
//! refused — log (once), `/api/v1/status` (`owner_conflict`), `/readyz` and
//! `walstream_replica_owner_conflict` say so, its other replica keeps working, and the shared path
//! holds exactly the same objects before and after it ran. Restores of the path (walstream's, and
//! the real Litestream v0.3.13's or v0.5.17's) give A's content with nothing of B's. A database
//! restored from the path into a fresh directory keeps A's identity and writes the path again.
//!
//! Runs on file and S3 (moto) for the v0.3 layout and on file for the LTX (v0.5) layout:
//! `bash scripts/test.sh -- cargo test --test replica_owner`.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::{
    Backend, DEADLINE, Rows, assert_restores_to, insert, litestream_bin, litestream5_bin, open_app,
    poll_until, restore_with, rows, unique_name, walstream_bin,
};
use futures::TryStreamExt;
use http_support::{Instance, tempdir};
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

const OWNER: &str = "walstream-owner.json";

/// The contested replica path on one backend.
struct Shared {
    backend: Backend,
    prefix: String,
    file_dir: PathBuf,
    /// Litestream v0.5 layout (singular `replica:`) instead of v0.3 generations.
    ltx: bool,
}

impl Shared {
    /// A config with `addr`, database `db` and the shared replica named `shared`, plus (v0.3
    /// only) a second, private file replica `own` at `own`.
    fn config(&self, db: &Path, own: Option<&Path>) -> String {
        let yaml = self.backend.replica_yaml(&self.prefix, &self.file_dir);
        let head = format!(
            "addr: \"127.0.0.1:0\"\ndbs:\n  - path: \"{}\"\n    monitor-interval: 50ms\n",
            db.display()
        );
        if self.ltx {
            let item: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
            return format!("{head}    replica:\n{item}      sync-interval: 100ms\n");
        }
        let item: String = yaml.lines().map(|l| format!("        {l}\n")).collect();
        let mut cfg = format!(
            "{head}    replicas:\n      - name: shared\n{item}        sync-interval: 100ms\n"
        );
        if let Some(own) = own {
            cfg.push_str(&format!(
                "      - name: own\n        url: \"file://{}\"\n        sync-interval: 100ms\n",
                own.display()
            ));
        }
        cfg
    }

    fn url(&self) -> String {
        self.backend
            .replica_url(&self.prefix, &self.file_dir)
            .expect("file and s3 have URLs")
    }

    fn env(&self) -> Vec<(String, String)> {
        self.backend.env_for_walstream()
    }

    /// Every object key under the path, relative to it (`walstream-owner.json`,
    /// `generations/…`, `ltx/…`).
    fn keys(&self) -> BTreeSet<String> {
        match self.backend {
            Backend::File => file_keys(&self.file_dir, &self.file_dir),
            Backend::S3 => {
                let store = common::moto_store();
                let prefix = object_store::path::Path::from(self.prefix.as_str());
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                let metas: Vec<_> = rt
                    .block_on(store.list(Some(&prefix)).try_collect())
                    .expect("list moto");
                metas
                    .iter()
                    .map(|m| {
                        let key = m.location.to_string();
                        key.strip_prefix(&format!("{}/", self.prefix))
                            .unwrap_or(&key)
                            .to_string()
                    })
                    .collect()
            }
            other => panic!("no listing for {other:?}"),
        }
    }

    /// The owner record as stored.
    fn record(&self) -> Value {
        let body = match self.backend {
            Backend::File => fs::read(self.file_dir.join(OWNER)).expect("read owner record"),
            _ => {
                let store = common::moto_store();
                let key = object_store::path::Path::from(format!("{}/{OWNER}", self.prefix));
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                rt.block_on(async { store.get(&key).await?.bytes().await })
                    .expect("get owner record")
                    .to_vec()
            }
        };
        serde_json::from_slice(&body).expect("owner record is JSON")
    }

    /// Restores the path with walstream, then with the real Litestream of its layout; both must
    /// give `expected`.
    fn assert_both_restore(&self, dir: &Path, expected: &Rows) {
        let (ws, ls) = (dir.join("ws-restore.db"), dir.join("ls-restore.db"));
        let url = self.url();
        restore_with(&walstream_bin(), &self.env(), &[&url], &ws);
        assert_restores_to(&ws, expected);
        let litestream = if self.ltx {
            litestream5_bin()
        } else {
            litestream_bin()
        };
        let env = self.backend.env_for_litestream();
        restore_with(&litestream, &env, &[&url], &ls);
        assert_restores_to(&ls, expected);
        for p in [&ws, &ls] {
            common::sqlite::remove_db(p);
        }
    }
}

fn file_keys(root: &Path, dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(file_keys(root, &p));
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.insert(rel.display().to_string());
        }
    }
    out
}

/// `_litestream_seq` row 2 of `db` as 16 hex digits.
fn identity_of(db: &Path) -> String {
    let c = open_app(db);
    let id: i64 = c
        .query_row("SELECT seq FROM _litestream_seq WHERE id = 2", [], |r| {
            r.get(0)
        })
        .expect("identity row");
    format!("{:016x}", id as u64)
}

/// The replica `name` of the first database (or its only replica: an LTX config's singular
/// `replica:` has its default name).
fn replica_doc<'a>(status: &'a Value, name: &str) -> &'a Value {
    let all = status["databases"][0]["replicas"]
        .as_array()
        .expect("replicas");
    let found = match all.as_slice() {
        [only] => Some(only),
        _ => all.iter().find(|r| r["name"] == name),
    };
    found.unwrap_or_else(|| panic!("no replica {name}: {status:#}"))
}

/// Starts `replicate` for `db` in `dir` and waits until every replica holds everything.
fn replicate_until_caught_up(shared: &Shared, dir: &Path, db: &Path) -> String {
    let inst = Instance::start(dir, &shared.config(db, None), &shared.env());
    inst.wait_caught_up();
    let log = inst.proc.stop();
    assert!(!log.contains("replica refused"), "{log}");
    log
}

fn one_writer(backend: Backend, ltx: bool) {
    let (_tmp, dir) = tempdir();
    let shared = Shared {
        backend,
        prefix: unique_name("owner"),
        file_dir: dir.join("shared-replica"),
        ltx,
    };
    // Database A claims the path.
    let (a_dir, b_dir, c_dir) = (dir.join("a"), dir.join("b"), dir.join("c"));
    for d in [&a_dir, &b_dir, &c_dir] {
        fs::create_dir_all(d).expect("mkdir");
    }
    let a_db = a_dir.join("app.db");
    let a_app = open_app(&a_db);
    for id in 1..=3 {
        insert(&a_app, id);
    }
    replicate_until_caught_up(&shared, &a_dir, &a_db);
    let a_rows = rows(&a_app);
    let before = shared.keys();
    assert!(before.contains(OWNER), "{before:?}");
    let layout = if ltx { "ltx/" } else { "generations/" };
    assert!(before.iter().any(|k| k.starts_with(layout)), "{before:?}");
    let record = shared.record();
    assert_eq!(record["identity"], identity_of(&a_db), "{record}");
    assert_eq!(record["database"], a_db.display().to_string(), "{record}");
    assert!(
        record["tool"]
            .as_str()
            .is_some_and(|t| t.starts_with("walstream "))
    );

    // Database B on the same path is refused; its own replica works.
    let b_db = b_dir.join("app.db");
    let b_app = open_app(&b_db);
    for id in 101..=103 {
        insert(&b_app, id);
    }
    let own = b_dir.join("own-replica");
    let b = Instance::start(
        &b_dir,
        &shared.config(&b_db, (!ltx).then_some(own.as_path())),
        &shared.env(),
    );
    let status = poll_until(DEADLINE, "the refusal, retried once", || {
        let st = b.status();
        let r = replica_doc(&st, "shared");
        let refused = r["owner_conflict"].is_string() && r["error_count"].as_u64() >= Some(2);
        let own_ok = ltx || !replica_doc(&st, "own")["last_sync"].is_null();
        (refused && own_ok).then_some(st)
    });
    let conflict = replica_doc(&status, "shared")["owner_conflict"]
        .as_str()
        .expect("text")
        .to_string();
    for part in [
        a_db.display().to_string(),
        OWNER.to_string(),
        identity_of(&a_db),
    ] {
        assert!(conflict.contains(&part), "{part} missing in {conflict}");
    }
    assert!(
        replica_doc(&status, "shared")["last_sync"].is_null(),
        "{status:#}"
    );
    let ready = b.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    let problems = ready.json()["problems"].clone();
    assert!(
        problems
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("replica refused: ")
                    && r.contains(&a_db.display().to_string()))),
        "{problems:#}"
    );
    let scrape = b.metrics();
    let shared_name = replica_doc(&status, "shared")["name"]
        .as_str()
        .expect("name")
        .to_string();
    let b_label = b_db.display().to_string();
    assert_eq!(
        scrape.must(
            "walstream_replica_owner_conflict",
            &[("db", &b_label), ("name", &shared_name)]
        ),
        1.0
    );
    if !ltx {
        assert_eq!(
            scrape.must(
                "walstream_replica_owner_conflict",
                &[("db", &b_label), ("name", "own")]
            ),
            0.0
        );
    }
    insert(&b_app, 104);
    let b_generation = status["databases"][0]["generation"]
        .as_str()
        .expect("b generation")
        .to_string();
    let log = b.proc.stop();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("replica refused"))
        .collect();
    assert_eq!(refusals.len(), 1, "logged once:\n{log}");
    let mentions = log
        .lines()
        .filter(|l| l.contains("belongs to another database"));
    assert_eq!(mentions.count(), 1, "the refusal text appears once:\n{log}");
    for part in [a_db.display().to_string(), shared.url_shown()] {
        assert!(
            refusals[0].contains(&part),
            "{part} missing in {}",
            refusals[0]
        );
    }
    let after = shared.keys();
    assert_eq!(before, after, "the refused process wrote nothing");
    assert!(
        !after.iter().any(|k| k.contains(&b_generation)),
        "{after:?}"
    );
    shared.assert_both_restore(&dir, &a_rows);

    // A copy of A restored elsewhere keeps A's identity and writes the path again.
    let c_db = c_dir.join("app.db");
    restore_with(&walstream_bin(), &shared.env(), &[&shared.url()], &c_db);
    assert_eq!(identity_of(&c_db), identity_of(&a_db));
    let c_app = open_app(&c_db);
    insert(&c_app, 4);
    replicate_until_caught_up(&shared, &c_dir, &c_db);
    shared.assert_both_restore(&dir, &rows(&c_app));
    assert_eq!(shared.record()["identity"], identity_of(&a_db));
}

impl Shared {
    /// How the refusal names the path: walstream's credential-free description.
    fn url_shown(&self) -> String {
        match self.backend {
            Backend::File => format!("file://{}", self.file_dir.display()),
            _ => format!("s3://{}/{}", common::bucket(), self.prefix),
        }
    }
}

#[test]
fn a_second_database_is_refused_on_a_file_replica() {
    one_writer(Backend::File, false);
}

#[test]
fn a_second_database_is_refused_on_an_s3_replica() {
    one_writer(Backend::S3, false);
}

#[test]
fn a_second_database_is_refused_on_an_ltx_file_replica() {
    one_writer(Backend::File, true);
}
