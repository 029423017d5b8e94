//! The storage-fault suite: the real `walstream replicate` binary replicates to moto (S3)
//! through a fault-injecting TCP proxy (`tests/faults_support/proxy.rs`) while an application
//! commits steadily, and the suite checks what an operator would: retries show in `/metrics`,
//! `/readyz` and the lag follow an outage, the application's `-wal` stays bounded, replication
//! resumes in the same generation, and after a `POST …/sync` both `walstream restore` and the
//! real Litestream v0.3.13 restore exactly the source (nothing lost), from a replica whose WAL
//! segments neither overlap nor repeat. The mixed-fault and hang scenarios also run on an LTX
//! replica (`ltx_*`): every compaction level stays gap- and overlap-free and Litestream v0.5.17
//! restores it.
//!
//! Pacing: nothing sleeps for readiness; every wait polls with a deadline. A hang costs about
//! 10 s per hung request (walstream's per-request limits, `src/storage/retry.rs`), longer for a
//! hung listing (30 s), which is the behaviour under test.

mod common;
#[path = "faults_support/mod.rs"]
mod faults_support;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use faults_support::proxy::{Counts, Fault, FaultPlan, Mode, Proxy, Weights};
use faults_support::{Settings, TOKEN};
use http_support::{Instance, tempdir};
use support::{Writer, insert, open_app, rows};

/// Spacing of the application's commits (about 60 per second).
const WRITE_SPACING: Duration = Duration::from_millis(15);

/// One test's world: app database, proxy, running walstream.
struct World {
    _keep: tempfile::TempDir,
    dir: PathBuf,
    db: PathBuf,
    app: rusqlite::Connection,
    prefix: String,
    proxy: Proxy,
    cfg: String,
    ws: Option<Instance>,
    /// The replica writes LTX.
    ltx: bool,
}

impl World {
    /// Creates the database with one row, starts the proxy in `mode` and walstream, and waits
    /// until the replica holds that row (ready; not waited for in an outage).
    fn start(tag: &str, settings: &Settings, mode: Mode) -> World {
        let (keep, dir) = tempdir();
        let db = dir.join("app.db");
        let app = open_app(&db);
        insert(&app, 1);
        let prefix = common::unique_name(tag);
        let proxy = Proxy::start(&common::s3_endpoint());
        proxy.set_mode(mode);
        let cfg = faults_support::config(&db, &proxy.endpoint(), &prefix, settings);
        let mut w = World {
            _keep: keep,
            dir,
            db,
            app,
            prefix,
            proxy,
            cfg,
            ws: None,
            ltx: settings.ltx,
        };
        if matches!(mode, Mode::Outage) {
            w.launch_walstream();
        } else {
            w.start_walstream();
        }
        w
    }

    /// Starts walstream (again) and waits until it is ready.
    fn start_walstream(&mut self) {
        self.launch_walstream();
        common::poll_until(Duration::from_secs(60), "walstream to become ready", || {
            self.ws().get("/readyz").status == 200
        });
    }

    /// Starts walstream (again) without waiting for readiness.
    fn launch_walstream(&mut self) {
        self.ws = Some(Instance::start(
            &self.dir,
            &self.cfg,
            &faults_support::env(),
        ));
    }

    /// Stops walstream (SIGTERM; it must exit 0); returns its log.
    fn stop_walstream(&mut self) -> String {
        self.ws.take().expect("walstream running").proc.stop()
    }

    fn ws(&self) -> &Instance {
        self.ws.as_ref().expect("walstream running")
    }

    fn labels(&self) -> [(&str, &str); 2] {
        [("db", self.db.to_str().expect("utf-8")), ("name", "s3")]
    }

    fn metric(&self, name: &str) -> f64 {
        self.ws().metrics().must(name, &self.labels())
    }

    fn checkpoints(&self) -> f64 {
        let s = self.ws().metrics();
        s.of("litestream_checkpoint_count")
            .iter()
            .map(|x| x.value)
            .sum()
    }

    fn db_status(&self) -> Value {
        self.ws().status()["databases"][0].clone()
    }

    /// `POST …/sync` with the token; panics unless 200.
    fn sync(&self) -> Value {
        let r = self.ws().post(
            "/api/v1/databases/app.db/sync?timeout=50s",
            Some(&format!("Bearer {TOKEN}")),
        );
        assert_eq!(r.status, 200, "sync: {}", r.body);
        r.json()
    }

    /// Stops walstream; checks the replica has one clean generation `generation` and that
    /// both restores from moto directly equal the source, and with `through_proxy`, that
    /// `walstream restore` through the proxy (in whatever mode it is) does too. Returns the
    /// number of WAL segments and the proxy's final counts.
    fn finish(self, generation: &str, through_proxy: bool) -> (usize, Counts) {
        // The proxy stays up (passing) for walstream's final sync.
        let mut w = self;
        if w.ws.is_some() {
            w.stop_walstream();
        }
        let World {
            dir,
            db,
            app,
            prefix,
            proxy,
            ltx,
            ..
        } = w;
        let segments = if ltx {
            let files = faults_support::assert_clean_ltx_levels(&dir, &db, &prefix);
            eprintln!("ltx files per level: {files:?}");
            files.values().sum()
        } else {
            faults_support::assert_one_clean_generation(&prefix, generation)
        };
        let source = rows(&app);
        if through_proxy {
            let cfg = dir.join("walstream.yml");
            let args = [cfg.to_str().expect("utf-8"), db.to_str().expect("utf-8")];
            let restored = support::restore_with(
                &common::walstream_bin(),
                &faults_support::env(),
                &["-config", args[0], args[1]],
                &dir.join("through-proxy.db"),
            );
            assert_eq!(restored, source, "restore through the proxy differs");
        }
        let [ours, theirs] = faults_support::restore_both(&dir, &db, &prefix, ltx);
        assert_eq!(ours.len(), source.len(), "walstream restore lost rows");
        assert_eq!(ours, source, "walstream restore differs from the source");
        assert_eq!(theirs, source, "litestream restore differs from the source");
        (segments, proxy.counts())
    }
}

fn generation_of(db_status: &Value) -> String {
    db_status["generation"]
        .as_str()
        .unwrap_or_else(|| panic!("no generation: {db_status:#}"))
        .to_string()
}

#[test]
fn mixed_5xx_resets_and_slow_answers_are_retried_without_loss() {
    mixed_faults("faults-mixed", &Settings::default());
}

/// The same on an LTX replica: L0 uploads, L1 compactions (every 2 s) and L0 retention run
/// under the faults; every level stays gap- and overlap-free and Litestream v0.5.17 restores it.
#[test]
fn ltx_mixed_faults_are_retried_without_loss_or_gap() {
    let settings = Settings {
        ltx: true,
        ..Settings::default()
    };
    mixed_faults("faults-ltx-mixed", &settings);
}

fn mixed_faults(tag: &str, settings: &Settings) {
    let plan = FaultPlan {
        burst_rate: 0.1,
        burst_max: 4,
        weights: Weights {
            error_500: 1,
            slow_down_503: 1,
            reset_before: 1,
            reset_after: 1,
        },
        slow_rate: 0.1,
        slow_delay: Duration::from_millis(800),
    };
    // Faults from the start: the first listing, the generation's snapshot and first segment
    // go through them too.
    let w = World::start(tag, settings, Mode::Faults(plan));
    let generation = generation_of(&w.db_status());
    let start_pos = w.db_status()["replicas"][0]["position"].clone();
    let writer = Writer::paced(&w.db, 2, WRITE_SPACING);
    let kinds = [
        Fault::Error500,
        Fault::SlowDown503,
        Fault::ResetBefore,
        Fault::ResetAfter,
        Fault::Slow,
    ];
    common::poll_until(
        Duration::from_secs(60),
        "every fault kind injected twice, five uploads faulted and a retry counted",
        || {
            let c = w.proxy.counts();
            kinds.iter().all(|k| c.of(*k) >= 2)
                && c.faulted_methods.get("PUT").copied() >= Some(5)
                && w.metric("walstream_replica_storage_retries_total") >= 1.0
        },
    );
    if settings.ltx {
        common::poll_until(
            Duration::from_secs(60),
            "an L1 compaction under the faults",
            || faults_support::has_ltx_level(&w.prefix, 1),
        );
    }
    // Replication went on under the faults.
    let moved = w.db_status()["replicas"][0]["position"].clone();
    assert_ne!(moved, start_pos, "the replica did not advance under faults");
    let last = writer.finish();
    // The flush itself runs under the same faults.
    let synced = w.sync();
    assert_eq!(synced["position"]["generation"], generation.as_str());
    assert_eq!(rows(&w.app).last().map(|r| r.0), Some(last));
    let retries = w.metric("walstream_replica_storage_retries_total");
    // The final sync on shutdown and a walstream restore (GETs) run under denser faults (short
    // bursts, which object_store's own retries absorb or pass on to walstream's).
    w.proxy.set_mode(Mode::Faults(FaultPlan {
        burst_rate: 0.3,
        burst_max: 2,
        ..plan
    }));
    let (segments, counts) = w.finish(&generation, true);
    let gets = counts.faulted_methods.get("GET").copied().unwrap_or(0);
    assert!(gets >= 1, "the restore met no fault: {counts:?}");
    eprintln!("mixed faults: {counts:?}; walstream retries {retries}");
    eprintln!("mixed faults: {last} rows, {segments} segments or LTX files");
}

#[test]
fn full_outage_grows_lag_fails_readiness_bounds_the_wal_and_catches_up() {
    let settings = Settings {
        sync_interval: "200ms",
        ..Settings::default()
    };
    let w = World::start("faults-outage", &settings, Mode::Pass);
    let writer = Writer::paced(&w.db, 2, WRITE_SPACING);
    let before = w.db_status();
    let generation = generation_of(&before);
    let page = before["page_size"].as_u64().expect("page size");
    // A RESTART checkpoint at max-checkpoint-page-count keeps the WAL near that many frames;
    // allow twice that plus a monitor tick's worth of commits.
    let frame = page + 24;
    let bound = 32 + 2 * settings.max_checkpoint_pages * frame;
    let wal_bytes_before = w.metric_total_wal_bytes();
    let checkpoints_before = w.checkpoints();

    w.proxy.set_mode(Mode::Outage);
    let mut max_wal = 0;
    let mut first_lag = None;
    let mut last_lag = 0.0;
    common::poll_until(
        Duration::from_secs(60),
        "unready, lag growing, several failed rounds and WAL traffic well past the bound",
        || {
            max_wal = max_wal.max(faults_support::wal_len(&w.db));
            let lag = w.metric("walstream_replica_lag_seconds");
            first_lag.get_or_insert(lag);
            last_lag = lag;
            let streak = w.db_status()["replicas"][0]["failure_streak"]
                .as_u64()
                .unwrap_or(0);
            w.ws().get("/readyz").status == 503
                && lag > 4.0
                && streak >= 2
                && w.metric_total_wal_bytes() - wal_bytes_before > 4.0 * bound as f64
                && w.checkpoints() >= checkpoints_before + 3.0
        },
    );
    let first_lag = first_lag.expect("sampled");
    assert!(last_lag > first_lag, "lag {first_lag} -> {last_lag}");
    let status_lag = w.db_status()["replicas"][0]["lag_seconds"]
        .as_f64()
        .expect("lag_seconds");
    assert!(status_lag > 2.0, "status lag {status_lag}");
    let refused = w.proxy.counts().of(Fault::Refused);
    assert!(refused > 0, "the outage refused nothing");
    assert!(w.metric("walstream_replica_sync_errors_total") >= 2.0);
    let transient = [w.labels()[0], w.labels()[1], ("kind", "transient")];
    assert!(
        w.ws()
            .metrics()
            .must("walstream_replica_storage_errors_total", &transient)
            >= 1.0
    );

    w.proxy.set_mode(Mode::Pass);
    let recovery = Instant::now();
    common::poll_until(
        Duration::from_secs(60),
        "ready again after the outage",
        || {
            max_wal = max_wal.max(faults_support::wal_len(&w.db));
            w.ws().get("/readyz").status == 200
        },
    );
    let ready_after = recovery.elapsed().as_secs_f64();
    assert!(
        max_wal <= bound,
        "the -wal reached {max_wal} bytes (bound {bound}) during the outage"
    );
    let last = writer.finish();
    let synced = w.sync();
    assert_eq!(
        synced["position"]["generation"],
        generation.as_str(),
        "a new generation after the outage"
    );
    assert_eq!(generation_of(&w.db_status()), generation);
    assert_eq!(w.metric("walstream_replica_lag_seconds"), 0.0);
    eprintln!(
        "outage: {refused} connections refused, lag {first_lag:.1}s -> {last_lag:.1}s, \
         max -wal {max_wal} bytes (bound {bound}), ready {ready_after:.1}s after storage \
         returned, {last} rows"
    );
    let (segments, _) = w.finish(&generation, false);
    eprintln!("outage: {segments} segments, one generation");
}

#[test]
fn a_hung_upload_times_out_and_is_retried() {
    hung_upload("faults-hang", &Settings::default());
}

/// The same on an LTX replica: a hung L0 upload is abandoned and retried, no TXID skipped.
#[test]
fn ltx_a_hung_upload_times_out_and_is_retried() {
    let settings = Settings {
        ltx: true,
        ..Settings::default()
    };
    hung_upload("faults-ltx-hang", &settings);
}

fn hung_upload(tag: &str, settings: &Settings) {
    let w = World::start(tag, settings, Mode::Pass);
    let generation = generation_of(&w.db_status());
    let writer = Writer::paced(&w.db, 2, WRITE_SPACING);
    let retries_before = w.metric("walstream_replica_storage_retries_total");
    // The next WAL upload hangs: the server never answers it. Everything else passes.
    w.proxy.set_mode(Mode::HangNext {
        method: "PUT",
        count: 1,
    });
    common::poll_until(Duration::from_secs(30), "an upload to hang", || {
        w.proxy.counts().of(Fault::Hang) >= 1
    });
    let hung_at = std::time::Instant::now();
    let during = w.db_status()["position"].clone();
    // The upload loop waits on the hung request, so the lag passes readiness-max-lag.
    common::poll_until(
        Duration::from_secs(30),
        "/readyz to fail while the upload hangs",
        || w.ws().get("/readyz").status == 503,
    );
    common::poll_until(
        Duration::from_secs(90),
        "the client to give up on the hung request (its step timeout)",
        || w.proxy.counts().hangs_abandoned >= 1,
    );
    // Reported, not asserted: a small PUT is abandoned after ~10 s (storage::upload).
    eprintln!(
        "hang: abandoned {:.1} s after it was seen",
        hung_at.elapsed().as_secs_f64()
    );
    common::poll_until(
        Duration::from_secs(30),
        "the replica to pass the position reached during the hang, and readiness",
        || {
            let st = w.db_status();
            let replica = &st["replicas"][0]["position"];
            replica["generation"] == during["generation"]
                && (replica["index"].as_u64(), replica["offset"].as_u64())
                    >= (during["index"].as_u64(), during["offset"].as_u64())
                && w.ws().get("/readyz").status == 200
        },
    );
    let retries = w.metric("walstream_replica_storage_retries_total");
    assert!(retries > retries_before, "the hung request was not retried");
    let last = writer.finish();
    let synced = w.sync();
    assert_eq!(synced["position"]["generation"], generation.as_str());
    let counts = w.proxy.counts();
    eprintln!("hang: {counts:?}; walstream retries {retries}; {last} rows");
    w.finish(&generation, false);
}

#[test]
fn a_hung_listing_and_download_time_out_and_the_restore_goes_on() {
    let mut w = World::start("faults-hang-get", &Settings::default(), Mode::Pass);
    let generation = generation_of(&w.db_status());
    let writer = Writer::paced(&w.db, 2, WRITE_SPACING);
    common::poll_until(Duration::from_secs(30), "some commits", || {
        w.db_status()["position"]["offset"].as_u64() > Some(0)
    });
    let last = writer.finish();
    w.sync();
    w.stop_walstream();
    // The restore through the proxy: its first two GETs (the generations listing, then the
    // next listing or download) are never answered.
    w.proxy.set_mode(Mode::HangNext {
        method: "GET",
        count: 2,
    });
    let started = std::time::Instant::now();
    let (_, counts) = w.finish(&generation, true);
    assert_eq!(counts.of(Fault::Hang), 2, "{counts:?}");
    assert!(counts.hangs_abandoned >= 2, "{counts:?}");
    // Reported, not asserted: each hung GET costs about 10 s (storage::retry::ANSWER_TIMEOUT).
    eprintln!(
        "hang-get: restores done {:.1} s after the first hung GET; {last} rows; {counts:?}",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn an_outage_across_a_restart_continues_the_same_generation() {
    let mut w = World::start("faults-restart", &Settings::default(), Mode::Pass);
    let generation = generation_of(&w.db_status());
    let writer = Writer::paced(&w.db, 2, WRITE_SPACING);
    w.proxy.set_mode(Mode::Outage);
    common::poll_until(
        Duration::from_secs(60),
        "a failed round and commits waiting past readiness-max-lag",
        || {
            let st = w.db_status();
            st["replicas"][0]["failure_streak"].as_u64() >= Some(1)
                && w.ws().get("/readyz").status == 503
        },
    );
    // Stopped during the outage: the final sync fails, the shadow WAL keeps what is pending.
    let log = w.stop_walstream();
    assert!(log.contains("final replica sync error"), "{log}");
    let at_stop = writer.last();
    common::poll_until(
        Duration::from_secs(30),
        "commits while walstream is down",
        || writer.last() > at_stop + 50,
    );
    w.proxy.set_mode(Mode::Pass);
    w.start_walstream();
    let last = writer.finish();
    let synced = w.sync();
    assert_eq!(
        synced["position"]["generation"],
        generation.as_str(),
        "a new generation after the restart"
    );
    let (segments, counts) = w.finish(&generation, false);
    eprintln!(
        "restart: {} refused, {last} rows, {segments} segments, one generation",
        counts.of(Fault::Refused)
    );
}

#[test]
fn storage_down_at_start_up_then_the_first_generation_completes() {
    let w = World::start("faults-startup", &Settings::default(), Mode::Outage);
    let writer = Writer::paced(&w.db, 2, WRITE_SPACING);
    common::poll_until(
        Duration::from_secs(60),
        "failed rounds while storage is down at start-up",
        || {
            let st = w.db_status();
            st["replicas"][0]["failure_streak"].as_u64() >= Some(2)
                && w.ws().get("/readyz").status == 503
        },
    );
    let generation = generation_of(&w.db_status());
    w.proxy.set_mode(Mode::Pass);
    common::poll_until(
        Duration::from_secs(60),
        "ready once storage is back",
        || w.ws().get("/readyz").status == 200,
    );
    let last = writer.finish();
    let synced = w.sync();
    assert_eq!(synced["position"]["generation"], generation.as_str());
    let (segments, counts) = w.finish(&generation, false);
    eprintln!(
        "start-up outage: {} refused, {last} rows, {segments} segments, one generation",
        counts.of(Fault::Refused)
    );
}

impl World {
    fn metric_total_wal_bytes(&self) -> f64 {
        let db = self.db.to_str().expect("utf-8");
        self.ws()
            .metrics()
            .must("litestream_total_wal_bytes", &[("db", db)])
    }
}
