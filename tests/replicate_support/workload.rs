//! The application workload both replication-compatibility suites (`compat_replicate`,
//! `compat_age`) drive: a `t` table of small rows plus a `blobs` table of incompressible 64 KiB
//! blobs, written so that walstream's 100 ms upload rounds cut it into many segments, and the
//! content digest they compare restored databases by, and the [`Site`] fixture (one database
//! replicated to one backend) both suites build their cases on.
//!
//! What must stay true: `content` asserts `PRAGMA integrity_check` = ok before reading, so no
//! comparison passes on a damaged database.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;

use super::{
    DEADLINE, Proc, insert, integrity, litestream_env, open_app, poll_until, rows, walstream_env,
};
use crate::common::{Backend, Workspace, litestream_bin, unique_name};

/// The application connection: no automatic checkpoints (so restarts keep the generation and
/// "same generation" checks are not racy), with the `blobs` table.
pub fn app(db: &Path) -> Connection {
    let c = open_app(db);
    c.execute_batch(
        "PRAGMA wal_autocheckpoint=0;
         CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, b BLOB NOT NULL);",
    )
    .expect("prepare app db");
    c
}

/// Inserts ids `from..to`, one transaction each, a few milliseconds apart so the 100 ms upload
/// rounds cut them into many segments (workload shaping, not waiting).
pub fn insert_range(c: &Connection, from: i64, to: i64) {
    for id in from..to {
        insert(c, id);
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
}

/// Updates and deletes spread over `t`, then one transaction of `blobs` × 64 KiB of
/// incompressible data (several 4 MiB LZ4 blocks; a multipart upload on object stores).
pub fn mixed_changes(c: &Connection, tag: i64, blobs: i64) {
    c.execute("UPDATE t SET v = v || '-updated' WHERE id % 3 = 0", [])
        .expect("update");
    c.execute("DELETE FROM t WHERE id % 5 = 0", [])
        .expect("delete");
    c.execute_batch("BEGIN").expect("begin");
    for i in 0..blobs {
        c.execute(
            "INSERT INTO blobs(id, b) VALUES (?1, randomblob(65536))",
            [tag * 1000 + i],
        )
        .expect("insert blob");
    }
    c.execute_batch("COMMIT").expect("commit");
}

/// Rows of `t`, and per blob its id, length and first/last 16 bytes in hex.
pub type Content = (Vec<(i64, String)>, Vec<(i64, i64, String)>);

/// Every row of both tables plus a digest of the blobs (after `PRAGMA integrity_check` = ok).
pub fn content(db: &Path) -> Content {
    let c = Connection::open(db).expect("open");
    assert_eq!(integrity(&c), "ok", "{}", db.display());
    let mut st = c
        .prepare(
            "SELECT id, length(b), hex(substr(b, 1, 16)) || hex(substr(b, -16)) \
             FROM blobs ORDER BY id",
        )
        .expect("prepare");
    let blobs = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("blobs");
    (rows(&c), blobs)
}

/// One database replicated to one backend, the fixture of the compatibility suites: a
/// [`Workspace`] (`app.db`, `replica/` for the file backend, configs), the backend and the
/// replica's key prefix on object stores.
pub struct Site {
    pub backend: Backend,
    pub ws: Workspace,
    pub prefix: String,
}

impl Site {
    /// A fresh site; the prefix is unique and starts with `tag-<backend>`.
    pub fn new(backend: Backend, tag: &str) -> Site {
        Site {
            backend,
            ws: Workspace::new(),
            prefix: unique_name(&format!("{tag}-{}", backend.name())),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.ws.path()
    }

    pub fn db(&self) -> PathBuf {
        self.ws.db()
    }

    pub fn replica_dir(&self) -> PathBuf {
        self.ws.replica()
    }

    /// The replica as a list item indented for a database entry's `replicas:`.
    pub fn replica_item(&self) -> String {
        self.backend
            .replica_list_item(&self.prefix, &self.replica_dir(), 6)
    }

    /// `walstream replicate -config CFG` with the backend's environment.
    pub fn walstream(&self, cfg: &str) -> Proc {
        let env = self.backend.env_for_walstream();
        walstream_env(&self.path(), &["-config", cfg], &env)
    }

    /// `litestream replicate -config CFG` (v0.3.13) with the backend's environment.
    pub fn litestream(&self, cfg: &str) -> Proc {
        let env = self.backend.env_for_litestream();
        litestream_env(&self.path(), &["-config", cfg], &env)
    }

    /// Polls `litestream restore -config CFG` (v0.3.13) until the replica holds exactly the
    /// source's [`content`]. Litestream v0.3.13 can hang or fail at shutdown when SIGTERM arrives
    /// in the middle of an upload, so callers stop it only once this returns.
    pub fn wait_replicated(&self, cfg: &str) {
        let want = content(&self.db());
        let db = self.db().display().to_string();
        let mut n = 0;
        poll_until(DEADLINE, "the replica to hold every row", || {
            n += 1;
            let out = self.path().join(format!("probe-{n}.db"));
            let res = Command::new(litestream_bin())
                .args(["restore", "-o"])
                .arg(&out)
                .args(["-config", cfg, &db])
                .envs(self.backend.env_for_litestream())
                .output()
                .expect("run litestream restore");
            res.status.success() && content(&out) == want
        });
    }
}
