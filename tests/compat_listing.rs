//! Listing compatibility: on a replica written by the real Litestream v0.3.13, `walstream
//! generations|snapshots|wal` print exactly what `litestream generations|snapshots|wal` print —
//! byte for byte. With a DB path the `lag` column of `generations` is deterministic too (both
//! tools measure from the database's mtime, which no longer changes), so it is compared exactly
//! wherever both tools see the same timestamp precision (file: ns mtimes; S3 and Azure: whole
//! seconds on the servers). On GCS Litestream reads `timeCreated` (µs) from fake-gcs-server while
//! walstream reads through the test proxy's XML listing (whole seconds), so there, and with a
//! replica URL (lag measured from "now"), `lag` is compared for shape only. One test per backend
//! (file, s3, abs, gcs); the replica-URL form is compared too wherever the backend has one
//! (file, s3, gcs).
//!
//! The replica is checked to be non-trivial first (≥ 2 generations, a generation with ≥ 2 WAL
//! indexes, ≥ 10 segments), so the comparison cannot pass on empty tables.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::litestream::{LitestreamReplica, make_litestream_replica};
use common::{Backend, litestream_bin, walstream_bin};

/// stdout of one listing command of either tool; panics unless it exits 0 with empty stderr.
fn listing(bin: &Path, env: &[(String, String)], args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", bin.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stderr.is_empty(),
        "{} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        bin.display(),
        out.status
    );
    stdout
}

/// The same listing from both tools: (litestream, walstream).
fn both(r: &LitestreamReplica, args: &[&str]) -> (String, String) {
    let lt = listing(&litestream_bin(), &r.env, args);
    let ws = listing(&walstream_bin(), &r.walstream_env, args);
    (lt, ws)
}

/// Asserts two listings are byte-identical; on failure shows only the differing lines (the
/// `created` column is the storage timestamp each tool reads, spec §1.6).
fn assert_same(walstream: &str, litestream: &str, what: &str) {
    if walstream == litestream {
        return;
    }
    let (w, l): (Vec<&str>, Vec<&str>) =
        (walstream.lines().collect(), litestream.lines().collect());
    let mut diff = String::new();
    for i in 0..w.len().max(l.len()) {
        let (a, b) = (w.get(i).copied(), l.get(i).copied());
        if a != b {
            diff.push_str(&format!(
                "line {i}:\n  walstream:  {a:?}\n  litestream: {b:?}\n"
            ));
        }
    }
    panic!("{what}:\n{diff}--- walstream ---\n{walstream}--- litestream ---\n{litestream}");
}

/// A table's rows as whitespace-separated fields (no value contains a space).
fn fields(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Compares `generations` output field by field, the `lag` column only for being a Go duration.
fn assert_generations_match(lt: &str, ws: &str) {
    let (a, b) = (fields(lt), fields(ws));
    assert_eq!(a.len(), b.len(), "row count differs:\n{lt}\n---\n{ws}");
    let duration = regex::Regex::new(r"^-?([0-9.]+(h|m|s|ms|µs|us|ns))+$|^0s$").unwrap();
    for (row_a, row_b) in a.iter().zip(&b) {
        assert_eq!(row_a.len(), 5, "litestream row: {row_a:?}");
        assert_eq!(row_b.len(), 5, "walstream row: {row_b:?}");
        for col in [0, 1, 3, 4] {
            assert_eq!(row_a[col], row_b[col], "column {col}:\n{lt}\n---\n{ws}");
        }
        if row_a[2] != "lag" {
            assert!(duration.is_match(&row_b[2]), "walstream lag {:?}", row_b[2]);
        }
    }
}

/// Checks that the replica is rich enough for the comparison to mean something.
fn assert_replica_is_rich(generations: &str, wal: &str) {
    let gens = fields(generations).len() - 1;
    assert!(gens >= 2, "expected ≥ 2 generations:\n{generations}");
    let rows = fields(wal);
    let segments = &rows[1..];
    assert!(segments.len() >= 10, "expected ≥ 10 segments:\n{wal}");
    let indexes: BTreeSet<(&str, &str)> = segments
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    let per_gen = |g: &str| indexes.iter().filter(|(g2, _)| *g2 == g).count();
    assert!(
        indexes.iter().any(|(g, _)| per_gen(g) >= 2),
        "expected a generation with ≥ 2 WAL indexes:\n{wal}"
    );
}

/// Every listing of the config/DB form, plus the `-replica` and `-generation` filters.
fn compare_db_form(r: &LitestreamReplica, exact_lag: bool) {
    let config = r.config_path.to_str().expect("utf-8 config path");
    let db = r.db_path.to_str().expect("utf-8 db path");
    let (lt_gens, ws_gens) = both(r, &["generations", "-config", config, db]);
    assert_generations_match(&lt_gens, &ws_gens);
    if exact_lag {
        assert_same(
            &ws_gens,
            &lt_gens,
            "generations listing differs (lag included)",
        );
    }
    let (lt_wal, ws_wal) = both(r, &["wal", "-config", config, db]);
    assert_replica_is_rich(&lt_gens, &lt_wal);
    assert_same(&ws_wal, &lt_wal, "wal listing differs");
    let (lt_snap, ws_snap) = both(r, &["snapshots", "-config", config, db]);
    assert!(
        fields(&lt_snap).len() >= 3,
        "expected ≥ 2 snapshots:\n{lt_snap}"
    );
    assert_same(&ws_snap, &lt_snap, "snapshots listing differs");

    let name = fields(&lt_gens)[1][0].clone();
    let first_gen = fields(&lt_gens)[1][1].clone();
    let args = [
        "wal",
        "-config",
        config,
        "-replica",
        &name,
        "-generation",
        &first_gen,
        db,
    ];
    let (lt, ws) = both(r, &args);
    assert!(
        fields(&lt).len() > 1,
        "filtered wal listing is empty:\n{lt}"
    );
    assert_same(&ws, &lt, "wal -replica -generation listing differs");
    let (lt, ws) = both(r, &["snapshots", "-config", config, "-replica", &name, db]);
    assert_same(&ws, &lt, "snapshots -replica listing differs");
}

/// The replica-URL form (no config file): `lag` is measured from "now", so it is compared for
/// shape only; an unknown `-generation` lists the header only.
fn compare_url_form(r: &LitestreamReplica, url: &str) {
    let (lt_gens, ws_gens) = both(r, &["generations", url]);
    assert_generations_match(&lt_gens, &ws_gens);
    let (lt_wal, ws_wal) = both(r, &["wal", url]);
    assert_replica_is_rich(&lt_gens, &lt_wal);
    assert_same(&ws_wal, &lt_wal, "wal URL listing differs");
    let (lt_snap, ws_snap) = both(r, &["snapshots", url]);
    assert_same(&ws_snap, &lt_snap, "snapshots URL listing differs");
    let (lt, ws) = both(r, &["wal", "-generation", "0123456789abcdef", url]);
    assert_eq!(
        fields(&lt).len(),
        1,
        "unknown generation should list header only:\n{lt}"
    );
    assert_same(&ws, &lt, "wal -generation <unknown> listing differs");
}

/// Builds a Litestream replica on `backend` and compares every listing form available there.
fn compare_backend(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = make_litestream_replica(backend, dir.path());
    compare_db_form(&replica, backend != Backend::Gcs);
    if let Some(url) = &replica.replica_url {
        compare_url_form(&replica, url);
    }
}

#[test]
fn listing_matches_litestream_on_file() {
    compare_backend(Backend::File);
}

/// S3 also covers the URL form `s3://BUCKET.localhost:PORT/prefix`.
#[test]
fn listing_matches_litestream_on_s3() {
    compare_backend(Backend::S3);
}

/// Azure has no URL form that can name the emulator: config form only. Litestream's `created`
/// here is the blob's Creation-Time (spec §1.6), which differs from Last-Modified for a blob it
/// wrote twice.
#[test]
fn listing_matches_litestream_on_abs() {
    compare_backend(Backend::Abs);
}

/// GCS also covers the URL form `gcs://BUCKET/prefix`. Litestream's `created` here is the
/// object's `timeCreated` (spec §1.6), which differs from `updated` for an object it wrote twice.
#[test]
fn listing_matches_litestream_on_gcs() {
    compare_backend(Backend::Gcs);
}
