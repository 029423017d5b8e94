//! `walstream snapshots [-config P] [-no-expand-env] [-replica NAME] [-json]
//! DB_PATH|REPLICA_URL`: every snapshot of every generation, per replica, sorted by
//! (generation, index) (spec §6.1); with `-json` (walstream) an array of
//! `{replica, generation, index, size, created}`.
//!
//! What must stay true: `size` is the stored (compressed) size; if listing any generation of a
//! replica fails, nothing of that replica is printed and `cannot determine snapshots` is logged
//! (Litestream discards the partial list); the command still exits 0.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::flags::FlagSet;
use super::list::{self, ListingRow};
use super::parse_flags;
use super::source::{self, SourceReplica};
use crate::storage::SnapshotInfo;

/// One snapshot of one replica.
#[derive(Debug, Serialize)]
struct SnapshotRow {
    replica: String,
    generation: String,
    index: u32,
    size: u64,
    #[serde(serialize_with = "list::json_time")]
    created: DateTime<Utc>,
}

impl SnapshotRow {
    fn new(replica: &str, s: SnapshotInfo) -> Self {
        SnapshotRow {
            replica: replica.to_string(),
            generation: s.generation,
            index: s.index,
            size: s.size,
            created: s.created_at,
        }
    }
}

impl ListingRow for SnapshotRow {
    const HEADER: &'static [&'static str] = &["replica", "generation", "index", "size", "created"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.replica.clone(),
            self.generation.clone(),
            self.index.to_string(),
            self.size.to_string(),
            crate::gofmt::rfc3339_seconds(self.created),
        ]
    }
}

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs)
        .string("replica", "")
        .bool("json", false);
    let p = parse_flags(&fs, args, "snapshots")?;
    let json = list::json_output(&p);
    let src = list::resolve_source(&p, "database path required")?;
    list::print_replica_rows(
        &src,
        "snapshots",
        json,
        async |rows, r| match replica_rows(r).await {
            Ok(found) => rows.extend(found),
            Err(e) => list::log_error("cannot determine snapshots", &e),
        },
    )
}

/// All rows of one replica, or the first listing error.
async fn replica_rows(r: &SourceReplica) -> anyhow::Result<Vec<SnapshotRow>> {
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
        .map(|s| SnapshotRow::new(&r.name, s))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn table_and_json_from_the_same_rows() {
        let created = Utc.with_ymd_and_hms(2026, 11, 22, 2, 48, 45).unwrap()
            + TimeDelta::nanoseconds(999_999_999);
        let info = SnapshotInfo {
            generation: "041e29e3fd6ffa54".into(),
            index: 12,
            size: 4183,
            created_at: created,
        };
        let rows = vec![SnapshotRow::new("file", info)];
        assert_eq!(
            list::table_of(&rows).render(),
            "replica  generation        index  size  created\n\
             file     041e29e3fd6ffa54  12     4183  2026-11-22T02:48:45Z\n"
        );
        assert_eq!(
            serde_json::to_value(&rows).unwrap(),
            serde_json::json!([{
                "replica": "file", "generation": "041e29e3fd6ffa54", "index": 12,
                "size": 4183, "created": "2026-11-22T02:48:45.999999999Z"
            }])
        );
        let none: Vec<SnapshotRow> = Vec::new();
        assert_eq!(serde_json::to_string_pretty(&none).unwrap(), "[]");
    }
}
