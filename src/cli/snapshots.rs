//! `walstream snapshots [-config P] [-no-expand-env] [-replica NAME] DB_PATH|REPLICA_URL`:
//! every snapshot of every generation, per replica, sorted by (generation, index) (spec §6.1).
//!
//! What must stay true: `size` is the stored (compressed) size; if listing any generation of a
//! replica fails, nothing of that replica is printed and `cannot determine snapshots` is logged
//! (Litestream discards the partial list); the command still exits 0.

use super::flags::FlagSet;
use super::source::{self, SourceReplica};
use super::{list, parse_flags};

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs).string("replica", "");
    let p = parse_flags(&fs, args, "snapshots")?;
    let src = list::resolve_source(&p, "database path required")?;
    let header = ["replica", "generation", "index", "size", "created"];
    list::print_replica_table(
        &src,
        "snapshots",
        header,
        async |table, r| match replica_rows(r).await {
            Ok(rows) => rows.into_iter().for_each(|row| {
                table.row(row);
            }),
            Err(e) => list::log_error("cannot determine snapshots", &e),
        },
    )
}

/// All rows of one replica, or the first listing error.
async fn replica_rows(r: &SourceReplica) -> anyhow::Result<Vec<[String; 5]>> {
    let generations = r
        .client
        .generations()
        .await
        .map_err(|e| anyhow::Error::from(e).context("cannot fetch generations"))?;
    let mut infos = Vec::new();
    for generation in list::sorted(generations) {
        infos.extend(r.client.snapshots(&generation).await?);
    }
    infos.sort_by(|a, b| (&a.generation, a.index).cmp(&(&b.generation, b.index)));
    Ok(infos
        .into_iter()
        .map(|s| {
            [
                r.name.clone(),
                s.generation.clone(),
                s.index.to_string(),
                s.size.to_string(),
                crate::gofmt::rfc3339_seconds(list::created(&s.created_at)),
            ]
        })
        .collect())
}
