//! The crash driver: rounds of (start walstream, let the writers run while syncing and
//! snapshotting at random, inject a fault, maybe kill writers, restore and check), all decided by
//! a seeded generator so a failing `(seed, round)` can be replayed.
//!
//! A run has one or more databases (`--dbs`), all replicated by the one walstream process, each
//! with its own writer process, workload seed, replica and checker; a one-database run is the
//! same code with one database. Faults per round: SIGKILL at a random moment, SIGKILL while a
//! forced snapshot (`POST …/snapshot` of one database) is in flight, SIGKILL while a large
//! transaction of one database is not yet shipped, or a clean SIGTERM stop — the fault hits the
//! one process, so every database is cut wherever it was; the writers of one or more databases
//! are SIGKILLed in some rounds (sometimes inside a large transaction) and keep committing (and
//! checkpointing) while walstream is down in others. After the fault every database is restored
//! and checked.
//!
//! LTX layout (`--ltx`): the faults aim at the LTX writer's work instead, told by its staging
//! directory ([`ltx::Staged`]): a forced L9 snapshot, an L0 of a large commit, a compaction (a
//! fault of its own) or a full-image L0 at start-up in flight; each sync also records the
//! replica's top TXID (what `-txid` restores must hold it from); and every
//! [`LITESTREAM_EVERY`] rounds and at the end, each database is restored by the real Litestream
//! v0.5.17 too ([`Checker::compare_litestream`]).
//!
//! Must stay true: a problem never aborts the run silently: losses (a restore that is not a
//! correct prefix holding everything durable) and errors (walstream stuck after a restart, a sync
//! or snapshot that fails, a writer dying on its own) are collected with the seed, round and
//! database.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use walstream::config::{ReplicaTarget, S3Target};

use super::check::{Checker, Durable, read_seq};
use super::ltx::{self, Staged};
use super::rng::Rng;
use super::walstream::{self as ws, Backend, InFlight, Walstream};
use super::writer::Writer;
use super::{Options, Stats};

/// Stream id of the driver's decisions (see [`Rng::derive`]).
const STREAM: u64 = 2;
/// Stream id of the choice of databases a round's actions hit (separate from [`STREAM`], so a
/// one-database run makes exactly the decisions it made before `--dbs` existed).
const PICK_STREAM: u64 = 3;
/// Stream id of the workload seeds of databases after the first.
const DB_SEED_STREAM: u64 = 4;
/// Generations an S3 run keeps per database after the checks (see [`Checker::prune`]).
const KEEP_GENERATIONS: usize = 4;
/// How long to wait for the writer's next large transaction.
const BIG_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for walstream to start the upload a fault aims at.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);
/// LTX: rounds between restores by the real Litestream v0.5.17 (and once after the last round).
pub const LITESTREAM_EVERY: u64 = 25;
/// LTX: stream id of the choices made for the Litestream comparison.
const LITESTREAM_STREAM: u64 = 5;

/// One database of the run: its file, replica, application writer, what `POST …/sync` made
/// durable, and its checker (own workload seed, own replay).
struct Lane {
    index: usize,
    /// File name, also the database's id in the HTTP API.
    name: String,
    db: PathBuf,
    seed: u64,
    backend: Backend,
    checker: Checker,
    writer: Option<Writer>,
    writer_log: PathBuf,
    durable: Vec<Durable>,
    /// Walstream's current generation at the last checks (distinct, newest last): what S3
    /// pruning keeps.
    generations: Vec<String>,
    /// LTX: what the staging directory held when walstream started (left by an earlier kill).
    staged_before: std::collections::BTreeSet<String>,
}

impl Lane {
    fn new(opts: &Options, dir: &Path, index: usize) -> Lane {
        let name = ws::db_name(index);
        let db = dir.join(&name);
        // Database 0 keeps the run's seed (a one-database run is what it always was); the others
        // get their own workload, derived from (seed, index).
        let seed = if index == 0 {
            opts.seed
        } else {
            Rng::derive(opts.seed, DB_SEED_STREAM, index as u64).next_u64()
        };
        let suffix = if index == 0 {
            String::new()
        } else {
            format!("-{index}")
        };
        let (backend, target) = backend(opts, dir, &suffix);
        let out_dir = dir.join(format!("restored{suffix}"));
        std::fs::create_dir_all(&out_dir).expect("create restore dir");
        let config = dir.join("walstream.yml");
        let checker = Checker::new(config, db.clone(), out_dir, target, seed, opts.ltx);
        if opts.ltx {
            std::fs::write(
                &checker.litestream_config,
                ltx::litestream_config(&db, &backend),
            )
            .expect("write litestream config");
        }
        Lane {
            index,
            name,
            db,
            seed,
            backend,
            checker,
            writer: None,
            writer_log: dir.join(format!("writer{suffix}.log")),
            durable: Vec::new(),
            generations: Vec::new(),
            staged_before: Default::default(),
        }
    }

    fn durable_max(&self) -> Option<u64> {
        self.durable.iter().map(|d| d.seq).max()
    }
}

pub struct Driver {
    opts: Options,
    dir: PathBuf,
    config: PathBuf,
    lanes: Vec<Lane>,
    writers_started: u64,
    pub stats: Stats,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    MidSnapshot,
    MidUpload,
    /// SIGKILL as soon as a forced snapshot answered 200.
    AfterSnapshot,
    /// LTX: SIGKILL while a compaction is staged (downloading, merging or uploading).
    MidCompaction,
    Graceful,
}

impl Driver {
    pub fn new(opts: Options, dir: PathBuf) -> Driver {
        let config = dir.join("walstream.yml");
        let lanes = (0..opts.dbs.max(1))
            .map(|i| Lane::new(&opts, &dir, i))
            .collect();
        Driver {
            dir,
            config,
            lanes,
            writers_started: 0,
            stats: Stats::default(),
            opts,
        }
    }

    /// Runs every round; problems end up in `self.stats`.
    pub fn run(&mut self) {
        if let Err(e) = self.start_writers_and_wait() {
            self.stats
                .errors
                .push(format!("seed {} before round 1: {e}", self.opts.seed));
            return;
        }
        for round in 1..=self.opts.rounds {
            self.stats.rounds = round;
            if let Err(e) = self.round(round) {
                self.stats
                    .errors
                    .push(format!("seed {} round {round}: {e}", self.opts.seed));
                break; // walstream stuck or gone: later rounds would only repeat it
            }
            if self.opts.ltx && round.is_multiple_of(LITESTREAM_EVERY) && round < self.opts.rounds {
                self.compare_litestream(round);
            }
        }
        if self.opts.ltx && self.stats.errors.is_empty() {
            self.compare_litestream(0);
        }
        for i in 0..self.lanes.len() {
            if let Some(w) = self.lanes[i].writer.take() {
                self.retire_writer(w);
            }
        }
        let s = &mut self.stats;
        for lane in &self.lanes {
            let c = &lane.checker;
            s.model_rebuilds += c.model.rebuilds;
            s.restores_latest += c.restores_latest;
            s.restores_timestamp += c.restores_timestamp;
            s.restores_per_db
                .push(c.restores_latest + c.restores_timestamp);
            s.timestamps_unavailable += c.timestamps_unavailable;
            s.restore_time += c.restore_time;
            s.compare_time += c.compare_time;
            s.level_checks += c.level_checks;
            s.retention_gaps += c.retention_gaps;
            s.empty_replicas += c.empty_replicas;
            s.litestream_restores += c.litestream_restores;
            for (total, n) in s.levels_seen.iter_mut().zip(c.levels_seen) {
                *total += n;
            }
            s.last_seq
                .push(read_seq(&lane.db).ok().flatten().unwrap_or(0));
            s.last_durable.push(lane.durable_max().unwrap_or(0));
        }
    }

    fn round(&mut self, round: u64) -> Result<(), String> {
        let mut rng = Rng::derive(self.opts.seed, STREAM, round);
        let mut pick = Rng::derive(self.opts.seed, PICK_STREAM, round);
        self.ensure_writers();
        let dbs: Vec<(&Path, &Backend)> = self
            .lanes
            .iter()
            .map(|l| (l.db.as_path(), &l.backend))
            .collect();
        let text = ws::config(&dbs, self.opts.ltx, &mut rng);
        std::fs::write(&self.config, text).map_err(|e| format!("write config: {e}"))?;
        let log = self.dir.join(format!("walstream-{round}.log"));
        for lane in &mut self.lanes {
            lane.staged_before = ltx::staged_names(&lane.db);
        }
        let t0 = Instant::now();
        let mut proc = Walstream::start(&self.config, &log)?;
        self.stats.walstream_starts += 1;
        if rng.chance(1, 8) {
            let first = if self.opts.ltx {
                "write full-image l0"
            } else {
                "snapshot written"
            };
            let snapshot_first = proc
                .wait_ready_or_log(first)
                .map_err(|e| format!("walstream not ready after restart: {e}"))?;
            if snapshot_first {
                return self.after_new_generation(round, proc, &mut rng);
            }
        }
        proc.wait_ready()
            .map_err(|e| format!("walstream not ready after restart: {e}"))?;

        let steps = rng.range(1, 4) as usize;
        let writer_kill_at = rng
            .chance(1, 4)
            .then(|| rng.range(0, steps as u64 + 1) as usize);
        let victims = self.pick_some(&mut pick);
        for step in 0..steps {
            if writer_kill_at == Some(step) {
                self.kill_writers(&victims, &mut rng);
            }
            sleep(Duration::from_millis(rng.range(20, 400)));
            match rng.range(0, 100) {
                0..50 => self.sync(&proc, self.pick_one(&mut pick))?,
                50..65 => self.snapshot(&proc, self.pick_one(&mut pick))?,
                _ => {}
            }
        }
        let fault = if self.opts.ltx {
            *rng.pick(&[
                Fault::Kill,
                Fault::MidSnapshot,
                Fault::MidUpload,
                Fault::MidCompaction,
                Fault::AfterSnapshot,
                Fault::Graceful,
            ])
        } else {
            *rng.pick(&[
                Fault::Kill,
                Fault::Kill,
                Fault::MidSnapshot,
                Fault::MidUpload,
                Fault::AfterSnapshot,
                Fault::Graceful,
            ])
        };
        let t1 = Instant::now();
        let target = self.pick_one(&mut pick);
        let note = self.inject(fault, proc, target, &mut rng)?;
        if writer_kill_at == Some(steps) {
            self.kill_writers(&victims, &mut rng);
        }
        if rng.chance(1, 2) {
            sleep(Duration::from_millis(rng.range(0, 300))); // the writers go on unreplicated
        }
        let t2 = Instant::now();
        let problems = self.check_all(&mut rng);
        let durable: Vec<String> = self
            .lanes
            .iter()
            .map(|l| format!("{:?}", l.durable_max()))
            .collect();
        let what = format!(
            "{note}; durable seq {}; {:.1}s+{:.1}s+{:.1}s",
            durable.join("/"),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            t2.elapsed().as_secs_f64(),
        );
        self.report(round, &what, problems);
        Ok(())
    }

    /// LTX: every database restored by the real Litestream v0.5.17 and by walstream (walstream
    /// is stopped); differences are losses of `round` (0: after the last round).
    fn compare_litestream(&mut self, round: u64) {
        let mut rng = Rng::derive(self.opts.seed, LITESTREAM_STREAM, round);
        let seed = self.opts.seed;
        let when = if round == 0 {
            "final".to_string()
        } else {
            format!("round {round}")
        };
        let mut found = Vec::new();
        for lane in &mut self.lanes {
            for p in lane.checker.compare_litestream(&mut rng) {
                found.push(format!(
                    "seed {seed} {when} db {}: compared with litestream v0.5.17: {p}",
                    lane.index
                ));
            }
        }
        println!(
            "{when}: litestream v0.5.17 restores compared: {}",
            if found.is_empty() {
                "same results".to_string()
            } else {
                format!("{} problem(s)", found.len())
            }
        );
        self.stats.losses.extend(found);
    }

    /// One database, uniformly (always database 0 in a one-database run).
    fn pick_one(&self, pick: &mut Rng) -> usize {
        pick.range(0, self.lanes.len() as u64) as usize
    }

    /// One or more distinct databases (whose writers a round kills).
    fn pick_some(&self, pick: &mut Rng) -> Vec<usize> {
        let n = self.lanes.len();
        let count = pick.range(1, n as u64 + 1) as usize;
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let j = pick.range(i as u64, n as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count);
        all.sort_unstable();
        all
    }

    /// Restores and checks every database; returns `(database index, problem)` pairs. On S3,
    /// then deletes all but the last [`KEEP_GENERATIONS`] generations walstream wrote (see
    /// [`Checker::prune`]): the test server keeps every object in memory, and most rounds start
    /// a generation, so an unpruned 400-round run holds gigabytes.
    fn check_all(&mut self, rng: &mut Rng) -> Vec<(usize, String)> {
        let mut problems = Vec::new();
        for lane in &mut self.lanes {
            let found = lane.checker.check_round(rng, &lane.durable);
            problems.extend(found.into_iter().map(|p| (lane.index, p)));
        }
        // LTX replicas have no generations: retention (seconds here) keeps them small.
        if self.opts.s3 && !self.opts.ltx {
            for lane in &mut self.lanes {
                let meta = lane.db.with_file_name(format!(".{}-litestream", lane.name));
                let Ok(current) = std::fs::read_to_string(meta.join("generation")) else {
                    continue;
                };
                let current = current.trim().to_string();
                if lane.generations.last() != Some(&current) {
                    lane.generations.push(current);
                }
                let excess = lane.generations.len().saturating_sub(KEEP_GENERATIONS);
                lane.generations.drain(..excess);
                match lane.checker.prune(&lane.generations) {
                    Ok(n) => self.stats.generations_pruned += n,
                    Err(e) => problems.push((lane.index, format!("pruning the replica: {e}"))),
                }
            }
        }
        problems
    }

    /// Prints the round's line (`what`, then the restores' outcome) and records its problems
    /// as losses.
    fn report(&mut self, round: u64, what: &str, problems: Vec<(usize, String)>) {
        let outcome = if problems.is_empty() {
            "restores ok".to_string()
        } else {
            format!("{} problem(s)", problems.len())
        };
        println!("round {round}/{}: {what}; {outcome}", self.opts.rounds);
        let seed = self.opts.seed;
        self.stats.losses.extend(
            problems
                .into_iter()
                .map(|(db, p)| format!("seed {seed} round {round} db {db}: {p}")),
        );
    }

    /// SIGKILL right after a new generation's first snapshot (before its WAL is stored, when
    /// quick enough; LTX: within a few milliseconds of the full-image L0 being logged), then the
    /// usual checks.
    fn after_new_generation(
        &mut self,
        round: u64,
        proc: Walstream,
        rng: &mut Rng,
    ) -> Result<(), String> {
        if self.opts.ltx {
            sleep(Duration::from_millis(rng.range(0, 30)));
        }
        let log = proc.log_path();
        proc.kill();
        self.stats.walstream_kills += 1;
        let what = if self.opts.ltx {
            let cut = self.staged_now();
            self.stats.new_generation_kills += 1;
            format!(
                "SIGKILL soon after a full-image L0 was logged (cut: {})",
                cut_note(cut)
            )
        } else {
            let cut = InFlight::from_log(&std::fs::read_to_string(log).unwrap_or_default());
            self.stats.new_generation_kills += u64::from(cut.bare_snapshot);
            format!(
                "SIGKILL after a new generation's snapshot (no segment after it: {})",
                cut.bare_snapshot
            )
        };
        let problems = self.check_all(rng);
        self.report(round, &what, problems);
        Ok(())
    }

    /// LTX: what walstream has staged (started and not stored), over every database.
    fn staged_now(&self) -> Staged {
        self.lanes.iter().fold(Staged::default(), |acc, l| {
            acc.or(Staged::scan(&l.db, &l.staged_before))
        })
    }

    /// LTX: polls (at most `limit`) until database `index` stages what `want` asks for.
    fn wait_staged(&self, index: usize, limit: Duration, want: impl Fn(Staged) -> bool) -> bool {
        let lane = &self.lanes[index];
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if want(Staged::scan(&lane.db, &lane.staged_before)) {
                return true;
            }
            sleep(Duration::from_millis(2));
        }
        false
    }

    /// Applies `fault` to walstream (which is gone afterwards); a forced snapshot or a large
    /// commit it aims at is database `target`'s. Returns a note for the log line.
    fn inject(
        &mut self,
        fault: Fault,
        proc: Walstream,
        target: usize,
        rng: &mut Rng,
    ) -> Result<String, String> {
        let on = self.on(target);
        let ltx = self.opts.ltx;
        let note = match fault {
            Fault::Kill => "SIGKILL".to_string(),
            Fault::MidSnapshot => {
                let (client, base) = proc.poster();
                let name = self.lanes[target].name.clone();
                let _req = std::thread::spawn(move || ws::post(&client, &base, &name, "snapshot"));
                self.stats.forced_snapshots += 1;
                if ltx {
                    self.wait_staged(target, IN_FLIGHT_WAIT, |s| s.snapshot);
                } else {
                    proc.wait_in_flight(IN_FLIGHT_WAIT, |f| f.snapshot);
                }
                sleep(Duration::from_millis(rng.range(0, 20)));
                format!("SIGKILL after POST snapshot{on}")
            }
            Fault::MidUpload => {
                if self.wait_big_commit(target) {
                    if ltx {
                        self.wait_staged(target, IN_FLIGHT_WAIT, |s| s.l0);
                    } else {
                        proc.wait_in_flight(IN_FLIGHT_WAIT, |f| f.segment);
                    }
                    sleep(Duration::from_millis(rng.range(0, 20)));
                }
                format!("SIGKILL after a large commit{on}")
            }
            Fault::MidCompaction => {
                self.wait_staged(target, IN_FLIGHT_WAIT, |s| s.compaction);
                sleep(Duration::from_millis(rng.range(0, 5)));
                format!("SIGKILL during a compaction{on}")
            }
            Fault::AfterSnapshot => {
                self.snapshot(&proc, target)?;
                self.stats.after_snapshot_kills += 1;
                format!("SIGKILL right after POST snapshot answered{on}")
            }
            Fault::Graceful => return self.stop(proc),
        };
        let log = proc.log_path();
        proc.kill();
        self.stats.walstream_kills += 1;
        if ltx {
            let cut = self.staged_now();
            self.stats.mid_snapshot_kills += u64::from(cut.snapshot);
            self.stats.mid_upload_kills += u64::from(cut.l0);
            self.stats.mid_compaction_kills += u64::from(cut.compaction);
            return Ok(format!("{note} (cut: {})", cut_note(cut)));
        }
        let cut = InFlight::from_log(&std::fs::read_to_string(log).unwrap_or_default());
        self.stats.mid_snapshot_kills += u64::from(cut.snapshot);
        self.stats.mid_upload_kills += u64::from(cut.segment);
        Ok(format!(
            "{note} (cut: snapshot {}, segment {})",
            cut.snapshot, cut.segment
        ))
    }

    /// " on db N" for a log line, nothing in a one-database run.
    fn on(&self, index: usize) -> String {
        if self.lanes.len() == 1 {
            String::new()
        } else {
            format!(" on db {index}")
        }
    }

    /// SIGTERM: walstream must exit 0 after its final sync, which makes every transaction of
    /// every database committed before the signal durable.
    fn stop(&mut self, proc: Walstream) -> Result<String, String> {
        let seqs = self
            .lanes
            .iter()
            .map(|l| read_seq(&l.db))
            .collect::<Result<Vec<_>, _>>()?;
        let status = proc.terminate()?;
        if !status.success() {
            return Err(format!("walstream exited {status} after SIGTERM"));
        }
        let at = SystemTime::now();
        for (lane, seq) in self.lanes.iter_mut().zip(&seqs) {
            if let Some(seq) = *seq {
                let txid = self.opts.ltx.then(|| lane.checker.top_txid()).transpose()?;
                lane.durable.push(Durable { at, seq, txid });
            }
        }
        self.stats.graceful_stops += 1;
        let seqs: Vec<String> = seqs.iter().map(|s| format!("{s:?}")).collect();
        Ok(format!("SIGTERM (seq {} must be durable)", seqs.join("/")))
    }

    /// Waits (bounded) for the next large commit of database `index`'s writer; false when none
    /// came.
    fn wait_big_commit(&mut self, index: usize) -> bool {
        let Some(w) = self.lanes[index].writer.as_ref() else {
            return false;
        };
        let seen = w.events.lock().expect("events").big_commits.len();
        let end = Instant::now() + BIG_WAIT;
        while w.events.lock().expect("events").big_commits.len() == seen {
            if Instant::now() > end {
                return false;
            }
            sleep(Duration::from_millis(2));
        }
        true
    }

    fn sync(&mut self, proc: &Walstream, index: usize) -> Result<(), String> {
        let lane = &mut self.lanes[index];
        let seq = read_seq(&lane.db)?.unwrap_or(0);
        let (code, body) = proc.post(&lane.name, "sync")?;
        if code != 200 {
            return Err(format!("POST {} sync answered {code}: {body}", lane.name));
        }
        let at = SystemTime::now();
        // LTX: the L0 holding `seq` ends at or below the top TXID listed now.
        let txid = self.opts.ltx.then(|| lane.checker.top_txid()).transpose()?;
        lane.durable.push(Durable { at, seq, txid });
        self.stats.syncs += 1;
        Ok(())
    }

    fn snapshot(&mut self, proc: &Walstream, index: usize) -> Result<(), String> {
        let name = &self.lanes[index].name;
        let (code, body) = proc.post(name, "snapshot")?;
        if code != 200 {
            return Err(format!("POST {name} snapshot answered {code}: {body}"));
        }
        self.stats.forced_snapshots += 1;
        Ok(())
    }

    /// SIGKILLs the writers of the databases in `victims`.
    fn kill_writers(&mut self, victims: &[usize], rng: &mut Rng) {
        for &i in victims {
            self.kill_writer(i, rng);
        }
    }

    fn kill_writer(&mut self, index: usize, rng: &mut Rng) {
        let Some(w) = self.lanes[index].writer.take() else {
            return;
        };
        if rng.chance(1, 2) {
            // Inside a large transaction, when one comes soon.
            let end = Instant::now() + BIG_WAIT;
            while !w.events.lock().expect("events").big_open && Instant::now() < end {
                sleep(Duration::from_millis(1));
            }
            if w.events.lock().expect("events").big_open {
                sleep(Duration::from_millis(rng.range(0, 20)));
                self.stats.writer_kills_in_big += 1;
            }
        }
        self.retire_writer(w);
        self.stats.writer_kills += 1;
    }

    fn retire_writer(&mut self, w: Writer) {
        let ckpt = w.events.lock().expect("events").checkpoints;
        for (total, n) in self.stats.checkpoints.iter_mut().zip(ckpt) {
            *total += n;
        }
        w.kill();
    }

    /// Restarts every writer that was killed (and reports one that died on its own).
    fn ensure_writers(&mut self) {
        for i in 0..self.lanes.len() {
            let lane = &mut self.lanes[i];
            if let Some(w) = lane.writer.as_mut()
                && let Some(how) = w.exited()
            {
                self.stats.errors.push(format!(
                    "seed {} round {} db {i}: {how}",
                    self.opts.seed, self.stats.rounds
                ));
                let w = lane.writer.take().expect("checked");
                self.retire_writer(w);
            }
            let lane = &mut self.lanes[i];
            if lane.writer.is_none() {
                lane.writer = Some(Writer::start(&lane.db, lane.seed, &lane.writer_log));
                self.writers_started += 1;
            }
        }
    }

    fn start_writers_and_wait(&mut self) -> Result<(), String> {
        self.ensure_writers();
        let end = Instant::now() + ws::DEADLINE;
        for lane in &mut self.lanes {
            while !matches!(read_seq(&lane.db), Ok(Some(s)) if s >= 1) {
                if let Some(how) = lane.writer.as_mut().and_then(|w| w.exited()) {
                    return Err(format!("db {}: {how}", lane.index));
                }
                if Instant::now() > end {
                    return Err(format!(
                        "db {}: the writer never committed transaction 1",
                        lane.index
                    ));
                }
                sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

/// " l0 true, compaction false, snapshot false" for a round's log line.
fn cut_note(cut: Staged) -> String {
    format!(
        "L0 {}, compaction {}, snapshot {}",
        cut.l0, cut.compaction, cut.snapshot
    )
}

/// The replica location for walstream's config and for listing it.
/// `suffix` tells the databases of a run apart (empty for the first): each has its own replica
/// directory, or its own prefix in the test bucket.
fn backend(opts: &Options, dir: &Path, suffix: &str) -> (Backend, ReplicaTarget) {
    if !opts.s3 {
        let path = dir.join(format!("replica{suffix}"));
        return (
            Backend::File { dir: path.clone() },
            ReplicaTarget::File { path },
        );
    }
    let endpoint = crate::common::s3_endpoint();
    let bucket = crate::common::bucket();
    let prefix = crate::common::unique_name(&format!("crash{suffix}"));
    let target = ReplicaTarget::S3(S3Target {
        bucket: bucket.clone(),
        path: prefix.clone(),
        region: Some(crate::common::S3_REGION.to_string()),
        endpoint: Some(endpoint.clone()),
        force_path_style: true,
        access_key_id: Some(crate::common::S3_ACCESS_KEY_ID.to_string()),
        secret_access_key: Some(crate::common::S3_SECRET_ACCESS_KEY.to_string()),
        ..S3Target::default()
    });
    (
        Backend::S3 {
            endpoint,
            bucket,
            prefix,
        },
        target,
    )
}
