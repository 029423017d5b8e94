//! The crash suite's workload: transaction `seq` of a run is a pure function of `(seed, seq)`,
//! applied the same way by the writer process (to the live database) and by the checker (to a
//! fresh in-memory database), so the expected content at any committed `seq` can be recomputed.
//!
//! Must stay true: every transaction sets `meta.seq` to its own number inside the same
//! transaction (the restored database says which boundary it is at); [`plan`] depends on nothing
//! but its arguments; transaction 0 creates the schema.

use rusqlite::{Connection, TransactionBehavior, params};

use super::rng::Rng;

/// Key space of `t`: bounded so the database stays small over thousands of transactions.
const ID_SPACE: u64 = 4096;
/// One chunk of a large transaction.
const BIG_CHUNK: usize = 1 << 20;
/// Stream id of the workload generator (see [`Rng::derive`]).
const STREAM: u64 = 1;

/// The application tables, compared after every restore (walstream's own `_litestream_*` tables
/// are not part of the content).
pub const TABLES: &[(&str, &str)] = &[
    ("t", "SELECT id, v, n FROM t ORDER BY id"),
    ("big", "SELECT id, data FROM big ORDER BY id"),
    ("meta", "SELECT id, seq FROM meta ORDER BY id"),
];

const SCHEMA: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL);
CREATE TABLE big(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL);
INSERT INTO meta(id, seq) VALUES (0, 0);";

/// `PRAGMA wal_checkpoint` modes the application uses.
pub const CHECKPOINT_MODES: &[&str] = &["PASSIVE", "FULL", "RESTART", "TRUNCATE"];

#[derive(Debug)]
enum Op {
    Upsert {
        id: u64,
        v: String,
    },
    Update {
        id: u64,
        v: String,
    },
    DeleteRange {
        lo: u64,
        hi: u64,
    },
    Bump {
        modulus: u64,
        rem: u64,
    },
    /// Replace the whole `big` table with `chunks` chunks of pseudo-random bytes from `bytes_seed`.
    ReplaceBig {
        chunks: u64,
        bytes_seed: u64,
    },
}

/// Transaction `seq`: its operations and the application checkpoint that follows its commit.
#[derive(Debug)]
pub struct Txn {
    pub seq: u64,
    ops: Vec<Op>,
    /// Checkpoint mode to run after the commit (the writer only; content is unaffected).
    pub checkpoint: Option<&'static str>,
}

impl Txn {
    /// Bytes of a large transaction (0 for an ordinary one).
    pub fn big_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op {
                Op::ReplaceBig { chunks, .. } => chunks * BIG_CHUNK as u64,
                _ => 0,
            })
            .sum()
    }
}

/// The transaction `seq` of the run with `seed`.
pub fn plan(seed: u64, seq: u64) -> Txn {
    let mut rng = Rng::derive(seed, STREAM, seq);
    let mut ops = Vec::new();
    if seq >= 5 && rng.chance(1, 150) {
        ops.push(Op::ReplaceBig {
            chunks: rng.range(2, 7),
            bytes_seed: rng.next_u64(),
        });
    } else if seq > 0 {
        for _ in 0..rng.range(1, 7) {
            ops.push(small_op(&mut rng));
        }
    }
    let checkpoint = rng.chance(1, 40).then(|| *rng.pick(CHECKPOINT_MODES));
    Txn {
        seq,
        ops,
        checkpoint,
    }
}

fn small_op(rng: &mut Rng) -> Op {
    let id = rng.range(0, ID_SPACE);
    let roll = rng.range(0, 100);
    let len = if rng.chance(1, 10) {
        rng.range(1000, 3000)
    } else {
        rng.range(8, 200)
    } as usize;
    match roll {
        0..40 => Op::Upsert {
            id,
            v: rng.text(len),
        },
        40..65 => Op::Update {
            id,
            v: rng.text(len),
        },
        65..80 => Op::DeleteRange {
            lo: id,
            hi: id + rng.range(1, 41),
        },
        80..90 => Op::Bump {
            modulus: rng.range(5, 51),
            rem: rng.range(0, 5),
        },
        _ => Op::Upsert {
            id,
            v: rng.text(len * 4),
        },
    }
}

/// Applies `txn` in one immediate transaction, including its `meta.seq` marker.
pub fn apply(conn: &mut Connection, txn: &Txn) -> rusqlite::Result<()> {
    apply_ops(conn, txn, false)
}

/// [`apply`] without the large-table replacement: for a replay that will reach a later large
/// transaction before it compares (that one replaces the whole `big` table again).
pub fn apply_without_big(conn: &mut Connection, txn: &Txn) -> rusqlite::Result<()> {
    apply_ops(conn, txn, true)
}

fn apply_ops(conn: &mut Connection, txn: &Txn, skip_big: bool) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if txn.seq == 0 {
        tx.execute_batch(SCHEMA)?;
    }
    for op in &txn.ops {
        if skip_big && matches!(op, Op::ReplaceBig { .. }) {
            continue;
        }
        apply_op(&tx, op)?;
    }
    tx.execute(
        "UPDATE meta SET seq = ?1 WHERE id = 0",
        params![txn.seq as i64],
    )?;
    tx.commit()
}

fn apply_op(c: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Upsert { id, v } => c.execute(
            "INSERT INTO t(id, v, n) VALUES (?1, ?2, 0) ON CONFLICT(id) DO UPDATE SET v = excluded.v, n = n + 1",
            params![*id as i64, v],
        )?,
        Op::Update { id, v } => c.execute(
            "UPDATE t SET v = ?2, n = n + 1 WHERE id = ?1",
            params![*id as i64, v],
        )?,
        Op::DeleteRange { lo, hi } => c.execute(
            "DELETE FROM t WHERE id >= ?1 AND id < ?2",
            params![*lo as i64, *hi as i64],
        )?,
        Op::Bump { modulus, rem } => c.execute(
            "UPDATE t SET n = n + 1 WHERE id % ?1 = ?2",
            params![*modulus as i64, *rem as i64],
        )?,
        Op::ReplaceBig { chunks, bytes_seed } => {
            c.execute("DELETE FROM big", [])?;
            let mut rng = Rng::derive(*bytes_seed, STREAM, 0);
            for i in 0..*chunks {
                c.execute(
                    "INSERT INTO big(id, data) VALUES (?1, ?2)",
                    params![i as i64, rng.bytes(BIG_CHUNK)],
                )?;
            }
            0
        }
    };
    Ok(())
}

/// The committed `meta.seq` of a database, `None` before transaction 0 committed.
pub fn committed_seq(c: &Connection) -> rusqlite::Result<Option<u64>> {
    let exists: i64 = c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(None);
    }
    let seq: i64 = c.query_row("SELECT seq FROM meta WHERE id = 0", [], |r| r.get(0))?;
    Ok(Some(seq as u64))
}
