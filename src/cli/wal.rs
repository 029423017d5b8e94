//! `walstream wal [-config P] [-no-expand-env] [-replica NAME] [-generation G]
//! DB_PATH|REPLICA_URL`: every WAL segment per replica → generation → (index, offset) (spec §6.1).
//!
//! What must stay true: `-generation` restricts the listing to that generation without checking
//! that it exists (an unknown one prints the header only; a name that is not a valid generation
//! id is never used to build a storage key); listing errors are logged per replica/generation and
//! skipped; the command exits 0 once the source is resolved.

use super::flags::FlagSet;
use super::source::{self, SourceReplica};
use super::table::Table;
use super::{list, parse_flags};
use crate::storage::layout::is_valid_generation;

/// The columns of `walstream wal` (Litestream v0.3.13's, in its order).
pub(super) const WAL_HEADER: [&str; 6] = [
    "replica",
    "generation",
    "index",
    "offset",
    "size",
    "created",
];

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs)
        .string("replica", "")
        .string("generation", "");
    let p = parse_flags(&fs, args, "wal")?;
    let src = list::resolve_source(&p, "database path required")?;
    let db_path = src.db.as_ref().map(|d| d.path.clone());
    let filter = p.str("generation");
    let header = WAL_HEADER;
    list::print_replica_table(&src, "wal", header, async |table, r| {
        add_replica_rows(table, r, db_path.as_deref(), filter).await;
    })
}

async fn add_replica_rows(
    table: &mut Table,
    r: &SourceReplica,
    db: Option<&std::path::Path>,
    filter: &str,
) {
    let generations = if !filter.is_empty() {
        // Litestream would read whatever the name points at; we only list real generation ids.
        if is_valid_generation(filter) {
            vec![filter.to_string()]
        } else {
            Vec::new()
        }
    } else {
        match r.client.generations().await {
            Ok(g) => list::sorted(g),
            Err(e) => {
                let err = anyhow::Error::from(e);
                return list::log_replica_error(db, &r.name, "cannot determine generations", &err);
            }
        }
    };
    for generation in generations {
        match r.client.wal_segments(&generation).await {
            Ok(mut segments) => {
                segments.sort_by_key(|s| (s.index, s.offset));
                for s in segments {
                    table.row([
                        r.name.clone(),
                        s.generation.clone(),
                        s.index.to_string(),
                        s.offset.to_string(),
                        s.size.to_string(),
                        crate::gofmt::rfc3339_seconds(list::created(&s.created_at)),
                    ]);
                }
            }
            Err(e) => {
                let err = anyhow::Error::from(e);
                list::log_replica_error(db, &r.name, "cannot fetch wal segments", &err);
            }
        }
    }
}
