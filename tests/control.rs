//! `walstream sync` and `walstream snapshot` against a running `walstream replicate` (the real
//! binary, HTTP API on a free loopback port, a file replica): exit codes and messages with the
//! sidecar up (by name, by path, from the config file, with `-addr`), with a wrong or missing
//! token, for an unknown database, and with the sidecar down; the token never printed.

mod common;
#[path = "http_support/mod.rs"]
mod http_support;
#[path = "replicate_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use common::{insert, open_app, rows};
use http_support::{Instance, config, file_replica, walstream_restore};

const TOKEN: &str = "control-test-token-91ab";

/// `walstream ARGS` with `WALSTREAM_HTTP_TOKEN` set to `token` (or unset).
fn walstream(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(common::walstream_bin());
    cmd.args(args)
        .env_remove("WALSTREAM_HTTP_TOKEN")
        .env_remove("LITESTREAM_CONFIG");
    if let Some(t) = token {
        cmd.env("WALSTREAM_HTTP_TOKEN", t);
    }
    cmd.output().expect("run walstream")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 1 with an error line containing `needle` (on stderr, or on stdout where the config file's
/// `logging` sends the log, as for every command), and the token nowhere.
fn assert_fails(out: &Output, needle: &str) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let all = format!("{stderr}{stdout}");
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.lines()
            .any(|l| l.contains("failed to run") && l.contains(needle)),
        "want {needle:?} in an error line: {all}"
    );
    assert!(!all.contains(TOKEN), "token printed: {all}");
}

fn start(dir: &Path) -> (Instance, String) {
    let db = dir.join("app.db");
    let replica = dir.join("replica");
    let cfg = config(
        &db,
        &format!("http-token: \"{TOKEN}\"\n"),
        &file_replica(&replica, "1h"),
    );
    let ws = Instance::start(dir, &cfg, &[]);
    // The client's config: the same file with the address the server really listens on.
    let client_cfg = dir.join("client.yml");
    let port = ws.base.rsplit(':').next().expect("port");
    std::fs::write(
        &client_cfg,
        cfg.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .expect("write client config");
    (ws, client_cfg.display().to_string())
}

#[test]
fn sync_and_snapshot_ask_the_running_instance() {
    let (_keep, dir) = http_support::tempdir();
    let app = open_app(&dir.join("app.db"));
    insert(&app, 1);
    let (ws, client_cfg) = start(&dir);
    ws.wait_caught_up();
    // sync-interval is 1h: only the commands below move these rows to the replica.
    for id in 2..=20 {
        insert(&app, id);
    }

    // By name, from the config file (address and token from it), waiting for the replica.
    let out = walstream(&["sync", "-wait", "-config", &client_cfg, "app.db"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("app.db: synced to "), "{stdout}");
    assert!(stdout.contains("  replica file: "), "{stdout}");
    let replica_url = format!("file://{}", dir.join("replica").display());
    let restored = walstream_restore(&[&replica_url], &[], &dir.join("after-sync.db"));
    assert_eq!(restored, rows(&app), "the replica holds every synced row");

    // By path, with -addr and the token from the environment; -json prints the server's answer.
    insert(&app, 21);
    let db_path = dir.join("app.db").display().to_string();
    let out = walstream(
        &["sync", "-wait", "-json", "-addr", &ws.base, &db_path],
        Some(TOKEN),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sync -json");
    assert_eq!(doc["database"], "app.db");

    // Without -wait: accepted and started.
    let out = walstream(&["sync", "-config", &client_cfg, "app.db"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A snapshot on every replica.
    let out = walstream(&["snapshot", "-config", &client_cfg, "app.db"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("app.db: snapshot taken\n"), "{stdout}");
    assert!(stdout.contains("  replica file: generation "), "{stdout}");

    // Wrong token, no token, unknown database: exit 1 with the server's answer.
    let out = walstream(&["sync", "-addr", &ws.base, "app.db"], Some("wrong-token"));
    assert_fails(&out, "403");
    let out = walstream(&["snapshot", "-addr", &ws.base, "app.db"], None);
    assert_fails(&out, "401");
    let out = walstream(&["sync", "-config", &client_cfg, "other.db"], None);
    assert_fails(&out, "404");
    let out = walstream(&["sync", "-config", &client_cfg, "/no/such.db"], None);
    assert_fails(
        &out,
        "/no/such.db: no such database in the running instance",
    );
    let out = walstream(&["sync", "-config", &client_cfg], None);
    assert_fails(&out, "database name or path required");

    // The sidecar down: exit 1 naming the URL.
    let base = ws.base.clone();
    ws.proc.stop();
    let out = walstream(&["sync", "-wait", "-config", &client_cfg, "app.db"], None);
    assert_fails(&out, &format!("POST {base}/api/v1/databases/app.db/sync"));
}
