//! What `walstream restore` prints for a Litestream v0.5 (LTX) replica: v0.5.17's `-dry-run`
//! plan (text or `-json`) and its `-json` summary of a finished restore.
//!
//! What must stay true: the dry-run text and JSON have v0.5.17's lines, columns (Go tabwriter)
//! and field names (`RestorePlan`/`RestorePlanFile`/`RestoreResult` of `cmd/litestream/restore.go`);
//! timestamps are RFC 3339 in UTC with whole seconds, as Go's `time.RFC3339` prints them.

use std::path::Path;

use serde::Serialize;

use super::stdout::{print_json, write_stdout};
use super::table::Table;
use crate::ltx::format_txid;
use crate::restore::Outcome;
use crate::restore::ltx_select::AutoOutcome;
use crate::storage::LtxFileInfo;

#[derive(Serialize)]
struct PlanJson<'a> {
    source: &'a str,
    target_path: String,
    replica: &'a str,
    min_txid: String,
    max_txid: String,
    files: Vec<PlanFileJson>,
}

#[derive(Serialize)]
struct PlanFileJson {
    level: u8,
    name: String,
    min_txid: String,
    max_txid: String,
    size: u64,
    timestamp: String,
}

#[derive(Serialize)]
struct ResultJson<'a> {
    db_path: String,
    replica: &'a str,
    txid: String,
    duration_ms: u128,
    integrity_check: &'a str,
}

/// How the command was asked to report.
pub(super) struct ReportArgs<'a> {
    /// The DB path or replica URL argument.
    pub source: &'a str,
    pub output: &'a Path,
    pub json: bool,
    pub integrity_check: &'a str,
    pub elapsed: std::time::Duration,
}

/// v0.5.17's name of a replica type (`Client.Type()`): Google Cloud Storage is `gs` there.
fn v5_type_name(replica_type: &str) -> &str {
    match replica_type {
        "gcs" => "gs",
        other => other,
    }
}

fn file_json(f: &LtxFileInfo) -> PlanFileJson {
    PlanFileJson {
        level: f.level,
        name: f.file_name(),
        min_txid: format_txid(f.min_txid),
        max_txid: format_txid(f.max_txid),
        size: f.size,
        timestamp: crate::gofmt::rfc3339_seconds(f.created_at),
    }
}

/// Prints what the outcome calls for.
pub(super) fn report(outcome: &AutoOutcome, a: &ReportArgs<'_>) -> anyhow::Result<()> {
    match outcome {
        AutoOutcome::Plan {
            replica_type,
            files,
        } => print_plan(
            a.source,
            a.output,
            v5_type_name(replica_type),
            files,
            a.json,
        ),
        AutoOutcome::Ltx {
            replica_type,
            summary,
        } if a.json => print_json(&ResultJson {
            db_path: a.output.display().to_string(),
            replica: v5_type_name(replica_type),
            txid: format_txid(summary.max_txid),
            duration_ms: a.elapsed.as_millis(),
            integrity_check: a.integrity_check,
        }),
        AutoOutcome::PlanV3 { replica, plan } => {
            super::restore_plan_v3::print_plan_v3(a.source, a.output, replica, plan, a.json)
        }
        AutoOutcome::Ltx { .. } | AutoOutcome::NoBackups => Ok(()),
        AutoOutcome::V3(Outcome::Restored(_) | Outcome::NoBackups) => Ok(()),
    }
}

fn print_plan(
    source: &str,
    output: &Path,
    replica: &str,
    files: &[LtxFileInfo],
    json: bool,
) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (files.first(), files.last()) else {
        anyhow::bail!("no matching backup files available");
    };
    let plan = PlanJson {
        source,
        target_path: output.display().to_string(),
        replica,
        min_txid: format_txid(first.min_txid),
        max_txid: format_txid(last.max_txid),
        files: files.iter().map(file_json).collect(),
    };
    if json {
        return print_json(&plan);
    }
    let mut text = format!(
        "Restore plan:\n  source: {}\n  target: {}\n  replica: {}\n  txid range: {} - {}\n\nFiles to fetch:\n",
        plan.source, plan.target_path, plan.replica, plan.min_txid, plan.max_txid
    );
    let mut t = Table::new();
    t.row(["level", "file", "min_txid", "max_txid", "size", "timestamp"]);
    for f in &plan.files {
        t.row([
            f.level.to_string(),
            f.name.clone(),
            f.min_txid.clone(),
            f.max_txid.clone(),
            f.size.to_string(),
            f.timestamp.clone(),
        ]);
    }
    text.push_str(&t.render());
    write_stdout(&text)
}
