//! `walstream status [-addr URL] [-json] [-config P] [-no-expand-env]`: the status of a running
//! `walstream replicate`, read from its HTTP API (`GET /api/v1/status`), as tables or as JSON.
//!
//! What must stay true:
//! - without `-addr`, the address (and token) come from the config file's `addr` /
//!   `http-token`; with `-addr`, no config file is read and the token comes from
//!   `WALSTREAM_HTTP_TOKEN` (needed only when the server protects reads);
//! - `-json` prints the server's document pretty-printed in its documented field order; the
//!   tables are derived from the same document;
//! - errors name the URL and the server's JSON error message, never the token;
//! - `-h` prints this command's usage on stdout and exits 1 (like every command).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};

use super::flags::{FlagError, FlagSet, Parsed};
use super::source::{load_config, register_config_flags};
use super::table::Table;
use super::{HelpRequested, print_table};
use crate::config;
use crate::gofmt;
use crate::server::api::{ErrorDoc, StatusDoc};

/// Whole-request deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "The status command prints the status of a running walstream replicate,
read from its HTTP API.

Usage:

	walstream status [arguments]

Arguments:

	-addr URL
	    Address of the running instance, e.g. http://localhost:9090 or :9090.
	    Defaults to the addr of the configuration file.

	-json
	    Print the status document as JSON.

	-config PATH
	    Specifies the configuration file (used when -addr is not given).

	-no-expand-env
	    Disables environment variable expansion in configuration file.

";

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    register_config_flags(&mut fs)
        .string("addr", "")
        .bool("json", false);
    let p = parse(&fs, args)?;
    if !p.args.is_empty() {
        bail!("too many arguments");
    }
    let (base, token) = target(&p)?;
    let url = format!("{base}/api/v1/status");
    let body = super::block_on(fetch(&url, token.as_deref()))??;
    let doc: StatusDoc = serde_json::from_str(&body)
        .with_context(|| format!("invalid status document from {url}"))?;
    if p.bool("json") {
        let value: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("invalid JSON from {url}"))?;
        let mut out = std::io::stdout().lock();
        let text = serde_json::to_string_pretty(&value).context("format JSON")?;
        writeln!(out, "{text}").context("write to stdout")?;
        return Ok(());
    }
    print_table(&databases_table(&doc))?;
    println!();
    print_table(&replicas_table(&doc))
}

fn parse(fs: &FlagSet, args: &[String]) -> anyhow::Result<Parsed> {
    match fs.parse(args) {
        Ok(p) => Ok(p),
        Err(FlagError::Help) => {
            print!("{USAGE}");
            Err(HelpRequested.into())
        }
        Err(FlagError::Invalid(msg)) => {
            eprintln!("{msg}");
            print!("{USAGE}");
            Err(anyhow::anyhow!(msg))
        }
    }
}

/// The API base URL and the bearer token to send.
pub(super) fn target(p: &Parsed) -> anyhow::Result<(String, Option<String>)> {
    if !p.str("addr").is_empty() {
        return Ok((base_url(p.str("addr")), config::http_token_from_env()));
    }
    let cfg = load_config(p.str("config"), p.bool("no-expand-env"))?;
    let Some(addr) = cfg.addr.as_deref() else {
        bail!("no -addr given and the configuration has no addr");
    };
    Ok((base_url(addr), cfg.http.token.clone()))
}

/// `http://…` as given (without a trailing `/`); `host:port` → `http://host:port`; an empty or
/// wildcard host (`:9090`, `0.0.0.0:9090`, `[::]:9090`) means this machine.
pub fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        return addr.to_string();
    }
    match addr.rsplit_once(':') {
        Some(("" | "0.0.0.0" | "[::]", port)) => {
            format!("http://localhost:{port}")
        }
        _ => format!("http://{addr}"),
    }
}

/// GETs `url`; the body on 200, else an error with the server's message.
pub(super) async fn fetch(url: &str, token: Option<&str>) -> anyhow::Result<String> {
    let (status, body) = call(reqwest::Method::GET, url, token, REQUEST_TIMEOUT).await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", error_reason(body));
    }
    Ok(body)
}

/// Sends `method url` (with the bearer `token`) and returns the answer's status and body; only
/// a request that got no answer (refused, timed out after `limit`) is an error. Errors name the
/// URL, never the token.
pub(super) async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    limit: Duration,
) -> anyhow::Result<(reqwest::StatusCode, String)> {
    let client = reqwest::Client::builder()
        .timeout(limit)
        .build()
        .context("build HTTP client")?;
    let mut req = client.request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{method} {url}: {}", crate::rt::http_error_text(e)))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| {
        anyhow::anyhow!(
            "{method} {url}: read body: {}",
            crate::rt::http_error_text(e)
        )
    })?;
    Ok((status, body))
}

/// The server's JSON error message, or the body as it came.
pub(super) fn error_reason(body: String) -> String {
    serde_json::from_str::<ErrorDoc>(&body)
        .map(|e| e.error)
        .unwrap_or(body)
}

/// RFC 3339 at second precision (like Litestream's tables), `-` when unknown.
fn short_time(t: Option<&str>) -> String {
    t.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| {
            d.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|| "-".to_string())
}

fn or_dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_string())
}

fn databases_table(doc: &StatusDoc) -> Table {
    let mut t = Table::new();
    t.row([
        "database",
        "path",
        "attached",
        "size",
        "wal size",
        "position",
        "last sync",
        "error",
    ]);
    for db in &doc.databases {
        t.row([
            db.name.clone(),
            db.path.clone(),
            if db.attached { "yes" } else { "no" }.to_string(),
            db.size.to_string(),
            db.wal_size.to_string(),
            or_dash(db.position.as_ref().map(|p| p.to_string())),
            short_time(db.last_sync.as_deref()),
            or_dash(db.last_error.clone()),
        ]);
    }
    t
}

fn replicas_table(doc: &StatusDoc) -> Table {
    let mut t = Table::new();
    t.row([
        "database",
        "replica",
        "type",
        "position",
        "lag",
        "last sync",
        "latest snapshot",
        "oldest restore point",
        "error",
    ]);
    for db in &doc.databases {
        for r in &db.replicas {
            let lag_nanos = (r.lag_seconds * 1e9) as i128;
            let lag = gofmt::format_go_duration(gofmt::round_lag(lag_nanos));
            t.row([
                db.name.clone(),
                r.name.clone(),
                r.kind.clone(),
                or_dash(r.position.as_ref().map(|p| p.to_string())),
                lag,
                short_time(r.last_sync.as_deref()),
                short_time(r.latest_snapshot.as_ref().map(|s| s.time.as_str())),
                short_time(r.oldest_restore_point.as_deref()),
                or_dash(r.last_error.as_ref().map(|e| e.message.clone())),
            ]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_base_urls() {
        assert_eq!(base_url(":9090"), "http://localhost:9090");
        assert_eq!(base_url("0.0.0.0:9090"), "http://localhost:9090");
        assert_eq!(base_url("[::]:9090"), "http://localhost:9090");
        assert_eq!(base_url("10.0.0.5:9090"), "http://10.0.0.5:9090");
        assert_eq!(base_url("http://h:1/"), "http://h:1");
        assert_eq!(base_url("https://h"), "https://h");
    }

    #[test]
    fn tables_from_a_status_document() {
        let doc: StatusDoc = serde_json::from_value(serde_json::json!({
            "version": "0.1.0",
            "time": "2026-11-22T04:27:38.463042524Z",
            "databases": [{
                "name": "app.db", "path": "/data/app.db", "attached": true,
                "size": 16384, "wal_size": 16512, "page_size": 4096,
                "generation": "b5db80115448e7b3",
                "position": {"generation": "b5db80115448e7b3", "index": 1, "offset": 4152},
                "last_sync": "2026-11-22T04:27:38.396643296Z",
                "last_checkpoint": null, "last_error": null, "failing_since": null,
                "replicas": [{
                    "name": "s3", "type": "s3", "url": "s3://bucket/db",
                    "position": null, "last_sync": null, "lag_seconds": 12.34,
                    "last_error": {"time": "2026-11-22T04:27:30Z", "message": "PUT x: refused"},
                    "error_count": 3, "failure_streak": 3, "latest_snapshot": null,
                    "oldest_restore_point": "2026-11-22T04:00:00.5Z",
                    "restore_points_refreshed_at": null
                }]
            }]
        }))
        .expect("document");
        let dbs = databases_table(&doc).render();
        assert!(dbs.contains("b5db80115448e7b3/00000001:4152"), "{dbs}");
        assert!(dbs.contains("2026-11-22T04:27:38Z"), "{dbs}");
        let reps = replicas_table(&doc).render();
        let row = reps.lines().nth(1).expect("a replica row");
        assert!(row.starts_with("app.db    s3       s3    -  "), "{reps}");
        assert!(row.contains("  12s  "), "{reps}");
        assert!(row.contains("2026-11-22T04:00:00Z"), "{reps}");
        assert!(row.ends_with("PUT x: refused"), "{reps}");
    }
}
