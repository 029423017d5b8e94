//! `walstream generations [-config P] [-no-expand-env] [-replica NAME] DB_PATH|REPLICA_URL`:
//! one row per replica and generation with its lag and time bounds (spec §6.1).
//!
//! What must stay true: bounds are the min/max `CreatedAt` over the generation's snapshots *and*
//! WAL segments; lag = (DB or WAL mtime, whichever is later — or *now* for a URL) − end, rounded
//! like Litestream's `truncateDuration`; a generation with no files prints Go's zero time; a
//! listing error is logged for that replica and skipped (exit stays 0).

use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::flags::FlagSet;
use super::source::{self, SourceReplica};
use super::table::Table;
use super::{list, parse_flags};
use crate::gofmt;

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs).string("replica", "");
    let p = parse_flags(&fs, args, "generations")?;
    let src = list::resolve_source(&p, "database path or replica URL required")?;
    let reference = match &src.db {
        Some(db) => source::db_updated_at(&db.path)?,
        None => SystemTime::now(),
    };
    let reference: DateTime<Utc> = reference.into();
    let db_path = src.db.as_ref().map(|d| d.path.clone());
    let header = ["name", "generation", "lag", "start", "end"];
    list::print_replica_table(&src, "generations", header, async |table, r| {
        add_replica_rows(table, r, db_path.as_deref(), reference).await;
    })
}

async fn add_replica_rows(
    table: &mut Table,
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
            Ok(bounds) => {
                let (start, end) = match bounds {
                    Some((s, e)) => (gofmt::rfc3339_seconds(s), gofmt::rfc3339_seconds(e)),
                    None => (
                        list::GO_ZERO_TIME.to_string(),
                        list::GO_ZERO_TIME.to_string(),
                    ),
                };
                let lag = lag_text(reference, bounds.map(|b| b.1));
                table.row([r.name.clone(), generation, lag, start, end]);
            }
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

/// Litestream's lag column; Go saturates the subtraction (zero `end` → the maximum duration).
fn lag_text(reference: DateTime<Utc>, end: Option<DateTime<Utc>>) -> String {
    let nanos: i128 = match end {
        Some(end) => {
            let d = reference.signed_duration_since(end);
            d.num_nanoseconds()
                .map(i128::from)
                .unwrap_or(if d > chrono::TimeDelta::zero() {
                    i64::MAX.into()
                } else {
                    i64::MIN.into()
                })
        }
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
        let end = Utc.with_ymd_and_hms(2026, 11, 22, 2, 50, 5).unwrap();
        let reference = end + chrono::TimeDelta::milliseconds(553_450);
        assert_eq!(lag_text(reference, Some(end)), "9m13s");
        let reference = end - chrono::TimeDelta::microseconds(168_250);
        assert_eq!(lag_text(reference, Some(end)), "-168ms");
        assert_eq!(lag_text(reference, None), "2562047h47m16s");
    }
}
