//! What `walstream restore -dry-run` prints for the v0.3 layout (walstream's own: Litestream has
//! no dry run for v0.3 replicas): the replica, generation, snapshot and WAL segments the restore
//! would download, as a table or `-json`, with the same head lines as the v0.5 plan.
//!
//! What must stay true: the plan printed is the one `restore` would execute (same choice rules,
//! same `plan::plan`); nothing is downloaded or written.

use serde::Serialize;

use super::stdout::{print_json, write_stdout};
use super::table::Table;
use crate::restore::RestorePlan;

#[derive(Serialize)]
struct PlanJson<'a> {
    source: &'a str,
    target_path: String,
    layout: &'static str,
    replica: &'a str,
    generation: &'a str,
    /// Stored (compressed) bytes the restore downloads.
    download_size: u64,
    snapshot: FileJson,
    wal: Vec<FileJson>,
}

#[derive(Serialize)]
struct FileJson {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    size: u64,
    created: String,
}

/// Prints `plan` for `source` → `output` from `replica`.
pub(super) fn print_plan_v3(
    source: &str,
    output: &std::path::Path,
    replica: &str,
    plan: &RestorePlan,
    json: bool,
) -> anyhow::Result<()> {
    let doc = PlanJson {
        source,
        target_path: output.display().to_string(),
        layout: "v0.3",
        replica,
        generation: &plan.generation,
        download_size: plan.download_size(),
        snapshot: FileJson {
            index: plan.snapshot.index,
            offset: None,
            size: plan.snapshot.size,
            created: crate::gofmt::rfc3339_seconds(plan.snapshot.created_at),
        },
        wal: plan
            .wal
            .iter()
            .flat_map(|p| &p.segments)
            .map(|s| FileJson {
                index: s.index,
                offset: Some(s.offset),
                size: s.size,
                created: crate::gofmt::rfc3339_seconds(s.created_at),
            })
            .collect(),
    };
    if json {
        return print_json(&doc);
    }
    let mut text = format!(
        "Restore plan:\n  source: {}\n  target: {}\n  replica: {}\n  generation: {} (v0.3 layout)\n  download: {} bytes\n\nFiles to fetch:\n",
        doc.source, doc.target_path, doc.replica, doc.generation, doc.download_size
    );
    let mut t = Table::new();
    t.row(["file", "index", "offset", "size", "created"]);
    let snap = &doc.snapshot;
    t.row([
        "snapshot".to_string(),
        format!("{:08x}", snap.index),
        "-".to_string(),
        snap.size.to_string(),
        snap.created.clone(),
    ]);
    for w in &doc.wal {
        t.row([
            "wal".to_string(),
            format!("{:08x}", w.index),
            w.offset.unwrap_or(0).to_string(),
            w.size.to_string(),
            w.created.clone(),
        ]);
    }
    text.push_str(&t.render());
    write_stdout(&text)
}
