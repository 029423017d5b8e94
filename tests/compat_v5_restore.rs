//! Compatibility with Litestream v0.5.17 (LTX replicas): the real v0.5.17 `replicate` writes a
//! replica with L9 snapshots, L1/L2 compactions and a pruned L0 on each backend; walstream's
//! `restore` must give the same database as `litestream restore` for the latest state, several
//! `-txid` values and several `-timestamp` values (byte for byte: v0.5.17's output is a
//! deterministic function of the plan), the same `-dry-run` plan, and `walstream ltx` must print
//! what `litestream ltx` prints. A replica upgraded in place from v0.3.13 must restore from the
//! layout v0.5.17 chooses. Needs the test servers: `bash scripts/test.sh -- cargo test --test
//! compat_v5_restore`.

mod common;
mod v5_support;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use common::Backend;
use v5_support::{
    LtxRow, V5Replica, count_rows, ls_restore, ltx_listing, ltx_rows, make_v5_replica, remove_db,
    ws_restore,
};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Restores with both tools; both must fail, or both succeed with identical bytes (then the
/// restored row count, after an integrity check, is returned).
fn compare(r: &V5Replica, label: &str, extra: &[&str]) -> Option<i64> {
    let ws_out = r.dir.join("ws-out.db");
    let ls_out = r.dir.join("ls-out.db");
    remove_db(&ws_out);
    remove_db(&ls_out);
    let ws = ws_restore(r, &ws_out, extra);
    let ls = ls_restore(r, &ls_out, extra);
    let result = match (ws.status.success(), ls.status.success()) {
        (true, true) => {
            let (a, b) = (std::fs::read(&ws_out), std::fs::read(&ls_out));
            let (a, b) = (a.expect("read ws"), b.expect("read ls"));
            assert!(
                a == b,
                "{label}: restored databases differ ({} vs {} bytes)",
                a.len(),
                b.len()
            );
            Some(count_rows(&ws_out))
        }
        (false, false) => {
            assert!(
                !ws_out.exists(),
                "{label}: failed walstream restore left a file"
            );
            None
        }
        (w, l) => panic!(
            "{label}: walstream ok={w}, litestream ok={l}\n--- walstream ---\n{}\n--- litestream ---\n{}",
            text(&ws.stderr),
            text(&ls.stderr)
        ),
    };
    remove_db(&ws_out);
    remove_db(&ls_out);
    result
}

fn check_ltx_listings(r: &V5Replica) {
    for args in [
        &[][..],
        &["-level", "all"],
        &["-level", "9"],
        &["-level", "1"],
        &["-level", "all", "-json"],
        &["-level", "2", "-json"],
    ] {
        let ws = ltx_listing(r, true, args);
        let ls = ltx_listing(r, false, args);
        assert!(
            ws.status.success(),
            "walstream ltx {args:?}: {}",
            text(&ws.stderr)
        );
        assert!(
            ls.status.success(),
            "litestream ltx {args:?}: {}",
            text(&ls.stderr)
        );
        assert_eq!(text(&ws.stdout), text(&ls.stdout), "ltx {args:?}");
    }
}

fn check_dry_runs(r: &V5Replica, txid: &str) {
    let out = r.dir.join("plan.db");
    for extra in [
        &[][..],
        &["-json"],
        &["-txid", txid],
        &["-txid", txid, "-json"],
    ] {
        let mut args = vec!["-dry-run"];
        args.extend_from_slice(extra);
        let ws = ws_restore(r, &out, &args);
        let ls = ls_restore(r, &out, &args);
        assert!(
            ws.status.success(),
            "walstream {args:?}: {}",
            text(&ws.stderr)
        );
        assert!(
            ls.status.success(),
            "litestream {args:?}: {}",
            text(&ls.stderr)
        );
        assert_eq!(text(&ws.stdout), text(&ls.stdout), "restore {args:?}");
        assert!(!out.exists(), "a dry run wrote the database");
    }
}

/// `-json` after a restore: the same replica type, TXID and check name as v0.5.17's summary.
fn check_json_summary(r: &V5Replica) {
    let fields = |walstream: bool| {
        let out = r.dir.join(if walstream {
            "ws-json.db"
        } else {
            "ls-json.db"
        });
        let args = ["-json", "-integrity-check", "quick"];
        let res = if walstream {
            ws_restore(r, &out, &args)
        } else {
            ls_restore(r, &out, &args)
        };
        assert!(res.status.success(), "{}", text(&res.stderr));
        remove_db(&out);
        // v0.5.17 with a config file logs to stdout even with -json (walstream keeps stdout for
        // the JSON): parse from the first line that opens the object.
        let stdout = text(&res.stdout);
        let start = stdout.find("\n{").map_or(0, |i| i + 1);
        let v: serde_json::Value =
            serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        if walstream {
            assert_eq!(start, 0, "walstream printed more than the JSON: {stdout}");
        }
        assert_eq!(v["db_path"], out.display().to_string());
        assert!(v["duration_ms"].is_u64(), "{v}");
        (
            v["replica"].clone(),
            v["txid"].clone(),
            v["integrity_check"].clone(),
        )
    };
    assert_eq!(fields(true), fields(false));
}

/// TXIDs to restore to: the end of every listed file (reachable) and one inside a compacted
/// range (usually not), at most 10.
fn txids(rows: &[LtxRow]) -> Vec<String> {
    let mut set: BTreeSet<String> = rows.iter().map(|r| r.max_txid.clone()).collect();
    if let Some(wide) = rows
        .iter()
        .find(|r| r.level == 2 && r.min_txid != r.max_txid)
    {
        let min = u64::from_str_radix(&wide.min_txid, 16).expect("hex");
        set.insert(format!("{:016x}", min + 1));
    }
    let all: Vec<String> = set.into_iter().collect();
    let step = all.len().div_ceil(10).max(1);
    all.into_iter().step_by(step).collect()
}

/// Timestamps inside the replica's time range: half a second and one second after each listed
/// second (v0.5.17 refuses a URL restore to a time outside its bounds).
fn timestamps(rows: &[LtxRow]) -> Vec<String> {
    let secs: BTreeSet<DateTime<Utc>> = rows
        .iter()
        .map(|r| r.timestamp.parse::<DateTime<Utc>>().expect("rfc3339"))
        .collect();
    let (Some(first), Some(last)) = (secs.first().copied(), secs.last().copied()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in &secs {
        for d in [500, 1000] {
            let t = *s + TimeDelta::milliseconds(d);
            if t > first && t <= last {
                out.push(t.to_rfc3339_opts(SecondsFormat::Millis, true));
            }
        }
    }
    out.dedup();
    out
}

fn check_backend(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = make_v5_replica(backend, dir.path(), false);
    let rows = ltx_rows(&r, true);
    let levels: BTreeSet<u8> = rows.iter().map(|r| r.level).collect();
    for want in [1, 2, 9] {
        assert!(levels.contains(&want), "level {want} missing: {levels:?}");
    }
    check_ltx_listings(&r);
    assert_eq!(
        compare(&r, "latest", &[]),
        Some(r.rows),
        "latest has every row"
    );

    let mut ok_txids = 0;
    for txid in txids(&rows) {
        ok_txids += usize::from(compare(&r, &format!("-txid {txid}"), &["-txid", &txid]).is_some());
    }
    assert!(ok_txids >= 3, "only {ok_txids} -txid restores succeeded");
    check_dry_runs(&r, &rows.last().expect("rows").max_txid);
    check_json_summary(&r);

    let mut restored = BTreeSet::new();
    for t in timestamps(&rows) {
        if let Some(n) = compare(&r, &format!("-timestamp {t}"), &["-timestamp", &t]) {
            restored.insert(n);
        }
    }
    assert!(
        restored.len() >= 3,
        "-timestamp restores reached only {restored:?} distinct states"
    );
}

#[test]
fn file_replica_written_by_v0_5_17() {
    check_backend(Backend::File);
}

#[test]
fn s3_replica_written_by_v0_5_17() {
    check_backend(Backend::S3);
}

#[test]
fn gcs_replica_written_by_v0_5_17() {
    check_backend(Backend::Gcs);
}

#[test]
fn azure_replica_written_by_v0_5_17() {
    check_backend(Backend::Abs);
}

/// v0.3.13 then v0.5.17 on the same replica path: latest comes from the LTX files (newer), a
/// time before v0.5 started from the v0.3 generations — as v0.5.17 chooses. v0.5.17 restores
/// v0.3 with its own code, so that case compares content (rows), not bytes.
fn check_upgrade(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = make_v5_replica(backend, dir.path(), true);
    assert_eq!(compare(&r, "latest", &[]), Some(r.rows));
    assert!(r.v3_done.is_some(), "an upgraded replica");
    let t = newest_generation_midpoint(&r);
    let (ws_out, ls_out) = (r.dir.join("ws-v3.db"), r.dir.join("ls-v3.db"));
    let ws = ws_restore(&r, &ws_out, &["-timestamp", &t]);
    assert!(ws.status.success(), "{}", text(&ws.stderr));
    assert!(
        text(&ws.stderr).contains("layout=\"v0.3 generations\""),
        "{}",
        text(&ws.stderr)
    );
    let ls = ls_restore(&r, &ls_out, &["-timestamp", &t]);
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert_eq!(count_rows(&ws_out), count_rows(&ls_out));
    assert!(count_rows(&ws_out) < r.rows);
    check_ltx_listings(&r);
    assert_generations_still_listed(&r, &ws_out);
}

/// `walstream generations` of the replica (the v0.3 listing still works after the upgrade).
fn generations_listing(r: &V5Replica) -> String {
    let mut cmd = std::process::Command::new(common::walstream_bin());
    cmd.arg("generations")
        .args(["-config", &r.ws_config.display().to_string()])
        .arg(&r.db_path)
        .envs(r.ws_env.iter().map(|(k, v)| (k, v)));
    text(&common::run(&mut cmd).stdout)
}

/// A time inside the newest v0.3 generation (v0.3.13's `-timestamp` rule needs one).
fn newest_generation_midpoint(r: &V5Replica) -> String {
    let listing = generations_listing(r);
    let bounds = listing
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let start = cols.get(3)?.parse::<DateTime<Utc>>().ok()?;
            let end = cols.get(4)?.parse::<DateTime<Utc>>().ok()?;
            Some((start, end))
        })
        .max_by_key(|b| b.1);
    let (start, end) = bounds.unwrap_or_else(|| panic!("no generation in:\n{listing}"));
    assert!(end - start >= TimeDelta::seconds(2), "{listing}");
    (start + (end - start) / 2).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The v0.3 listing commands still work on an upgraded replica.
fn assert_generations_still_listed(r: &V5Replica, scratch: &Path) {
    let listing = generations_listing(r);
    assert!(listing.lines().count() >= 3, "{listing}");
    remove_db(scratch);
}

#[test]
fn file_replica_upgraded_from_v0_3_13() {
    check_upgrade(Backend::File);
}

#[test]
fn s3_replica_upgraded_from_v0_3_13() {
    check_upgrade(Backend::S3);
}
