//! Helpers shared by the listing commands (`databases`, `generations`, `snapshots`, `wal`):
//! argument checks, time formatting, per-replica error logging (all as Litestream v0.3.13 does
//! them) and walstream's `-json` output of the same rows.
//!
//! What must stay true: times print as RFC 3339 UTC with whole seconds (truncated, like Go's
//! `Format(time.RFC3339)`) in tables, and with every fraction digit (as `/api/v1` prints them)
//! in JSON; a command's table and its `-json` array come from the same [`ListingRow`] values, one
//! object per table row with one field per column (`[]` when there is no row), and with `-json`
//! every log line goes to stderr; listing errors are logged (with `db=` and `replica=` when
//! Litestream has them) and never fail the command.

use std::path::Path;

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::flags::Parsed;
use super::log::{self, LogValue};
use super::source::{self, Source, SourceArgs, SourceReplica};
use super::stdout::print_json;
use super::table::Table;
use super::{block_on, print_table};
use crate::config::LogLevel;

/// How Go prints a zero `time.Time` in RFC 3339.
pub(super) const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One row of a listing command. Its table cells and its `-json` object (the `Serialize`
/// output, one field per column) are both derived from the one value, so they cannot drift.
pub(super) trait ListingRow: Serialize {
    /// Litestream's column names, in its order.
    const HEADER: &'static [&'static str];
    /// The table cells, in `HEADER` order, formatted as Litestream prints them.
    fn cells(&self) -> Vec<String>;
}

/// The `-json` flag of a listing command. When set, log lines (listing errors, `failed to run`)
/// go to stderr whatever the config says, so stdout holds nothing but the JSON document.
pub(super) fn json_output(p: &Parsed) -> bool {
    let json = p.bool("json");
    if json {
        log::force_stderr();
    }
    json
}

/// The table of `rows` under their header, laid out like Litestream's.
pub(super) fn table_of<R: ListingRow>(rows: &[R]) -> Table {
    let mut table = Table::new();
    table.row(R::HEADER.iter().copied());
    for r in rows {
        table.row(r.cells());
    }
    table
}

/// Prints `rows` as Litestream's table, or with `json` as a pretty JSON array.
pub(super) fn print_rows<R: ListingRow>(rows: &[R], json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&rows)
    } else {
        print_table(&table_of(rows))
    }
}

/// A time in a listing's JSON: RFC 3339 UTC with the needed fraction digits, as `/api/v1`.
pub(super) fn json_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::server::api::rfc3339((*t).into()))
}

/// [`json_time`], `null` when unknown.
pub(super) fn json_opt_time<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => json_time(t, s),
        None => s.serialize_none(),
    }
}

/// Resolves a listing command's one `DB_PATH|REPLICA_URL` argument through the common flags
/// (`-config`, `-no-expand-env`, `-replica`), shared by `generations`, `snapshots` and `wal`.
pub(super) fn resolve_source(p: &Parsed, missing: &str) -> anyhow::Result<Source> {
    let target = single_target(&p.args, missing)?;
    source::resolve(SourceArgs {
        config: p.str("config"),
        no_expand_env: p.bool("no-expand-env"),
        replica: p.str("replica"),
        target,
    })
}

/// The single positional argument; `missing` is the command's message when there is none.
pub(super) fn single_target<'a>(args: &'a [String], missing: &str) -> anyhow::Result<&'a str> {
    match args {
        [] => bail!("{missing}"),
        [first, ..] if first.is_empty() => bail!("{missing}"),
        [one] => Ok(one),
        _ => bail!("too many arguments"),
    }
}

/// Generations in listing order (lexicographic, like the storage listings Litestream reads).
pub(super) fn sorted(mut generations: Vec<String>) -> Vec<String> {
    generations.sort();
    generations.dedup();
    generations
}

/// A storage timestamp as UTC.
pub(super) fn created<T: Copy + Into<DateTime<Utc>>>(t: &T) -> DateTime<Utc> {
    (*t).into()
}

/// Logs a replica-scoped listing error the way Litestream's `r.Logger().Error(...)` does.
pub(super) fn log_replica_error(db: Option<&Path>, replica: &str, msg: &str, err: &anyhow::Error) {
    let mut attrs = Vec::new();
    if let Some(db) = db {
        attrs.push(("db", LogValue::Str(db.display().to_string())));
    }
    attrs.push(("replica", LogValue::Str(replica.to_string())));
    attrs.push(("error", LogValue::Str(log::error_text(err))));
    log::emit(LogLevel::Error, msg, &attrs);
}

/// Logs an error with no replica context (Litestream's global `slog.Error`).
pub(super) fn log_error(msg: &str, err: &anyhow::Error) {
    log::emit(
        LogLevel::Error,
        msg,
        &[("error", LogValue::Str(log::error_text(err)))],
    );
}

/// What every replica listing command prints: the rows `add` puts in for each replica of `src`,
/// in order, after refusing a source that only holds Litestream v0.5 files — as a table, or with
/// `json` as a JSON array.
pub(super) fn print_replica_rows<R: ListingRow>(
    src: &Source,
    command: &str,
    json: bool,
    mut add: impl AsyncFnMut(&mut Vec<R>, &SourceReplica),
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    block_on(refuse_ltx_only(src, command))??;
    block_on(async {
        for r in &src.replicas {
            add(&mut rows, r).await;
        }
    })?;
    print_rows(&rows, json)
}

/// `generations`, `snapshots` and `wal` read the v0.3 layout only (Litestream v0.5.17 has no
/// such commands). On a replica that holds LTX files and no v0.3 generation they would print an
/// empty table; fail with one line pointing at `walstream ltx` instead.
pub(super) async fn refuse_ltx_only(src: &Source, command: &str) -> anyhow::Result<()> {
    for r in &src.replicas {
        let v3_empty = matches!(r.client.generations().await, Ok(g) if g.is_empty());
        if v3_empty && r.client.has_ltx_files().await.unwrap_or(false) {
            bail!(
                "replica {} holds Litestream v0.5 (LTX) files and no v0.3 generations: \
                 `walstream {command}` lists v0.3 generations only; use `walstream ltx -level all`",
                r.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn target_checks_use_litestream_messages() {
        let missing = "database path required";
        assert_eq!(
            single_target(&s(&[]), missing).unwrap_err().to_string(),
            missing
        );
        assert_eq!(
            single_target(&s(&[""]), missing).unwrap_err().to_string(),
            missing
        );
        assert_eq!(
            single_target(&s(&["a", "b"]), missing)
                .unwrap_err()
                .to_string(),
            "too many arguments"
        );
        assert_eq!(single_target(&s(&["a"]), missing).unwrap(), "a");
    }

    #[test]
    fn created_is_the_same_instant_in_utc() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 2, 48, 45).unwrap()
            + chrono::TimeDelta::milliseconds(999);
        let sys: std::time::SystemTime = t.into();
        assert_eq!(created(&sys), t);
    }
}
