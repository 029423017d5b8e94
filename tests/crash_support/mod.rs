//! The crash suite (`tests/crash.rs`, `tests/crash_ltx.rs`): a seeded driver runs an application
//! writer (its own process) against each of one or more databases while one real `walstream
//! replicate` ships them to file (or S3) replicas in the v0.3 or the LTX layout ([`ltx`]), kills
//! walstream (and sometimes the writer) at random moments, restarts them and checks every restore
//! against a deterministic replay of the workload.
//!
//! Must stay true: a run is a pure function of its seed except for timing; every loss and error
//! is reported with the seed and round; nothing started here outlives the test process.

#![allow(dead_code)]

pub mod check;
pub mod cli;
pub mod driver;
pub mod ltx;
pub mod model;
pub mod points;
pub mod rng;
pub mod walstream;
pub mod workload;
pub mod writer;

use std::time::Duration;

use workload::CHECKPOINT_MODES;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub rounds: u64,
    pub seed: u64,
    /// Replica on the test S3 server (moto, `scripts/test.sh`) instead of a local directory.
    pub s3: bool,
    /// Keep the working directory (database, replica, logs) after the run.
    pub keep: bool,
    /// Databases replicated by the one walstream process (each with its own writer and replica).
    pub dbs: usize,
    /// Replicas in the Litestream v0.5 (LTX) layout (a v0.5-shaped config).
    pub ltx: bool,
}

/// Figures of a run.
#[derive(Debug, Default)]
pub struct Stats {
    pub rounds: u64,
    pub walstream_starts: u64,
    /// SIGKILLs of walstream (every kind).
    pub walstream_kills: u64,
    /// ... of which cut a snapshot upload short (per walstream's log).
    pub mid_snapshot_kills: u64,
    /// ... of which cut a WAL segment upload short (per walstream's log).
    pub mid_upload_kills: u64,
    /// ... of which right after a forced snapshot completed.
    pub after_snapshot_kills: u64,
    /// ... of which right after a new generation's first snapshot, before any segment of it
    /// (LTX: soon after a full-image L0 was logged at start-up).
    pub new_generation_kills: u64,
    /// ... of which cut a compaction short (LTX, per the staging directory).
    pub mid_compaction_kills: u64,
    /// Clean SIGTERM stops (final sync checked).
    pub graceful_stops: u64,
    pub writer_kills: u64,
    /// ... of which inside a large transaction.
    pub writer_kills_in_big: u64,
    pub syncs: u64,
    pub forced_snapshots: u64,
    /// Application checkpoints per mode (PASSIVE, FULL, RESTART, TRUNCATE).
    pub checkpoints: [u64; 4],
    pub restores_latest: u64,
    /// `-timestamp` restores (v0.3) or `-txid` restores (LTX).
    pub restores_timestamp: u64,
    /// LTX: listings checked for gaps and overlaps, and rounds that ended with files in each
    /// level (index = level).
    pub level_checks: u64,
    pub levels_seen: [u64; ltx::LEVELS],
    /// LTX: gaps in L2..L8 below the oldest snapshot (snapshot retention's), per listing.
    pub retention_gaps: u64,
    /// LTX: checks of an empty replica with nothing durable yet (latest restore not expected).
    pub empty_replicas: u64,
    /// LTX: restores by the real Litestream v0.5.17 compared with walstream's.
    pub litestream_restores: u64,
    /// Restores checked (latest + `-timestamp`) per database.
    pub restores_per_db: Vec<u64>,
    pub model_rebuilds: u64,
    /// Generations deleted after the checks (S3 runs: only walstream's current one is kept).
    pub generations_pruned: u64,
    pub timestamps_unavailable: u64,
    pub restore_time: Duration,
    pub compare_time: Duration,
    /// Per database.
    pub last_seq: Vec<u64>,
    pub last_durable: Vec<u64>,
    pub losses: Vec<String>,
    pub errors: Vec<String>,
}

impl Stats {
    pub fn report(&self, opts: &Options, elapsed: Duration) -> String {
        let ckpt: Vec<String> = CHECKPOINT_MODES
            .iter()
            .zip(self.checkpoints)
            .map(|(m, n)| format!("{m} {n}"))
            .collect();
        let per_db = |v: &[u64]| {
            let v: Vec<String> = v.iter().map(u64::to_string).collect();
            v.join("/")
        };
        let faults = if opts.ltx {
            format!(
                "faults: walstream SIGKILL {} (mid-snapshot {}, mid-L0 {}, mid-compaction {}, right after a snapshot {}, soon after a full-image L0 {}), clean SIGTERM {}, writer SIGKILL {} (inside a large transaction {})",
                self.walstream_kills,
                self.mid_snapshot_kills,
                self.mid_upload_kills,
                self.mid_compaction_kills,
                self.after_snapshot_kills,
                self.new_generation_kills,
                self.graceful_stops,
                self.writer_kills,
                self.writer_kills_in_big,
            )
        } else {
            format!(
                "faults: walstream SIGKILL {} (mid-snapshot {}, mid-upload {}, right after a snapshot {}, new generation without WAL {}), clean SIGTERM {}, writer SIGKILL {} (inside a large transaction {})",
                self.walstream_kills,
                self.mid_snapshot_kills,
                self.mid_upload_kills,
                self.after_snapshot_kills,
                self.new_generation_kills,
                self.graceful_stops,
                self.writer_kills,
                self.writer_kills_in_big,
            )
        };
        let (points, unavailable) = if opts.ltx {
            ("-txid", "no reachable -txid target")
        } else {
            ("-timestamp", "no consistent -timestamp target")
        };
        let mut s = format!(
            "crash suite: seed {} backend {} layout {} databases {} rounds {}/{} in {:.1}s\n\
             {faults}\n\
             activity: walstream starts {}, syncs {}, forced snapshots {}, application checkpoints {} ({}), last seq {}, last durable seq {}\n\
             checks: restores checked {} (latest {}, {points} {}; per database {}; rounds with {unavailable} {}), replays from 0 {}, {:.1}s restoring, {:.1}s comparing, old generations deleted after the checks {}\n",
            opts.seed,
            if opts.s3 { "s3" } else { "file" },
            if opts.ltx { "ltx" } else { "v0.3" },
            opts.dbs,
            self.rounds,
            opts.rounds,
            elapsed.as_secs_f64(),
            self.walstream_starts,
            self.syncs,
            self.forced_snapshots,
            self.checkpoints.iter().sum::<u64>(),
            ckpt.join(", "),
            per_db(&self.last_seq),
            per_db(&self.last_durable),
            self.restores_latest + self.restores_timestamp,
            self.restores_latest,
            self.restores_timestamp,
            per_db(&self.restores_per_db),
            self.timestamps_unavailable,
            self.model_rebuilds,
            self.restore_time.as_secs_f64(),
            self.compare_time.as_secs_f64(),
            self.generations_pruned,
        );
        if opts.ltx {
            let seen: Vec<String> = self
                .levels_seen
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(l, n)| format!("L{l} {n}"))
                .collect();
            s.push_str(&format!(
                "ltx: level listings checked for gaps and overlaps {} (checks that found files per level: {}; gaps below the oldest snapshot, left by retention: {}; empty replica with nothing durable yet: {}), restores by litestream v0.5.17 compared {}\n",
                self.level_checks,
                seen.join(", "),
                self.retention_gaps,
                self.empty_replicas,
                self.litestream_restores,
            ));
        }
        s.push_str(&format!(
            "losses {}, errors {}\n",
            self.losses.len(),
            self.errors.len()
        ));
        for l in &self.losses {
            s.push_str(&format!("LOSS: {l}\n"));
        }
        for e in &self.errors {
            s.push_str(&format!("ERROR: {e}\n"));
        }
        s
    }

    pub fn failed(&self) -> bool {
        !self.losses.is_empty() || !self.errors.is_empty()
    }
}
