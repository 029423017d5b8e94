//! `walstream generations [-config P] [-no-expand-env] [-replica NAME] [-json]
//! DB_PATH|REPLICA_URL`: one row per replica and generation with its lag and time bounds
//! (spec §6.1); with `-json` (walstream) an array of `{replica, generation, lag, start, end}`.
//!
//! What must stay true: bounds are the min/max `CreatedAt` over the generation's snapshots *and*
//! WAL segments; lag = (DB or WAL mtime, whichever is later — or *now* for a URL) − end, rounded
//! like Litestream's `truncateDuration` in the table and as exact seconds (a number) in JSON; a
//! generation with no files prints Go's zero time (and the maximum duration as lag) in the table
//! and `null` for `lag`, `start` and `end` in JSON; a listing error is logged for that replica
//! and skipped (exit stays 0).

use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Serialize, Serializer};

use super::flags::FlagSet;
use super::list::{self, ListingRow};
use super::parse_flags;
use super::source::{self, SourceReplica};
use crate::gofmt;

/// One generation of one replica. `replica` is Litestream's `name` column.
#[derive(Debug, Serialize)]
struct GenerationRow {
    replica: String,
    generation: String,
    /// Reference time − `end`; `None` when the generation has no files.
    #[serde(serialize_with = "lag_seconds")]
    lag: Option<TimeDelta>,
    #[serde(serialize_with = "list::json_opt_time")]
    start: Option<DateTime<Utc>>,
    #[serde(serialize_with = "list::json_opt_time")]
    end: Option<DateTime<Utc>>,
}

impl ListingRow for GenerationRow {
    const HEADER: &'static [&'static str] = &["name", "generation", "lag", "start", "end"];

    fn cells(&self) -> Vec<String> {
        let time = |t: Option<DateTime<Utc>>| match t {
            Some(t) => gofmt::rfc3339_seconds(t),
            None => list::GO_ZERO_TIME.to_string(),
        };
        vec![
            self.replica.clone(),
            self.generation.clone(),
            lag_text(self.lag),
            time(self.start),
            time(self.end),
        ]
    }
}

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs)
        .string("replica", "")
        .bool("json", false);
    let p = parse_flags(&fs, args, "generations")?;
    let json = list::json_output(&p);
    let src = list::resolve_source(&p, "database path or replica URL required")?;
    let reference = match &src.db {
        Some(db) => source::db_updated_at(&db.path)?,
        None => SystemTime::now(),
    };
    let reference: DateTime<Utc> = reference.into();
    let db_path = src.db.as_ref().map(|d| d.path.clone());
    list::print_replica_rows(&src, "generations", json, async |rows, r| {
        add_replica_rows(rows, r, db_path.as_deref(), reference).await;
    })
}

async fn add_replica_rows(
    rows: &mut Vec<GenerationRow>,
    r: &SourceReplica,
    db: Option<&std::path::Path>,
    reference: DateTime<Utc>,
) {
    let generations = match r.client.generations().await {
        Ok(g) => list::sorted(g),
        Err(e) => {
            return list::log_replica_error(db, &r.name, "cannot list generations", &e.into());
        }
    };
    for generation in generations {
        match time_bounds(r, &generation).await {
            Ok(bounds) => rows.push(GenerationRow {
                replica: r.name.clone(),
                generation,
                lag: bounds.map(|(_, end)| reference.signed_duration_since(end)),
                start: bounds.map(|b| b.0),
                end: bounds.map(|b| b.1),
            }),
            Err(e) => {
                let msg = "cannot determine generation time bounds";
                list::log_replica_error(db, &r.name, msg, &e);
            }
        }
    }
}

/// Earliest and latest `CreatedAt` over the generation's snapshots and segments.
async fn time_bounds(
    r: &SourceReplica,
    generation: &str,
) -> anyhow::Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    let snapshots = r.client.snapshots(generation).await?;
    let segments = r.client.wal_segments(generation).await?;
    let times = snapshots
        .iter()
        .map(|s| list::created(&s.created_at))
        .chain(segments.iter().map(|s| list::created(&s.created_at)));
    Ok(times.fold(None, |acc, t| match acc {
        None => Some((t, t)),
        Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
    }))
}

/// The JSON lag: seconds with nanosecond precision, `null` when unknown.
fn lag_seconds<S: Serializer>(lag: &Option<TimeDelta>, s: S) -> Result<S::Ok, S::Error> {
    match lag {
        Some(d) => s.serialize_f64(d.as_seconds_f64()),
        None => s.serialize_none(),
    }
}

/// Litestream's lag column; Go saturates the subtraction (zero `end` → the maximum duration).
fn lag_text(lag: Option<TimeDelta>) -> String {
    let nanos: i128 = match lag {
        Some(d) => d
            .num_nanoseconds()
            .map(i128::from)
            .unwrap_or(if d > TimeDelta::zero() {
                i64::MAX.into()
            } else {
                i64::MIN.into()
            }),
        None => i64::MAX.into(),
    };
    gofmt::format_go_duration(gofmt::round_lag(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn lag_is_rounded_go_duration() {
        assert_eq!(lag_text(Some(TimeDelta::milliseconds(553_450))), "9m13s");
        assert_eq!(lag_text(Some(TimeDelta::microseconds(-168_250))), "-168ms");
        assert_eq!(lag_text(None), "2562047h47m16s");
    }

    #[test]
    fn table_and_json_from_the_same_rows() {
        let start = Utc.with_ymd_and_hms(2026, 11, 22, 2, 48, 45).unwrap()
            + TimeDelta::nanoseconds(123_456_789);
        let end =
            Utc.with_ymd_and_hms(2026, 11, 22, 2, 50, 5).unwrap() + TimeDelta::milliseconds(500);
        let rows = vec![
            GenerationRow {
                replica: "file".into(),
                generation: "041e29e3fd6ffa54".into(),
                lag: Some(TimeDelta::milliseconds(553_450)),
                start: Some(start),
                end: Some(end),
            },
            GenerationRow {
                replica: "s3".into(),
                generation: "6e2ba44860bb8fbd".into(),
                lag: None,
                start: None,
                end: None,
            },
        ];
        assert_eq!(
            list::table_of(&rows).render(),
            "name  generation        lag             start                 end\n\
             file  041e29e3fd6ffa54  9m13s           2026-11-22T02:48:45Z  2026-11-22T02:50:05Z\n\
             s3    6e2ba44860bb8fbd  2562047h47m16s  0001-01-01T00:00:00Z  0001-01-01T00:00:00Z\n"
        );
        assert_eq!(
            serde_json::to_value(&rows).unwrap(),
            serde_json::json!([
                {
                    "replica": "file", "generation": "041e29e3fd6ffa54", "lag": 553.45,
                    "start": "2026-11-22T02:48:45.123456789Z", "end": "2026-11-22T02:50:05.500Z"
                },
                {
                    "replica": "s3", "generation": "6e2ba44860bb8fbd", "lag": null,
                    "start": null, "end": null
                }
            ])
        );
    }
}
