//! `walstream sync [-wait] DB` and `walstream snapshot DB`: ask a running `walstream replicate` to
//! flush a database to its replicas, or to take a snapshot, now — the commands a preStop hook or
//! an operator runs instead of `curl` (Litestream v0.5 has `sync` over its control socket).
//!
//! Transport: the running instance's HTTP API (`POST /api/v1/databases/{db}/sync|snapshot`), at
//! the config file's `addr` with its `http-token` — the same file `replicate` reads, so nothing
//! else is configured. No separate Unix socket: the API already authenticates every mutating
//! call with the token, a sidecar's preStop hook runs in the sidecar's own network namespace
//! (loopback reaches it), and one transport keeps one permission model.
//!
//! What must stay true:
//! - exit 0 only when the server did what was asked (with `-wait`: every replica holds the
//!   database's position); any other outcome exits 1 with one line naming the URL and the
//!   server's message (instance down, wrong or missing token, unknown database, timeout);
//! - the token is never printed;
//! - `DB` is the database's name as `walstream status` shows it, or its path (resolved through
//!   `GET /api/v1/status`).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};

use super::flags::FlagSet;
use super::parse_flags;
use super::source::register_config_flags;
use super::status::{call, error_reason, fetch, target};
use crate::server::api::{StatusDoc, SyncDoc};
use crate::server::query::percent_encode;

/// How long `sync` without `-wait` lets the server work before answering: the sync goes on
/// after the answer (the server never abandons an upload round half-way).
const NO_WAIT: &str = "1ms";

/// Extra time the client gives the server beyond the action's own deadline.
const SLACK: Duration = Duration::from_secs(5);

/// `walstream sync`.
pub(super) fn sync(args: &[String]) -> anyhow::Result<()> {
    run(args, Action::Sync)
}

/// `walstream snapshot`.
pub(super) fn snapshot(args: &[String]) -> anyhow::Result<()> {
    run(args, Action::Snapshot)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Sync,
    Snapshot,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Sync => "sync",
            Action::Snapshot => "snapshot",
        }
    }
}

fn run(args: &[String], action: Action) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    register_config_flags(&mut fs)
        .string("addr", "")
        .string("timeout", "30s")
        .bool("json", false);
    if action == Action::Sync {
        fs.bool("wait", false);
    }
    let p = parse_flags(&fs, args, action.name())?;
    let [db] = p.args.as_slice() else {
        bail!("database name or path required");
    };
    let limit = crate::gofmt::parse_go_duration(p.str("timeout"))
        .map_err(|e| anyhow::anyhow!("invalid -timeout: {e}"))?;
    let wait = action == Action::Snapshot || p.bool("wait");
    let (base, token) = target(&p)?;
    super::block_on(async {
        let id = database_id(&base, token.as_deref(), db).await?;
        let deadline = if wait { p.str("timeout") } else { NO_WAIT };
        let url = format!(
            "{base}/api/v1/databases/{}/{}?timeout={deadline}",
            percent_encode(&id),
            action.name()
        );
        let (status, body) =
            call(reqwest::Method::POST, &url, token.as_deref(), limit + SLACK).await?;
        if !wait && status == reqwest::StatusCode::GATEWAY_TIMEOUT {
            println!("{}: sync started (not waiting for the replicas)", id);
            return Ok(());
        }
        if !status.is_success() {
            bail!("POST {url}: {status}: {}", error_reason(body));
        }
        report(action, &body, p.bool("json"))
    })?
}

/// The API's id of `db`: a name is used as given; a path (anything with a `/`) is looked up in
/// the instance's status by its configured path.
async fn database_id(base: &str, token: Option<&str>, db: &str) -> anyhow::Result<String> {
    if !db.contains('/') {
        return Ok(db.to_string());
    }
    let url = format!("{base}/api/v1/status");
    let body = fetch(&url, token).await?;
    let doc: StatusDoc = serde_json::from_str(&body)
        .with_context(|| format!("invalid status document from {url}"))?;
    let want = std::path::Path::new(db);
    doc.databases
        .into_iter()
        .find(|d| std::path::Path::new(&d.path) == want)
        .map(|d| d.name)
        .ok_or_else(|| anyhow::anyhow!("{db}: no such database in the running instance ({url})"))
}

/// One line per replica (or the server's JSON with `-json`).
fn report(action: Action, body: &str, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let value: serde_json::Value =
            serde_json::from_str(body).context("invalid JSON from the server")?;
        let text = serde_json::to_string_pretty(&value).context("format JSON")?;
        return writeln!(out, "{text}").context("write to stdout");
    }
    match action {
        Action::Sync => {
            let doc: SyncDoc = serde_json::from_str(body).context("invalid sync document")?;
            writeln!(out, "{}: synced to {}", doc.database, doc.position)
                .context("write to stdout")?;
            for r in &doc.replicas {
                writeln!(out, "  replica {}: {}", r.name, r.position).context("write to stdout")?;
            }
        }
        Action::Snapshot => {
            let doc: crate::server::api::SnapshotTakenDoc =
                serde_json::from_str(body).context("invalid snapshot document")?;
            writeln!(out, "{}: snapshot taken", doc.database).context("write to stdout")?;
            for r in &doc.replicas {
                writeln!(
                    out,
                    "  replica {}: generation {} index {:08x}",
                    r.name, r.generation, r.index
                )
                .context("write to stdout")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(percent_encode("app.db"), "app.db");
        assert_eq!(percent_encode("tenants/a b.db"), "tenants%2Fa%20b.db");
    }
}
