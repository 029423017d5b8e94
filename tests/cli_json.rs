//! `-json` of the listing commands (`databases`, `generations`, `snapshots`, `wal`) on a file
//! replica written by `walstream replicate`: each command's JSON array parses and holds the same
//! rows as its table (same generations, indexes, offsets, sizes, and times that truncate to the
//! table's), with typed fields; errors stay on stderr with exit 1 and nothing on stdout.

mod common;

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use serde_json::Value;

use common::{DEADLINE, Workspace, insert, open_app, poll_until, walstream_bin, walstream_config};

/// `walstream ARGS` in `dir`: stdout, checked for exit 0 and an empty stderr.
fn listing(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(walstream_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("LITESTREAM_CONFIG");
    let out = common::run(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "{}",
        common::describe(&cmd, &out)
    );
    common::stdout_text(&out)
}

/// The rows of a table below `header`, split into cells (no cell of these tables has a space).
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>().join(" "),
        header,
        "{text}"
    );
    lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The JSON array of a `-json` run: one pretty document ending in a newline.
fn json_rows(text: &str) -> Vec<Value> {
    assert!(text.ends_with("]\n"), "{text}");
    match serde_json::from_str(text) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array ({other:?}):\n{text}"),
    }
}

/// A JSON time field: an RFC 3339 UTC string.
fn time(v: &Value) -> DateTime<Utc> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {v}"));
    assert!(s.ends_with('Z'), "{s}");
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// How the tables print a time: whole seconds, truncated.
fn table_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The cells a JSON row should have printed in the table, field by field.
fn cells(row: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .map(|f| match (&row[*f], *f) {
            (v, "created" | "start" | "end") => table_time(time(v)),
            (Value::Number(n), _) => {
                assert!(n.is_u64(), "{f} is not an unsigned integer: {row}");
                n.to_string()
            }
            (Value::String(s), _) => s.clone(),
            (v, _) => panic!("unexpected {f}: {v}"),
        })
        .collect()
}

/// `walstream CMD ARGS` and `walstream CMD -json ARGS`: the table's rows below `header` and the
/// JSON array's.
fn table_and_json(
    dir: &Path,
    cmd: &str,
    args: &[&str],
    header: &str,
) -> (Vec<Vec<String>>, Vec<Value>) {
    let table = table_rows(&listing(dir, &[&[cmd], args].concat()), header);
    let json = json_rows(&listing(dir, &[&[cmd, "-json"], args].concat()));
    (table, json)
}

/// Asserts that `CMD -json ARGS` has exactly `fields` (the table's columns) in each object and
/// the table's rows in order; returns the JSON rows.
fn same_rows(dir: &Path, cmd: &str, args: &[&str], fields: &[&str]) -> Vec<Value> {
    let (table, json) = table_and_json(dir, cmd, args, &fields.join(" "));
    let from_json: Vec<Vec<String>> = json.iter().map(|r| cells(r, fields)).collect();
    assert_eq!(from_json, table, "{cmd}");
    for row in &json {
        let len = row.as_object().map(|o| o.len());
        assert_eq!(len, Some(fields.len()), "{cmd}: {row}");
    }
    json
}

#[test]
fn json_listings_match_the_tables_row_for_row() {
    let ws = Workspace::new();
    let dir = ws.path();
    let config = format!(
        "dbs:\n  - path: {}\n    monitor-interval: 50ms\n    replicas:\n      - url: {}\n        sync-interval: 100ms\n",
        ws.db().display(),
        ws.replica_url()
    );
    let conn = open_app(&ws.db());
    for id in 1..=10 {
        insert(&conn, id);
    }
    let proc = walstream_config(&dir, &config, &[]);
    let cfg = ws.join("walstream.yml").display().to_string();
    let db = ws.db().display().to_string();
    let base = ["-config", cfg.as_str(), db.as_str()];
    // The columns of `wal`, as Litestream names them.
    let wal_fields: Vec<&str> = "replica generation index offset size created"
        .split(' ')
        .collect();
    let wal_rows = || {
        table_and_json(&dir, "wal", &base, &wal_fields.join(" "))
            .0
            .len()
    };
    poll_until(DEADLINE, "a first WAL segment", || wal_rows() >= 1);
    for id in 11..=20 {
        insert(&conn, id);
    }
    poll_until(DEADLINE, "a second WAL segment", || wal_rows() >= 2);
    proc.stop();
    drop(conn);

    // databases
    let (table, json) = table_and_json(&dir, "databases", &["-config", &cfg], "path replicas");
    assert_eq!(table, vec![vec![db.clone(), "file".to_string()]]);
    assert_eq!(
        json,
        vec![serde_json::json!({"path": db, "replicas": ["file"]})]
    );

    // snapshots, by config and by replica URL
    let snapshot_fields = ["replica", "generation", "index", "size", "created"];
    let json = same_rows(&dir, "snapshots", &base, &snapshot_fields);
    assert!(!json.is_empty(), "no snapshot listed");
    let by_url = json_rows(&listing(&dir, &["snapshots", "-json", &ws.replica_url()]));
    assert_eq!(by_url, json);

    // wal, all generations and one
    let json = same_rows(&dir, "wal", &base, &wal_fields);
    assert!(json.len() >= 2, "{json:?}");
    let generation = json[0]["generation"]
        .as_str()
        .expect("generation")
        .to_string();
    let wal_of = |g: &str| {
        listing(
            &dir,
            &[&["wal", "-json", "-generation", g], &base[..]].concat(),
        )
    };
    let expected: Vec<Value> = json
        .iter()
        .filter(|r| r["generation"] == generation.as_str())
        .cloned()
        .collect();
    assert_eq!(json_rows(&wal_of(&generation)), expected);
    let none = wal_of("ffffffffffffffff");
    assert_eq!(none, "[]\n");

    // generations: lag in seconds from the DB's (or its WAL's) mtime to the end
    let (table, json) = table_and_json(&dir, "generations", &base, "name generation lag start end");
    assert_eq!(json.len(), table.len(), "{json:?} vs {table:?}");
    assert!(!json.is_empty());
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut wal_path = ws.db().into_os_string();
    wal_path.push("-wal");
    let reference: DateTime<Utc> = mtime(&ws.db())
        .into_iter()
        .chain(mtime(Path::new(&wal_path)))
        .max()
        .expect("db mtime")
        .into();
    for (row, cells) in json.iter().zip(&table) {
        assert_eq!(row.as_object().map(|o| o.len()), Some(5), "{row}");
        assert_eq!(row["replica"], cells[0].as_str());
        assert_eq!(row["generation"], cells[1].as_str());
        let (start, end) = (time(&row["start"]), time(&row["end"]));
        assert_eq!(table_time(start), cells[3]);
        assert_eq!(table_time(end), cells[4]);
        assert!(start <= end, "{row}");
        let lag = row["lag"]
            .as_f64()
            .unwrap_or_else(|| panic!("lag not a number: {row}"));
        let expected = reference.signed_duration_since(end).as_seconds_f64();
        assert!(
            (lag - expected).abs() < 1e-6,
            "lag {lag} != {expected}: {row}"
        );
    }
    // The generations of the snapshots and segments are the ones listed.
    let listed: Vec<&str> = json
        .iter()
        .filter_map(|r| r["generation"].as_str())
        .collect();
    assert!(listed.contains(&generation.as_str()), "{listed:?}");

    // restore -dry-run on the v0.3 layout: the plan lists the generation's snapshot and exactly
    // the segments `wal` lists (one generation here), and writes nothing.
    let out = ws.join("planned.db");
    let shown = out.display().to_string();
    let plan: Value = serde_json::from_str(&listing(
        &dir,
        &[
            "restore",
            "-dry-run",
            "-json",
            "-o",
            &shown,
            &ws.replica_url(),
        ],
    ))
    .expect("plan JSON");
    assert_eq!(plan["layout"], "v0.3", "{plan}");
    assert_eq!(plan["generation"], generation.as_str(), "{plan}");
    let planned: Vec<(u64, u64, u64)> = plan["wal"]
        .as_array()
        .expect("wal array")
        .iter()
        .map(|w| {
            (
                w["index"].as_u64().unwrap_or(u64::MAX),
                w["offset"].as_u64().unwrap_or(u64::MAX),
                w["size"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    let listed: Vec<(u64, u64, u64)> = expected
        .iter()
        .map(|w| {
            (
                w["index"].as_u64().unwrap_or(0),
                w["offset"].as_u64().unwrap_or(0),
                w["size"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(planned, listed, "{plan}");
    let text = listing(
        &dir,
        &["restore", "-dry-run", "-o", &shown, &ws.replica_url()],
    );
    assert!(text.starts_with("Restore plan:\n"), "{text}");
    assert!(
        text.contains(&format!("generation: {generation} (v0.3 layout)")),
        "{text}"
    );
    assert!(!out.exists(), "a dry run wrote the database");
}

#[test]
fn json_errors_stay_on_stderr_with_exit_1() {
    let ws = Workspace::new();
    let cfg = ws.write(
        "walstream.yml",
        &format!(
            "dbs:\n  - path: {}\n    replicas:\n      - url: {}\n",
            ws.db().display(),
            ws.replica_url()
        ),
    );
    let other = ws.join("other.db").display().to_string();
    for cmd in ["generations", "snapshots", "wal"] {
        let mut c = Command::new(walstream_bin());
        c.args([cmd, "-json", "-config", &cfg, &other])
            .current_dir(ws.path())
            .env_remove("LITESTREAM_CONFIG");
        let out = common::run_expect_fail(&mut c);
        let d = common::describe(&c, &out);
        assert_eq!(out.status.code(), Some(1), "{d}");
        assert_eq!(common::stdout_text(&out), "", "{d}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{d}");
        assert!(stderr.contains("other.db"), "{d}");
    }
}
