//! The README's first set-up command (`scripts/demo.sh`) runs the main job on the built-in
//! example config and a replica appears; it prints the admin page's address once the page
//! answers, and the restore command it prints at the end brings back what the demo wrote. The script and `config/local.yml` are copied into a temp
//! tree so the test never writes into the checkout; `WALSTREAM_BIN` points the script at the
//! binary cargo built for this test run instead of a release build.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, walstream_bin};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0)
}

#[test]
fn readme_first_command_is_the_demo_script() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("read README");
    let first_command = readme
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .nth(1)
        .expect("README has a code block");
    assert!(
        first_command.starts_with("scripts/demo.sh"),
        "README's first command changed: {first_command}"
    );
}

#[test]
fn demo_script_replicates_to_the_local_directory_replica() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for rel in ["scripts/demo.sh", "config/local.yml"] {
        let dst = tmp.path().join(rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(repo().join(rel), &dst).expect("copy");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = run(Command::new("bash")
        .arg(tmp.path().join("scripts/demo.sh"))
        .arg("4")
        .current_dir(tmp.path())
        .env("DEMO_PORT", port.to_string())
        .env("WALSTREAM_BIN", walstream_bin()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let page = format!(
        "admin page: http://127.0.0.1:{port}/  (token for its backup and restore buttons: "
    );
    assert!(stdout.contains(&page), "{stdout}");

    // The restore command the script prints at the end, run as printed.
    let restore = stdout
        .lines()
        .find_map(|l| l.strip_prefix("restore what the demo wrote: "))
        .unwrap_or_else(|| panic!("no restore command in: {stdout}"));
    let out_db = tmp.path().join("restored.db");
    let words: Vec<String> = restore
        .split_whitespace()
        .map(|w| w.replace("/tmp/demo-restored.db", &out_db.display().to_string()))
        .collect();
    run(Command::new(&words[0])
        .args(&words[1..])
        .current_dir(tmp.path()));
    let restored: i64 = common::sqlite::checked(&out_db)
        .query_row("SELECT count(*) FROM demo", [], |r| r.get(0))
        .expect("count demo rows");
    assert!(restored > 0, "the restored demo database has rows");

    let generations = tmp.path().join("data/replica/generations");
    let gens: Vec<_> = std::fs::read_dir(&generations)
        .expect("the demo made a replica")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(gens.len(), 1, "one generation expected");
    let generation = gens[0].path();
    assert_eq!(
        count_files(&generation.join("snapshots")),
        1,
        "one snapshot expected"
    );
    assert!(
        count_files(&generation.join("wal")) >= 1,
        "WAL segments expected"
    );
}
