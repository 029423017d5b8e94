//! The `walstream` binary's command surface, run as a process in temp dirs: usage and exit codes,
//! Go-flag errors, config errors (one line, exit 1), warnings for unknown keys, and the listing
//! tables on a hand-made file replica (exact bytes). Usage texts are compared with the real
//! Litestream v0.3.13 binary.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::{litestream_bin, walstream_bin};

/// Result of one run: exit code, stdout, stderr.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(walstream_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("LITESTREAM_CONFIG")
        .output()
        .expect("run walstream");
    into_run(out)
}

fn into_run(out: Output) -> Run {
    Run {
        code: out
            .status
            .code()
            .expect("exit code (not killed by a signal)"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Asserts `text` is exactly one Go-default-logger error line with this message.
fn assert_go_error_line(text: &str, message: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{text}");
    let re = regex::Regex::new(
        r#"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} ERROR failed to run error="(.*)"$"#,
    )
    .unwrap();
    let caps = re
        .captures(lines[0])
        .unwrap_or_else(|| panic!("not a Go log line: {text}"));
    assert_eq!(caps[1].replace("\\\"", "\""), message);
}

/// Expected usage of `command`, from the real Litestream with the program name changed.
fn litestream_usage(command: &[&str]) -> String {
    let mut args = command.to_vec();
    args.push("-h");
    let out = Command::new(litestream_bin())
        .args(&args)
        .env_remove("LITESTREAM_CONFIG")
        .output()
        .expect("run litestream");
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stdout)
        .replace("/etc/litestream.yml", "{config}")
        .replace("litestream", "walstream")
        .replace("{config}", "/etc/litestream.yml")
        .replace("Litestream will exit", "walstream will exit")
}

#[test]
fn usage_texts_match_litestream() {
    let dir = tmp();
    // The top-level usage ("") and each command's.
    let commands = "version databases generations snapshots wal restore replicate";
    for cmd in std::iter::once("").chain(commands.split(' ')) {
        let words: Vec<&str> = if cmd.is_empty() { vec![] } else { vec![cmd] };
        let mut args = words.clone();
        args.push("-h");
        let r = run_in(dir.path(), &args);
        assert_eq!(r.code, 1, "{cmd} -h");
        assert_eq!(r.stderr, "", "{cmd} -h");
        assert_eq!(r.stdout, expected_usage(cmd), "usage of {cmd:?}");
    }
}

/// walstream's usage of `cmd` (`""`: the program's): the real Litestream's with walstream's
/// extra commands and flags added where walstream documents them.
fn expected_usage(cmd: &str) -> String {
    let words: Vec<&str> = if cmd.is_empty() { vec![] } else { vec![cmd] };
    let mut expected = litestream_usage(&words);
    if cmd.is_empty() {
        // walstream's extra commands, listed in Litestream's alphabetical order.
        let databases = "\tdatabases    list databases specified in config file\n";
        expected = expected.replacen(
            databases,
            &format!(
                "\tbackup       creates, uploads, lists, pins, expires and deletes backups of a database\n{databases}"
            ),
            1,
        );
        let generations = "\tgenerations  list available generations for a database\n";
        expected = expected.replacen(
            generations,
            &format!("{generations}\tltx          list LTX files of a Litestream v0.5 replica\n"),
            1,
        );
        let snapshots = "\tsnapshots    list available snapshots for a database\n";
        assert!(expected.contains(snapshots), "{expected}");
        expected = expected.replacen(
            snapshots,
            &format!(
                "\tsnapshot     asks a running walstream replicate to take a snapshot now\n{snapshots}\tstatus       prints the status of a running walstream replicate\n\tsync         asks a running walstream replicate to sync a database now\n"
            ),
            1,
        );
    }
    // walstream's extra flags, documented after Litestream's own.
    let json_flag = "\t-json\n\t    walstream: print the rows as a JSON array of objects, one\n\t    field per column, instead of the table.\n\n";
    let extra = match cmd {
        "restore" => Some((
            "\t-v\n\t    Verbose output.\n\n",
            "\t-integrity-check MODE\n\t    walstream: verify the restored database before it is moved\n\t    into place: full (PRAGMA integrity_check), quick\n\t    (PRAGMA quick_check) or none. Defaults to full\n\n\t-if-db-damaged\n\t    walstream: like -if-db-not-exists, but an existing database is\n\t    kept only if it passes PRAGMA quick_check; a damaged one is\n\t    restored from the replica and moved aside (with its -wal and\n\t    -shm) to DB.damaged-<time>, never deleted. Exits 1 when no\n\t    replica holds a backup (the damaged file stays in place).\n\n\t-txid TXID\n\t    Litestream v0.5 replicas: restore up to a specific\n\t    16-digit hex transaction ID (inclusive).\n\n\t-dry-run\n\t    Print the restore plan without writing anything: which LTX\n\t    files from which levels (v0.5 replicas), or which snapshot\n\t    and WAL segments of which generation (v0.3 replicas).\n\n\t-json\n\t    With -dry-run, print the plan as JSON; otherwise print a\n\t    JSON summary of the finished v0.5 restore.\n\n\tDIR\n\t    walstream: the \"dir\" of a directory entry of the config in\n\t    place of DB_PATH restores every database found in that entry's\n\t    replicas (matching its pattern) to OUTDIR/<relative path> with\n\t    -o OUTDIR, else to its place under DIR. -parallelism NUM then\n\t    bounds how many databases restore at once (each downloads one\n\t    WAL file at a time); -if-db-not-exists and -if-replica-exists\n\t    apply per database. Prints one line per database and exits 1\n\t    if any database failed.\n\n",
        )),
        "replicate" => Some((
            "\t-no-expand-env\n\t    Disables environment variable expansion in configuration file.\n\n",
            "\t-shutdown-timeout DURATION\n\t    walstream: deadline for the final sync after SIGINT/SIGTERM.\n\t    Defaults to the config's shutdown-sync-timeout, else 30s\n\n\t-heartbeat-interval DURATION\n\t    walstream: replaces the config's heartbeat-interval (at\n\t    least 1s instead of 1m); needs heartbeat-url in the config\n\n",
        )),
        "databases" => Some((
            "\t-no-expand-env\n\t    Disables environment variable expansion in configuration file.\n\n",
            json_flag,
        )),
        "generations" => Some((
            "\t-replica NAME\n\t    Optional, filters by replica.\n\n",
            json_flag,
        )),
        "snapshots" => Some((
            "\t-replica NAME\n\t    Optional, filter by a specific replica.\n\n",
            json_flag,
        )),
        "wal" => Some((
            "\t-generation NAME\n\t    Optional, filter by a specific generation.\n\n",
            json_flag,
        )),
        _ => None,
    };
    if let Some((after, added)) = extra {
        assert!(expected.contains(after), "{expected}");
        expected = expected.replacen(after, &format!("{after}{added}"), 1);
    }
    expected
}

#[test]
fn ltx_usage_matches_litestream_v0_5() {
    let r = run_in(tmp().path(), &["ltx", "-h"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, ""));
    let out = Command::new(common::litestream5_bin())
        .args(["ltx", "-h"])
        .env_remove("LITESTREAM_CONFIG")
        .output()
        .expect("run litestream 0.5");
    let after = "\t-no-expand-env\n\t    Disables environment variable expansion in configuration file.\n\n";
    let added = "\t-replica NAME\n\t    walstream: list this replica of the database (default: the\n\t    first one).\n\n";
    let expected = String::from_utf8_lossy(&out.stdout)
        .replace("/etc/litestream.yml", "{config}")
        .replace("litestream", "walstream")
        .replace("{config}", "/etc/litestream.yml")
        .replacen(after, &format!("{after}{added}"), 1);
    assert_eq!(r.stdout, expected);
}

#[test]
fn no_command_help_and_flags_print_usage_exit_1() {
    let dir = tmp();
    for args in [&[][..], &["help"], &["-v"], &["--config", "x"]] {
        let r = run_in(dir.path(), args);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(
            r.stdout
                .starts_with("walstream is a tool for replicating SQLite databases.\n")
        );
        assert_eq!(r.stderr, "", "{args:?}");
    }
}

#[test]
fn unknown_command_is_an_error() {
    let r = run_in(tmp().path(), &["foo"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_go_error_line(&r.stderr, "walstream foo: unknown command");
}

#[test]
fn version_prints_crate_version() {
    let r = run_in(tmp().path(), &["version", "extra"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "v0.1.0\n"));
    assert_eq!(r.stderr, "");
}

#[test]
fn bad_flags_print_go_message_then_usage() {
    let dir = tmp();
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["wal", "-v", "x"],
            "wal",
            "flag provided but not defined: -v",
        ),
        (
            &["generations", "-config"],
            "generations",
            "flag needs an argument: -config",
        ),
        (
            &["snapshots", "---o=1", "x"],
            "snapshots",
            "bad flag syntax: ---o=1",
        ),
        (
            &["databases", "-no-expand-env=maybe"],
            "databases",
            "invalid boolean value \"maybe\" for -no-expand-env: parse error",
        ),
    ];
    for (args, cmd, msg) in cases {
        let r = run_in(dir.path(), args);
        assert_eq!(r.code, 1, "{args:?}");
        let (first, rest) = r.stderr.split_once('\n').expect("two stderr lines");
        assert_eq!(first, *msg);
        assert_go_error_line(rest, msg);
        assert_eq!(r.stdout, expected_usage(cmd), "{args:?}");
    }
}

#[test]
fn argument_count_errors() {
    let dir = tmp();
    let cases: &[(&[&str], &str)] = &[
        (&["generations"], "database path or replica URL required"),
        (&["snapshots"], "database path required"),
        (&["wal", ""], "database path required"),
        (&["wal", "a", "b"], "too many arguments"),
        (&["databases", "x"], "too many arguments"),
    ];
    for (args, msg) in cases {
        let r = run_in(dir.path(), args);
        assert_eq!(r.code, 1, "{args:?}");
        assert_go_error_line(&r.stderr, msg);
    }
}

#[test]
fn missing_config_file() {
    let dir = tmp();
    let r = run_in(dir.path(), &["databases", "-config", "nope.yml"]);
    assert_eq!(r.code, 1);
    let abs = fs::canonicalize(dir.path()).unwrap().join("nope.yml");
    assert_go_error_line(
        &r.stderr,
        &format!("config file not found: {}", abs.display()),
    );
    let r = run_in(dir.path(), &["generations", "-config", "nope.yml", "db"]);
    assert_go_error_line(
        &r.stderr,
        &format!("config file not found: {}", abs.display()),
    );
}

#[test]
fn url_with_config_flag_is_refused() {
    let r = run_in(tmp().path(), &["wal", "-config", "c.yml", "file:///tmp/x"]);
    assert_eq!(r.code, 1);
    assert_go_error_line(
        &r.stderr,
        "cannot specify a replica URL and the -config flag",
    );
}

/// A config file in `dir` with the given text; returns its path.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("c.yml");
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn db_not_in_config_and_unknown_replica() {
    let dir = tmp();
    let root = fs::canonicalize(dir.path()).unwrap();
    let cfg = format!(
        "logging:\n  stderr: true\ndbs:\n  - path: {r}/db.sqlite\n    replicas:\n      - path: {r}/rep\n",
        r = root.display()
    );
    let c = write_config(&root, &cfg);
    let c = c.to_str().unwrap();
    let r = run_in(&root, &["generations", "-config", c, "other.db"]);
    assert_eq!(r.code, 1);
    // After the config is loaded, errors use the configured logger (logfmt; stderr here).
    let want = format!(
        "level=ERROR msg=\"failed to run\" error=\"database not found in config: {}/other.db\"\n",
        root.display()
    );
    assert!(r.stderr.starts_with("time="), "{}", r.stderr);
    assert!(r.stderr.ends_with(&want), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);

    let r = run_in(
        &root,
        &["snapshots", "-config", c, "-replica", "zz", "db.sqlite"],
    );
    assert_eq!(r.code, 1);
    let want = format!(
        "error=\"replica \\\"zz\\\" not found for database \\\"{}/db.sqlite\\\"\"\n",
        root.display()
    );
    assert!(r.stderr.ends_with(&want), "{}", r.stderr);

    // The DB file does not exist: `generations` needs its mtime for the lag column.
    let r = run_in(&root, &["generations", "-config", c, "db.sqlite"]);
    assert_eq!(r.code, 1);
    let want = format!(
        "stat {}/db.sqlite: no such file or directory\"\n",
        root.display()
    );
    assert!(r.stderr.ends_with(&want), "{}", r.stderr);
}

/// Malformed configs: each must fail `databases` with exactly one stderr line naming the
/// problem, and print nothing on stdout.
#[test]
fn malformed_configs_fail_with_one_line() {
    let db = "dbs:\n  - path: /data/db\n    replicas:\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{db}      - path: /r\n        sync-interval: 1d\n"),
            "sync-interval: invalid duration",
        ),
        (
            format!("{db}      - url: ftp://host/x\n"),
            "unknown replica url scheme",
        ),
        (
            format!("{db}      - url: sftp://u@host/x\n"),
            "sftp replicas are not supported",
        ),
        (format!("{db}      - name: x\n"), "neither"),
        (
            format!("{db}      - path: /a\n      - path: /b\n"),
            "duplicate replica name",
        ),
        ("dbs:\n  - replicas: []\n".into(), "missing required key"),
        (
            "addr: localhost\ndbs: []\n".into(),
            "must specify port for bind address",
        ),
        ("dbs: [\n".into(), "malformed YAML"),
    ];
    for (text, needle) in &cases {
        let dir = tmp();
        let c = write_config(dir.path(), text);
        let r = run_in(dir.path(), &["databases", "-config", c.to_str().unwrap()]);
        assert_eq!(
            r.code, 1,
            "config:\n{text}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        assert_eq!(r.stdout, "", "config:\n{text}");
        assert_eq!(
            r.stderr.lines().count(),
            1,
            "config:\n{text}\nstderr: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(" ERROR failed to run error="),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(needle),
            "config:\n{text}\nstderr: {}",
            r.stderr
        );
    }
}

#[test]
fn unknown_keys_warn_and_continue() {
    let dir = tmp();
    let c = write_config(
        dir.path(),
        "bogus-top: 1\ndbs:\n  - path: /data/db\n    replicas:\n      - path: /r\n        sync-intervall: 1s\n",
    );
    let r = run_in(dir.path(), &["databases", "-config", c.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "path      replicas\n/data/db  file\n");
    let warns: Vec<&str> = r.stderr.lines().collect();
    assert!(warns.iter().all(|l| l.contains(" WARN ")), "{}", r.stderr);
    assert!(r.stderr.contains("bogus-top"), "{}", r.stderr);
    assert!(r.stderr.contains("sync-intervall"), "{}", r.stderr);
}

#[test]
fn databases_table() {
    let dir = tmp();
    let c = write_config(
        dir.path(),
        "dbs:\n  - path: /data/app.db\n    replicas:\n      - path: /r1\n      - name: s3\n        \
         url: s3://bkt/app\n  - path: /data/longer-name.db\n    replicas: []\n",
    );
    let r = run_in(dir.path(), &["databases", "-config", c.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "path                  replicas\n/data/app.db          file,s3\n/data/longer-name.db  \n"
    );
}

/// Writes a replica object with a given mtime, as Litestream's file backend would.
fn put_file(path: &Path, len: usize, mtime_secs: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, vec![7u8; len]).unwrap();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_secs) + Duration::from_millis(750);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// A hand-made file replica: two generations, snapshots and segments at known times, plus
/// names every listing must ignore.
fn make_file_replica(root: &Path) {
    let g1 = root.join("generations/041e29e3fd6ffa54");
    let g2 = root.join("generations/6e2ba44860bb8fbd");
    let t0 = 1_795_000_000; // 2026-11-18T11:06:40Z
    put_file(&g1.join("snapshots/00000000.snapshot.lz4"), 421, t0);
    put_file(&g1.join("wal/00000000_00000000.wal.lz4"), 459, t0);
    put_file(&g1.join("wal/00000000_00004080.wal.lz4"), 273, t0 + 21);
    put_file(&g1.join("wal/00000001_00000000.wal.lz4"), 119, t0 + 35);
    put_file(&g2.join("snapshots/00000001.snapshot.lz4"), 500, t0 + 99);
    put_file(&g2.join("wal/00000001_00000000.wal.lz4"), 200, t0 + 100);
    // Ignored: upper-case hex, temp files, stray names, a non-directory generation.
    put_file(&g1.join("wal/0000000A_00000000.wal.lz4"), 1, t0);
    put_file(&g1.join("wal/00000002_00000000.wal.lz4.tmp"), 1, t0);
    put_file(&g1.join("snapshots/junk"), 1, t0);
    put_file(&root.join("generations/0123456789abcdef"), 1, t0);
}

#[test]
fn listings_of_a_file_replica() {
    let dir = tmp();
    let rep = dir.path().join("rep");
    make_file_replica(&rep);
    let url = format!("file://{}", rep.display());
    let r = run_in(dir.path(), &["snapshots", &url]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(
        r.stdout,
        "replica  generation        index  size  created\n\
         file     041e29e3fd6ffa54  0      421   2026-11-18T11:06:40Z\n\
         file     6e2ba44860bb8fbd  1      500   2026-11-18T11:08:19Z\n"
    );
    let r = run_in(dir.path(), &["wal", &url]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(
        r.stdout,
        "replica  generation        index  offset  size  created\n\
         file     041e29e3fd6ffa54  0      0       459   2026-11-18T11:06:40Z\n\
         file     041e29e3fd6ffa54  0      16512   273   2026-11-18T11:07:01Z\n\
         file     041e29e3fd6ffa54  1      0       119   2026-11-18T11:07:15Z\n\
         file     6e2ba44860bb8fbd  1      0       200   2026-11-18T11:08:20Z\n"
    );
    let r = run_in(
        dir.path(),
        &["wal", "-generation", "6e2ba44860bb8fbd", &url],
    );
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    let r = run_in(
        dir.path(),
        &["wal", "-generation", "ffffffffffffffff", &url],
    );
    assert_eq!(
        r.stdout,
        "replica  generation  index  offset  size  created\n"
    );
    assert_eq!(r.code, 0);
}

#[test]
fn generations_of_a_file_replica_with_db_lag() {
    let dir = tmp();
    let root = fs::canonicalize(dir.path()).unwrap();
    make_file_replica(&root.join("rep"));
    let db = root.join("db.sqlite");
    // DB mtime 10 minutes 3.9 s after the last segment of the second generation.
    put_file(&db, 4096, 1_795_000_000 + 100 + 603);
    let cfg = format!(
        "dbs:\n  - path: {}\n    replicas:\n      - path: {}/rep\n",
        db.display(),
        root.display()
    );
    let c = write_config(&root, &cfg);
    let r = run_in(
        &root,
        &["generations", "-config", c.to_str().unwrap(), "db.sqlite"],
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(
        r.stdout,
        "name  generation        lag    start                 end\n\
         file  041e29e3fd6ffa54  11m8s  2026-11-18T11:06:40Z  2026-11-18T11:07:15Z\n\
         file  6e2ba44860bb8fbd  10m3s  2026-11-18T11:08:19Z  2026-11-18T11:08:20Z\n"
    );
}

/// A replica whose listing fails (an S3 endpoint where nothing listens) is logged and skipped;
/// the other replica is still listed and the command exits 0.
#[test]
fn listing_error_of_one_replica_is_logged_and_skipped() {
    let dir = tmp();
    let root = fs::canonicalize(dir.path()).unwrap();
    make_file_replica(&root.join("good"));
    let db = root.join("db.sqlite");
    fs::write(&db, b"").unwrap();
    let cfg = format!(
        "dbs:\n  - path: {d}\n    replicas:\n      - name: bad\n        type: s3\n        \
         bucket: bkt\n        path: x\n        endpoint: http://127.0.0.1:1\n        \
         region: us-east-1\n        access-key-id: a\n        secret-access-key: b\n      \
         - name: good\n        path: {r}/good\n",
        d = db.display(),
        r = root.display()
    );
    let c = write_config(&root, &cfg);
    let r = run_in(&root, &["wal", "-config", c.to_str().unwrap(), "db.sqlite"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.contains("level=ERROR")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stdout);
    let want = format!(
        " level=ERROR msg=\"cannot determine generations\" db={} replica=bad error=",
        db.display()
    );
    assert!(errors[0].contains(&want), "{}", r.stdout);
    let rows = lines.iter().filter(|l| l.starts_with("good ")).count();
    assert_eq!(rows, 4, "{}", r.stdout);

    // With -json the same error goes to stderr and stdout is only the JSON array.
    let r = run_in(
        &root,
        &["wal", "-json", "-config", c.to_str().unwrap(), "db.sqlite"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let errors: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains(&want), "{}", r.stderr);
    let json: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("a JSON array");
    assert_eq!(json.len(), 4, "{}", r.stdout);
    assert!(
        json.iter().all(|row| row["replica"] == "good"),
        "{}",
        r.stdout
    );
}

/// Every path under `root` (relative), sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn replicate_refuses_two_databases_with_one_replica_location_and_writes_nothing() {
    let (data, logs) = (tmp(), tmp());
    let root = data.path();
    for name in ["a.db", "b.db", "c.db"] {
        let app = common::open_app(&root.join(name));
        common::insert(&app, 1);
    }
    // a.db and c.db name the same directory, spelled with `./` and a trailing slash.
    let replica = root.join("replica");
    let config = format!(
        "dbs:\n  - path: {r}/a.db\n    replicas:\n      - path: {r}/./replica/\n  \
         - path: {r}/b.db\n    replicas:\n      - path: {r}/replica-b\n  \
         - path: {r}/c.db\n    replicas:\n      - name: shared\n        url: file://{r}/replica\n",
        r = root.display()
    );
    let cfg = logs.path().join("c.yml");
    fs::write(&cfg, config).unwrap();
    let before = tree(root);
    let mut cmd = Command::new(walstream_bin());
    cmd.args(["replicate", "-config", cfg.to_str().unwrap()])
        .env_remove("LITESTREAM_CONFIG");
    let proc = common::Proc::spawn("walstream", cmd, &logs.path().join("replicate.log"));
    let (status, log) = proc.wait();
    assert_eq!(status.code(), Some(1), "{log}");
    let message = format!(
        "config {cfg}: dbs[2] ({r}/c.db): replicas[0] \"shared\": same replica location \
         file://{replica} as dbs[0] ({r}/a.db) replicas[0] \"file\" (one writer per replica \
         location)",
        cfg = cfg.display(),
        r = root.display(),
        replica = replica.display()
    );
    assert_go_error_line(&log, &message);
    assert_eq!(tree(root), before, "nothing may be written; log: {log}");
}
