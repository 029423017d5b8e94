//! The crash driver: rounds of (start walstream, let the writer run while syncing and snapshotting
//! at random, inject a fault, maybe kill the writer, restore and check), all decided by a seeded
//! generator so a failing `(seed, round)` can be replayed.
//!
//! Faults per round: SIGKILL at a random moment, SIGKILL while a forced snapshot
//! (`POST …/snapshot`) is in flight, SIGKILL while a large transaction is not yet shipped, or a
//! clean SIGTERM stop; the writer is SIGKILLed in some rounds (sometimes inside a large
//! transaction) and keeps committing (and checkpointing) while walstream is down in others.
//!
//! Must stay true: a problem never aborts the run silently: losses (a restore that is not a
//! correct prefix holding everything durable) and errors (walstream stuck after a restart, a sync
//! or snapshot that fails, the writer dying on its own) are collected with the seed and round.

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use walstream::config::{ReplicaTarget, S3Target};

use super::check::{Checker, Durable, read_seq};
use super::rng::Rng;
use super::walstream::{self as ws, Backend, InFlight, Walstream};
use super::writer::Writer;
use super::{Options, Stats};

/// Stream id of the driver's decisions (see [`Rng::derive`]).
const STREAM: u64 = 2;
/// How long to wait for the writer's next large transaction.
const BIG_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for walstream to start the upload a fault aims at.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);

pub struct Driver {
    opts: Options,
    db: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    backend: Backend,
    checker: Checker,
    writer: Option<Writer>,
    writers_started: u64,
    durable: Vec<Durable>,
    pub stats: Stats,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    MidSnapshot,
    MidUpload,
    /// SIGKILL as soon as a forced snapshot answered 200.
    AfterSnapshot,
    Graceful,
}

impl Driver {
    pub fn new(opts: Options, dir: PathBuf) -> Driver {
        let db = dir.join(ws::DB_ID);
        let config = dir.join("walstream.yml");
        let (backend, target) = backend(&opts, &dir);
        let out_dir = dir.join("restored");
        std::fs::create_dir_all(&out_dir).expect("create restore dir");
        let checker = Checker::new(config.clone(), db.clone(), out_dir, target, opts.seed);
        Driver {
            db,
            dir,
            config,
            backend,
            checker,
            writer: None,
            writers_started: 0,
            durable: Vec::new(),
            stats: Stats::default(),
            opts,
        }
    }

    /// Runs every round; problems end up in `self.stats`.
    pub fn run(&mut self) {
        if let Err(e) = self.start_writer_and_wait() {
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
        }
        if let Some(w) = self.writer.take() {
            self.retire_writer(w);
        }
        self.stats.model_rebuilds = self.checker.model.rebuilds;
        self.stats.restores_latest = self.checker.restores_latest;
        self.stats.restores_timestamp = self.checker.restores_timestamp;
        self.stats.timestamps_unavailable = self.checker.timestamps_unavailable;
        self.stats.restore_time = self.checker.restore_time;
        self.stats.compare_time = self.checker.compare_time;
        self.stats.last_seq = read_seq(&self.db).ok().flatten().unwrap_or(0);
        self.stats.last_durable = self.durable.iter().map(|d| d.seq).max().unwrap_or(0);
    }

    fn round(&mut self, round: u64) -> Result<(), String> {
        let mut rng = Rng::derive(self.opts.seed, STREAM, round);
        self.ensure_writer();
        let text = ws::config(&self.db, &self.backend, &mut rng);
        std::fs::write(&self.config, text).map_err(|e| format!("write config: {e}"))?;
        let log = self.dir.join(format!("walstream-{round}.log"));
        let t0 = Instant::now();
        let mut proc = Walstream::start(&self.config, &log)?;
        self.stats.walstream_starts += 1;
        if rng.chance(1, 8) {
            let snapshot_first = proc
                .wait_ready_or_snapshot()
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
        for step in 0..steps {
            if writer_kill_at == Some(step) {
                self.kill_writer(&mut rng);
            }
            sleep(Duration::from_millis(rng.range(20, 400)));
            match rng.range(0, 100) {
                0..50 => self.sync(&proc)?,
                50..65 => self.snapshot(&proc)?,
                _ => {}
            }
        }
        let fault = *rng.pick(&[
            Fault::Kill,
            Fault::Kill,
            Fault::MidSnapshot,
            Fault::MidUpload,
            Fault::AfterSnapshot,
            Fault::Graceful,
        ]);
        let t1 = Instant::now();
        let note = self.inject(fault, proc, &mut rng)?;
        if writer_kill_at == Some(steps) {
            self.kill_writer(&mut rng);
        }
        if rng.chance(1, 2) {
            sleep(Duration::from_millis(rng.range(0, 300))); // the writer goes on unreplicated
        }
        let t2 = Instant::now();
        let problems = self.checker.check_round(&mut rng, &self.durable);
        let durable = self.durable.iter().map(|d| d.seq).max();
        let what = format!(
            "{note}; durable seq {durable:?}; {:.1}s+{:.1}s+{:.1}s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            t2.elapsed().as_secs_f64(),
        );
        self.report(round, &what, problems);
        Ok(())
    }

    /// Prints the round's line (`what`, then the restores' outcome) and records its problems
    /// as losses.
    fn report(&mut self, round: u64, what: &str, problems: Vec<String>) {
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
                .map(|p| format!("seed {seed} round {round}: {p}")),
        );
    }

    /// SIGKILL right after a new generation's first snapshot (before its WAL is stored, when
    /// quick enough), then the usual checks.
    fn after_new_generation(
        &mut self,
        round: u64,
        proc: Walstream,
        rng: &mut Rng,
    ) -> Result<(), String> {
        let log = proc.log_path();
        proc.kill();
        self.stats.walstream_kills += 1;
        let cut = InFlight::from_log(&std::fs::read_to_string(log).unwrap_or_default());
        self.stats.new_generation_kills += u64::from(cut.bare_snapshot);
        let problems = self.checker.check_round(rng, &self.durable);
        let what = format!(
            "SIGKILL after a new generation's snapshot (no segment after it: {})",
            cut.bare_snapshot
        );
        self.report(round, &what, problems);
        Ok(())
    }

    /// Applies `fault` to walstream (which is gone afterwards); returns a note for the log line.
    fn inject(&mut self, fault: Fault, proc: Walstream, rng: &mut Rng) -> Result<String, String> {
        let note = match fault {
            Fault::Kill => "SIGKILL".to_string(),
            Fault::MidSnapshot => {
                let (client, base) = proc.poster();
                let _req = std::thread::spawn(move || ws::post(&client, &base, "snapshot"));
                self.stats.forced_snapshots += 1;
                proc.wait_in_flight(IN_FLIGHT_WAIT, |f| f.snapshot);
                sleep(Duration::from_millis(rng.range(0, 20)));
                "SIGKILL after POST snapshot".to_string()
            }
            Fault::MidUpload => {
                if self.wait_big_commit() {
                    proc.wait_in_flight(IN_FLIGHT_WAIT, |f| f.segment);
                    sleep(Duration::from_millis(rng.range(0, 20)));
                }
                "SIGKILL after a large commit".to_string()
            }
            Fault::AfterSnapshot => {
                self.snapshot(&proc)?;
                self.stats.after_snapshot_kills += 1;
                "SIGKILL right after POST snapshot answered".to_string()
            }
            Fault::Graceful => return self.stop(proc),
        };
        let log = proc.log_path();
        proc.kill();
        self.stats.walstream_kills += 1;
        let cut = InFlight::from_log(&std::fs::read_to_string(log).unwrap_or_default());
        self.stats.mid_snapshot_kills += u64::from(cut.snapshot);
        self.stats.mid_upload_kills += u64::from(cut.segment);
        Ok(format!(
            "{note} (cut: snapshot {}, segment {})",
            cut.snapshot, cut.segment
        ))
    }

    /// SIGTERM: walstream must exit 0 after its final sync, which makes every transaction
    /// committed before the signal durable.
    fn stop(&mut self, proc: Walstream) -> Result<String, String> {
        let seq = read_seq(&self.db)?;
        let status = proc.terminate()?;
        if !status.success() {
            return Err(format!("walstream exited {status} after SIGTERM"));
        }
        if let Some(seq) = seq {
            self.durable.push(Durable {
                at: SystemTime::now(),
                seq,
            });
        }
        self.stats.graceful_stops += 1;
        Ok(format!("SIGTERM (seq {seq:?} must be durable)"))
    }

    /// Waits (bounded) for the writer's next large commit; false when none came.
    fn wait_big_commit(&mut self) -> bool {
        let Some(w) = self.writer.as_ref() else {
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

    fn sync(&mut self, proc: &Walstream) -> Result<(), String> {
        let seq = read_seq(&self.db)?.unwrap_or(0);
        let (code, body) = proc.post("sync")?;
        if code != 200 {
            return Err(format!("POST sync answered {code}: {body}"));
        }
        self.durable.push(Durable {
            at: SystemTime::now(),
            seq,
        });
        self.stats.syncs += 1;
        Ok(())
    }

    fn snapshot(&mut self, proc: &Walstream) -> Result<(), String> {
        let (code, body) = proc.post("snapshot")?;
        if code != 200 {
            return Err(format!("POST snapshot answered {code}: {body}"));
        }
        self.stats.forced_snapshots += 1;
        Ok(())
    }

    fn kill_writer(&mut self, rng: &mut Rng) {
        let Some(w) = self.writer.take() else { return };
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

    /// Restarts the writer when it was killed (and reports it when it died on its own).
    fn ensure_writer(&mut self) {
        if let Some(w) = self.writer.as_mut()
            && let Some(how) = w.exited()
        {
            self.stats.errors.push(format!(
                "seed {} round {}: {how}",
                self.opts.seed, self.stats.rounds
            ));
            let w = self.writer.take().expect("checked");
            self.retire_writer(w);
        }
        if self.writer.is_none() {
            let log = self.dir.join("writer.log");
            self.writer = Some(Writer::start(&self.db, self.opts.seed, &log));
            self.writers_started += 1;
        }
    }

    fn start_writer_and_wait(&mut self) -> Result<(), String> {
        self.ensure_writer();
        let end = Instant::now() + ws::DEADLINE;
        while !matches!(read_seq(&self.db), Ok(Some(s)) if s >= 1) {
            if let Some(how) = self.writer.as_mut().and_then(|w| w.exited()) {
                return Err(how);
            }
            if Instant::now() > end {
                return Err("the writer never committed transaction 1".into());
            }
            sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// The replica location for walstream's config and for listing it.
fn backend(opts: &Options, dir: &std::path::Path) -> (Backend, ReplicaTarget) {
    if !opts.s3 {
        let path = dir.join("replica");
        return (
            Backend::File { dir: path.clone() },
            ReplicaTarget::File { path },
        );
    }
    let endpoint = crate::common::s3_endpoint();
    let bucket = crate::common::bucket();
    let prefix = crate::common::unique_name("crash");
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
