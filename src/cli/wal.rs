//! `walstream wal [-config P] [-no-expand-env] [-replica NAME] [-generation G] [-json]
//! DB_PATH|REPLICA_URL`: every WAL segment per replica → generation → (index, offset) (spec §6.1);
//! with `-json` (walstream) an array of `{replica, generation, index, offset, size, created}`.
//!
//! What must stay true: `-generation` restricts the listing to that generation without checking
//! that it exists (an unknown one prints the header only; a name that is not a valid generation
//! id is never used to build a storage key); listing errors are logged per replica/generation and
//! skipped; the command exits 0 once the source is resolved.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::flags::FlagSet;
use super::list::{self, ListingRow};
use super::parse_flags;
use super::source::{self, SourceReplica};
use crate::storage::SegmentInfo;
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

/// One WAL segment of one replica.
#[derive(Debug, Serialize)]
struct WalRow {
    replica: String,
    generation: String,
    index: u32,
    offset: u64,
    size: u64,
    #[serde(serialize_with = "list::json_time")]
    created: DateTime<Utc>,
}

impl WalRow {
    fn new(replica: &str, s: SegmentInfo) -> Self {
        WalRow {
            replica: replica.to_string(),
            generation: s.generation,
            index: s.index,
            offset: s.offset,
            size: s.size,
            created: s.created_at,
        }
    }
}

impl ListingRow for WalRow {
    const HEADER: &'static [&'static str] = &WAL_HEADER;

    fn cells(&self) -> Vec<String> {
        vec![
            self.replica.clone(),
            self.generation.clone(),
            self.index.to_string(),
            self.offset.to_string(),
            self.size.to_string(),
            crate::gofmt::rfc3339_seconds(self.created),
        ]
    }
}

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs)
        .string("replica", "")
        .string("generation", "")
        .bool("json", false);
    let p = parse_flags(&fs, args, "wal")?;
    let json = list::json_output(&p);
    let src = list::resolve_source(&p, "database path required")?;
    let db_path = src.db.as_ref().map(|d| d.path.clone());
    let filter = p.str("generation");
    list::print_replica_rows(&src, "wal", json, async |rows, r| {
        add_replica_rows(rows, r, db_path.as_deref(), filter).await;
    })
}

async fn add_replica_rows(
    rows: &mut Vec<WalRow>,
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
                rows.extend(segments.into_iter().map(|s| WalRow::new(&r.name, s)));
            }
            Err(e) => {
                let err = anyhow::Error::from(e);
                list::log_replica_error(db, &r.name, "cannot fetch wal segments", &err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn table_and_json_from_the_same_rows() {
        let created =
            Utc.with_ymd_and_hms(2026, 11, 22, 2, 48, 45).unwrap() + TimeDelta::microseconds(250);
        let segment = |index, offset, size| SegmentInfo {
            generation: "041e29e3fd6ffa54".into(),
            index,
            offset,
            size,
            created_at: created,
        };
        let rows = vec![
            WalRow::new("file", segment(0, 0, 4152)),
            WalRow::new("file", segment(0, 4152, 197)),
        ];
        assert_eq!(
            list::table_of(&rows).render(),
            "replica  generation        index  offset  size  created\n\
             file     041e29e3fd6ffa54  0      0       4152  2026-11-22T02:48:45Z\n\
             file     041e29e3fd6ffa54  0      4152    197   2026-11-22T02:48:45Z\n"
        );
        let row = |offset, size| {
            serde_json::json!({
                "replica": "file", "generation": "041e29e3fd6ffa54", "index": 0,
                "offset": offset, "size": size, "created": "2026-11-22T02:48:45.000250Z"
            })
        };
        assert_eq!(
            serde_json::to_value(&rows).unwrap(),
            serde_json::json!([row(0, 4152), row(4152, 197)])
        );
    }
}
