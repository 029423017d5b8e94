//! `walstream restore` / `ltx` / `generations` on a small Litestream v0.5 file replica built from
//! a snapshot the real v0.5.17 wrote (`tests/fixtures/ltx/l9-snapshot.ltx`, TXIDs 1-9): the
//! outcomes that need no test server — latest, `-txid`, a TXID that cannot be reached with and
//! without `-if-replica-exists`, `-if-db-not-exists`, `-dry-run`, the `ltx` table, and the
//! one-line refusal of the v0.3 listing commands.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, run_expect_fail, stdout_text, walstream_bin};

const SNAPSHOT: &str = "0000000000000001-0000000000000009.ltx";

fn replica(dir: &Path) -> String {
    let l9 = dir.join("replica/ltx/9");
    std::fs::create_dir_all(&l9).expect("mkdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ltx/l9-snapshot.ltx");
    std::fs::copy(fixture, l9.join(SNAPSHOT)).expect("copy fixture");
    format!("file://{}", dir.join("replica").display())
}

fn walstream(args: &[&str]) -> Command {
    let mut cmd = Command::new(walstream_bin());
    cmd.args(args)
        .env_remove("LITESTREAM_CONFIG")
        .env_remove("WALSTREAM_CONFIG");
    cmd
}

fn integrity_ok(db: &Path) {
    let conn = common::sqlite::checked(db);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("schema");
    assert!(n >= 1, "the snapshot holds the schema");
}

#[test]
fn restore_outcomes_on_a_v5_file_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = replica(dir.path());
    let out = dir.path().join("out.db");
    let o = out.to_str().expect("utf-8");

    run(&mut walstream(&["restore", "-o", o, &url]));
    integrity_ok(&out);
    let skip = run(&mut walstream(&[
        "restore",
        "-if-db-not-exists",
        "-o",
        o,
        &url,
    ]));
    assert!(String::from_utf8_lossy(&skip.stderr).contains("database already exists, skipping"));
    std::fs::remove_file(&out).expect("rm");

    run(&mut walstream(&[
        "restore",
        "-txid",
        "0000000000000009",
        "-o",
        o,
        &url,
    ]));
    integrity_ok(&out);
    std::fs::remove_file(&out).expect("rm");

    let fail = run_expect_fail(&mut walstream(&[
        "restore",
        "-txid",
        "000000000000000a",
        "-o",
        o,
        &url,
    ]));
    assert!(
        String::from_utf8_lossy(&fail.stderr).contains("no matching backup files available"),
        "{fail:?}"
    );
    assert!(!out.exists());
    run(&mut walstream(&[
        "restore",
        "-if-replica-exists",
        "-txid",
        "000000000000000a",
        "-o",
        o,
        &url,
    ]));
    assert!(!out.exists());
    let both = run_expect_fail(&mut walstream(&[
        "restore",
        "-txid",
        "0000000000000009",
        "-timestamp",
        "2030-01-01T00:00:00Z",
        "-o",
        o,
        &url,
    ]));
    assert!(
        String::from_utf8_lossy(&both.stderr)
            .contains("cannot specify index & timestamp to restore"),
        "{both:?}"
    );
    let bad = run_expect_fail(&mut walstream(&["restore", "-txid", "9", "-o", o, &url]));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("invalid value \"9\" for flag -txid: invalid txid format"),
        "{bad:?}"
    );
}

#[test]
fn dry_run_ltx_and_v3_listings_on_a_v5_file_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = replica(dir.path());
    let out = dir.path().join("out.db");
    let plan = run(&mut walstream(&[
        "restore",
        "-dry-run",
        "-o",
        out.to_str().expect("utf-8"),
        &url,
    ]));
    let text = stdout_text(&plan);
    assert!(text.starts_with(&format!(
        "Restore plan:\n  source: {url}\n  target: {}\n  replica: file\n  txid range: 0000000000000001 - 0000000000000009\n\nFiles to fetch:\nlevel  file  ",
        out.display()
    )), "{text}");
    assert!(text.contains(&format!(
        "\n9      {SNAPSHOT}  0000000000000001  0000000000000009  704   "
    )));
    assert!(!out.exists(), "a dry run writes nothing");

    let listing = stdout_text(&run(&mut walstream(&["ltx", "-level", "9", &url])));
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert!(lines[0].starts_with("level  min_txid          max_txid          size  created"));
    let empty = stdout_text(&run(&mut walstream(&["ltx", "-json", &url])));
    assert_eq!(empty, "[]\n", "level 0 is empty");

    for cmd in ["generations", "snapshots", "wal"] {
        let fail = run_expect_fail(&mut walstream(&[cmd, &url]));
        let err = String::from_utf8_lossy(&fail.stderr);
        assert!(
            err.contains("use `walstream ltx -level all`"),
            "{cmd}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
    }
}
