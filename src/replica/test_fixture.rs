//! Test-only fixture shared by the v0.3 and LTX writers' replica tests: a real WAL-mode database
//! with one table `t(id, v)`, opened as a [`Db`] (small checkpoint threshold so tests roll the WAL
//! quickly), and a file [`ReplicaClient`] on a folder in the same temporary directory.
//!
//! Must stay true: the application connection and the `Db` are two connections to one file, as
//! in production; `insert` commits each row on its own, then runs one db sync tick.

use std::sync::Arc;

use rusqlite::Connection;

use crate::config::{DbConfig, ReplicaConfig, ReplicaTarget};
use crate::db::{Db, SyncOutcome};
use crate::storage::ReplicaClient;

pub(crate) struct DbFixture {
    pub dir: tempfile::TempDir,
    pub app: Connection,
    pub db: Arc<Db>,
    pub cfg: ReplicaConfig,
    pub client: ReplicaClient,
    pub next_id: i64,
}

impl DbFixture {
    /// `pragmas` run on the application connection before the table is created.
    pub async fn new(pragmas: &str) -> DbFixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.db");
        let app = Connection::open(&path).expect("open app");
        app.execute_batch(&format!(
            "PRAGMA journal_mode=wal; {pragmas} CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
        ))
        .expect("schema");
        let mut dbc = DbConfig::with_defaults(&path);
        dbc.min_checkpoint_page_count = 4;
        let db = Db::new(&dbc);
        db.open().await.expect("open db");
        let target = ReplicaTarget::File {
            path: dir.path().join("replica"),
        };
        let client = ReplicaClient::new(&target).expect("client");
        let cfg = ReplicaConfig::with_defaults("file".into(), target);
        DbFixture {
            dir,
            app,
            db,
            cfg,
            client,
            next_id: 1,
        }
    }

    /// `n` committed transactions, then one db sync tick (which may roll the WAL index).
    pub async fn insert(&mut self, n: usize) -> SyncOutcome {
        for _ in 0..n {
            self.app
                .execute(
                    "INSERT INTO t(id, v) VALUES (?1, ?2)",
                    rusqlite::params![self.next_id, "v".repeat(300)],
                )
                .expect("insert");
            self.next_id += 1;
        }
        self.db.sync().await.expect("db sync")
    }
}

/// `struct $name(DbFixture)` with `Deref`/`DerefMut` to it, so a test module adds its own
/// helpers (`replica`, `write`, …) while the fixture's fields read as `f.db`, `f.cfg`, ….
macro_rules! fixture_wrapper {
    ($name:ident) => {
        struct $name($crate::replica::test_fixture::DbFixture);

        impl std::ops::Deref for $name {
            type Target = $crate::replica::test_fixture::DbFixture;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
pub(crate) use fixture_wrapper;

/// Restores the latest state of the file replica behind `client` (either layout) to `out` and
/// returns how many rows its table `t` holds.
pub(crate) async fn restored_rows(client: &ReplicaClient, out: &std::path::Path) -> i64 {
    let source = crate::restore::ReplicaRef {
        name: "file",
        client,
    };
    let req = crate::restore::RestoreRequest {
        output: out.to_path_buf(),
        generation: None,
        index: None,
        timestamp: None,
        exec: crate::restore::ExecOptions::default(),
        if_replica_exists: false,
    };
    let ltx = crate::restore::ltx_select::LtxRequest {
        txid: None,
        dry_run: false,
    };
    crate::restore::ltx_select::restore_auto(&[source], &req, &ltx)
        .await
        .expect("restore of latest");
    Connection::open(out)
        .expect("open restored")
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count")
}

/// A file replica in `dir/replica` of the database at `path` (`db::check::testkit`'s), the
/// database opened and synced once; LTX layout with v0.5's defaults when `ltx`.
pub(crate) async fn replica_of(
    dir: &std::path::Path,
    path: &std::path::Path,
    ltx: bool,
) -> (Arc<Db>, ReplicaClient, Arc<crate::replica::Replica>) {
    let db = Db::new(&DbConfig::with_defaults(path));
    db.open().await.expect("open db");
    db.sync().await.expect("db sync");
    let target = ReplicaTarget::File {
        path: dir.join("replica"),
    };
    let client = ReplicaClient::new(&target).expect("client");
    let cfg = ReplicaConfig::with_defaults("file".into(), target);
    let replica = match ltx {
        true => {
            let settings = Arc::new(crate::config::V05Settings::default());
            crate::replica::Replica::with_ltx(Arc::clone(&db), cfg, client.clone(), None, settings)
        }
        false => crate::replica::Replica::new(Arc::clone(&db), cfg, client.clone()),
    };
    (db, client, replica)
}
