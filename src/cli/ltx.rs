//! `walstream ltx [-config P] [-no-expand-env] [-replica NAME] [-level N|all] [-json]
//! DB_PATH|REPLICA_URL`: the LTX files of a Litestream v0.5 replica, as `litestream ltx` v0.5.17
//! prints them.
//!
//! What must stay true:
//! - table columns `level min_txid max_txid size created` laid out by Go's tabwriter, JSON an
//!   indented array of `{level, min_txid, max_txid, size, timestamp}` (`[]` when empty), both
//!   line for line as v0.5.17 (compared with the real binary in tests);
//! - `-level` defaults to 0; `all` lists 0..=9 in that order; anything else is Go's
//!   `invalid level: must be 0-9 or "all"` / `level must be between 0 and 9`;
//! - times are each backend's listing time as v0.5.17 shows it (`storage::ltx_list`), RFC 3339
//!   with whole seconds;
//! - a config DB with several replicas lists the one named by `-replica`, else the first (v0.5
//!   has one replica per database); no replica is `database has no replica`.

use anyhow::Context;
use serde::Serialize;

use super::flags::FlagSet;
use super::source::{self, SourceArgs};
use super::stdout::print_json;
use super::table::Table;
use super::{block_on, list, parse_flags, print_table};
use crate::ltx::format_txid;
use crate::storage::{LtxFileInfo, ReplicaClient, SNAPSHOT_LEVEL, Timestamps};

#[derive(Serialize)]
struct FileJson {
    level: u8,
    min_txid: String,
    max_txid: String,
    size: u64,
    timestamp: String,
}

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs)
        .string("replica", "")
        .custom("level", "0", check_level)
        .bool("json", false);
    let p = parse_flags(&fs, args, "ltx")?;
    let target = list::single_target(&p.args, "database path or replica URL required")?;
    let src = source::resolve(SourceArgs {
        config: p.str("config"),
        no_expand_env: p.bool("no-expand-env"),
        replica: p.str("replica"),
        target,
    })?;
    let Some(replica) = src.replicas.first() else {
        anyhow::bail!("database has no replica");
    };
    let levels = parse_level(p.str("level")).map_err(anyhow::Error::msg)?;
    let files = block_on(list_files(&replica.client, levels))??;
    if p.bool("json") {
        let rows: Vec<FileJson> = files.iter().map(file_json).collect();
        return print_json(&rows);
    }
    let mut table = Table::new();
    table.row(["level", "min_txid", "max_txid", "size", "created"]);
    for f in &files {
        let j = file_json(f);
        table.row([
            j.level.to_string(),
            j.min_txid,
            j.max_txid,
            j.size.to_string(),
            j.timestamp,
        ]);
    }
    print_table(&table)
}

async fn list_files(
    client: &ReplicaClient,
    levels: std::ops::RangeInclusive<u8>,
) -> anyhow::Result<Vec<LtxFileInfo>> {
    let mut out = Vec::new();
    for level in levels {
        let files = client
            .ltx_files(level, Timestamps::Listing)
            .await
            .with_context(|| format!("list ltx level {level}"))?;
        out.extend(files);
    }
    Ok(out)
}

fn file_json(f: &LtxFileInfo) -> FileJson {
    FileJson {
        level: f.level,
        min_txid: format_txid(f.min_txid),
        max_txid: format_txid(f.max_txid),
        size: f.size,
        timestamp: crate::gofmt::rfc3339_seconds(f.created_at),
    }
}

fn check_level(s: &str) -> Result<(), String> {
    parse_level(s).map(|_| ())
}

/// Go's `levelVar.Set`: `all`, or a decimal 0..=9 (`strconv.Atoi` syntax).
fn parse_level(s: &str) -> Result<std::ops::RangeInclusive<u8>, String> {
    if s == "all" {
        return Ok(0..=SNAPSHOT_LEVEL);
    }
    let n = s
        .parse::<i64>()
        .map_err(|_| format!("invalid level: must be 0-{SNAPSHOT_LEVEL} or \"all\""))?;
    match u8::try_from(n) {
        Ok(l) if l <= SNAPSHOT_LEVEL => Ok(l..=l),
        _ => Err(format!("level must be between 0 and {SNAPSHOT_LEVEL}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_like_go() {
        assert_eq!(parse_level("all"), Ok(0..=9));
        assert_eq!(parse_level("3"), Ok(3..=3));
        assert_eq!(parse_level("+9"), Ok(9..=9));
        assert_eq!(
            parse_level("10"),
            Err("level must be between 0 and 9".to_string())
        );
        assert_eq!(
            parse_level("-1"),
            Err("level must be between 0 and 9".to_string())
        );
        assert_eq!(
            parse_level("x"),
            Err("invalid level: must be 0-9 or \"all\"".to_string())
        );
    }
}
