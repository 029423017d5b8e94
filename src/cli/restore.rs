//! `walstream restore [flags] DB_PATH|REPLICA_URL` (spec §5.4): Litestream v0.3.13's flags and
//! outcomes, plus `-integrity-check full|quick|none`, and for Litestream v0.5 (LTX) replicas
//! v0.5.17's `-txid`, `-dry-run` and `-json` (layout detection: `restore::ltx_select`; output:
//! `restore_ltx.rs`).
//!
//! What must stay true: checks happen in Litestream's order, so the same message wins —
//! flags, positional args, `-timestamp` format, then (URL) `-config` conflict, `output path
//! required`, `-if-db-not-exists`, replica construction, or (DB path) config load, DB lookup,
//! replica construction, `-o` default, `-if-db-not-exists`; then the target choice (`no
//! matching backups found` / `-if-replica-exists`), `-index` + `-timestamp`, output exists.
//! `-replica NAME` that matches nothing is `no matching backups found`, as in Litestream.
//! SIGINT/SIGTERM stop the restore, remove its temporary files and fail the command.
//! A `DB_PATH` equal to the `dir` of a directory entry restores that directory's databases
//! (`restore_dir.rs`). `-if-db-damaged` (walstream) keeps an existing database only if it
//! passes `quick_check`, else replaces it and keeps the damaged file aside
//! (`restore_damaged.rs`).

use std::future::Future;
use std::path::PathBuf;

use anyhow::bail;
use chrono::{DateTime, Utc};
use tracing::info;

use super::flags::{FlagSet, Parsed};
use super::source::{self, SourceArgs};
use super::{block_on, list, parse_flags, restore_damaged, restore_dir};
use crate::config;
use crate::gofmt::{self, parse_go_hex_i32};
use crate::restore::ltx_select::{self, LtxRequest};
use crate::restore::{
    DEFAULT_PARALLELISM, ExecOptions, IntegrityCheck, ReplicaRef, RestoreRequest,
};

/// Litestream's message; the space before "format" is a U+00A0 in the v0.3.13 binary.
const BAD_TIMESTAMP: &str =
    "invalid -timestamp, must specify in ISO 8601\u{a0}format (e.g. 2000-01-01T00:00:00Z)";

/// Runs the command with the arguments after the word `restore`.
pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&flag_set(), args, "restore")?;
    let target = list::single_target(&p.args, "database path or replica URL required")?;
    let timestamp = parse_timestamp(p.str("timestamp"))?;
    let integrity_check: IntegrityCheck = p
        .str("integrity-check")
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let mut req = RestoreRequest {
        output: PathBuf::from(p.str("o")),
        generation: Some(p.str("generation").to_string()).filter(|g| !g.is_empty()),
        index: parse_go_hex_i32(p.str("index")),
        timestamp,
        exec: ExecOptions {
            parallelism: usize::try_from(p.int("parallelism")).unwrap_or(1).max(1),
            integrity_check,
            progress: true,
        },
        if_replica_exists: p.bool("if-replica-exists"),
    };
    let is_url = config::is_url(target);
    if is_url {
        if !p.str("config").is_empty() {
            bail!("cannot specify a replica URL and the -config flag");
        }
        if req.output.as_os_str().is_empty() {
            bail!("output path required");
        }
    }
    let mut replace = None;
    if is_url {
        match existing(&p, &mut req.output) {
            Existing::Skip => return Ok(()),
            Existing::Restore => {}
            Existing::Replace(r) => replace = Some(r),
        }
    }
    let args = SourceArgs {
        config: p.str("config"),
        no_expand_env: p.bool("no-expand-env"),
        replica: "",
        target,
    };
    let src = if is_url {
        source::resolve(args)?
    } else {
        let cfg = source::load_config(args.config, args.no_expand_env)?;
        if let Some(entry) = config::normalize_db_path(target)
            .ok()
            .and_then(|dir| cfg.dir_by_path(&dir))
        {
            return interruptible(restore_dir::run(&p, entry, req));
        }
        source::resolve_in(&cfg, args)?
    };
    if let Some(db) = &src.db {
        if req.output.as_os_str().is_empty() {
            req.output = db.path.clone();
        }
        match existing(&p, &mut req.output) {
            Existing::Skip => return Ok(()),
            Existing::Restore => {}
            Existing::Replace(r) => replace = Some(r),
        }
    }
    if p.bool("json") {
        super::log::force_stderr();
    }
    let wanted = p.str("replica");
    let replicas: Vec<ReplicaRef<'_>> = src
        .replicas
        .iter()
        .filter(|r| is_url || wanted.is_empty() || r.name == wanted)
        .map(|r| ReplicaRef {
            name: &r.name,
            client: &r.client,
        })
        .collect();
    let ltx = LtxRequest {
        txid: parse_txid_flag(p.str("txid")),
        dry_run: p.bool("dry-run"),
    };
    let started = std::time::Instant::now();
    let outcome = interruptible(async {
        ltx_select::restore_auto(&replicas, &req, &ltx)
            .await
            .map_err(anyhow::Error::from)
    });
    if let Some(r) = &replace {
        match &outcome {
            Ok(_) if req.output.exists() => {
                restore_damaged::swap_in(&req.output, &r.output)?;
                req.output = r.output.clone();
            }
            _ if ltx.dry_run => req.output = r.output.clone(),
            _ => {
                restore_damaged::discard(&req.output);
                outcome?;
                bail!(
                    "database {} fails quick_check ({}) and no replica holds a backup to restore; it was left in place",
                    r.output.display(),
                    r.reason
                );
            }
        }
    }
    let outcome = outcome?;
    let report = super::restore_ltx::ReportArgs {
        source: target,
        output: &req.output,
        json: p.bool("json"),
        integrity_check: p.str("integrity-check"),
        elapsed: started.elapsed(),
    };
    super::restore_ltx::report(&outcome, &report)
}

/// Runs `work` until it ends or SIGINT/SIGTERM arrives. Dropping the restore(s) removes their
/// temporary files before the process exits.
fn interruptible<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    block_on(async {
        tokio::select! {
            done = work => done,
            signal = termination() => Err(anyhow::anyhow!("restore interrupted by {signal}")),
        }
    })?
}

/// Resolves on SIGINT or SIGTERM (e.g. an init container being stopped), naming the signal.
async fn termination() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        // Without handlers the default action (exit) applies; never resolve.
        _ => std::future::pending().await,
    }
}

fn flag_set() -> FlagSet {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs)
        .string("o", "")
        .string("replica", "")
        .string("generation", "")
        .custom("index", "", check_index)
        .int("parallelism", DEFAULT_PARALLELISM as i64)
        .bool("if-db-not-exists", false)
        .bool("if-db-damaged", false)
        .bool("if-replica-exists", false)
        .string("timestamp", "")
        .custom("txid", "", check_txid)
        .bool("dry-run", false)
        .bool("json", false)
        .custom("integrity-check", "full", check_integrity);
    fs
}

fn check_index(s: &str) -> Result<(), String> {
    match parse_go_hex_i32(s) {
        Some(_) => Ok(()),
        None => Err("invalid hexadecimal format".to_string()),
    }
}

fn check_txid(s: &str) -> Result<(), String> {
    let hex16 = s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if s.is_empty() || hex16 {
        Ok(())
    } else {
        Err("invalid txid format".to_string())
    }
}

/// `-txid`: 16 hex digits (either case, like ltx.ParseTXID); 0 means latest.
fn parse_txid_flag(s: &str) -> Option<u64> {
    if s.len() != 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok().filter(|&t| t != 0)
}

fn check_integrity(s: &str) -> Result<(), String> {
    s.parse::<IntegrityCheck>().map(|_| ())
}

/// What to do with an existing output.
enum Existing {
    /// `-if-db-not-exists` (or a healthy database with `-if-db-damaged`): log and stop.
    Skip,
    /// No output yet, or no flag asks to skip (the restore then refuses an existing output).
    Restore,
    /// `-if-db-damaged` and the database fails `quick_check`: restore beside it, then swap.
    Replace(Replacing),
}

/// A damaged database being replaced: its path and why.
struct Replacing {
    output: PathBuf,
    reason: String,
}

/// `-if-db-not-exists` with an existing output: log and stop (Go treats any stat result other
/// than "does not exist" as existing). With `-if-db-damaged` an existing database is checked
/// first; a damaged one is restored into a temporary `output` beside it.
fn existing(p: &Parsed, output: &mut PathBuf) -> Existing {
    let exists =
        !matches!(std::fs::metadata(&*output), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    if !exists {
        return Existing::Restore;
    }
    if p.bool("if-db-damaged") {
        return match restore_damaged::check(output) {
            restore_damaged::Existing::Keep => Existing::Skip,
            restore_damaged::Existing::Replace { temp, reason } => {
                let original = std::mem::replace(output, temp);
                Existing::Replace(Replacing {
                    output: original,
                    reason,
                })
            }
        };
    }
    if p.bool("if-db-not-exists") {
        info!("database already exists, skipping");
        return Existing::Skip;
    }
    Existing::Restore
}

/// `-timestamp`: empty for none, else Go's `time.Parse(time.RFC3339, s)`.
pub fn parse_timestamp(s: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    if s.is_empty() {
        return Ok(None);
    }
    match gofmt::parse_rfc3339(s) {
        Some(t) => Ok(Some(t)),
        None => bail!("{BAD_TIMESTAMP}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_go_rfc3339() {
        let t = parse_timestamp("2000-01-01T00:00:00Z")
            .expect("ok")
            .expect("some");
        assert_eq!(t.timestamp(), 946_684_800);
        let t = parse_timestamp("2000-01-01T01:00:00.5+01:00")
            .expect("ok")
            .expect("some");
        assert_eq!(t.timestamp_millis(), 946_684_800_500);
        assert_eq!(parse_timestamp("").expect("empty"), None);
        for bad in [
            "2000-01-01",
            "2000-01-01t00:00:00z",
            "2000-01-01 00:00:00Z",
            "yesterday",
        ] {
            let err = parse_timestamp(bad).expect_err(bad).to_string();
            assert_eq!(err, BAD_TIMESTAMP);
        }
        assert!(BAD_TIMESTAMP.contains("8601\u{a0}format"));
    }

    #[test]
    fn flags_parse_with_defaults() {
        let p = flag_set().parse(&["x.db".to_string()]).expect("parse");
        assert_eq!(p.int("parallelism"), 8);
        assert_eq!(p.str("integrity-check"), "full");
        let bad = flag_set().parse(&["-index".into(), "zz".into(), "x".into()]);
        assert_eq!(
            bad.expect_err("bad index").to_string(),
            "invalid value \"zz\" for flag -index: invalid hexadecimal format"
        );
    }
}
