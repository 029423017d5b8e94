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
