//! `walstream restore [flags] DIR` where DIR is the `dir` of a directory entry of the config:
//! restores every database that exists in the entry's replicas (a new pod's init container has
//! the replicas, not the files).
//!
//! What must stay true:
//! - the databases are found by listing the replicas ([`ReplicaClient::database_roots`] on each
//!   selected replica's base location), never by looking at DIR; only relative paths matching
//!   the entry's pattern and depth ([`DirConfig::matches_relative`]) are restored;
//! - each database is restored by the single-database [`restore::restore`] with the replicas
//!   [`DirConfig::db_config`] derives for it, so each keeps the atomic temp-file + rename and
//!   the configured integrity check; output is `-o OUTDIR/<rel>`, else `DIR/<rel>`;
//! - `-parallelism N` bounds the databases restoring at once; each of them downloads one WAL
//!   file at a time, so at most N downloads are in flight, as for a single database;
//! - every database prints exactly one line on stdout (`restored`, `skipped (why)`,
//!   `failed: error`); the command fails when any database failed (after all were tried) or a
//!   replica could not be listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use futures::{StreamExt, stream};
use tracing::Instrument;

use super::flags::Parsed;
use super::source;
use crate::config::{DirConfig, ReplicaConfig};
use crate::gofmt::go_quote;
use crate::restore::{self, Outcome, ReplicaRef, RestoreRequest};
use crate::storage::ReplicaClient;

/// How one database of the directory ended.
enum DbOutcome {
    Restored(String),
    Skipped(&'static str),
    Failed(String),
}

/// Restores the databases of `entry`; `req` carries the selection and check flags (its `output`
/// is `-o` as given, empty when absent).
pub(super) async fn run(p: &Parsed, entry: &DirConfig, req: RestoreRequest) -> anyhow::Result<()> {
    let replicas = selected_replicas(entry, p.str("replica"))?;
    let rels = list_databases(entry, &replicas).await?;
    if rels.is_empty() {
        if req.if_replica_exists {
            println!(
                "no databases found in the replicas of {}",
                entry.dir.display()
            );
            return Ok(());
        }
        bail!(
            "no databases found in the replicas of {}",
            entry.dir.display()
        );
    }
    let out_dir = match req.output.as_os_str().is_empty() {
        true => entry.dir.clone(),
        false => req.output.clone(),
    };
    let at_once = req.exec.parallelism.max(1);
    let total = rels.len();
    let ctx = Ctx {
        entry,
        wanted: p.str("replica"),
        if_db_not_exists: p.bool("if-db-not-exists"),
        req: &req,
        out_dir: &out_dir,
    };
    let failed = stream::iter(rels)
        .map(|rel| ctx.restore_one(rel))
        .buffer_unordered(at_once)
        .fold(0usize, |failed, (output, result)| async move {
            println!("{}", line(&output, &result));
            failed + usize::from(matches!(result, DbOutcome::Failed(_)))
        })
        .await;
    if failed > 0 {
        bail!("{failed} of {total} databases failed to restore");
    }
    Ok(())
}

/// The entry's replicas kept by `-replica NAME` (all when empty).
fn selected_replicas(entry: &DirConfig, wanted: &str) -> anyhow::Result<Vec<ReplicaConfig>> {
    let kept: Vec<ReplicaConfig> = entry
        .template
        .replicas
        .iter()
        .filter(|r| wanted.is_empty() || r.name == wanted)
        .cloned()
        .collect();
    if kept.is_empty() && !wanted.is_empty() {
        bail!(
            "replica {} not found for directory {}",
            go_quote(wanted),
            go_quote(&entry.dir.display().to_string())
        );
    }
    Ok(kept)
}

/// Union over `replicas` of the relative paths holding a replica and matching the entry.
async fn list_databases(
    entry: &DirConfig,
    replicas: &[ReplicaConfig],
) -> anyhow::Result<BTreeSet<String>> {
    let max_depth = (!entry.recursive).then_some(1);
    let mut rels = BTreeSet::new();
    for rc in replicas {
        let client = ReplicaClient::for_replica(rc)?;
        let found = client
            .database_roots(max_depth)
            .await
            .with_context(|| format!("list databases in replica {}", go_quote(&rc.name)))?;
        rels.extend(found.into_iter().filter(|r| entry.matches_relative(r)));
    }
    Ok(rels)
}

/// What every per-database restore shares.
struct Ctx<'a> {
    entry: &'a DirConfig,
    wanted: &'a str,
    if_db_not_exists: bool,
    req: &'a RestoreRequest,
    out_dir: &'a Path,
}

impl Ctx<'_> {
    async fn restore_one(&self, rel: String) -> (PathBuf, DbOutcome) {
        let output = self.out_dir.join(&rel);
        let result = self.try_restore(&rel, &output).await;
        (output, result)
    }

    async fn try_restore(&self, rel: &str, output: &Path) -> DbOutcome {
        if self.if_db_not_exists && output.symlink_metadata().is_ok() {
            return DbOutcome::Skipped("database already exists");
        }
        let Some(db) = self.entry.db_config(&self.entry.dir.join(rel)) else {
            return DbOutcome::Failed(format!("{rel} does not match the directory entry"));
        };
        let opened: anyhow::Result<Vec<source::SourceReplica>> = db
            .replicas
            .into_iter()
            .filter(|r| self.wanted.is_empty() || r.name == self.wanted)
            .map(source::open_replica)
            .collect();
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => return DbOutcome::Failed(format!("{e:#}")),
        };
        let refs: Vec<ReplicaRef<'_>> = opened
            .iter()
            .map(|r| ReplicaRef {
                name: &r.name,
                client: &r.client,
            })
            .collect();
        let mut req = self.req.clone();
        req.output = output.to_path_buf();
        req.exec.parallelism = 1;
        req.exec.progress = false;
        let span = tracing::info_span!("database", db = %output.display());
        match restore::restore(&refs, &req).instrument(span).await {
            Ok(Outcome::Restored(s)) => DbOutcome::Restored(s.generation),
            Ok(Outcome::NoBackups) => DbOutcome::Skipped("no matching backups found"),
            Err(e) => DbOutcome::Failed(e.to_string()),
        }
    }
}

/// The one line printed for a database.
fn line(output: &Path, result: &DbOutcome) -> String {
    let text = match result {
        DbOutcome::Restored(generation) => {
            format!("restored {} (generation {generation})", output.display())
        }
        DbOutcome::Skipped(why) => format!("skipped {} ({why})", output.display()),
        DbOutcome::Failed(e) => format!("failed {}: {e}", output.display()),
    };
    text.replace('\n', " ")
}
