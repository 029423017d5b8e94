//! The expected content: the workload replayed into in-memory SQLite databases, advanced on
//! demand to the transaction boundary a restored database claims to be at, and compared with it
//! table by table.
//!
//! Must stay true: the replay uses exactly [`workload::plan`] + [`workload::apply`], as the
//! writer does (a large transaction is skipped only when a later one, which replaces the same
//! table, is applied before the comparison); a replay never moves backwards: reaching an earlier
//! boundary uses another replay of the pool or starts one from transaction 0 (counted).

use rusqlite::Connection;
use rusqlite::types::Value;

use super::workload::{self, TABLES};

/// Replays kept at different positions (each a few MiB of memory).
const POOL: usize = 4;

struct Replay {
    conn: Connection,
    /// Last transaction applied (`None`: nothing yet).
    pos: Option<u64>,
    /// When it was last used (for eviction).
    used: u64,
}

pub struct Model {
    seed: u64,
    pool: Vec<Replay>,
    clock: u64,
    /// Replays started from transaction 0.
    pub rebuilds: u64,
}

impl Model {
    pub fn new(seed: u64) -> Model {
        Model {
            seed,
            pool: Vec::new(),
            clock: 0,
            rebuilds: 0,
        }
    }

    /// A replay at the boundary after transaction `m`: the furthest one not past `m`, advanced.
    fn replay_at(&mut self, m: u64) -> Result<&Connection, String> {
        self.clock += 1;
        let best = (0..self.pool.len())
            .filter(|&i| self.pool[i].pos.is_none_or(|p| p <= m))
            .max_by_key(|&i| self.pool[i].pos.map_or(0, |p| p + 1));
        let i = match best {
            Some(i) => i,
            None => self.new_replay()?,
        };
        let seed = self.seed;
        let r = &mut self.pool[i];
        r.used = self.clock;
        advance(&mut r.conn, &mut r.pos, seed, m)?;
        Ok(&self.pool[i].conn)
    }

    fn new_replay(&mut self) -> Result<usize, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        self.rebuilds += 1;
        let fresh = Replay {
            conn,
            pos: None,
            used: self.clock,
        };
        if self.pool.len() < POOL {
            self.pool.push(fresh);
            return Ok(self.pool.len() - 1);
        }
        let lru = (0..self.pool.len())
            .min_by_key(|&i| self.pool[i].used)
            .expect("pool is full");
        self.pool[lru] = fresh;
        Ok(lru)
    }

    /// Compares `restored` with the replay of transactions `0..=m`; the first difference is the
    /// error.
    pub fn compare(&mut self, restored: &Connection, m: u64) -> Result<(), String> {
        let expected = self.replay_at(m)?;
        for (table, sql) in TABLES {
            let want = rows(expected, sql).map_err(|e| format!("expected {table}: {e}"))?;
            let got = rows(restored, sql).map_err(|e| format!("restored {table}: {e}"))?;
            if let Some(i) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) {
                return Err(format!(
                    "table {table} differs from the replay at seq {m}: row {i}: restored {} vs expected {} ({} vs {} rows)",
                    show(got.get(i)),
                    show(want.get(i)),
                    got.len(),
                    want.len()
                ));
            }
        }
        Ok(())
    }
}

/// Applies transactions `pos+1..=m`; large ones only when no later large one comes by `m`.
fn advance(conn: &mut Connection, pos: &mut Option<u64>, seed: u64, m: u64) -> Result<(), String> {
    let next = pos.map_or(0, |p| p + 1);
    let txns: Vec<_> = (next..=m).map(|seq| workload::plan(seed, seq)).collect();
    let last_big = txns.iter().rev().find(|t| t.big_bytes() > 0).map(|t| t.seq);
    for txn in &txns {
        let res = if txn.big_bytes() > 0 && Some(txn.seq) != last_big {
            workload::apply_without_big(conn, txn)
        } else {
            workload::apply(conn, txn)
        };
        res.map_err(|e| format!("replay of {}: {e}", txn.seq))?;
        *pos = Some(txn.seq);
    }
    Ok(())
}

fn rows(c: &Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut st = c.prepare(sql)?;
    let n = st.column_count();
    let mapped = st.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())?;
    mapped.collect()
}

/// A row for an error message (blobs and long text summarised).
fn show(row: Option<&Vec<Value>>) -> String {
    let Some(row) = row else {
        return "<none>".to_string();
    };
    let cells: Vec<String> = row
        .iter()
        .map(|v| match v {
            Value::Blob(b) => format!("blob[{}]", b.len()),
            Value::Text(t) if t.len() > 24 => format!("{:?}…[{}]", &t[..24], t.len()),
            other => format!("{other:?}"),
        })
        .collect();
    format!("({})", cells.join(", "))
}
