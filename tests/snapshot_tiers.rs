//! `snapshot-tiers` of a v0.3 replica on the real binaries (a file replica; file replicas take
//! an object's created time from its mtime, in walstream and in Litestream v0.3.13):
//! 1. `walstream replicate` builds a generation with nine snapshots (the first one, then one per
//!    `POST …/snapshot`, each after a batch of rows) and WAL after the last one;
//! 2. the test ages the snapshots' mtimes into a synthetic calendar around the current ISO week
//!    (`mon0` = its Monday) and gives the WAL after the last snapshot times after it;
//! 3. `walstream replicate` runs again with `retention: 72h`, `snapshot-tiers: {keep-daily: 3,
//!    keep-weekly: 3}` and a 1 s retention check, until retention has deleted WAL;
//! 4. the snapshots left are exactly the policy's (the window's plus the tiers'), WAL is left only
//!    from the window's snapshot on, and restores by walstream and by Litestream v0.3.13 agree:
//!    each tier-kept snapshot by `-generation G -index I` gives its own content, a `-timestamp`
//!    between tier snapshots gives the older one's content (walstream warns that the replica keeps
//!    no WAL there), a `-timestamp` inside the window gives the source at that time, and the
//!    latest restore gives the source.
//!
//! Needs the Litestream binary of `scripts/test.sh` (`WALSTREAM_TEST_LITESTREAM`).

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, Days, Utc};
use common::process::litestream_restore;
use common::sqlite::restored_rows;
use common::{DEADLINE, Rows, insert, open_app, rows, said};
use http_support::{Instance, config, file_replica, walstream_restore};
use support::list;

const TOKEN: &str = "snapshot-tiers-test-token";
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);

/// The replica's retention and tiers (and a check every second).
const RETENTION: &str = "        retention: 72h\n        retention-check-interval: 1s\n        snapshot-tiers: {keep-daily: 3, keep-weekly: 3}\n";

/// One snapshot the test asked for: its index, the rows it holds and the time it is given.
struct Snap {
    index: u32,
    rows: Rows,
    at: SystemTime,
}

fn set_mtime(path: &Path, at: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(at))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

fn rfc3339(at: SystemTime) -> String {
    DateTime::<Utc>::from(at)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Index of a `<index>.snapshot.lz4` name.
fn snapshot_index(name: &str) -> Option<u32> {
    u32::from_str_radix(name.strip_suffix(".snapshot.lz4")?, 16).ok()
}

/// (index, offset) of a `<index>_<offset>.wal.lz4` name.
fn segment_pos(name: &str) -> Option<(u32, u64)> {
    let (i, o) = name.strip_suffix(".wal.lz4")?.split_once('_')?;
    Some((
        u32::from_str_radix(i, 16).ok()?,
        u64::from_str_radix(o, 16).ok()?,
    ))
}

fn segments(wal: &Path) -> Vec<(u32, u64, PathBuf)> {
    let mut v: Vec<(u32, u64, PathBuf)> = list(wal)
        .into_iter()
        .filter_map(|n| segment_pos(&n).map(|(i, o)| (i, o, wal.join(n))))
        .collect();
    v.sort();
    v
}

/// `walstream restore -o OUT ARGS…` (must succeed): its rows and everything it said.
fn walstream_restore_said(args: &[&str], out: &Path) -> (Rows, String) {
    let mut cmd = Command::new(common::walstream_bin());
    cmd.args(["restore", "-o"]).arg(out).args(args);
    let output = common::run(&mut cmd);
    (restored_rows(out), said(&output))
}

/// Monday 00:00 UTC of the ISO week holding `at`.
fn monday_of(at: SystemTime) -> SystemTime {
    let t = DateTime::<Utc>::from(at);
    let back = u64::from(t.weekday().num_days_from_monday());
    let day = t.date_naive() - Days::new(back);
    SystemTime::from(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

#[test]
fn tiers_keep_their_snapshots_as_restore_points_both_tools_restore() {
    let (_keep, dir) = http_support::tempdir();
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let url = format!("file://{}", replica.display());
    let app = open_app(&db);
    insert(&app, 1);
    let replicas = format!("{}{RETENTION}", file_replica(&replica, "100ms"));
    let cfg = config(&db, &format!("http-token: \"{TOKEN}\"\n"), &replicas);

    // The calendar: the window's snapshot 2 h ago, in the ISO week starting at `mon0`; the
    // others in earlier weeks, all older than the 72 h window.
    let now = SystemTime::now();
    let window_at = now - 2 * HOUR;
    let mon0 = monday_of(window_at);
    let day = |d: u32, h: u32| mon0 - d * DAY + h * HOUR;
    let calendar = [
        day(35, 12), // Monday, week -5
        day(21, 12), // Monday, week -3
        day(17, 12), // Friday, week -3
        day(11, 12), // Thursday, week -2
        day(6, 12),  // Tuesday, week -1
        day(5, 10),  // Wednesday 10:00, week -1
        day(5, 14),  // Wednesday 14:00, week -1
        window_at,   // in the window
    ];

    // 1. Build the history.
    let ws = Instance::start(&dir, &cfg, &[]);
    ws.wait_caught_up();
    let mut next_id = 2;
    let mut batch = |n: i64| {
        for _ in 0..n {
            insert(&app, next_id);
            next_id += 1;
        }
        ws.wait_caught_up();
    };
    let mut snaps: Vec<Snap> = Vec::new();
    let mut generation = String::new();
    for at in calendar {
        batch(30);
        let r = ws.post(
            "/api/v1/databases/app.db/snapshot",
            Some(&format!("Bearer {TOKEN}")),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let doc = r.json();
        generation = doc["replicas"][0]["generation"]
            .as_str()
            .expect("generation")
            .to_string();
        let index = doc["replicas"][0]["index"].as_u64().expect("index") as u32;
        snaps.push(Snap {
            index,
            rows: rows(&app),
            at,
        });
    }
    let gen_dir = replica.join("generations").join(&generation);
    let (snap_dir, wal_dir) = (gen_dir.join("snapshots"), gen_dir.join("wal"));
    let window = snaps.last().expect("window snapshot").index;
    batch(30);
    let after_first_batch = rows(&app);
    let first_batch_segments = segments(&wal_dir).iter().filter(|s| s.0 >= window).count() as u32;
    batch(30);
    ws.proc.stop();
    let source = rows(&app);
    assert_ne!(after_first_batch, source);

    // 2. Age the objects: snapshots to the calendar (the generation's first one a week before
    // the oldest), the WAL from the window's snapshot on 10 s apart after it.
    let mut indexes: Vec<u32> = list(&snap_dir)
        .iter()
        .filter_map(|n| snapshot_index(n))
        .collect();
    let mut expected_all: Vec<u32> = snaps.iter().map(|s| s.index).collect();
    let first = indexes.first().copied().expect("a snapshot");
    assert!(!expected_all.contains(&first), "first snapshot overwritten");
    expected_all.insert(0, first);
    assert_eq!(
        indexes, expected_all,
        "one snapshot per request, each at its own index"
    );
    set_mtime(
        &snap_dir.join(format!("{first:08x}.snapshot.lz4")),
        day(42, 12),
    );
    for s in &snaps {
        set_mtime(
            &snap_dir.join(format!("{:08x}.snapshot.lz4", s.index)),
            s.at,
        );
    }
    let window_wal: Vec<(u32, u64, PathBuf)> = segments(&wal_dir)
        .into_iter()
        .filter(|s| s.0 >= window)
        .collect();
    for (rank, (_, _, path)) in (1u32..).zip(&window_wal) {
        set_mtime(path, window_at + rank * Duration::from_secs(10));
    }
    let in_window_at = window_at + first_batch_segments * Duration::from_secs(10);

    // 3. Retention with tiers.
    let mut ws = Instance::start(&dir, &cfg, &[]);
    ws.proc
        .poll(DEADLINE, "retention deleting WAL", |p| {
            p.log_text()
                .contains("wal segmented deleted before")
                .then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    ws.proc.stop();

    // 4. Exactly the policy's snapshots are left. Newest first: window (week 0), Wed 14:00,
    // Wed 10:00, Tue (week -1), Thu (week -2), Fri, Mon (week -3), Mon (week -5), first (-6).
    // keep-daily 3: window's day, Wed 14:00, Tue; keep-weekly 3: window, Wed 14:00, Thu.
    assert_eq!(list(&replica.join("generations")), [generation.clone()]);
    indexes = list(&snap_dir)
        .iter()
        .filter_map(|n| snapshot_index(n))
        .collect();
    let kept = [3usize, 4, 6, 7].map(|k| snaps[k].index);
    assert_eq!(indexes, kept, "snapshots left");
    let left: Vec<u32> = segments(&wal_dir).iter().map(|s| s.0).collect();
    assert!(
        left.iter().all(|&i| i >= window) && left.len() >= window_wal.len(),
        "WAL left only from the window's snapshot on: {left:?}"
    );

    // Each tier-kept snapshot restores to its own content, by both tools.
    for k in [3usize, 4, 6] {
        let s = &snaps[k];
        let index = format!("{:x}", s.index);
        let args = [
            "-generation",
            generation.as_str(),
            "-index",
            index.as_str(),
            url.as_str(),
        ];
        let ours = walstream_restore(&args, &[], &dir.join(format!("ws-index-{k}.db")));
        assert_eq!(ours, s.rows, "walstream -index {index}");
        let theirs = litestream_restore(&args, &dir.join(format!("ls-index-{k}.db")));
        assert_eq!(theirs, s.rows, "litestream -index {index}");
    }

    // Between two tier snapshots (Tuesday 13:00 of week -1): the Tuesday snapshot, which is
    // older than the time asked for; walstream says so.
    let between = rfc3339(day(6, 13));
    let args = ["-timestamp", between.as_str(), url.as_str()];
    let (ours, log) = walstream_restore_said(&args, &dir.join("ws-between.db"));
    assert_eq!(ours, snaps[4].rows);
    let warning = format!(
        "the replica keeps no WAL between {} and {}: this is the state at {}",
        rfc3339(snaps[4].at),
        rfc3339(snaps[6].at),
        rfc3339(snaps[4].at)
    );
    assert!(log.contains(&warning), "want {warning:?} in:\n{log}");
    let theirs = litestream_restore(&args, &dir.join("ls-between.db"));
    assert_eq!(theirs, snaps[4].rows);

    // Inside the window: the source after the first batch of rows, by both tools; no warning.
    let inside = rfc3339(in_window_at);
    let args = ["-timestamp", inside.as_str(), url.as_str()];
    let (ours, log) = walstream_restore_said(&args, &dir.join("ws-inside.db"));
    assert_eq!(ours, after_first_batch);
    assert!(!log.contains("keeps no WAL"), "{log}");
    let theirs = litestream_restore(&args, &dir.join("ls-inside.db"));
    assert_eq!(theirs, after_first_batch);

    // Latest: the source.
    let ours = walstream_restore(&[url.as_str()], &[], &dir.join("ws-latest.db"));
    assert_eq!(ours, source);
    let theirs = litestream_restore(&[url.as_str()], &dir.join("ls-latest.db"));
    assert_eq!(theirs, source);
}
